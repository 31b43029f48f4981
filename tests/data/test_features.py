"""Feature dumps: frame counts, `vocoder extract` (jobs, reruns, failures, pipes,
segments) and FeatureDump reading."""
from __future__ import annotations

import contextlib
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from vocoder.cli.main import main
from vocoder.data.features import FeatureConfig, FeatureDump, compute_features, read_wav_entry

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ("f0", "vuv", "loudness", "mfcc", "mel")


def tone(f0, seconds, sr, seed=0):
    """Sawtooth-like harmonic tone (1/k partials below 0.45 sr) with slight vibrato."""
    t = np.arange(int(round(seconds * sr))) / sr
    f = f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, int(0.45 * sr / f0)))
    x = 0.5 * x / np.abs(x).max()
    return (x + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


UTTS = (("spkA_u1", 120.0, 0.8), ("spkA_u2", 150.0, 0.55), ("spkB_u1", 200.0, 0.7))


def make_data_dir(root: Path, sr=16000, utts=UTTS, wav_scp_extra=None):
    """wav/<utt>.wav and data/{wav.scp,utt2spk,spk2utt} (absolute paths)."""
    (root / "wav").mkdir(parents=True, exist_ok=True)
    data = root / "data"
    data.mkdir(exist_ok=True)
    scp = {}
    for i, (utt, f0, sec) in enumerate(utts):
        path = root / "wav" / f"{utt}.wav"
        sf.write(path, tone(f0, sec, sr, seed=i), sr)
        scp[utt] = str(path)
    scp.update(wav_scp_extra or {})
    keys = sorted(scp, key=str.encode)
    (data / "wav.scp").write_text("".join(f"{u} {scp[u]}\n" for u in keys))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u in keys))
    spks = sorted({u.split("_")[0] for u in keys})
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in keys if u.startswith(s + '_'))}\n"
                                          for s in spks))
    return data


def vocoder(*args, cwd):
    """The installed command as a subprocess (exit status, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "vocoder.cli.main", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


def vocoder_inproc(*args):
    """The same command run in this process (faster: torch is imported once)."""
    import torch

    err, threads = io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stderr(err):
            rc = main([str(a) for a in args])
    finally:
        torch.set_num_threads(threads)  # an extract job sets 1 thread
    return subprocess.CompletedProcess(args, rc, "", err.getvalue())


def read_stream(dump: Path, stream: str) -> dict:
    """utt -> array (``wav`` entries stay (rate, samples) tuples)."""
    return {k: (v if stream == "wav" else np.asarray(v))
            for k, v in kaldiio.load_scp(str(dump / f"{stream}.scp")).items()}


# ---------------------------------------------------------------- compute_features

@pytest.mark.parametrize("sr, hop, n", [(16000, 80, 8000), (16000, 80, 8037), (22050, 110, 11025),
                                        (22050, 256, 12001)])
def test_compute_features_frame_count(sr, hop, n):
    cfg = FeatureConfig(sample_rate=sr, hop_length=hop, n_mfcc=13, n_mels=40)
    x = tone(150.0, n / sr, sr)[:n]
    assert x.size == n
    feats = compute_features(x, cfg)
    frames = math.ceil(n / hop)
    assert set(feats) == set(STREAMS)
    for key, value in feats.items():
        assert value.dtype == np.float32, key
        assert value.shape[0] == frames, key
        assert np.isfinite(value).all(), key
    assert feats["mfcc"].shape == (frames, 13)
    assert feats["mel"].shape == (frames, 40)
    assert feats["f0"].ndim == feats["vuv"].ndim == feats["loudness"].ndim == 1
    # the tone is voiced almost everywhere, at about 150 Hz
    voiced = feats["vuv"] > 0.5
    assert voiced.mean() > 0.8
    assert np.median(feats["f0"][voiced]) == pytest.approx(150.0, rel=0.05)
    assert np.all(feats["f0"][~voiced] == 0)


def test_compute_features_subset_of_streams_and_bad_config():
    cfg = FeatureConfig(streams=["loudness", "mel"])
    feats = compute_features(tone(200.0, 0.3, 16000), cfg)
    assert set(feats) == {"loudness", "mel"}
    with pytest.raises(ValueError, match="unknown feature streams"):
        FeatureConfig(streams=["f0", "pitch"])
    with pytest.raises(ValueError, match="no feature streams selected"):
        FeatureConfig(streams=[])
    with pytest.raises(ValueError, match="unknown feature settings"):
        FeatureConfig.from_dict({"hop": 80})
    # mel_f_max above Nyquist is clamped
    assert FeatureConfig(sample_rate=8000).mel_f_max == 4000


def test_compute_features_rejects_bad_audio():
    x = tone(200.0, 0.3, 16000)
    x[10] = np.nan
    with pytest.raises(ValueError, match="myutt.*NaN"):
        compute_features(x, FeatureConfig(), name="myutt")


def test_read_wav_entry_segment_and_resample(tmp_path):
    x = tone(150.0, 1.0, 22050)
    sf.write(tmp_path / "a.wav", x, 22050)
    y, sr = read_wav_entry(str(tmp_path / "a.wav"), sample_rate=None, start_s=0.25, end_s=0.75)
    assert sr == 22050 and y.size == round(0.75 * 22050) - round(0.25 * 22050)
    np.testing.assert_allclose(y, x[round(0.25 * 22050):round(0.75 * 22050)], atol=1e-4)
    z, sr = read_wav_entry(str(tmp_path / "a.wav"), sample_rate=16000, start_s=0.25, end_s=0.75)
    assert sr == 16000 and abs(z.size - 8000) <= 1
    with pytest.raises(ValueError, match="outside the recording"):
        read_wav_entry(str(tmp_path / "a.wav"), sample_rate=None, start_s=2.0, end_s=3.0)
    with pytest.raises(ValueError, match="no such file"):
        read_wav_entry(str(tmp_path / "missing.wav"), sample_rate=None)


def test_read_wav_entry_pipe(tmp_path):
    x = tone(150.0, 0.3, 16000)
    sf.write(tmp_path / "a.wav", x, 16000)
    entry = f"cat {tmp_path / 'a.wav'} |"
    with pytest.raises(ValueError, match="allow-pipes"):
        read_wav_entry(entry, sample_rate=16000)
    y, sr = read_wav_entry(entry, sample_rate=16000, allow_pipes=True)
    assert sr == 16000 and y.size == x.size
    with pytest.raises(ValueError, match="pipe command failed"):
        read_wav_entry("false |", sample_rate=16000, allow_pipes=True)


# ---------------------------------------------------------------- vocoder extract

@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """One data dir extracted with --nj 1 and --nj 2 (subset of streams to stay fast)."""
    root = tmp_path_factory.mktemp("extract")
    data = make_data_dir(root)
    runs = {}
    for nj in (1, 2):
        proc = vocoder("extract", data, root / f"dump{nj}", "--nj", nj, cwd=root)
        assert proc.returncode == 0, proc.stderr
        runs[nj] = proc
    return root, data, runs


def test_extract_layout_and_frames(extracted):
    root, _, _ = extracted
    dump = root / "dump1"
    for name in ("feats.yaml", "wav.scp", "utt2spk", "spk2utt", "utt2num_frames") + tuple(f"{s}.scp" for s in STREAMS):
        assert (dump / name).is_file(), name
    assert not (dump / "failed").exists()
    frames = {u: int(n) for u, n in (line.split() for line in (dump / "utt2num_frames").read_text().splitlines())}
    assert list(frames) == [u for u, _, _ in UTTS]
    for utt, _, sec in UTTS:
        assert frames[utt] == math.ceil(round(sec * 16000) / 80)
    for s in STREAMS:
        feats = read_stream(dump, s)
        assert {u: v.shape[0] for u, v in feats.items()} == frames, s
    assert (dump / "utt2spk").read_text() == "spkA_u1 spkA\nspkA_u2 spkA\nspkB_u1 spkB\n"
    assert (dump / "spk2utt").read_text() == "spkA spkA_u1 spkA_u2\nspkB spkB_u1\n"


def test_extract_nj1_equals_nj2(extracted):
    root, _, runs = extracted
    assert "job 2/2" in runs[2].stderr
    for s in STREAMS + ("wav",):
        a, b = read_stream(root / "dump1", s), read_stream(root / "dump2", s)
        assert list(a) == list(b), s
        for utt in a:
            if s == "wav":
                assert a[utt][0] == b[utt][0] == 16000
                np.testing.assert_array_equal(a[utt][1], b[utt][1])
            else:
                np.testing.assert_array_equal(a[utt], b[utt], err_msg=f"{s} {utt}")


def test_extract_rerun_skips_and_overwrite_redoes(extracted):
    root, data, _ = extracted
    dump = root / "dump2"
    arks = sorted((dump / "arks").glob("f0.*.ark"))
    mtimes = [p.stat().st_mtime_ns for p in arks]
    proc = vocoder_inproc("extract", data, dump, "--nj", 2)
    assert proc.returncode == 0, proc.stderr
    assert "already complete" in proc.stderr
    assert [p.stat().st_mtime_ns for p in arks] == mtimes
    assert len(FeatureDump(dump)) == len(UTTS)
    dump = root / "dump1"
    ark = dump / "arks" / "f0.1.ark"
    mtime = ark.stat().st_mtime_ns
    assert "already complete" in vocoder_inproc("extract", data, dump).stderr
    proc = vocoder_inproc("extract", data, dump, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert "already complete" not in proc.stderr
    assert ark.stat().st_mtime_ns != mtime
    assert len(FeatureDump(dump)) == len(UTTS)


def test_extract_changed_settings_redo(tmp_path):
    data = make_data_dir(tmp_path, utts=UTTS[:1])
    dump = tmp_path / "dump"
    assert vocoder_inproc("extract", data, dump, "--streams", "loudness").returncode == 0
    proc = vocoder_inproc("extract", data, dump, "--streams", "loudness", "--hop-length", 160)
    assert proc.returncode == 0, proc.stderr
    assert "already complete" not in proc.stderr
    d = FeatureDump(dump)
    assert d.hop_length == 160
    assert d.load("spkA_u1")["loudness"].shape == (math.ceil(round(0.8 * 16000) / 160),)


def test_extract_lists_failures_and_goes_on(tmp_path):
    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "bad.wav").write_bytes(b"RIFF this is not a wav file")
    data = make_data_dir(tmp_path, utts=UTTS[:2], wav_scp_extra={
        "spkA_bad": str(tmp_path / "wav" / "bad.wav"), "spkB_gone": str(tmp_path / "wav" / "gone.wav")})
    dump = tmp_path / "dump"
    proc = vocoder_inproc("extract", data, dump, "--streams", "f0,vuv,loudness")
    assert proc.returncode == 0, proc.stderr
    failed = dict(line.split(" ", 1) for line in (dump / "failed").read_text().splitlines())
    assert set(failed) == {"spkA_bad", "spkB_gone"}
    assert "cannot read audio" in failed["spkA_bad"]
    assert "no such file" in failed["spkB_gone"]
    assert "2 failed" in proc.stderr
    d = FeatureDump(dump)
    assert d.utts == ["spkA_u1", "spkA_u2"]
    assert set(d.utt2spk) == {"spkA_u1", "spkA_u2"}
    assert "spkA_bad" not in (dump / "spk2utt").read_text()


def test_extract_all_failed_exits_nonzero_with_one_line(tmp_path):
    data = make_data_dir(tmp_path, utts=(), wav_scp_extra={"spkA_x": str(tmp_path / "x.wav"),
                                                           "spkA_y": str(tmp_path / "y.wav")})
    proc = vocoder("extract", data, tmp_path / "dump", cwd=tmp_path)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("vocoder extract: error:")
    assert "every utterance failed" in errors[0]
    assert "Traceback" not in proc.stderr


def test_extract_pipes_need_allow_pipes(tmp_path):
    data = make_data_dir(tmp_path, utts=UTTS[:1])
    wav = tmp_path / "wav" / "spkA_u1.wav"
    (data / "wav.scp").write_text(f"spkA_u1 cat {wav} |\n")
    proc = vocoder_inproc("extract", data, tmp_path / "dump", "--streams", "loudness")
    assert proc.returncode != 0
    assert "--allow-pipes" in proc.stderr and "Traceback" not in proc.stderr
    proc = vocoder_inproc("extract", data, tmp_path / "dump", "--streams", "loudness", "--allow-pipes")
    assert proc.returncode == 0, proc.stderr
    d = FeatureDump(tmp_path / "dump")
    assert d.load("spkA_u1")["wav"].shape == (round(0.8 * 16000),)


def test_extract_segments(tmp_path):
    sr = 16000
    rec = np.concatenate([tone(120.0, 0.6, sr), np.zeros(sr // 5, np.float32), tone(220.0, 0.5, sr, seed=1)])
    sf.write(tmp_path / "rec.wav", rec, sr)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec1 {tmp_path / 'rec.wav'}\n")
    (data / "segments").write_text("s1_a rec1 0.0 0.6\ns1_b rec1 0.8 1.3\n")
    (data / "utt2spk").write_text("s1_a s1\ns1_b s1\n")
    (data / "spk2utt").write_text("s1 s1_a s1_b\n")
    proc = vocoder_inproc("extract", data, tmp_path / "dump", "--streams", "f0,vuv")
    assert proc.returncode == 0, proc.stderr
    d = FeatureDump(tmp_path / "dump")
    assert d.utts == ["s1_a", "s1_b"]
    a, b = d.load("s1_a"), d.load("s1_b")
    assert a["wav"].shape == (round(0.6 * sr),) and b["wav"].shape == (round(0.5 * sr),)
    np.testing.assert_allclose(b["wav"], rec[round(0.8 * sr):round(1.3 * sr)], atol=1 / 16000)
    assert a["f0"].shape == (math.ceil(0.6 * sr / 80),)
    assert np.median(a["f0"][a["vuv"] > 0]) == pytest.approx(120.0, rel=0.05)
    assert np.median(b["f0"][b["vuv"] > 0]) == pytest.approx(220.0, rel=0.05)


def test_extract_empty_stream_list_is_one_line_error(tmp_path):
    data = make_data_dir(tmp_path, utts=UTTS[:1])
    proc = vocoder_inproc("extract", data, tmp_path / "dump", "--streams", ",")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("vocoder extract: error: no feature streams")


def test_extract_bad_data_dir_is_one_line_error(tmp_path):
    data = make_data_dir(tmp_path, utts=UTTS[:1])
    (data / "utt2spk").write_text("spkA_u1 spkA\nzzz spkA\n")
    proc = vocoder_inproc("extract", data, tmp_path / "dump")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("vocoder extract: error:")


# ---------------------------------------------------------------- FeatureDump

def test_feature_dump_load_resampled_from_22k(tmp_path):
    data = make_data_dir(tmp_path, sr=22050, utts=UTTS[:2])
    dump = tmp_path / "dump"
    proc = vocoder_inproc("extract", data, dump, "--sample-rate", 16000, "--hop-length", 80,
                          "--streams", "f0,vuv,loudness,mfcc")
    assert proc.returncode == 0, proc.stderr
    d = FeatureDump(dump)
    assert (d.sample_rate, d.hop_length) == (16000, 80)
    assert d.streams == ["wav", "f0", "vuv", "loudness", "mfcc"]
    assert len(d) == 2 and d.speaker("spkA_u1") == "spkA"
    for utt, f0, sec in UTTS[:2]:
        x = d.load(utt)
        n = round(sec * 16000)
        assert abs(x["wav"].size - n) <= 1
        frames = math.ceil(x["wav"].size / 80)
        assert x["wav"].dtype == np.float32 and np.abs(x["wav"]).max() <= 1.0
        assert x["f0"].shape == x["vuv"].shape == x["loudness"].shape == (frames,)
        assert x["mfcc"].shape == (frames, 30)
        assert np.median(x["f0"][x["vuv"] > 0]) == pytest.approx(f0, rel=0.05)
        # the resampled audio still matches a direct 16 kHz rendering of the tone in level
        ref = tone(f0, sec, 16000)
        assert np.sqrt(np.mean(x["wav"] ** 2)) == pytest.approx(np.sqrt(np.mean(ref ** 2)), rel=0.05)
        x["f0"][0] = 1.0  # writable copies
    sub = FeatureDump(dump, streams=["f0"])
    assert set(sub.load("spkA_u1")) == {"f0"}
    with pytest.raises(FileNotFoundError, match="mel"):
        FeatureDump(dump, streams=["mel"])


def test_feature_dump_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocoder extract"):
        FeatureDump(tmp_path)
    (tmp_path / "feats.yaml").write_text("version: 99\nfeatures: {}\n")
    with pytest.raises(ValueError, match="newer"):
        FeatureDump(tmp_path)


def test_extract_jobs_are_started_single_threaded(monkeypatch):
    """The --nj worker processes get one thread per numerical library; the parent's env comes back."""
    from vocoder.cli.extract import _THREAD_VARS, _single_threaded_children

    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with _single_threaded_children():
        assert all(os.environ[k] == "1" for k in _THREAD_VARS)
    assert os.environ["OMP_NUM_THREADS"] == "4" and "MKL_NUM_THREADS" not in os.environ
