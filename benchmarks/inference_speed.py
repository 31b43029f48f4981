#!/usr/bin/env python
"""Whole-model inference speed: features to waveform, 10 s of speech at 22.05 kHz, batch 1.

Models (random weights: the speed does not depend on training), at the sizes the recipes
train:

- ``ddsp``: a DDSP speech model at the sizes of egs/mini/voc1/conf/ddsp_speech.yaml (MFCC
  encoder GRU 128, decoder MLPs 2 x 256, GRU 256, 80 harmonics, 65 noise bands, speaker
  embedding), with a 0.25 s learned reverb (the demo config leaves it out for its dry
  voices; the issue's figure is for the whole model, reverb included), at 22.05 kHz
  with hop 256;
- ``mel``: the mel vocoder of egs/mini/voc2/conf/mel_vocoder.yaml (5 dilated convs of
  128 channels, predicted f0, WORLD-style source-filter synthesis, FFT 1024);
- ``pyworld``: ``pyworld.synthesize`` of the same utterance's WORLD features (f0, 513-bin
  envelope and aperiodicity, 11.6 ms frame period), the classic vocoder baseline.

Each round times every configuration once (so ratios compare calls made under the same
machine load) and the best of ``--repeat`` rounds is kept. Offline: the model's forward
on the whole utterance with 1 and 2 torch threads. Streaming (vocoder.streaming, 1 thread):
blocks of 256 samples, per-call compute percentiles and the algorithmic latency. ``ddsp_overlap``:
``forward(overlap=True)``, the MFCC encoder GRU a 128-frame chunk ahead of the decoder in a
second thread, both single-threaded, then the synthesizers on 2 threads (same output). Exported
(TorchScript DDSP, 1 thread): 4 frames per call. ``ddsp_int8``: the Linear layers (and
GRUs over 256 units) dynamically quantised to int8 (``vocoder synth --int8``), with its output's
difference from float32.

    python benchmarks/inference_speed.py            # 5 rounds
    python benchmarks/inference_speed.py --quick    # 2 rounds (< 60 s)

The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, machine_info  # noqa: E402

SR, HOP, SECONDS = 22050, 256, 10.0


def ddsp_model():
    from vocoder.models.ddsp import DDSP
    torch.manual_seed(0)
    return DDSP(sample_rate=SR, hop_length=HOP, n_harmonics=80, n_noise_bands=65, hidden_size=256, gru_size=256,
                mlp_layers=2, z_dim=16, n_mfcc=30, encoder_gru_size=128, n_speakers=4, speaker_dim=16,
                reverb=True, reverb_duration_s=0.25).eval()


def mel_model():
    from vocoder.models.mel_vocoder import MelDDSP
    torch.manual_seed(0)
    return MelDDSP(sample_rate=SR, hop_length=HOP, n_mels=80, mel_n_fft=1024, mel_f_min=80, mel_f_max=7600,
                   channels=128, conv_layers=5, kernel_size=3, gru_size=0).eval()


def utterance():
    """A 10 s speech-like signal (glottal-like pulses through moving formants, pauses) and its features."""
    import pyworld
    import scipy.signal

    from vocoder.data.features import FeatureConfig, compute_features
    rng = np.random.default_rng(0)
    n = int(SECONDS * SR)
    t = np.arange(n) / SR
    f0 = 120.0 + 30.0 * np.sin(2 * np.pi * 0.7 * t) + 10.0 * np.sin(2 * np.pi * 3.1 * t)
    voiced = (np.sin(2 * np.pi * 0.45 * t) > -0.6)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    src = sum(np.sin(k * phase) / k for k in range(1, 60)) * voiced + 0.05 * rng.standard_normal(n)
    b, a = scipy.signal.butter(2, [400 / (SR / 2), 3000 / (SR / 2)], btype="band")
    x = (0.3 * scipy.signal.lfilter(b, a, src) / np.abs(src).max()).astype(np.float32)
    cfg = FeatureConfig.from_dict({"sample_rate": SR, "hop_length": HOP, "f0_method": "dio", "n_mels": 80,
                                   "mel_n_fft": 1024, "mel_f_min": 80, "mel_f_max": 7600, "mel_log": "log10",
                                   "streams": ["f0", "vuv", "loudness", "mfcc", "mel"]})
    feats = compute_features(x, cfg)
    xd = x.astype(np.float64)
    period = 1000.0 * HOP / SR
    wf0, tt = pyworld.dio(xd, SR, frame_period=period)
    wf0 = pyworld.stonemask(xd, wf0, tt, SR)
    sp = pyworld.cheaptrick(xd, wf0, tt, SR, fft_size=1024)
    ap = pyworld.d4c(xd, wf0, tt, SR, fft_size=1024)
    return feats, (wf0, sp, ap, period)


def best_of(times):
    return min(times) if times else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 rounds instead of 5 (under a minute)")
    p.add_argument("--repeat", type=int, default=None)
    args = p.parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    import pyworld

    from vocoder.export import export_torchscript
    from vocoder.streaming import StreamingSynth, stream_in_blocks

    feats, (wf0, sp, ap, period) = utterance()
    frames = feats["f0"].shape[0]
    x = {k: torch.from_numpy(np.ascontiguousarray(feats[k])).float()[None] for k in ("f0", "vuv", "loudness", "mfcc")}
    x["speaker"] = torch.tensor([0])
    xm = {"mel": torch.from_numpy(np.ascontiguousarray(feats["mel"])).float()[None]}
    ddsp, mel = ddsp_model(), mel_model()
    from vocoder.cli.synth import quantize_dynamic_int8
    ddsp_int8 = quantize_dynamic_int8(ddsp_model())  # vocoder synth --int8
    with tempfile.TemporaryDirectory() as tmp:
        ts_path = os.path.join(tmp, "ddsp.ts")
        export_torchscript(ddsp, ts_path)
        exported = torch.jit.load(ts_path)
    xs = {k: v for k, v in x.items() if k != "speaker"}

    def run_exported():
        exported.reset()
        for a in range(0, frames, 4):
            exported(xs["f0"][:, a:a + 4], xs["vuv"][:, a:a + 4], xs["loudness"][:, a:a + 4], xs["mfcc"][:, a:a + 4])
        exported.flush()

    configs = {
        "pyworld": (1, lambda: pyworld.synthesize(wf0, sp, ap, SR, frame_period=period)),
        "ddsp_t1": (1, lambda: ddsp(x)), "ddsp_t2": (2, lambda: ddsp(x)),
        "ddsp_overlap_t2": (2, lambda: ddsp(x, overlap=True)),
        "ddsp_int8_t2": (2, lambda: ddsp_int8(x)),
        "mel_t1": (1, lambda: mel(xm)), "mel_t2": (2, lambda: mel(xm)),
        "ddsp_exported_t1": (1, run_exported),
    }
    times = {k: [] for k in configs}
    stream_calls = {"ddsp": [], "mel": []}
    latency = {}
    with torch.inference_mode():
        for fn in (lambda: ddsp(x), lambda: mel(xm)):  # warm-up
            fn()
        for r in range(repeat):
            for name, (threads, fn) in configs.items():
                torch.set_num_threads(threads)
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
            torch.set_num_threads(1)
            for name, model, inputs in (("ddsp", ddsp, xs), ("mel", mel, xm)):
                kw = {"speaker": 0} if name == "ddsp" else {}
                stream = StreamingSynth.from_model(model, **kw)
                _, calls = stream_in_blocks(stream, inputs, 256)
                stream_calls[name].append(calls)
                latency[name] = 1000.0 * stream.latency_samples / SR
    seconds = frames * HOP / SR
    with torch.inference_mode():  # int8 output against float32 (same noise)
        ref = ddsp(x, generator=torch.Generator().manual_seed(0))["audio"]
        q = ddsp_int8(x, generator=torch.Generator().manual_seed(0))["audio"]
    int8_error_db = 20.0 * float(torch.log10((q - ref).norm() / ref.norm()))
    result = {"benchmark": "inference_speed", "audio_seconds": seconds, "sample_rate": SR, "hop_length": HOP,
              "rounds": repeat, "ddsp_int8_error_db": int8_error_db, **machine_info(2)}
    for name, ts in times.items():
        result[f"{name}_rtf"] = best_of(ts) / seconds
    for name, rounds in stream_calls.items():
        # the round with the smallest total, its per-call percentiles
        calls = min(rounds, key=sum)
        ms = np.asarray(calls) * 1000.0
        result[f"{name}_stream256_rtf"] = float(sum(calls)) / seconds
        result[f"{name}_stream256_p50_ms"] = float(np.percentile(ms, 50))
        result[f"{name}_stream256_p99_ms"] = float(np.percentile(ms, 99))
        result[f"{name}_stream256_max_ms"] = float(ms.max())
        result[f"{name}_stream_latency_ms"] = latency[name]
    result["stream_block_budget_ms"] = 1000.0 * 256 / SR
    for name in ("ddsp", "mel"):
        best = min(result[f"{name}_t1_rtf"], result[f"{name}_t2_rtf"], result.get(f"{name}_overlap_t2_rtf", 1e9))
        result[f"{name}_best_rtf"] = best
        result[f"{name}_speedup_vs_pyworld"] = result["pyworld_rtf"] / best
    print(f"10 s of speech at {SR} Hz, batch 1, best of {repeat} rounds:")
    print(f"  pyworld.synthesize      RTF {result['pyworld_rtf']:.4f}")
    for name in ("ddsp", "mel"):
        print(f"  {name:5s} offline          RTF {result[f'{name}_t1_rtf']:.4f} (1 thread), "
              f"{result[f'{name}_t2_rtf']:.4f} (2 threads); {result[f'{name}_speedup_vs_pyworld']:.1f}x pyworld")
        print(f"  {name:5s} stream, 256-sample blocks: RTF {result[f'{name}_stream256_rtf']:.4f}, per call p50 "
              f"{result[f'{name}_stream256_p50_ms']:.2f} ms, p99 {result[f'{name}_stream256_p99_ms']:.2f} ms "
              f"(budget {result['stream_block_budget_ms']:.1f} ms), latency {result[f'{name}_stream_latency_ms']:.1f} ms")
    print(f"  ddsp  offline, encoder a chunk ahead in a 2nd thread (forward(overlap=True)): RTF {result['ddsp_overlap_t2_rtf']:.4f}")
    print(f"  ddsp  offline int8 (vocoder synth --int8), 2 threads: RTF {result['ddsp_int8_t2_rtf']:.4f} "
          f"(output {int8_error_db:.1f} dB from float32)")
    print(f"  ddsp TorchScript export, 4 frames per call: RTF {result['ddsp_exported_t1_rtf']:.4f}")
    emit(result)


if __name__ == "__main__":
    main()
