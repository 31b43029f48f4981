"""A-weighted loudness per frame, the DDSP conditioning feature (``loudness_db``).

Definition (magenta/ddsp ``spectral_ops.compute_loudness``), per frame ``n`` and STFT
bin ``k`` of a Hann-windowed ``n_fft``-point STFT ``S``::

    L[n, k] = 20 log10(max(|S[n, k]|, 1e-20)) + A(f_k) - ref_db
    loudness_db[n] = mean over k of max(L[n, k], min_db)

where ``A`` is the A-weighting curve in dB (librosa's ``A_weighting``, floored at
-80 dB, so the DC bin counts as -80 dB) at the bin frequencies ``f_k = k sr / n_fft``
for all ``n_fft // 2 + 1`` bins up to Nyquist. The average is taken over *decibels*,
after the per-bin floor: a pure tone at a bin centre leaves most bins at the floor
and so reads far below broadband sound of the same power. ``average="power"``
instead averages A-weighted linear power and then takes decibels,
``max(10 log10(mean_k |S[n, k]|² 10^(A(f_k) / 10)) - ref_db, min_db)``, an
A-weighted level in which doubling the amplitude adds 6.02 dB and a tone at f reads
A(f) below a 1 kHz tone of the same amplitude.

Differences from DDSP, all in the frame grid and defaults: DDSP frames start at
``n * hop`` (end padded); here frame ``n`` is centred on sample ``n * hop_length``
(zero padding at both ends) and exactly ``ceil(samples / hop_length)`` frames are
returned, as everywhere in this project. ``n_fft`` defaults to a window of at least
128 ms at any rate (DDSP: 2048 whatever the rate) and ``ref_db`` to DDSP's 20.7 dB
scaled with the window's energy; at 16 kHz the defaults are DDSP's
(``n_fft=2048, ref_db=20.7, min_db=-120``) and the values equal DDSP's on the
centred grid.

Absolute values depend on the sample rate: full-scale uniform white noise reads
about 0 dB at 16 and 22.05 kHz and 3-4 dB less at 44.1/48 kHz, because the mean runs
over all bins up to Nyquist and the A-curve attenuates the top octaves. Compare
loudness between signals analysed at the same rate and settings.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from vocoder.audio import AudioError, check_audio
from vocoder.dsp.spectral import a_weighting_db, fft_frequencies, n_frames, stft

__all__ = ["a_weighted_loudness", "active_frames", "default_loudness_n_fft"]

_DDSP_REF_DB = 20.7  # DDSP's reference for n_fft = 2048, average over dB
_DDSP_N_FFT = 2048
_AMIN = 1e-20  # amplitude floor before the logarithm (DDSP)
_PMIN = 1e-30  # power floor for average="power" (far below any min_db)


def default_loudness_n_fft(sample_rate: float) -> int:
    """Smallest power of two covering 128 ms: DDSP's 2048 at 16 kHz, 4096 at 22.05
    and 24 kHz, 8192 at 44.1 and 48 kHz (at least 128 ms at every rate)."""
    return 1 << max(0, math.ceil(math.log2(0.128 * float(sample_rate) - 1e-9)))


def _default_ref_db(n_fft: int, average: str) -> float:
    if average == "db":
        # DDSP's 20.7 dB puts uniform white noise in [-1, 1] at about 0 dB for
        # n_fft = 2048; the per-bin power of noise grows with the window's energy.
        return _DDSP_REF_DB + 10.0 * math.log10(n_fft / _DDSP_N_FFT)
    # Per-bin power of uniform white noise in [-1, 1] under a Hann window:
    # variance (1/3) * sum(w^2) (= 3 n_fft / 8) = n_fft / 8.
    return 10.0 * math.log10(n_fft / 8.0)


def _validate(audio, name: str) -> tuple[torch.Tensor, bool, bool]:
    """Check the input; return it as a (batch, samples) tensor, whether it came as
    numpy, and whether it was 1-D."""
    if isinstance(audio, torch.Tensor):
        if not audio.is_floating_point():
            raise AudioError(f"{name}: audio tensor must be floating point, got {audio.dtype}")
        if audio.ndim not in (1, 2):
            raise AudioError(
                f"{name}: expected (samples,) or (batch, samples), got shape {tuple(audio.shape)}"
            )
        if audio.numel() == 0:
            raise AudioError(f"{name}: audio is empty (shape {tuple(audio.shape)})")
        bad = int((~torch.isfinite(audio)).sum())
        if bad:
            raise AudioError(f"{name}: audio contains {bad} NaN/inf samples")
        return audio.reshape(-1, audio.shape[-1]), False, audio.ndim == 1
    x = np.asarray(audio)
    if x.ndim == 1:
        return torch.from_numpy(check_audio(x, name=name)[None]), True, True
    if x.ndim == 2:
        if x.shape[0] == 0:
            raise AudioError(f"{name}: batch is empty (shape {x.shape})")
        rows = [check_audio(row, name=f"{name}[{i}]") for i, row in enumerate(x)]
        return torch.from_numpy(np.stack(rows)), True, False
    raise AudioError(f"{name}: expected (samples,) or (batch, samples), got shape {x.shape}")


def a_weighted_loudness(
    audio,
    *,
    sample_rate: float,
    hop_length: int,
    n_fft: int | None = None,
    ref_db: float | None = None,
    min_db: float = -120.0,
    average: str = "db",
    name: str = "audio",
):
    """A-weighted loudness in dB per frame (DDSP's ``compute_loudness``).

    See the module docstring for the exact definition. Frame ``n`` is centred on
    sample ``n * hop_length``; ``ceil(samples / hop_length)`` frames. Silence (and
    the zero padding beyond the ends) gives ``min_db``.

    Args:
        audio: (samples,) or (batch, samples); numpy array (validated with
            :func:`vocoder.audio.check_audio`; integers are scaled to [-1, 1]) or
            floating torch tensor (differentiable; any device).
        sample_rate: in Hz, any rate.
        hop_length: samples between frames.
        n_fft: FFT (and Hann window) size; default :func:`default_loudness_n_fft`.
        ref_db: level subtracted so that uniform white noise in [-1, 1] reads about
            0 dB; default ``20.7 + 10 log10(n_fft / 2048)`` (DDSP's 20.7 dB at
            n_fft=2048) for ``average="db"`` and ``10 log10(n_fft / 8)`` for
            ``average="power"``.
        min_db: floor (DDSP's ``-range_db``); per bin for "db", per frame for
            "power".
        average: "db" (DDSP: mean over bins of floored dB) or "power" (dB of the
            mean A-weighted power).
        name: how the input is named in error messages.
    Returns:
        loudness_db: (frames,) or (batch, frames), matching the input: a numpy
        array (float32, or float64 for float64 input) for numpy input, a tensor of
        the input's dtype and device for tensor input.
    Raises:
        vocoder.audio.AudioError: empty, non-finite, non-numeric or wrongly shaped
            audio.
        ValueError: bad settings.
    """
    if average not in ("db", "power"):
        raise ValueError(f"average: expected 'db' or 'power', got {average!r}")
    if isinstance(hop_length, bool) or int(hop_length) != hop_length or hop_length < 1:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    n_fft = default_loudness_n_fft(sample_rate) if n_fft is None else int(n_fft)
    if n_fft < 2:
        raise ValueError(f"n_fft must be at least 2, got {n_fft}")
    if ref_db is None:
        ref_db = _default_ref_db(n_fft, average)

    x, was_numpy, was_1d = _validate(audio, name)
    spec = stft(
        x,
        n_fft=n_fft,
        hop_length=int(hop_length),
        window="hann",
        center=True,
        pad_mode="constant",
        frames=n_frames(x.shape[-1], int(hop_length)),
    )  # (batch, frames, bins)
    weights = a_weighting_db(
        fft_frequencies(sample_rate=sample_rate, n_fft=n_fft, device=x.device)
    ).to(x.dtype)
    if average == "db":
        level = 20.0 * torch.log10(spec.abs().clamp(min=_AMIN)) + weights - ref_db
        loudness = level.clamp(min=min_db).mean(dim=-1)
    else:
        power = spec.real.square() + spec.imag.square()
        weighted = (power * torch.pow(10.0, weights / 10.0)).mean(dim=-1)
        loudness = (10.0 * torch.log10(weighted.clamp(min=_PMIN)) - ref_db).clamp(min=min_db)

    if was_1d:
        loudness = loudness[0]
    if was_numpy:
        return loudness.numpy()
    return loudness


def active_frames(loudness_db, *, range_db: float = 40.0) -> np.ndarray:
    """Frames that are not silence: those within ``range_db`` of the loudest frame.

    The per-speaker ``loudness_active`` statistics of ``vocoder stats`` and the
    loudness matching of ``vocoder convert`` average over these frames, so that the
    amount of silence in a recording does not move the mean.

    Args:
        loudness_db: (frames,) loudness in dB (:func:`a_weighted_loudness`).
        range_db: how far below the loudest frame a frame still counts.
    Returns:
        (frames,) bool mask (all False for an empty track).
    """
    x = np.asarray(loudness_db, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    return x >= x.max() - float(range_db)
