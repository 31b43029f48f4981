"""Objective metrics of voice conversion or timbre transfer outputs.

--pairs FILE lists the converted utterances, one a line, whitespace-separated
(blank lines and lines starting with # are skipped):

    <key> <converted_wav> <source_wav> <source_label> <target_label> [<target_reference_wav> [<f0_shift>]]

key: a unique name of the item; converted_wav: the conversion output, time-aligned with
source_wav (frame n of one is frame n of the other); source_label / target_label: the
speakers (or instruments) converted from and to, as named in utt2spk of --train-data;
target_reference_wav (optional): the target speaking the same sentence (parallel
data), for the MCD, or `-` for none; f0_shift (optional): the transposition this item
should show, in semitones, overriding --f0-shift (e.g. the octaves that `vocoder
convert --f0-transform fold` applied, from its convert.json). Relative paths are looked
up in the current directory, then in the directory of FILE.

A classifier of speakers/instruments (Gaussian models of utterance-mean mel-cepstra)
is trained on --train-data (Kaldi data dirs: wav.scp, utt2spk, optional segments; give
the training split) or loaded with --classifier. Each target's mean log-f0 comes from
--stats (the speakers' logf0 means of `vocoder stats`) or else from its training audio.

Per item: mcd_db and mcd_source_db (DTW-aligned MCD of the converted and of the source
utterance against the target reference), log_f0_diff_cents (converted mean log-f0 minus
the target's, cents; source_log_f0_diff_cents for the source), f0_track_corr and
f0_track_rmse_cents (converted f0 against the source f0 shifted by --f0-shift
semitones, frames voiced in both), predicted (the classifier's label; correct when it
is the target). Summaries per (source, target) pair and overall; with --check-data,
the classifier's accuracy on those unconverted recordings. Definitions:
docs/metrics.md. An item that fails (missing or unreadable file, silent audio, ...) is
reported with its cause and the rest go on; the exit status is then 1.

examples:
  vocoder evaluate-conversion --pairs exp/vc/eval/pairs.txt --train-data data/train \\
      --stats dump/train/stats.json --check-data data/eval --nj 4 \\
      --json exp/vc/eval/conversion.json \\
      --update exp/vc/metrics.json --set eval --system ddsp_vc
  vocoder evaluate-conversion --pairs timbre_pairs.txt --train-data data/music_train \\
      --f0-shift -12 --json timbre.json
"""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.f0 import F0_METHODS
from .evaluate import (
    add_shared_analysis_arguments,
    check_common_args,
    run_jobs,
    update_metrics_file,
    write_json_atomic,
)

__all__ = ["PairItem", "add_arguments", "read_pairs", "read_stats_log_f0", "run"]

_PROG = "vocoder evaluate-conversion"
_MCD_ORDER = 24
_SILENCE_THRESHOLD_DB = 40.0


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PairItem:
    """One line of the pairs file (paths resolved)."""

    key: str
    converted: str
    source: str
    source_label: str
    target_label: str
    target_reference: str | None = None
    f0_shift: float | None = None


def _resolve(value: str, base: Path) -> str:
    """As is when absolute or found from the current directory, else under ``base``
    when found there, else as is (the item then fails naming the path)."""
    if os.path.isabs(value) or os.path.exists(value):
        return value
    if (base / value).exists():
        return str(base / value)
    return value


def read_pairs(path) -> list[PairItem]:
    """Read a pairs file (format in the module docstring).

    Returns:
        the items in file order.
    Raises:
        FileNotFoundError: no such file.
        ValueError: a line without 5 to 7 fields, a repeated key, a shift that is not a
            number, no item at all (the message names the file and line).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    items: list[PairItem] = []
    seen: dict[str, int] = {}
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) not in (5, 6, 7):
                raise ValueError(f"{path}:{lineno}: expected 5 to 7 fields (key converted_wav "
                                 "source_wav source_label target_label [target_reference_wav|- "
                                 f"[f0_shift]]), got {len(fields)}")
            key = fields[0]
            if key in seen:
                raise ValueError(f"{path}:{lineno}: key '{key}' repeats line {seen[key]}")
            seen[key] = lineno
            ref = _resolve(fields[5], p.parent) if len(fields) >= 6 and fields[5] != "-" else None
            shift = None
            if len(fields) == 7:
                try:
                    shift = float(fields[6])
                except ValueError:
                    shift = math.nan
                if not math.isfinite(shift):
                    raise ValueError(f"{path}:{lineno}: f0_shift '{fields[6]}' is not a finite number of semitones")
            items.append(PairItem(key, _resolve(fields[1], p.parent),
                                  _resolve(fields[2], p.parent), fields[3], fields[4], ref, shift))
    if not items:
        raise ValueError(f"{path}: no items (one line per converted utterance: key "
                         "converted_wav source_wav source_label target_label "
                         "[target_reference_wav])")
    return items


def read_stats_log_f0(path) -> dict[str, float]:
    """Per-speaker mean log-f0 (natural log of Hz) from ``vocoder stats`` JSON.

    Returns:
        ``{speaker: mean}`` for the speakers with a defined mean.
    Raises:
        ValueError: unreadable file or not a stats file.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        text = str(exc).strip().splitlines()
        raise ValueError(f"{path}: cannot read the statistics "
                         f"({text[0] if text else type(exc).__name__})") from None
    speakers = doc.get("speakers") if isinstance(doc, dict) else None
    if not isinstance(speakers, dict):
        raise ValueError(f"{path}: not a `vocoder stats` file (no 'speakers' object)")
    out = {}
    for spk, entry in speakers.items():
        mean = entry.get("logf0", {}).get("mean") if isinstance(entry, dict) else None
        if isinstance(mean, (int, float)) and not isinstance(mean, bool) and math.isfinite(mean):
            out[str(spk)] = float(mean)
    return out


def _split_dirs(values: list[str] | None) -> list[str]:
    """``--x A,B --x C`` -> [A, B, C]."""
    out: list[str] = []
    for value in values or []:
        out += [v for v in value.split(",") if v]
    return out


def _labelled_items(dirs: list[str], log, *, allow_pipes: bool = False) -> dict[str, tuple[Any, str]]:
    """``{utt: (AudioItem, label)}`` of Kaldi data dirs (wav.scp + utt2spk)."""
    from ..data.kaldi import read_table
    from ..data.sources import list_audio

    out: dict[str, tuple[Any, str]] = {}
    for d in dirs:
        p = Path(d)
        if not (p / "wav.scp").is_file() or not (p / "utt2spk").is_file():
            raise ValueError(f"{d}: not a data dir (needs wav.scp and utt2spk)")
        items = list_audio(p, allow_pipes=allow_pipes)
        utt2spk = read_table(p / "utt2spk")
        unlabelled = [u for u in items if u not in utt2spk]
        if unlabelled:
            log(f"warning: {d}: {len(unlabelled)} utterances are not in utt2spk and are "
                f"left out (e.g. {', '.join(unlabelled[:3])})")
        for utt, item in items.items():
            if utt not in utt2spk:
                continue
            if utt in out:
                raise ValueError(f"{d}: utterance '{utt}' is also in another of the data dirs")
            out[utt] = (item, utt2spk[utt])
    return out


# --------------------------------------------------------------------------- workers


def _job(job) -> tuple[str, str, bool, Any]:
    """Run one job; never raises. Returns (kind, key, ok, result or reason)."""
    from ..data.sources import _first_line

    kind, key, payload, opts = job
    try:
        return kind, key, True, _JOBS[kind](payload, opts)
    except Exception as exc:  # noqa: BLE001 -- recorded per item; the rest go on
        return kind, key, False, _first_line(exc)


def _analysis_kwargs(opts: dict) -> dict:
    return {k: opts[k] for k in ("sample_rate", "hop_length", "f0_method", "f0_min", "f0_max")}


def _train_job(payload, opts) -> dict:
    """Profile of one training utterance: mean mel-cepstrum and log-f0 statistics."""
    from ..data.sources import load_item
    from ..metrics import utterance_profile

    item, label = payload
    x, _ = load_item(item, sample_rate=opts["sample_rate"])
    prof = utterance_profile(x, name=item.source or item.utt, **_analysis_kwargs(opts))
    return {"label": label, "mcep_mean": prof["mcep_mean"],
            "voiced_frames": prof["voiced_frames"], "log_f0_mean": prof["log_f0_mean"]}


def _check_job(payload, opts) -> dict:
    """The classifier's prediction for one unconverted recording."""
    from ..data.sources import load_item

    item, label = payload
    clf = opts["classifier"]
    x, _ = load_item(item, sample_rate=clf.sample_rate)
    return {"label": label, "predicted": clf.predict(x, name=item.source or item.utt)}


def _convert_job(payload, opts) -> dict:
    """Metrics of one converted item."""
    from ..data.sources import AudioItem, load_item
    from ..metrics import evaluate_conversion

    pair, target_log_f0_mean = payload
    sr = opts["sample_rate"]

    def load(path):
        return load_item(AudioItem(pair.key, path), sample_rate=sr)[0]

    converted = load(pair.converted)
    source = load(pair.source)
    reference = load(pair.target_reference) if pair.target_reference else None
    clf = opts["classifier"]
    result = evaluate_conversion(
        converted, source, sample_rate=sr, hop_length=opts["hop_length"],
        target_reference=reference, target_log_f0_mean=target_log_f0_mean,
        f0_shift_semitones=opts["f0_shift"] if pair.f0_shift is None else pair.f0_shift,
        classifier=clf, f0_method=opts["f0_method"], f0_min=opts["f0_min"], f0_max=opts["f0_max"],
        f0_track_method=opts.get("f0_track_method"), f0_track_range=opts.get("f0_track_range"),
        shift_f0_range=opts.get("shift_f0_range", False), order=_MCD_ORDER,
        silence_threshold_db=_SILENCE_THRESHOLD_DB, converted_name=pair.converted,
        source_name=pair.source, reference_name=pair.target_reference or "target_reference",
    )
    known = clf is not None and pair.target_label in clf.labels
    out: dict[str, Any] = {"source_label": pair.source_label, "target_label": pair.target_label}
    out.update(result)
    out["correct"] = (result["predicted"] == pair.target_label) if known else None
    return out


_JOBS = {"train": _train_job, "check": _check_job, "convert": _convert_job}


# --------------------------------------------------------------------------- output

_TABLE_COLUMNS = (  # (summary key, header, format)
    ("count", "n", "{:d}"),
    ("mcd_db", "mcd", "{:.2f}"),
    ("mcd_source_db", "mcd_src", "{:.2f}"),
    ("mcd_reduction", "reduct", "{:.3f}"),
    ("log_f0_abs_diff_cents", "|dlf0|", "{:.1f}"),
    ("f0_track_corr", "f0_corr", "{:.3f}"),
    ("f0_track_rmse_cents", "f0_rmse", "{:.1f}"),
    ("accuracy", "acc", "{:.3f}"),
)


def format_conversion_table(by_pair: dict[str, dict], overall: dict) -> str:
    """One row per (source, target) pair and one for all items."""
    rows = list(by_pair.items()) + [("all", overall)]
    width = max(len("pair"), *(len(name) for name, _ in rows))
    header = f"{'pair':<{width}}" + "".join(f"  {h:>8}" for _, h, _ in _TABLE_COLUMNS)
    lines = [header]
    for name, s in rows:
        cells = []
        for key, _, fmt in _TABLE_COLUMNS:
            v = s.get(key)
            ok = v is not None and (not isinstance(v, float) or math.isfinite(v))
            cells.append(f"  {fmt.format(v) if ok else '-':>8}")
        lines.append(f"{name:<{width}}" + "".join(cells))
    lines.append("mcd, mcd_src: DTW MCD (dB) of converted / source vs target reference; "
                 "reduct: 1 - mcd/mcd_src; |dlf0|: mean |log-f0 - target's| (cents); "
                 "f0_corr, f0_rmse: converted vs shifted source f0; acc: classified as target")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def add_arguments(parser) -> None:
    parser.add_argument("--pairs", required=True, metavar="FILE",
                        help="one line per converted utterance: key converted_wav source_wav "
                        "source_label target_label [target_reference_wav]")
    parser.add_argument("--train-data", action="append", metavar="DIR[,DIR...]",
                        help="Kaldi data dir(s) (wav.scp, utt2spk) of the training split: "
                        "trains the classifier and gives each class's mean log-f0 unless "
                        "--classifier / --stats do (repeatable)")
    parser.add_argument("--stats", metavar="STATS_JSON", default=None,
                        help="per-speaker log-f0 means from `vocoder stats` (preferred over "
                        "the training audio)")
    parser.add_argument("--check-data", action="append", metavar="DIR[,DIR...]",
                        help="held-out data dir(s) of unconverted recordings: report the "
                        "classifier's own accuracy on them (repeatable)")
    parser.add_argument("--classifier", metavar="JSON", default=None,
                        help="use this saved classifier instead of training one")
    parser.add_argument("--save-classifier", metavar="JSON", default=None,
                        help="write the trained classifier here")
    parser.add_argument("--covariance", choices=("shared", "per_class"), default="shared",
                        help="classifier covariance (default: shared; see docs/metrics.md)")
    parser.add_argument("--f0-shift", type=float, default=0.0, metavar="SEMITONES",
                        help="transposition the conversion should apply, for f0_track_rmse_cents "
                        "(default: 0; a pairs line's own f0_shift overrides it)")
    add_shared_analysis_arguments(
        parser, rate_default="the classifier's, else the first training file's")
    parser.add_argument("--f0-track-method", choices=F0_METHODS, default=None,
                        help="f0 estimator of the f0_track_* metrics only (default: --f0-method); "
                        "praat_ac reads the edges of voiced stretches more reliably than harvest "
                        "(docs/metrics.md)")
    parser.add_argument("--f0-track-min", type=float, default=None, metavar="HZ",
                        help="lowest f0 of the f0_track_* analysis (default: --f0-min)")
    parser.add_argument("--f0-track-max", type=float, default=None, metavar="HZ",
                        help="highest f0 of the f0_track_* analysis (default: --f0-max)")
    parser.add_argument("--shift-f0-range", action="store_true",
                        help="search the converted f0 of the f0_track_* metrics in --f0-min..--f0-max moved by "
                        "the item's f0 shift (a voice analysed in a voice's range, its transfer two octaves up "
                        "in that range two octaves up)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write settings, summary, by_pair, check, per_utt and failed as JSON")
    parser.add_argument("--update", metavar="METRICS_JSON", default=None,
                        help="merge the result into this metrics file under --set / --system")
    parser.add_argument("--set", dest="set_name", metavar="NAME", default=None,
                        help="evaluation set name for --update (e.g. eval)")
    parser.add_argument("--system", metavar="NAME", default=None,
                        help="system name for --update (e.g. ddsp_vc)")
    parser.add_argument("--fail-fast", action="store_true",
                        help="stop at the first failed item")


def _track_range(args, sample_rate: int) -> tuple[float, float] | None:
    """(lo, hi) of the f0-tracking analysis, or None when it is the main analysis's."""
    from ..analysis.f0 import check_f0_range

    if args.f0_track_min is None and args.f0_track_max is None:
        return None
    lo = args.f0_min if args.f0_track_min is None else args.f0_track_min
    hi = args.f0_max if args.f0_track_max is None else args.f0_track_max
    try:
        return check_f0_range(lo, hi, sample_rate=sample_rate)
    except ValueError as exc:
        raise ValueError(f"--f0-track-min/--f0-track-max: {exc}") from None


def _log(message: str) -> None:
    print(f"{_PROG}: {message}", file=sys.stderr, flush=True)


class _Failures:
    """Failed items by phase; prints each as it comes, stops with --fail-fast."""

    def __init__(self, fail_fast: bool):
        self.fail_fast = fail_fast
        self.by_kind: dict[str, dict[str, str]] = {"train": {}, "check": {}, "convert": {}}

    def add(self, kind: str, key: str, reason: str) -> None:
        self.by_kind[kind][key] = reason
        what = {"train": "training utterance", "check": "check utterance",
                "convert": "item"}[kind]
        if self.fail_fast:
            raise RuntimeError(f"failed (--fail-fast): {what} {key}: {reason}")
        _log(f"warning: {what} {key} failed: {reason}")

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_kind.values())


def _run_phase(jobs: list, *, nj: int, failures: _Failures) -> dict[tuple[str, str], dict]:
    """``{(kind, key): result}`` of the jobs that succeeded."""
    results: dict[tuple[str, str], dict] = {}

    def on_result(result):
        kind, key, ok, value = result
        if ok:
            results[kind, key] = value
        else:
            failures.add(kind, key, value)

    run_jobs(_job, jobs, nj=nj, on_result=on_result)
    return results


def _check_args(args) -> None:
    check_common_args(args)
    if args.update and not (args.set_name and args.system):
        raise ValueError("--update needs --set NAME and --system NAME")
    if (args.set_name or args.system) and not args.update:
        raise ValueError("--set and --system go with --update METRICS_JSON")
    if not math.isfinite(args.f0_shift):
        raise ValueError(f"--f0-shift must be a finite number of semitones, got {args.f0_shift}")
    if not args.train_data and not args.classifier:
        raise ValueError("give --train-data DIR (to train the classifier) or --classifier JSON")
    if args.classifier and args.save_classifier:
        raise ValueError("--save-classifier goes with training (--train-data), not --classifier")


def run(args) -> int:
    from ..data.kaldi import c_sorted
    from ..data.sources import load_item
    from ..metrics import SpeakerClassifier, summarize_conversion

    _check_args(args)
    pairs = read_pairs(args.pairs)
    train_dirs = _split_dirs(args.train_data)
    check_dirs = _split_dirs(args.check_data)
    train_items = _labelled_items(train_dirs, _log, allow_pipes=args.allow_pipes) if train_dirs else {}
    check_items = _labelled_items(check_dirs, _log, allow_pipes=args.allow_pipes) if check_dirs else {}
    if train_dirs and not train_items:
        raise ValueError(f"no labelled utterance in {', '.join(train_dirs)}")
    stats_log_f0 = read_stats_log_f0(args.stats) if args.stats else {}
    classifier = SpeakerClassifier.load(args.classifier) if args.classifier else None

    # Analysis rate: --sample-rate, else the classifier's, else the first training file's.
    sample_rate = args.sample_rate
    if sample_rate is None and classifier is not None:
        sample_rate = classifier.sample_rate
    if sample_rate is None:
        first_utt, (first_item, _) = next(iter(train_items.items()))
        try:
            sample_rate = load_item(first_item)[1]
        except ValueError as exc:
            raise ValueError(f"cannot read the first training utterance {first_utt} to "
                             f"choose the sample rate ({exc}); give --sample-rate") from None
    hop_length = args.hop_length or sample_rate // 200
    if hop_length < 1:
        raise ValueError(f"sample rate {sample_rate} is too low for the default hop; "
                         "give --hop-length")
    opts: dict[str, Any] = {"sample_rate": sample_rate, "hop_length": hop_length,
                            "f0_method": args.f0_method, "f0_min": args.f0_min,
                            "f0_max": args.f0_max, "f0_shift": args.f0_shift,
                            "f0_track_method": args.f0_track_method,
                            "f0_track_range": _track_range(args, sample_rate),
                            "shift_f0_range": args.shift_f0_range}
    failures = _Failures(args.fail_fast)

    # Phase 1: profiles of the training utterances (classifier and/or log-f0 means).
    labels_needed = {p.target_label for p in pairs}
    need_f0 = bool(labels_needed - set(stats_log_f0))
    profiles: dict[str, dict] = {}
    if train_items and (classifier is None or need_f0):
        _log(f"analysing {len(train_items)} training utterances of "
             f"{len({lab for _, lab in train_items.values()})} classes "
             f"({', '.join(train_dirs)})")
        jobs = [("train", utt, (item, label), opts)
                for utt, (item, label) in train_items.items()]
        profiles = {k: r for (_, k), r in _run_phase(jobs, nj=args.nj,
                                                      failures=failures).items()}
    if classifier is None:
        if not profiles:
            raise RuntimeError("every training utterance failed; no classifier")
        keys = c_sorted(profiles)
        classifier = SpeakerClassifier(
            sample_rate=sample_rate, hop_length=hop_length, order=_MCD_ORDER,
            f0_method=args.f0_method, f0_min=args.f0_min, f0_max=args.f0_max,
            silence_threshold_db=_SILENCE_THRESHOLD_DB, covariance=args.covariance,
        ).fit_features([profiles[k]["label"] for k in keys],
                       [profiles[k]["mcep_mean"] for k in keys])
        if args.save_classifier:
            classifier.save(args.save_classifier)
    unknown = sorted({p.target_label for p in pairs} - set(classifier.labels))
    if unknown:
        _log(f"warning: target label(s) {', '.join(unknown)} are not classes of the "
             f"classifier ({', '.join(classifier.labels)}); their items count in no accuracy")

    # Each target's mean log-f0: --stats first, else pooled over its training frames.
    target_f0: dict[str, dict[str, Any]] = {}
    for label in sorted(labels_needed):
        if label in stats_log_f0:
            target_f0[label] = {"log_f0_mean": stats_log_f0[label], "from": "stats"}
            continue
        rows = [r for r in profiles.values() if r["label"] == label and r["voiced_frames"]]
        n = sum(r["voiced_frames"] for r in rows)
        if n:
            mean = sum(r["log_f0_mean"] * r["voiced_frames"] for r in rows) / n
            target_f0[label] = {"log_f0_mean": mean, "from": "train_data"}
    for entry in target_f0.values():
        entry["f0_geomean_hz"] = math.exp(entry["log_f0_mean"])
    missing_f0 = sorted(labels_needed - set(target_f0))
    if missing_f0:
        _log(f"warning: no mean log-f0 for target(s) {', '.join(missing_f0)} (not in "
             f"--stats or the training data); their log_f0_diff_cents are null")

    # Phase 2: the classifier on held-out recordings, and the converted items.
    jobs = [("check", utt, (item, label), dict(opts, classifier=classifier))
            for utt, (item, label) in check_items.items()]
    jobs += [("convert", p.key, (p, target_f0.get(p.target_label, {}).get("log_f0_mean")),
              dict(opts, classifier=classifier)) for p in pairs]
    _log(f"evaluating {len(pairs)} items" +
         (f" and checking the classifier on {len(check_items)} recordings"
          if check_items else ""))
    results = _run_phase(jobs, nj=args.nj, failures=failures)

    order = {p.key: i for i, p in enumerate(pairs)}
    per_utt = {p.key: results["convert", p.key] for p in pairs if ("convert", p.key) in results}
    failed = {k: v for k, v in sorted(failures.by_kind["convert"].items(),
                                      key=lambda kv: order[kv[0]])}
    check_results = {u: results["check", u] for u in check_items if ("check", u) in results}
    warned = [k for k, r in per_utt.items() if "warning" in r]
    if warned:
        _log(f"warning: {len(warned)} converted items differ in length from their source by "
             f"more than one hop, so f0 tracking compares misaligned frames (e.g. {warned[0]})")

    overall = summarize_conversion(per_utt)
    pair_names = sorted({(r["source_label"], r["target_label"]) for r in per_utt.values()})
    by_pair = {}
    for src, tgt in pair_names:
        rows = {k: r for k, r in per_utt.items()
                if r["source_label"] == src and r["target_label"] == tgt}
        by_pair[f"{src}->{tgt}"] = {"source_label": src, "target_label": tgt,
                                    **summarize_conversion(rows)}
    check = None
    if check_dirs:
        correct = sum(r["predicted"] == r["label"] for r in check_results.values())
        confusion: dict[str, dict[str, int]] = {}
        for r in check_results.values():
            row = confusion.setdefault(r["label"], {})
            row[r["predicted"]] = row.get(r["predicted"], 0) + 1
        check = {
            "data": check_dirs,
            "count": len(check_results),
            "correct": int(correct),
            "accuracy": correct / len(check_results) if check_results else math.nan,
            "confusion": {k: dict(sorted(v.items())) for k, v in sorted(confusion.items())},
            "per_utt": check_results,
            "failed": dict(failures.by_kind["check"]),
        }
        overall["classifier_check_accuracy"] = check["accuracy"]
        overall["n_valid"]["classifier_check_accuracy"] = len(check_results)
        overall["n_valid"] = overall.pop("n_valid")  # keep n_valid last

    settings = dict(opts)
    settings.pop("f0_shift")
    settings.update(f0_shift_semitones=args.f0_shift, align="dtw", mcd_order=_MCD_ORDER,
                    mcd_silence_threshold_db=_SILENCE_THRESHOLD_DB)
    result: dict[str, Any] = {
        "pairs": str(args.pairs),
        "ref": None,  # metrics.json entries of `vocoder evaluate` name audio here; the
        "hyp": None,  # items of a conversion are listed in per_utt instead
        "train_data": train_dirs,
        "stats": args.stats,
        "settings": settings,
        "classifier": {
            "file": args.classifier or args.save_classifier,
            "covariance": classifier.covariance,
            "counts": classifier.counts,
            "settings": classifier.settings,
        },
        "target_log_f0": target_f0,
        "summary": overall,
        "by_pair": by_pair,
        "check": check,
        "per_utt": {k: _with_paths(r, pairs[order[k]]) for k, r in per_utt.items()},
        "failed": failed,
        "failed_train": dict(failures.by_kind["train"]),
    }
    if args.json:
        write_json_atomic(args.json, result)
    if args.update and per_utt:
        update_metrics_file(args.update, set_name=args.set_name, system=args.system,
                            result=result)

    print(format_conversion_table(by_pair, overall))
    if check is not None:
        print(f"classifier check: {check['correct']}/{check['count']} recordings of "
              f"{', '.join(check_dirs)} classified correctly"
              + (f" (accuracy {check['accuracy']:.4f})" if check["count"] else ""))
    print(f"{len(per_utt)} items evaluated, {len(failed)} failed")
    if failures.total:
        _log(f"{failures.total} failed:")
        for kind, entries in failures.by_kind.items():
            for key, reason in entries.items():
                print(f"  {kind} {key}: {reason}", file=sys.stderr)
        first_kind, first = next((k, e) for k, e in failures.by_kind.items() if e)
        key, reason = next(iter(first.items()))
        raise RuntimeError(f"{failures.total} failed (of {len(pairs)} items, "
                           f"{len(train_items)} training and {len(check_items)} check "
                           f"utterances); first: {first_kind} {key}: {reason}")
    return 0


def _with_paths(result: dict, pair: PairItem) -> dict:
    out = dict(result)
    out["converted"] = pair.converted
    out["source"] = pair.source
    if pair.target_reference:
        out["target_reference"] = pair.target_reference
    return out
