"""Voice conversion and timbre transfer controls: f0 and loudness moved from one voice to another.

A voice (speaker or instrument) is summarised by :class:`VoiceStats`, taken from the
per-speaker section of a ``vocoder stats`` JSON (:func:`speaker_stats`), measured on
one utterance (:func:`VoiceStats.from_features`) or blended (:func:`blend_stats`).

f0 transforms (:func:`transform_f0`), on voiced frames only:

``stats``
    ``log f0' = (log f0 - mu_src) / sd_src * sd_tgt + mu_tgt`` (log-f0 mean/std).
``fold``
    shift by the whole number of octaves that puts the source's median f0 inside the
    target's f0 range (5th to 95th percentile), nearest the target's median; an
    instrument keeps its intervals and lands in the other instrument's register.
``shift`` / ``none``
    no change besides ``shift_semitones``, which every transform adds at the end.

Loudness (:func:`loudness_offset`): the dB offset that moves the source's mean
loudness over non-silent frames to the target's.

Vocal tract length (:func:`vtln_factor`, :func:`warp_mfcc`): the content features (the
MFCCs of the encoder) are scaled in frequency by the ratio of the target's formant
frequencies to the source's, so that the decoder sees formant positions it learned for
the target voice. The model stays unchanged; only its input moves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "F0_TRANSFORMS",
    "VoiceStats",
    "blend_stats",
    "fold_octaves",
    "loudness_offset",
    "parse_mix",
    "speaker_stats",
    "transform_f0",
    "vtln_factor",
    "warp_mfcc",
]

#: Range of :func:`vtln_factor` (about +-25%, wider than adult voices differ: formant
#: medians of men and women differ by 15-20%).
VTLN_RANGE = (0.8, 1.25)

F0_TRANSFORMS = ("stats", "shift", "fold", "none")


@dataclass(frozen=True)
class VoiceStats:
    """Summary of a voice; a field is None where the statistics lack it.

    Attributes:
        logf0_mean, logf0_std: mean and std of natural-log f0 (Hz) over voiced frames.
        f0_p5_hz, f0_p50_hz, f0_p95_hz: f0 percentiles over voiced frames.
        loudness_mean_db: mean loudness over all frames.
        loudness_active_db: mean loudness over non-silent frames
            (:func:`vocoder.analysis.loudness.active_frames`).
        formants_hz: medians of F1, F2, F3 over voiced frames
            (:mod:`vocoder.analysis.formants`, ``vocoder stats --formants``).
    """

    logf0_mean: float | None = None
    logf0_std: float | None = None
    f0_p5_hz: float | None = None
    f0_p50_hz: float | None = None
    f0_p95_hz: float | None = None
    loudness_mean_db: float | None = None
    loudness_active_db: float | None = None
    formants_hz: tuple[float, ...] | None = None

    @classmethod
    def from_entry(cls, entry: dict) -> VoiceStats:
        """From one speaker's entry of a ``vocoder stats`` JSON."""
        def mean_std(key):
            part = entry.get(key) or {}
            mean, std = part.get("mean"), part.get("std")
            return (None if mean is None else float(mean)), (None if std is None else float(std))

        lmean, lstd = mean_std("logf0")
        pct = entry.get("f0_percentiles_hz") or {}
        return cls(logf0_mean=lmean, logf0_std=lstd,
                   f0_p5_hz=_opt(pct.get("p5")), f0_p50_hz=_opt(pct.get("p50")), f0_p95_hz=_opt(pct.get("p95")),
                   loudness_mean_db=mean_std("loudness")[0], loudness_active_db=mean_std("loudness_active")[0],
                   formants_hz=_formants(entry.get("formants")))

    @classmethod
    def from_features(cls, f0_hz, vuv, loudness_db=None) -> VoiceStats:
        """Measured on one utterance: (frames,) f0 (0 where unvoiced), vuv, loudness (dB)."""
        from .analysis.loudness import active_frames

        f0 = np.asarray(f0_hz, dtype=np.float64)
        voiced = f0[_voiced(f0, vuv)]
        kw: dict = {}
        if voiced.size:
            lf = np.log(voiced)
            q = np.percentile(voiced, [5, 50, 95])
            kw.update(logf0_mean=float(lf.mean()), logf0_std=float(lf.std()),
                      f0_p5_hz=float(q[0]), f0_p50_hz=float(q[1]), f0_p95_hz=float(q[2]))
        if loudness_db is not None and np.size(loudness_db):
            ld = np.asarray(loudness_db, dtype=np.float64)
            kw.update(loudness_mean_db=float(ld.mean()), loudness_active_db=float(ld[active_frames(ld)].mean()))
        return cls(**kw)


def _formants(entry) -> tuple[float, ...] | None:
    med = (entry or {}).get("median_hz") if isinstance(entry, dict) else None
    if not med or any(v is None or not (float(v) > 0) for v in med):
        return None
    return tuple(float(v) for v in med)


def _opt(value) -> float | None:
    return None if value is None else float(value)


def _voiced(f0: np.ndarray, vuv) -> np.ndarray:
    v = np.asarray(vuv) > 0.5 if vuv is not None else np.ones(f0.shape, dtype=bool)
    return v & (f0 > 0)


def speaker_stats(stats: dict, name: str, *, where: str = "statistics") -> VoiceStats:
    """The :class:`VoiceStats` of speaker ``name`` in a ``vocoder stats`` dict.

    Raises:
        ValueError: ``name`` is not in its ``speakers`` section (the message lists them).
    """
    speakers = stats.get("speakers") or {}
    if name not in speakers:
        known = ", ".join(sorted(speakers)) or "none"
        raise ValueError(f"{where}: no statistics for speaker/instrument {name!r} (it has: {known})")
    return VoiceStats.from_entry(speakers[name])


def blend_stats(parts: list[tuple[VoiceStats, float]]) -> VoiceStats:
    """Weighted blend of voices (weights summing to 1): means and stds averaged, f0
    percentiles averaged in log-f0; parts of weight 0 are left out, and a field
    missing from any other part is None."""
    parts = [(s, float(w)) for s, w in parts if w > 0]
    if not parts:
        raise ValueError("blend_stats: no part has a positive weight")
    if len(parts) == 1:
        return parts[0][0]

    def mix(field: str, log: bool = False):
        values = [getattr(s, field) for s, _ in parts]
        if any(v is None for v in values):
            return None
        if log:
            return float(math.exp(sum(w * math.log(v) for v, (_, w) in zip(values, parts))))
        return float(sum(w * v for v, (_, w) in zip(values, parts)))

    formants = None
    values = [s.formants_hz for s, _ in parts]
    if all(v is not None for v in values) and len({len(v) for v in values}) == 1:
        formants = tuple(float(math.exp(sum(w * math.log(v[k]) for v, (_, w) in zip(values, parts))))
                         for k in range(len(values[0])))
    return VoiceStats(logf0_mean=mix("logf0_mean"), logf0_std=mix("logf0_std"), f0_p5_hz=mix("f0_p5_hz", True),
                      f0_p50_hz=mix("f0_p50_hz", True), f0_p95_hz=mix("f0_p95_hz", True),
                      loudness_mean_db=mix("loudness_mean_db"), loudness_active_db=mix("loudness_active_db"),
                      formants_hz=formants)


def parse_mix(text: str) -> list[tuple[str, float]]:
    """``"spk1:0.7,spk2:0.3"`` -> ``[("spk1", 0.7), ("spk2", 0.3)]``, weights scaled to sum 1.

    Raises:
        ValueError: a malformed item, a negative or non-finite weight, a repeated name,
            or weights summing to 0.
    """
    out: list[tuple[str, float]] = []
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        name, sep, weight = item.rpartition(":")
        try:
            w = float(weight)
        except ValueError:
            w = float("nan")
        if not sep or not name or not math.isfinite(w) or w < 0:
            raise ValueError(f"--mix {text!r}: expected NAME:WEIGHT items with weights >= 0, got {item!r}")
        if name in (n for n, _ in out):
            raise ValueError(f"--mix {text!r}: {name!r} is given twice")
        out.append((name, w))
    total = sum(w for _, w in out)
    if not out or total <= 0:
        raise ValueError(f"--mix {text!r}: the weights must sum to more than 0")
    return [(n, w / total) for n, w in out]


def fold_octaves(source_median_hz: float, *, target_low_hz: float, target_high_hz: float,
                 target_median_hz: float | None = None) -> int:
    """Whole octaves k that put ``source_median_hz * 2**k`` inside [low, high].

    Of the octaves that fit, the one nearest ``target_median_hz`` (default: the
    range's geometric centre) in log-f0; when none fits (a range narrower than an
    octave), the one nearest the range.
    """
    if not (source_median_hz > 0 and 0 < target_low_hz <= target_high_hz):
        raise ValueError(f"fold: need a positive source median and target range, got {source_median_hz} Hz "
                         f"and {target_low_hz}-{target_high_hz} Hz")
    src = math.log2(source_median_hz)
    lo, hi = math.log2(target_low_hz), math.log2(target_high_hz)
    centre = math.log2(target_median_hz) if target_median_hz else (lo + hi) / 2
    candidates = range(math.floor(lo - src) - 1, math.ceil(hi - src) + 2)

    def cost(k: int) -> tuple[float, float]:
        x = src + k
        outside = max(lo - x, 0.0, x - hi)
        return outside, abs(x - centre)

    return min(candidates, key=cost)


def transform_f0(f0_hz, vuv, *, method: str, source: VoiceStats | None = None,
                 target: VoiceStats | None = None, shift_semitones: float = 0.0) -> np.ndarray:
    """Move an f0 track from the source voice to the target voice.

    Args:
        f0_hz: (frames,) f0 in Hz, 0 where unvoiced.
        vuv: (frames,) voicing flag (>0.5 voiced); unvoiced frames stay 0.
        method: one of :data:`F0_TRANSFORMS` (see the module docstring).
        source: the source voice (``stats``: log-f0 mean/std; ``fold``: median f0).
        target: the target voice (``stats``: log-f0 mean/std; ``fold``: f0 percentiles).
        shift_semitones: transposition added after the transform.
    Returns:
        (frames,) float32 f0 in Hz.
    Raises:
        ValueError: unknown method, or statistics the method needs are missing.
    """
    if method not in F0_TRANSFORMS:
        raise ValueError(f"unknown f0 transform {method!r}; choose from {', '.join(F0_TRANSFORMS)}")
    f0 = np.asarray(f0_hz, dtype=np.float64)
    voiced = _voiced(f0, vuv)
    logf0 = np.log(np.where(voiced, f0, 1.0))
    if voiced.any() and method == "stats":
        need = {"source": source, "target": target}
        for role, st in need.items():
            if st is None or st.logf0_mean is None or st.logf0_std is None:
                raise ValueError(f"f0 transform 'stats': no log-f0 statistics for the {role}")
        scale = target.logf0_std / source.logf0_std if source.logf0_std > 1e-6 else 1.0
        logf0 = (logf0 - source.logf0_mean) * scale + target.logf0_mean
    elif voiced.any() and method == "fold":
        if source is None or source.f0_p50_hz is None:
            raise ValueError("f0 transform 'fold': no median f0 for the source")
        if target is None or target.f0_p5_hz is None or target.f0_p95_hz is None:
            raise ValueError("f0 transform 'fold': no f0 percentiles for the target (re-run `vocoder stats`)")
        k = fold_octaves(source.f0_p50_hz, target_low_hz=target.f0_p5_hz, target_high_hz=target.f0_p95_hz,
                         target_median_hz=target.f0_p50_hz)
        logf0 = logf0 + k * math.log(2.0)
    logf0 = logf0 + shift_semitones / 12.0 * math.log(2.0)
    return np.where(voiced, np.exp(logf0), 0.0).astype(np.float32)


def loudness_offset(*, source: VoiceStats, target: VoiceStats) -> float:
    """dB to add to the source loudness so that its mean matches the target's.

    Means over non-silent frames when both voices have them, else over all frames
    (statistics written before ``loudness_active`` existed).

    Raises:
        ValueError: a voice has no loudness statistics.
    """
    if source.loudness_active_db is not None and target.loudness_active_db is not None:
        return float(target.loudness_active_db - source.loudness_active_db)
    if source.loudness_mean_db is None or target.loudness_mean_db is None:
        role = "source" if source.loudness_mean_db is None else "target"
        raise ValueError(f"loudness transform 'stats': no loudness statistics for the {role}")
    return float(target.loudness_mean_db - source.loudness_mean_db)


def vtln_factor(source_formants, target_formants) -> float:
    """Frequency warping factor from one voice's formants to another's: the geometric
    mean of the ratios target / source over the formants both have (F1-F3 medians),
    clipped to :data:`VTLN_RANGE`. Above 1 when the target's tract is shorter.

    Raises:
        ValueError: either side is missing, empty or not positive.
    """
    src = np.asarray(source_formants if source_formants is not None else [], dtype=np.float64)
    tgt = np.asarray(target_formants if target_formants is not None else [], dtype=np.float64)
    n = min(src.size, tgt.size)
    if n == 0 or not (np.all(src[:n] > 0) and np.all(tgt[:n] > 0)):
        raise ValueError("vtln_factor: both voices need positive formant frequencies")
    ratio = float(np.exp(np.mean(np.log(tgt[:n] / src[:n]))))
    return min(max(ratio, VTLN_RANGE[0]), VTLN_RANGE[1])


def warp_mfcc(mfcc, alpha: float, *, sample_rate: int, n_mels: int, f_max: float | None = None) -> np.ndarray:
    """MFCCs of the spectrum scaled in frequency by ``alpha`` (vocal tract length
    normalisation): ``S'(f) = S(f / alpha)``, so ``alpha > 1`` moves formants up (a
    longer vocal tract towards a shorter one).

    The MFCCs (orthonormal DCT-II of a log-mel spectrogram of ``n_mels`` Slaney bands
    from 0 Hz to ``f_max``, as ``vocoder extract`` computes them) are turned back into
    the cepstrally smoothed log-mel spectrum (inverse DCT of the coefficients kept),
    each frame is resampled at ``f / alpha`` on the bands' centre frequencies (linear
    interpolation, the end values held beyond the ends), and the DCT is taken again.
    ``alpha = 1`` returns the input unchanged.

    Args:
        mfcc: (..., frames, n_mfcc) MFCCs, ``n_mfcc <= n_mels``.
        alpha: warping factor, > 0.
        sample_rate, n_mels, f_max: the filterbank the MFCCs were computed with
            (``f_max`` None: Nyquist).
    Returns:
        (..., frames, n_mfcc) float32 warped MFCCs.
    """
    import torch

    from .dsp.spectral import dct_matrix, mel_frequencies

    c = np.asarray(mfcc, dtype=np.float64)
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"warping factor must be a positive number, got {alpha}")
    if c.ndim < 2 or c.shape[-1] > n_mels:
        raise ValueError(f"mfcc: expected (..., frames, n_mfcc <= {n_mels}), got shape {c.shape}")
    if alpha == 1.0:
        return c.astype(np.float32)
    f_max = sample_rate / 2 if f_max is None else float(f_max)
    centres = mel_frequencies(n_mels=n_mels + 2, f_min=0.0, f_max=f_max).numpy()[1:-1]
    basis = dct_matrix(n_mels, n_out=c.shape[-1], norm="ortho", dtype=torch.float64).numpy()  # (n_mels, n_mfcc)
    log_mel = c @ basis.T
    flat = log_mel.reshape(-1, n_mels)
    # Linear interpolation at centres / alpha, as one gather (the same positions for every frame).
    pos = np.interp(centres / alpha, centres, np.arange(n_mels, dtype=np.float64))
    lo = np.clip(np.floor(pos).astype(int), 0, n_mels - 1)
    hi = np.minimum(lo + 1, n_mels - 1)
    frac = pos - lo
    warped = flat[:, lo] * (1.0 - frac) + flat[:, hi] * frac
    return (warped.reshape(log_mel.shape) @ basis).astype(np.float32)
