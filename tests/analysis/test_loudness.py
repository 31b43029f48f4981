"""vocoder.analysis.loudness: DDSP's A-weighted loudness on the project's frame grid."""
import math

import librosa
import numpy as np
import pytest
import torch

from vocoder.analysis.loudness import (
    a_weighted_loudness,
    active_frames,
    default_loudness_n_fft,
)
from vocoder.audio import AudioError


def _tone(freq_hz, amplitude, sample_rate, seconds=0.5):
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float64)


def _noise(n, amplitude=1.0, seed=0):
    return np.random.default_rng(seed).uniform(-amplitude, amplitude, n)


def _middle(x, n_edge=40):
    return float(np.mean(x[n_edge:-n_edge]))


def _ddsp_reference(audio, *, sample_rate, hop_length, n_fft, ref_db, range_db):
    """magenta/ddsp compute_loudness, written with librosa, on centred frames."""
    spec = librosa.stft(audio, n_fft=n_fft, hop_length=hop_length, center=True,
                        pad_mode="constant")
    power_db = 20.0 * np.log10(np.maximum(1e-20, np.abs(spec.T)))
    with np.errstate(divide="ignore"):  # log10(0) at DC, floored at -80 dB by librosa
        weighting = librosa.A_weighting(librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft))
    loudness = np.maximum(power_db + weighting - ref_db, -range_db)
    return loudness.mean(axis=-1)[: math.ceil(audio.size / hop_length)]


def test_matches_ddsp_definition():
    sr, hop = 16000, 64
    x = _tone(440.0, 0.3, sr) + _noise(sr // 2, 0.01, seed=1)
    ours = a_weighted_loudness(x, sample_rate=sr, hop_length=hop, n_fft=2048, ref_db=20.7,
                               min_db=-120.0)
    ref = _ddsp_reference(x, sample_rate=sr, hop_length=hop, n_fft=2048, ref_db=20.7,
                          range_db=120.0)
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    # the defaults at 16 kHz are DDSP's
    np.testing.assert_allclose(a_weighted_loudness(x, sample_rate=sr, hop_length=hop), ref,
                               atol=1e-6)


@pytest.mark.parametrize("sample_rate", [16000, 22050, 44100])
@pytest.mark.parametrize("n_samples", [1, 99, 100, 101, 1234])
@pytest.mark.parametrize("hop_length", [50, 80, 256])
def test_frame_count_is_ceil(sample_rate, n_samples, hop_length):
    x = _noise(n_samples, 0.1).astype(np.float32)
    ld = a_weighted_loudness(x, sample_rate=sample_rate, hop_length=hop_length)
    assert ld.shape == (math.ceil(n_samples / hop_length),)


@pytest.mark.parametrize("average", ["power", "db"])
@pytest.mark.parametrize("sample_rate", [16000, 22050, 44100])
def test_doubling_amplitude_adds_6_db(average, sample_rate):
    hop = sample_rate // 200
    if average == "power":  # a pure tone: every frame's A-weighted power scales by 4
        quiet = _tone(1000.0, 0.1, sample_rate)
    else:  # DDSP's mean of dB shifts by 6.02 dB where no bin sits at the floor
        quiet = _noise(sample_rate // 2, 0.05, seed=2)
    loud_db = a_weighted_loudness(2 * quiet, sample_rate=sample_rate, hop_length=hop,
                                  average=average)
    quiet_db = a_weighted_loudness(quiet, sample_rate=sample_rate, hop_length=hop,
                                   average=average)
    assert _middle(loud_db - quiet_db) == pytest.approx(20 * math.log10(2), abs=0.02)


@pytest.mark.parametrize("sample_rate", [16000, 44100])
def test_low_tone_is_quieter_by_the_a_weighting(sample_rate):
    hop = sample_rate // 100
    kwargs = dict(sample_rate=sample_rate, hop_length=hop, average="power")
    low = _middle(a_weighted_loudness(_tone(100.0, 0.5, sample_rate), **kwargs), 10)
    mid = _middle(a_weighted_loudness(_tone(1000.0, 0.5, sample_rate), **kwargs), 10)
    expected = float(librosa.A_weighting(1000.0) - librosa.A_weighting(100.0))  # ~19.1 dB
    assert mid - low == pytest.approx(expected, abs=0.3)
    # DDSP's dB average ranks them the same way (tones off bin centres, whose leakage
    # lifts many bins above the floor)
    ddsp = dict(sample_rate=sample_rate, hop_length=hop)
    assert _middle(a_weighted_loudness(_tone(1003.0, 0.5, sample_rate), **ddsp), 10) > _middle(
        a_weighted_loudness(_tone(103.0, 0.5, sample_rate), **ddsp), 10
    )


@pytest.mark.parametrize("average", ["db", "power"])
@pytest.mark.parametrize("sample_rate", [16000, 22050, 48000])
def test_full_scale_white_noise_reads_about_zero_db(average, sample_rate):
    x = _noise(sample_rate // 2, 1.0, seed=3)
    ld = a_weighted_loudness(x, sample_rate=sample_rate, hop_length=sample_rate // 100,
                             average=average)
    # Calibrated at 16 kHz; the mean over bins up to Nyquist reads a few dB lower at
    # high rates, where more bins lie in the attenuated top of the A-curve.
    tolerance = 1.0 if sample_rate <= 22050 else 5.0
    assert abs(_middle(ld, 10)) < tolerance


@pytest.mark.parametrize("average", ["db", "power"])
def test_silence_gives_min_db(average):
    ld = a_weighted_loudness(np.zeros(1000), sample_rate=16000, hop_length=80, min_db=-100.0,
                             average=average)
    assert ld.shape == (13,) and np.all(ld == -100.0)


def test_numpy_and_torch_inputs_agree_and_keep_their_kind():
    x = _noise(4000, 0.3, seed=4).astype(np.float32)
    from_numpy = a_weighted_loudness(x, sample_rate=16000, hop_length=80)
    from_torch = a_weighted_loudness(torch.from_numpy(x), sample_rate=16000, hop_length=80)
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float32
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float32
    np.testing.assert_allclose(from_torch.numpy(), from_numpy, atol=1e-4)
    ints = a_weighted_loudness((x * 32767).astype(np.int16), sample_rate=16000, hop_length=80)
    np.testing.assert_allclose(ints, from_numpy, atol=1e-2)


def test_batch_consistency():
    x = np.stack([_noise(3000, a, seed=i) for i, a in enumerate((0.01, 0.1, 0.0))])
    batched = a_weighted_loudness(x, sample_rate=22050, hop_length=110)
    assert batched.shape == (3, math.ceil(3000 / 110))
    for i in range(3):
        np.testing.assert_allclose(
            batched[i], a_weighted_loudness(x[i], sample_rate=22050, hop_length=110), atol=1e-9
        )
    batched_t = a_weighted_loudness(torch.from_numpy(x), sample_rate=22050, hop_length=110)
    np.testing.assert_allclose(batched_t.numpy(), batched, atol=1e-9)


def test_torch_input_is_differentiable():
    x = torch.zeros(2, 2000, dtype=torch.float64)
    x[0] = torch.randn(2000, dtype=torch.float64) * 0.1
    x.requires_grad_(True)
    for average in ("db", "power"):
        ld = a_weighted_loudness(x, sample_rate=16000, hop_length=80, average=average)
        (grad,) = torch.autograd.grad(ld.sum(), x)
        assert torch.isfinite(grad).all() and grad[0].abs().sum() > 0


def test_invalid_input():
    with pytest.raises(AudioError, match="NaN"):
        a_weighted_loudness(np.array([0.0, np.nan, 0.1]), sample_rate=16000, hop_length=80)
    with pytest.raises(AudioError, match=r"clip\[1\]"):
        a_weighted_loudness(np.array([[0.0, 0.1], [np.inf, 0.0]]), sample_rate=16000,
                            hop_length=80, name="clip")
    with pytest.raises(AudioError, match="empty"):
        a_weighted_loudness(np.zeros(0), sample_rate=16000, hop_length=80)
    with pytest.raises(AudioError, match="inf"):
        a_weighted_loudness(torch.tensor([0.0, float("inf")]), sample_rate=16000, hop_length=80)
    with pytest.raises(ValueError, match="hop_length"):
        a_weighted_loudness(np.zeros(100), sample_rate=16000, hop_length=0)
    with pytest.raises(ValueError, match="average"):
        a_weighted_loudness(np.zeros(100), sample_rate=16000, hop_length=80, average="rms")


def test_default_n_fft_covers_128_ms():
    assert default_loudness_n_fft(16000) == 2048
    assert default_loudness_n_fft(22050) == 4096
    assert default_loudness_n_fft(24000) == 4096
    assert default_loudness_n_fft(44100) == 8192
    assert default_loudness_n_fft(48000) == 8192


def test_active_frames_leave_out_silence():
    sr, hop = 16000, 80
    sound = 0.1 * np.random.default_rng(0).standard_normal(sr // 2)  # broadband, as speech is
    x = np.concatenate([np.zeros(sr // 4), sound, np.zeros(sr // 4)])
    ld = a_weighted_loudness(x, sample_rate=sr, hop_length=hop)
    mask = active_frames(ld)
    assert mask.shape == ld.shape and mask.dtype == bool
    frames = np.arange(ld.size) * hop / sr
    # The sound's frames (a window away from its ends) are active, the silence's are not.
    assert mask[(frames > 0.35) & (frames < 0.65)].all()
    assert not mask[(frames < 0.1) | (frames > 0.9)].any()
    assert ld[mask].mean() > ld.mean() + 10
    np.testing.assert_array_equal(active_frames([-10.0, -45.0, -60.0], range_db=40), [True, True, False])
    assert active_frames(np.zeros(0)).shape == (0,)
