"""The LJSpeech vocoder recipe (egs/ljspeech/voc1) on a tiny stand-in corpus.

The fixture has LJSpeech 1.1's exact layout (LJSpeech-1.1/{metadata.csv, wavs/LJ001-0001.wav,
README}; metadata.csv 'id|raw text|normalized text' without a header; 22.05 kHz 16-bit
mono wav) with 12 clips, and the recipe's --n_dev/--n_eval shrink the split (250/250 on
the real corpus) to fit it. Nothing is downloaded: the download tests put curl and wget
stand-ins first on PATH.
"""
import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import soundfile as sf
from corpus_fixtures import LJ_TEXTS, lj_ids, make_ljspeech
from recipe_helpers import ROOT, fake_network_tools, make_scratch_recipe, read_table, run_script

RECIPE = ROOT / "egs" / "ljspeech" / "voc1"
LOCAL = ROOT / "egs" / "ljspeech" / "local"
URL = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

# curl that "serves" $SERVE: writes it (or, with --continue-at -, the rest of it) to --output.
SERVING_CURL = """#!/usr/bin/env bash
echo "curl $*" >> "$CALLS"
out=""; resume=false
while [[ $# -gt 0 ]]; do
  case $1 in
    --output) out=$2; shift 2 ;;
    --continue-at) resume=true; shift 2 ;;
    *) shift ;;
  esac
done
if [[ $resume == true && -s $out ]]; then
  tail -c +$(( $(stat -c %s "$out") + 1 )) "$SERVE" >> "$out"
else
  cat "$SERVE" > "$out"
fi
"""


def lj_tarball(tmp_path: Path, archive: Path, n: int = 6) -> Path:
    """archive: a stand-in LJSpeech-1.1.tar.bz2 that unpacks to LJSpeech-1.1/ as the real one does."""
    staging = make_ljspeech(tmp_path / "staging", n)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(staging, arcname="LJSpeech-1.1")
    return archive


def run_prep(*args) -> subprocess.CompletedProcess:
    """bash local/data_prep.sh ARGS..., output captured."""
    return subprocess.run(["bash", str(LOCAL / "data_prep.sh"), *map(str, args)], check=False,
                          capture_output=True, text=True)


def sha256_list(tmp_path: Path, archive: Path) -> Path:
    sums = tmp_path / "checksums"
    sums.write_text(f"sha256 {hashlib.sha256(archive.read_bytes()).hexdigest()} LJSpeech-1.1.tar.bz2\n")
    return sums


def test_data_prep_split_order_texts_and_rate(tmp_path):
    ids = lj_ids(12)  # LJ001-0001 .. LJ003-0002, in metadata.csv order
    corpus = make_ljspeech(tmp_path, 12, missing_wav=("LJ001-0003",), extra_wav=("LJ009-0001",))
    work = make_scratch_recipe(tmp_path, "voc1", "ljspeech")
    res = run_script(work, "--stage", "0", "--stop_stage", "0", "--corpus_dir", str(corpus),
                     "--n_dev", "2", "--n_eval", "3")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 clip(s) of metadata.csv without a wav, left out" in res.stderr
    assert "1 wav(s) not listed in metadata.csv, left out" in res.stderr
    assert "warning" not in res.stderr
    # eval: the last 3 lines of metadata.csv; dev: the 2 before; train: the rest (one has no wav)
    expected = {"train": [u for u in ids[:7] if u != "LJ001-0003"], "dev": ids[7:9], "eval": ids[9:]}
    normalized = {u: LJ_TEXTS[i % len(LJ_TEXTS)][1] for i, u in enumerate(ids)}
    for name, utts in expected.items():
        d = work / "data" / name
        lines = (d / "wav.scp").read_text().splitlines()
        assert [line.split()[0] for line in lines] == utts, name  # metadata.csv order, = LC_ALL=C order
        wav = read_table(d / "wav.scp")
        for utt, path in wav.items():
            assert path == str(corpus.resolve() / "wavs" / f"{utt}.wav")
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert read_table(d / "utt2spk") == {u: "LJ" for u in utts}
        assert read_table(d / "spk2utt") == {"LJ": " ".join(utts)}
        assert read_table(d / "text") == {u: normalized[u] for u in utts}  # the normalized column
    assert read_table(work / "data" / "eval" / "text")["LJ003-0002"] == "Doctor Müller's report"

    # The defaults (250 dev, 250 eval) do not fit 12 clips: a clear error.
    res = run_script(work, "--stage", "0", "--stop_stage", "0", "--corpus_dir", str(corpus))
    assert res.returncode != 0
    assert "metadata.csv lists 12 clips: too few for 250 dev and 250 eval clips" in res.stderr

    # --text raw; a wav at another rate gives a warning, not an error.
    first = corpus / "wavs" / "LJ001-0001.wav"
    audio, _ = sf.read(str(first))
    sf.write(str(first), audio[::2], 11025, subtype="PCM_16")
    res = run_prep("--text", "raw", "--n_dev", "1", "--n_eval", "1", corpus, tmp_path / "d2")
    assert res.returncode == 0, res.stderr
    assert f"warning: {corpus.resolve()}/wavs/LJ001-0001.wav is 11025 Hz, not LJSpeech 1.1's 22050 Hz" in res.stderr
    assert read_table(tmp_path / "d2" / "train" / "text")["LJ001-0004"] == "Mr. Cobden's speech in 1843;"
    assert list(read_table(tmp_path / "d2" / "eval" / "wav.scp")) == ["LJ003-0002"]

    # A malformed or duplicated line of metadata.csv is named with its line number.
    meta = corpus / "metadata.csv"
    good = meta.read_text(encoding="utf-8")
    meta.write_text(good + "LJ004-0001 no separators\n", encoding="utf-8")
    res = run_prep(corpus, tmp_path / "d3")
    assert res.returncode != 0
    assert f"{corpus.resolve()}/metadata.csv:13: expected id|raw text|normalized text" in res.stderr
    meta.write_text(good + good.splitlines(keepends=True)[0], encoding="utf-8")
    res = run_prep(corpus, tmp_path / "d3")
    assert res.returncode != 0 and "metadata.csv:13: clip LJ001-0001 listed twice (also on line 1)" in res.stderr
    res = run_prep(tmp_path / "nowhere", tmp_path / "d3")
    assert res.returncode != 0 and "corpus directory" in res.stderr and "not found" in res.stderr


def test_download_stage_without_network_says_how_to_download_by_hand(tmp_path):
    bindir = fake_network_tools(tmp_path)
    work = make_scratch_recipe(tmp_path, "voc1", "ljspeech")
    downloads = tmp_path / "downloads"
    res = run_script(work, "--stage", "-1", "--stop_stage", "-1", "--download_dir", str(downloads), path_prefix=bindir)
    assert res.returncode != 0
    archive = downloads / "LJSpeech-1.1.tar.bz2"
    assert f"downloading {URL}" in res.stderr
    assert f"download it by hand (from https://keithito.com/LJ-Speech-Dataset/) and put it at {archive}" in res.stderr
    calls = (bindir / "calls").read_text()
    assert calls.startswith("curl ") and "--continue-at -" in calls and URL in calls  # resumable
    assert not archive.exists() and not (downloads / "LJSpeech-1.1").exists()


def test_download_resumes_a_partial_download_and_unpacks(tmp_path):
    served = lj_tarball(tmp_path, tmp_path / "served" / "LJSpeech-1.1.tar.bz2")
    data = served.read_bytes()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "curl").write_text(SERVING_CURL)
    (bindir / "curl").chmod(0o755)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    part = downloads / "LJSpeech-1.1.tar.bz2.part"
    part.write_bytes(data[: len(data) // 3])  # what an interrupted download left
    corpus = downloads / "LJSpeech-1.1"
    work = make_scratch_recipe(tmp_path, "voc1", "ljspeech")
    env = {"SERVE": str(served), "CALLS": str(tmp_path / "calls")}
    res = run_script(work, "--checksums", str(sha256_list(tmp_path, served)), "--url",
                     "http://example.invalid/lj.tar.bz2", str(downloads), str(corpus), script="local/download.sh",
                     path_prefix=bindir, **env)
    assert res.returncode == 0, res.stderr
    assert "resuming http://example.invalid/lj.tar.bz2" in res.stderr
    assert "--continue-at -" in (tmp_path / "calls").read_text()
    assert (downloads / "LJSpeech-1.1.tar.bz2").read_bytes() == data and not part.exists()
    assert (corpus / "metadata.csv").is_file() and len(list((corpus / "wavs").glob("*.wav"))) == 6
    assert (corpus / "README").is_file() and not Path(f"{corpus}.partial").exists()
    assert f"{corpus}: 6 wav files, 6 lines in metadata.csv" in res.stderr
    # Rerun: the corpus is there, nothing is fetched.
    (tmp_path / "calls").unlink()
    res = run_script(work, "--stage", "-1", "--stop_stage", "0", "--download_dir", str(downloads), "--n_dev", "1",
                     "--n_eval", "1", path_prefix=bindir, **env)
    assert res.returncode == 0, res.stderr
    assert "is there; nothing to download" in res.stderr and not (tmp_path / "calls").exists()
    assert len(read_table(work / "data" / "train" / "wav.scp")) == 4


def test_download_stage_checks_a_tarball_put_there_by_hand(tmp_path):
    bindir = fake_network_tools(tmp_path)
    downloads = tmp_path / "downloads"
    archive = lj_tarball(tmp_path, downloads / "LJSpeech-1.1.tar.bz2")
    work = make_scratch_recipe(tmp_path, "voc1", "ljspeech")
    # The stand-in does not match the real archive's SHA-256 (local/checksums): refused, nothing unpacked.
    res = run_script(work, "--stage", "-1", "--stop_stage", "-1", "--download_dir", str(downloads), path_prefix=bindir)
    assert res.returncode != 0
    assert ("LJSpeech-1.1.tar.bz2 is there but fails the check: sha256 mismatch "
            "(expected be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5") in res.stderr
    assert not (downloads / "LJSpeech-1.1").exists() and not (bindir / "calls").exists()
    # With a checksum list that knows it: checked and unpacked, no network tool run.
    corpus = tmp_path / "corpus" / "LJSpeech-1.1"
    res = run_script(work, "--checksums", str(sha256_list(tmp_path, archive)), str(downloads), str(corpus),
                     script="local/download.sh", path_prefix=bindir)
    assert res.returncode == 0, res.stderr
    assert "is there and passes the check; nothing to fetch" in res.stderr
    assert (corpus / "wavs" / "LJ001-0001.wav").is_file() and not (bindir / "calls").exists()
    # A half-made corpus dir is not overwritten.
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "README").write_text("x\n")
    res = run_script(work, str(downloads), str(tmp_path / "half"), script="local/download.sh", path_prefix=bindir)
    assert res.returncode != 0 and "exists but lacks metadata.csv or wavs/" in res.stderr


def test_debug_recipe_trains_synthesizes_and_scores(tmp_path):
    corpus = make_ljspeech(tmp_path, 12)
    work = make_scratch_recipe(tmp_path, "voc1", "ljspeech")
    res = run_script(work, "--stage", "0", "--corpus_dir", str(corpus), "--n_dev", "2", "--n_eval", "3",
                     "--debug", "true", "--nj", "1", "--device", "cpu", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # the debug subset: the first 4 train, 1 dev and 2 eval clips
    assert list(read_table(work / "data_debug" / "train" / "wav.scp")) == lj_ids(4)
    assert list(read_table(work / "data_debug" / "eval" / "wav.scp")) == ["LJ002-0005", "LJ003-0001"]
    dump = work / "dump_debug" / "mel_vocoder"
    assert "sample_rate: 22050" in (dump / "eval" / "feats.yaml").read_text()
    exp = work / "exp" / "mel_vocoder_debug"
    frames = dict(line.split() for line in (dump / "eval" / "utt2num_frames").read_text().splitlines())
    wavs = sorted((exp / "wav" / "eval").glob("*.wav"))
    assert [w.stem for w in wavs] == ["LJ002-0005", "LJ003-0001"]
    for w in wavs:  # from the mel alone: frames * 256 samples at 22.05 kHz
        info = sf.info(str(w))
        assert (info.samplerate, info.frames) == (22050, int(frames[w.stem]) * 256)
    systems = json.loads((exp / "metrics.json").read_text())["sets"]["eval"]["systems"]
    assert set(systems) == {"mel_ddsp", "world"}
    for name in systems:
        for key in ("mcd_db", "f0_rmse_cents", "vuv_error_rate", "mssd"):
            assert key in systems[name]["summary"], (name, key)
    assert (exp / "report" / "index.html").is_file()
    # Rerunning synthesis skips what is there; extraction and data prep are idempotent too.
    before = {w.name: w.stat().st_mtime_ns for w in wavs}
    res = run_script(work, "--debug", "true", "--stage", "1", "--stop_stage", "4", "--nj", "1", "--device", "cpu",
                     OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "already complete, skipping" in (dump / "train" / "log" / "extract.log").read_text()
    assert "already trained to step 10" in res.stderr
    assert "0 written, 0 failed" in (exp / "log" / "synth_eval.log").read_text()
    assert {w.name: w.stat().st_mtime_ns for w in wavs} == before


@pytest.mark.slow  # the same stages with the DDSP config
def test_debug_recipe_with_the_ddsp_model(tmp_path):
    corpus = make_ljspeech(tmp_path, 12)
    work = make_scratch_recipe(tmp_path, "voc1", "ljspeech")
    res = run_script(work, "--stage", "0", "--stop_stage", "5", "--corpus_dir", str(corpus), "--n_dev", "2",
                     "--n_eval", "3", "--debug", "true", "--model", "ddsp", "--nj", "1", "--device", "cpu",
                     OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = work / "exp" / "ddsp_speech_debug"
    assert (work / "dump_debug" / "ddsp_speech" / "eval" / "mfcc.scp").is_file()
    wavs = sorted((exp / "wav" / "eval").glob("*.wav"))
    assert [w.stem for w in wavs] == ["LJ002-0005", "LJ003-0001"]
    assert sf.info(str(wavs[0])).samplerate == 22050
    systems = json.loads((exp / "metrics.json").read_text())["sets"]["eval"]["systems"]
    assert set(systems) == {"ddsp", "world"}
    assert "mcd_db" in systems["ddsp"]["summary"]


@pytest.mark.parametrize("name", ["mel_vocoder", "ddsp_speech"])
def test_full_config_builds_and_shares_the_debug_analysis(name):
    """The GPU-sized configs (not run here) build, in the TTS conventions the debug run exercises."""
    import yaml

    from vocoder.data.features import FeatureConfig
    from vocoder.models import build_model
    from vocoder.training.trainer import TrainConfig

    full = yaml.safe_load((RECIPE / "conf" / f"{name}.yaml").read_text())
    debug = yaml.safe_load((RECIPE / "conf" / f"{name}.debug.yaml").read_text())
    assert full["features"] == debug["features"]
    feats = FeatureConfig.from_dict(full["features"])
    assert (feats.sample_rate, feats.hop_length) == (22050, 256)
    if "mel" in feats.streams:
        assert (feats.n_mels, feats.mel_f_min, feats.mel_f_max, feats.mel_log) == (80, 80, 7600, "log10")
    TrainConfig.from_dict(full["train"])
    model_args = {k: v for k, v in full["model"].items() if k != "name"}
    build_model(full["model"]["name"], sample_rate=feats.sample_rate, hop_length=feats.hop_length, **model_args)


def test_help_options_and_shellcheck(tmp_path):
    work = make_scratch_recipe(tmp_path, "voc1", "ljspeech")
    res = run_script(work, "--help")
    assert res.returncode == 0
    for opt in ("--download_dir", "--corpus_dir", "--model", "--conf", "--n_dev", "--n_eval"):
        assert opt in res.stdout, opt
    res = run_script(work, "--model", "wavenet", "--stage", "0")
    assert res.returncode != 0 and "--model takes mel or ddsp, not 'wavenet'" in res.stderr
    res = run_script(work, "--conf", "conf/none.yaml", "--stage", "0")
    assert res.returncode != 0 and "config conf/none.yaml not found" in res.stderr
    res = run_script(work, "--no_such_option", "1")
    assert res.returncode != 0 and "no_such_option" in res.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    for script in [RECIPE / "run.sh", *sorted(LOCAL.glob("*.sh"))]:
        res = subprocess.run(["shellcheck", "-x", script.name], cwd=script.parent, check=False,
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stdout
