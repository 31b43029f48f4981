"""The voice conversion recipe (egs/mini/vc1) end to end with its debug config, in a scratch copy."""
import json
import shutil
import subprocess

import pytest
import soundfile as sf
from recipe_helpers import ROOT, make_scratch_recipe, run_recipe


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_debug_recipe_converts_every_pair_and_scores_it(tmp_path):
    work = make_scratch_recipe(tmp_path, "vc1")
    res = run_recipe(work, "--debug", "true", "--nj", "2", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = work / "exp" / "ddsp_vc_debug"
    voices = ["f3", "kal", "ked", "slt"]
    pairs = [(s, t) for s in voices for t in voices if s != t]
    for s, t in pairs:
        wavs = list((exp / "wav" / f"{s}_to_{t}").glob("*.wav"))
        assert len(wavs) == 1, (s, t)  # one eval sentence per voice in the debug data
        assert sf.info(str(wavs[0])).samplerate == 16000
    doc = json.loads((exp / "eval" / "conversion.json").read_text())
    assert doc["failed"] == {}
    assert set(doc["by_pair"]) == {f"{s}->{t}" for s, t in pairs}
    for r in doc["per_utt"].values():
        # every item has its parallel reference: the MCD of converted and of source is there
        assert r["mcd_db"] > 0 and r["mcd_source_db"] > 0
        assert r["predicted"] in voices
    summary = json.loads((exp / "metrics.json").read_text())["sets"]["speech_eval"]["systems"]["ddsp_vc"]["summary"]
    for key in ("mcd_db", "mcd_source_db", "mcd_reduction", "accuracy", "f0_track_corr"):
        assert key in summary, key
    # Praat f0 for the dump (so for training, statistics and conversion) and the f0 tracking.
    feats = (work / "dump_debug" / "speech_train" / "feats.yaml").read_text()
    assert "f0_method: praat_ac" in feats
    assert doc["settings"]["f0_track_method"] == "praat_ac" and doc["settings"]["f0_method"] == "harvest"
    # Vocal tract length normalisation: formant statistics per voice, a warp per conversion
    # (above 1 from the male diphone voices to the female ones), passed on to the f0 scoring.
    stats = json.loads((work / "dump_debug" / "speech_train" / "stats.json").read_text())["speakers"]
    assert all(len(stats[v]["formants"]["median_hz"]) == 3 for v in voices)
    alpha = json.loads((exp / "wav" / "kal_to_slt" / "convert.json").read_text())["utterances"]
    assert all(0.8 <= e["vtln_alpha"] <= 1.25 for e in alpha.values())
    assert all(len(line.split()) == 7 for line in (exp / "eval" / "pairs.txt").read_text().splitlines())
    # Rerunning the conversion stage skips what is there.
    res = run_recipe(work, "--debug", "true", "--stage", "4", "--stop_stage", "4", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stderr[-3000:]
    log = (exp / "log" / "convert_kal_to_slt.log").read_text()
    assert "0 written to slt, 1 already there" in log


def test_help_and_shellcheck(tmp_path):
    work = make_scratch_recipe(tmp_path, "vc1")
    res = subprocess.run(["bash", str(work / "run.sh"), "--help"], cwd=work, capture_output=True, text=True)
    assert res.returncode == 0 and "--stop_stage" in res.stdout + res.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    res = subprocess.run(["shellcheck", "-x", "run.sh"], cwd=ROOT / "egs/mini/vc1", capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
