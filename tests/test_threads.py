"""vocoder._threads: the pool and row splitter of the compiled loops."""
import threading

import pytest
import torch

from vocoder import _threads


def _recorder():
    calls, lock = [], threading.Lock()

    def fn(tag, lo, hi):
        with lock:
            calls.append((tag, lo, hi, threading.get_ident()))
    return calls, fn


@pytest.mark.parametrize("rows,parts", [(10, 1), (10, 2), (10, 3), (7, 7), (2, 5), (1, 3)])
def test_over_rows_covers_every_row_once(rows, parts):
    calls, fn = _recorder()
    _threads.over_rows(fn, rows, "x", parts=parts)
    covered = sorted(r for _, lo, hi, _ in calls for r in range(lo, hi))
    assert covered == list(range(rows))
    assert all(tag == "x" and lo < hi for tag, lo, hi, _ in calls)
    assert len(calls) == min(parts, rows)
    # the first range runs in the calling thread, the others elsewhere
    first = [c for c in calls if c[1] == 0]
    assert first[0][3] == threading.get_ident()
    assert all(c[3] != threading.get_ident() for c in calls if c[1] != 0)


def test_over_rows_defaults_to_torch_threads():
    calls, fn = _recorder()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _threads.over_rows(fn, 9, "y")
    finally:
        torch.set_num_threads(threads)
    assert sorted((lo, hi) for _, lo, hi, _ in calls) == [(0, 4), (4, 9)]


def test_over_rows_waits_for_all_parts_and_raises():
    done = []

    def fn(lo, hi):
        if lo == 0:
            raise ValueError("first range")
        done.append((lo, hi))

    with pytest.raises(ValueError, match="first range"):
        _threads.over_rows(fn, 6, parts=3)
    assert sorted(done) == [(2, 4), (4, 6)]  # the pool's ranges finished before the error left

    def fails_in_pool(lo, hi):
        if lo:
            raise RuntimeError("pool range")

    with pytest.raises(RuntimeError, match="pool range"):
        _threads.over_rows(fails_in_pool, 4, parts=2)


def test_thread_pool_grows_and_is_new_after_a_fork(monkeypatch):
    monkeypatch.setattr(_threads, "_pool", None)
    small = _threads.thread_pool(1)
    assert _threads.thread_pool(1) is small
    larger = _threads.thread_pool(3)
    assert larger is not small and _threads.thread_pool(2) is larger
    monkeypatch.setattr(_threads.os, "getpid", lambda: -1)  # as in a forked child
    assert _threads.thread_pool(1) is not larger
