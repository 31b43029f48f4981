"""The URMP timbre transfer recipe (egs/urmp/tt1) on a tiny stand-in corpus.

The fixture has URMP's exact layout (Dataset/NN_Title_inst.../ with AuSep_<track>_<inst>_
<NN>_<Title>.wav at 48 kHz, 24-bit mono, F0s_*.txt and Notes_*.txt annotations, the
AuMix, a score and a video stand-in, and Supplementary_Files/): five pieces of 20-28 s,
two of which share a title (08_Spring_fl_vn, 12_Spring_vn_vn_vc) as URMP's reused takes
do. Nothing is downloaded: URMP comes through a licence form, so the "download" stage
only takes an archive put there by hand (curl and wget stand-ins first on PATH show that
no network tool is run). Also here: `vocoder extract` over segments of a long recording
reads each segment by seeking, never the whole recording.
"""
import hashlib
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpus_fixtures import URMP_PIECES, make_urmp
from recipe_helpers import (
    ROOT,
    fake_network_tools,
    make_scratch_recipe,
    read_table,
    run_script,
)

RECIPE = ROOT / "egs" / "urmp" / "tt1"
LOCAL = ROOT / "egs" / "urmp" / "local"
PAGE = "https://labsites.rochester.edu/air/projects/URMP.html"
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The five-piece stand-in (read only): its Dataset/ dir."""
    return make_urmp(tmp_path_factory.mktemp("urmp"))


def load_data_prep():
    spec = importlib.util.spec_from_file_location("urmp_data_prep", LOCAL / "data_prep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def piece_of(recording: str) -> str:
    """violin_12_Spring_2 -> 12."""
    return recording.split("_")[1]


def f0_at(corpus: Path, wav: str, t: float) -> float:
    """The F0s annotation of an AuSep file at time t (nearest row)."""
    rows = np.loadtxt(Path(wav).with_name(Path(wav).name.replace("AuSep_", "F0s_").replace(".wav", ".txt")))
    return float(rows[np.argmin(np.abs(rows[:, 0] - t)), 1])


# --------------------------------------------------------------------------- data prep


@needs_bash
def test_data_prep_segments_split_by_piece_and_instrument_filter(tmp_path, corpus):
    work = make_scratch_recipe(tmp_path, "tt1", "urmp")
    res = run_script(work, "--stage", "0", "--stop_stage", "0", "--corpus_dir", str(corpus),
                     "--instruments", "vn vc")
    assert res.returncode == 0, res.stderr[-3000:]
    data = work / "data"
    splits = {}
    interior_cuts, cuts_in_rests = 0, 0
    for name in ("train", "dev", "eval"):
        d = data / name
        wav = read_table(d / "wav.scp")
        reco2dur = {k: float(v) for k, v in read_table(d / "reco2dur").items()}
        segments = {u: v.split() for u, v in read_table(d / "segments").items()}
        utt2spk = read_table(d / "utt2spk")
        for f in ("wav.scp", "segments", "utt2spk", "spk2utt", "reco2dur"):
            lines = (d / f).read_text().splitlines()
            assert lines == sorted(lines, key=lambda s: s.encode()), f  # LC_ALL=C order
        assert set(utt2spk) == set(segments)
        assert set(read_table(d / "spk2utt")) == {"violin", "cello"}  # instrument filter
        by_rec = {}
        for utt, (rec, start, end) in segments.items():
            start, end = float(start), float(end)
            by_rec.setdefault(rec, []).append((start, end))
            assert utt.startswith(rec + "_")
            assert 0 <= start < end <= reco2dur[rec] + 1e-9
            assert 4.0 - 1e-3 <= end - start <= 10.0 + 1e-3, (utt, start, end)
            instrument, number, title, track = rec.split("_")
            assert utt2spk[utt] == instrument
        for rec, path in wav.items():
            instrument, number, title, track = rec.split("_")
            code = {"violin": "vn", "cello": "vc"}[instrument]
            folder = next(f for f in URMP_PIECES if f.startswith(f"{number}_{title}_"))
            assert path == str(corpus.resolve() / folder / f"AuSep_{track}_{code}_{number}_{title}.wav")
            info = sf.info(path)
            assert reco2dur[rec] == pytest.approx(info.frames / info.samplerate, abs=1e-3)
            # the segments of a track: in order, not overlapping, covering it (no rest is
            # long enough in the fixture to drop a segment)
            segs = sorted(by_rec[rec])
            assert segs[0][0] == 0.0 and segs[-1][1] == pytest.approx(reco2dur[rec], abs=1e-3)
            for (_, b0), (a1, _) in itertools.pairwise(segs):
                assert b0 == a1
                interior_cuts += 1
                cuts_in_rests += f0_at(corpus, path, b0) == 0.0
        splits[name] = {piece_of(rec) for rec in wav}
    # split by piece, deterministic; the two Spring pieces (shared takes) together
    assert splits == {"eval": {"02", "11"}, "dev": {"01"}, "train": {"08", "12"}}
    assert interior_cuts > 10 and cuts_in_rests >= 0.8 * interior_cuts  # cut at rests
    assert (data / "pieces").read_text() == (
        "01_Jupiter_vn_vc dev 1:vn 2:vc\n02_Sonata_vn_vn eval 1:vn 2:vn\n08_Spring_fl_vn train 2:vn\n"
        "11_Maria_ob_vc eval 2:vc\n12_Spring_vn_vn_vc train 1:vn 2:vn 3:vc\n")
    assert "eval pieces: 02_Sonata_vn_vn 11_Maria_ob_vc" in res.stderr


def test_data_prep_options_and_errors(tmp_path, corpus):
    prep = [sys.executable, str(LOCAL / "data_prep.py")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run(*args):
        return subprocess.run([*prep, *args], check=False, capture_output=True, text=True, env=env)

    # the default instruments: flute is in one piece only (train), trumpet in none
    res = run(str(corpus), str(tmp_path / "d1"))
    assert res.returncode == 0, res.stderr
    assert "warning: no track of trumpet (tpt)" in res.stderr
    assert "flute (fl) is in too few pieces" in res.stderr
    assert set(read_table(tmp_path / "d1" / "train" / "spk2utt")) == {"violin", "cello", "flute"}
    # pieces given by number; a piece's title group follows it
    res = run("--instruments", "vn vc", "--eval_pieces", "8", "--dev_pieces", "1", str(corpus), str(tmp_path / "d2"))
    assert res.returncode == 0, res.stderr
    assert "12_Spring_vn_vn_vc share the title of piece 08 (and its takes): also in eval" in res.stderr
    pieces = {line.split()[0][:2]: line.split()[1] for line in (tmp_path / "d2" / "pieces").read_text().splitlines()}
    assert pieces == {"01": "dev", "02": "train", "08": "eval", "11": "train", "12": "eval"}
    res = run("--instruments", "vn vc", "--eval_pieces", "8", "--dev_pieces", "12", str(corpus), str(tmp_path / "d3"))
    assert res.returncode != 0 and "piece 12 is given for both eval and dev" in res.stderr
    res = run("--instruments", "vn xx", str(corpus), str(tmp_path / "d4"))
    assert res.returncode != 0 and "--instruments: unknown code(s) xx" in res.stderr
    res = run(str(corpus.parent), str(tmp_path / "d5"))  # the dir above Dataset/
    assert res.returncode != 0 and "no piece folders" in res.stderr
    assert not (tmp_path / "d3").exists() and not (tmp_path / "d4").exists()


def test_cut_track_lengths_and_rests():
    prep = load_data_prep()
    rng = np.random.default_rng(0)
    for _ in range(200):
        duration = float(rng.uniform(0.6, 400.0))
        rests = sorted(rng.uniform(0, duration, size=int(rng.integers(0, 60))).tolist())
        segs = prep.cut_track(duration, rests, min_s=4.0, max_s=10.0, target_s=7.0, snap_s=2.0)
        assert segs[0][0] == 0.0 and segs[-1][1] == duration
        assert all(b0 == a1 for (_, b0), (a1, _) in itertools.pairwise(segs))
        if duration > 10.0:
            assert all(4.0 - 1e-9 <= b - a <= 10.0 + 1e-9 for a, b in segs)
        else:
            assert segs == [(0.0, duration)]
    # a rest near the 7 s point takes the cut; with none it is a fixed window
    assert prep.cut_track(20.0, [6.0], min_s=4, max_s=10, target_s=7, snap_s=2)[0] == (0.0, 6.0)
    assert prep.cut_track(20.0, [], min_s=4, max_s=10, target_s=7, snap_s=2)[0] == (0.0, 7.0)
    note = prep.annotate([(0.01 * i, 0.0 if 100 <= i < 130 else 440.0) for i in range(300)])
    assert note.rests == [pytest.approx(1.15)]
    assert note.voiced_fraction(1.0, 1.3) == 0.0 and note.voiced_fraction(0.0, 1.0) == 1.0


# --------------------------------------------------------------------------- download stage


def zip_dataset(src_root: Path, archive: Path) -> None:
    """archive: src_root/Dataset/... under 'Dataset/', as the unpacked dataset is named."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for p in sorted((src_root / "Dataset").rglob("*")):
            z.write(p, p.relative_to(src_root).as_posix())


SMALL = {"01_Jupiter_vn_vc": 3.0, "03_Dance_fl_cl": 2.5}


@needs_bash
def test_download_stage_without_the_archive_says_where_to_get_it(tmp_path):
    bindir = fake_network_tools(tmp_path)
    work = make_scratch_recipe(tmp_path, "tt1", "urmp")
    downloads = tmp_path / "downloads"
    res = run_script(work, "--stage", "-1", "--stop_stage", "-1", "--download_dir", str(downloads),
                     path_prefix=bindir)
    assert res.returncode != 0
    assert PAGE in res.stderr and "request form" in res.stderr
    assert f"put it at {downloads}/URMP.zip" in res.stderr
    assert f"{downloads}/Dataset/01_Jupiter_vn_vc/AuSep_1_vn_01_Jupiter.wav exists" in res.stderr
    assert not (bindir / "calls").exists()  # nothing was fetched
    assert not (downloads / "Dataset").exists()


@needs_bash
def test_download_stage_checks_and_unpacks_an_archive_put_there_by_hand(tmp_path):
    bindir = fake_network_tools(tmp_path)
    src = tmp_path / "src"
    make_urmp(src, SMALL)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    zip_dataset(src, downloads / "URMP.zip")
    work = make_scratch_recipe(tmp_path, "tt1", "urmp")
    args = ("--stage", "-1", "--stop_stage", "-1", "--download_dir", str(downloads))
    res = run_script(work, *args, path_prefix=bindir)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "no checksum known for URMP.zip" in res.stderr  # so the whole archive is tested
    assert not (bindir / "calls").exists()
    corpus = downloads / "Dataset"
    expected = {p.relative_to(src / "Dataset") for p in (src / "Dataset").rglob("*") if p.is_file()}
    got = {p.relative_to(corpus) for p in corpus.rglob("*") if p.is_file()}
    assert got == {p for p in expected if not p.name.startswith("Vid_")}  # videos left out
    for rel in got:
        assert (corpus / rel).read_bytes() == (src / "Dataset" / rel).read_bytes()
    assert not (downloads / "Dataset.partial").exists()
    res = run_script(work, *args, path_prefix=bindir)  # unpacked: nothing to do
    assert res.returncode == 0 and "holds the URMP pieces; nothing to do" in res.stderr
    # --corpus_dir at the dir above the pieces: says where they are
    res = run_script(work, "--stage", "-1", "--stop_stage", "-1", "--corpus_dir", str(downloads),
                     path_prefix=bindir)
    assert res.returncode != 0 and f"rerun with --corpus_dir {corpus}" in res.stderr


@needs_bash
def test_download_stage_resumes_an_interrupted_unpacking(tmp_path):
    src = tmp_path / "src"
    make_urmp(src, SMALL)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    zip_dataset(src, downloads / "URMP.zip")
    # an earlier run stopped half-way: one file complete, one cut short, one .part
    partial = downloads / "Dataset.partial" / "Dataset" / "01_Jupiter_vn_vc"
    partial.mkdir(parents=True)
    whole = src / "Dataset" / "01_Jupiter_vn_vc"
    shutil.copy(whole / "AuSep_1_vn_01_Jupiter.wav", partial)
    (partial / "AuSep_2_vc_01_Jupiter.wav").write_bytes((whole / "AuSep_2_vc_01_Jupiter.wav").read_bytes()[:1000])
    (partial / "F0s_1_vn_01_Jupiter.txt.part").write_text("0.0000\t0.0")
    res = subprocess.run(["bash", str(LOCAL / "download.sh"), str(downloads), str(downloads / "Dataset")],
                         check=False, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "1 kept" in res.stderr
    corpus = downloads / "Dataset"
    for f in (whole / "AuSep_2_vc_01_Jupiter.wav", whole / "F0s_1_vn_01_Jupiter.txt"):
        assert (corpus / "01_Jupiter_vn_vc" / f.name).read_bytes() == f.read_bytes()
    assert not list(corpus.rglob("*.part")) and not (downloads / "Dataset.partial").exists()


def test_download_stage_rejects_a_corrupt_archive_and_checks_listed_digests(tmp_path):
    src = tmp_path / "src"
    make_urmp(src, {"01_Jupiter_vn_vc": 2.0})
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    zip_dataset(src, tmp_path / "good.zip")
    data = (tmp_path / "good.zip").read_bytes()
    (downloads / "URMP.zip").write_bytes(data[: len(data) // 2])  # a truncated download
    script = ["bash", str(LOCAL / "download.sh")]
    res = subprocess.run([*script, str(downloads), str(downloads / "Dataset")], check=False, capture_output=True, text=True)
    assert res.returncode != 0
    assert "URMP.zip is there but fails the check: the archive is truncated or corrupt" in res.stderr
    assert not (downloads / "Dataset").exists()
    # a digest listed for the file: checked instead of the archive test
    (downloads / "URMP.zip").write_bytes(data)
    sums = tmp_path / "checksums"
    sums.write_text("sha256 " + "0" * 64 + " URMP.zip\n")
    res = subprocess.run([*script, "--checksums", str(sums), str(downloads), str(downloads / "Dataset")],
                         check=False, capture_output=True, text=True)
    assert res.returncode != 0 and "sha256 mismatch" in res.stderr
    sums.write_text(f"sha256 {hashlib.sha256(data).hexdigest()} URMP.zip\n")
    res = subprocess.run([*script, "--checksums", str(sums), str(downloads), str(downloads / "Dataset")],
                         check=False, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "no checksum known" not in res.stderr
    assert (downloads / "Dataset" / "01_Jupiter_vn_vc" / "AuSep_2_vc_01_Jupiter.wav").is_file()


# --------------------------------------------------------------------------- extract over segments


def test_extract_reads_each_segment_not_the_whole_recording(tmp_path, monkeypatch):
    """vocoder extract on 5 s segments of a 3-minute 48 kHz recording: every read asks for
    one segment's frames (the reader seeks), and the peak of traced memory stays far
    below the recording's size as float32."""
    from vocoder.audio import load_audio
    from vocoder.cli.main import main

    sr, seconds = 48000, 180.0
    n = int(sr * seconds)
    t = np.arange(n) / sr
    x = (0.3 * np.sin(2 * np.pi * 220.0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * t))).astype(np.float32)
    rec = tmp_path / "long.wav"
    sf.write(str(rec), x, sr, subtype="PCM_16")
    del t, x
    data = tmp_path / "data"
    data.mkdir()
    segs = {"inst_long_001": (10.0, 15.0), "inst_long_002": (90.0, 95.0), "inst_long_003": (174.5, 179.5)}
    (data / "wav.scp").write_text(f"long {rec}\n")
    (data / "segments").write_text("".join(f"{u} long {a} {b}\n" for u, (a, b) in segs.items()))
    (data / "utt2spk").write_text("".join(f"{u} inst\n" for u in segs))
    (data / "spk2utt").write_text("inst " + " ".join(segs) + "\n")

    reads = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        out = real_read(self, frames, *args, **kwargs)
        reads.append((frames, len(out)))
        return out

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    # The spy sees a whole-file read for what it is (and tracemalloc its memory):
    tracemalloc.start()
    load_audio(rec)
    whole_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert reads == [(-1, n)] and whole_peak > 4 * n  # float32 of every sample, at least
    reads.clear()

    args = ["--streams", "loudness", "--nj", "1", "--sample-rate", "16000", "--hop-length", "160"]
    assert main(["extract", str(data), str(tmp_path / "warmup"), *args]) == 0  # imports done
    reads.clear()
    tracemalloc.start()
    rc = main(["extract", str(data), str(tmp_path / "dump"), *args])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rc == 0
    seg_frames = 5 * sr
    assert len(reads) == len(segs)
    assert all(0 < frames <= seg_frames and got == frames for frames, got in reads), reads
    print(f"traced peak: extract over segments {peak / 1e6:.1f} MB, whole recording {whole_peak / 1e6:.1f} MB")
    assert peak < whole_peak / 4, (peak, whole_peak)  # measured: 4 MB, against 112 MB
    samples = {u: int(v) for u, v in read_table(tmp_path / "dump" / "utt2num_samples").items()}
    assert samples == {u: 80000 for u in segs}  # 5 s at 16 kHz


# --------------------------------------------------------------------------- the whole recipe


@needs_bash
@pytest.mark.slow  # about a minute on 2 CPU cores: the same stages as egs/mini/tt1
def test_debug_recipe_transfers_every_instrument_and_scores_it(tmp_path, corpus):
    work = make_scratch_recipe(tmp_path, "tt1", "urmp")
    res = run_script(work, "--stage", "0", "--corpus_dir", str(corpus), "--instruments", "vn vc",
                     "--debug", "true", "--nj", "2", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # the debug subset: 3 train, 1 dev, 1 eval segment per instrument, segments kept
    for name, n in (("train", 3), ("dev", 1), ("eval", 1)):
        d = work / "data_debug" / name
        assert {len(v.split()) for v in read_table(d / "spk2utt").values()} == {n}
        assert set(read_table(d / "segments")) == set(read_table(d / "utt2spk"))
    exp = work / "exp" / "ddsp_tt_debug"
    pairs = {"violin->cello", "cello->violin"}
    doc = json.loads((exp / "eval" / "transfer.json").read_text())
    assert doc["failed"] == {} and set(doc["by_pair"]) == pairs
    for key, r in doc["per_utt"].items():
        assert r["mcd_db"] is None  # no parallel reference in timbre transfer
        assert r["f0_track_corr"] > 0.8, key  # the output plays the input's melody
    summary = json.loads((exp / "metrics.json").read_text())["sets"]["transfer_eval"]["systems"]["ddsp_tt"]["summary"]
    assert "f0_track_corr" in summary and "accuracy" in summary
    # the eval segments, cut to 16 kHz wavs of their segment's length, are the inputs
    segments = read_table(work / "data_debug" / "eval" / "segments")
    for src in ("violin", "cello"):
        for utt, path in read_table(exp / "data" / f"eval_{src}" / "wav.scp").items():
            _, a, b = segments[utt].split()
            info = sf.info(path)
            assert info.samplerate == 16000
            assert abs(info.frames - round((float(b) - float(a)) * 16000)) <= 1
            out = exp / "wav" / f"{src}_to_{'cello' if src == 'violin' else 'violin'}" / f"{utt}.wav"
            assert sf.info(str(out)).frames == info.frames
    # Rerunning the transfer stage skips what is there.
    res = run_script(work, "--debug", "true", "--stage", "4", "--stop_stage", "4", OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "0 written to cello, 1 already there" in (exp / "log" / "convert_violin_to_cello.log").read_text()


def test_help_and_shellcheck(tmp_path):
    work = make_scratch_recipe(tmp_path, "tt1", "urmp")
    res = run_script(work, "--help")
    assert res.returncode == 0 and "--download_dir" in res.stdout and "--instruments" in res.stdout
    res = run_script(work, "--no_such_option", "1")
    assert res.returncode != 0 and "no_such_option" in res.stderr
    res = subprocess.run(["bash", str(LOCAL / "download.sh"), "--help"], check=False, capture_output=True, text=True)
    assert res.returncode == 0 and "request form" in res.stdout
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    for script in [RECIPE / "run.sh", *sorted(LOCAL.glob("*.sh"))]:
        res = subprocess.run(["shellcheck", "-x", script.name], cwd=script.parent, check=False, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout
