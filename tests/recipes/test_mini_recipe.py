"""The mini recipe end to end with the debug configs (what CI runs), in a scratch copy.

The recipe directory is recreated under tmp_path with links to the repository's
scripts, configs and corpus, so the run writes nothing inside the checkout.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from recipe_helpers import ROOT, run_recipe
from recipe_helpers import make_scratch_recipe as _make

RECIPE = ROOT / "egs" / "mini" / "voc1"


def make_scratch_recipe(tmp_path: Path) -> Path:
    return _make(tmp_path, "voc1")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_debug_recipe_runs_end_to_end_and_is_idempotent(tmp_path):
    work = make_scratch_recipe(tmp_path)
    res = run_recipe(work, "--debug", "true", "--nj", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = work / "exp" / "ddsp_debug"
    metrics = json.loads((exp / "metrics.json").read_text())
    for d in ("speech", "music"):
        systems = metrics["sets"][f"{d}_eval"]["systems"]
        assert set(systems) == {"ddsp", "world"}
        for name in ("ddsp", "world"):
            summary = systems[name]["summary"]
            for key in ("mcd_db", "f0_rmse_cents", "vuv_error_rate", "mssd", "loudness_l1_db"):
                assert key in summary, (d, name, key)
        wavs = sorted((exp / "wav" / f"{d}_eval").glob("*.wav"))
        assert len(wavs) == 4  # one eval utterance per voice / instrument
        assert list((exp / d / "checkpoints").glob("step_*.pt"))
    assert (exp / "report" / "index.html").is_file()
    for d in ("speech", "music"):
        assert "vocoder train: done at step" in (exp / d / "log" / "train.log").read_text()
    if len(os.sched_getaffinity(0)) >= 2:  # on a CPU of 2+ cores both models train at once
        assert "training the speech and music models at once" in res.stderr
    # Rerunning skips finished work: extraction and training say so, nothing is redone
    # (one model after the other this time: that path, too, must find the checkpoints).
    res = run_recipe(work, "--debug", "true", "--stage", "1", "--stop_stage", "3", "--train_parallel", "false")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "already complete" in (work / "dump_debug/speech_train/log/extract.log").read_text()
    assert res.stderr.count("nothing to do") == 2
    assert "at once" not in res.stderr

    # Trained at once, a failing model stops the stage with its log's end, and the other
    # one still finishes (its checkpoint is kept for the rerun).
    bad = tmp_path / "bad_music.debug.yaml"
    bad.write_text((work / "conf" / "ddsp_music.debug.yaml").read_text().replace("name: ddsp", "name: no_such_model"))
    res = run_recipe(work, "--debug", "true", "--stage", "3", "--stop_stage", "3", "--tag", "broken",
                     "--train_parallel", "true", "--conf_music", str(tmp_path / "bad_music.yaml"))
    assert res.returncode != 0
    assert "training the music model failed" in res.stderr and "no_such_model" in res.stderr
    assert "stage 3 failed for: music" in res.stderr
    assert list((work / "exp" / "broken" / "speech" / "checkpoints").glob("step_*.pt"))
    res = run_recipe(work, "--stage", "3", "--stop_stage", "3", "--train_parallel", "maybe")
    assert res.returncode != 0 and "--train_parallel must be auto, true or false" in res.stderr


def test_recipe_help_and_bad_option(tmp_path):
    work = make_scratch_recipe(tmp_path)
    res = subprocess.run(["bash", str(work / "run.sh"), "--help"], cwd=work, capture_output=True, text=True)
    assert res.returncode == 0 and "--stop_stage" in res.stdout + res.stderr
    res = subprocess.run(["bash", str(work / "run.sh"), "--no_such_option", "1"], cwd=work,
                         capture_output=True, text=True)
    assert res.returncode != 0 and "no_such_option" in res.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_recipe_scripts_pass_shellcheck():
    for script in [RECIPE / "run.sh", *sorted((ROOT / "egs" / "mini" / "local").glob("*.sh"))]:
        res = subprocess.run(["shellcheck", "-x", script.name], cwd=script.parent, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout
