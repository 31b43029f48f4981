import errno
import os
import re

import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder import outputs
from vocoder.audio import AudioError, check_audio, load_audio, save_audio
from vocoder.outputs import OutputError


def sine(freq, sample_rate, duration, amplitude=0.5):
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ----------------------------------------------------------------------------- check_audio


def test_check_audio_accepts_and_converts():
    x = sine(100, 8000, 0.1)
    out = check_audio(x)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, x)
    assert check_audio(x.astype(np.float64)).dtype == np.float64
    np.testing.assert_array_equal(check_audio(torch.from_numpy(x)), x)
    np.testing.assert_array_equal(check_audio(x[None, :]), x)  # (1, samples)
    np.testing.assert_array_equal(check_audio(x[:, None]), x)  # (samples, 1)
    np.testing.assert_array_equal(check_audio(x[::2]), x[::2])  # strided input


def test_check_audio_scales_integers():
    pcm16 = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    np.testing.assert_allclose(check_audio(pcm16), [0, 0.5, -1.0, 32767 / 32768], atol=1e-7)
    pcm8 = np.array([0, 127], dtype=np.uint8)
    assert check_audio(pcm8).dtype == np.float32


def test_check_audio_mixes_channels_either_orientation():
    left, right = sine(100, 8000, 0.1), sine(200, 8000, 0.1)
    expected = (left + right) / 2
    for axis in (1, 0):  # (samples, channels) and (channels, samples)
        mixed = check_audio(np.stack([left, right], axis), mix_channels=True)
        np.testing.assert_allclose(mixed, expected, atol=1e-7)


@pytest.mark.parametrize(
    "audio,kwargs,expected",
    [
        (np.zeros(0), {}, "utt: audio is empty (0 samples)"),
        (np.zeros((0, 1)), {}, "audio is empty"),
        (np.ones(10), dict(min_samples=11), "utt: audio too short: 10 samples, need at least 11"),
        (np.r_[1.0, np.nan, np.inf, 2.0], {}, "utt: audio contains 2 NaN/inf samples"),
        (np.zeros(10), dict(allow_silent=False), "utt: audio is all silent"),
        (np.ones((100, 2)), {}, "utt: multichannel audio of shape (100, 2)"),
        (np.ones((2, 3, 4)), {}, "utt: expected 1-D mono audio, got shape (2, 3, 4)"),
        (np.array(["x", "y"]), {}, "utt: audio must be numeric"),
        (np.array([1 + 1j, 2j]), {}, "must be numeric, got dtype complex128"),
    ],
)
def test_check_audio_errors(audio, kwargs, expected):
    with pytest.raises(AudioError) as err:
        check_audio(audio, name="utt", **kwargs)
    assert isinstance(err.value, ValueError)
    assert expected in str(err.value)


def test_check_audio_silence_allowed_by_default_and_mix_hint():
    assert check_audio(np.zeros(5)).size == 5
    with pytest.raises(AudioError, match=r"mix_channels=True"):
        check_audio(np.ones((100, 2)))


# ----------------------------------------------------------------------------- save / load


@pytest.mark.parametrize(
    "suffix,subtype,atol",
    [(".wav", "PCM_16", 1 / 32768), (".wav", "FLOAT", 0.0), (".flac", "PCM_24", 2 ** -23)],
)
def test_save_load_round_trip(tmp_path, suffix, subtype, atol):
    x = sine(440, 16000, 0.25)
    path = tmp_path / "nested" / "dir" / f"tone{suffix}"
    save_audio(path, x, 16000, subtype=subtype)
    assert path.exists()
    y, sr = load_audio(path)
    assert sr == 16000 and y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=atol + 1e-7)


def test_save_clips_pcm_and_accepts_tensors(tmp_path):
    x = torch.tensor([0.0, 2.0, -3.0, 0.5])
    path = tmp_path / "clip.wav"
    save_audio(path, x, 8000)
    y, _ = load_audio(path)
    np.testing.assert_allclose(y, [0.0, 32767 / 32768, -1.0, 0.5], atol=1 / 32768)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"
    save_audio(path, sine(200, 8000, 0.1), 8000)
    before = path.read_bytes()
    save_audio(path, sine(300, 8000, 0.2), 8000)  # overwrite in place
    assert path.read_bytes() != before
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]

    before = path.read_bytes()

    def disk_full(fd):  # the bytes are in the temp file, then the disk fills up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", disk_full)
    with pytest.raises(OutputError, match=re.escape(f"{path}: cannot write audio (No space left on device)")):
        save_audio(path, sine(500, 8000, 0.1), 8000)
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]  # the temp file is gone


def test_save_rejects_invalid_audio_naming_the_path(tmp_path):
    path = tmp_path / "bad.wav"
    with pytest.raises(AudioError, match=re.escape(f"{path}: audio contains 1 NaN/inf samples")):
        save_audio(path, np.array([0.0, np.nan]), 8000)
    assert not path.exists()


def test_load_resamples(tmp_path):
    path = tmp_path / "tone44k.wav"
    x = sine(1000, 44100, 0.5)
    save_audio(path, x, 44100, subtype="FLOAT")
    y, sr = load_audio(path, sample_rate=16000)
    assert sr == 16000 and y.dtype == np.float32
    assert abs(y.size - 8000) <= 1
    ref = sine(1000, 16000, 0.5)[: y.size]
    inner = slice(200, -200)  # resampler edge effects
    np.testing.assert_allclose(y[inner], ref[inner], atol=5e-3)
    same, sr_same = load_audio(path, sample_rate=44100)
    assert sr_same == 44100
    np.testing.assert_array_equal(same, x)



def test_load_region_reads_only_that_region(tmp_path, monkeypatch):
    path = tmp_path / "tone.flac"
    x = sine(300, 16000, 2.0)
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 16000, subtype="PCM_24")  # stereo FLAC
    full, _ = load_audio(path)
    reads = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        reads.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    y, sr = load_audio(path, start_s=0.5, end_s=0.75)
    assert sr == 16000 and reads == [4000]  # seek, then the region's frames only
    np.testing.assert_array_equal(y, full[8000:12000])
    y, _ = load_audio(path, start_s=1.5, end_s=9.0)  # past the end: cut there
    np.testing.assert_array_equal(y, full[24000:])
    y, _ = load_audio(path, start_s=1.0, end_s=-1)  # negative end: to the end
    np.testing.assert_array_equal(y, full[16000:])
    y, sr = load_audio(path, start_s=0.5, end_s=1.0, sample_rate=8000)
    assert sr == 8000 and abs(y.size - 4000) <= 1
    with pytest.raises(AudioError, match=re.escape(f"{path}: segment 2.5-3.0 s lies outside the recording (2.00 s)")):
        load_audio(path, start_s=2.5, end_s=3.0)
    with pytest.raises(AudioError, match="lies outside the recording"):
        load_audio(path, start_s=1.0, end_s=1.0)

def test_load_mixes_multichannel(tmp_path):
    path = tmp_path / "stereo.wav"
    left, right = sine(300, 16000, 0.2), sine(500, 16000, 0.2, amplitude=0.25)
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    y, _ = load_audio(path)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)
    with pytest.raises(AudioError, match=re.escape(f"{path}: 2 channels; expected mono")):
        load_audio(path, mix_channels=False)


def test_load_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioError, match=re.escape(f"{missing}: no such file")):
        load_audio(missing)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio data at all")
    with pytest.raises(AudioError) as err:
        load_audio(corrupt)
    assert str(err.value).startswith(f"{corrupt}: cannot read audio (")
    assert "\n" not in str(err.value)
    short = tmp_path / "short.wav"
    save_audio(short, np.full(10, 0.1), 16000)
    expected = f"{short}: audio too short: 10 samples, need at least 100"
    with pytest.raises(AudioError, match=re.escape(expected)):
        load_audio(short, min_samples=100)
    with pytest.raises(AudioError, match="need at least 4000"):
        load_audio(short, min_samples=4000, sample_rate=8000)
    nan_file = tmp_path / "nan.wav"
    sf.write(nan_file, np.array([0.0, np.nan, 0.1], np.float32), 8000, subtype="FLOAT")
    expected = f"{nan_file}: audio contains 1 NaN/inf samples"
    with pytest.raises(AudioError, match=re.escape(expected)):
        load_audio(nan_file)
