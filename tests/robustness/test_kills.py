"""SIGKILL in the middle of `vocoder train`, `extract --nj 2` and `synth`, then rerun.

The scenarios are in kills.py (shared with benchmarks/robustness_report.py): the command
runs through slow_cli.py, whose slow writes make a kill land mid-write; what must hold:

- train: after every kill each ``step_*.pt`` loads with ``torch.load(weights_only=True)``
  (a checkpoint being written exists only as a hidden ``.step_*.pt.*.tmp``); ``--resume``
  starts at the newest one; the last run reaches ``max_steps`` with the weights of an
  uninterrupted run, and the temporary files are gone.
- extract: a dump killed mid-way has no ``feats.yaml`` (FeatureDump refuses it); the
  rerun leaves the finished job's files untouched, redoes the other, and the features
  equal an uninterrupted run's.
- synth: no truncated wav under its final name; the rerun writes only the missing wavs
  (the others keep their mtime) and the set equals an uninterrupted run's.
"""
from __future__ import annotations

import pytest
import torch
from kills import (
    TRAIN,
    UTTS,
    extract_kill,
    make_checkpoint,
    make_dump,
    synth_kill,
    train_kills,
)

pytestmark = pytest.mark.skipif(not hasattr(__import__("os"), "killpg"), reason="needs POSIX process groups")


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    return make_dump(tmp_path_factory.mktemp("kills"))


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_killed_four_times_resumes_to_the_same_model(dump, tmp_path):
    result = train_kills(tmp_path, dump, kills=4, seed=0)
    kills = result["kills"]
    assert all(k["killed"] for k in kills), kills
    # the even-numbered kills waited for a checkpoint's temporary file to hold data
    assert sum(k["mid_write"] for k in kills) >= 2, kills
    for k in kills:
        c = k["checkpoints"]
        assert c["bad"] == [] and c["other"] == [], c  # every step_*.pt loads; no stray file
        assert all(name.startswith(".step_") and name.endswith(".tmp") for name in c["temp"])
        assert k["resumed_at"] == c["latest"], k  # resumed from the newest complete checkpoint
    assert any(k["checkpoints"]["latest"] for k in kills)  # some progress survived a kill
    final = result["final"]
    assert final["returncode"] == 0, final
    assert final["steps"] == final["latest"] == final["reference_steps"] == TRAIN["max_steps"]
    assert final["equal_to_reference"], "resumed weights differ from an uninterrupted run"
    assert final["temp_left"] == []  # the killed writes' temporary files were removed
    assert result["survived"] == result["tried"] == 4


def test_extract_rerun_redoes_only_the_killed_job(tmp_path):
    r = extract_kill(tmp_path, seed=0, when="after-job-1")
    assert r["killed"], r
    assert r["done_before"] == [1], r  # job 2 (the slow utterances) was still running
    assert not r["looks_complete"]  # no feats.yaml: FeatureDump refuses a half-made dump
    assert r["rerun_returncode"] == 0 and r["rerun_error"] == [], r
    assert r["kept_jobs"] == [1] and r["redone_jobs"] == [2], r  # job 1's files untouched
    assert r["utts"] == len(UTTS) and r["equal_to_reference"], r
    assert r["survived"]


@pytest.mark.slow
def test_extract_killed_at_random_moments(tmp_path):
    for seed in range(3):
        r = extract_kill(tmp_path / str(seed), seed=seed, when="random")
        assert r["complete_if_looking_so"], r  # a dump with feats.yaml is whole
        assert r["rerun_returncode"] == 0 and r["equal_to_reference"], r
        assert set(r["kept_jobs"]) == set(r["done_before"]), r


def test_synth_rerun_writes_only_the_missing_wavs(dump, tmp_path):
    exp = make_checkpoint(tmp_path, dump)
    r = synth_kill(tmp_path, dump, exp, seed=0)
    assert r["killed"], r
    assert r["temp"], r  # killed while a wav was being written: it exists only as a temp file
    assert r["truncated"] == [], r  # every wav under its final name is whole
    assert len(r["complete_before"]) >= 2, r
    assert r["rerun_returncode"] == 0
    assert r["kept"] == [f"{u}.wav" for u in r["complete_before"]]  # not rewritten
    assert r["rerun_written"] == len(UTTS) - len(r["complete_before"]), r
    assert r["temp_left"] == []
    assert r["utts"] == len(UTTS) and r["equal_to_reference"], r
    assert r["survived"]
