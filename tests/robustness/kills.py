"""Kill scenarios shared by test_kills.py and benchmarks/robustness_report.py (which
imports this file by path).

Each scenario runs a `vocoder` command as a subprocess through slow_cli.py (slow writes
and steps, so that a kill lands mid-write), SIGKILLs its process group at a random
(seeded) moment or at a chosen one, checks what is on disk, reruns the command and
compares the result with an uninterrupted run. They return plain dicts of what they saw;
the callers assert on them (tests) or count them (benchmark).

- :func:`train_kills`: `vocoder train` killed several times, resumed with `--resume`
  each time; every ``step_*.pt`` on disk must load with ``torch.load(weights_only=True)``
  after every kill, each resume must start at the newest checkpoint, and the final
  model must equal an uninterrupted run's at the same step.
- :func:`extract_kill`: `vocoder extract --nj 2` killed while job 2 runs (or at a
  random moment); the dump must not look complete, and the rerun must redo only the
  unfinished jobs and give the features of an uninterrupted run.
- :func:`synth_kill`: `vocoder synth` killed mid-batch (while a wav is being written);
  every wav under its final name must be complete, and the rerun must write only the
  missing ones and give the wavs of an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().with_name("slow_cli.py")
SR, HOP = 16000, 80
STREAMS = "f0,vuv,loudness,mfcc"
UTTS = (("spkA_u1", 120.0, 0.5), ("spkA_u2", 135.0, 0.4), ("spkA_u3", 150.0, 0.5),
        ("spkB_u1", 200.0, 0.4), ("spkB_u2", 215.0, 0.5), ("spkB_u3", 230.0, 0.4))
MODEL = {"name": "ddsp", "n_harmonics": 16, "n_noise_bands": 17, "hidden_size": 32, "gru_size": 32,
         "mlp_layers": 1, "z_dim": 4, "n_mfcc": 12, "encoder_gru_size": 16, "speakers": "auto",
         "speaker_dim": 8, "reverb": True, "reverb_duration_s": 0.05}
TRAIN = {"max_steps": 24, "batch_size": 2, "crop_seconds": 0.1, "fft_sizes": [256, 128, 64],
         "warmup_steps": 1, "checkpoint_interval": 2, "keep_last": 3, "log_interval": 1000,
         "valid_interval": 10 ** 6, "audio_interval": 10 ** 6, "amp": False}
_RESUMED = re.compile(r"resumed from (\S+) at step (\d+)")


# ----------------------------------------------------------------------------- helpers

def tone(f0: float, seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 3 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, int(0.45 * SR / f0)))
    x = 0.5 * x / np.abs(x).max() + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)
    return x.astype(np.float32)


def make_data(root: Path) -> Path:
    """A Kaldi data dir of the UTTS tones (two speakers)."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for i, (utt, f0, sec) in enumerate(UTTS):
        sf.write(root / f"{utt}.wav", tone(f0, sec, seed=i), SR)
    (data / "wav.scp").write_text("".join(f"{u} {root / u}.wav\n" for u, _, _ in UTTS))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u, _, _ in UTTS))
    spks = sorted({u.split("_")[0] for u, _, _ in UTTS})
    (data / "spk2utt").write_text("".join(
        f"{s} {' '.join(u for u, _, _ in UTTS if u.startswith(s + '_'))}\n" for s in spks))
    return data


def vocoder_here(*args) -> tuple[int, str]:
    """The command in this process on one thread; (status, stderr)."""
    import torch

    from vocoder.cli.main import main

    err, threads = io.StringIO(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stderr(err):
            rc = main([str(a) for a in args])
    finally:
        torch.set_num_threads(threads)
    return rc, err.getvalue()


def make_dump(root: Path) -> Path:
    data = make_data(root)
    rc, err = vocoder_here("extract", data, root / "dump", "--streams", STREAMS)
    assert rc == 0, err
    return root / "dump"


def write_config(path: Path, **train) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "features": {"sample_rate": SR, "hop_length": HOP},
                                    "model": MODEL, "train": {**TRAIN, **train}}))
    return path


def make_checkpoint(root: Path, dump: Path) -> Path:
    """A tiny model trained for 2 steps: EXP dir."""
    conf = write_config(root / "conf_ckpt.yaml", max_steps=2)
    rc, err = vocoder_here("train", "--config", conf, "--train-dump", dump, "--exp", root / "exp_ckpt",
                           "--device", "cpu", "--no-progress")
    assert rc == 0, err
    return root / "exp_ckpt"


def _env(**slow) -> dict:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
            **{k: str(v) for k, v in slow.items()}}


def start(args, *, log: Path, **slow) -> subprocess.Popen:
    """``vocoder ARGS`` through slow_cli.py in its own process group, stderr to ``log``."""
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, str(HARNESS), *map(str, args)], stdout=subprocess.DEVNULL,
                                stderr=err, env=_env(**slow), start_new_session=True)


def run(args, *, timeout: float = 300) -> subprocess.CompletedProcess:
    """``vocoder ARGS`` as a plain subprocess."""
    return subprocess.run([sys.executable, "-m", "vocoder.cli.main", *map(str, args)], capture_output=True,
                          text=True, env=_env(), timeout=timeout, check=False)


def kill(proc: subprocess.Popen) -> bool:
    """SIGKILL the process group (a job and its workers); False if it had already exited."""
    alive = proc.poll() is None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return alive


def wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll ``condition()`` every 5 ms until it holds (True) or the process ends (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError):
            if condition():
                return True
        if proc.poll() is not None:
            with contextlib.suppress(OSError):
                return bool(condition())
            return False
        time.sleep(0.005)
    return False


def temp_files(directory: Path, pattern: str) -> list[str]:
    """Names of write_atomic's temporary files for outputs named like ``pattern``."""
    return sorted(p.name for p in Path(directory).glob(f".{pattern}.*.tmp"))


def _nonempty_temp(directory: Path, pattern: str) -> bool:
    for p in Path(directory).glob(f".{pattern}.*.tmp"):
        with contextlib.suppress(OSError):
            if p.stat().st_size > 0:
                return True
    return False


def inspect_checkpoints(ckdir: Path) -> dict:
    """Every ``step_*.pt`` loaded with ``torch.load(weights_only=True)``; other files listed."""
    import torch

    from vocoder.training.checkpoint import latest_checkpoint, list_checkpoints

    out = {"steps": [], "bad": [], "temp": temp_files(ckdir, "step_*.pt"), "other": []}
    for p in list_checkpoints(ckdir):
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
            if int(state["step"]) != int(p.stem.split("_")[1]) or "model" not in state:
                raise ValueError("step or model missing")
            out["steps"].append(int(state["step"]))
        except Exception as exc:  # noqa: BLE001 - a checkpoint that does not load is what we look for
            out["bad"].append(f"{p.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    known = {p.name for p in list_checkpoints(ckdir)} | set(out["temp"])
    out["other"] = sorted(p.name for p in ckdir.iterdir() if p.name not in known) if ckdir.is_dir() else []
    newest = latest_checkpoint(ckdir)
    out["latest"] = int(newest.stem.split("_")[1]) if newest else None
    return out


def _model_state(exp: Path) -> dict:
    import torch

    from vocoder.training.checkpoint import latest_checkpoint

    return torch.load(latest_checkpoint(exp / "checkpoints"), map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- train

def train_kills(root: Path, dump: Path, *, kills: int = 4, seed: int = 0, write_s: float = 0.3,
                step_s: float = 0.02) -> dict:
    """`vocoder train` SIGKILLed ``kills`` times, resumed each time, then run to the end.

    Even-numbered kills wait until the run has written a checkpoint and the next one's
    temporary file holds data (a kill mid-write, after some progress); odd ones come
    0.1-1.5 s after the first step. Returns
    ``{"kills": [per kill: mode, killed, mid_write, checkpoints (inspect_checkpoints),
    resumed_at (step the next run resumed from, None: from scratch), survived],
    "final": {...}, "survived": n}``.
    """
    rng = random.Random(seed)
    conf = write_config(root / "conf.yaml")
    exp = root / "exp"
    ckdir = exp / "checkpoints"
    args = ["train", "--config", conf, "--train-dump", dump, "--exp", exp, "--device", "cpu", "--no-progress"]
    events = []
    for i in range(kills):
        started, log = root / f"started.{i}", root / f"train.{i}.log"
        proc = start(args + (["--resume"] if i else []), log=log, SLOW_WRITE_S=write_s, SLOW_STEP_S=step_s,
                     STARTED_FILE=started)
        event = {"mode": "mid-write" if i % 2 == 0 else "random"}
        if wait_for(started.exists, proc):
            if event["mode"] == "mid-write":
                wait_for(functools.partial(_progressed_and_writing, ckdir, _newest_step(ckdir)), proc, timeout=30)
                time.sleep(rng.uniform(0.0, 0.05))
            else:
                time.sleep(rng.uniform(0.1, 1.5))
        event["killed"] = kill(proc)
        event["checkpoints"] = inspect_checkpoints(ckdir)
        event["mid_write"] = bool(event["checkpoints"]["temp"])
        if i:  # where this run started
            events[-1]["resumed_at"] = _resumed_at(log.read_text())
        events.append(event)
    final = run(args + ["--resume"])
    events[-1]["resumed_at"] = _resumed_at(final.stderr) if events else None
    result = {"kills": events, "final": {"returncode": final.returncode,
                                         "error": final.stderr.strip().splitlines()[-1:] if final.returncode else []}}
    ref = run(["train", "--config", conf, "--train-dump", dump, "--exp", root / "exp_ref", "--device", "cpu",
               "--no-progress"])
    if final.returncode == 0 and ref.returncode == 0:
        summary = json.loads((exp / "train_summary.json").read_text())
        after = inspect_checkpoints(ckdir)
        a, b = _model_state(exp), _model_state(root / "exp_ref")
        result["final"].update(
            steps=summary["steps"], latest=after["latest"], checkpoints=after,
            temp_left=after["temp"], reference_steps=b["step"],
            equal_to_reference=a["step"] == b["step"] and all(
                bool((a["model"][k] == b["model"][k]).all()) for k in b["model"]))
    ok = result["final"].get("equal_to_reference", False) and result["final"].get("steps") == TRAIN["max_steps"]
    for e in events:
        c = e["checkpoints"]
        e["survived"] = bool(ok and e["killed"] and not c["bad"] and not c["other"]
                             and e.get("resumed_at") == c["latest"])
    result["survived"] = sum(e["survived"] for e in events)
    result["tried"] = sum(e["killed"] for e in events)
    return result


def _newest_step(ckdir: Path) -> int:
    steps = [int(m.group(1)) for p in (ckdir.iterdir() if ckdir.is_dir() else ())
             if (m := re.fullmatch(r"step_(\d+)\.pt", p.name))]
    return max(steps, default=0)


def _progressed_and_writing(ckdir: Path, first: int) -> bool:
    """A checkpoint newer than step ``first`` is complete and the next one is being written."""
    return _newest_step(ckdir) > first and _nonempty_temp(ckdir, "step_*.pt")


def _resumed_at(stderr: str) -> int | None:
    m = _RESUMED.search(stderr)
    return int(m.group(2)) if m else None


# ----------------------------------------------------------------------------- extract

def _job_files(arks: Path, job: int) -> dict[str, int]:
    """mtime (ns) of every file of one extract job."""
    return {p.name: p.stat().st_mtime_ns for p in sorted(arks.iterdir())
            if p.name.endswith(f".{job}") or f".{job}." in p.name}


def dump_values(dump: Path) -> dict:
    """``{stream: {utt: array}}`` of a feature dump."""
    from vocoder.data.features import FeatureDump

    d = FeatureDump(dump)
    return {s: {u: d.load(u, [s])[s] for u in d.utts} for s in d.streams}


def extract_kill(root: Path, *, seed: int = 0, when: str = "after-job-1", utt_s: float = 0.5) -> dict:
    """`vocoder extract --nj 2` SIGKILLed, then rerun; compared with an uninterrupted run.

    Job 2's utterances (every second one in sorted order: extract deals them out
    round-robin) are read only after job 1's completion marker
    appears, ``utt_s`` seconds each, so with ``when="after-job-1"`` the kill comes 0-0.3 s
    after that marker, while job 2 is running;
    ``when="random"`` kills 0.5-3.5 s after the start.
    """
    rng = random.Random(seed)
    data = make_data(root)
    dump, arks = root / "dump", root / "dump" / "arks"
    args = ["extract", data, dump, "--nj", 2, "--streams", STREAMS]
    proc = start(args, log=root / "extract.log", SLOW_UTTS=",".join(sorted(u for u, _, _ in UTTS)[1::2]), SLOW_UTT_S=utt_s,
                 SLOW_AFTER=arks / ".done.1")
    if when == "after-job-1":
        wait_for((arks / ".done.1").exists, proc)
        time.sleep(rng.uniform(0.0, 0.3))
    else:
        time.sleep(rng.uniform(0.5, 3.5))
    out = {"when": when, "killed": kill(proc)}
    done = sorted(j for j in (1, 2) if (arks / f".done.{j}").exists())
    out["done_before"] = done
    out["looks_complete"] = (dump / "feats.yaml").exists()  # killed after the end: must be whole
    early = dump_values(dump) if out["looks_complete"] else None
    before = {j: _job_files(arks, j) for j in done} if arks.is_dir() else {}
    rc, err = vocoder_here(*args)
    out["rerun_returncode"] = rc
    out["rerun_error"] = [x for x in err.splitlines() if ": error:" in x]
    if rc != 0:
        return out
    after = {j: _job_files(arks, j) for j in (1, 2)}
    out["kept_jobs"] = sorted(j for j in done if all(after[j].get(k) == t for k, t in before[j].items()))
    out["redone_jobs"] = sorted(j for j in (1, 2) if j not in out["kept_jobs"])
    rc, err = vocoder_here("extract", data, root / "dump_ref", "--nj", 1, "--streams", STREAMS)
    assert rc == 0, err
    got, want = dump_values(dump), dump_values(root / "dump_ref")
    out["utts"] = len(next(iter(got.values())))
    out["equal_to_reference"] = _same_dump(got, want)
    # a dump that looked complete when killed must have been complete
    out["complete_if_looking_so"] = early is None or _same_dump(early, want)
    out["survived"] = bool(out["killed"] and out["complete_if_looking_so"] and out["equal_to_reference"]
                           and out["kept_jobs"] == done)
    return out


def _same_dump(got: dict, want: dict) -> bool:
    return got.keys() == want.keys() and all(
        got[s].keys() == want[s].keys() and all(np.array_equal(got[s][u], want[s][u]) for u in want[s])
        for s in want)


# ----------------------------------------------------------------------------- synth

def _read_wavs(out: Path) -> dict:
    return {p.stem: sf.read(p, dtype="int16")[0] for p in sorted(out.glob("*.wav"))}


def synth_kill(root: Path, dump: Path, exp: Path, *, seed: int = 0, write_s: float = 0.4) -> dict:
    """`vocoder synth` SIGKILLed while writing a wav (after at least two are done), then
    rerun; every wav under its final name must be whole, and the rerun must write only the
    missing ones and match an uninterrupted run."""
    from vocoder.data.features import FeatureDump

    rng = random.Random(seed)
    out_dir = root / "wav"
    args = ["synth", "--checkpoint", exp, "--dump", dump, "--out", out_dir, "--device", "cpu"]
    proc = start(args, log=root / "synth.log", SLOW_WRITE_S=write_s)
    wait_for(lambda: len(list(out_dir.glob("*.wav"))) >= 2 and _nonempty_temp(out_dir, "*.wav"), proc)
    time.sleep(rng.uniform(0.0, 0.1))
    res = {"killed": kill(proc), "temp": temp_files(out_dir, "*.wav")}
    lengths = FeatureDump(dump).utt2num_samples
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("*.wav")}
    wavs = _read_wavs(out_dir)
    res["complete_before"] = sorted(wavs)
    res["truncated"] = sorted(u for u, x in wavs.items() if x.size != lengths[u])
    rc, err = vocoder_here(*args)
    res["rerun_returncode"] = rc
    m = re.search(r": (\d+) written", err)
    res["rerun_written"] = int(m.group(1)) if m else None
    res["kept"] = sorted(n for n, t in before.items() if (out_dir / n).stat().st_mtime_ns == t)
    res["temp_left"] = temp_files(out_dir, "*.wav")
    rc_ref, err_ref = vocoder_here("synth", "--checkpoint", exp, "--dump", dump, "--out", root / "wav_ref",
                                   "--device", "cpu")
    assert rc_ref == 0, err_ref
    got, want = _read_wavs(out_dir), _read_wavs(root / "wav_ref")
    res["utts"] = len(got)
    res["equal_to_reference"] = got.keys() == want.keys() and all(np.array_equal(got[u], want[u]) for u in want)
    res["survived"] = bool(res["killed"] and not res["truncated"] and rc == 0 and res["equal_to_reference"]
                           and len(res["kept"]) == len(before) and not res["temp_left"]
                           and res["rerun_written"] == len(want) - len(before))
    return res
