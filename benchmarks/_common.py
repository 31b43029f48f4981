"""Shared helpers for the benchmarks: timing, peak memory in a child process, JSON output.

Peak memory is measured as the growth of the peak resident set size (VmHWM, reset right
before the measured call) of a fresh child process over its resident size then, so numbers from
different implementations are comparable within one run.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident set size since start or the last :func:`reset_peak_rss` (MB).

    Read from /proc (VmHWM) rather than ``ru_maxrss``, which Linux carries over from
    the parent process across fork + exec.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def best_time(fn, *, repeat: int, warmup: int = 1) -> float:
    """Smallest wall time of ``repeat`` calls after ``warmup`` calls (seconds)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run_child(script: str, args: list[str]) -> dict:
    """Run ``script args`` in a fresh interpreter and parse its last stdout line as JSON."""
    out = subprocess.run([sys.executable, script, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_info(threads: int) -> dict:
    import torch

    return {
        "torch": torch.__version__,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def emit(result: dict) -> None:
    """Print the result as one JSON line, last."""
    print(json.dumps(result, sort_keys=True), flush=True)
