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

Speed: a 10 s signal (the first utterance tiled), float32, no autograd, best of
``--repeat`` calls, with 1 and 2 torch threads; pyworld is single-threaded C.

    python benchmarks/world_synth.py                  # quality on 4 voices + speed
    python benchmarks/world_synth.py --quick          # one voice, fewer seeds
    python benchmarks/world_synth.py --speed-only

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_time, emit, machine_info  # noqa: E402

from vocoder.analysis.world import world_features, world_synthesize  # noqa: E402
from vocoder.metrics import mcd, multiscale_spectral_distance  # noqa: E402
from vocoder.source_filter import world_synthesis  # noqa: E402

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


def speed(repeat: int):
    import pyworld

    x = load("slt")
    x10 = np.tile(x, int(np.ceil(10 * SR / x.size)))[: 10 * SR]
    feats = world_features(x10, sample_rate=SR, hop_length=HOP)
    f0, sp, ap = (np.ascontiguousarray(feats[k], dtype=np.float64) for k in ("f0_hz", "sp", "ap"))
    out = {"seconds_of_audio": 10.0,
           "pyworld_s": best_time(lambda: pyworld.synthesize(f0, sp, ap, SR, 1000.0 * HOP / SR), repeat=repeat)}
    args = tensors(feats, torch.float32)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for method, n_fft in CONFIGS:
            def run(method=method, n_fft=n_fft):
                with torch.no_grad():
                    world_synthesis(*args, sample_rate=SR, hop_length=HOP, method=method, n_fft=n_fft, generator=0)
            t = best_time(run, repeat=repeat)
            out[f"{method}_{n_fft}_threads{threads}_s"] = t
            out[f"{method}_{n_fft}_threads{threads}_speedup"] = out["pyworld_s"] / t
            print(f"threads {threads} {method} n_fft {n_fft}: {1000 * t:.1f} ms "
                  f"(pyworld {1000 * out['pyworld_s']:.1f} ms, x{out['pyworld_s'] / t:.1f})", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--utterances", type=int, default=12, help="utterances per voice (s001..)")
    args = parser.parse_args()
    voices = ["slt"] if args.quick else ["slt", "kal", "ked", "f3"]
    utterances = [f"s{i:03d}" for i in range(1, (3 if args.quick else args.utterances) + 1)]
    seeds = [0, 1]
    result = {"machine": machine_info(torch.get_num_threads()),
              "load_average": os.getloadavg()}
    if not args.speed_only:
        result["quality"] = quality(voices, utterances, seeds)
    result["speed"] = speed(args.repeat)
    emit(result)


if __name__ == "__main__":
    main()
