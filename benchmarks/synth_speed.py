#!/usr/bin/env python
"""Harmonic oscillator bank speed and memory, against a naive eager implementation.

The workload is the reference one: 100 harmonics, 4 s at 24 kHz, 5 ms hop, batch 1
and 16, float32. Throughput is harmonic-samples per second (batch x samples x
harmonics / seconds). The naive implementation, written below in the style of
common PyTorch DDSP code, upsamples f0 and every harmonic's amplitude to the sample
rate, accumulates phase with a float32 cumulative sum and sums a full
(batch, samples, harmonics) tensor of sines. Both run in the same process on the
same inputs; peak memory of forward + backward is measured in fresh child processes.

    python benchmarks/synth_speed.py            # full run
    python benchmarks/synth_speed.py --quick    # under 60 s

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (best_time, current_rss_mb, emit, machine_info, peak_rss_mb,  # noqa: E402
                     reset_peak_rss, run_child)  # noqa: E402

from vocoder.dsp.oscillators import harmonic_synthesis  # noqa: E402

SAMPLE_RATE = 24000
HOP = 120
N_HARMONICS = 100


def naive_harmonic_synthesis(f0_hz, amplitudes, *, sample_rate, hop_length):
    """Eager baseline: everything upsampled to (batch, samples, harmonics)."""
    n_samples = f0_hz.shape[1] * hop_length
    f0 = F.interpolate(f0_hz.unsqueeze(1), size=n_samples, mode="linear", align_corners=False).squeeze(1)
    amps = F.interpolate(amplitudes.transpose(1, 2), size=n_samples, mode="linear",
                         align_corners=False).transpose(1, 2)
    k = torch.arange(1, amplitudes.shape[-1] + 1, dtype=f0.dtype)
    amps = amps * (f0.unsqueeze(-1) * k < sample_rate / 2)
    phase = 2 * math.pi * torch.cumsum(f0 / sample_rate, dim=1)
    return (torch.sin(phase.unsqueeze(-1) * k) * amps).sum(-1)


IMPLEMENTATIONS = {"ours": harmonic_synthesis, "naive": naive_harmonic_synthesis}


def make_inputs(batch: int, seconds: float, requires_grad: bool = False):
    g = torch.Generator().manual_seed(0)
    n_frames = int(seconds * SAMPLE_RATE) // HOP
    f0 = 100 + 200 * torch.rand(batch, n_frames, generator=g)
    amps = torch.rand(batch, n_frames, N_HARMONICS, generator=g) / N_HARMONICS
    return f0.requires_grad_(requires_grad), amps.requires_grad_(requires_grad)


def measure_memory(impl: str, batch: int, seconds: float, threads: int) -> dict:
    """Child-process entry: peak RSS growth of one forward + backward."""
    torch.set_num_threads(threads)
    fn = IMPLEMENTATIONS[impl]
    f0, amps = make_inputs(batch, seconds, requires_grad=True)
    # Warm up the allocator and kernels on a tiny input so that only the workload counts.
    fn(*[t.detach()[:, :4].requires_grad_() for t in (f0, amps)], sample_rate=SAMPLE_RATE,
       hop_length=HOP).sum().backward()
    before = current_rss_mb()
    reset_peak_rss()
    fn(f0, amps, sample_rate=SAMPLE_RATE, hop_length=HOP).sum().backward()
    return {"peak_mb": peak_rss_mb() - before}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="shorter run (under 60 s)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--_memory", nargs=3, metavar=("IMPL", "BATCH", "SECONDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._memory:
        impl, batch, seconds = args._memory
        emit(measure_memory(impl, int(batch), float(seconds), args.threads))
        return
    torch.set_num_threads(args.threads)
    seconds = 4.0
    repeat = 2 if args.quick else 5
    result = {"benchmark": "synth_speed", "sample_rate": SAMPLE_RATE, "hop_length": HOP,
              "n_harmonics": N_HARMONICS, "seconds": seconds, **machine_info(args.threads)}
    for batch in (1, 16):
        f0, amps = make_inputs(batch, seconds)
        work = batch * f0.shape[1] * HOP * N_HARMONICS
        with torch.no_grad():
            for name, fn in IMPLEMENTATIONS.items():
                if name == "naive" and args.quick and batch == 1:
                    continue
                t = best_time(lambda: fn(f0, amps, sample_rate=SAMPLE_RATE, hop_length=HOP), repeat=repeat)
                result[f"{name}_fwd_b{batch}_hs_per_s"] = work / t
                print(f"{name:5s} batch {batch:2d} forward: {work / t:.3e} harmonic-samples/s ({t * 1e3:.0f} ms)",
                      file=sys.stderr)
        f0g, ampsg = make_inputs(batch, seconds, requires_grad=True)
        for name, fn in IMPLEMENTATIONS.items():
            if batch == 1 and name == "naive" and args.quick:
                continue

            def step(fn=fn):
                fn(f0g, ampsg, sample_rate=SAMPLE_RATE, hop_length=HOP).sum().backward()
            t = best_time(step, repeat=max(1, repeat // 2))
            result[f"{name}_fwdbwd_b{batch}_hs_per_s"] = work / t
            print(f"{name:5s} batch {batch:2d} fwd+bwd: {work / t:.3e} harmonic-samples/s ({t * 1e3:.0f} ms)",
                  file=sys.stderr)
    mem_seconds = "4.0"
    for name in IMPLEMENTATIONS:
        r = run_child(__file__, ["--threads", str(args.threads), "--_memory", name, "16", mem_seconds])
        result[f"{name}_peak_mb_fwd_bwd_b16"] = r["peak_mb"]
        print(f"{name:5s} batch 16 fwd+bwd peak memory: {r['peak_mb']:.0f} MB", file=sys.stderr)
    result["harmonic_samples_per_s"] = result["ours_fwd_b16_hs_per_s"]
    result["speedup_vs_naive"] = result["ours_fwd_b16_hs_per_s"] / result["naive_fwd_b16_hs_per_s"]
    result["speedup_vs_naive_fwd_bwd"] = result["ours_fwdbwd_b16_hs_per_s"] / result["naive_fwdbwd_b16_hs_per_s"]
    result["peak_mb_fwd_bwd"] = result["ours_peak_mb_fwd_bwd_b16"]
    result["memory_ratio_vs_naive"] = result["ours_peak_mb_fwd_bwd_b16"] / result["naive_peak_mb_fwd_bwd_b16"]
    emit(result)


if __name__ == "__main__":
    main()
