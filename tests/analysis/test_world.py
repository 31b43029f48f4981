import math

import numpy as np
import pytest
import pyworld
import scipy.signal

from vocoder.analysis.f0 import estimate_f0
from vocoder.analysis.world import (
    code_aperiodicity,
    code_envelope,
    decode_aperiodicity,
    decode_envelope,
    default_alpha,
    default_fft_size,
    mel_cepstrum,
    mel_cepstrum_to_envelope,
    world_features,
    world_synthesize,
)

FORMANTS = ((700, 80), (1220, 90), (2600, 120), (3400, 150))


def vowel(sample_rate, duration, f0_hz=120.0):
    """Flat harmonic excitation through an all-pole formant filter.

    Returns the signal and the filter's power response on ``n_bins`` bins (a function).
    """
    n = int(round(duration * sample_rate))
    phase = 2 * np.pi * f0_hz * np.arange(n) / sample_rate
    k = np.arange(1, int(sample_rate / 2 / f0_hz) + 1)[:, None]
    excitation = np.sum(np.cos(k * phase[None]), axis=0)
    a = np.array([1.0])
    for freq, bandwidth in FORMANTS:
        r = np.exp(-np.pi * bandwidth / sample_rate)
        a = np.convolve(a, [1.0, -2 * r * np.cos(2 * np.pi * freq / sample_rate), r * r])
    x = scipy.signal.lfilter([1.0], a, excitation)
    x = 0.3 * x / np.abs(x).max()

    def power_response(n_bins):
        _, h = scipy.signal.freqz([1.0], a, worN=n_bins, include_nyquist=True)
        return np.abs(h) ** 2

    return x.astype(np.float32), power_response


def tone(f0_hz, sample_rate, duration):
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    k = np.arange(1, int(sample_rate / 2 / f0_hz) + 1)[:, None]
    x = np.sum(np.sin(2 * np.pi * k * f0_hz * t[None]) / k, axis=0)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def freqt(c, order, alpha):
    """SPTK's frequency transform of a cepstrum (the recursion of SPTK ``freqt``)."""
    beta = 1 - alpha * alpha
    g = np.zeros(c.shape[:-1] + (order + 1,))
    for i in range(c.shape[-1] - 1, -1, -1):
        d = g.copy()
        g[..., 0] = c[..., i] + alpha * d[..., 0]
        g[..., 1] = beta * d[..., 0] + alpha * d[..., 1]
        for j in range(2, order + 1):
            g[..., j] = d[..., j - 1] + alpha * (d[..., j] - g[..., j - 1])
    return g


def log_spectral_rms_db(a, b, band=slice(None)):
    d = 10 * np.log10(np.asarray(a, np.float64) / np.asarray(b, np.float64))[..., band]
    return float(np.sqrt(np.mean(d ** 2)))


@pytest.fixture(scope="module")
def vowel16k():
    x, response = vowel(16000, 0.5)
    return x, response, world_features(x, sample_rate=16000, hop_length=80)


@pytest.mark.parametrize(
    "sample_rate,hop_length,n_samples",
    [(16000, 80, 8000), (16000, 80, 8001), (22050, 110, 7000), (22050, 256, 11025),
     (24000, 240, 4799), (44100, 441, 8820)],
)
def test_feature_shapes_on_the_frame_grid(sample_rate, hop_length, n_samples):
    x = tone(150.0, sample_rate, n_samples / sample_rate)
    feats = world_features(x, sample_rate=sample_rate, hop_length=hop_length)
    n_frames = math.ceil(n_samples / hop_length)
    n_bins = default_fft_size(sample_rate=sample_rate) // 2 + 1
    assert feats["f0_hz"].shape == (n_frames,) and feats["f0_hz"].dtype == np.float32
    assert feats["vuv"].dtype == np.bool_
    np.testing.assert_array_equal(feats["vuv"], feats["f0_hz"] > 0)
    for key in ("sp", "ap"):
        assert feats[key].shape == (n_frames, n_bins) and feats[key].dtype == np.float32
    assert np.all(feats["sp"] > 0)
    assert np.all((feats["ap"] >= 0) & (feats["ap"] <= 1))


def test_default_fft_size_matches_pyworld():
    for sample_rate in (8000, 16000, 22050, 24000, 44100, 48000):
        for f0_min in (40.0, 65.0, 71.0, 100.0):
            assert default_fft_size(sample_rate=sample_rate, f0_min=f0_min) == \
                pyworld.get_cheaptrick_fft_size(sample_rate, f0_min)


def test_envelope_is_the_power_response_of_the_vocal_tract(vowel16k):
    _, response, feats = vowel16k
    sp = feats["sp"][10:-10].astype(np.float64).mean(axis=0)
    true = response(sp.size)
    freqs = np.arange(sp.size) * 8000 / (sp.size - 1)
    band = (freqs > 150) & (freqs < 7000)
    d = 10 * np.log10(sp / true)[band]
    d -= d.mean()  # overall gain is arbitrary
    # A magnitude (not power) envelope would be off by half of the ~40 dB range.
    assert np.sqrt(np.mean(d ** 2)) < 1.0
    assert abs(freqs[band][np.argmax(sp[band])] - 700) < 100


def test_aperiodicity_low_for_harmonics_high_for_noise():
    sample_rate = 16000
    x = tone(160.0, sample_rate, 0.6)
    rng = np.random.default_rng(0)
    x[4800:] = 0.1 * rng.standard_normal(4800).astype(np.float32)
    feats = world_features(x, sample_rate=sample_rate, hop_length=80)
    low = slice(1, 3000 * 1024 // sample_rate)
    harmonic = feats["ap"][10:50, low]
    assert feats["vuv"][10:50].all()
    assert harmonic.mean() < 0.1
    noise = feats["ap"][70:110, low]
    assert noise.mean() > 0.9


def test_given_f0_is_used_as_is():
    x = tone(200.0, 16000, 0.4)
    f0, vuv = estimate_f0(x, sample_rate=16000, hop_length=80, method="praat_ac")
    feats = world_features(x, sample_rate=16000, hop_length=80, f0_hz=f0)
    np.testing.assert_array_equal(feats["f0_hz"], f0)
    np.testing.assert_array_equal(feats["vuv"], vuv)


@pytest.mark.parametrize(
    "f0,expected",
    [
        (np.full(79, 200.0),
         "f0_hz has shape (79,), expected (80,) for 6400 samples at hop_length=80"),
        (np.full((80, 1), 200.0), "expected (80,)"),
        (np.r_[np.full(79, 200.0), np.nan], "NaN/inf"),
        (np.r_[np.full(79, 200.0), -1.0], "must be >= 0"),
    ],
)
def test_bad_given_f0(f0, expected):
    x = tone(200.0, 16000, 0.4)
    with pytest.raises(ValueError) as err:
        world_features(x, sample_rate=16000, hop_length=80, f0_hz=f0)
    assert expected in str(err.value)


def test_fft_size_option():
    x = tone(200.0, 16000, 0.3)
    feats = world_features(x, sample_rate=16000, hop_length=80, fft_size=2048)
    assert feats["sp"].shape[1] == 1025 and feats["ap"].shape[1] == 1025
    with pytest.raises(ValueError, match="power of two"):
        world_features(x, sample_rate=16000, hop_length=80, fft_size=1000)
    too_small = r"fft_size=512 is too small for f0_min=65 Hz.*at least 1024"
    with pytest.raises(ValueError, match=too_small):
        world_features(x, sample_rate=16000, hop_length=80, fft_size=512)
    assert world_features(x, sample_rate=16000, hop_length=80, f0_min=100.0,
                          fft_size=512)["sp"].shape[1] == 257


def test_low_sample_rate_and_d4c_threshold():
    x = tone(150.0, 8000, 0.4)
    feats = world_features(x, sample_rate=8000, hop_length=40)
    voiced = feats["vuv"]
    assert voiced.mean() > 0.9
    # D4C's check is off below 16 kHz, so voiced frames keep a low aperiodicity at DC.
    assert np.all(feats["ap"][voiced, 0] < 0.5)
    with pytest.raises(ValueError, match="needs sample_rate >= 16000"):
        world_features(x, sample_rate=8000, hop_length=40, d4c_threshold=0.85)
    with pytest.raises(ValueError, match=r"d4c_threshold must lie in \[0, 1\]"):
        world_features(x, sample_rate=8000, hop_length=40, d4c_threshold=2.0)
    # A threshold of 1 turns every frame aperiodic (the share of power below 4 kHz is < 1).
    y = tone(150.0, 16000, 0.3)
    strict = world_features(y, sample_rate=16000, hop_length=80, d4c_threshold=1.0)
    assert np.all(strict["ap"][:, 0] > 0.99)


def test_bad_audio_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="utt9: audio is all silent"):
        world_features(np.zeros(4000), sample_rate=16000, hop_length=80, name="utt9")
    with pytest.raises(ValueError, match="utt9: audio too short for f0 analysis"):
        world_features(np.ones(100), sample_rate=16000, hop_length=80, name="utt9")
    with pytest.raises(ValueError, match="multichannel"):
        world_features(np.ones((4000, 2)), sample_rate=16000, hop_length=80)
    with pytest.raises(ValueError, match="unknown f0 method"):
        world_features(tone(200.0, 16000, 0.2), sample_rate=16000, hop_length=80, f0_method="x")


def test_envelope_coding_round_trip(vowel16k):
    _, _, feats = vowel16k
    sp = feats["sp"]
    coded = code_envelope(sp, sample_rate=16000, n_dims=40)
    assert coded.shape == (sp.shape[0], 40) and coded.dtype == np.float32
    decoded = decode_envelope(coded, sample_rate=16000, fft_size=1024)
    assert decoded.shape == sp.shape and decoded.dtype == np.float32
    assert log_spectral_rms_db(decoded[10:-10], sp[10:-10]) < 1.0
    with pytest.raises(ValueError, match="n_dims must be an integer in"):
        code_envelope(sp, sample_rate=16000, n_dims=0)
    with pytest.raises(ValueError, match="positive power envelope; 1 values are <= 0"):
        bad = sp.copy()
        bad[3, 7] = 0
        code_envelope(bad, sample_rate=16000, n_dims=40)
    with pytest.raises(ValueError, match="power of two"):
        decode_envelope(coded, sample_rate=16000, fft_size=1000)


@pytest.mark.parametrize("sample_rate,n_bands", [(16000, 1), (22050, 2), (24000, 3), (44100, 5)])
def test_aperiodicity_coding(sample_rate, n_bands):
    x = tone(150.0, sample_rate, 0.3)
    feats = world_features(x, sample_rate=sample_rate, hop_length=sample_rate // 200)
    coded = code_aperiodicity(feats["ap"], sample_rate=sample_rate)
    assert coded.shape == (feats["ap"].shape[0], n_bands) and coded.dtype == np.float32
    fft_size = 2 * (feats["ap"].shape[1] - 1)
    decoded = decode_aperiodicity(coded, sample_rate=sample_rate, fft_size=fft_size)
    assert decoded.shape == feats["ap"].shape
    assert np.all((decoded >= 0) & (decoded <= 1))
    assert np.abs(decoded - feats["ap"]).mean() < 0.05
    with pytest.raises(ValueError, match=f"sample_rate={sample_rate} uses {n_bands}"):
        decode_aperiodicity(np.zeros((4, n_bands + 1)), sample_rate=sample_rate, fft_size=fft_size)


def test_aperiodicity_coding_needs_12k():
    with pytest.raises(ValueError, match="needs sample_rate >= 12000"):
        code_aperiodicity(np.full((3, 257), 0.5), sample_rate=8000)
    with pytest.raises(ValueError, match=r"ap values must lie in \[0, 1\]"):
        code_aperiodicity(np.full((3, 513), 1.5), sample_rate=16000)


def test_mel_cepstrum_with_alpha_zero_is_the_real_cepstrum(vowel16k):
    sp = vowel16k[2]["sp"].astype(np.float64)
    c = np.fft.irfft(np.log(sp), axis=-1)[:, :31]
    c[:, 0] /= 2
    mc = mel_cepstrum(sp, sample_rate=16000, order=30, alpha=0.0)
    assert mc.shape == (sp.shape[0], 31) and mc.dtype == np.float32
    np.testing.assert_allclose(mc, c, atol=1e-5)
    full = mel_cepstrum(sp, sample_rate=16000, order=512, alpha=0.0)
    back = mel_cepstrum_to_envelope(full, sample_rate=16000, fft_size=1024, alpha=0.0)
    np.testing.assert_allclose(back, sp, rtol=1e-3)


@pytest.mark.parametrize("sample_rate", [16000, 22050, 44100])
def test_mel_cepstrum_matches_sptk_frequency_transform(sample_rate):
    # pysptk's sp2mc: real cepstrum of the log power (c[0] halved), then freqt.
    x, _ = vowel(sample_rate, 0.2)
    sp = world_features(x, sample_rate=sample_rate, hop_length=sample_rate // 100)["sp"]
    sp = sp.astype(np.float64)[5:8]
    alpha = default_alpha(sample_rate)
    c = np.fft.irfft(np.log(sp), axis=-1)[:, : sp.shape[1]]
    c[:, 0] /= 2
    reference = freqt(c, 24, alpha)
    mc = mel_cepstrum(sp, sample_rate=sample_rate)
    assert mc.shape == (3, 25)
    np.testing.assert_allclose(mc, reference, atol=2e-3)


@pytest.mark.parametrize("sample_rate", [16000, 22050])
def test_mel_cepstrum_round_trip_smooths_the_envelope(sample_rate):
    x, _ = vowel(sample_rate, 0.3)
    sp = world_features(x, sample_rate=sample_rate, hop_length=sample_rate // 200)["sp"][10:-10]
    fft_size = 2 * (sp.shape[1] - 1)
    mc = mel_cepstrum(sp, sample_rate=sample_rate, order=24)
    back = mel_cepstrum_to_envelope(mc, sample_rate=sample_rate, fft_size=fft_size)
    below = int(0.9 * (sp.shape[1] - 1))  # the excitation stops at the last harmonic
    assert log_spectral_rms_db(back, sp, slice(1, below)) < 1.5
    # More coefficients fit better.
    mc60 = mel_cepstrum(sp, sample_rate=sample_rate, order=60)
    back60 = mel_cepstrum_to_envelope(mc60, sample_rate=sample_rate, fft_size=fft_size)
    band = slice(1, below)
    assert log_spectral_rms_db(back60, sp, band) < log_spectral_rms_db(back, sp, band)


def test_mel_cepstrum_gain_and_batch(vowel16k):
    sp = vowel16k[2]["sp"][20:30].astype(np.float64)
    mc = mel_cepstrum(sp, sample_rate=16000)
    louder = mel_cepstrum(sp * 4.0, sample_rate=16000)
    np.testing.assert_allclose(louder[:, 0] - mc[:, 0], np.log(2.0), atol=1e-5)
    np.testing.assert_allclose(louder[:, 1:], mc[:, 1:], atol=1e-5)
    batch = mel_cepstrum(np.stack([sp, sp * 4.0]), sample_rate=16000)
    assert batch.shape == (2, 10, 25)
    np.testing.assert_allclose(batch[1], louder, atol=1e-6)


def test_mel_cepstrum_bad_input():
    sp = np.ones((4, 513))
    with pytest.raises(ValueError, match=r"order must be an integer in \[0, 512\]"):
        mel_cepstrum(sp, sample_rate=16000, order=513)
    with pytest.raises(ValueError, match=r"alpha must lie in \(-1, 1\)"):
        mel_cepstrum(sp, sample_rate=16000, alpha=1.0)
    with pytest.raises(ValueError, match="1 values are <= 0"):
        mel_cepstrum(np.r_[np.ones(512), -1.0], sample_rate=16000)
    with pytest.raises(ValueError, match="NaN/inf"):
        mel_cepstrum(np.r_[np.ones(512), np.inf], sample_rate=16000)
    with pytest.raises(ValueError, match="even integer"):
        mel_cepstrum_to_envelope(np.zeros(25), sample_rate=16000, fft_size=1023)


def test_default_alpha():
    assert default_alpha(16000) == 0.42
    assert default_alpha(22050) == 0.45
    assert default_alpha(24000) == 0.46
    assert default_alpha(44100) == 0.53
    assert default_alpha(48000) == 0.55
    # Other rates: the mel-scale fit, which lands close to the table where they overlap.
    assert 0.31 < default_alpha(12000) < 0.42
    assert 0.55 < default_alpha(96000) < 0.7


def test_against_pysptk_if_installed(vowel16k):
    pysptk = pytest.importorskip("pysptk")
    sp = vowel16k[2]["sp"][20:23].astype(np.float64)
    reference = pysptk.conversion.sp2mc(sp, 24, 0.42)
    np.testing.assert_allclose(mel_cepstrum(sp, sample_rate=16000), reference, atol=2e-3)
    for sample_rate in (12000, 96000):
        assert abs(default_alpha(sample_rate) - pysptk.util.mcepalpha(sample_rate)) < 0.002


@pytest.mark.parametrize(
    "sample_rate,hop_length,n_samples",
    [(16000, 80, 4800), (16000, 80, 4801), (22050, 110, 6615), (44100, 256, 8000)],
)
def test_world_synthesize_length_and_copy_synthesis(sample_rate, hop_length, n_samples):
    x = tone(180.0, sample_rate, n_samples / sample_rate)
    feats = world_features(x, sample_rate=sample_rate, hop_length=hop_length)
    y = world_synthesize(feats["f0_hz"], feats["sp"], feats["ap"],
                         sample_rate=sample_rate, hop_length=hop_length)
    n_frames = math.ceil(n_samples / hop_length)
    assert y.shape == (n_frames * hop_length,) and y.dtype == np.float32
    f0, vuv = estimate_f0(y[:n_samples], sample_rate=sample_rate, hop_length=hop_length,
                          method="dio")
    inner = slice(4, -4)
    assert vuv[inner].mean() > 0.9
    assert np.all(np.abs(f0[inner][vuv[inner]] / 180.0 - 1) < 0.01)
    level_in, level_out = np.sqrt(np.mean(x ** 2)), np.sqrt(np.mean(y[:n_samples] ** 2))
    assert abs(20 * np.log10(level_out / level_in)) < 3.0


def test_world_synthesize_bad_input():
    f0 = np.full(10, 150.0)
    sp = np.ones((10, 513))
    ap = np.full((10, 513), 0.1)
    kw = dict(sample_rate=16000, hop_length=80)
    with pytest.raises(ValueError, match="shapes disagree"):
        world_synthesize(f0[:9], sp, ap, **kw)
    with pytest.raises(ValueError, match="shapes disagree"):
        world_synthesize(f0, sp, ap[:, :257], **kw)
    with pytest.raises(ValueError, match="power of two"):
        world_synthesize(f0, sp[:, :500], ap[:, :500], **kw)
    with pytest.raises(ValueError, match=r"ap values must lie in \[0, 1\]"):
        world_synthesize(f0, sp, ap + 1.0, **kw)
    with pytest.raises(ValueError, match="f0_hz must be >= 0"):
        world_synthesize(-f0, sp, ap, **kw)
    with pytest.raises(ValueError, match="hop_length must be a positive integer"):
        world_synthesize(f0, sp, ap, sample_rate=16000, hop_length=0)
