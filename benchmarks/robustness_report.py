#!/usr/bin/env python
"""How `vocoder extract` and `vocoder evaluate` take bad input: a count, not a timing.

The cases are those of the test suite (tests/robustness/bad_inputs.py): empty, truncated
and corrupt WAV/FLAC files, a text file, a missing file, 8/24-bit, float, multichannel,
8/44.1/96 kHz files, NaN/inf samples, clipping, silence, noise, files shorter than a
frame, paths with spaces or bytes that are not UTF-8, f0 outside the searched range,
and data dirs with duplicate or unsorted keys or a utt2spk that does not match wav.scp.
Each audio case is put between two good utterances of a Kaldi data dir in a temp dir
and run through

    vocoder extract --nj 1 DATA DUMP
    vocoder evaluate DATA DATA --json EVAL.json   (the data against itself)

in this process (main(), one thread). Counted, per command and in total:

- tried: bad inputs run;
- handled: the item was processed correctly (extract: the expected number of frames,
  finite features; evaluate: metrics for it) or it failed alone with a one-line reason
  that names the file, as the case expects; for a data-dir case, the command stopped
  with one error line naming the table and line (or, for evaluate, which reads only
  wav.scp, processed every utterance);
- crashes: an exception out of main(), a traceback in the log, or an exit status other
  than the expected one (target 0);
- lost: good utterances of a batch that were not written (target 0);
- wrong: anything else (e.g. a reason that does not name the file).

Then the kill scenarios of tests/robustness/kills.py (SIGKILL of the command's process
group, seeded moments, slow writes so that kills land mid-write; see that file):

- train: `vocoder train` killed --train-kills times (half of them while a checkpoint is
  being written), resumed with `--resume` each time, then run to the end. A kill is
  survived when afterwards every `step_*.pt` loads with `torch.load(weights_only=True)`,
  the next run resumed from the newest one, and the final model equals an
  uninterrupted run's at the same step;
- extract: `vocoder extract --nj 2` killed while job 2 runs, and at random moments; survived
  when the dump did not look complete (no feats.yaml) unless it was, the rerun left the
  finished jobs' files untouched and the features equal an uninterrupted run's;
- synth: `vocoder synth` killed while writing a wav; survived when no truncated wav was
  under its final name and the rerun wrote only the missing ones, equal to an
  uninterrupted run's.

`kills_tried` counts the kills that hit a running command, `kills_survived` those
survived. `--no-kills` skips them (`kills_survived` null).

    python benchmarks/robustness_report.py [--train-kills 4] [--no-kills]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "robustness" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _load_cases():
    return _load("bad_inputs")


def run_kills(train_kills: int) -> dict:
    """The kill scenarios; per scenario: tried, survived and what was seen."""
    kills = _load("kills")
    out = {}
    with tempfile.TemporaryDirectory(prefix="robustness_kills_") as tmp:
        tmp = Path(tmp)
        dump = kills.make_dump(tmp / "shared")
        (tmp / "train").mkdir()
        r = kills.train_kills(tmp / "train", dump, kills=train_kills, seed=0)
        out["train"] = {"tried": r["tried"], "survived": r["survived"],
                        "mid_write": sum(k["mid_write"] for k in r["kills"] if k["killed"]),
                        "resumed_at": [k.get("resumed_at") for k in r["kills"]],
                        "final_step": r["final"].get("steps"), "equal_to_uninterrupted": r["final"].get(
                            "equal_to_reference", False)}
        runs = []
        for i, when in enumerate(("after-job-1", "random", "random")):
            (tmp / f"extract{i}").mkdir()
            runs.append(kills.extract_kill(tmp / f"extract{i}", seed=i, when=when))
        out["extract"] = {"tried": sum(e["killed"] for e in runs), "survived": sum(e.get("survived", False)
                                                                                 for e in runs),
                          "runs": [{k: e.get(k) for k in ("when", "killed", "done_before", "looks_complete",
                                                          "kept_jobs", "redone_jobs", "equal_to_reference")}
                                   for e in runs]}
        (tmp / "synth").mkdir()
        exp = kills.make_checkpoint(tmp / "synth", dump)
        s = kills.synth_kill(tmp / "synth", dump, exp, seed=0)
        out["synth"] = {"tried": int(s["killed"]), "survived": int(s["survived"]),
                        "complete_before": len(s["complete_before"]), "truncated": s["truncated"],
                        "rerun_written": s["rerun_written"], "equal_to_reference": s["equal_to_reference"]}
    return out


def run_cli(*args) -> tuple[object, str]:
    """(exit status or the exception that escaped main(), stderr)."""
    from vocoder.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main([os.fsdecode(a) for a in args])
        except BaseException as exc:  # noqa: BLE001 - a crash is what we count
            rc = exc
    return rc, err.getvalue()


def _names(reason: str, path: Path) -> bool:
    return "\n" not in reason and path.name in reason


def check_extract(bi, case, root: Path) -> tuple[str, int, str]:
    """(outcome, good items lost, detail) of one case through extract."""
    import kaldiio
    import numpy as np

    data, path = bi.batch_with(case, root)
    dump = root / "dump"
    rc, err = run_cli("extract", data, dump, "--nj", "1")
    frames = bi.read_table(dump / "utt2num_frames")
    lost = sum(u not in frames for u in bi.GOOD)
    if isinstance(rc, BaseException) or "Traceback" in err or rc != 0:
        return "crash", lost, f"exit {rc!r}: {err.strip().splitlines()[-1] if err.strip() else ''}"
    failed = bi.read_table(dump / "failed")
    if case.expect == "ok":
        if bi.ITEM not in frames or int(frames[bi.ITEM]) != case.frames:
            return "wrong", lost, f"frames {frames.get(bi.ITEM)} != {case.frames}; {failed.get(bi.ITEM)}"
        for stream in ("f0", "loudness", "mfcc", "mel"):
            if not np.isfinite(kaldiio.load_scp(str(dump / f"{stream}.scp"))[bi.ITEM]).all():
                return "wrong", lost, f"non-finite {stream}"
        return "handled", lost, "processed"
    reason = failed.get(bi.ITEM, "")
    if bi.ITEM in frames or not _names(reason, path) or not re.search(case.cause, reason):
        return "wrong", lost, f"reason {reason!r}"
    return "handled", lost, "failed cleanly"


def check_evaluate(bi, case, root: Path) -> tuple[str, int, str]:
    data, path = bi.batch_with(case, root)
    out = root / "eval.json"
    rc, err = run_cli("evaluate", data, data, "--json", out, "--f0-method", "dio")
    if isinstance(rc, BaseException) or "Traceback" in err or rc != 0 or not out.is_file():
        return "crash", len(bi.GOOD), f"exit {rc!r}: {err.strip().splitlines()[-1] if err.strip() else ''}"
    result = json.loads(out.read_text())
    per_utt, failed = result["per_utt"], result["failed"]
    lost = sum(u not in per_utt for u in bi.GOOD)
    if case.expect == "ok":
        ok = bi.ITEM in per_utt and bi.ITEM not in failed
        return ("handled" if ok else "wrong"), lost, "processed" if ok else f"reason {failed.get(bi.ITEM)!r}"
    reason = failed.get(bi.ITEM, "")
    if bi.ITEM in per_utt or not _names(reason, path) or not re.search(case.cause, reason):
        return "wrong", lost, f"reason {reason!r}"
    return "handled", lost, "failed cleanly"


def check_table(bi, name: str, extract_error: str, evaluate_error, root: Path) -> dict:
    data = bi.table_case(name, root)
    out = {}
    rc, err = run_cli("extract", data, root / "dump", "--nj", "1")
    errors = [line for line in err.splitlines() if ": error:" in line]
    if isinstance(rc, BaseException) or "Traceback" in err or rc not in (0, 1):
        out["extract"] = ("crash", 0, repr(rc))
    elif rc == 1 and len(errors) == 1 and re.search(extract_error, errors[0]):
        out["extract"] = ("handled", 0, "rejected: " + errors[0].split(": error: ", 1)[1])
    else:
        out["extract"] = ("wrong", 0, f"exit {rc}: {errors}")
    rc, err = run_cli("evaluate", data, data, "--json", root / "e.json", "--f0-method", "dio")
    errors = [line for line in err.splitlines() if ": error:" in line]
    if isinstance(rc, BaseException) or "Traceback" in err or rc not in (0, 1):
        out["evaluate"] = ("crash", 0, repr(rc))
    elif evaluate_error is None:
        done = json.loads((root / "e.json").read_text())["per_utt"] if rc == 0 else {}
        want = bi.read_table(data / "wav.scp")
        lost = sum(u not in done for u in want)
        out["evaluate"] = ("handled" if lost == 0 else "wrong", lost, "processed")
    elif rc == 1 and len(errors) == 1 and re.search(evaluate_error, errors[0]):
        out["evaluate"] = ("handled", 0, "rejected: " + errors[0].split(": error: ", 1)[1])
    else:
        out["evaluate"] = ("wrong", 0, f"exit {rc}: {errors}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-kills", type=int, default=4, help="kills of `vocoder train` (default 4)")
    parser.add_argument("--no-kills", action="store_true", help="skip the kill scenarios")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    bi = _load_cases()
    t0 = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="robustness_") as tmp:
        for i, case in enumerate(bi.CASES):
            for command, check in (("extract", check_extract), ("evaluate", check_evaluate)):
                root = Path(tmp) / f"{i:02d}_{command}"
                root.mkdir()
                outcome, lost, detail = check(bi, case, root)
                rows.append({"case": case.name, "command": command, "outcome": outcome, "lost": lost,
                             "detail": detail})
        for j, (name, extract_error, evaluate_error) in enumerate(bi.TABLE_CASES):
            root = Path(tmp) / f"table_{j}"
            root.mkdir()
            for command, (outcome, lost, detail) in check_table(bi, name, extract_error, evaluate_error,
                                                                root).items():
                rows.append({"case": name, "command": command, "outcome": outcome, "lost": lost, "detail": detail})
    for row in rows:
        detail = row["detail"].encode("utf-8", "backslashreplace").decode()
        print(f"robustness: {row['command']:8s} {row['case']:32s} {row['outcome']:8s} {detail[:110]}",
              file=sys.stderr)
    kills = None if args.no_kills else run_kills(args.train_kills)
    for name, k in (kills or {}).items():
        print(f"robustness: kills    {name:32s} {k['survived']}/{k['tried']} survived", file=sys.stderr)

    def count(rs):
        return {"tried": len(rs),
                "handled": sum(r["outcome"] == "handled" for r in rs),
                "crashes": sum(r["outcome"] == "crash" for r in rs),
                "wrong": sum(r["outcome"] == "wrong" for r in rs),
                "items_lost": sum(r["lost"] for r in rs)}

    result = {
        "benchmark": "robustness_report",
        "cases": len(bi.CASES) + len(bi.TABLE_CASES),
        **count(rows),
        "per_command": {c: count([r for r in rows if r["command"] == c]) for c in ("extract", "evaluate")},
        "kills_tried": sum(k["tried"] for k in kills.values()) if kills else None,
        "kills_survived": sum(k["survived"] for k in kills.values()) if kills else None,
        "kills": kills,
        "not_handled": [f"{r['command']}:{r['case']}: {r['detail']}" for r in rows if r["outcome"] != "handled"],
        "seconds": round(time.time() - t0, 1),
    }
    emit(result)
    survived_all = kills is None or result["kills_survived"] == result["kills_tried"]
    return 0 if result["crashes"] == 0 and result["items_lost"] == 0 and survived_all else 1


if __name__ == "__main__":
    sys.exit(main())
