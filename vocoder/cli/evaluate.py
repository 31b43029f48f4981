"""Objective metrics of HYP wavs against same-named REF wavs.

REF and HYP are each a directory of audio files (utterance id = file name without
extension), a Kaldi data dir (a directory holding ``wav.scp``, and ``segments`` if
any), a ``wav.scp`` file, or a single audio file. Utterances present in both are
evaluated (two single files are paired whatever their names). Per utterance:
mcd_db, f0_rmse_cents, f0_gross_error_rate, vuv_error_rate, f0_l1_midi, f0_corr,
mssd, loudness_l1_db (definitions: docs/metrics.md). A bad item (unreadable file,
silent audio, ...) is recorded as failed with its reason and the rest go on.

examples:
  vocoder evaluate data/test exp/ddsp/wav/test --json exp/ddsp/eval_test.json
  vocoder evaluate data/test exp/copy/wav/test --nj 8 \\
      --update exp/metrics.json --set test --system world_copy
  vocoder evaluate data/tgt_test exp/vc/wav/test --align dtw
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.f0 import F0_METHODS

__all__ = [
    "AudioItem",
    "list_audio",
    "load_item",
    "evaluate_items",
    "update_metrics_file",
    "add_arguments",
    "run",
]

from ..data.sources import (  # noqa: F401
    AUDIO_EXTENSIONS,
    AudioItem,
    _first_line,
    _is_audio_file,
    list_audio,
    load_item,
)

# --------------------------------------------------------------------------- workers


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _evaluate_job(job) -> tuple[str, bool, Any]:
    """Evaluate one (utt, ref_item, hyp_item, options); never raises."""
    utt, ref_item, hyp_item, opts = job
    try:
        from ..metrics import evaluate_pair

        ref, sr = load_item(ref_item, sample_rate=opts["sample_rate"])
        hyp, hyp_sr = load_item(hyp_item, sample_rate=opts["sample_rate"])
        result = evaluate_pair(
            ref, hyp, sample_rate=sr, hyp_sample_rate=hyp_sr,
            hop_length=opts["hop_length"], f0_method=opts["f0_method"],
            f0_min=opts["f0_min"], f0_max=opts["f0_max"], align=opts["align"],
            ref_name=ref_item.source or utt, hyp_name=hyp_item.source or utt,
        )
        return utt, True, result
    except Exception as exc:  # recorded per item; the rest go on
        return utt, False, _first_line(exc)


def run_jobs(function, jobs: list, *, nj: int, on_result) -> None:
    """Run ``function`` over ``jobs`` (in a pool of ``nj`` spawned processes when
    ``nj > 1``), calling ``on_result(result)`` as each finishes; ``on_result`` may
    raise to stop early (the pool is then terminated)."""
    if nj <= 1 or len(jobs) <= 1:
        for job in jobs:
            on_result(function(job))
        return
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(min(nj, len(jobs)), initializer=_init_worker)
    try:
        for result in pool.imap_unordered(function, jobs, chunksize=1):
            on_result(result)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def evaluate_items(
    ref_items: dict[str, AudioItem],
    hyp_items: dict[str, AudioItem],
    *,
    settings: dict[str, Any],
    nj: int = 1,
    fail_fast: bool = False,
    log=None,
) -> tuple[dict[str, dict], dict[str, str]]:
    """Evaluate the utterances in both listings.

    Returns:
        ``(per_utt, failed)``: ``{utt: metrics}`` and ``{utt: reason}``, sorted by id.
    Raises:
        RuntimeError: with ``fail_fast``, at the first failure (``"utt: reason"``).
    """
    from ..data.kaldi import c_sorted

    utts = [u for u in ref_items if u in hyp_items]
    jobs = [(u, ref_items[u], hyp_items[u], settings) for u in utts]
    per_utt: dict[str, dict] = {}
    failed: dict[str, str] = {}

    def on_result(result):
        utt, ok, value = result
        if ok:
            per_utt[utt] = value
            return
        failed[utt] = value
        if fail_fast:
            raise RuntimeError(f"{utt}: {value}")
        if log is not None:
            log(f"warning: {utt} failed: {value}")

    run_jobs(_evaluate_job, jobs, nj=nj, on_result=on_result)
    return ({u: per_utt[u] for u in c_sorted(per_utt)}, {u: failed[u] for u in c_sorted(failed)})


# --------------------------------------------------------------------------- output


def _json_safe(value):
    """NaN/inf -> None (JSON null), numpy scalars -> Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as JSON (NaN as null) atomically (:func:`vocoder.outputs.write_atomic`)."""
    from ..outputs import write_atomic

    write_atomic(path, json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n", what="JSON")


def update_metrics_file(path, *, set_name: str, system: str, result: dict) -> dict:
    """Merge ``result`` into ``{"version": 1, "sets": {set: {"systems": {system:
    result}}}}`` stored at ``path`` (created if missing; other sets and systems kept;
    the same set/system replaced). The read-modify-write holds an exclusive lock on
    ``path + ".lock"`` and the file is replaced atomically.

    Returns:
        the merged document.
    Raises:
        ValueError: the existing file is not such a document.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists():
                try:
                    doc = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise ValueError(f"{path}: cannot read the metrics file "
                                     f"({_first_line(exc)})") from None
                if not (isinstance(doc, dict) and isinstance(doc.get("sets", {}), dict)):
                    raise ValueError(f"{path}: not a metrics file (expected "
                                     '{"version": 1, "sets": {...}})')
                if doc.get("version", 1) != 1:
                    raise ValueError(f"{path}: metrics file version {doc.get('version')!r}, "
                                     "this tool writes version 1")
            else:
                doc = {}
            doc["version"] = 1
            sets = doc.setdefault("sets", {})
            entry = sets.setdefault(set_name, {})
            if not isinstance(entry, dict):
                raise ValueError(f"{path}: set '{set_name}' is not an object")
            systems = entry.setdefault("systems", {})
            if not isinstance(systems, dict):
                raise ValueError(f"{path}: 'systems' of set '{set_name}' is not an object")
            systems[system] = result
            write_json_atomic(path, doc)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return doc


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table: metric, mean, count."""
    n_valid = summary.get("n_valid", {})
    names = [k for k in summary if k not in ("count", "n_valid")]
    width = max([len("metric")] + [len(k) for k in names])
    lines = [f"{'metric':<{width}}  {'mean':>12}  {'count':>6}"]
    for key in names:
        value = summary[key]
        text = "nan" if value is None or not math.isfinite(value) else f"{value:.4f}"
        lines.append(f"{key:<{width}}  {text:>12}  {n_valid.get(key, 0):>6}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def add_shared_analysis_arguments(parser: argparse.ArgumentParser, *, rate_default: str) -> None:
    """--sample-rate, --hop-length, --f0-method, --f0-min, --f0-max, --nj, --allow-pipes."""
    parser.add_argument("--sample-rate", type=int, default=None, metavar="SR",
                        help=f"resample audio to SR Hz before analysis (default: {rate_default})")
    parser.add_argument("--hop-length", type=int, default=None, metavar="N",
                        help="frame hop in samples (default: sample_rate // 200, 5 ms)")
    parser.add_argument("--f0-method", choices=F0_METHODS, default="harvest",
                        help="f0 estimator (default: harvest)")
    parser.add_argument("--f0-min", type=float, default=65.0, metavar="HZ",
                        help="lowest f0 searched (default: 65)")
    parser.add_argument("--f0-max", type=float, default=800.0, metavar="HZ",
                        help="highest f0 searched (default: 800)")
    parser.add_argument("--nj", type=int, default=1, metavar="N",
                        help="parallel worker processes (default: 1)")
    parser.add_argument("--allow-pipes", action="store_true",
                        help="run `cmd |` entries of wav.scp (otherwise such an item fails, the command not run)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", metavar="REF", help="reference: wav dir, data dir, wav.scp or file")
    parser.add_argument("hyp", metavar="HYP", help="hypothesis: wav dir, data dir, wav.scp or file")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write ref, hyp, settings, summary, per_utt and failed as JSON")
    add_shared_analysis_arguments(
        parser, rate_default="each reference's own rate; HYP is resampled to it")
    parser.add_argument("--align", choices=("none", "dtw"), default="none",
                        help="frame pairing: none (copy synthesis, truncate to the shorter) "
                        "or dtw (conversion)")
    parser.add_argument("--update", metavar="METRICS_JSON", default=None,
                        help="merge the result into this metrics file under --set / --system")
    parser.add_argument("--set", dest="set_name", metavar="NAME", default=None,
                        help="evaluation set name for --update (e.g. test)")
    parser.add_argument("--system", metavar="NAME", default=None,
                        help="system name for --update (e.g. ddsp_hpn)")
    parser.add_argument("--fail-fast", action="store_true",
                        help="stop at the first failed utterance")


def check_common_args(args) -> None:
    if args.nj < 1:
        raise ValueError(f"--nj must be at least 1, got {args.nj}")
    if args.sample_rate is not None and args.sample_rate < 1:
        raise ValueError(f"--sample-rate must be positive, got {args.sample_rate}")
    if args.hop_length is not None and args.hop_length < 1:
        raise ValueError(f"--hop-length must be positive, got {args.hop_length}")
    if not 0 < args.f0_min < args.f0_max:
        raise ValueError(f"need 0 < --f0-min < --f0-max, got {args.f0_min} and {args.f0_max}")


def run(args) -> int:
    from ..metrics import METRIC_NAMES, summarize

    check_common_args(args)
    if args.update and not (args.set_name and args.system):
        raise ValueError("--update needs --set NAME and --system NAME")
    if (args.set_name or args.system) and not args.update:
        raise ValueError("--set and --system go with --update METRICS_JSON")

    def log(message: str) -> None:
        print(f"vocoder evaluate: {message}", file=sys.stderr, flush=True)

    ref_items = list_audio(args.ref, allow_pipes=args.allow_pipes)
    hyp_items = list_audio(args.hyp, allow_pipes=args.allow_pipes)
    if _is_audio_file(args.ref) and _is_audio_file(args.hyp):  # pair whatever the names
        hyp_items = {next(iter(ref_items)): next(iter(hyp_items.values()))}
    common = [u for u in ref_items if u in hyp_items]
    if not common:
        raise ValueError(
            f"no utterance of {args.hyp} ({len(hyp_items)}) matches one of {args.ref} "
            f"({len(ref_items)}); files are matched by name without extension"
        )
    missing = [u for u in ref_items if u not in hyp_items]
    extra = [u for u in hyp_items if u not in ref_items]
    if missing:
        log(f"warning: {len(missing)} reference utterances have no hypothesis "
            f"(e.g. {', '.join(missing[:3])})")
    if extra:
        log(f"warning: {len(extra)} hypothesis utterances have no reference "
            f"(e.g. {', '.join(extra[:3])})")

    settings = {
        "sample_rate": args.sample_rate,
        "hop_length": args.hop_length,
        "f0_method": args.f0_method,
        "f0_min": args.f0_min,
        "f0_max": args.f0_max,
        "align": args.align,
    }
    try:
        per_utt, failed = evaluate_items(ref_items, hyp_items, settings=settings, nj=args.nj,
                                         fail_fast=args.fail_fast, log=log)
    except RuntimeError as exc:
        raise RuntimeError(f"failed (--fail-fast): {exc}") from None

    found = summarize(per_utt)
    summary: dict[str, Any] = {"count": found["count"]}
    names = list(METRIC_NAMES) + [k for k in found if k not in METRIC_NAMES
                                  and k not in ("count", "n_valid")]
    for key in names:  # every metric appears, also when all items failed
        summary[key] = found.get(key, math.nan)
    summary["n_valid"] = {k: found["n_valid"].get(k, 0) for k in names}
    warnings = {u: r["warning"] for u, r in per_utt.items() if "warning" in r}
    if warnings:
        log(f"warning: {len(warnings)} utterances differ in length by more than one hop "
            f"(e.g. {next(iter(warnings))}: {next(iter(warnings.values()))})")

    # sample_rate / hop_length null: each reference's own rate / sample_rate // 200.
    full_settings = dict(settings, mcd_order=24, mcd_silence_threshold_db=40.0,
                         loudness_average="power", mssd_fft_sizes=[2048, 1024, 512, 256, 128, 64],
                         mssd_overlap=0.75)
    result = {
        "ref": str(args.ref),
        "hyp": str(args.hyp),
        "settings": full_settings,
        "summary": summary,
        "per_utt": per_utt,
        "failed": failed,
        "missing_hyp": missing,
    }
    if args.json:
        write_json_atomic(args.json, result)
    if not per_utt:
        first = next(iter(failed.items()))
        raise RuntimeError(f"all {len(failed)} utterances failed; first: {first[0]}: {first[1]}")
    if args.update:
        update_metrics_file(args.update, set_name=args.set_name, system=args.system,
                            result=result)

    print(format_table(summary))
    print(f"{len(per_utt)} utterances evaluated, {len(failed)} failed, "
          f"{len(missing)} without hypothesis")
    if failed:
        log(f"warning: {len(failed)} of {len(failed) + len(per_utt)} utterances failed:")
        for utt, reason in failed.items():
            print(f"  {utt}: {reason}", file=sys.stderr)
    return 0

