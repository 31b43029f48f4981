"""The timbre transfer recipe (egs/mini/tt1) end to end with its debug config, in a scratch copy."""
import json
import shutil
import subprocess

import pytest
from recipe_helpers import ROOT, make_scratch_recipe, run_recipe


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_debug_recipe_transfers_voices_and_instruments(tmp_path):
    work = make_scratch_recipe(tmp_path, "tt1")
    res = run_recipe(work, "--debug", "true", "--nj", "2", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = work / "exp" / "ddsp_tt_debug"
    instruments = ["cello", "flute", "trumpet", "violin"]
    sources = instruments + ["f3", "kal", "ked", "slt"]
    pairs = {f"{s}->{t}" for s in sources for t in instruments if s != t}
    # scored per source domain: instruments with the model's analysis, voices with Praat in
    # a voice's range (also how convert analysed them), the output's range moved by the shift
    docs = {d: json.loads((exp / "eval" / f"transfer_{d}.json").read_text()) for d in ("music", "speech")}
    assert docs["speech"]["settings"]["f0_track_method"] == "praat_ac"
    assert docs["speech"]["settings"]["f0_track_range"] == [60.0, 500.0]
    assert docs["speech"]["settings"]["shift_f0_range"] and not docs["music"]["settings"]["shift_f0_range"]
    assert all(d["failed"] == {} for d in docs.values())
    assert set(docs["music"]["by_pair"]) | set(docs["speech"]["by_pair"]) == pairs
    assert all(p.split("->")[0] in ("f3", "kal", "ked", "slt") for p in docs["speech"]["by_pair"])
    settings = json.loads((exp / "wav" / "kal_to_violin" / "convert.json").read_text())["settings"]
    assert (settings["f0_method"], settings["f0_min"], settings["f0_max"]) == ("praat_ac", 60.0, 500.0)
    per_utt = {**docs["music"]["per_utt"], **docs["speech"]["per_utt"]}
    for key, r in per_utt.items():
        assert r["mcd_db"] is None  # no parallel reference in timbre transfer
        # the output follows the input's melody moved by whole octaves (fold)
        assert r["f0_track_corr"] > 0.8, key
    # convert.json records the octaves each output was moved by; the pairs file carries them
    lines = (exp / "eval" / "pairs.txt").read_text().splitlines()
    assert len(lines) == len(per_utt)
    assert all(float(line.split()[6]) % 12 == pytest.approx(0, abs=1e-3) or
               float(line.split()[6]) % 12 == pytest.approx(12, abs=1e-3) for line in lines)


def test_help_and_shellcheck(tmp_path):
    work = make_scratch_recipe(tmp_path, "tt1")
    res = subprocess.run(["bash", str(work / "run.sh"), "--help"], cwd=work, capture_output=True, text=True)
    assert res.returncode == 0 and "--sources" in res.stdout + res.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    res = subprocess.run(["shellcheck", "-x", "run.sh"], cwd=ROOT / "egs/mini/tt1", capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
