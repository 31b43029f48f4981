"""The CMU ARCTIC voice conversion recipe (egs/cmu_arctic/vc1) on a tiny stand-in corpus.

The fixture has the corpus's exact layout (cmu_us_<spk>_arctic/{wav/arctic_*.wav,
etc/txt.done.data}, 16 kHz wav) with a few sentences on both sides of the split
boundaries. Nothing is downloaded: the download tests put curl and wget stand-ins
first on PATH.
"""
import json
import shutil
import subprocess
import tarfile

import pytest
import soundfile as sf
from corpus_fixtures import ARCTIC_TEXTS, make_arctic
from recipe_helpers import ROOT, fake_network_tools, make_scratch_recipe, read_table, run_script

RECIPE = ROOT / "egs" / "cmu_arctic" / "vc1"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

EVAL = {"arctic_b0508", "arctic_b0539"}
DEV = {"arctic_b0476", "arctic_b0507"}
TRAIN = set(ARCTIC_TEXTS) - EVAL - DEV


def test_data_prep_split_ids_and_texts(tmp_path):
    corpus = make_arctic(tmp_path / "corpus", missing_wav={"rms": ["arctic_a0002"]})
    work = make_scratch_recipe(tmp_path, "vc1", "cmu_arctic")
    res = run_script(work, "--stage", "0", "--stop_stage", "0", "--corpus_dir", str(corpus),
                     "--speakers", "slt bdl rms")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rms: 1 prompt(s) without a wav, left out" in res.stderr
    sets = {}
    for name, sentences in (("train", TRAIN), ("dev", DEV), ("eval", EVAL)):
        d = work / "data" / name
        wav = read_table(d / "wav.scp")
        utt2spk = read_table(d / "utt2spk")
        text = read_table(d / "text")
        lines = (d / "wav.scp").read_text().splitlines()
        assert lines == sorted(lines, key=lambda s: s.encode())  # LC_ALL=C order
        expected = {f"{spk}_{sid}" for spk in ("bdl", "slt", "rms") for sid in sentences}
        if name == "train":
            expected.discard("rms_arctic_a0002")
        assert set(wav) == expected, name
        for utt, path in wav.items():
            spk, sid = utt.split("_", 1)
            assert utt2spk[utt] == spk
            assert path == str(corpus.resolve() / f"cmu_us_{spk}_arctic" / "wav" / f"{sid}.wav")
            assert text[utt] == ARCTIC_TEXTS[sid]
        assert set(read_table(d / "spk2utt")) == {"bdl", "slt", "rms"}
        sets[name] = {u.split("_", 1)[1] for u in wav}
    # split by sentence: nothing of dev or eval is trained on; eval is parallel
    assert not sets["train"] & (sets["eval"] | sets["dev"])
    assert sets["eval"] == EVAL and sets["dev"] == DEV
    # a voice that is not there: the error names the missing dir
    res = run_script(work, "--stage", "0", "--stop_stage", "0", "--corpus_dir", str(corpus),
                     "--speakers", "bdl clb")
    assert res.returncode != 0 and "cmu_us_clb_arctic not found" in res.stderr


def test_data_prep_rejects_a_malformed_prompt_file(tmp_path):
    corpus = make_arctic(tmp_path / "corpus", speakers=("bdl",))
    prompts = corpus / "cmu_us_bdl_arctic" / "etc" / "txt.done.data"
    prompts.write_text(prompts.read_text() + "arctic_b0600 no parentheses\n")
    res = subprocess.run(["bash", str(RECIPE / "local" / "data_prep.sh"), str(corpus), str(tmp_path / "data"), "bdl"],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert f"{prompts}:8: expected ( arctic_a0001" in res.stderr


def test_download_stage_without_network_says_how_to_download_by_hand(tmp_path):
    bindir = fake_network_tools(tmp_path)
    work = make_scratch_recipe(tmp_path, "vc1", "cmu_arctic")
    downloads = tmp_path / "downloads"
    res = run_script(work, "--stage", "-1", "--stop_stage", "-1", "--download_dir", str(downloads),
                     "--speakers", "bdl", path_prefix=bindir)
    assert res.returncode != 0
    archive = downloads / "cmu_us_bdl_arctic-0.95-release.tar.bz2"
    assert "http://festvox.org/cmu_arctic/packed/cmu_us_bdl_arctic-0.95-release.tar.bz2" in res.stderr
    assert f"download it by hand (from http://festvox.org/cmu_arctic/) and put it at {archive}" in res.stderr
    # it tried (resumably) through the stand-in and fetched nothing
    calls = (bindir / "calls").read_text()
    assert calls.startswith("curl ") and "--continue-at -" in calls
    assert not archive.exists() and not (downloads / "cmu_us_bdl_arctic").exists()


def test_download_stage_takes_tarballs_put_there_by_hand(tmp_path):
    bindir = fake_network_tools(tmp_path)
    staging = make_arctic(tmp_path / "staging", speakers=("bdl", "slt"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for spk in ("bdl", "slt"):
        with tarfile.open(downloads / f"cmu_us_{spk}_arctic-0.95-release.tar.bz2", "w:bz2") as tar:
            tar.add(staging / f"cmu_us_{spk}_arctic", arcname=f"cmu_us_{spk}_arctic")
    work = make_scratch_recipe(tmp_path, "vc1", "cmu_arctic")
    args = ("--stop_stage", "0", "--download_dir", str(downloads), "--speakers", "bdl slt")
    res = run_script(work, *args, path_prefix=bindir)
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (bindir / "calls").exists()  # no network tool was run
    assert "no checksum known for cmu_us_bdl_arctic-0.95-release.tar.bz2" in res.stderr
    assert (downloads / "cmu_us_slt_arctic" / "etc" / "txt.done.data").is_file()
    assert len(read_table(work / "data" / "eval" / "wav.scp")) == 4
    res = run_script(work, *args, path_prefix=bindir)  # unpacked already: skipped
    assert res.returncode == 0 and "cmu_us_bdl_arctic is there; skipping bdl" in res.stderr
    # The unversioned tarball has a known SHA-256, which a stand-in archive does not match.
    shutil.copy(downloads / "cmu_us_bdl_arctic-0.95-release.tar.bz2", downloads / "cmu_us_rms_arctic.tar.bz2")
    res = run_script(work, "--stage", "-1", "--stop_stage", "-1", "--download_dir", str(downloads),
                     "--speakers", "rms", "--arctic_version", "none", path_prefix=bindir)
    assert res.returncode != 0
    assert "cmu_us_rms_arctic.tar.bz2 is there but fails the check: sha256 mismatch (expected c6dc1123" in res.stderr
    assert not (bindir / "calls").exists()


@pytest.mark.slow  # the same stages as egs/mini/vc1, whose debug run is in the fast set
def test_debug_recipe_converts_every_pair_and_scores_it(tmp_path):
    corpus = make_arctic(tmp_path / "corpus")
    work = make_scratch_recipe(tmp_path, "vc1", "cmu_arctic")
    res = run_script(work, "--stage", "0", "--corpus_dir", str(corpus), "--speakers", "bdl slt rms",
                     "--debug", "true", "--nj", "2", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # the debug subset: 3 train, 1 dev, 1 eval utterance per voice; the eval one parallel
    assert set(read_table(work / "data_debug" / "eval" / "wav.scp")) == {
        f"{spk}_arctic_b0508" for spk in ("bdl", "slt", "rms")}
    assert len(read_table(work / "data_debug" / "train" / "wav.scp")) == 9
    exp = work / "exp" / "ddsp_vc_debug"
    voices = ["bdl", "rms", "slt"]
    pairs = [(s, t) for s in voices for t in voices if s != t]
    for s, t in pairs:
        wavs = list((exp / "wav" / f"{s}_to_{t}").glob("*.wav"))
        assert [w.name for w in wavs] == [f"{s}_arctic_b0508.wav"], (s, t)
        assert sf.info(str(wavs[0])).samplerate == 16000
    assert len((exp / "eval" / "pairs.txt").read_text().splitlines()) == len(pairs)
    doc = json.loads((exp / "eval" / "conversion.json").read_text())
    assert doc["failed"] == {}
    assert set(doc["by_pair"]) == {f"{s}->{t}" for s, t in pairs}
    for r in doc["per_utt"].values():
        assert r["mcd_db"] > 0 and r["mcd_source_db"] > 0  # each had its parallel reference
    summary = json.loads((exp / "metrics.json").read_text())["sets"]["eval"]["systems"]["ddsp_vc"]["summary"]
    for key in ("mcd_db", "mcd_source_db", "mcd_reduction", "accuracy", "f0_track_corr"):
        assert key in summary, key
    # Rerunning the conversion stage skips what is there.
    res = run_script(work, "--debug", "true", "--stage", "4", "--stop_stage", "4", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "0 written to slt, 1 already there" in (exp / "log" / "convert_bdl_to_slt.log").read_text()


def test_help_and_shellcheck(tmp_path):
    work = make_scratch_recipe(tmp_path, "vc1", "cmu_arctic")
    res = run_script(work, "--help")
    assert res.returncode == 0 and "--download_dir" in res.stdout and "--speakers" in res.stdout
    res = run_script(work, "--no_such_option", "1")
    assert res.returncode != 0 and "no_such_option" in res.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    for script in [RECIPE / "run.sh", *sorted((ROOT / "egs" / "cmu_arctic" / "local").glob("*.sh"))]:
        res = subprocess.run(["shellcheck", "-x", script.name], cwd=script.parent, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout
