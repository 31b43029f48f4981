"""Tests for vocoder.conversion: voice statistics, f0 and loudness transforms, --mix parsing."""
import math

import numpy as np
import pytest

from vocoder.conversion import (
    VoiceStats,
    blend_stats,
    fold_octaves,
    loudness_offset,
    parse_mix,
    speaker_stats,
    transform_f0,
    vtln_factor,
    warp_mfcc,
)

STATS = {"speakers": {
    "low": {"logf0": {"mean": math.log(110.0), "std": 0.1, "count": 10},
            "loudness": {"mean": -40.0, "std": 5.0, "count": 10},
            "loudness_active": {"mean": -30.0, "std": 3.0, "count": 8},
            "f0_percentiles_hz": {"p5": 90.0, "p50": 110.0, "p95": 140.0}},
    "high": {"logf0": {"mean": math.log(220.0), "std": 0.2, "count": 10},
             "loudness": {"mean": -20.0, "std": 5.0, "count": 10},
             "f0_percentiles_hz": {"p5": 180.0, "p50": 220.0, "p95": 280.0}},
}}


def track(seed=0, frames=400):
    """A voiced/unvoiced f0 track around 150 Hz, with its voicing flag."""
    rng = np.random.default_rng(seed)
    f0 = 150.0 * np.exp(0.15 * rng.standard_normal(frames))
    vuv = (rng.random(frames) > 0.3).astype(np.float32)
    return np.where(vuv > 0.5, f0, 0.0).astype(np.float32), vuv


def voiced_log(f0):
    return np.log(f0[f0 > 0].astype(np.float64))


def test_stats_transform_gives_the_target_mean_and_std():
    f0, vuv = track()
    target = speaker_stats(STATS, "high")
    out = transform_f0(f0, vuv, method="stats", source=VoiceStats.from_features(f0, vuv), target=target)
    assert out.dtype == np.float32 and out.shape == f0.shape
    np.testing.assert_array_equal(out == 0, vuv < 0.5)  # unvoiced frames stay 0
    assert voiced_log(out).mean() == pytest.approx(math.log(220.0), abs=1e-5)
    assert voiced_log(out).std() == pytest.approx(0.2, abs=1e-5)
    # With given source statistics it is the affine map of log-f0.
    source = speaker_stats(STATS, "low")
    out = transform_f0(f0, vuv, method="stats", source=source, target=target)
    want = (voiced_log(f0) - math.log(110.0)) / 0.1 * 0.2 + math.log(220.0)
    np.testing.assert_allclose(voiced_log(out), want, atol=1e-5)


def test_shift_none_and_the_semitone_shift():
    f0, vuv = track(1)
    for method in ("none", "shift"):
        np.testing.assert_allclose(transform_f0(f0, vuv, method=method), f0, rtol=1e-6)
        np.testing.assert_allclose(transform_f0(f0, vuv, method=method, shift_semitones=12), 2 * f0, rtol=1e-6)
    src = VoiceStats.from_features(f0, vuv)
    target = speaker_stats(STATS, "low")
    base = transform_f0(f0, vuv, method="stats", source=src, target=target)
    down = transform_f0(f0, vuv, method="stats", source=src, target=target, shift_semitones=-7)
    np.testing.assert_allclose(down, base * 2 ** (-7 / 12), rtol=1e-5)


def test_constant_or_unvoiced_source():
    vuv = np.ones(50, dtype=np.float32)
    flat = np.full(50, 100.0, dtype=np.float32)
    out = transform_f0(flat, vuv, method="stats", source=VoiceStats.from_features(flat, vuv),
                       target=speaker_stats(STATS, "high"))
    np.testing.assert_allclose(out, 220.0, rtol=1e-5)  # no spread to scale: the mean moves
    silent = np.zeros(50, dtype=np.float32)
    src = VoiceStats.from_features(silent, np.zeros(50))
    assert src.logf0_mean is None and src.f0_p50_hz is None
    for method in ("stats", "fold"):
        np.testing.assert_array_equal(transform_f0(silent, np.zeros(50), method=method, source=src,
                                                   target=speaker_stats(STATS, "high")), silent)


@pytest.mark.parametrize("median, low, high, centre, k", [
    (120.0, 195.0, 215.0, 204.0, 1),    # the nearest octave when none fits (range < an octave)
    (440.0, 100.0, 300.0, None, -1),    # 220 and 110 fit; 220 is nearer the centre
    (440.0, 100.0, 300.0, 115.0, -2),   # ... unless the median says otherwise
    (50.0, 380.0, 500.0, None, 3),
    (200.0, 150.0, 300.0, 210.0, 0),
])
def test_fold_octaves(median, low, high, centre, k):
    assert fold_octaves(median, target_low_hz=low, target_high_hz=high, target_median_hz=centre) == k


def test_fold_transform_moves_by_whole_octaves():
    f0, vuv = track(2)
    src = VoiceStats.from_features(f0, vuv)  # median about 150 Hz
    out = transform_f0(f0, vuv, method="fold", source=src, target=speaker_stats(STATS, "low"))
    np.testing.assert_allclose(out, f0, rtol=1e-6)  # just above 90-140 Hz: no octave fits, 0 is nearest
    out = transform_f0(f0, vuv, method="fold", source=src, target=VoiceStats(f0_p5_hz=500, f0_p50_hz=600,
                                                                            f0_p95_hz=900))
    np.testing.assert_allclose(out, 4 * f0, rtol=1e-6)
    with pytest.raises(ValueError, match="percentiles"):
        transform_f0(f0, vuv, method="fold", source=src, target=VoiceStats(logf0_mean=5.0, logf0_std=0.1))


def test_missing_statistics_and_unknown_method():
    f0, vuv = track(3)
    with pytest.raises(ValueError, match="no log-f0 statistics for the target"):
        transform_f0(f0, vuv, method="stats", source=VoiceStats.from_features(f0, vuv), target=VoiceStats())
    with pytest.raises(ValueError, match="unknown f0 transform 'warp'"):
        transform_f0(f0, vuv, method="warp")
    with pytest.raises(ValueError, match=r"no statistics for speaker/instrument 'mid' \(it has: high, low\)"):
        speaker_stats(STATS, "mid", where="stats.json")


def test_parse_mix():
    assert parse_mix("a:0.7, b:0.3") == [("a", pytest.approx(0.7)), ("b", pytest.approx(0.3))]
    assert parse_mix("a:3,b:1") == [("a", 0.75), ("b", 0.25)]
    assert parse_mix("a:1,b:0") == [("a", 1.0), ("b", 0.0)]
    assert parse_mix("x:y:2") == [("x:y", 1.0)]  # the weight follows the last colon
    for bad, needle in [("a", "NAME:WEIGHT"), ("a:-1", "weights >= 0"), ("a:nan", "NAME:WEIGHT"),
                        (":1", "NAME:WEIGHT"), ("a:1,a:2", "given twice"), ("a:0,b:0", "sum to more than 0"),
                        ("", "sum to more than 0")]:
        with pytest.raises(ValueError, match=needle):
            parse_mix(bad)


def test_blend_stats():
    low, high = speaker_stats(STATS, "low"), speaker_stats(STATS, "high")
    assert blend_stats([(low, 1.0), (high, 0.0)]) == low  # exactly: --mix a:1,b:0 is --target a
    half = blend_stats([(low, 0.5), (high, 0.5)])
    assert half.logf0_mean == pytest.approx(math.log(110.0 * 220.0) / 2)
    assert half.logf0_std == pytest.approx(0.15)
    assert half.f0_p50_hz == pytest.approx(math.sqrt(110.0 * 220.0))  # averaged in log-f0
    assert half.loudness_mean_db == pytest.approx(-30.0)
    assert half.loudness_active_db is None  # 'high' has no active-frame loudness
    assert blend_stats([(low, 1.0)]) == low
    with pytest.raises(ValueError, match="positive weight"):
        blend_stats([(low, 0.0)])


def test_loudness_offset():
    low, high = speaker_stats(STATS, "low"), speaker_stats(STATS, "high")
    x = np.concatenate([np.full(30, -120.0), np.full(70, -25.0)])
    src = VoiceStats.from_features(np.zeros(100), np.zeros(100), x)
    assert src.loudness_active_db == pytest.approx(-25.0)
    assert src.loudness_mean_db == pytest.approx(0.3 * -120 + 0.7 * -25)
    assert loudness_offset(source=src, target=low) == pytest.approx(-5.0)  # active frames on both sides
    # Statistics without active-frame loudness: the means over all frames.
    assert loudness_offset(source=src, target=high) == pytest.approx(-20.0 - src.loudness_mean_db)
    with pytest.raises(ValueError, match="no loudness statistics for the target"):
        loudness_offset(source=src, target=VoiceStats())


# ----------------------------------------------------------------- vocal tract length

def test_formant_statistics_are_read_and_blended():
    stats = {"speakers": {"a": {"formants": {"median_hz": [500.0, 1500.0, 2500.0], "frames": 10}},
                          "b": {"formants": {"median_hz": [600.0, 1800.0, 3000.0], "frames": 10}},
                          "c": {}}}
    a, b, c = (speaker_stats(stats, n) for n in "abc")
    assert a.formants_hz == (500.0, 1500.0, 2500.0) and c.formants_hz is None
    half = blend_stats([(a, 0.5), (b, 0.5)])
    assert half.formants_hz == pytest.approx((math.sqrt(5e2 * 6e2), math.sqrt(15e2 * 18e2), math.sqrt(25e2 * 3e3)))
    assert blend_stats([(a, 0.5), (c, 0.5)]).formants_hz is None


def test_vtln_factor():
    assert vtln_factor([500, 1500, 2500], [600, 1800, 3000]) == pytest.approx(1.2)
    assert vtln_factor([600, 1800, 3000], [500, 1500, 2500]) == pytest.approx(1 / 1.2)
    assert vtln_factor([500, 1500, 2500], [550, 1500, 2500]) == pytest.approx(1.1 ** (1 / 3))  # geometric mean
    assert vtln_factor([500, 1500], [5000, 15000]) == 1.25  # clipped
    assert vtln_factor([5000, 15000], [500, 1500]) == 0.8
    for bad in ([], None, [0.0, 1500.0]):
        with pytest.raises(ValueError, match="positive formant"):
            vtln_factor(bad, [500, 1500])


def _log_mel_and_mfcc(log_spectrum_fn, *, alpha=1.0, sr=16000, n_fft=1024, n_mels=128, n_mfcc=30):
    """MFCCs (one frame) of the power spectrum exp(log_spectrum_fn(f / alpha)) through
    the filterbank that `vocoder extract` uses."""
    import torch

    from vocoder.dsp.spectral import mel_filterbank, mfcc_from_log_mel

    f = np.arange(n_fft // 2 + 1) * sr / n_fft
    power = np.exp(log_spectrum_fn(f / alpha))
    fb = mel_filterbank(sample_rate=sr, n_fft=n_fft, n_mels=n_mels, dtype=torch.float64).numpy()
    log_mel = 10 * np.log10(power @ fb + 1e-10)
    return mfcc_from_log_mel(torch.from_numpy(log_mel[None]), n_mfcc=n_mfcc).numpy()


def formant_spectrum(f):
    """A smooth log power spectrum with resonances at 500, 1500 and 2500 Hz."""
    return sum(3.0 * np.exp(-0.5 * ((f - fc) / 120.0) ** 2) for fc in (500.0, 1500.0, 2500.0)) - f / 4000.0


def test_warp_mfcc_equals_the_mfcc_of_the_scaled_spectrum():
    c = _log_mel_and_mfcc(formant_spectrum)
    np.testing.assert_array_equal(warp_mfcc(c, 1.0, sample_rate=16000, n_mels=128), c.astype(np.float32))
    for alpha in (0.87, 1.15):
        want = _log_mel_and_mfcc(formant_spectrum, alpha=alpha)
        got = warp_mfcc(c, alpha, sample_rate=16000, n_mels=128)
        assert got.shape == c.shape and got.dtype == np.float32
        # The warp works on the cepstrally smoothed mel spectrum (30 coefficients): close,
        # and far closer than leaving the MFCCs unwarped.
        err, base = np.linalg.norm(got - want), np.linalg.norm(c - want)
        assert err < 0.25 * base, (alpha, err, base)


def test_warp_mfcc_moves_a_peak_and_undoes_itself():
    import torch

    from vocoder.dsp.spectral import dct_matrix, mel_frequencies

    c = _log_mel_and_mfcc(lambda f: 4.0 * np.exp(-0.5 * ((f - 1000.0) / 150.0) ** 2))
    basis = dct_matrix(128, n_out=30, norm="ortho", dtype=torch.float64).numpy()
    centres = mel_frequencies(n_mels=130, f_min=0.0, f_max=8000.0).numpy()[1:-1]
    peak = lambda m: centres[np.argmax(m @ basis.T)]  # noqa: E731
    assert peak(c[0]) == pytest.approx(1000.0, rel=0.05)
    assert peak(warp_mfcc(c, 1.2, sample_rate=16000, n_mels=128)[0]) == pytest.approx(1200.0, rel=0.05)
    back = warp_mfcc(warp_mfcc(c, 1.2, sample_rate=16000, n_mels=128), 1 / 1.2, sample_rate=16000, n_mels=128)
    assert np.linalg.norm(back - c) < 0.1 * np.linalg.norm(c)
    with pytest.raises(ValueError, match="positive number"):
        warp_mfcc(c, 0.0, sample_rate=16000, n_mels=128)
    with pytest.raises(ValueError, match="n_mfcc <= 20"):
        warp_mfcc(c, 1.1, sample_rate=16000, n_mels=20)
