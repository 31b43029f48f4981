#!/usr/bin/env python
"""Differentiable WORLD synthesis (vocoder.source_filter) against pyworld.synthesize.

Quality: each utterance (s001.. of the mini corpus voices) is analysed once
(vocoder.analysis.world.world_features: Harvest f0, CheapTrick, D4C; 16 kHz, 5 ms hop)
and resynthesised by pyworld.synthesize and by world_synthesis (both methods; filter
FFT sizes 1024 = WORLD's and 512) with two noise seeds; each output is scored against
the original with the multi-scale spectral distance (mean over seeds) and MCD (first
seed) from vocoder.metrics, and its level compared with pyworld's. Means per voice.
Average over many utterances: on one utterance the small-FFT terms of the spectral
distance depend on where the pulses fall relative to the original's glottal pulses,
which no synthesizer can know from (f0, sp, ap); shifting only the initial pulse phase
moves one utterance's distance by +-6%.

Speed: a 10 s signal (slt_s045 tiled; at 16 kHz, and resampled to 22.05 kHz, where the
default filter FFT is 1024), float32, no autograd, best of ``--repeat`` rounds with 1 and
2 torch threads; each round calls pyworld.synthesize (single-threaded C) and every
configuration once, so that the ratios compare calls made under the same machine load
(on a shared machine that matters more than anything else). The speed-up is pyworld's
best time over ours.

    python benchmarks/world_synth.py                  # quality on 4 voices + speed
    python benchmarks/world_synth.py --quick          # one voice, fewer seeds
    python benchmarks/world_synth.py --speed-only

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, machine_info  # noqa: E402

from vocoder.analysis.world import world_features, world_synthesize  # noqa: E402
from vocoder.metrics import mcd, multiscale_spectral_distance  # noqa: E402
from vocoder.source_filter import default_synthesis_fft, world_synthesis  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "egs" / "mini" / "corpus" / "speech"
SR, HOP = 16000, 80
CONFIGS = [("filter", 1024), ("filter", 512), ("harmonic", 1024)]


def load(voice: str, utt: str = "s045") -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(str(SPEECH / voice / f"{voice}_{utt}.flac"))
    assert sr == SR, sr
    return x.astype(np.float64)


def tensors(feats, dtype=torch.float64):
    return [torch.from_numpy(np.asarray(feats[k], dtype=np.float64)).to(dtype)[None]
            for k in ("f0_hz", "sp", "ap")]


def rms_db(x) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x)))))


def quality(voices, utterances, seeds):
    """Mean scores over utterances (and noise seeds for the spectral distance)."""
    rows = {}
    for voice in voices:
        scores: dict = {}

        def add(name, key, value, scores=scores):
            scores.setdefault(name, {}).setdefault(key, []).append(float(value))

        for utt in utterances:
            x = load(voice, utt)
            feats = world_features(x, sample_rate=SR, hop_length=HOP)
            ref = world_synthesize(feats["f0_hz"], feats["sp"], feats["ap"], sample_rate=SR,
                                   hop_length=HOP)[: x.size]
            add("pyworld", "mssd", multiscale_spectral_distance(x, ref))
            add("pyworld", "mcd", mcd(x, ref, sample_rate=SR, hop_length=HOP))
            add("pyworld", "level_vs_input_db", rms_db(ref) - rms_db(x))
            for method, n_fft in CONFIGS:
                name = f"{method}_{n_fft}"
                for seed in seeds:
                    y = world_synthesis(*tensors(feats), sample_rate=SR, hop_length=HOP, method=method,
                                        n_fft=n_fft, generator=seed)[0, : x.size].numpy()
                    add(name, "mssd", multiscale_spectral_distance(x, y))
                    add(name, "level_vs_pyworld_db", rms_db(y) - rms_db(ref))
                    if seed == seeds[0]:
                        add(name, "mcd", mcd(x, y, sample_rate=SR, hop_length=HOP))
        rows[voice] = {name: {key: float(np.mean(v)) for key, v in d.items()} for name, d in scores.items()}
        for name, d in rows[voice].items():
            extra = " ".join(f"{k} {v:+.2f}" for k, v in d.items() if k.startswith("level"))
            print(f"{voice} {name:14s} mssd {d['mssd']:.3f} mcd {d['mcd']:.3f} {extra}", flush=True)
    return rows


def _synthesize(args, **kwargs):
    with torch.no_grad():
        world_synthesis(*args, generator=0, **kwargs)


def best_interleaved(fns: dict, *, repeat: int) -> dict:
    """Smallest wall time of each function over ``repeat`` rounds (after one warm-up round);
    each round calls every function once, so all of them see the same machine load."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def speed(repeat: int, sample_rates=(SR, 22050)):
    """10 s of speech per sample rate; pyworld and ours timed in the same rounds."""
    import pyworld

    out = {"seconds_of_audio": 10.0}
    for sr in sample_rates:
        hop = sr // 200  # 5 ms
        x = load("slt")
        if sr != SR:
            import soxr

            x = soxr.resample(x, SR, sr)
        x10 = np.tile(x, int(np.ceil(10 * sr / x.size)))[: 10 * sr]
        feats = world_features(x10, sample_rate=sr, hop_length=hop)
        f0, sp, ap = (np.ascontiguousarray(feats[k], dtype=np.float64) for k in ("f0_hz", "sp", "ap"))
        args = tensors(feats, torch.float32)
        default_fft = default_synthesis_fft(sp.shape[1], sample_rate=sr, hop_length=hop)
        configs = CONFIGS if sr == SR else [("filter", default_fft)]
        prefix = "" if sr == SR else f"sr{sr}_"
        pyworld_best = float("inf")
        for threads in (1, 2):
            torch.set_num_threads(threads)
            fns = {"pyworld": functools.partial(pyworld.synthesize, f0, sp, ap, sr, 1000.0 * hop / sr)}
            for method, n_fft in configs:
                fns[f"{method}_{n_fft}"] = functools.partial(
                    _synthesize, args, sample_rate=sr, hop_length=hop, method=method, n_fft=n_fft)
            best = best_interleaved(fns, repeat=repeat)
            pyworld_best = min(pyworld_best, best.pop("pyworld"))
            for name, t in best.items():
                ratio = pyworld_best / t
                out[f"{prefix}{name}_threads{threads}_s"] = t
                out[f"{prefix}{name}_threads{threads}_speedup"] = ratio
                note = " (default)" if name == f"filter_{default_fft}" else ""
                print(f"{sr} Hz threads {threads} {name}{note}: {1000 * t:.1f} ms "
                      f"(pyworld {1000 * pyworld_best:.1f} ms, x{ratio:.1f})", flush=True)
        out[f"{prefix}pyworld_s"] = pyworld_best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=None, help="timing rounds (default 15; 5 with --quick)")
    parser.add_argument("--utterances", type=int, default=12, help="utterances per voice (s001..)")
    args = parser.parse_args()
    voices = ["slt"] if args.quick else ["slt", "kal", "ked", "f3"]
    utterances = [f"s{i:03d}" for i in range(1, (3 if args.quick else args.utterances) + 1)]
    seeds = [0, 1]
    result = {"machine": machine_info(torch.get_num_threads()),
              "load_average": os.getloadavg()}
    if not args.speed_only:
        result["quality"] = quality(voices, utterances, seeds)
    result["speed"] = speed(args.repeat or (5 if args.quick else 15))
    result["load_average_end"] = os.getloadavg()
    emit(result)


if __name__ == "__main__":
    main()
