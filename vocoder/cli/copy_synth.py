"""WORLD analysis/synthesis baseline: resynthesize every utterance of a data dir.

Each utterance is analysed with WORLD (f0 with --f0-method, CheapTrick envelope, D4C
aperiodicity) and synthesized again from those features, giving the copy-synthesis
reference point for the vocoders. Writes OUT_DIR/<utt>.wav (16-bit PCM, clipped to
[-1, 1]) at --sample-rate or the input's own rate, with exactly the input's number of
samples. The input is a Kaldi data dir, a wav.scp, a directory of audio files or one
file (as for `vocoder evaluate`). Existing outputs are kept unless --overwrite; failed
utterances are listed at the end (exit status 1 only when every utterance failed).

example:
  vocoder copy-synth data/test exp/world_copy/wav/test --nj 8
  vocoder evaluate data/test exp/world_copy/wav/test --json exp/world_copy/eval_test.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .evaluate import (
    AudioItem,
    add_shared_analysis_arguments,
    check_common_args,
    list_audio,
    load_item,
    run_jobs,
)

__all__ = ["copy_synthesize", "add_arguments", "run"]


def copy_synthesize(audio, *, sample_rate: int, hop_length: int, f0_method: str = "harvest",
                    f0_min: float = 65.0, f0_max: float = 800.0, name: str = "audio"):
    """WORLD analysis then synthesis of one mono signal.

    Returns:
        (samples,) float32 audio of the input's length.
    """
    from ..analysis.world import world_features, world_synthesize

    feats = world_features(audio, sample_rate=sample_rate, hop_length=hop_length,
                           f0_method=f0_method, f0_min=f0_min, f0_max=f0_max, name=name)
    y = world_synthesize(feats["f0_hz"], feats["sp"], feats["ap"], sample_rate=sample_rate,
                         hop_length=hop_length)
    return y[: len(audio)]


def _copy_job(job) -> tuple[str, str, str | None]:
    """(utt, item, out_path, options) -> (utt, "written" | "failed", reason)."""
    utt, item, out_path, opts = job
    try:
        from ..audio import save_audio

        x, sr = load_item(item, sample_rate=opts["sample_rate"])
        hop = opts["hop_length"] or sr // 200
        y = copy_synthesize(x, sample_rate=sr, hop_length=hop, f0_method=opts["f0_method"],
                            f0_min=opts["f0_min"], f0_max=opts["f0_max"],
                            name=item.source or utt)
        save_audio(out_path, y, sr)
        return utt, "written", None
    except Exception as exc:  # recorded per item; the rest go on
        text = str(exc).strip().splitlines()
        return utt, "failed", text[0] if text else type(exc).__name__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA_OR_WAVSCP",
                        help="data dir, wav.scp, directory of audio files or one file")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="where <utt>.wav files are written")
    add_shared_analysis_arguments(parser, rate_default="each input's own rate")
    parser.add_argument("--overwrite", action="store_true",
                        help="resynthesize utterances whose output already exists")


def run(args) -> int:
    check_common_args(args)
    items = list_audio(args.data, allow_pipes=args.allow_pipes)
    out_dir = Path(args.out_dir)
    opts = {"sample_rate": args.sample_rate, "hop_length": args.hop_length,
            "f0_method": args.f0_method, "f0_min": args.f0_min, "f0_max": args.f0_max}
    jobs, skipped = [], 0
    for utt, item in items.items():
        if "/" in utt or utt in (".", ".."):
            jobs.append((utt, AudioItem(utt, "", error=f"utterance id '{utt}' cannot be a "
                                             "file name"), None, opts))
            continue
        out_path = out_dir / f"{utt}.wav"
        if out_path.exists() and not args.overwrite:
            skipped += 1
            continue
        jobs.append((utt, item, str(out_path), opts))

    written, failed = 0, {}

    def on_result(result):
        nonlocal written
        utt, status, reason = result
        if status == "written":
            written += 1
        else:
            failed[utt] = reason
            print(f"vocoder copy-synth: warning: {utt} failed: {reason}", file=sys.stderr,
                  flush=True)

    run_jobs(_copy_job, jobs, nj=args.nj, on_result=on_result)
    print(f"{written} written, {skipped} skipped (output exists), {len(failed)} failed "
          f"-> {out_dir}")
    if failed:
        print(f"vocoder copy-synth: {len(failed)} of {len(items)} utterances failed:",
              file=sys.stderr)
        for utt in sorted(failed):
            print(f"  {utt}: {failed[utt]}", file=sys.stderr)
        if written == 0 and skipped == 0:
            first = sorted(failed)[0]
            raise RuntimeError(f"all {len(failed)} utterances failed; first: {first}: "
                               f"{failed[first]}")
    return 0
