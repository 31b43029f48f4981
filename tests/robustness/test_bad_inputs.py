"""Bad inputs through `vocoder extract` and `vocoder evaluate` (and `convert`).

Every case of bad_inputs.CASES is put between two good utterances of a Kaldi data dir.
The command must either process it correctly (the right number of frames, finite
features) or fail that item with a one-line reason naming the file and the cause,
finish the good items and list the failed ones at the end; --fail-fast stops.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
from bad_inputs import (
    CASES,
    GOOD,
    HOP,
    ITEM,
    SR,
    TABLE_CASES,
    TONE,
    batch_with,
    read_table,
    table_case,
    tone,
    write_data_dir,
)

from vocoder.cli.main import main

STREAMS = ("wav", "f0", "vuv", "loudness", "mfcc", "mel")


def vocoder(*args):
    """The command in this process on one thread; returns (status, stderr).

    main() turns any exception into a one-line error; a traceback is a crash.
    """
    err, threads = io.StringIO(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stderr(err):
            rc = main([a if isinstance(a, str) else os.fsdecode(a) for a in args])
    finally:
        torch.set_num_threads(threads)
    return rc, err.getvalue()


def assert_names_file_and_cause(reason: str, path: Path, cause: str) -> None:
    assert "\n" not in reason and "Traceback" not in reason
    assert path.name in reason, f"reason does not name the file: {reason!r}"
    assert re.search(cause, reason), f"{reason!r} does not match {cause!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_extract(case, tmp_path):
    data, path = batch_with(case, tmp_path)
    dump = tmp_path / "dump"
    rc, err = vocoder("extract", data, dump, "--nj", "1")
    assert rc == 0 and ": error:" not in err, err
    frames = read_table(dump / "utt2num_frames")
    assert set(GOOD) <= set(frames), "a good item of the batch was not written"
    for utt in GOOD:
        assert int(frames[utt]) == 60
    failed = read_table(dump / "failed")
    if case.expect == "ok":
        assert ITEM not in failed, failed.get(ITEM)
        assert int(frames[ITEM]) == case.frames
        feats = {s: kaldiio.load_scp(str(dump / f"{s}.scp"))[ITEM] for s in STREAMS}
        for s in STREAMS[1:]:
            assert feats[s].shape[0] == case.frames and np.isfinite(feats[s]).all(), s
        rate, wav = feats["wav"]
        assert rate == SR and case.frames == -(-wav.size // HOP)
        if case.f0_range:
            f0 = feats["f0"][feats["vuv"] > 0.5]
            assert ((f0 >= 65.0 - 1e-3) & (f0 <= 800.0 + 1e-3)).all(), f0
    else:
        assert ITEM not in frames and ITEM in failed
        assert_names_file_and_cause(failed[ITEM], path, case.cause)
        # the failures are listed at the end of the log
        tail = err[err.index("failed items"):]
        assert f"{ITEM}: {failed[ITEM]}" in tail
        assert "1 failed" in err and "2 utterances" in err


def test_multichannel_is_mixed_down_to_the_mean(tmp_path):
    case = next(c for c in CASES if c.name == "stereo")
    data, _ = batch_with(case, tmp_path)
    rc, err = vocoder("extract", data, tmp_path / "dump", "--nj", "1", "--streams", "loudness")
    assert rc == 0, err
    _, wav = kaldiio.load_scp(str(tmp_path / "dump" / "wav.scp"))[ITEM]
    want = np.round(0.75 * TONE * 32767)  # mean of TONE and TONE / 2, as int16
    assert np.abs(wav - want).max() <= 2


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_evaluate(case, tmp_path):
    data, path = batch_with(case, tmp_path)
    out = tmp_path / "eval.json"
    rc, err = vocoder("evaluate", data, data, "--json", out, "--f0-method", "dio")
    assert rc == 0 and ": error:" not in err, err
    result = json.loads(out.read_text())
    per_utt, failed = result["per_utt"], result["failed"]
    assert set(GOOD) <= set(per_utt), "a good item of the batch was not evaluated"
    if case.expect == "ok":
        assert ITEM in per_utt and ITEM not in failed, failed.get(ITEM)
        assert per_utt[ITEM]["mcd_db"] == pytest.approx(0.0, abs=1e-3)  # the file against itself
    else:
        assert ITEM in failed and ITEM not in per_utt
        assert_names_file_and_cause(failed[ITEM], path, case.cause)
        tail = err[err.index("utterances failed:"):]
        assert ITEM in tail and "1 of 3 utterances failed" in err


FAILING = [c for c in CASES if c.expect == "fail"]


def test_one_batch_with_every_bad_input_finishes_the_good_ones(tmp_path):
    items = {}
    for i, case in enumerate(FAILING):
        d = tmp_path / case.name
        d.mkdir()
        items[f"bad_{i:02d}"] = case.make(d)
        sf.write(tmp_path / f"good_{i:02d}.wav", tone(150.0, 0.2, seed=i), SR)
        items[f"good_{i:02d}"] = tmp_path / f"good_{i:02d}.wav"
    data = write_data_dir(tmp_path, dict(sorted(items.items())))
    rc, err = vocoder("extract", data, tmp_path / "dump", "--nj", "1")
    assert rc == 0, err
    assert sorted(read_table(tmp_path / "dump" / "utt2num_frames")) == sorted(u for u in items if "good" in u)
    failed = read_table(tmp_path / "dump" / "failed")
    assert sorted(failed) == sorted(u for u in items if "bad" in u)
    listed = err[err.index("failed items"):].splitlines()[1:]
    assert len(listed) == len(FAILING)
    for i, case in enumerate(FAILING):
        assert_names_file_and_cause(failed[f"bad_{i:02d}"], items[f"bad_{i:02d}"], case.cause)


@pytest.mark.parametrize("command", ["extract", "evaluate"])
def test_fail_fast_stops_at_the_first_bad_item(command, tmp_path):
    case = next(c for c in CASES if c.name == "corrupt_wav_header")
    data, path = batch_with(case, tmp_path)
    if command == "extract":
        rc, err = vocoder("extract", data, tmp_path / "dump", "--nj", "1", "--fail-fast")
        assert rc == 1
        assert sorted(read_table(tmp_path / "dump" / "utt2num_frames")) == ["a_good"]  # c_good not done
        assert list(read_table(tmp_path / "dump" / "failed")) == [ITEM]
    else:
        rc, err = vocoder("evaluate", data, data, "--fail-fast", "--f0-method", "dio")
        assert rc == 1
    assert any(path.name in line and "cannot read audio" in line for line in err.splitlines())


# ------------------------------------------------------------------- data dir tables

@pytest.mark.parametrize("name,extract_error,evaluate_error", TABLE_CASES, ids=[c[0] for c in TABLE_CASES])
def test_data_dir_tables(name, extract_error, evaluate_error, tmp_path):
    data = table_case(name, tmp_path)
    rc, err = vocoder("extract", data, tmp_path / "dump", "--nj", "1")
    errors = [line for line in err.splitlines() if ": error:" in line]
    assert rc == 1 and len(errors) == 1, err
    assert re.search(extract_error, errors[0]), errors[0]
    assert not (tmp_path / "dump" / "utt2num_frames").exists()  # nothing half-written
    rc, err = vocoder("evaluate", data, data, "--json", tmp_path / "e.json", "--f0-method", "dio")
    if evaluate_error is None:
        assert rc == 0, err
        utts = read_table(data / "wav.scp")
        assert sorted(json.loads((tmp_path / "e.json").read_text())["per_utt"]) == sorted(utts)
    else:
        errors = [line for line in err.splitlines() if ": error:" in line]
        assert rc == 1 and len(errors) == 1 and re.search(evaluate_error, errors[0]), err


# ------------------------------------------------------------------- short files, odd dump paths

SHORT = [c for c in CASES if c.cause == r"audio too short"]


@pytest.mark.parametrize("case", SHORT, ids=[c.name for c in SHORT])
def test_short_files_per_stream(case, tmp_path):
    """Loudness alone handles any length (ceil(samples / hop) frames); the STFT streams
    and f0 need a window's worth of samples and fail the item, naming the file."""
    data, path = batch_with(case, tmp_path)
    n = sf.info(path).frames
    rc, err = vocoder("extract", data, tmp_path / "loud", "--nj", "1", "--streams", "loudness")
    assert rc == 0, err
    assert int(read_table(tmp_path / "loud" / "utt2num_frames")[ITEM]) == -(-n // HOP)
    loudness = kaldiio.load_scp(str(tmp_path / "loud" / "loudness.scp"))[ITEM]
    assert loudness.shape == (-(-n // HOP),) and np.isfinite(loudness).all()
    rc, err = vocoder("extract", data, tmp_path / "spec", "--nj", "1", "--streams", "mfcc,mel")
    assert rc == 0, err
    reason = read_table(tmp_path / "spec" / "failed")[ITEM]
    assert_names_file_and_cause(reason, path, r"too short")
    assert sorted(read_table(tmp_path / "spec" / "utt2num_frames")) == list(GOOD)


def test_silence_is_processed_by_the_streams_that_allow_it(tmp_path):
    case = next(c for c in CASES if c.name == "silence")
    data, _ = batch_with(case, tmp_path)
    rc, err = vocoder("extract", data, tmp_path / "dump", "--nj", "1", "--streams", "loudness,mel")
    assert rc == 0, err
    loudness = kaldiio.load_scp(str(tmp_path / "dump" / "loudness.scp"))[ITEM]
    mel = kaldiio.load_scp(str(tmp_path / "dump" / "mel.scp"))[ITEM]
    assert np.isfinite(loudness).all() and np.isfinite(mel).all()
    assert loudness.max() < -60 and mel.max() == mel.min()  # a floor, not -inf


def test_dump_dir_with_spaces_and_with_a_comma(tmp_path):
    case = next(c for c in CASES if c.name == "space_in_path")
    data, _ = batch_with(case, tmp_path)
    rc, err = vocoder("extract", data, tmp_path / "my dump", "--nj", "1", "--streams", "loudness")
    assert rc == 0, err
    assert set(kaldiio.load_scp(str(tmp_path / "my dump" / "loudness.scp"))) == {*GOOD, ITEM}
    rc, err = vocoder("extract", data, tmp_path / "a,b", "--nj", "1", "--streams", "loudness")
    errors = [line for line in err.splitlines() if ": error:" in line]
    assert rc == 1 and len(errors) == 1 and "a,b" in errors[0] and "','" in errors[0], err


# ------------------------------------------------------------------- convert

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained two-speaker model of the tiny test config (no training: the inputs
    are what is tested, not the sound)."""
    from vocoder.models import build_model
    from vocoder.training.checkpoint import save_checkpoint

    model_cfg = {"name": "ddsp", "n_harmonics": 16, "n_noise_bands": 17, "hidden_size": 32, "gru_size": 32,
                 "mlp_layers": 1, "z_dim": 4, "n_mfcc": 12, "encoder_gru_size": 16, "speakers": ["spkA", "spkB"],
                 "speaker_dim": 8, "reverb": False, "sample_rate": SR, "hop_length": HOP}
    torch.manual_seed(0)
    model = build_model("ddsp", **{k: v for k, v in model_cfg.items() if k != "name"})
    config = {"version": 1, "features": {"sample_rate": SR, "hop_length": HOP}, "model": model_cfg}
    path = tmp_path_factory.mktemp("robustness_ckpt") / "tiny.pt"
    return save_checkpoint(path, {"model": model.state_dict(), "step": 0, "config": config})


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_convert(case, checkpoint, tmp_path):
    data, path = batch_with(case, tmp_path)
    out = tmp_path / "out"
    rc, err = vocoder("convert", "--checkpoint", checkpoint, "--device", "cpu", "--target", "spkB",
                      "--f0-transform", "none", "--loudness-transform", "none", data, out)
    assert ": error:" not in err, err
    for utt in GOOD:
        assert sf.info(out / f"{utt}.wav").frames == TONE.size
    if case.expect == "ok":
        assert rc == 0, err
        audio, rate = sf.read(out / f"{ITEM}.wav")
        assert rate == SR and -(-audio.size // HOP) == case.frames and np.isfinite(audio).all()
    else:
        assert rc == 1 and not (out / f"{ITEM}.wav").exists()
        listed = err[err.index("failed items:"):].splitlines()[1:]
        assert len(listed) == 1 and listed[0].strip().startswith(f"{ITEM}: ")
        assert_names_file_and_cause(listed[0].strip()[len(ITEM) + 2:], path, case.cause)


def test_synth_from_the_dump_of_a_batch_with_every_case(checkpoint, tmp_path):
    """synth reads a dump, not audio: it gets the processed items of the batch, each
    frames * hop samples long, and nothing of the failed ones."""
    items = {}
    for i, case in enumerate(CASES):
        d = tmp_path / case.name
        d.mkdir()
        items[f"u{i:02d}_{case.name}"] = case.make(d)
    data = write_data_dir(tmp_path, items)
    rc, err = vocoder("extract", data, tmp_path / "dump", "--nj", "1")
    assert rc == 0, err
    rc, err = vocoder("synth", "--checkpoint", checkpoint, "--dump", tmp_path / "dump", "--out", tmp_path / "wav",
                      "--device", "cpu", "--speaker", "spkA")
    assert rc == 0, err
    done = {p.stem: sf.info(p).frames for p in (tmp_path / "wav").glob("*.wav")}
    want = {u: c.frames * HOP for u, c in zip(items, CASES) if c.expect == "ok"}
    assert done == want


# ------------------------------------------------------------------- a long file

@pytest.mark.slow
def test_extract_a_30_minute_file_with_bounded_memory(tmp_path):
    """30 minutes at 16 kHz (57.6 MB as PCM_16, 115 MB as float32): extract (as a
    subprocess, so that its peak memory can be read; dio f0, harvest takes much longer)
    writes every frame, and its peak resident memory stays under 4 GB. Measured: 7.6 GB
    when loudness, mel and MFCC took one whole-file STFT each; 2.8 GB with them in
    one-minute chunks, most of it WORLD's f0 over the whole file."""
    import resource
    import subprocess
    import sys

    seconds = 30 * 60
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, subtype="PCM_16") as f:
        for i in range(seconds // 10):
            f.write(tone(100.0 + 10 * (i % 10), 10.0, seed=i))
    data = write_data_dir(tmp_path, {"long": path})
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "vocoder.cli.main", "extract", str(data), str(tmp_path / "dump"),
                           "--nj", "1", "--f0-method", "dio"], capture_output=True, text=True, env=env,
                          timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    frames = int(read_table(tmp_path / "dump" / "utt2num_frames")["long"])
    assert frames == seconds * SR // HOP
    print(f"30-minute extract: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 4000, f"peak RSS {peak_mb:.0f} MB"


def test_long_files_are_analysed_in_chunks_with_the_same_result(monkeypatch):
    """loudness and mel of a long file are computed a minute at a time (bounded
    memory); forcing tiny chunks on a short file gives exactly the one-piece result."""
    from vocoder.data import features

    cfg = features.FeatureConfig.from_dict({"sample_rate": SR, "hop_length": HOP, "streams": ["loudness", "mel"]})
    for n in (3 * SR, 3 * SR + 37):
        x = np.concatenate([tone(150.0, 1.0), tone(220.0, 1.0, seed=2), 0.01 * tone(90.0, 1.5)])[:n]
        monkeypatch.setattr(features, "_CHUNK_FRAMES", 10**9)
        whole = features.compute_features(x, cfg)
        for chunk in (50, 77):
            monkeypatch.setattr(features, "_CHUNK_FRAMES", chunk)
            pieces = features.compute_features(x, cfg)
            for stream in ("loudness", "mel"):
                np.testing.assert_array_equal(pieces[stream], whole[stream])


def test_mfcc_in_chunks_equals_the_librosa_style_mfcc(monkeypatch):
    from vocoder.data import features
    from vocoder.dsp.spectral import mfcc

    cfg = features.FeatureConfig.from_dict({"sample_rate": SR, "hop_length": HOP, "streams": ["mfcc"]})
    x = np.concatenate([tone(150.0, 1.0), 0.001 * tone(220.0, 1.0, seed=2)])[:2 * SR - 11]
    frames = -(-x.size // HOP)
    want = mfcc(torch.from_numpy(x), sample_rate=SR, n_mfcc=cfg.n_mfcc, n_fft=cfg.mfcc_n_fft, hop_length=HOP,
                n_mels=cfg.mfcc_n_mels, frames=frames).numpy()
    for chunk in (10**9, 50, 77):
        monkeypatch.setattr(features, "_CHUNK_FRAMES", chunk)
        np.testing.assert_allclose(features.compute_features(x, cfg)["mfcc"], want, rtol=1e-5, atol=1e-4)
