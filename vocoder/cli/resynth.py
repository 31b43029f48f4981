"""Analysis-synthesis of one file with no trained model.

IN is analysed with WORLD (f0 by --f0 / --f0-method, CheapTrick envelope, D4C
aperiodicity) and synthesized again by the differentiable source-filter synthesizer
(vocoder.source_filter.world_synthesis). --refine N then runs N Adam steps of
analysis-by-synthesis on the multi-scale spectral loss against IN (envelope and
aperiodicity per frame, starting from the analysis). Files of any length are processed
in chunks of --chunk-seconds (crossfaded), so memory does not grow with the length.
OUT (16-bit PCM, clipped to [-1, 1]; format from the extension) has the input's length
at the input's rate, or at --sample-rate, to which the input is resampled first.
Progress goes to stderr.

example:
  vocoder resynth in.wav out.wav
  vocoder resynth in.flac out.wav --f0 praat --refine 200 --seed 1
"""
from __future__ import annotations

import argparse
import sys
import time

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..analysis.f0 import F0_METHODS
    from ..resynth import F0_CHOICES

    parser.add_argument("input", metavar="IN", help="input audio file (wav, flac, ...)")
    parser.add_argument("output", metavar="OUT", help="output audio file")
    parser.add_argument("--f0", choices=tuple(F0_CHOICES), default=None,
                        help="f0 family: world (Harvest) or praat (Praat autocorrelation); "
                        "--f0-method picks the exact method")
    parser.add_argument("--f0-method", choices=F0_METHODS, default=None,
                        help="f0 estimator (default: harvest)")
    parser.add_argument("--f0-min", type=float, default=65.0, metavar="HZ",
                        help="lowest f0 searched (default: 65)")
    parser.add_argument("--f0-max", type=float, default=800.0, metavar="HZ",
                        help="highest f0 searched (default: 800)")
    parser.add_argument("--hop-length", type=int, default=None, metavar="N",
                        help="frame hop in samples (default: sample_rate // 200, 5 ms)")
    parser.add_argument("--refine", type=int, default=0, metavar="N",
                        help="Adam steps of analysis-by-synthesis per chunk (default: 0)")
    parser.add_argument("--lr", type=float, default=0.1,
                        help="refinement learning rate, decayed tenfold over the steps "
                        "(default: 0.1)")
    parser.add_argument("--refine-f0", action="store_true",
                        help="also refine a small log-f0 correction (usually worse)")
    parser.add_argument("--sample-rate", type=int, default=None, metavar="SR",
                        help="output rate: the input is resampled to SR first "
                        "(default: the input's rate)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the excitation noise (default: 0)")
    parser.add_argument("--chunk-seconds", type=float, default=10.0, metavar="S",
                        help="longest chunk processed at once (default: 10)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


class _Progress:
    """Progress lines on stderr: each chunk's analysis, refinement every ~2 s and the end."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.last = 0.0

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        where = f"chunk {event['chunk']}/{event['chunks']}"
        now = time.monotonic()
        if event["stage"] == "analysis":
            self._print(f"{where}: analysing")
        elif event["stage"] == "refine" and (now - self.last >= 2.0 or event["step"] in (1, event["steps"])):
            self._print(f"{where}: step {event['step']}/{event['steps']} loss {event['loss']:.4f}")
            self.last = now

    def _print(self, text: str) -> None:
        print(f"vocoder resynth: {text}", file=sys.stderr, flush=True)


def run(args) -> int:
    import numpy as np

    from ..audio import load_audio, save_audio
    from ..resynth import F0_CHOICES, resynthesize

    if args.f0 is not None and args.f0_method is not None:
        family = "praat" if args.f0_method.startswith("praat") else "world"
        if family != args.f0:
            raise ValueError(f"--f0 {args.f0} contradicts --f0-method {args.f0_method}")
    f0_method = args.f0_method or F0_CHOICES.get(args.f0 or "world")
    if args.refine < 0:
        raise ValueError(f"--refine must be >= 0, got {args.refine}")
    if args.sample_rate is not None and args.sample_rate < 1:
        raise ValueError(f"--sample-rate must be positive, got {args.sample_rate}")
    if args.hop_length is not None and args.hop_length < 1:
        raise ValueError(f"--hop-length must be positive, got {args.hop_length}")
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))

    x, sr = load_audio(args.input, sample_rate=args.sample_rate)
    progress = _Progress(not args.quiet)
    t0 = time.perf_counter()
    y, info = resynthesize(x, sample_rate=sr, hop_length=args.hop_length, f0_method=f0_method,
                           f0_min=args.f0_min, f0_max=args.f0_max, refine_steps=args.refine,
                           learning_rate=args.lr, refine_f0=args.refine_f0,
                           chunk_seconds=args.chunk_seconds, generator=args.seed,
                           progress=progress, name=args.input)
    seconds = time.perf_counter() - t0
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1.0 and not args.quiet:
        print(f"vocoder resynth: warning: output peaks at {peak:.2f}; clipped to [-1, 1] in {args.output}",
              file=sys.stderr)
    save_audio(args.output, y, sr)
    if not args.quiet:
        losses = [v for v in info["loss_final"] if v is not None]
        refined = (f", loss {np.mean([v for v in info['loss_initial'] if v is not None]):.4f} -> "
                   f"{np.mean(losses):.4f}") if losses else ""
        print(f"vocoder resynth: {args.input} -> {args.output}: {len(y) / sr:.2f} s at {sr} Hz, "
              f"f0 {info['f0_method']}, {len(info['chunks'])} chunk(s){refined}, {seconds:.1f} s",
              file=sys.stderr)
    return 0
