#!/usr/bin/env python
"""`vocoder resynth` quality and synthesis speed against WORLD (pyworld.synthesize).

Quality: every speech utterance of the mini corpus eval split
(egs/mini/corpus/splits/eval; 16 kHz, 5 ms hop) is analysed once
(vocoder.analysis.world.world_features: Harvest, CheapTrick, D4C) and that one analysis
is synthesized three ways: pyworld.synthesize ("world"), the differentiable synthesizer
without refinement ("resynth", vocoder.resynth.resynthesize_segment) and with
``--refine`` Adam steps of analysis-by-synthesis ("refined", 200 by default). Each output
is scored against the original with the multi-scale spectral distance (MSSD,
vocoder.metrics.multiscale_spectral_distance) and MCD (vocoder.metrics.mcd); means over
the utterances. The quality runs use one torch thread (fastest for short signals on a
shared machine); the noise seed is fixed.

Targets: resynth no worse than WORLD; refined MSSD at least 20% below WORLD's.

Speed: synthesis only (no analysis), all eval utterances' features concatenated,
float32, no autograd, best of ``--repeat``: seconds of compute per second of audio for
pyworld.synthesize (single-threaded C) and world_synthesis with ``--threads`` torch
threads (default 2) and with 1. Target: ours at least 10x faster.

    python benchmarks/resynth_quality.py            # 16 utterances, refine 200
    python benchmarks/resynth_quality.py --quick    # 2 utterances, refine 40 (under 60 s)
    python benchmarks/resynth_quality.py --memory-only   # peak memory vs file length

Memory: ``resynthesize`` (10 s chunks, 1 thread) on slt_s045 tiled to 60 s and 240 s
without refinement and to 30 s and 90 s with 3 refinement steps, each in a fresh child
process; the figure is the growth of the peak resident set over the resident set before
the call (``_common.peak_rss_mb``). It should not grow with the length beyond the signal
arrays themselves (12 bytes per sample).

Figures go to stderr; the last line on stdout is one JSON object.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (best_time, current_rss_mb, emit, machine_info, peak_rss_mb,  # noqa: E402
                     reset_peak_rss, run_child)

from vocoder.analysis.world import world_features, world_synthesize  # noqa: E402
from vocoder.metrics import mcd, multiscale_spectral_distance  # noqa: E402
from vocoder.resynth import block_noise, resynthesize, resynthesize_segment  # noqa: E402
from vocoder.source_filter import world_synthesis  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "egs" / "mini" / "corpus"
SR, HOP = 16000, 80
VOICES = ("f3", "kal", "ked", "slt")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def eval_speech_ids() -> list[str]:
    ids = (CORPUS / "splits" / "eval").read_text().split()
    return [u for u in ids if u.split("_")[0] in VOICES]


def load(utt: str) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(str(CORPUS / "speech" / utt.split("_")[0] / f"{utt}.flac"))
    assert sr == SR, (utt, sr)
    return x.astype(np.float64)


def quality(utts, *, refine_steps: int, learning_rate: float, seed: int):
    torch.set_num_threads(1)
    systems = ("world", "resynth", "refined")
    scores = {name: {"mssd": [], "mcd": []} for name in systems}
    per_utt = {}
    refine_seconds = 0.0
    for utt in utts:
        x = load(utt)
        feats = world_features(x, sample_rate=SR, hop_length=HOP)
        outs = {"world": world_synthesize(feats["f0_hz"], feats["sp"], feats["ap"], sample_rate=SR,
                                          hop_length=HOP)[: x.size]}
        common = dict(sample_rate=SR, hop_length=HOP, seed=seed)
        outs["resynth"], _ = resynthesize_segment(x, feats, **common)
        t = time.perf_counter()
        outs["refined"], info = resynthesize_segment(x, feats, refine_steps=refine_steps,
                                                     learning_rate=learning_rate, **common)
        refine_seconds += time.perf_counter() - t
        row = {}
        for name in systems:
            row[name] = {"mssd": multiscale_spectral_distance(x, outs[name]),
                         "mcd": mcd(x, outs[name], sample_rate=SR, hop_length=HOP)}
            for key in ("mssd", "mcd"):
                scores[name][key].append(row[name][key])
        per_utt[utt] = row
        log(f"{utt:9s} " + "  ".join(f"{n} mssd {row[n]['mssd']:.3f} mcd {row[n]['mcd']:.3f}"
                                     for n in systems)
            + f"  (loss {info['loss_initial']:.3f} -> {info['loss_final']:.3f})")
    means = {n: {k: float(np.mean(v)) for k, v in d.items()} for n, d in scores.items()}
    audio_seconds = sum(load(u).size for u in utts) / SR
    return means, per_utt, refine_seconds / audio_seconds


def speed(utts, *, threads: int, repeat: int):
    import pyworld

    feats = [world_features(load(u), sample_rate=SR, hop_length=HOP) for u in utts]
    f0, sp, ap = (np.ascontiguousarray(np.concatenate([f[k] for f in feats]), dtype=np.float64)
                  for k in ("f0_hz", "sp", "ap"))
    seconds = f0.size * HOP / SR
    out = {"speed_audio_seconds": seconds}
    t = best_time(lambda: pyworld.synthesize(f0, sp, ap, SR, 1000.0 * HOP / SR), repeat=repeat)
    out["pyworld_s_per_s"] = t / seconds
    args = [torch.from_numpy(a).float()[None] for a in (f0, sp, ap)]
    noise = block_noise(0, 0, f0.size * HOP)
    for n_threads in sorted({1, threads}):
        torch.set_num_threads(n_threads)

        def run():
            with torch.no_grad():
                world_synthesis(*args, sample_rate=SR, hop_length=HOP, noise=noise)
        t = best_time(run, repeat=repeat)
        out[f"ours_threads{n_threads}_s_per_s"] = t / seconds
        out[f"speedup_threads{n_threads}"] = out["pyworld_s_per_s"] / (t / seconds)
        log(f"synthesis of {seconds:.1f} s: pyworld {out['pyworld_s_per_s'] * 1e3:.1f} ms/s, "
            f"ours ({n_threads} thread{'s' if n_threads > 1 else ''}) {t / seconds * 1e3:.1f} ms/s: "
            f"x{out[f'speedup_threads{n_threads}']:.1f}")
    return out


def measure_memory(seconds: float, refine_steps: int) -> dict:
    """Child-process entry: peak RSS growth of resynthesize on ``seconds`` of tiled speech."""
    torch.set_num_threads(1)
    x = load("slt_s045")
    x = np.tile(x, int(np.ceil(seconds * SR / x.size)))[: int(seconds * SR)]
    resynthesize(x[:8000], sample_rate=SR, generator=0, refine_steps=1)  # warm up
    before = current_rss_mb()
    reset_peak_rss()
    t = time.perf_counter()
    y, info = resynthesize(x, sample_rate=SR, generator=0, refine_steps=refine_steps)
    assert y.size == x.size
    return {"peak_mb": peak_rss_mb() - before, "chunks": len(info["chunks"]),
            "seconds": time.perf_counter() - t}


def memory() -> dict:
    out = {}
    for seconds, refine in ((60, 0), (240, 0), (30, 3), (90, 3)):
        r = run_child(__file__, ["--_memory", str(seconds), str(refine)])
        out[f"peak_mb_{seconds}s_refine{refine}"] = r["peak_mb"]
        log(f"memory: {seconds} s, refine {refine}: {r['chunks']} chunks, peak RSS growth "
            f"{r['peak_mb']:.0f} MB ({r['seconds']:.0f} s)")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 utterances, 40 refinement steps (under 60 s)")
    p.add_argument("--refine", type=int, default=None, help="refinement steps (default 200; quick 40)")
    p.add_argument("--lr", type=float, default=None, help="refinement learning rate (library default)")
    p.add_argument("--utterances", type=int, default=None, help="first N eval speech utterances")
    p.add_argument("--threads", type=int, default=2, help="torch threads for the speed test (default 2)")
    p.add_argument("--repeat", type=int, default=None, help="timing repeats (default 10; quick 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", action="store_true", help="also measure peak memory vs length (slow)")
    p.add_argument("--memory-only", action="store_true", help="only measure peak memory vs length")
    p.add_argument("--_memory", nargs=2, metavar=("SECONDS", "REFINE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._memory:
        emit(measure_memory(float(args._memory[0]), int(args._memory[1])))
        return
    if args.memory_only:
        emit({"benchmark": "resynth_quality", **memory(), **machine_info(1)})
        return
    import inspect

    utts = eval_speech_ids()
    if args.utterances or args.quick:
        utts = utts[:: max(1, len(utts) // 2)][:2] if args.quick and not args.utterances else utts[: args.utterances]
    refine_steps = args.refine if args.refine is not None else (40 if args.quick else 200)
    lr = args.lr if args.lr is not None else inspect.signature(resynthesize_segment).parameters["learning_rate"].default
    repeat = args.repeat or (3 if args.quick else 10)

    start = time.perf_counter()
    means, per_utt, refine_rtf = quality(utts, refine_steps=refine_steps, learning_rate=lr, seed=args.seed)
    w, r, f = means["world"], means["resynth"], means["refined"]
    result = {
        "benchmark": "resynth_quality", "utterances": utts, "refine_steps": refine_steps,
        "learning_rate": lr, "seed": args.seed, "means": means, "per_utt": per_utt,
        "resynth_vs_world_mssd": r["mssd"] / w["mssd"],
        "refined_mssd_reduction_vs_world": 1.0 - f["mssd"] / w["mssd"],
        "refine_seconds_per_audio_second": refine_rtf,
    }
    log(f"mean over {len(utts)}: " + "  ".join(f"{n} mssd {m['mssd']:.3f} mcd {m['mcd']:.3f}"
                                              for n, m in means.items()))
    log(f"resynth / world MSSD {result['resynth_vs_world_mssd']:.3f} (target <= 1); refined "
        f"{100 * result['refined_mssd_reduction_vs_world']:.1f}% below world (target >= 20%); "
        f"refinement {refine_rtf:.1f} s per audio second (1 thread)")
    result.update(speed(utts if not args.quick else utts[:2], threads=args.threads, repeat=repeat))
    best = max(v for k, v in result.items() if k.startswith("speedup_threads"))
    result["targets"] = {
        "resynth_no_worse_than_world": result["resynth_vs_world_mssd"] <= 1.0,
        "refined_20pct_below_world": result["refined_mssd_reduction_vs_world"] >= 0.2,
        f"speedup_10x_threads{args.threads}": result[f"speedup_threads{args.threads}"] >= 10.0,
        "speedup_10x_best": best >= 10.0,
    }
    if args.memory:
        result.update(memory())
    result["load_average"] = os.getloadavg()
    result["wall_seconds"] = time.perf_counter() - start
    result.update(machine_info(args.threads))
    emit(result)


if __name__ == "__main__":
    main()
