#!/usr/bin/env python
"""Feature extraction throughput of `vocoder extract`, per f0 method, with 1 and 2 jobs.

The workload is the speech of the mini corpus's training split (egs/mini/corpus: four
voices, 16 kHz, about 1.5 s an utterance; 160 utterances, 231 s, or 2 per voice, 12 s,
with --quick), written as a Kaldi data dir in a temp dir. For each f0 method (harvest,
dio, praat_ac, praat_cc) the real command

    vocoder extract --f0-method METHOD --nj NJ DATA DUMP

runs as a subprocess with NJ = 1 and 2, into a fresh dump, with all the default streams
(f0, vuv, loudness, mfcc, mel and the audio). The figure is audio seconds per second of
wall time of the whole command (interpreter start and imports included, as a user sees
it), and the speedup is the ratio nj=2 / nj=1 of those. Every job is single-threaded
(OMP_NUM_THREADS=1 and friends; `vocoder extract` also starts its workers with one
thread each), so N jobs should keep N cores busy. The time the command reports for its
own work (reading the data dir to the merged tables, without the interpreter start) is
given too. A warm-up run on one utterance first loads the files into the page cache
and measures the start-up cost (interpreter, imports, one utterance), which both runs
pay once; `speedup_without_startup` is the ratio of the wall times less that cost,
i.e. roughly what a corpus much larger than this one would see.

    python benchmarks/extract_speed.py            # full run (a few minutes)
    python benchmarks/extract_speed.py --quick    # under 60 s

The speedup needs two idle cores: other processes on the machine lower it (the JSON
records the load average at start and end). The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "egs" / "mini" / "corpus"
METHODS = ("harvest", "dio", "praat_ac", "praat_cc")
TARGET_SPEEDUP = 1.7
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS")


def speech_utterances(per_speaker: int | None) -> list[tuple[str, str, Path]]:
    """(utt, speaker, flac) of the training split's speech, the first `per_speaker` of each voice."""
    out, count = [], {}
    for utt in sorted((CORPUS / "splits" / "train").read_text().split()):
        m = re.fullmatch(r"([A-Za-z0-9]+)_s\d+", utt)
        if not m:
            continue  # music
        spk = m.group(1)
        if per_speaker is not None and count.get(spk, 0) >= per_speaker:
            continue
        count[spk] = count.get(spk, 0) + 1
        out.append((utt, spk, CORPUS / "speech" / spk / f"{utt}.flac"))
    return out


def write_data_dir(d: Path, utts) -> None:
    d.mkdir(parents=True)
    (d / "wav.scp").write_text("".join(f"{u} {p}\n" for u, _, p in utts))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in utts))
    spk2utt: dict[str, list[str]] = {}
    for u, s, _ in utts:
        spk2utt.setdefault(s, []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))


def vocoder_command() -> list[str]:
    exe = Path(sys.executable).parent / "vocoder"
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    found = shutil.which("vocoder")
    return [found] if found else [sys.executable, "-m", "vocoder.cli.main"]


def run_extract(data: Path, dump: Path, *, method: str, nj: int, env: dict) -> dict:
    """Run `vocoder extract` once into a fresh dump; wall time and the command's own time."""
    shutil.rmtree(dump, ignore_errors=True)
    cmd = [*vocoder_command(), "extract", "--f0-method", method, "--nj", str(nj), str(data), str(dump)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    m = re.search(r"(\d+) utterances, (\d+) failed \(([\d.]+) s\)", proc.stderr)
    if not m or int(m.group(2)):
        raise RuntimeError(f"unexpected output of {' '.join(cmd)}:\n{proc.stderr[-2000:]}")
    return {"wall_s": wall, "command_s": float(m.group(3)), "utterances": int(m.group(1))}


def _ratio(x) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 utterances per voice (under 60 s)")
    p.add_argument("--per-speaker", type=int, help="utterances per voice (default all, 2 with --quick)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default {','.join(METHODS)})")
    args = p.parse_args()
    per_speaker = args.per_speaker or (2 if args.quick else None)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            p.error(f"unknown f0 method {m!r}; choose from {', '.join(METHODS)}")

    import soundfile as sf

    utts = speech_utterances(per_speaker)
    audio_s = sum(sf.info(str(path)).duration for _, _, path in utts)
    env = {**os.environ, **{k: "1" for k in THREAD_VARS}, "LC_ALL": "C"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    load_start = os.getloadavg()[0]
    print(f"extract_speed: {len(utts)} utterances, {audio_s:.1f} s of 16 kHz speech; "
          f"{os.cpu_count()} CPUs, load average {load_start:.2f}", file=sys.stderr)

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="extract_speed_") as tmp:
        tmp = Path(tmp)
        write_data_dir(tmp / "data", utts)
        write_data_dir(tmp / "warmup", utts[:1])
        warm = run_extract(tmp / "warmup", tmp / "dump", method="dio", nj=1, env=env)
        print(f"extract_speed: start-up (one utterance, dio): {warm['wall_s']:.2f} s wall", file=sys.stderr)
        for method in methods:
            row = {}
            for nj in (1, 2):
                r = run_extract(tmp / "data", tmp / "dump", method=method, nj=nj, env=env)
                assert r["utterances"] == len(utts)
                row[f"nj{nj}"] = {
                    "wall_s": round(r["wall_s"], 3),
                    "command_s": round(r["command_s"], 3),
                    "audio_s_per_s": round(audio_s / r["wall_s"], 2),
                }
            row["speedup"] = round(row["nj1"]["wall_s"] / row["nj2"]["wall_s"], 3)
            work1, work2 = row["nj1"]["wall_s"] - warm["wall_s"], row["nj2"]["wall_s"] - warm["wall_s"]
            # (None where the workload is too small for the difference to mean anything)
            row["speedup_without_startup"] = round(work1 / work2, 3) if min(work1, work2) > 0.5 else None
            row["speedup_command"] = round(row["nj1"]["command_s"] / max(row["nj2"]["command_s"], 1e-9), 3)
            results[method] = row
            print(f"extract_speed: {method:9s} nj=1 {row['nj1']['audio_s_per_s']:7.1f} audio-s/s "
                  f"({row['nj1']['wall_s']:.2f} s)   nj=2 {row['nj2']['audio_s_per_s']:7.1f} audio-s/s "
                  f"({row['nj2']['wall_s']:.2f} s)   speedup {row['speedup']:.2f}x "
                  f"(less start-up {_ratio(row['speedup_without_startup'])}, "
                  f"command's own time {row['speedup_command']:.2f}x)", file=sys.stderr)

    load_end = os.getloadavg()[0]
    speedups = [r["speedup"] for r in results.values()]
    result = {
        "benchmark": "extract_speed",
        "quick": bool(args.quick),
        "utterances": len(utts),
        "audio_seconds": round(audio_s, 2),
        "startup_wall_s": round(warm["wall_s"], 3),
        "methods": results,
        "min_speedup": min(speedups),
        "target_speedup": TARGET_SPEEDUP,
        "target_met": min(speedups) >= TARGET_SPEEDUP,
        "load_average_1min_start": load_start,
        "load_average_1min_end": load_end,
        **machine_info(1),
    }
    if load_start > 0.5 or load_end > 0.5:
        print(f"extract_speed: note: the machine was busy (load average {load_start:.2f} -> {load_end:.2f}); "
              "the speedups are lower than on idle cores", file=sys.stderr)
    emit(result)


if __name__ == "__main__":
    main()
