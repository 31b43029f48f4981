"""Stream one utterance through a model block by block, as a real-time audio host would.

    vocoder stream --checkpoint EXP_OR_CKPT IN OUT.wav [--block-size 256] [--utt ID]
                   [--speaker NAME] [--dry] [--check] [--json FILE] [--device cpu]

IN is an audio file (analysed with the checkpoint's feature settings), or a feature dump
or a data dir / wav.scp / directory of audio (then --utt picks the utterance; default the
first). The features are handed to :mod:`vocoder.streaming` in the pieces a host with
``--block-size``-sample audio buffers would deliver (the frames due by the end of each
block), and the audio is written to OUT.

Printed: the algorithmic latency (frames of look-ahead the model needs), the block's time
budget (block size / sample rate), the compute time of each call (percentiles, the
largest, how many calls overran the budget), and the real-time factor. ``--check`` also
synthesizes the utterance offline with the same noise and prints the difference
(streaming equals offline to float rounding; see docs/streaming.md).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("input", metavar="IN", help="audio file, feature dump, data dir, wav.scp or directory of audio")
    p.add_argument("output", metavar="OUT", help="output wav")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or experiment dir (newest checkpoint)")
    p.add_argument("--block-size", type=int, default=256, metavar="SAMPLES",
                   help="host buffer size in samples (default 256; 64 to 4096 are typical)")
    p.add_argument("--utt", help="utterance of a multi-utterance IN (default: the first)")
    p.add_argument("--speaker", metavar="NAME", help="speaker/instrument of a multi-speaker model (default: the first)")
    p.add_argument("--dry", action="store_true", help="bypass the learned reverb")
    p.add_argument("--check", action="store_true",
                   help="also synthesize offline with the same noise and print the difference in dB")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: an audio callback runs on one thread, and small per-block "
                        "tensors gain nothing from more)")


def _percentile(values, q):
    import numpy as np
    return float(np.percentile(np.asarray(values), q)) if values else 0.0


def run(args) -> int:
    import numpy as np
    import torch

    from ..audio import save_audio
    from ..data.features import FRAME_STREAMS, FeatureConfig
    from ..models.mel_vocoder import MelDDSP
    from ..streaming import StreamingSynth, offline_reference, stream_in_blocks
    from ..training.checkpoint import load_model, resolve_checkpoint
    from ..training.trainer import resolve_device
    from .convert import _Inputs
    from .synth import required_streams

    if not 1 <= args.block_size <= 1 << 16:
        raise ValueError(f"--block-size must be between 1 and 65536 samples, got {args.block_size}")
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ckpt = resolve_checkpoint(args.checkpoint)
    model, state = load_model(ckpt, device=device)
    streams = required_streams(model)
    features = (state.get("config") or {}).get("features")
    if not features:
        raise ValueError(f"{ckpt}: checkpoint has no feature settings (`features:` in its config)")
    cfg = FeatureConfig.from_dict({**features, "streams": [s for s in streams if s in FRAME_STREAMS]})
    inputs = _Inputs(args.input, model=model, feature_config=cfg, streams=streams)
    utt = args.utt or inputs.utts[0]
    if utt not in inputs.utts:
        raise ValueError(f"{args.input}: no utterance {utt!r}")
    feats, n_samples = inputs.load(utt)
    x = {k: torch.from_numpy(np.ascontiguousarray(feats[k])).float().unsqueeze(0).to(device)
         for k in streams if k in feats}
    kwargs = {"dry": args.dry}
    if not isinstance(model, MelDDSP):
        if getattr(model, "n_speakers", 0):
            kwargs["speaker"] = model.speaker_index(args.speaker) if args.speaker else 0
        elif args.speaker:
            raise ValueError(f"--speaker: model {state['config']['model']['name']!r} has no speakers")
        if getattr(model, "z_dim", 0) and getattr(model, "encoder_norm", "") == "instance":
            mf = x["mfcc"][..., :model.n_mfcc]
            kwargs["mfcc_stats"] = (mf.mean(1), mf.std(1))  # the utterance's own (as offline)
    noise_rng = torch.Generator().manual_seed(args.seed)
    tape = []

    def noise(batch, n):
        if isinstance(model, MelDDSP):
            piece = torch.randn(batch, n, generator=noise_rng)
        else:
            piece = 2.0 * torch.rand(batch, n, generator=noise_rng) - 1.0
        tape.append(piece)
        return piece

    stream = StreamingSynth.from_model(model, noise=noise, **kwargs)
    with torch.inference_mode():
        # warm-up (first calls allocate), then the measured run on a fresh stream
        warm = StreamingSynth.from_model(model, noise=lambda b, n: torch.zeros(b, n), **kwargs)
        stream_in_blocks(warm, {k: v[:, :min(v.shape[1], 20)] for k, v in x.items()}, args.block_size)
        audio, times = stream_in_blocks(stream, x, args.block_size)
    n_out = min(audio.shape[1], n_samples)
    sr = model.sample_rate
    out = Path(args.output)
    save_audio(out, audio[0, :n_out].float().cpu().numpy(), sr)
    budget = args.block_size / sr
    ms = [t * 1000.0 for t in times]
    info = {"checkpoint": str(ckpt), "utterance": utt, "model": state["config"]["model"]["name"],
            "sample_rate": sr, "hop_length": model.hop_length, "block_size": args.block_size,
            "calls": len(times), "audio_seconds": audio.shape[1] / sr,
            "latency_frames": stream.latency_frames, "latency_ms": 1000.0 * stream.latency_samples / sr,
            "budget_ms": budget * 1000.0,
            "compute_ms": {"p50": _percentile(ms, 50), "p90": _percentile(ms, 90), "p99": _percentile(ms, 99),
                           "max": max(ms) if ms else 0.0, "mean": sum(ms) / len(ms) if ms else 0.0},
            "overruns": sum(t > budget for t in times), "rtf": sum(times) / (audio.shape[1] / sr),
            "threads": torch.get_num_threads(), "device": str(device), "approximate": stream.approximate}
    if args.check:
        with torch.inference_mode():
            ref_inputs = dict(x)
            if "speaker" in kwargs:
                ref_inputs["speaker"] = torch.tensor([kwargs["speaker"]], device=device)
            ref = offline_reference(model, ref_inputs, noise=torch.cat(tape, dim=1).to(device), dry=args.dry,
                                    mfcc_stats=kwargs.get("mfcc_stats"))
        err = float((audio - ref).norm() / ref.norm().clamp_min(1e-12))
        info["offline_error_db"] = 20.0 * float(np.log10(max(err, 1e-20)))
    c = info["compute_ms"]
    print(f"vocoder stream: {out}: {info['audio_seconds']:.2f} s at {sr} Hz in {len(times)} calls of "
          f"{args.block_size} samples ({info['budget_ms']:.2f} ms budget each)", file=sys.stderr)
    print(f"  latency {info['latency_frames']} frames = {info['latency_ms']:.1f} ms (algorithmic)", file=sys.stderr)
    print(f"  compute per call: p50 {c['p50']:.3f} ms, p90 {c['p90']:.3f}, p99 {c['p99']:.3f}, max {c['max']:.3f}; "
          f"{info['overruns']} over budget; RTF {info['rtf']:.4f} ({info['threads']} threads)", file=sys.stderr)
    if "offline_error_db" in info:
        print(f"  difference from offline synthesis: {info['offline_error_db']:.1f} dB", file=sys.stderr)
    for note in stream.approximate:
        print(f"  approximate: {note}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=1))
    return 0
