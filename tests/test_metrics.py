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



# --------------------------------------------------------------------------- late reverb


def _burst(*, tail_tau_s=None, amplitude=0.5, sr=SR):
    """0.1 s silence, a 0.5 s 440 Hz tone burst, 0.6 s silence; optionally the tone goes
    on after the burst under an exponential envelope exp(-t / tail_tau_s)."""
    t = np.arange(int(1.2 * sr)) / sr
    tone_ = amplitude * np.sin(2 * np.pi * 440.0 * t)
    on = (t >= 0.1) & (t < 0.6)
    env = on.astype(float)
    if tail_tau_s is not None:
        env = np.where(t >= 0.6, np.exp(-(t - 0.6) / tail_tau_s), env)
    return tone_ * env, tone_ * on


def test_late_reverb_energy_of_an_exponential_tail():
    tau, delay, window = 0.08, 0.05, 0.1
    wet, dry = _burst(tail_tau_s=tau)
    got = M.late_reverb_energy_db(wet, dry, SR, delay_s=delay, window_s=window)
    # mean of exp(-2 t / tau) over [delay, delay + window], relative to the burst's power
    expected = 10 * np.log10(tau / (2 * window) * (np.exp(-2 * delay / tau) - np.exp(-2 * (delay + window) / tau)))
    assert got == pytest.approx(expected, abs=0.1)
    # the dry burst itself has no late energy (floored at -120 dB); a tiny noise floor shows up at its level
    assert M.late_reverb_energy_db(dry, dry, SR) == pytest.approx(-120.0)
    noisy = dry + 1e-4 * np.random.default_rng(0).standard_normal(dry.size)
    floor = 10 * np.log10(1e-8 / 0.125)
    assert M.late_reverb_energy_db(noisy, dry, SR) == pytest.approx(floor, abs=0.5)
    # the tail's difference to the dry signal is the expected energy ratio, whatever the gains
    assert M.late_reverb_energy_db(3.0 * wet, dry, SR, delay_s=delay, window_s=window) == pytest.approx(got, abs=1e-9)
    longer = np.concatenate([wet, np.zeros(SR)])  # a signal longer than the reference
    assert M.late_reverb_energy_db(longer, dry, SR, delay_s=delay, window_s=window) == pytest.approx(got, abs=1e-9)
    # a later window sees less of the tail
    later = M.late_reverb_energy_db(wet, dry, SR, delay_s=0.15, window_s=window)
    assert later == pytest.approx(got - 20 * np.log10(np.e) * 0.1 / tau, abs=0.1)


def test_late_reverb_energy_offsets():
    wet, dry = _burst(tail_tau_s=0.08)
    # the window must fit in the silence after the offset (and in the signal)
    assert math.isnan(M.late_reverb_energy_db(wet, dry, SR, delay_s=0.5, window_s=0.2))
    assert math.isnan(M.late_reverb_energy_db(wet[: int(0.7 * SR)], dry, SR))
    # a reference without an offset (active to the end) or silent gives NaN
    assert math.isnan(M.late_reverb_energy_db(wet, np.ones_like(dry), SR))
    assert math.isnan(M.late_reverb_energy_db(wet, np.zeros_like(dry), SR))
    # a gap shorter than delay + window is not an offset: two bursts 0.1 s apart count once
    gap = dry.copy()
    gap[int(0.3 * SR): int(0.4 * SR)] = 0.0
    one = M.late_reverb_energy_db(wet, dry, SR)
    assert M.late_reverb_energy_db(wet, gap, SR) == pytest.approx(one, abs=0.05)
    with pytest.raises(ValueError, match="window_s"):
        M.late_reverb_energy_db(wet, dry, SR, window_s=0.0)
    with pytest.raises(ValueError, match="silence_threshold_db"):
        M.late_reverb_energy_db(wet, dry, SR, silence_threshold_db=-40.0)


# --------------------------------------------------------------------------- conversion

# Synthetic "speakers" (tests/synthetic_voices.py, shared with the CLI test).
from synthetic_voices import SPEAKERS, voice  # noqa: E402


def random_utterance(speaker, seed):
    rng = np.random.default_rng(seed)
    return voice(speaker, rng.integers(0, 4, 3), rng.uniform(0.12, 0.2, 3), seed=seed)


@pytest.fixture(scope="module")
def voices_split():
    """3 training and 2 held-out utterances (other vowels, f0, timing) per speaker."""
    train = [(s, random_utterance(s, 10 * i + j)) for i, s in enumerate(SPEAKERS) for j in range(3)]
    test = [(s, random_utterance(s, 100 + 10 * i + j)) for i, s in enumerate(SPEAKERS)
            for j in range(2)]
    return train, test


def test_log_f0_statistics_hand_made():
    out = M.log_f0_statistics([100.0, 200.0, 0.0])
    assert out["voiced_frames"] == 2
    assert out["log_f0_mean"] == pytest.approx((math.log(100) + math.log(200)) / 2)
    assert out["f0_geomean_hz"] == pytest.approx(math.sqrt(100 * 200))
    assert out["log_f0_std_cents"] == pytest.approx(600.0)  # half an octave either side
    none = M.log_f0_statistics([0.0, 0.0])
    assert none["voiced_frames"] == 0 and math.isnan(none["log_f0_mean"])
    # a track one semitone above the target mean reads +100 cents, an octave below -1200
    track = np.array([110.0, 0.0, 120.0, 130.0])
    target = float(np.mean(np.log(track[track > 0])))
    assert M.log_f0_difference_cents(track * 2 ** (1 / 12), target_log_f0_mean=target) == \
        pytest.approx(100.0)
    assert M.log_f0_difference_cents(track / 2, target_log_f0_mean=target) == \
        pytest.approx(-1200.0)
    assert math.isnan(M.log_f0_difference_cents([0.0], target_log_f0_mean=target))


def test_log_f0_difference_of_a_tone_shifted_by_a_semitone_is_100_cents():
    base = M.utterance_profile(tone(150.0), sample_rate=SR)
    up = M.utterance_profile(tone(150.0 * 2 ** (1 / 12)), sample_rate=SR)
    assert base["f0_geomean_hz"] == pytest.approx(150.0, rel=0.01)
    assert base["mcep_mean"].shape == (24,)
    cents = (up["log_f0_mean"] - base["log_f0_mean"]) * 1200 / math.log(2)
    assert cents == pytest.approx(100.0, abs=3.0)


def test_f0_tracking_hand_made():
    src = np.array([100.0, 110.0, 0.0, 120.0, 130.0])
    out = M.f0_tracking(src, None, src * 2 ** (3 / 12), None, shift_semitones=3)
    assert list(out) == ["f0_track_rmse_cents", "f0_track_gross_error_rate", "f0_track_corr",
                         "f0_track_vuv_error_rate"]
    assert out["f0_track_rmse_cents"] == pytest.approx(0.0, abs=1e-9)
    assert out["f0_track_corr"] == pytest.approx(1.0)
    assert out["f0_track_vuv_error_rate"] == 0.0
    unshifted = M.f0_tracking(src, None, src * 2 ** (3 / 12), None)
    assert unshifted["f0_track_rmse_cents"] == pytest.approx(300.0)
    assert unshifted["f0_track_corr"] == pytest.approx(1.0)  # a constant shift: still 1
    # the output is one frame longer: compared over the shorter; frame 2 voiced in one only
    longer = np.concatenate([src, [140.0]])
    longer[2] = 105.0
    out = M.f0_tracking(src, None, longer, None)
    assert out["f0_track_rmse_cents"] == 0.0 and out["f0_track_vuv_error_rate"] == 0.2


def test_speaker_classifier_separates_held_out_voices(voices_split, tmp_path):
    import json

    train, test = voices_split
    for covariance in ("shared", "per_class"):
        clf = M.SpeakerClassifier(sample_rate=SR, f0_method="dio", covariance=covariance)
        clf.fit(train)
        assert clf.labels == ["high", "low", "mid"]
        assert clf.counts == {"high": 3, "low": 3, "mid": 3}
        assert [clf.predict(x) for _, x in test] == [s for s, _ in test]
    scores = clf.scores(test[0][1])
    assert set(scores) == set(SPEAKERS) and max(scores, key=scores.get) == test[0][0]

    # JSON round trip: same settings, same scores
    path = tmp_path / "clf.json"
    clf.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "vocoder.metrics.SpeakerClassifier" and doc["version"] == 1
    assert doc["settings"]["alpha"] == 0.42 and doc["settings"]["hop_length"] == 80
    again = M.SpeakerClassifier.load(path)
    assert again.settings == clf.settings and again.covariance == "per_class"
    x = test[3][1]
    assert again.scores(x) == pytest.approx(clf.scores(x))


def test_speaker_classifier_ignores_f0_and_level(voices_split):
    train, _ = voices_split
    clf = M.SpeakerClassifier(sample_rate=SR, f0_method="dio").fit(train)
    # the low voice an octave up / the high voice at 60 % of its f0, and at a tenth of
    # the level: still recognised by their formants and tilt
    low_up = voice("low", [0, 1, 2], [0.15] * 3, seed=9, f0_scale=2.0)
    high_down = voice("high", [0, 1, 2], [0.15] * 3, seed=9, f0_scale=0.6)
    assert clf.predict(0.1 * low_up) == "low"
    assert clf.predict(high_down) == "high"


def test_speaker_classifier_errors(tmp_path):
    clf = M.SpeakerClassifier(sample_rate=SR)
    with pytest.raises(ValueError, match="not trained"):
        clf.predict_features(np.zeros(24))
    with pytest.raises(ValueError, match="covariance"):
        M.SpeakerClassifier(sample_rate=SR, covariance="full")
    with pytest.raises(ValueError, match=r"\(n, 24\)"):
        clf.fit_features(["a"], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="2 labels for 1"):
        clf.fit_features(["a", "b"], np.zeros((1, 24)))
    # one vector per class: the spread of all vectors stands in for the within-class one
    clf.fit_features(["a", "b"], np.stack([np.zeros(24), np.ones(24)]))
    assert clf.predict_features(np.full(24, 0.9)) == "b"
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="bad.json: not a speaker classifier"):
        M.SpeakerClassifier.load(bad)
    doc = clf.to_dict()
    doc["classes"]["a"]["var"] = [0.0] * 24
    with pytest.raises(ValueError, match="variance <= 0"):
        M.SpeakerClassifier.from_dict(doc)
    with pytest.raises(ValueError, match="cannot read"):
        M.SpeakerClassifier.load(tmp_path / "absent.json")


def test_evaluate_conversion_of_a_perfect_conversion():
    ref = voice("mid", [0, 1, 2, 3], [0.15] * 4, seed=1)  # the target's sentence
    src = voice("low", [0, 1, 2, 3], [0.15] * 4, seed=3)  # the source speaker's
    conv = voice("mid", [0, 1, 2, 3], [0.22, 0.1, 0.2, 0.1], seed=2)  # target, other timing
    out = M.evaluate_conversion(conv, src, sample_rate=SR, target_reference=ref,
                                target_log_f0_mean=math.log(150.0))
    assert list(out)[:8] == list(M.CONVERSION_METRIC_NAMES)
    # DTW MCD: exactly mcd(..., align="dtw"); the time-stretched copy of the target
    # is much closer than the other speaker
    assert out["mcd_db"] == M.mcd(ref, conv, sample_rate=SR, hop_length=80, align="dtw")
    assert out["mcd_source_db"] == M.mcd(ref, src, sample_rate=SR, hop_length=80, align="dtw")
    assert out["mcd_db"] < 3.0 and out["mcd_source_db"] > 6.0
    # the speakers' f0 lies within a semitone of 150 Hz / 105 Hz
    assert abs(out["log_f0_diff_cents"]) < 120
    assert out["source_log_f0_diff_cents"] == pytest.approx(
        1200 * math.log2(105 / 150), abs=120)
    assert out["predicted"] is None and out["duration_s"] == pytest.approx(0.62)
    # not time-aligned with its source (0.62 s against 0.6 s): f0 tracking is flagged
    assert "length mismatch" in out["warning"]


def test_evaluate_conversion_f0_tracking_and_classifier(voices_split):
    train, _ = voices_split
    clf = M.SpeakerClassifier(sample_rate=SR, f0_method="dio").fit(train)
    src = tone(120.0)
    # correlation of a signal with itself; no reference, no target mean: NaN there
    same = M.evaluate_conversion(src, src, sample_rate=SR, f0_method="dio", classifier=clf)
    assert same["f0_track_corr"] == pytest.approx(1.0)
    assert same["f0_track_rmse_cents"] == 0.0 and same["f0_track_vuv_error_rate"] == 0.0
    assert math.isnan(same["mcd_db"]) and math.isnan(same["log_f0_diff_cents"])
    assert same["predicted"] in SPEAKERS
    # a tone two semitones up follows the source shifted by +2
    up = tone(120.0 * 2 ** (2 / 12))
    out = M.evaluate_conversion(up, src, sample_rate=SR, f0_shift_semitones=2)
    assert out["f0_track_rmse_cents"] < 10 and out["f0_track_corr"] > 0.99
    flat = M.evaluate_conversion(up, src, sample_rate=SR)
    assert flat["f0_track_rmse_cents"] == pytest.approx(200, abs=10)
    # a classifier with other analysis settings analyses on its own: same decision
    x = voice("high", [1, 2], [0.2, 0.2], seed=4)
    harvest = M.evaluate_conversion(x, x, sample_rate=SR, classifier=clf)
    assert harvest["predicted"] == clf.predict(x) == "high"
    longer = M.evaluate_conversion(np.concatenate([x, x[:400]]), x, sample_rate=SR,
                                   f0_method="dio")
    assert "length mismatch" in longer["warning"]


def test_evaluate_conversion_f0_track_method_is_used_for_tracking_only():
    """``f0_track_method`` re-estimates both tracks for the f0_track_* keys (and only
    them): equal to f0_tracking of that estimator's tracks; MCD and log-f0 unchanged."""
    from vocoder.analysis.f0 import estimate_f0

    ref = voice("mid", [0, 1, 2, 3], [0.15] * 4, seed=1)
    src = voice("low", [0, 1, 2, 3], [0.15] * 4, seed=3)
    conv = voice("mid", [0, 1, 2, 3], [0.15] * 4, seed=2)
    kw = dict(sample_rate=SR, target_reference=ref, target_log_f0_mean=math.log(150.0))
    plain = M.evaluate_conversion(conv, src, **kw)
    same = M.evaluate_conversion(conv, src, f0_track_method="harvest", **kw)
    praat = M.evaluate_conversion(conv, src, f0_track_method="praat_ac", **kw)
    assert same == plain
    f0 = {"sample_rate": SR, "hop_length": 80, "method": "praat_ac", "f0_min": 65.0, "f0_max": 800.0}
    want = M.f0_tracking(*estimate_f0(src, **f0), *estimate_f0(conv, **f0))
    for key, value in want.items():
        assert praat[key] == pytest.approx(value, nan_ok=True), key
    assert praat["f0_track_vuv_error_rate"] != plain["f0_track_vuv_error_rate"]  # other voicing
    for key in ("mcd_db", "mcd_source_db", "log_f0_diff_cents", "source_log_f0_diff_cents"):
        assert praat[key] == plain[key]


def test_evaluate_conversion_tracks_in_a_given_and_a_shifted_range():
    """``f0_track_range`` sets the tracking analysis's range; ``shift_f0_range`` moves the
    converted track's range by the item's shift: a 150 Hz voice rendered two octaves up
    (600 Hz) is found in the voice range 60-300 Hz moved to 240-1200 Hz, and missed
    without the move."""
    src = tone(150.0)
    up = tone(600.0)
    kw = dict(sample_rate=SR, f0_method="dio", f0_shift_semitones=24, f0_track_range=(60.0, 300.0))
    moved = M.evaluate_conversion(up, src, shift_f0_range=True, **kw)
    assert moved["f0_track_rmse_cents"] < 30 and moved["f0_track_vuv_error_rate"] < 0.05
    fixed = M.evaluate_conversion(up, src, **kw)  # 600 Hz is outside 60-300 Hz: unvoiced or wrong
    assert fixed["f0_track_vuv_error_rate"] > 0.5 or fixed["f0_track_rmse_cents"] > 300
    # the default range (65-800 Hz) holds both tones: about the same reading
    plain = M.evaluate_conversion(up, src, sample_rate=SR, f0_method="dio", f0_shift_semitones=24)
    assert plain["f0_track_rmse_cents"] == pytest.approx(moved["f0_track_rmse_cents"], abs=5)


def test_summarize_conversion():
    per_utt = {
        "a": {"mcd_db": 4.0, "mcd_source_db": 8.0, "log_f0_diff_cents": -30.0,
              "source_log_f0_diff_cents": 500.0, "f0_track_corr": 0.9, "correct": True},
        "b": {"mcd_db": 6.0, "mcd_source_db": 12.0, "log_f0_diff_cents": 10.0,
              "source_log_f0_diff_cents": -300.0, "f0_track_corr": math.nan,
              "correct": False},
        "c": {"mcd_db": 5.0, "mcd_source_db": math.nan, "log_f0_diff_cents": math.nan,
              "correct": None},
    }
    s = M.summarize_conversion(per_utt)
    assert list(s) == ["count", *M.CONVERSION_SUMMARY_NAMES, "n_valid"]
    assert s["count"] == 3
    assert s["mcd_db"] == 5.0 and s["mcd_source_db"] == 10.0
    assert s["mcd_reduction"] == pytest.approx(0.5)  # over a and b only: 1 - 5 / 10
    assert s["log_f0_abs_diff_cents"] == 20.0 and s["log_f0_diff_cents"] == -10.0
    assert s["source_log_f0_abs_diff_cents"] == 400.0
    assert s["f0_track_corr"] == 0.9 and s["accuracy"] == 0.5
    assert s["n_valid"]["mcd_reduction"] == 2 and s["n_valid"]["accuracy"] == 2
    assert math.isnan(s["f0_track_rmse_cents"]) and s["n_valid"]["f0_track_rmse_cents"] == 0
