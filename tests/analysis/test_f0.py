import math

import numpy as np
import pytest
import torch

from vocoder.analysis.f0 import (
    F0_METHODS,
    estimate_f0,
    interpolate_log_f0,
    min_f0_samples,
)
from vocoder.audio import AudioError

EDGE_S = 0.012  # analysis edges excluded from accuracy checks (seconds at each end)


def harmonic_tone(f0_of_t, sample_rate, duration, *, amplitude=0.3):
    """Band-limited tone with 1/k harmonics; ``f0_of_t`` maps times (s) to Hz."""
    n = int(round(duration * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = f0_of_t(t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    n_harm = int(sample_rate / 2 / f0.max())
    k = np.arange(1, n_harm + 1)[:, None]
    x = np.sum(np.sin(k * phase[None]) / k, axis=0)
    return (amplitude * x / np.abs(x).max()).astype(np.float32)


def constant(f0_hz):
    return lambda t: np.full_like(t, f0_hz)


def glide(f_start, f_end, duration):
    return lambda t: f_start * (f_end / f_start) ** (t / duration)


def frame_times(n_frames, hop_length, sample_rate):
    return np.arange(n_frames) * hop_length / sample_rate


def inner_frames(n_frames, hop_length, sample_rate, duration):
    t = frame_times(n_frames, hop_length, sample_rate)
    return (t >= EDGE_S) & (t <= duration - EDGE_S)


def assert_tracks(f0, vuv, ref_hz, region, *, tol=0.01, min_voiced=0.95):
    assert vuv[region].mean() >= min_voiced, f"voiced fraction {vuv[region].mean():.2f}"
    sel = region & vuv
    rel = np.abs(f0[sel] / ref_hz[sel] - 1)
    bad_frames = np.where(sel)[0][rel >= tol]
    assert rel.max() < tol, f"max relative error {rel.max():.4f} at frames {bad_frames}"


@pytest.mark.parametrize("method", F0_METHODS)
@pytest.mark.parametrize("sample_rate,hop_length", [(16000, 80), (22050, 110)])
@pytest.mark.parametrize("f0_hz", [110.0, 220.0, 300.0])
def test_constant_tone_within_one_percent(method, sample_rate, hop_length, f0_hz):
    duration = 0.4
    x = harmonic_tone(constant(f0_hz), sample_rate, duration)
    f0, vuv = estimate_f0(x, sample_rate=sample_rate, hop_length=hop_length, method=method)
    region = inner_frames(len(f0), hop_length, sample_rate, duration)
    assert_tracks(f0, vuv, np.full(len(f0), f0_hz), region)


@pytest.mark.parametrize("method", F0_METHODS)
def test_constant_tone_44k(method):
    sample_rate, hop_length, duration = 44100, 220, 0.3
    x = harmonic_tone(constant(180.0), sample_rate, duration)
    f0, vuv = estimate_f0(x, sample_rate=sample_rate, hop_length=hop_length, method=method)
    assert len(f0) == math.ceil(len(x) / hop_length)
    region = inner_frames(len(f0), hop_length, sample_rate, duration)
    assert_tracks(f0, vuv, np.full(len(f0), 180.0), region)


@pytest.mark.parametrize("method", F0_METHODS)
@pytest.mark.parametrize("sample_rate,hop_length", [(16000, 80), (22050, 256)])
def test_glide_follows_the_frame_grid(method, sample_rate, hop_length):
    # A frame-time misalignment of a few ms would show up as a bias on this glide.
    duration = 0.8
    track = glide(150.0, 260.0, duration)
    x = harmonic_tone(track, sample_rate, duration)
    f0, vuv = estimate_f0(x, sample_rate=sample_rate, hop_length=hop_length, method=method)
    t = frame_times(len(f0), hop_length, sample_rate)
    region = inner_frames(len(f0), hop_length, sample_rate, duration)
    assert_tracks(f0, vuv, track(t), region)


@pytest.mark.parametrize("method", ["harvest", "dio", "praat_ac"])
@pytest.mark.parametrize("sample_rate,hop_length", [(16000, 80), (22050, 256)])
def test_no_time_offset_on_steep_glide(method, sample_rate, hop_length):
    # Two octaves in 0.6 s: a 1 ms offset from the grid is a 0.23% bias in f0.
    # (praat_cc is left out: Praat's cross-correlation refers its estimate to a point
    # about (1/f0_min - 1/f0)/2 before the frame centre, which estimate_f0 documents.)
    duration = 0.6
    track = glide(100.0, 400.0, duration)
    x = harmonic_tone(track, sample_rate, duration)
    f0, vuv = estimate_f0(x, sample_rate=sample_rate, hop_length=hop_length, method=method)
    t = frame_times(len(f0), hop_length, sample_rate)
    sel = vuv & (t > 0.03) & (t < duration - 0.03)
    bias = np.mean(np.log(f0[sel] / track(t[sel])))
    assert abs(bias) < 0.0023, f"bias {bias:.5f} = {bias / np.log(4) * duration * 1e3:.2f} ms"


@pytest.mark.parametrize("method", F0_METHODS)
@pytest.mark.parametrize("sample_rate,hop_length", [(16000, 80), (22050, 110)])
def test_silence_gap_is_unvoiced(method, sample_rate, hop_length):
    duration, gap = 0.8, (0.3, 0.5)
    x = harmonic_tone(constant(200.0), sample_rate, duration)
    x[int(gap[0] * sample_rate):int(gap[1] * sample_rate)] = 0
    f0, vuv = estimate_f0(x, sample_rate=sample_rate, hop_length=hop_length, method=method)
    t = frame_times(len(f0), hop_length, sample_rate)
    margin = 0.03
    in_gap = (t > gap[0] + margin) & (t < gap[1] - margin)
    assert not vuv[in_gap].any()
    assert np.all(f0[in_gap] == 0)
    before = (t > EDGE_S) & (t < gap[0] - margin)
    after = (t > gap[1] + margin) & (t < duration - EDGE_S)
    on_tone = before | after
    assert_tracks(f0, vuv, np.full(len(f0), 200.0), on_tone)


@pytest.mark.parametrize("method", F0_METHODS)
def test_frame_count_is_exact(method):
    sample_rate = 16000
    rng = np.random.default_rng(1)
    base = harmonic_tone(constant(170.0), sample_rate, 0.2) + 0.01 * rng.standard_normal(3200)
    for n_samples in (739, 800, 801, 1599, 1600, 2561, 3200):
        for hop_length in (80, 110, 256, 240):
            f0, vuv = estimate_f0(base[:n_samples], sample_rate=sample_rate,
                                  hop_length=hop_length, method=method)
            expected = math.ceil(n_samples / hop_length)
            assert f0.shape == (expected,), (n_samples, hop_length)
            assert vuv.shape == (expected,)


@pytest.mark.parametrize("method", F0_METHODS)
def test_output_types_and_vuv_consistency(method):
    x = harmonic_tone(constant(150.0), 16000, 0.3)
    x[2400:3600] = 0
    f0, vuv = estimate_f0(x, sample_rate=16000, hop_length=80, method=method)
    assert f0.dtype == np.float32 and vuv.dtype == np.bool_
    np.testing.assert_array_equal(vuv, f0 > 0)
    assert vuv.any() and not vuv.all()
    assert np.all(np.isfinite(f0)) and np.all(f0 >= 0)


def test_tensor_int16_and_scaled_inputs_agree():
    x = harmonic_tone(constant(140.0), 16000, 0.3)
    ref = estimate_f0(x, sample_rate=16000, hop_length=80, method="dio")
    as_int16 = np.round(x * 32767).astype(np.int16)
    for audio in (torch.from_numpy(x), x.astype(np.float64), x[None, :]):
        f0, vuv = estimate_f0(audio, sample_rate=16000, hop_length=80, method="dio")
        np.testing.assert_allclose(f0, ref[0], rtol=1e-5)
        np.testing.assert_array_equal(vuv, ref[1])
    f0, _ = estimate_f0(as_int16, sample_rate=16000, hop_length=80, method="dio")
    np.testing.assert_allclose(f0[ref[1]], ref[0][ref[1]], rtol=1e-3)


def test_multichannel_needs_mix_channels():
    x = harmonic_tone(constant(210.0), 16000, 0.3)
    stereo = np.stack([x, 0.5 * x], axis=1)  # (samples, channels)
    with pytest.raises(AudioError, match="multichannel.*mix_channels=True"):
        estimate_f0(stereo, sample_rate=16000, hop_length=80)
    f0, vuv = estimate_f0(stereo, sample_rate=16000, hop_length=80, method="praat_ac",
                          mix_channels=True)
    ref_f0, ref_vuv = estimate_f0(0.75 * x, sample_rate=16000, hop_length=80, method="praat_ac")
    np.testing.assert_allclose(f0, ref_f0, rtol=1e-5)
    np.testing.assert_array_equal(vuv, ref_vuv)


def test_shortest_accepted_length():
    need = min_f0_samples(sample_rate=16000, f0_min=65.0)
    assert need == math.ceil(3 * 16000 / 65.0)
    x = harmonic_tone(constant(200.0), 16000, 0.1)
    for method in F0_METHODS:
        f0, _ = estimate_f0(x[:need], sample_rate=16000, hop_length=80, method=method)
        assert len(f0) == math.ceil(need / 80)
    with pytest.raises(AudioError) as err:
        estimate_f0(x[:need - 1], sample_rate=16000, hop_length=80, name="utt7")
    msg = str(err.value)
    for part in ("utt7", "too short", f"{need - 1} samples", f"at least {need}",
                 "three periods of f0_min=65 Hz"):
        assert part in msg


@pytest.mark.parametrize(
    "audio,expected",
    [
        (np.zeros(0, np.float32), "empty"),
        (np.zeros(4000, np.float32), "all silent"),
        (np.r_[np.ones(2000), np.nan, np.ones(1999)].astype(np.float32), "1 NaN/inf"),
        (np.r_[np.ones(2000), np.inf, -np.inf, np.ones(1998)], "2 NaN/inf"),
        (np.ones(100, np.float32), "too short"),
        (np.ones((3, 4, 500), np.float32), "expected 1-D mono audio"),
        (np.array(["a"] * 1000), "must be numeric"),
    ],
)
def test_bad_audio_raises_named_value_error(audio, expected):
    with pytest.raises(ValueError) as err:
        estimate_f0(audio, sample_rate=16000, hop_length=80, name="spk1/utt2.wav")
    assert isinstance(err.value, AudioError)
    assert "spk1/utt2.wav" in str(err.value)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        (dict(method="yin"),
         "unknown f0 method 'yin'; choose one of harvest, dio, praat_ac, praat_cc"),
        (dict(f0_min=300.0, f0_max=300.0), "f0_max (300.0 Hz) must be greater than f0_min"),
        (dict(f0_min=500.0, f0_max=100.0), "must be greater than f0_min"),
        (dict(f0_min=0.0), "f0_min must be a positive"),
        (dict(f0_min=-5.0), "f0_min must be a positive"),
        (dict(f0_min=float("nan")), "f0_min must be a positive"),
        (dict(f0_max=8000.0), "below Nyquist"),
        (dict(hop_length=0), "hop_length must be a positive integer"),
        (dict(hop_length=80.5), "hop_length must be a positive integer"),
        (dict(sample_rate=-16000), "sample_rate must be a positive integer"),
        (dict(sample_rate="16k"), "sample_rate must be a positive integer"),
        (dict(voicing_threshold=0.5), "voicing_threshold applies to the Praat methods"),
        (dict(method="praat_ac", voicing_threshold=1.5), "voicing_threshold must lie in [0, 1]"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, expected):
    x = harmonic_tone(constant(200.0), 16000, 0.2)
    args = dict(sample_rate=16000, hop_length=80) | kwargs
    with pytest.raises(ValueError) as err:
        estimate_f0(x, **args)
    assert expected in str(err.value)


@pytest.mark.parametrize("method", ["praat_ac", "praat_cc"])
def test_praat_voicing_threshold_is_monotone(method):
    rng = np.random.default_rng(3)
    x = harmonic_tone(constant(180.0), 16000, 0.6) * np.linspace(0.05, 1, 9600)
    x = x + 0.03 * rng.standard_normal(x.size)
    counts = [
        estimate_f0(x, sample_rate=16000, hop_length=80, method=method,
                    voicing_threshold=th)[1].sum()
        for th in (0.2, 0.45, 0.8)
    ]
    assert counts[0] >= counts[1] >= counts[2]
    assert counts[0] > counts[2]
    default = estimate_f0(x, sample_rate=16000, hop_length=80, method=method)[1].sum()
    assert default == counts[1]  # None means Praat's default, 0.45


def test_f0_range_limits_the_search():
    x = harmonic_tone(constant(300.0), 16000, 0.4)
    for method in F0_METHODS:
        f0, vuv = estimate_f0(x, sample_rate=16000, hop_length=80, method=method,
                              f0_min=70.0, f0_max=200.0)
        # 300 Hz is outside the range: no frame may report it.
        assert not np.any(np.abs(f0[vuv] - 300.0) < 10.0), method


def test_interpolate_log_f0_fills_gaps_in_log_domain():
    f0 = np.array([0, 0, 100, 0, 0, 0, 400, 200, 0, 0], dtype=np.float32)
    vuv = f0 > 0
    lf0 = interpolate_log_f0(f0, vuv)
    assert lf0.dtype == np.float32 and lf0.shape == f0.shape
    expected = np.log([100, 100, 100, 100 * 2 ** 0.5, 200, 200 * 2 ** 0.5, 400, 200, 200, 200])
    np.testing.assert_allclose(lf0, expected, rtol=1e-6)


def test_interpolate_log_f0_batch_tensor_and_fill():
    f0 = torch.tensor([[0.0, 110.0, 0.0, 440.0], [0.0, 0.0, 0.0, 0.0]])
    vuv = f0 > 0
    with pytest.raises(ValueError, match=r"no voiced frame.*\(row 1\).*fill_hz"):
        interpolate_log_f0(f0, vuv)
    lf0 = interpolate_log_f0(f0, vuv, fill_hz=150.0)
    np.testing.assert_allclose(lf0[0], np.log([110, 110, 220, 440]), rtol=1e-6)
    np.testing.assert_allclose(lf0[1], np.log(150.0), rtol=1e-6)


@pytest.mark.parametrize(
    "f0,vuv,expected",
    [
        (np.ones(5), np.ones(4, bool), "shape"),
        (np.array([100.0, 0.0, 100.0]), np.array([True, True, True]), "<= 0 on 1 frames"),
        (np.array([100.0, np.nan]), np.array([True, False]), "NaN/inf"),
        (np.zeros(0), np.zeros(0, bool), "frames > 0"),
    ],
)
def test_interpolate_log_f0_bad_input(f0, vuv, expected):
    with pytest.raises(ValueError) as err:
        interpolate_log_f0(f0, vuv)
    assert expected in str(err.value)


def test_estimate_then_interpolate_is_finite():
    x = harmonic_tone(constant(120.0), 16000, 0.5)
    x[3000:5000] = 0
    f0, vuv = estimate_f0(x, sample_rate=16000, hop_length=80)
    lf0 = interpolate_log_f0(f0, vuv)
    assert np.all(np.isfinite(lf0))
    np.testing.assert_allclose(np.exp(lf0[vuv]), f0[vuv], rtol=1e-5)
