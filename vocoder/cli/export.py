"""Export a trained model for use outside this package.

    vocoder export --checkpoint EXP_OR_CKPT OUT.ts [--format torchscript] [--speaker NAME | --mix "a:0.5,b:0.5"]
                   [--mfcc-stats-from AUDIO] [--dry] [--batch N]

Writes the streaming synthesizer (vocoder.export: DDSPStreamStep, or MelStreamStep for
the mel vocoder) as a TorchScript module: raw features in (DDSP: f0 Hz, voicing,
loudness dB, MFCC; mel vocoder: the log10 mel; the scaling is inside),
audio out frame by frame, delayed by ``delay_samples``; ``reset()`` and ``flush()`` for
utterance boundaries. It loads with ``torch.jit.load`` alone (examples/run_exported.py)
or from C++ with libtorch. A speaker (or blend) is frozen in; an instance-normalised
encoder needs MFCC statistics (--mfcc-stats-from: an audio file of the voice to be
converted, analysed with the checkpoint's settings). The exported model is checked
against the eager stream on a synthetic input before the file is written.

--format onnx is refused with the reason: the synthesizer's FFTs and complex delay line
have no ONNX export path (see docs/streaming.md).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("output", metavar="OUT", help="output file (.ts / .pt for TorchScript)")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or experiment dir (newest checkpoint)")
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript", help="default torchscript")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--speaker", metavar="NAME", help="speaker/instrument to freeze in (default: the first)")
    who.add_argument("--mix", metavar="SPK:W,...", help='blend of speaker embeddings, e.g. "spk1:0.7,spk2:0.3"')
    p.add_argument("--mfcc-stats-from", metavar="AUDIO",
                   help="audio whose MFCC mean/std the instance-normalised encoder uses (required for such models)")
    p.add_argument("--dry", action="store_true", help="leave out the learned reverb")
    p.add_argument("--batch", type=int, default=1, help="rows streamed together (default 1)")


def run(args) -> int:
    import numpy as np
    import torch

    from ..conversion import parse_mix
    from ..export import save_scripted, script_streaming
    from ..models.ddsp import DDSP
    from ..models.mel_vocoder import MelDDSP
    from ..training.checkpoint import load_model, resolve_checkpoint

    if args.format == "onnx":
        raise ValueError("--format onnx: not supported; the synthesizer's rfft/irfft and the reverb's complex "
                         "delay line have no export path in torch.onnx, and the stream's state lives in the module. "
                         "Use --format torchscript (loads in Python with torch alone, or in C++ with libtorch)")
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {args.batch}")
    ckpt = resolve_checkpoint(args.checkpoint)
    model, state = load_model(ckpt, device="cpu")
    name = state["config"]["model"]["name"]
    if not isinstance(model, (DDSP, MelDDSP)):
        raise ValueError(f"{ckpt}: model {name!r}: no TorchScript export for {type(model).__name__}")
    is_mel = isinstance(model, MelDDSP)
    if is_mel and (args.speaker or args.mix or args.mfcc_stats_from):
        raise ValueError(f"--speaker/--mix/--mfcc-stats-from: model {name!r} (a mel vocoder) takes none")
    embedding = None
    if is_mel:
        pass
    elif model.n_speakers:
        table = model.speaker_embedding.weight.detach()
        if args.mix:
            embedding = sum(w * table[model.speaker_index(s)] for s, w in parse_mix(args.mix))
        else:
            embedding = table[model.speaker_index(args.speaker) if args.speaker else 0]
    elif args.speaker or args.mix:
        raise ValueError(f"--speaker/--mix: model {name!r} has no speakers")
    stats = None
    if is_mel:
        pass
    elif model.z_dim > 0 and model.encoder_norm == "instance":
        if not args.mfcc_stats_from:
            raise ValueError(f"{ckpt}: the model's encoder normalises MFCCs per utterance; a stream cannot, so "
                             "give --mfcc-stats-from AUDIO (e.g. a recording of the source voice)")
        from ..data.features import FeatureConfig, compute_features
        from ..data.sources import list_audio, load_item
        cfg = FeatureConfig.from_dict({**state["config"]["features"], "streams": ["mfcc"]})
        items = list_audio(Path(args.mfcc_stats_from))
        audio, _ = load_item(next(iter(items.values())), sample_rate=cfg.sample_rate)
        mf = torch.from_numpy(np.ascontiguousarray(compute_features(audio, cfg)["mfcc"])).float()
        stats = (mf.mean(0), mf.std(0))
    elif args.mfcc_stats_from:
        raise ValueError(f"--mfcc-stats-from: model {name!r} has no instance-normalised encoder")
    out = Path(args.output)
    if is_mel:
        scripted = script_streaming(model, dry=args.dry, batch=args.batch)
        err_db = _check_mel(model, args.dry, args.batch)
    else:
        scripted = script_streaming(model, speaker_embedding=embedding, mfcc_stats=stats, dry=args.dry,
                                    batch=args.batch)
        err_db = _check(model, scripted, embedding, stats, args.dry, args.batch)
    save_scripted(scripted, out)  # only once checked; written atomically
    info = {"checkpoint": str(ckpt), "format": "torchscript", "sample_rate": model.sample_rate,
            "hop_length": model.hop_length, "delay_samples": int(scripted.delay_samples), "batch": args.batch,
            "inputs": ("mel (B,k,n_mels) log10" if is_mel else
                       "f0 (B,k) Hz, vuv (B,k), loudness (B,k) dB, mfcc (B,k,n_mfcc)"),
            "check_error_db": err_db}
    print(f"vocoder export: {out}: TorchScript streaming model, {model.sample_rate} Hz, hop {model.hop_length}, "
          f"delay {info['delay_samples']} samples; equals the eager stream within {err_db:.1f} dB", file=sys.stderr)
    print(json.dumps(info))
    return 0


def _check_mel(model, dry, batch) -> float:
    """Exported vs eager stream of the mel vocoder on 2 s of a synthetic mel, same noise.

    Checked with a given f0 (the model's copy with ``inference_f0: dump``): with the
    predicted f0, float rounding can flip a discrete choice (voicing at probability 0.5,
    a harmonic at Nyquist), which an untrained or barely trained model makes in many
    frames, and a flip changes the pulse phase from there on. The f0 head's arithmetic is
    the same in both; what is checked is everything else, frame by frame."""
    import copy

    import torch

    from ..export import script_streaming
    from ..streaming import StreamingSynth

    model = copy.deepcopy(model)
    model.inference_f0 = "dump"
    scripted = script_streaming(model, dry=dry, batch=batch)

    n = int(2.0 * model.sample_rate / model.hop_length)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(n, dtype=torch.float32)
    mel = (torch.randn(batch, n, model.n_mels, generator=g) * 0.5 - 2.0
           + torch.sin(t / 9.0).reshape(1, n, 1))
    vuv = ((t // 25) % 4 != 3).float().expand(batch, n)
    f0 = (140.0 + 60.0 * torch.sin(t / 30.0)).expand(batch, n) * vuv
    noise = torch.randn(batch, n * model.hop_length, generator=g)
    pos = [0]

    def tape(b, k):
        pos[0] += k
        return noise[:, pos[0] - k:pos[0]]

    eager = StreamingSynth.from_model(model, dry=dry, batch=batch, noise=tape)
    feats = {"mel": mel, "f0": f0, "vuv": vuv}
    with torch.no_grad():
        ref = torch.cat([eager.process(feats), eager.flush()], dim=1)
        scripted.reset()
        y = torch.cat([scripted(mel, f0, vuv, noise), scripted.flush()], dim=1)[:, scripted.delay_samples:]
        scripted.reset()
    err = float((y - ref).norm() / ref.norm().clamp_min(1e-12))
    db = 20.0 * torch.log10(torch.tensor(max(err, 1e-20))).item()
    if db > -60.0:
        raise RuntimeError(f"exported model differs from the eager stream by {db:.1f} dB (limit -60); not written")
    return db


def _check(model, scripted, embedding, stats, dry, batch) -> float:
    """Exported vs eager stream on 2 s of a synthetic glide, with the same noise."""
    import torch

    from ..streaming import StreamingSynth

    n = int(2.0 * model.sample_rate / model.hop_length)
    t = torch.arange(n, dtype=torch.float32)
    vuv = ((t // 25) % 4 != 3).float().expand(batch, n)
    f0 = (140.0 + 60.0 * torch.sin(t / 30.0)).expand(batch, n) * vuv
    loud = (-35.0 + 8.0 * torch.sin(t / 11.0)).expand(batch, n)
    mfcc = torch.randn(batch, n, model.n_mfcc, generator=torch.Generator().manual_seed(0))
    noise = 2.0 * torch.rand(batch, n * model.hop_length, generator=torch.Generator().manual_seed(1)) - 1.0
    pos = [0]

    def tape(b, k):
        pos[0] += k
        return noise[:, pos[0] - k:pos[0]]

    kwargs = {"dry": dry, "batch": batch, "noise": tape}
    if model.n_speakers:
        kwargs["speaker_embedding"] = embedding.reshape(1, -1).expand(batch, -1)
    if stats is not None:
        kwargs["mfcc_stats"] = (stats[0].expand(batch, -1), stats[1].expand(batch, -1))
    eager = StreamingSynth.from_model(model, **kwargs)
    feats = {"f0": f0, "vuv": vuv, "loudness": loud, "mfcc": mfcc}
    with torch.no_grad():
        ref = torch.cat([eager.process(feats), eager.flush()], dim=1)
        scripted.reset()
        y = torch.cat([scripted(f0, vuv, loud, mfcc, noise), scripted.flush()], dim=1)[:, scripted.delay_samples:]
        scripted.reset()
    err = float((y - ref).norm() / ref.norm().clamp_min(1e-12))
    db = 20.0 * torch.log10(torch.tensor(max(err, 1e-20))).item()
    if db > -60.0:
        raise RuntimeError(f"exported model differs from the eager stream by {db:.1f} dB (limit -60); not written")
    return db
