"""Disk full, unwritable outputs and non-finite training steps, through the `vocoder` command.

A write that fails must stop the command with one error line naming the file and the
cause (no traceback, non-zero exit) and leave nothing under a final name that looks
complete: no ``.done.J`` marker or ``feats.yaml`` in a dump, no ``step_*.pt`` that does
not load, no truncated wav, and no temporary file either.

A full disk is simulated with ``RLIMIT_FSIZE`` in the child process (writes past the
limit fail with EFBIG, "File too large"; SIGXFSZ is ignored so that they return an
error): it works as root, where ``chmod`` does not stop writes. The ``chmod 0o555``
cases run only as another user; an ``EACCES`` / ``ENOSPC`` raised in-process covers the
same paths as root.
"""
from __future__ import annotations

import errno
import json
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kills import (
    UTTS,
    _env,
    make_checkpoint,
    make_data,
    make_dump,
    vocoder_here,
    write_config,
)

from vocoder import losses, outputs
from vocoder.data.features import FeatureDump
from vocoder.outputs import OutputError
from vocoder.training.checkpoint import list_checkpoints, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    return make_dump(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def exp(tmp_path_factory, dump):
    return make_checkpoint(tmp_path_factory.mktemp("faults_ckpt"), dump)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def vocoder_limited(*args, max_file_bytes: int) -> subprocess.CompletedProcess:
    """`vocoder ARGS` in a child that cannot write files beyond ``max_file_bytes``."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write() instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run([sys.executable, "-m", "vocoder.cli.main", *map(str, args)], capture_output=True,
                          text=True, env=_env(), timeout=300, preexec_fn=limit, check=False)


def one_error_line(stderr: str, command: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [x for x in stderr.splitlines() if ": error:" in x]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"vocoder {command}: error: ")
    return lines[0]


def leftovers(directory: Path) -> list[str]:
    """Temporary files anywhere under ``directory``."""
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------- disk full

@pytest.mark.parametrize("nj", [1, 2])
def test_extract_disk_full(tmp_path, nj):
    data = make_data(tmp_path)
    dump = tmp_path / "dump"
    # the wav archive of a job outgrows 24 kB at its second utterance (16 bits, 0.4-0.5 s each)
    proc = vocoder_limited("extract", data, dump, "--nj", nj, "--streams", "f0,vuv,loudness,mfcc",
                           max_file_bytes=24_000)
    assert proc.returncode == 1
    line = one_error_line(proc.stderr, "extract")
    assert re.search(rf"{re.escape(str(dump / 'arks'))}/wav\.\d\.ark: cannot write job \d's archive "
                     r"\(File too large\)$", line), line
    arks = dump / "arks"
    assert not list(arks.glob(".done.*"))  # no job marked complete
    assert not (dump / "feats.yaml").exists()  # not a dump: FeatureDump refuses it
    with pytest.raises(FileNotFoundError, match="not a feature dump"):
        FeatureDump(dump)
    assert not list(dump.glob("*.scp")) and not list(arks.glob("*.ark")) and not list(arks.glob("*.scp"))
    assert leftovers(dump) == []
    rc, err = vocoder_here("extract", data, dump, "--nj", nj, "--streams", "f0,vuv,loudness,mfcc")
    assert rc == 0, err  # with room again, the rerun completes
    assert len(FeatureDump(dump).utts) == len(UTTS)


def test_train_disk_full_at_a_checkpoint(tmp_path, dump):
    conf = write_config(tmp_path / "conf.yaml", max_steps=4)
    exp = tmp_path / "exp"
    args = ["train", "--config", conf, "--train-dump", dump, "--exp", exp, "--device", "cpu", "--no-progress"]
    proc = vocoder_limited(*args, max_file_bytes=64_000)  # the config fits, a checkpoint (~250 kB) not
    assert proc.returncode == 1
    line = one_error_line(proc.stderr, "train")
    ckpt = exp / "checkpoints" / "step_00000002.pt"
    assert line.endswith(f"{ckpt}: cannot write checkpoint (File too large)"), line
    assert list_checkpoints(exp / "checkpoints") == []  # nothing that looks like a checkpoint
    assert leftovers(exp) == [] and not (exp / "train_summary.json").exists()
    rc, err = vocoder_here(*args, "--resume")
    assert rc == 0, err
    assert [p.name for p in list_checkpoints(exp / "checkpoints")][-1] == "step_00000004.pt"


def test_synth_disk_full(tmp_path, dump, exp):
    out = tmp_path / "wav"
    proc = vocoder_limited("synth", "--checkpoint", exp, "--dump", dump, "--out", out, "--device", "cpu",
                           max_file_bytes=8_000)  # each wav is 13-16 kB
    assert proc.returncode == 1
    line = one_error_line(proc.stderr, "synth")
    assert line.endswith(f"{out / UTTS[0][0]}.wav: cannot write audio (File too large)"), line
    assert sorted(os.listdir(out)) == []  # no truncated wav, no temp file, no synth.json
    # the first failed write stops the batch: one error, not one per utterance
    assert proc.stderr.count("File too large") == 1, proc.stderr


def test_checkpoint_disk_full_in_process(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "step_00000001.pt"
    save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "step": 1})
    before = path.read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", no_space)
    with pytest.raises(OutputError, match=re.escape(f"{path}: cannot write checkpoint (No space left on device)")) as e:
        save_checkpoint(path, {"model": {"w": torch.ones(3)}, "step": 1})
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(path)
    assert path.read_bytes() == before  # the old checkpoint is untouched
    assert os.listdir(path.parent) == [path.name]  # the temporary file is gone


# ----------------------------------------------------------------------------- unwritable

@pytest.mark.skipif(IS_ROOT, reason="root writes through chmod 0o555; see the EACCES test below")
@pytest.mark.parametrize("command", ["extract", "train", "synth"])
def test_unwritable_output_dir(tmp_path, dump, exp, command):
    target = tmp_path / "out"
    target.mkdir(mode=0o555)
    try:
        if command == "extract":
            rc, err = vocoder_here("extract", make_data(tmp_path), target, "--streams", "loudness")
        elif command == "train":
            rc, err = vocoder_here("train", "--config", write_config(tmp_path / "c.yaml", max_steps=2),
                                   "--train-dump", dump, "--exp", target, "--device", "cpu", "--no-progress")
        else:
            rc, err = vocoder_here("synth", "--checkpoint", exp, "--dump", dump, "--out", target, "--device", "cpu")
        assert rc == 1
        line = one_error_line(err, command)
        assert str(target) in line and "Permission denied" in line, line
        assert os.listdir(target) == []
    finally:
        target.chmod(0o755)


def test_unwritable_output_in_process(tmp_path, dump, exp, monkeypatch):
    """As root: every write_atomic fails with EACCES, as in a read-only directory."""

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), dir)

    monkeypatch.setattr(outputs.tempfile, "mkstemp", denied)
    out = tmp_path / "wav"
    rc, err = vocoder_here("synth", "--checkpoint", exp, "--dump", dump, "--out", out, "--device", "cpu")
    assert rc == 1
    line = one_error_line(err, "synth")
    assert line.endswith(f"{out / UTTS[0][0]}.wav: cannot write audio (Permission denied)"), line
    rc, err = vocoder_here("train", "--config", write_config(tmp_path / "c.yaml", max_steps=2), "--train-dump",
                           dump, "--exp", tmp_path / "exp", "--device", "cpu", "--no-progress")
    assert rc == 1
    line = one_error_line(err, "train")
    assert line.endswith(f"{tmp_path / 'exp' / 'config.yaml'}: cannot write the resolved config "
                         "(Permission denied)"), line


def test_system_errors_are_one_line_with_the_path(tmp_path, dump):
    """An OSError carrying a file name reads ``PATH: reason``, not ``[Errno N] ...: 'PATH'``."""
    missing = tmp_path / "nowhere.yaml"
    rc, err = vocoder_here("extract", tmp_path, tmp_path / "d", "--config", missing)
    assert rc == 1
    assert one_error_line(err, "extract").endswith(f"{missing}: No such file or directory")


# ----------------------------------------------------------------------------- NaN / inf

def nan_loss_on(monkeypatch, calls):
    """The training loss is NaN on the given (1-based) calls."""
    count = {"n": 0}
    forward = losses.MultiScaleSpectralLoss.forward

    def patched(self, audio, target):
        count["n"] += 1
        loss = forward(self, audio, target)
        return loss * float("nan") if count["n"] in calls else loss

    monkeypatch.setattr(losses.MultiScaleSpectralLoss, "forward", patched)


def test_train_skips_nonfinite_steps_and_reports_them(tmp_path, dump, monkeypatch):
    nan_loss_on(monkeypatch, {2, 3})
    exp = tmp_path / "exp"
    rc, err = vocoder_here("train", "--config", write_config(tmp_path / "c.yaml", max_steps=4), "--train-dump",
                           dump, "--exp", exp, "--device", "cpu", "--no-progress")
    assert rc == 0, err
    skipped = [x for x in err.splitlines() if "non-finite loss/gradient" in x]
    assert len(skipped) == 2 and "(2 in a row, 2 in total)" in skipped[1], err
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["steps"] == 4 and summary["skipped_steps"] == 2


def test_train_stops_after_n_nonfinite_steps_in_a_row(tmp_path, dump, monkeypatch):
    nan_loss_on(monkeypatch, set(range(1, 100)))
    exp = tmp_path / "exp"
    rc, err = vocoder_here("train", "--config", write_config(tmp_path / "c.yaml", max_steps=10), "--train-dump",
                           dump, "--exp", exp, "--device", "cpu", "--no-progress",
                           "--set", "train.max_nonfinite_in_row=3")
    assert rc == 1
    line = one_error_line(err, "train")
    assert "non-finite loss/gradient at step 1 " in line and line.endswith("stopping after 3 in a row"), line
    assert err.count("non-finite loss/gradient") == 4  # three reports, then the error
    assert list_checkpoints(exp / "checkpoints") == []
