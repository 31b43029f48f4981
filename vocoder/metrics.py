"""Objective metrics of synthesized audio against a reference (numpy in, floats out).

Every function takes mono signals (``(samples,)`` arrays) and returns plain Python
floats (or a dict of them); ``NaN`` marks a metric that is undefined for the input
(e.g. f0 error when no frame is voiced in both signals). Frames follow the project's
grid (docs/architecture.md): frame ``n`` is centred on sample ``n * hop_length`` and a
signal of ``N`` samples has ``ceil(N / hop_length)`` frames. Exact definitions, also
in docs/metrics.md:

``mcd_db`` (:func:`mcd`)
    Mel-cepstral distortion in dB. Each signal is analysed on its own (its own f0,
    WORLD CheapTrick envelope ``sp``), the envelope is turned into a mel-cepstrum
    ``c[0..order]`` (order 24, SPTK convention, all-pass constant
    :func:`~vocoder.analysis.world.default_alpha`), and per frame pair

        ``MCD = (10 / ln 10) * sqrt(2 * sum_{d=1}^{order} (c_ref[d] - c_hyp[d]) ** 2)``

    (``c[0]``, the gain, is excluded), averaged over the frame pairs whose
    *reference* frame is not silent: its envelope energy
    ``E[n] = 10 log10(sum_k sp_ref[n, k])`` lies within ``silence_threshold_db``
    (40 dB) of the loudest reference frame. Frames are paired one to one after
    truncating both signals to the shorter (``align="none"``, copy synthesis) or along
    the DTW path of the mel-cepstra (``align="dtw"``, conversion; see
    :func:`dtw_path`).
``f0_rmse_cents``, ``f0_gross_error_rate``, ``vuv_error_rate``, ``f0_l1_midi``,
``f0_corr`` (:func:`f0_metrics`)
    With ``e = 1200 log2(f0_hyp / f0_ref)`` cents on the frames voiced in both:
    ``sqrt(mean e^2)``; ``mean(|e| > 50)``; ``mean |e| / 100`` (semitones = MIDI
    note numbers, DDSP's f0 L1); the Pearson correlation of ``log f0``. The V/UV error
    rate is the fraction of all frames whose voicing decisions differ.
``loudness_l1_db`` (:func:`loudness_l1`)
    ``mean_n |L_ref[n] - L_hyp[n]|`` of A-weighted loudness per frame
    (:func:`~vocoder.analysis.loudness.a_weighted_loudness`), by default its
    ``average="power"`` form, a level in which doubling the amplitude adds 6.02 dB.
``mssd`` (:func:`multiscale_spectral_distance`)
    The DDSP multi-scale spectral loss used as a metric: sum over FFT sizes
    2048, 1024, ..., 64 (75% overlap, Hann) of the mean L1 distance of the magnitude
    spectrograms plus the mean L1 distance of their natural logs (``eps = 1e-7``).

:func:`evaluate_pair` computes all of them for one utterance, :func:`summarize`
averages per-utterance results, :func:`rtf` gives the real-time factor.

Voice conversion and timbre transfer (:func:`evaluate_conversion`,
:func:`summarize_conversion`):

``mcd_db``, ``mcd_source_db``
    DTW-aligned MCD of the converted utterance, and of its source, against the target
    speaking the same sentence.
``log_f0_diff_cents``, ``source_log_f0_diff_cents`` (:func:`log_f0_difference_cents`)
    ``1200 / ln 2 * (mean_V ln f0 - target_log_f0_mean)``: the mean log-f0 of the
    voiced frames against the target class's (:func:`log_f0_statistics`).
``f0_track_rmse_cents``, ``f0_track_corr``, ... (:func:`f0_tracking`)
    The converted f0 against the source f0 shifted by the expected interval, frame by
    frame: RMSE in cents and Pearson correlation of log-f0 on frames voiced in both.
``predicted``, ``accuracy`` (:class:`SpeakerClassifier`)
    A Gaussian classifier of utterance-mean mel-cepstra (:func:`utterance_profile`)
    trained on the target classes' recordings; accuracy = fraction of converted
    utterances classified as their target.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .audio import check_audio

__all__ = [
    "METRIC_NAMES",
    "dtw_path",
    "frame_mcd",
    "mcd",
    "f0_metrics",
    "loudness_l1",
    "multiscale_spectral_distance",
    "evaluate_pair",
    "summarize",
    "rtf",
    "CONVERSION_METRIC_NAMES",
    "CONVERSION_SUMMARY_NAMES",
    "log_f0_statistics",
    "log_f0_difference_cents",
    "f0_tracking",
    "utterance_profile",
    "SpeakerClassifier",
    "evaluate_conversion",
    "summarize_conversion",
]

#: Keys of the metrics :func:`evaluate_pair` returns, in table order.
METRIC_NAMES = (
    "mcd_db",
    "f0_rmse_cents",
    "f0_gross_error_rate",
    "vuv_error_rate",
    "f0_l1_midi",
    "f0_corr",
    "mssd",
    "loudness_l1_db",
)

_ALIGNS = ("none", "dtw")
_DB_PER_NEPER = 10.0 / math.log(10.0)  # MCD's factor 10 / ln 10
_GROSS_ERROR_CENTS = 50.0
_MSSD_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)

# DTW step codes (where a cell's best predecessor lies).
_DIAG, _VERT, _HORIZ = 0, 1, 2


# --------------------------------------------------------------------------- DTW


def dtw_path(cost_matrix) -> np.ndarray:
    """Minimum-cost monotone alignment path through a cost matrix (dynamic time warping).

    The accumulated cost is ``D[i, j] = C[i, j] + min(D[i-1, j-1], D[i-1, j],
    D[i, j-1])`` (steps diagonal, vertical, horizontal, all weighted 1), from
    ``(0, 0)`` to ``(n - 1, m - 1)``. Ties prefer the diagonal, then the vertical
    step. Each row is computed with vectorised numpy (the horizontal recursion is a
    running minimum of ``tmp - cumsum(C[i])``); memory is one byte per cell for the
    step choices.

    Args:
        cost_matrix: (n, m) finite non-negative local costs (e.g. distances between
            frame ``i`` of one sequence and frame ``j`` of the other).
    Returns:
        (length, 2) int64 array of ``(i, j)`` pairs, starting ``(0, 0)``, ending
        ``(n - 1, m - 1)``; both columns non-decreasing, each step advancing by at
        most one in each.
    Raises:
        ValueError: not a non-empty 2-D finite array.
    """
    c = np.asarray(cost_matrix, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"cost_matrix must be a non-empty (n, m) array, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("cost_matrix contains NaN/inf values")
    return _dtw(c.shape[0], c.shape[1], lambda i: c[i])


def _dtw(n: int, m: int, row_cost: Callable[[int], np.ndarray]) -> np.ndarray:
    """DTW over an (n, m) grid whose row ``i`` of local costs is ``row_cost(i)``."""
    steps = np.empty((n, m), dtype=np.int8)
    first = np.asarray(row_cost(0), dtype=np.float64)
    prev = np.cumsum(first)  # row 0: horizontal steps only
    steps[0, :] = _HORIZ
    for i in range(1, n):
        c = np.asarray(row_cost(i), dtype=np.float64)
        step = np.empty(m, dtype=np.int8)
        tmp = np.empty(m)
        tmp[0] = prev[0]
        step[0] = _VERT
        diag, vert = prev[:-1], prev[1:]
        use_diag = diag <= vert
        tmp[1:] = np.where(use_diag, diag, vert)
        step[1:] = np.where(use_diag, _DIAG, _VERT)
        tmp += c
        # D[i, j] = min(tmp[j], D[i, j-1] + c[j]) = S[j] + min_{k <= j}(tmp[k] - S[k]),
        # S = cumsum(c); the step is horizontal where the minimum lies left of j.
        s = np.cumsum(c)
        g = tmp - s
        run = np.minimum.accumulate(g)
        horiz = run < g
        step[horiz] = _HORIZ
        prev = np.where(horiz, s + run, tmp)
        steps[i] = step
    path = [(n - 1, m - 1)]
    i, j = n - 1, m - 1
    while i > 0 or j > 0:
        s = steps[i, j]
        if s == _DIAG:
            i, j = i - 1, j - 1
        elif s == _VERT:
            i -= 1
        else:
            j -= 1
        path.append((i, j))
    return np.asarray(path[::-1], dtype=np.int64)


# --------------------------------------------------------------------------- MCD


def frame_mcd(ref_mcep, hyp_mcep) -> np.ndarray:
    """Mel-cepstral distortion of paired frames, in dB.

    ``(10 / ln 10) * sqrt(2 * sum_{d >= 1} (ref[:, d] - hyp[:, d]) ** 2)``; column 0
    (the gain ``c0``) is ignored.

    Args:
        ref_mcep, hyp_mcep: (frames, order + 1) mel-cepstra, ``c0`` first.
    Returns:
        (frames,) float64 distortion per frame.
    """
    r = np.asarray(ref_mcep, dtype=np.float64)
    h = np.asarray(hyp_mcep, dtype=np.float64)
    if r.shape != h.shape or r.ndim != 2 or r.shape[1] < 2:
        raise ValueError(f"mel-cepstra must both be (frames, order + 1) with order >= 1, "
                         f"got {r.shape} and {h.shape}")
    diff = r[:, 1:] - h[:, 1:]
    return _DB_PER_NEPER * np.sqrt(2.0 * np.sum(diff * diff, axis=1))


@dataclass
class _Analysis:
    f0_hz: np.ndarray  # (frames,) float64, 0 where unvoiced
    vuv: np.ndarray  # (frames,) bool
    mcep: np.ndarray  # (frames, order + 1) float64
    energy_db: np.ndarray  # (frames,) float64, 10 log10 of the envelope's total power


def _analyse(x, *, sample_rate, hop_length, f0_method, f0_min, f0_max, order, alpha,
             name) -> _Analysis:
    from .analysis.world import mel_cepstrum, world_features

    feats = world_features(x, sample_rate=sample_rate, hop_length=hop_length,
                           f0_method=f0_method, f0_min=f0_min, f0_max=f0_max, name=name)
    sp = feats["sp"].astype(np.float64)
    mc = mel_cepstrum(sp, sample_rate=sample_rate, order=order, alpha=alpha)
    return _Analysis(
        f0_hz=feats["f0_hz"].astype(np.float64),
        vuv=np.asarray(feats["vuv"], dtype=bool),
        mcep=mc.astype(np.float64),
        energy_db=10.0 * np.log10(np.sum(sp, axis=1)),
    )


def _speech_frames(energy_db: np.ndarray, threshold_db: float) -> np.ndarray:
    """Frames within ``threshold_db`` of the loudest one (the loudest always counts)."""
    return energy_db >= energy_db.max() - threshold_db


def _pairs(ref: _Analysis, hyp: _Analysis, align: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ref_frames, hyp_frames) of the paired frames."""
    if align == "none":
        n = min(len(ref.f0_hz), len(hyp.f0_hz))
        idx = np.arange(n)
        return idx, idx
    r, h = ref.mcep[:, 1:], hyp.mcep[:, 1:]
    path = _dtw(len(r), len(h), lambda i: np.sqrt(np.sum((h - r[i]) ** 2, axis=1)))
    return path[:, 0], path[:, 1]


def _mcd_from(ref: _Analysis, hyp: _Analysis, ri, hi, threshold_db: float) -> float:
    d = frame_mcd(ref.mcep[ri], hyp.mcep[hi])
    keep = _speech_frames(ref.energy_db, threshold_db)[ri]
    return float(np.mean(d[keep]))


def _check_align(align) -> str:
    if align not in _ALIGNS:
        raise ValueError(f"align must be one of {', '.join(_ALIGNS)}, got {align!r}")
    return align


def _check_threshold(silence_threshold_db) -> float:
    t = float(silence_threshold_db)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"silence_threshold_db must be a positive number of dB, got {t}")
    return t


def _trim_pair(ref, hyp):
    n = min(ref.size, hyp.size)
    return ref[:n], hyp[:n]


def mcd(
    ref_audio,
    hyp_audio,
    *,
    sample_rate: int,
    hop_length: int,
    order: int = 24,
    alpha: float | None = None,
    align: str = "none",
    f0_method: str = "harvest",
    f0_min: float = 65.0,
    f0_max: float = 800.0,
    silence_threshold_db: float = 40.0,
) -> float:
    """Mel-cepstral distortion (dB) of ``hyp_audio`` against ``ref_audio``.

    Each signal is analysed with its own f0 (``f0_method`` in ``[f0_min, f0_max]``) by
    :func:`~vocoder.analysis.world.world_features`; its CheapTrick envelope is turned
    into a mel-cepstrum of ``order`` (:func:`~vocoder.analysis.world.mel_cepstrum`,
    all-pass constant ``alpha``, default for the rate). Per frame pair
    ``(10 / ln 10) * sqrt(2 * sum_{d=1}^{order} (c_ref[d] - c_hyp[d]) ** 2)``
    (:func:`frame_mcd`), averaged over the pairs whose reference frame is not silent:
    the reference envelope energy ``10 log10(sum_k sp[n, k])`` is at least the
    loudest reference frame's minus ``silence_threshold_db``.

    Pairs: ``align="none"`` truncates both signals to the shorter and pairs frame
    ``n`` with frame ``n`` (copy synthesis); ``align="dtw"`` analyses both whole and
    pairs frames along :func:`dtw_path` of the Euclidean distances between the
    mel-cepstra ``c[1..order]`` (conversion, different timing); the mean then runs
    over the path's pairs (a reference frame can appear more than once).

    Args:
        ref_audio, hyp_audio: (samples,) mono signals at ``sample_rate``.
        sample_rate: samples per second of both.
        hop_length: samples per analysis frame.
        order: highest mel-cepstral index (24: ``c1 .. c24`` are compared).
        alpha: all-pass constant; None uses the rate's default.
        align: "none" or "dtw".
        f0_method, f0_min, f0_max: f0 analysis (see
            :func:`~vocoder.analysis.f0.estimate_f0`).
        silence_threshold_db: reference frames more than this far below the loudest
            reference frame are left out.
    Returns:
        MCD in dB (0 for identical signals).
    Raises:
        ValueError: invalid audio (``AudioError``, e.g. silent or shorter than three
            periods of ``f0_min``) or settings.
    """
    align = _check_align(align)
    threshold = _check_threshold(silence_threshold_db)
    ref = check_audio(ref_audio, name="ref_audio").astype(np.float64)
    hyp = check_audio(hyp_audio, name="hyp_audio").astype(np.float64)
    if align == "none":
        ref, hyp = _trim_pair(ref, hyp)
    opts = dict(sample_rate=sample_rate, hop_length=hop_length, f0_method=f0_method,
                f0_min=f0_min, f0_max=f0_max, order=order, alpha=alpha)
    a_ref = _analyse(ref, name="ref_audio", **opts)
    a_hyp = _analyse(hyp, name="hyp_audio", **opts)
    ri, hi = _pairs(a_ref, a_hyp, align)
    return _mcd_from(a_ref, a_hyp, ri, hi, threshold)


# --------------------------------------------------------------------------- f0


def f0_metrics(ref_f0, ref_vuv, hyp_f0, hyp_vuv) -> dict[str, float]:
    """F0 and voicing errors of paired frames.

    With ``B`` the frames voiced in both and ``e = 1200 log2(hyp_f0 / ref_f0)`` cents:

    - ``f0_rmse_cents = sqrt(mean_B e^2)``
    - ``f0_gross_error_rate = mean_B(|e| > 50)``
    - ``f0_l1_midi = mean_B |e| / 100`` (|difference of MIDI note numbers
      ``69 + 12 log2(f0 / 440)``), DDSP's f0 L1
    - ``f0_corr``: Pearson correlation of ``log f0`` over ``B`` (NaN with fewer than
      two frames or a constant track)
    - ``vuv_error_rate = mean over all frames(ref_vuv != hyp_vuv)``

    The f0 metrics are NaN when ``B`` is empty.

    Args:
        ref_f0, hyp_f0: (frames,) f0 in Hz of paired frames.
        ref_vuv, hyp_vuv: (frames,) bool voicing; None means ``f0 > 0``.
    Returns:
        dict with the five keys above, floats.
    Raises:
        ValueError: shapes differ, empty or non-finite input, f0 <= 0 on a voiced frame.
    """
    rf, rv = _f0_track(ref_f0, ref_vuv, "ref")
    hf, hv = _f0_track(hyp_f0, hyp_vuv, "hyp")
    if rf.shape != hf.shape:
        raise ValueError(f"ref and hyp f0 tracks have different lengths: {rf.size} and {hf.size}")
    both = rv & hv
    out = {"vuv_error_rate": float(np.mean(rv != hv))}
    if not both.any():
        out.update(f0_rmse_cents=math.nan, f0_gross_error_rate=math.nan, f0_l1_midi=math.nan,
                   f0_corr=math.nan)
        return _ordered(out)
    cents = 1200.0 * np.log2(hf[both] / rf[both])
    out["f0_rmse_cents"] = float(np.sqrt(np.mean(cents**2)))
    out["f0_gross_error_rate"] = float(np.mean(np.abs(cents) > _GROSS_ERROR_CENTS))
    out["f0_l1_midi"] = float(np.mean(np.abs(cents)) / 100.0)
    out["f0_corr"] = _pearson(np.log(rf[both]), np.log(hf[both]))
    return _ordered(out)


def _ordered(d: dict) -> dict:
    keys = ("f0_rmse_cents", "f0_gross_error_rate", "vuv_error_rate", "f0_l1_midi", "f0_corr")
    return {k: d[k] for k in keys}


def _f0_track(f0, vuv, which: str) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(f0, dtype=np.float64).reshape(-1)
    if f.size == 0:
        raise ValueError(f"{which} f0 track is empty")
    if not np.isfinite(f).all():
        raise ValueError(f"{which} f0 track contains NaN/inf values")
    v = f > 0 if vuv is None else np.asarray(vuv).astype(bool).reshape(-1)
    if v.shape != f.shape:
        raise ValueError(f"{which} vuv has {v.size} frames but its f0 has {f.size}")
    bad = int(np.sum(v & (f <= 0)))
    if bad:
        raise ValueError(f"{which} f0 is <= 0 on {bad} frames marked voiced")
    return f, v


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2:
        return math.nan
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    # A constant track (within rounding of float32 f0) has no defined correlation.
    if den <= 1e-12 * a.size:
        return math.nan
    return float(np.clip(np.sum(a * b) / den, -1.0, 1.0))


# --------------------------------------------------------------------------- conversion

_CENTS_PER_NEPER = 1200.0 / math.log(2.0)  # cents of a natural-log f0 difference
_CLASSIFIER_FORMAT = "vocoder.metrics.SpeakerClassifier"
_CLASSIFIER_VERSION = 1
_COVARIANCES = ("shared", "per_class")
# Variances are floored at this fraction of the variance of all training vectors, so a
# dimension in which the training classes happen to agree cannot dominate the score.
_VARIANCE_FLOOR = 0.01
_VARIANCE_FLOOR_ABS = 1e-8
# covariance="per_class": a class's variance is shrunk towards the pooled one as if the
# pooled variance had been seen in this many extra utterances of the class.
_SHRINKAGE_UTTS = 10.0


def log_f0_statistics(f0_hz, vuv=None) -> dict[str, float]:
    """Log-f0 statistics of the voiced frames of an f0 track.

    With ``V`` the voiced frames: ``log_f0_mean = mean_V ln f0`` and ``log_f0_std``
    (population standard deviation) in natural-log units of Hz (the units of
    ``vocoder stats``' ``logf0``), ``f0_geomean_hz = exp(log_f0_mean)`` and
    ``log_f0_std_cents = log_f0_std * 1200 / ln 2``. Two means differ by
    ``1200 / ln 2 * (mean_a - mean_b)`` cents (:func:`log_f0_difference_cents`).

    Args:
        f0_hz: (frames,) f0 in Hz, 0 where unvoiced.
        vuv: (frames,) bool voicing; None means ``f0 > 0``.
    Returns:
        dict with int ``voiced_frames`` and float ``log_f0_mean``, ``log_f0_std``,
        ``f0_geomean_hz``, ``log_f0_std_cents`` (NaN when no frame is voiced).
    Raises:
        ValueError: empty or non-finite input, f0 <= 0 on a voiced frame.
    """
    f, v = _f0_track(f0_hz, vuv, "f0")
    n = int(v.sum())
    if n == 0:
        return {"voiced_frames": 0, "log_f0_mean": math.nan, "log_f0_std": math.nan,
                "f0_geomean_hz": math.nan, "log_f0_std_cents": math.nan}
    lf = np.log(f[v])
    mean, std = float(lf.mean()), float(lf.std())
    return {"voiced_frames": n, "log_f0_mean": mean, "log_f0_std": std,
            "f0_geomean_hz": math.exp(mean), "log_f0_std_cents": std * _CENTS_PER_NEPER}


def log_f0_difference_cents(f0_hz, vuv=None, *, target_log_f0_mean: float) -> float:
    """Mean log-f0 of a track's voiced frames minus a target mean, in cents.

    ``1200 / ln 2 * (mean_V ln f0 - target_log_f0_mean)``: 100 for a track one
    equal-tempered semitone above the target, -1200 an octave below; NaN when no frame
    is voiced.

    Args:
        f0_hz: (frames,) f0 in Hz, 0 where unvoiced.
        vuv: (frames,) bool voicing; None means ``f0 > 0``.
        target_log_f0_mean: the target's mean natural log of f0 in Hz (e.g. a
            speaker's ``logf0.mean`` from ``vocoder stats``).
    Returns:
        the difference in cents (signed: positive when the track is higher).
    """
    target = float(target_log_f0_mean)
    if not math.isfinite(target):
        raise ValueError(f"target_log_f0_mean must be finite, got {target}")
    stats = log_f0_statistics(f0_hz, vuv)
    return (stats["log_f0_mean"] - target) * _CENTS_PER_NEPER


def f0_tracking(source_f0, source_vuv, output_f0, output_vuv, *,
                shift_semitones: float = 0.0) -> dict[str, float]:
    """How well an output's f0 follows its source's f0 transposed by a fixed interval.

    For a conversion whose output is time-aligned with its source (frame ``n`` of one
    is frame ``n`` of the other; the tracks are compared over the shorter length), the
    expected track is ``source_f0 * 2 ** (shift_semitones / 12)`` and, on the frames
    ``B`` voiced in both, with ``e = 1200 log2(output_f0 / expected)`` cents:

    - ``f0_track_rmse_cents = sqrt(mean_B e^2)``
    - ``f0_track_gross_error_rate = mean_B(|e| > 50)``
    - ``f0_track_corr``: Pearson correlation of ``ln source_f0`` and ``ln output_f0``
      over ``B`` (independent of any constant shift; NaN with fewer than two frames
      or a constant track)
    - ``f0_track_vuv_error_rate``: fraction of frames whose voicing differs.

    These are :func:`f0_metrics` of the output against the expected track.

    Args:
        source_f0, output_f0: (frames,) f0 in Hz, 0 where unvoiced.
        source_vuv, output_vuv: (frames,) bool voicing; None means ``f0 > 0``.
        shift_semitones: the transposition the output should carry (e.g. +12 for an
            octave up).
    Returns:
        dict with the four keys above (f0 values NaN when no frame is voiced in both).
    """
    sf, sv = _f0_track(source_f0, source_vuv, "source")
    of, ov = _f0_track(output_f0, output_vuv, "output")
    shift = float(shift_semitones)
    if not math.isfinite(shift):
        raise ValueError(f"shift_semitones must be finite, got {shift}")
    n = min(sf.size, of.size)
    out = f0_metrics(sf[:n] * 2.0 ** (shift / 12.0), sv[:n], of[:n], ov[:n])
    return {
        "f0_track_rmse_cents": out["f0_rmse_cents"],
        "f0_track_gross_error_rate": out["f0_gross_error_rate"],
        "f0_track_corr": out["f0_corr"],
        "f0_track_vuv_error_rate": out["vuv_error_rate"],
    }


def _mcep_mean_from(analysis: _Analysis, threshold_db: float) -> np.ndarray:
    """Mean of c[1..order] over the frames within ``threshold_db`` of the loudest."""
    keep = _speech_frames(analysis.energy_db, threshold_db)
    return analysis.mcep[keep, 1:].mean(axis=0)


def utterance_profile(
    audio,
    *,
    sample_rate: int,
    hop_length: int | None = None,
    order: int = 24,
    alpha: float | None = None,
    f0_method: str = "harvest",
    f0_min: float = 65.0,
    f0_max: float = 800.0,
    silence_threshold_db: float = 40.0,
    name: str = "audio",
) -> dict[str, Any]:
    """Voice (or instrument) profile of one utterance: its mean mel-cepstrum and log-f0.

    One analysis as :func:`mcd` makes it (f0, WORLD CheapTrick envelope, mel-cepstrum
    of ``order`` with all-pass constant ``alpha``); ``mcep_mean`` is the mean of
    ``c[1..order]`` over the frames whose envelope energy lies within
    ``silence_threshold_db`` of the loudest frame (the frames MCD scores; ``c0``, the
    gain, is left out, so the recording level does not matter). The log-f0 entries are
    :func:`log_f0_statistics` of the f0 track.

    Args:
        audio: (samples,) mono signal at ``sample_rate``.
        sample_rate: samples per second.
        hop_length: samples per frame; None: ``sample_rate // 200`` (5 ms).
        order, alpha, f0_method, f0_min, f0_max, silence_threshold_db: as in :func:`mcd`.
        name: how the input is named in error messages.
    Returns:
        dict with ``mcep_mean`` ((order,) float64), int ``speech_frames`` and the keys
        of :func:`log_f0_statistics`.
    Raises:
        ValueError: invalid audio (``AudioError``) or settings.
    """
    threshold = _check_threshold(silence_threshold_db)
    sample_rate = _positive_int(sample_rate, "sample_rate")
    hop = _default_hop(sample_rate, hop_length)
    x = check_audio(audio, name=name).astype(np.float64)
    a = _analyse(x, sample_rate=sample_rate, hop_length=hop, f0_method=f0_method,
                 f0_min=f0_min, f0_max=f0_max, order=order, alpha=alpha, name=name)
    out: dict[str, Any] = {
        "mcep_mean": _mcep_mean_from(a, threshold),
        "speech_frames": int(_speech_frames(a.energy_db, threshold).sum()),
    }
    out.update(log_f0_statistics(a.f0_hz, a.vuv))
    return out


def _default_hop(sample_rate: int, hop_length) -> int:
    if hop_length is not None:
        return _positive_int(hop_length, "hop_length")
    if sample_rate // 200 < 1:
        raise ValueError(f"sample_rate {sample_rate} is too low for the default hop "
                         "(sample_rate // 200); give hop_length")
    return sample_rate // 200


class SpeakerClassifier:
    """Speaker (or instrument) classifier: Gaussian models of mean mel-cepstra.

    Each utterance becomes one vector, its mean mel-cepstrum ``c[1..order]`` over its
    non-silent frames (:func:`utterance_profile`: the analysis and frames of
    :func:`mcd`, ``c0`` left out so the level does not matter, no f0 either, so an
    f0 transform alone does not change the decision). Each class ``k`` is a Gaussian
    with mean ``mu_k`` (the mean of its training vectors) and a diagonal covariance;
    :meth:`predict` returns the class of highest log-likelihood

        ``log p(x | k) = -1/2 * sum_d [(x_d - mu_kd)^2 / var_kd + ln(2 pi var_kd)]``

    (equal priors, whatever the number of training utterances per class).

    Covariance (``covariance``):

    - ``"shared"`` (default): one variance per dimension for all classes, the pooled
      within-class variance ``sum_k sum_{i in k} (x_id - mu_kd)^2 / (n - K)`` (the
      variance of all vectors when every class has a single utterance). The decision
      is then linear: the nearest class mean after scaling each dimension by its
      within-class spread. This is the default: it has the fewest parameters (fine
      with a handful of utterances per class) and its linear decision behaves
      predictably on converted speech, which often lies between classes.
    - ``"per_class"``: each class's own variance, shrunk towards the pooled one as if
      that had been seen in 10 more utterances of the class (unshrunk per-class
      variances from a few dozen vectors overfit). The decision boundary is quadratic.

    On the embedded mini corpus (four synthetic voices, four sampled instruments,
    16 kHz) leave-one-out accuracy is 190/192 speech and 62/64 music recordings with
    ``"shared"``, 191/192 and 62/64 with ``"per_class"`` (60/64 unshrunk); trained on
    the train split, both get 31/32 speech and 15/16 (shared) or 16/16 music
    recordings of dev + eval right. Details: docs/metrics.md.

    Every variance is floored at 1 % of the variance of all training vectors in its
    dimension.

    Args:
        sample_rate: samples per second of the audio the classifier takes.
        hop_length: analysis hop in samples; None: ``sample_rate // 200``.
        order: mel-cepstral order (the vectors have ``order`` dimensions).
        alpha: all-pass constant; None: the rate's default.
        f0_method, f0_min, f0_max: f0 analysis (CheapTrick needs f0).
        silence_threshold_db: frames further below the loudest are left out.
        covariance: "shared" or "per_class".

    Usage::

        clf = SpeakerClassifier(sample_rate=16000).fit([("kal", x1), ("slt", x2), ...])
        clf.predict(y)            # -> "slt"
        clf.scores(y)             # -> {"kal": -12.3, "slt": 40.1}
        clf.save("clf.json"); SpeakerClassifier.load("clf.json")
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        hop_length: int | None = None,
        order: int = 24,
        alpha: float | None = None,
        f0_method: str = "harvest",
        f0_min: float = 65.0,
        f0_max: float = 800.0,
        silence_threshold_db: float = 40.0,
        covariance: str = "shared",
    ):
        from .analysis.f0 import F0_METHODS
        from .analysis.world import default_alpha

        sample_rate = _positive_int(sample_rate, "sample_rate")
        if covariance not in _COVARIANCES:
            raise ValueError(f"covariance must be one of {', '.join(_COVARIANCES)}, "
                             f"got {covariance!r}")
        if f0_method not in F0_METHODS:
            raise ValueError(f"f0_method must be one of {', '.join(F0_METHODS)}, "
                             f"got {f0_method!r}")
        if not (isinstance(order, (int, np.integer)) and order >= 1):
            raise ValueError(f"order must be a positive integer, got {order!r}")
        if not 0 < float(f0_min) < float(f0_max):
            raise ValueError(f"need 0 < f0_min < f0_max, got {f0_min} and {f0_max}")
        self.settings: dict[str, Any] = {
            "sample_rate": sample_rate,
            "hop_length": _default_hop(sample_rate, hop_length),
            "order": int(order),
            "alpha": float(default_alpha(sample_rate) if alpha is None else alpha),
            "f0_method": f0_method,
            "f0_min": float(f0_min),
            "f0_max": float(f0_max),
            "silence_threshold_db": _check_threshold(silence_threshold_db),
        }
        self.covariance = covariance
        self._labels: list[str] = []
        self._means = np.zeros((0, int(order)))
        self._vars = np.zeros((0, int(order)))
        self._counts: list[int] = []

    # ------------------------------------------------------------------ properties

    @property
    def labels(self) -> list[str]:
        """The classes, sorted."""
        return list(self._labels)

    @property
    def counts(self) -> dict[str, int]:
        """Training utterances per class."""
        return dict(zip(self._labels, self._counts))

    @property
    def sample_rate(self) -> int:
        return self.settings["sample_rate"]

    @property
    def fitted(self) -> bool:
        return bool(self._labels)

    # ------------------------------------------------------------------ features

    def features(self, audio, *, name: str = "audio") -> np.ndarray:
        """(order,) mean mel-cepstrum of one utterance at :attr:`sample_rate`
        (``utterance_profile(...)["mcep_mean"]`` with this classifier's settings)."""
        return utterance_profile(audio, name=name, **self.settings)["mcep_mean"]

    # ------------------------------------------------------------------ training

    def fit(self, items: Iterable[tuple[str, Any]]) -> SpeakerClassifier:
        """Train on ``(label, audio)`` pairs (audio ``(samples,)`` at :attr:`sample_rate`).

        Returns:
            self.
        """
        labels, vectors = [], []
        for i, (label, audio) in enumerate(items):
            labels.append(label)
            vectors.append(self.features(audio, name=f"item {i} ({label})"))
        return self.fit_features(labels, vectors)

    def fit_features(self, labels: Sequence[str], features) -> SpeakerClassifier:
        """Train on precomputed vectors (:meth:`features` of each utterance).

        Args:
            labels: (n,) class of each vector.
            features: (n, order) vectors.
        Returns:
            self.
        Raises:
            ValueError: no vectors, a shape that does not match, non-finite values.
        """
        x = np.asarray(features, dtype=np.float64)
        labels = [str(label) for label in labels]
        d = self.settings["order"]
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != d:
            raise ValueError(f"features must be a non-empty (n, {d}) array, got shape {x.shape}")
        if len(labels) != x.shape[0]:
            raise ValueError(f"{len(labels)} labels for {x.shape[0]} feature vectors")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN/inf values")
        classes = sorted(set(labels))
        y = np.array([classes.index(label) for label in labels])
        counts = np.bincount(y, minlength=len(classes))
        means = np.stack([x[y == k].mean(axis=0) for k in range(len(classes))])
        resid = x - means[y]
        total = x.var(axis=0)
        dof = x.shape[0] - len(classes)
        pooled = (resid**2).sum(axis=0) / dof if dof > 0 else total
        floor = np.maximum(_VARIANCE_FLOOR * total, _VARIANCE_FLOOR_ABS)
        if self.covariance == "shared":
            var = np.repeat(np.maximum(pooled, floor)[None, :], len(classes), axis=0)
        else:
            var = np.empty_like(means)
            for k in range(len(classes)):
                n1 = counts[k] - 1.0
                own = (resid[y == k] ** 2).sum(axis=0) / n1 if n1 > 0 else pooled
                w = n1 / (n1 + _SHRINKAGE_UTTS)
                var[k] = np.maximum(w * own + (1.0 - w) * pooled, floor)
        self._labels = classes
        self._means, self._vars = means, var
        self._counts = [int(c) for c in counts]
        return self

    # ------------------------------------------------------------------ scoring

    def _check_fitted(self) -> None:
        if not self._labels:
            raise ValueError("the classifier is not trained (call fit or load)")

    def log_likelihoods(self, features) -> np.ndarray:
        """Log-likelihood of vectors under each class.

        Args:
            features: (order,) or (n, order) vectors.
        Returns:
            (classes,) or (n, classes) log-likelihoods, classes in :attr:`labels` order.
        """
        self._check_fitted()
        x = np.asarray(features, dtype=np.float64)
        d = self.settings["order"]
        if x.shape[-1:] != (d,) or x.ndim not in (1, 2):
            raise ValueError(f"features must be (order,) or (n, order) with order={d}, "
                             f"got shape {x.shape}")
        diff = x[..., None, :] - self._means
        return -0.5 * np.sum(diff**2 / self._vars + np.log(2.0 * np.pi * self._vars), axis=-1)

    def scores_features(self, features) -> dict[str, float]:
        """``{label: log-likelihood}`` of one (order,) vector."""
        ll = self.log_likelihoods(np.asarray(features, dtype=np.float64).reshape(-1))
        return {label: float(v) for label, v in zip(self._labels, ll)}

    def predict_features(self, features) -> str:
        """The label of highest log-likelihood for one (order,) vector (ties: the
        first label in sorted order)."""
        ll = self.log_likelihoods(np.asarray(features, dtype=np.float64).reshape(-1))
        return self._labels[int(np.argmax(ll))]

    def scores(self, audio, *, name: str = "audio") -> dict[str, float]:
        """``{label: log-likelihood}`` of one utterance (``(samples,)`` at :attr:`sample_rate`)."""
        return self.scores_features(self.features(audio, name=name))

    def predict(self, audio, *, name: str = "audio") -> str:
        """The most likely label of one utterance (``(samples,)`` at :attr:`sample_rate`)."""
        return self.predict_features(self.features(audio, name=name))

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-able data (see :meth:`save`)."""
        self._check_fitted()
        return {
            "format": _CLASSIFIER_FORMAT,
            "version": _CLASSIFIER_VERSION,
            "settings": dict(self.settings),
            "covariance": self.covariance,
            "classes": {
                label: {"count": self._counts[k], "mean": self._means[k].tolist(),
                        "var": self._vars[k].tolist()}
                for k, label in enumerate(self._labels)
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "classifier") -> SpeakerClassifier:
        """Rebuild a classifier from :meth:`to_dict` output.

        Raises:
            ValueError: another format or version, missing or malformed entries
                (the message starts with ``source``).
        """
        def bad(what: str) -> ValueError:
            return ValueError(f"{source}: {what}")

        if not isinstance(data, Mapping) or data.get("format") != _CLASSIFIER_FORMAT:
            raise bad(f"not a speaker classifier (expected \"format\": \"{_CLASSIFIER_FORMAT}\")")
        if data.get("version") != _CLASSIFIER_VERSION:
            raise bad(f"classifier version {data.get('version')!r}, this code reads "
                      f"version {_CLASSIFIER_VERSION}")
        settings = data.get("settings")
        classes = data.get("classes")
        if not isinstance(settings, Mapping) or not isinstance(classes, Mapping) or not classes:
            raise bad("needs a 'settings' object and a non-empty 'classes' object")
        try:
            clf = cls(covariance=data.get("covariance", "shared"), **settings)
        except TypeError as exc:
            raise bad(f"bad settings ({exc})") from None
        except ValueError as exc:
            raise bad(str(exc)) from None
        d = clf.settings["order"]
        labels = sorted(classes)
        means, variances, counts = [], [], []
        for label in labels:
            entry = classes[label]
            try:
                mean = np.asarray(entry["mean"], dtype=np.float64)
                var = np.asarray(entry["var"], dtype=np.float64)
                count = int(entry.get("count", 0))
            except (KeyError, TypeError, ValueError, AttributeError):
                raise bad(f"class {label!r} needs 'mean' and 'var' lists of numbers") from None
            if mean.shape != (d,) or var.shape != (d,):
                raise bad(f"class {label!r}: 'mean' and 'var' must have {d} values "
                          f"(the order), got {mean.size} and {var.size}")
            if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var > 0).all()):
                raise bad(f"class {label!r}: non-finite values or a variance <= 0")
            means.append(mean)
            variances.append(var)
            counts.append(count)
        clf._labels = labels
        clf._means, clf._vars = np.stack(means), np.stack(variances)
        clf._counts = counts
        return clf

    def save(self, path) -> None:
        """Write the model as JSON (atomically: a temporary file, then a rename)::

            {"format": "vocoder.metrics.SpeakerClassifier", "version": 1,
             "settings": {"sample_rate": 16000, "hop_length": 80, "order": 24,
                          "alpha": 0.42, "f0_method": "harvest", "f0_min": 65.0,
                          "f0_max": 800.0, "silence_threshold_db": 40.0},
             "covariance": "shared",
             "classes": {LABEL: {"count": n, "mean": [...], "var": [...]}, ...}}
        """
        import json

        from .outputs import write_atomic

        write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n", what="speaker classifier")

    @classmethod
    def load(cls, path) -> SpeakerClassifier:
        """Read a model written by :meth:`save`.

        Raises:
            ValueError: unreadable or malformed file (the message names it).
        """
        import json
        from pathlib import Path

        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            text = str(exc).strip().splitlines()
            raise ValueError(f"{path}: cannot read the classifier "
                             f"({text[0] if text else type(exc).__name__})") from None
        return cls.from_dict(data, source=str(path))

    def __repr__(self) -> str:
        classes = ", ".join(f"{k}: {n}" for k, n in self.counts.items()) or "not trained"
        return (f"SpeakerClassifier(covariance={self.covariance!r}, "
                f"sample_rate={self.sample_rate}, classes={{{classes}}})")


#: Keys of the per-utterance metrics :func:`evaluate_conversion` returns, in order.
CONVERSION_METRIC_NAMES = (
    "mcd_db",
    "mcd_source_db",
    "log_f0_diff_cents",
    "source_log_f0_diff_cents",
    "f0_track_corr",
    "f0_track_rmse_cents",
    "f0_track_gross_error_rate",
    "f0_track_vuv_error_rate",
)

#: Keys of :func:`summarize_conversion` (besides ``count`` and ``n_valid``), in order.
CONVERSION_SUMMARY_NAMES = (
    "mcd_db",
    "mcd_source_db",
    "mcd_reduction",
    "log_f0_abs_diff_cents",
    "log_f0_diff_cents",
    "source_log_f0_abs_diff_cents",
    "f0_track_corr",
    "f0_track_rmse_cents",
    "f0_track_gross_error_rate",
    "f0_track_vuv_error_rate",
    "accuracy",
)


def evaluate_conversion(
    converted,
    source,
    *,
    sample_rate: int,
    hop_length: int | None = None,
    target_reference=None,
    target_log_f0_mean: float | None = None,
    f0_shift_semitones: float = 0.0,
    classifier: SpeakerClassifier | None = None,
    f0_method: str = "harvest",
    f0_min: float = 65.0,
    f0_max: float = 800.0,
    f0_track_method: str | None = None,
    f0_track_range: tuple[float, float] | None = None,
    shift_f0_range: bool = False,
    order: int = 24,
    alpha: float | None = None,
    silence_threshold_db: float = 40.0,
    converted_name: str = "converted",
    source_name: str = "source",
    reference_name: str = "target_reference",
) -> dict[str, Any]:
    """Metrics of one converted utterance (voice conversion or timbre transfer).

    Each signal is analysed once (f0, WORLD envelope, mel-cepstrum, as in :func:`mcd`).

    - ``mcd_db``: MCD of ``converted`` against ``target_reference`` (the target
      speaking the same sentence), DTW-aligned; exactly
      ``mcd(target_reference, converted, align="dtw")``. NaN without a reference.
    - ``mcd_source_db``: the same for ``source`` against ``target_reference``: the
      distance the conversion starts from.
    - ``log_f0_diff_cents``: mean log-f0 of the converted voiced frames minus
      ``target_log_f0_mean`` (:func:`log_f0_difference_cents`); NaN without a target
      mean. ``source_log_f0_diff_cents``: the same for the source.
    - ``f0_track_corr``, ``f0_track_rmse_cents``, ``f0_track_gross_error_rate``,
      ``f0_track_vuv_error_rate``: :func:`f0_tracking` of the converted f0 against the
      source f0 shifted by ``f0_shift_semitones``, frame by frame (the converted
      output is time-aligned with its source). Both tracks come from
      ``f0_track_method`` in ``f0_track_range`` when they are given, else from the
      analysis (``f0_method`` in ``[f0_min, f0_max]``); with ``shift_f0_range`` the
      converted track is searched in that range moved by ``f0_shift_semitones``
      (capped below Nyquist), where the shifted source lies.
    - ``predicted``: ``classifier.predict`` of the converted utterance (None without a
      classifier). When the classifier's analysis settings are these, the converted
      analysis is reused; otherwise it analyses on its own (resampling to its rate).

    Args:
        converted, source: (samples,) mono signals at ``sample_rate``.
        sample_rate: samples per second of every signal.
        hop_length: samples per frame; None: ``sample_rate // 200``.
        target_reference: (samples,) the target's recording of the source sentence, or
            None (non-parallel data, timbre transfer).
        target_log_f0_mean: the target class's mean natural log of f0 in Hz, or None.
        f0_shift_semitones: the transposition the conversion applied (expected shift).
        classifier: a trained :class:`SpeakerClassifier`, or None.
        f0_method, f0_min, f0_max, order, alpha, silence_threshold_db: analysis and
            MCD settings (see :func:`mcd`).
        f0_track_method: f0 estimator of the ``f0_track_*`` metrics only (None: the
            analysis's ``f0_method``). Harvest marks the edges of voiced stretches
            voiced with stray f0 values; on resynthesised speech these frames decide
            the correlation (docs/metrics.md), and Praat's ``praat_ac`` reads them as
            unvoiced.
        f0_track_range: ``(f0_min, f0_max)`` of those tracks (None: the analysis's).
        shift_f0_range: search the converted f0 (for the ``f0_track_*`` metrics) in the
            range moved by ``f0_shift_semitones``: a voice analysed in a voice's range,
            its transfer to a violin two octaves up in that range two octaves up.
        converted_name, source_name, reference_name: names in error messages.
    Returns:
        dict with the float keys of :data:`CONVERSION_METRIC_NAMES` (NaN where
        undefined), ``predicted`` (str or None), ``duration_s`` (seconds of converted
        audio) and, only when there is one, a string ``warning`` (converted and source
        lengths differ by more than one hop).
    Raises:
        ValueError: invalid audio (``AudioError``) or settings.
    """
    threshold = _check_threshold(silence_threshold_db)
    sample_rate = _positive_int(sample_rate, "sample_rate")
    hop = _default_hop(sample_rate, hop_length)
    conv = check_audio(converted, name=converted_name).astype(np.float64)
    src = check_audio(source, name=source_name).astype(np.float64)
    ref = None
    if target_reference is not None:
        ref = check_audio(target_reference, name=reference_name).astype(np.float64)
    opts = {"sample_rate": sample_rate, "hop_length": hop, "f0_method": f0_method,
            "f0_min": f0_min, "f0_max": f0_max, "order": order, "alpha": alpha}
    a_conv = _analyse(conv, name=converted_name, **opts)
    a_src = _analyse(src, name=source_name, **opts)

    out: dict[str, Any] = {k: math.nan for k in CONVERSION_METRIC_NAMES}
    if ref is not None:
        a_ref = _analyse(ref, name=reference_name, **opts)
        ri, hi = _pairs(a_ref, a_conv, "dtw")
        out["mcd_db"] = _mcd_from(a_ref, a_conv, ri, hi, threshold)
        ri, hi = _pairs(a_ref, a_src, "dtw")
        out["mcd_source_db"] = _mcd_from(a_ref, a_src, ri, hi, threshold)
    if target_log_f0_mean is not None:
        out["log_f0_diff_cents"] = log_f0_difference_cents(
            a_conv.f0_hz, a_conv.vuv, target_log_f0_mean=target_log_f0_mean)
        out["source_log_f0_diff_cents"] = log_f0_difference_cents(
            a_src.f0_hz, a_src.vuv, target_log_f0_mean=target_log_f0_mean)
    track_method = f0_track_method or f0_method
    t_lo, t_hi = (float(v) for v in (f0_track_range or (f0_min, f0_max)))
    factor = 2.0 ** (float(f0_shift_semitones) / 12.0) if shift_f0_range else 1.0
    same = track_method == f0_method and (t_lo, t_hi) == (float(f0_min), float(f0_max))
    src_track = (a_src.f0_hz, a_src.vuv)
    conv_track = (a_conv.f0_hz, a_conv.vuv)
    if not same or factor != 1.0:
        from .analysis.f0 import estimate_f0

        f0_opts = {"sample_rate": sample_rate, "hop_length": hop, "method": track_method}
        if not same:
            src_track = estimate_f0(src, name=source_name, f0_min=t_lo, f0_max=t_hi, **f0_opts)
        hi = min(t_hi * factor, 0.45 * sample_rate)
        lo = min(t_lo * factor, 0.5 * hi)
        conv_track = estimate_f0(conv, name=converted_name, f0_min=lo, f0_max=hi, **f0_opts)
    tracks = (*src_track, *conv_track)
    out.update(f0_tracking(*tracks, shift_semitones=f0_shift_semitones))

    predicted = None
    if classifier is not None:
        from .analysis.world import default_alpha

        mine = {"sample_rate": sample_rate, "hop_length": hop, "order": int(order),
                "alpha": float(default_alpha(sample_rate) if alpha is None else alpha),
                "f0_method": f0_method, "f0_min": float(f0_min), "f0_max": float(f0_max),
                "silence_threshold_db": threshold}
        if mine == classifier.settings:
            predicted = classifier.predict_features(
                _mcep_mean_from(a_conv, classifier.settings["silence_threshold_db"]))
        else:
            x = conv
            if classifier.sample_rate != sample_rate:
                import soxr

                x = soxr.resample(conv, sample_rate, classifier.sample_rate)
            predicted = classifier.predict(x, name=converted_name)
    out = {k: out[k] for k in CONVERSION_METRIC_NAMES}
    out["predicted"] = predicted
    out["duration_s"] = conv.size / sample_rate
    if abs(conv.size - src.size) > hop:
        out["warning"] = (f"length mismatch: converted {conv.size} samples, source {src.size} "
                          f"samples (differ by more than hop {hop}); f0 tracking compares "
                          "the first frames of both")
    return out


def summarize_conversion(per_utt: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Averages of :func:`evaluate_conversion` results over utterances.

    Each mean runs over the utterances where the value is finite (``n_valid`` says
    how many):

    - ``mcd_db``, ``mcd_source_db``, ``log_f0_diff_cents``, ``f0_track_*``: means;
    - ``mcd_reduction = 1 - mean(mcd_db) / mean(mcd_source_db)`` over the utterances
      that have both (0: no closer to the target than the source, 1: identical);
    - ``log_f0_abs_diff_cents`` and ``source_log_f0_abs_diff_cents``: means of
      ``|log_f0_diff_cents|`` and ``|source_log_f0_diff_cents|``;
    - ``accuracy``: fraction of the utterances with a boolean ``correct`` entry
      (the caller's ``predicted == target``) where it is True.

    Args:
        per_utt: ``{utt: {metric: value, ...}}``.
    Returns:
        ``{"count": number of utterances, <name>: value for each of
        :data:`CONVERSION_SUMMARY_NAMES` (NaN if undefined), "n_valid": {<name>: n}}``.
    """
    def finite(key, rows=None):
        rows = per_utt.values() if rows is None else rows
        vals = [float(r[key]) for r in rows if _is_number(r.get(key))]
        return [v for v in vals if math.isfinite(v)]

    def mean(values):
        return float(np.mean(values)) if values else math.nan

    summary: dict[str, Any] = {"count": len(per_utt)}
    n_valid: dict[str, int] = {}
    for key in CONVERSION_SUMMARY_NAMES:
        if key == "mcd_reduction":
            both = [r for r in per_utt.values() if finite("mcd_db", [r]) and
                    finite("mcd_source_db", [r])]
            conv, src = mean(finite("mcd_db", both)), mean(finite("mcd_source_db", both))
            value = 1.0 - conv / src if both and src > 0 else math.nan
            count = len(both)
        elif key == "accuracy":
            flags = [r["correct"] for r in per_utt.values()
                     if isinstance(r.get("correct"), (bool, np.bool_))]
            value = mean([float(f) for f in flags])
            count = len(flags)
        elif key.endswith("abs_diff_cents"):
            vals = finite(key.replace("abs_diff", "diff"))
            value, count = mean([abs(v) for v in vals]), len(vals)
        else:
            vals = finite(key)
            value, count = mean(vals), len(vals)
        summary[key] = value
        n_valid[key] = count
    summary["n_valid"] = n_valid
    return summary


# --------------------------------------------------------------------------- loudness


def _loudness(x, *, sample_rate, hop_length, average, name) -> np.ndarray:
    from .analysis.loudness import a_weighted_loudness

    return np.asarray(a_weighted_loudness(x, sample_rate=sample_rate, hop_length=hop_length,
                                          average=average, name=name), dtype=np.float64)


def loudness_l1(
    ref_audio,
    hyp_audio,
    *,
    sample_rate: int,
    hop_length: int,
    average: str = "power",
) -> float:
    """Mean absolute difference (dB) of A-weighted loudness per frame.

    ``mean_n |L_ref[n] - L_hyp[n]|`` over all ``ceil(N / hop_length)`` frames of the
    two signals truncated to the shorter length ``N``, with ``L`` from
    :func:`~vocoder.analysis.loudness.a_weighted_loudness` (its defaults: 128 ms Hann
    window, floor -120 dB). ``average="power"`` (default) uses the A-weighted power
    level, so a signal scaled by 2 reads 6.02 dB louder in every (non-floored) frame;
    ``average="db"`` is DDSP's feature exactly (mean over bins of floored dB), whose
    change under scaling depends on how many bins sit at the floor (a harmonic tone
    scaled by 2 gains only about 3-4 dB).

    Args:
        ref_audio, hyp_audio: (samples,) mono signals at ``sample_rate``.
        sample_rate: samples per second.
        hop_length: samples per frame.
        average: "power" or "db" (see above).
    Returns:
        loudness L1 in dB (0 for identical signals).
    """
    ref = check_audio(ref_audio, name="ref_audio").astype(np.float64)
    hyp = check_audio(hyp_audio, name="hyp_audio").astype(np.float64)
    ref, hyp = _trim_pair(ref, hyp)
    lr = _loudness(ref, sample_rate=sample_rate, hop_length=hop_length, average=average,
                   name="ref_audio")
    lh = _loudness(hyp, sample_rate=sample_rate, hop_length=hop_length, average=average,
                   name="hyp_audio")
    return float(np.mean(np.abs(lr - lh)))


# --------------------------------------------------------------------------- spectral


def multiscale_spectral_distance(
    ref_audio,
    hyp_audio,
    *,
    fft_sizes: Sequence[int] = _MSSD_FFT_SIZES,
    overlap: float = 0.75,
) -> float:
    """Multi-scale spectral distance: the DDSP training loss as a metric.

    ``sum over s in fft_sizes of [mean |H_s - R_s| + mean |ln(H_s + 1e-7) -
    ln(R_s + 1e-7)|]`` with ``H_s``, ``R_s`` the magnitude spectrograms (periodic
    Hann window of ``s`` samples, hop ``s * (1 - overlap)``, frames from sample 0,
    end zero-padded) of the hypothesis and the reference, computed in float64 by
    :func:`vocoder.losses.multiscale_spectral_distance` on the two signals truncated
    to the shorter length.

    Args:
        ref_audio, hyp_audio: (samples,) mono signals (same sample rate).
        fft_sizes: FFT sizes, 2048 .. 64 by default.
        overlap: fraction of a frame shared with the next (0.75).
    Returns:
        the distance (0 for identical signals).
    """
    from .losses import multiscale_spectral_distance as _msd

    ref = check_audio(ref_audio, name="ref_audio").astype(np.float64)
    hyp = check_audio(hyp_audio, name="hyp_audio").astype(np.float64)
    ref, hyp = _trim_pair(ref, hyp)
    return float(_msd(hyp, ref, fft_sizes=tuple(fft_sizes), overlap=overlap))


# --------------------------------------------------------------------------- all


def evaluate_pair(
    ref_audio,
    hyp_audio,
    *,
    sample_rate: int,
    hyp_sample_rate: int | None = None,
    hop_length: int | None = None,
    f0_method: str = "harvest",
    f0_min: float = 65.0,
    f0_max: float = 800.0,
    align: str = "none",
    order: int = 24,
    alpha: float | None = None,
    silence_threshold_db: float = 40.0,
    loudness_average: str = "power",
    ref_name: str = "ref",
    hyp_name: str = "hyp",
) -> dict[str, Any]:
    """Every metric of one hypothesis against its reference.

    The hypothesis is resampled (soxr) to ``sample_rate`` when ``hyp_sample_rate``
    differs. With ``align="none"`` both signals are truncated to the shorter; if their
    lengths differed by more than one hop a ``"warning"`` entry says so. Both are
    analysed once (WORLD f0 and envelope, loudness) and frames are paired one to one
    (``align="none"``) or along the DTW path of the mel-cepstra (``align="dtw"``);
    MCD, the f0 metrics and loudness L1 use those pairs (MCD only where the
    reference frame is not silent, see :func:`mcd`). ``mssd`` compares the
    waveforms sample-aligned, so it is NaN with ``align="dtw"``.

    Args:
        ref_audio, hyp_audio: (samples,) mono signals.
        sample_rate: samples per second of ``ref_audio``, used for all analyses.
        hyp_sample_rate: samples per second of ``hyp_audio``; None: ``sample_rate``.
        hop_length: samples per frame; None: ``sample_rate // 200`` (5 ms).
        f0_method, f0_min, f0_max: f0 analysis of both signals.
        align: "none" (copy synthesis) or "dtw" (conversion).
        order, alpha, silence_threshold_db: MCD settings (see :func:`mcd`).
        loudness_average: "power" or "db" (see :func:`loudness_l1`).
        ref_name, hyp_name: how the inputs are named in error messages.
    Returns:
        dict with float ``mcd_db``, ``f0_rmse_cents``, ``f0_gross_error_rate``,
        ``vuv_error_rate``, ``f0_l1_midi``, ``f0_corr``, ``mssd``,
        ``loudness_l1_db`` (NaN where undefined), ``duration_s`` (reference seconds
        evaluated) and, only when there is one, a string ``warning``.
    Raises:
        ValueError: invalid audio (``AudioError``) or settings.
    """
    align = _check_align(align)
    threshold = _check_threshold(silence_threshold_db)
    if loudness_average not in ("power", "db"):
        raise ValueError(f"loudness_average must be 'power' or 'db', got {loudness_average!r}")
    sample_rate = _positive_int(sample_rate, "sample_rate")
    hop = sample_rate // 200 if hop_length is None else _positive_int(hop_length, "hop_length")
    if hop < 1:
        raise ValueError(f"sample_rate {sample_rate} is too low for the default hop "
                         "(sample_rate // 200); give hop_length")
    ref = check_audio(ref_audio, name=ref_name).astype(np.float64)
    hyp = check_audio(hyp_audio, name=hyp_name).astype(np.float64)
    if hyp_sample_rate is not None and int(hyp_sample_rate) != sample_rate:
        import soxr

        hyp = soxr.resample(hyp, int(hyp_sample_rate), sample_rate)
        hyp = check_audio(hyp, name=hyp_name)
    warning = None
    if align == "none":
        if abs(ref.size - hyp.size) > hop:
            warning = (f"length mismatch: ref {ref.size} samples, hyp {hyp.size} samples "
                       f"(differ by {abs(ref.size - hyp.size)} > hop {hop}); "
                       "both truncated to the shorter")
        ref, hyp = _trim_pair(ref, hyp)

    opts = dict(sample_rate=sample_rate, hop_length=hop, f0_method=f0_method, f0_min=f0_min,
                f0_max=f0_max, order=order, alpha=alpha)
    a_ref = _analyse(ref, name=ref_name, **opts)
    a_hyp = _analyse(hyp, name=hyp_name, **opts)
    ri, hi = _pairs(a_ref, a_hyp, align)

    out: dict[str, Any] = {"mcd_db": _mcd_from(a_ref, a_hyp, ri, hi, threshold)}
    out.update(f0_metrics(a_ref.f0_hz[ri], a_ref.vuv[ri], a_hyp.f0_hz[hi], a_hyp.vuv[hi]))
    if align == "none":
        out["mssd"] = multiscale_spectral_distance(ref, hyp)
    else:
        out["mssd"] = math.nan
    lr = _loudness(ref, sample_rate=sample_rate, hop_length=hop, average=loudness_average,
                   name=ref_name)
    lh = _loudness(hyp, sample_rate=sample_rate, hop_length=hop, average=loudness_average,
                   name=hyp_name)
    out["loudness_l1_db"] = float(np.mean(np.abs(lr[ri] - lh[hi])))
    out = {k: out[k] for k in METRIC_NAMES}
    out["duration_s"] = ref.size / sample_rate
    if warning:
        out["warning"] = warning
    return out


def _positive_int(value, label: str) -> int:
    try:
        as_int = int(value)
        ok = as_int == value and as_int > 0 and not isinstance(value, bool)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{label} must be a positive integer, got {value!r}")
    return as_int


def summarize(per_utt: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Average per-utterance results.

    Every numeric (int or float, not bool) entry is averaged over the utterances that
    have it, NaN/None values left out.

    Args:
        per_utt: ``{utt: {metric: value, ...}}`` (e.g. :func:`evaluate_pair` results).
    Returns:
        ``{"count": number of utterances, <metric>: mean (NaN if no finite value),
        ..., "n_valid": {<metric>: number of finite values}}``; metrics in
        :data:`METRIC_NAMES` order first, others in order of first appearance.
    """
    names: list[str] = []
    for result in per_utt.values():
        for key, value in result.items():
            if key not in names and _is_number(value):
                names.append(key)
    names.sort(key=lambda k: METRIC_NAMES.index(k) if k in METRIC_NAMES else len(METRIC_NAMES))
    summary: dict[str, Any] = {"count": len(per_utt)}
    n_valid: dict[str, int] = {}
    for key in names:
        values = [float(r[key]) for r in per_utt.values() if _is_number(r.get(key))]
        values = [v for v in values if math.isfinite(v)]
        summary[key] = float(np.mean(values)) if values else math.nan
        n_valid[key] = len(values)
    summary["n_valid"] = n_valid
    return summary


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def rtf(seconds_compute: float, seconds_audio: float) -> float:
    """Real-time factor: seconds of compute per second of audio (< 1 is faster than
    real time). State the device, threads and batch size with it."""
    seconds_audio = float(seconds_audio)
    if not seconds_audio > 0:
        raise ValueError(f"seconds_audio must be positive, got {seconds_audio}")
    if not float(seconds_compute) >= 0:
        raise ValueError(f"seconds_compute must be >= 0, got {seconds_compute}")
    return float(seconds_compute) / seconds_audio


# --------------------------------------------------------------------------- room


def late_reverb_energy_db(
    signal,
    reference_dry,
    sample_rate: int,
    *,
    delay_s: float = 0.05,
    window_s: float = 0.1,
    hop_s: float = 0.01,
    silence_threshold_db: float = 40.0,
) -> float:
    """Late-reverberant energy after the speech offsets of a dry reference, in dB.

    The dry reference is cut into blocks of ``hop_s`` (block ``b`` covers samples
    ``[b * H, (b + 1) * H)``, ``H = round(hop_s * sample_rate)``); a block is *active*
    when its mean power lies within ``silence_threshold_db`` of the loudest block's.
    An *offset* is the start ``t`` of an inactive block that follows an active one
    and after which the reference stays inactive up to ``t + delay_s + window_s``
    (so anything the signal holds in the window is not direct sound). With

        ``P_late``   the signal's mean power over the samples ``[t + delay_s,
                     t + delay_s + window_s)`` of all offsets ``t``, and
        ``P_speech`` the signal's mean power over the samples of the active blocks,

    the result is ``10 log10(P_late / P_speech)``: the late energy relative to the
    signal's own speech level, so it does not depend on the signal's gain and two
    signals (e.g. a dereverberated output and the reverberant recording) measured
    against the same dry reference compare directly: a dry signal scores its noise
    floor, a reverberant one its reverberation level ``delay_s`` after the offsets.
    ``P_late / P_speech`` is floored at 1e-12 (-120 dB).

    The signal must be time-aligned with the reference; it may be longer (e.g. a
    reverberated copy with its tail): the reference is taken as silent past its end.
    Offsets whose window runs past the end of the signal are not used.

    Args:
        signal: (samples,) the signal to measure.
        reference_dry: (samples,) the dry reference that defines the offsets.
        sample_rate: samples per second of both.
        delay_s: time from the offset to the start of the window, seconds.
        window_s: length of the window, seconds.
        hop_s: block length of the activity detector, seconds.
        silence_threshold_db: blocks more than this many dB below the loudest are silent.
    Returns:
        the late energy in dB relative to the speech energy; NaN when the reference
        has no offset with a complete window (or the signal has no speech energy).
    """
    x = check_audio(signal, name="signal").astype(np.float64)
    ref = check_audio(reference_dry, name="reference_dry").astype(np.float64)
    if not sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    for label, value in (("delay_s", delay_s), ("window_s", window_s), ("hop_s", hop_s)):
        if not (math.isfinite(float(value)) and float(value) >= 0):
            raise ValueError(f"{label} must be a non-negative number of seconds, got {value}")
    threshold = _check_threshold(silence_threshold_db)
    hop = max(1, round(hop_s * sample_rate))
    delay = round(delay_s * sample_rate)
    width = round(window_s * sample_rate)
    if width < 1:
        raise ValueError(f"window_s={window_s} is shorter than one sample")
    # Reference blocks over the signal's length (silent past the reference's end).
    n = x.size
    n_blocks = -(-n // hop)
    r = np.zeros(n_blocks * hop)
    r[: min(ref.size, r.size)] = ref[: r.size]
    power = np.mean(r.reshape(n_blocks, hop) ** 2, axis=1)
    if not power.max() > 0:
        return math.nan
    active = 10.0 * np.log10(np.maximum(power, 1e-300) / power.max()) >= -threshold
    # Blocks spanned by [t, t + delay + window) for an offset at block b: b ... b + span - 1.
    span = -(-(delay + width) // hop)
    late_sum, late_count = 0.0, 0
    for b in np.nonzero(active[:-1] & ~active[1:])[0] + 1:
        start = b * hop + delay
        if start + width > n or active[b: b + span].any():
            continue
        late_sum += float(np.sum(x[start: start + width] ** 2))
        late_count += width
    mask = np.repeat(active, hop)[:n]
    speech = float(np.mean(x[mask] ** 2)) if mask.any() else 0.0
    if late_count == 0 or not speech > 0:
        return math.nan
    return float(10.0 * np.log10(max(late_sum / late_count / speech, 1e-12)))


__all__ += ["late_reverb_energy_db"]
