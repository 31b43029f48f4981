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
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
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
