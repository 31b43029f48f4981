"""The VCTK voice conversion recipe (egs/vctk/vc1) on a tiny stand-in corpus.

The fixture has VCTK 0.92's exact layout (wav48_silence_trimmed/<spk>/<spk>_NNN_mic{1,2}.flac
at 48 kHz, txt/<spk>/<spk>_NNN.txt, speaker-info.txt): the two shared elicitation
sentences 001-002 (eval), one newspaper sentence in the dev range (025) and three in
training (035-037) per speaker. Nothing is downloaded: the download tests put curl and
wget stand-ins first on PATH.
"""
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from corpus_fixtures import make_vctk, vctk_texts
from recipe_helpers import ROOT, fake_network_tools, make_scratch_recipe, read_table, run_script

RECIPE = ROOT / "egs" / "vctk" / "vc1"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def zip_tree(src: Path, archive: Path) -> None:
    """archive: the files under src at the zip's top level, as in VCTK-Corpus-0.92.zip."""
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(src.rglob("*")):
            z.write(p, p.relative_to(src).as_posix())


def test_data_prep_split_by_sentence_number_and_text(tmp_path):
    texts = {spk: vctk_texts(spk) for spk in ("p225", "p226", "p227")}
    texts["p226"]["036"] = texts["p225"]["025"]  # p225's dev sentence, read by p226 in training
    corpus = make_vctk(tmp_path / "VCTK-Corpus-0.92", speakers=("p225", "p226", "p227", "p228"), texts=texts,
                       no_transcripts=("p228",))
    (corpus / "wav48_silence_trimmed" / "p227" / "p227_037_mic1.flac").unlink()  # a missing recording
    work = make_scratch_recipe(tmp_path, "vc1", "vctk")
    res = run_script(work, "--stage", "0", "--stop_stage", "0", "--corpus_dir", str(corpus))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "p228 has no transcripts" in res.stderr  # like p315: skipped under --speakers all
    assert "p226: 1 training utterance(s) left out: their text is an eval/dev sentence" in res.stderr
    assert "p227: 1 transcript(s) without a mic1 recording, left out" in res.stderr
    expected = {
        "eval": {f"{s}_{n}" for s in texts for n in ("001", "002")},
        "dev": {f"{s}_025" for s in texts},
        "train": {f"{s}_{n}" for s in texts for n in ("035", "036", "037")} - {"p226_036", "p227_037"},
    }
    data = work / "data"
    for name, utts in expected.items():
        wav = read_table(data / name / "wav.scp")
        assert set(wav) == utts, name
        lines = (data / name / "wav.scp").read_text().splitlines()
        assert lines == sorted(lines, key=lambda s: s.encode())
        for utt, path in wav.items():
            spk = utt.split("_")[0]
            assert path == str(corpus.resolve() / "wav48_silence_trimmed" / spk / f"{utt}_mic1.flac")
            assert read_table(data / name / "utt2spk")[utt] == spk
            assert read_table(data / name / "text")[utt] == texts[spk][utt.split("_")[1]]
        assert read_table(data / name / "spk2gender") == {"p225": "f", "p226": "m", "p227": "m"}
    train_texts = set(read_table(data / "train" / "text").values())
    held_out = set(read_table(data / "eval" / "text").values()) | set(read_table(data / "dev" / "text").values())
    assert not train_texts & held_out  # no eval or dev sentence is trained on
    # mic2, and the errors that name what is missing
    prep = RECIPE / "local" / "data_prep.sh"
    res = subprocess.run(["bash", str(prep), "--mic", "mic2", str(corpus), str(tmp_path / "d2"), "p225"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert all(p.endswith("_mic2.flac") for p in read_table(tmp_path / "d2" / "eval" / "wav.scp").values())
    d3 = str(tmp_path / "d3")
    res = subprocess.run(["bash", str(prep), str(corpus), d3, "p228"], capture_output=True, text=True)
    assert res.returncode != 0 and f"{corpus.resolve()}/txt/p228 not found" in res.stderr
    res = subprocess.run(["bash", str(prep), str(tmp_path), d3, "all"], capture_output=True, text=True)
    assert res.returncode != 0 and f"{tmp_path.resolve()}/wav48_silence_trimmed not found" in res.stderr


def test_download_stage_without_network_says_how_to_download_by_hand(tmp_path):
    bindir = fake_network_tools(tmp_path)
    work = make_scratch_recipe(tmp_path, "vc1", "vctk")
    downloads = tmp_path / "downloads"
    res = run_script(work, "--stage", "-1", "--stop_stage", "-1", "--download_dir", str(downloads), path_prefix=bindir)
    assert res.returncode != 0
    archive = downloads / "VCTK-Corpus-0.92.zip"
    assert ("download it by hand (from https://datashare.ed.ac.uk/handle/10283/3443) "
            f"and put it at {archive}") in res.stderr
    calls = (bindir / "calls").read_text()
    assert "https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip" in calls
    assert not archive.exists() and not (downloads / "VCTK-Corpus-0.92").exists()


def test_download_stage_checks_and_unzips_an_archive_put_there_by_hand(tmp_path):
    bindir = fake_network_tools(tmp_path)
    staging = make_vctk(tmp_path / "staging", speakers=("p225",), mics=("mic1",))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    zip_tree(staging, downloads / "VCTK-Corpus-0.92.zip")
    work = make_scratch_recipe(tmp_path, "vc1", "vctk")
    # A stand-in zip does not match the corpus's SHA-256: refused, nothing unpacked.
    res = run_script(work, "--stage", "-1", "--stop_stage", "-1", "--download_dir", str(downloads), path_prefix=bindir)
    assert res.returncode != 0
    assert "VCTK-Corpus-0.92.zip is there but fails the check: sha256 mismatch (expected f96258be" in res.stderr
    assert not (downloads / "VCTK-Corpus-0.92").exists()
    # DataShare's whole-item zip holding it, with a checksum list that knows the stand-in.
    inner = downloads / "VCTK-Corpus-0.92.zip"
    digest = hashlib.sha256(inner.read_bytes()).hexdigest()
    with zipfile.ZipFile(downloads / "DS_10283_3443.zip", "w") as z:
        z.write(inner, "VCTK-Corpus-0.92.zip")
        z.writestr("license_text", "CC BY 4.0\n")
    inner.unlink()
    sums = tmp_path / "checksums"
    sums.write_text(f"sha256 {digest} VCTK-Corpus-0.92.zip\n")
    corpus = tmp_path / "corpus" / "VCTK-Corpus-0.92"
    res = run_script(work, "--checksums", str(sums), str(downloads), str(corpus), script="local/download.sh",
                     path_prefix=bindir)
    assert res.returncode == 0, res.stderr
    assert (corpus / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac").is_file()
    assert (corpus / "speaker-info.txt").is_file() and not Path(f"{corpus}.partial").exists()
    assert not (bindir / "calls").exists()  # no network tool was run
    res = run_script(work, "--stage", "-1", "--stop_stage", "0", "--corpus_dir", str(corpus), "--speakers", "p225",
                     path_prefix=bindir)
    assert res.returncode == 0 and "is there; nothing to download" in res.stderr, res.stderr
    assert len(read_table(work / "data" / "eval" / "wav.scp")) == 2


@pytest.mark.slow  # the same stages as egs/mini/vc1, whose debug run is in the fast set
def test_debug_recipe_converts_every_pair_and_scores_it(tmp_path):
    corpus = make_vctk(tmp_path / "VCTK-Corpus-0.92", mics=("mic1",))
    work = make_scratch_recipe(tmp_path, "vc1", "vctk")
    voices = ["p225", "p226", "p227"]
    res = run_script(work, "--stage", "0", "--corpus_dir", str(corpus), "--vc_speakers", " ".join(voices),
                     "--debug", "true", "--nj", "2", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert set(read_table(work / "data_debug" / "eval" / "wav.scp")) == {f"{s}_001" for s in voices}
    exp = work / "exp" / "ddsp_vc_debug"
    pairs = [(s, t) for s in voices for t in voices if s != t]
    for s, t in pairs:
        wavs = list((exp / "wav" / f"{s}_to_{t}").glob("*.wav"))
        assert [w.name for w in wavs] == [f"{s}_001.wav"], (s, t)
        assert sf.info(str(wavs[0])).samplerate == 24000  # 48 kHz FLAC in, the model's 24 kHz out
    doc = json.loads((exp / "eval" / "conversion.json").read_text())
    assert doc["failed"] == {}
    assert set(doc["by_pair"]) == {f"{s}->{t}" for s, t in pairs}
    for r in doc["per_utt"].values():
        assert r["mcd_db"] > 0 and r["mcd_source_db"] > 0
    summary = json.loads((exp / "metrics.json").read_text())["sets"]["eval"]["systems"]["ddsp_vc"]["summary"]
    for key in ("mcd_db", "mcd_source_db", "mcd_reduction", "accuracy", "f0_track_corr"):
        assert key in summary, key
    # A conversion speaker that was not prepared: a clear error before anything runs.
    res = run_script(work, "--debug", "true", "--stage", "4", "--vc_speakers", "p225 p999")
    assert res.returncode != 0 and "speaker(s) p999 of --vc_speakers not in data_debug/eval" in res.stderr


def test_help_and_shellcheck(tmp_path):
    work = make_scratch_recipe(tmp_path, "vc1", "vctk")
    res = run_script(work, "--help")
    assert res.returncode == 0 and "--download_dir" in res.stdout and "--mic" in res.stdout
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    for script in [RECIPE / "run.sh", *sorted((ROOT / "egs" / "vctk" / "local").glob("*.sh"))]:
        res = subprocess.run(["shellcheck", "-x", script.name], cwd=script.parent, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout
