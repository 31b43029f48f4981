"""Threads for the compiled (numba) loops, which release the GIL.

One pool for the process, shared by :mod:`vocoder.models.rnn` (GRU recurrences) and
:mod:`vocoder.dsp.oscillators` (the harmonic bank); a child process after a fork gets its
own (a forked pool's threads do not exist there).
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

import torch

_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)


def thread_pool(workers: int) -> ThreadPoolExecutor:
    """The pool, with at least ``workers`` threads (a larger one replaces a smaller one)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid() or _pool[1] < workers:  # none yet, forked, or too small
        _pool = (os.getpid(), workers, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vocoder-loop"))
    return _pool[2]


def over_rows(fn, rows: int, *args, parts: int | None = None) -> None:
    """``fn(*args, lo, hi)`` over ``rows`` independent rows, split into ``parts`` ranges
    (default: as many as torch's threads, at most one per row): the first range in the
    calling thread, the others in the pool."""
    parts = min(torch.get_num_threads() if parts is None else parts, rows)
    if parts <= 1:
        fn(*args, 0, rows)
        return
    bounds = [rows * i // parts for i in range(parts + 1)]
    pool = thread_pool(parts - 1)
    jobs: list[Future] = [pool.submit(fn, *args, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
    try:
        fn(*args, 0, bounds[1])
    finally:
        for job in jobs:
            job.result()
