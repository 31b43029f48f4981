"""Tests of vocoder.metrics: exact values on hand-made inputs and properties on tones."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from vocoder import metrics as M

SR = 16000
HOP = 80


def tone(f0=120.0, seconds=0.5, *, sr=SR, noise=1e-3, seed=0):
    """Harmonic tone with 1/k harmonics up to 7.9 kHz, slight vibrato, a low noise floor."""
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1.0 + 0.03 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(0.3 / k * np.sin(k * phase) for k in range(1, int(7900 / f0)))
    return x + noise * np.random.default_rng(seed).standard_normal(t.size)


def vowel_sequence(durations, f0=140.0):
    """Four 'vowels' (harmonic tones with two formants each) of the given durations."""
    formants = [(700, 1200), (300, 2300), (500, 900), (400, 1900)]
    parts = []
    for (f1, f2), dur in zip(formants, durations):
        t = np.arange(int(dur * SR)) / SR
        x = np.zeros(t.size)
        for k in range(1, int(7000 / f0)):
            fk = k * f0
            amp = 1 / (1 + ((fk - f1) / 80) ** 2) + 1 / (1 + ((fk - f2) / 80) ** 2) + 0.01
            x += amp * np.sin(2 * np.pi * fk * t)
        parts.append(x)
    return 0.1 * np.concatenate(parts)


# --------------------------------------------------------------------------- DTW


def test_dtw_path_hand_computed():
    cost = np.array([[1, 3, 4],
                     [2, 1, 3],
                     [4, 2, 1],
                     [5, 4, 2]], dtype=float)
    # D = [[1, 4, 8], [3, 2, 5], [7, 4, 3], [12, 8, 5]]
    path = M.dtw_path(cost)
    assert path.tolist() == [[0, 0], [1, 1], [2, 2], [3, 2]]
    assert path.dtype == np.int64


def test_dtw_path_single_row_and_column():
    assert M.dtw_path(np.ones((1, 4))).tolist() == [[0, 0], [0, 1], [0, 2], [0, 3]]
    assert M.dtw_path(np.ones((3, 1))).tolist() == [[0, 0], [1, 0], [2, 0]]
    assert M.dtw_path(np.zeros((1, 1))).tolist() == [[0, 0]]


def _brute_force_cost(cost):
    n, m = cost.shape
    best = {}

    def go(i, j):
        if (i, j) in best:
            return best[i, j]
        if i == 0 and j == 0:
            value = cost[0, 0]
        else:
            steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
            prev = [go(a, b) for a, b in steps if a >= 0 and b >= 0]
            value = cost[i, j] + min(prev)
        best[i, j] = value
        return value

    return go(n - 1, m - 1)


@pytest.mark.parametrize("shape", [(5, 7), (8, 3), (6, 6)])
def test_dtw_path_is_optimal_and_valid(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        cost = rng.random(shape)
        path = M.dtw_path(cost)
        assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (shape[0] - 1, shape[1] - 1)
        steps = np.diff(path, axis=0)
        assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(axis=1) >= 1).all()
        assert cost[path[:, 0], path[:, 1]].sum() == pytest.approx(_brute_force_cost(cost))


def test_dtw_path_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        M.dtw_path(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        M.dtw_path(np.array([[1.0, np.nan]]))


# --------------------------------------------------------------------------- MCD


def test_frame_mcd_exact_value_and_c0_ignored():
    ref = np.zeros((2, 25))
    hyp = np.zeros((2, 25))
    hyp[:, 0] = 5.0  # gain: ignored
    hyp[1, 1] = 1.0
    d = M.frame_mcd(ref, hyp)
    assert d[0] == 0.0
    assert d[1] == pytest.approx(10 / math.log(10) * math.sqrt(2))


def test_mcd_of_identical_signal_is_zero():
    x = tone()
    assert M.mcd(x, x, sample_rate=SR, hop_length=HOP) == 0.0
    assert M.mcd(x, x, sample_rate=SR, hop_length=HOP, align="dtw") == 0.0


def test_mcd_grows_with_distortion():
    x = tone()
    mild = sosfilt(butter(4, 4000, fs=SR, output="sos"), x)
    strong = sosfilt(butter(4, 1500, fs=SR, output="sos"), x)
    d_mild = M.mcd(x, mild, sample_rate=SR, hop_length=HOP)
    d_strong = M.mcd(x, strong, sample_rate=SR, hop_length=HOP)
    assert 1.0 < d_mild < d_strong


def test_mcd_ignores_gain():
    x = tone()
    assert M.mcd(x, 0.5 * x, sample_rate=SR, hop_length=HOP) < 0.05


def test_dtw_mcd_of_time_stretched_copy_is_much_smaller():
    ref = vowel_sequence([0.15, 0.15, 0.15, 0.15])
    hyp = vowel_sequence([0.22, 0.10, 0.20, 0.10])
    plain = M.mcd(ref, hyp, sample_rate=SR, hop_length=HOP)
    aligned = M.mcd(ref, hyp, sample_rate=SR, hop_length=HOP, align="dtw")
    assert aligned < 0.3 * plain
    assert aligned < 1.5


def test_mcd_rejects_bad_settings():
    x = tone(seconds=0.2)
    with pytest.raises(ValueError, match="align"):
        M.mcd(x, x, sample_rate=SR, hop_length=HOP, align="fast")
    with pytest.raises(ValueError, match="silent"):
        M.mcd(np.zeros(4000), x, sample_rate=SR, hop_length=HOP)


# --------------------------------------------------------------------------- f0


def test_f0_metrics_100_cent_offset():
    ref = np.array([100.0, 110.0, 120.0, 130.0, 0.0])
    hyp = ref * 2 ** (100 / 1200)
    out = M.f0_metrics(ref, ref > 0, hyp, hyp > 0)
    assert list(out) == ["f0_rmse_cents", "f0_gross_error_rate", "vuv_error_rate",
                         "f0_l1_midi", "f0_corr"]
    assert out["f0_rmse_cents"] == pytest.approx(100.0)
    assert out["f0_gross_error_rate"] == 1.0
    assert out["vuv_error_rate"] == 0.0
    assert out["f0_l1_midi"] == pytest.approx(1.0)
    assert out["f0_corr"] == pytest.approx(1.0)


def test_f0_metrics_hand_made_mixture():
    ref = np.array([200.0, 200.0, 200.0, 200.0, 0.0, 0.0])
    hyp = np.array([200.0, 200 * 2 ** (30 / 1200), 200 * 2 ** (-60 / 1200), 0.0, 150.0, 0.0])
    out = M.f0_metrics(ref, None, hyp, None)
    # voiced in both: frames 0-2 with errors 0, +30, -60 cents
    assert out["f0_rmse_cents"] == pytest.approx(math.sqrt((0 + 30**2 + 60**2) / 3))
    assert out["f0_gross_error_rate"] == pytest.approx(1 / 3)
    assert out["f0_l1_midi"] == pytest.approx(0.3)
    assert out["vuv_error_rate"] == pytest.approx(2 / 6)  # frames 3 and 4
    assert math.isnan(out["f0_corr"])  # constant reference track


def test_f0_metrics_without_common_voiced_frames():
    out = M.f0_metrics([100.0, 0.0], [True, False], [0.0, 100.0], [False, True])
    assert out["vuv_error_rate"] == 1.0
    assert all(math.isnan(out[k]) for k in ("f0_rmse_cents", "f0_gross_error_rate",
                                            "f0_l1_midi", "f0_corr"))


def test_f0_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="different lengths"):
        M.f0_metrics([100.0, 100.0], None, [100.0], None)
    with pytest.raises(ValueError, match="marked voiced"):
        M.f0_metrics([0.0], [True], [100.0], None)


# --------------------------------------------------------------------------- loudness, mssd


def test_loudness_l1_of_doubled_signal_is_6_02_db():
    x = 0.4 * tone()
    assert M.loudness_l1(x, x, sample_rate=SR, hop_length=HOP) == 0.0
    value = M.loudness_l1(x, 2 * x, sample_rate=SR, hop_length=HOP)
    assert value == pytest.approx(20 * math.log10(2), abs=0.01)
    # DDSP's own average (floored dB per bin) moves less for a harmonic tone
    ddsp = M.loudness_l1(x, 2 * x, sample_rate=SR, hop_length=HOP, average="db")
    assert 0 < ddsp < value


def test_multiscale_spectral_distance():
    x = tone()
    assert M.multiscale_spectral_distance(x, x) == 0.0
    y = tone(f0=130.0)
    d = M.multiscale_spectral_distance(x, y)
    assert d > 0 and math.isfinite(d)
    assert M.multiscale_spectral_distance(x, np.concatenate([y, y[:100]])) == pytest.approx(d)


# --------------------------------------------------------------------------- evaluate_pair etc.


def test_evaluate_pair_identical_signal():
    x = tone()
    out = M.evaluate_pair(x, x, sample_rate=SR)
    assert list(out)[:8] == list(M.METRIC_NAMES)
    assert out["mcd_db"] == 0.0 and out["mssd"] == 0.0 and out["loudness_l1_db"] == 0.0
    assert out["f0_rmse_cents"] == 0.0 and out["vuv_error_rate"] == 0.0
    assert out["f0_corr"] == pytest.approx(1.0)
    assert out["duration_s"] == pytest.approx(0.5)
    assert "warning" not in out


def test_evaluate_pair_lengths_and_resampling():
    x = tone()
    out = M.evaluate_pair(x, np.concatenate([x, np.zeros(400)]), sample_rate=SR)
    assert "length mismatch" in out["warning"] and out["mcd_db"] == 0.0
    out = M.evaluate_pair(x, np.concatenate([x, np.zeros(40)]), sample_rate=SR)
    assert "warning" not in out

    import soxr

    hyp = soxr.resample(x, SR, 22050)
    out = M.evaluate_pair(x, hyp, sample_rate=SR, hyp_sample_rate=22050)
    back = soxr.resample(hyp, 22050, SR)
    assert out == M.evaluate_pair(x, back, sample_rate=SR)
    assert out["f0_rmse_cents"] < 5 and out["loudness_l1_db"] < 0.5


def test_evaluate_pair_dtw_leaves_mssd_undefined():
    x = tone()
    out = M.evaluate_pair(x, x, sample_rate=SR, align="dtw")
    assert out["mcd_db"] == 0.0 and math.isnan(out["mssd"])


def test_summarize_ignores_nan():
    per_utt = {
        "a": {"mcd_db": 1.0, "f0_corr": math.nan, "warning": "x"},
        "b": {"mcd_db": 3.0, "f0_corr": 0.5},
        "c": {"mcd_db": math.nan, "f0_corr": None},
    }
    s = M.summarize(per_utt)
    assert s["count"] == 3
    assert s["mcd_db"] == 2.0 and s["f0_corr"] == 0.5
    assert s["n_valid"] == {"mcd_db": 2, "f0_corr": 1}
    assert "warning" not in s
    assert M.summarize({}) == {"count": 0, "n_valid": {}}


def test_rtf():
    assert M.rtf(0.5, 2.0) == 0.25
    with pytest.raises(ValueError):
        M.rtf(1.0, 0.0)

