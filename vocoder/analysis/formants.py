"""Formant frequencies (Praat's Burg LPC analysis) and their per-voice medians.

The medians of F1-F3 over voiced frames summarise a voice's vocal tract length: a
shorter tract raises every formant by about the same factor. ``vocoder stats
--formants`` stores them per speaker and ``vocoder convert --vtln auto`` warps the
content features by the ratio of the target's to the source's
(:func:`vocoder.conversion.vtln_factor`).

The analysis is Praat's ``To Formant (burg)`` through parselmouth: 25 ms Gaussian
windows, pre-emphasis from 50 Hz, five formants searched below ``max_formant``. Praat
recommends 5000 Hz for adult male and 5500 Hz for adult female voices; one ceiling is
used for every voice here (default 5500 Hz), so that the ratios between voices do not
depend on a guess of each voice's sex.
"""
from __future__ import annotations

import numpy as np

from ..audio import check_audio

__all__ = ["formant_tracks", "formant_medians"]


def formant_tracks(audio, *, sample_rate: int, hop_length: int, n_formants: int = 3,
                   max_formant: float = 5500.0, name: str = "audio") -> np.ndarray:
    """(frames, n_formants) formant frequencies in Hz on the frame grid of the
    features (``ceil(samples / hop_length)`` frames, frame ``n`` at sample
    ``n * hop_length``); NaN where Praat finds no such formant.

    Raises:
        ValueError (``AudioError``): invalid audio (empty, non-finite, ...), naming ``name``.
    """
    import parselmouth

    x = check_audio(audio, name=name).astype(np.float64)
    if not 1 <= n_formants <= 5:
        raise ValueError(f"n_formants must be 1 to 5, got {n_formants}")
    if not 0 < max_formant <= sample_rate / 2:
        raise ValueError(f"max_formant must be in (0, {sample_rate / 2:g}] Hz, got {max_formant}")
    n_frames = -(-x.size // hop_length)
    snd = parselmouth.Sound(x, sampling_frequency=sample_rate)
    formant = snd.to_formant_burg(time_step=hop_length / sample_rate, max_number_of_formants=5,
                                  maximum_formant=max_formant)
    times = np.arange(n_frames) * (hop_length / sample_rate)
    out = np.full((n_frames, n_formants), np.nan)
    for k in range(n_formants):
        out[:, k] = [formant.get_value_at_time(k + 1, t) for t in times]
    return out


def formant_medians(tracks: np.ndarray, vuv) -> tuple[list[float] | None, int]:
    """(medians, frames): the median of each formant over the voiced frames where all of
    them were found, and how many frames that was; (None, 0) if none."""
    tracks = np.asarray(tracks, dtype=np.float64)
    voiced = np.asarray(vuv)[: tracks.shape[0]] > 0.5
    keep = voiced & np.isfinite(tracks[: voiced.size]).all(axis=1)
    if not keep.any():
        return None, 0
    return [float(v) for v in np.median(tracks[: voiced.size][keep], axis=0)], int(keep.sum())
