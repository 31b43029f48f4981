"""Spectral analysis as pure torch functions: STFT, mel filterbank, mel spectrogram,
MFCC and the A-weighting curve.

Symbols used in the shapes below:
    ...      any leading batch dimensions (none, or ``batch``).
    samples  audio length N.
    frames   STFT frames. With ``center=True`` frame ``n`` is centred on sample
             ``n * hop_length`` and, by default, an analysis of N samples gives exactly
             ``n_frames(N, hop_length) == ceil(N / hop_length)`` frames (the project's
             frame grid, see docs/architecture.md). torch.stft and librosa give
             ``1 + N // hop_length`` frames, one more when N is a multiple of the hop;
             pass ``frames=`` to ask for another count.
    bins     ``n_fft // 2 + 1`` frequency bins, bin ``k`` at ``k * sample_rate / n_fft`` Hz.
    n_mels   mel bands.

Everything is differentiable with respect to the audio and runs on any device and in
float32 or float64. Results follow librosa's conventions (periodic Hann window, Slaney
or HTK mel scale, ``power_to_db`` for MFCC), so features can be compared with
features made by librosa-based tools.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch

__all__ = [
    "n_frames",
    "get_window",
    "stft",
    "magnitude_spectrogram",
    "fft_frequencies",
    "hz_to_mel",
    "mel_to_hz",
    "mel_frequencies",
    "mel_filterbank",
    "mel_spectrogram",
    "dct_matrix",
    "mfcc_from_log_mel",
    "mfcc",
    "a_weighting_db",
]

_WINDOWS = {
    "hann": torch.hann_window,
    "hamming": torch.hamming_window,
    "blackman": torch.blackman_window,
    "rectangular": torch.ones,
    "boxcar": torch.ones,
}
_PAD_MODES = ("constant", "reflect", "replicate", "circular")
_LOG_MODES = (None, "ln", "log10", "db")

# Slaney (Auditory Toolbox) mel scale: linear below 1 kHz, logarithmic above.
_SLANEY_F_SP = 200.0 / 3.0
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP  # 15.0
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def n_frames(n_samples: int, hop_length: int) -> int:
    """Number of frames on the project's grid: ``ceil(n_samples / hop_length)``.

    Frame ``n`` is centred on sample ``n * hop_length``, so these frames cover every
    sample of the signal and none starts past its end.
    """
    n_samples, hop_length = int(n_samples), int(hop_length)
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    if hop_length < 1:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length}")
    return -(-n_samples // hop_length)


def get_window(
    window: str | torch.Tensor,
    win_length: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A periodic analysis window (the same as ``scipy.signal.get_window(name, n)``).

    Args:
        window: "hann", "hamming", "blackman", "rectangular" (alias "boxcar"), or a
            (win_length,) tensor that is returned cast to ``dtype``/``device``.
        win_length: window length in samples.
        dtype, device: of the result (default: torch's default dtype, CPU).
    Returns:
        (win_length,) window.
    """
    if isinstance(window, torch.Tensor):
        if window.ndim != 1 or window.shape[0] != win_length:
            raise ValueError(
                f"window: expected a 1-D tensor of length {win_length}, got shape "
                f"{tuple(window.shape)}"
            )
        return window.to(dtype=dtype or window.dtype, device=device or window.device)
    if window not in _WINDOWS:
        raise ValueError(f"window: unknown name {window!r}; expected one of {sorted(_WINDOWS)}")
    fn = _WINDOWS[window]
    if fn is torch.ones:
        return torch.ones(win_length, dtype=dtype, device=device)
    return fn(win_length, periodic=True, dtype=dtype, device=device)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def stft(
    audio: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | torch.Tensor = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    frames: int | None = None,
) -> torch.Tensor:
    """Short-time Fourier transform, frames first.

    Args:
        audio: (..., samples) real float32/float64 signal; ``(samples,)`` or
            ``(batch, samples)``.
        n_fft: FFT size; gives ``n_fft // 2 + 1`` bins.
        hop_length: samples between frames.
        win_length: window length (default ``n_fft``); shorter windows are
            zero-padded on both sides to ``n_fft``.
        window: window name for :func:`get_window` or a (win_length,) tensor.
        center: if True, pad ``n_fft // 2`` samples on each side so that frame ``n``
            is centred on sample ``n * hop_length``. If False, frame ``n`` starts at
            sample ``n * hop_length`` and only whole frames are returned.
        pad_mode: padding used when ``center`` is True: "constant" (zeros, works for
            any length; librosa's default) or "reflect" (torch's and
            ParallelWaveGAN's choice; needs more than ``n_fft // 2`` samples),
            "replicate", "circular".
        frames: number of frames to return. Default with ``center=True``:
            ``n_frames(samples, hop_length) == ceil(samples / hop_length)``, the
            project's grid; with ``center=False``: every whole frame,
            ``1 + (samples - n_fft) // hop_length``. An integer keeps the first
            ``frames`` of the ``1 + samples // hop_length`` (centred) frames that
            exist, e.g. ``frames=1 + samples // hop_length`` for librosa's count.
    Returns:
        (..., frames, bins) complex spectrum (complex64 for float32 audio,
        complex128 for float64), unnormalised: a full-scale sine of amplitude A at a
        bin centre peaks at ``A * window.sum() / 2``.
    """
    if not isinstance(audio, torch.Tensor):
        raise ValueError(f"audio: expected a torch.Tensor, got {type(audio).__name__}")
    if not audio.is_floating_point():
        raise ValueError(f"audio: expected a real floating tensor, got dtype {audio.dtype}")
    if audio.ndim < 1:
        raise ValueError("audio: expected shape (..., samples), got a scalar")
    n_fft = _check_positive_int(n_fft, "n_fft")
    hop_length = _check_positive_int(hop_length, "hop_length")
    win_length = n_fft if win_length is None else _check_positive_int(win_length, "win_length")
    if win_length > n_fft:
        raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft})")
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"pad_mode: unknown {pad_mode!r}; expected one of {_PAD_MODES}")

    n_samples = audio.shape[-1]
    if n_samples < 1:
        raise ValueError("audio: has 0 samples")
    if center:
        available = 1 + n_samples // hop_length
        default = n_frames(n_samples, hop_length)
        if pad_mode == "reflect" and n_samples <= n_fft // 2:
            raise ValueError(
                f"audio: {n_samples} samples is too short for pad_mode='reflect' with "
                f"n_fft={n_fft} (need more than {n_fft // 2}); use pad_mode='constant'"
            )
    else:
        if n_samples < n_fft:
            raise ValueError(
                f"audio: {n_samples} samples is shorter than n_fft={n_fft} with center=False"
            )
        available = 1 + (n_samples - n_fft) // hop_length
        default = available
    if frames is None:
        frames = default
    elif isinstance(frames, bool) or int(frames) != frames or not 0 < frames <= available:
        raise ValueError(
            f"frames: asked for {frames!r} frames, but {n_samples} samples give 1 to "
            f"{available} frames (n_fft={n_fft}, hop_length={hop_length}, center={center})"
        )

    win = get_window(window, win_length, dtype=audio.dtype, device=audio.device)
    lead = audio.shape[:-1]
    spec = torch.stft(
        audio.reshape(-1, n_samples),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=win,
        center=center,
        pad_mode=pad_mode,
        return_complex=True,
    )  # (batch, bins, available)
    spec = spec[..., : int(frames)].transpose(-1, -2)
    return spec.reshape(*lead, int(frames), n_fft // 2 + 1)


def magnitude_spectrogram(
    audio: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | torch.Tensor = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    frames: int | None = None,
    power: float = 1.0,
) -> torch.Tensor:
    """``|stft(audio)| ** power``; see :func:`stft` for the arguments.

    Args:
        power: 1 for magnitude, 2 for power (computed as re² + im², exact and with a
            finite gradient at zero).
    Returns:
        (..., frames, bins) real spectrogram.
    """
    spec = stft(
        audio,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        frames=frames,
    )
    if power == 2:
        return spec.real.square() + spec.imag.square()
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}")
    mag = spec.abs()
    return mag if power == 1 else mag.pow(power)


def fft_frequencies(
    *, sample_rate: float, n_fft: int, dtype: torch.dtype = torch.float64, device=None
) -> torch.Tensor:
    """Centre frequency of each STFT bin, ``k * sample_rate / n_fft``.

    Returns:
        (n_fft // 2 + 1,) frequencies in Hz (as ``librosa.fft_frequencies``).
    """
    n_fft = _check_positive_int(n_fft, "n_fft")
    return torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=dtype, device=device)


def _as_float_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.to(torch.get_default_dtype())
    return torch.as_tensor(x, dtype=torch.float64)


def hz_to_mel(frequencies_hz, *, htk: bool = False) -> torch.Tensor:
    """Hz to mels.

    Args:
        frequencies_hz: tensor (any shape) or array-like of frequencies in Hz.
        htk: True for the HTK scale ``2595 * log10(1 + f / 700)``; False for the
            Slaney scale (librosa's default): ``3 f / 200`` below 1 kHz, logarithmic
            above with 27 mels per factor 6.4.
    Returns:
        mels, same shape; same dtype as a floating tensor input, else float64.
    """
    f = _as_float_tensor(frequencies_hz)
    if htk:
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    linear = f / _SLANEY_F_SP
    log_part = _SLANEY_MIN_LOG_MEL + torch.log(
        f.clamp(min=_SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ
    ) / _SLANEY_LOGSTEP
    return torch.where(f >= _SLANEY_MIN_LOG_HZ, log_part, linear)


def mel_to_hz(mels, *, htk: bool = False) -> torch.Tensor:
    """Mels to Hz, the inverse of :func:`hz_to_mel` (same scales and dtypes)."""
    m = _as_float_tensor(mels)
    if htk:
        return 700.0 * (torch.pow(10.0, m / 2595.0) - 1.0)
    linear = m * _SLANEY_F_SP
    log_part = _SLANEY_MIN_LOG_HZ * torch.exp(
        _SLANEY_LOGSTEP * (m.clamp(min=_SLANEY_MIN_LOG_MEL) - _SLANEY_MIN_LOG_MEL)
    )
    return torch.where(m >= _SLANEY_MIN_LOG_MEL, log_part, linear)


def mel_frequencies(
    *, n_mels: int, f_min: float = 0.0, f_max: float, htk: bool = False
) -> torch.Tensor:
    """``n_mels`` frequencies (Hz) evenly spaced on the mel scale from f_min to f_max.

    Returns:
        (n_mels,) float64 frequencies in Hz (as ``librosa.mel_frequencies``).
    """
    lo = hz_to_mel(torch.tensor(float(f_min), dtype=torch.float64), htk=htk)
    hi = hz_to_mel(torch.tensor(float(f_max), dtype=torch.float64), htk=htk)
    return mel_to_hz(torch.linspace(float(lo), float(hi), int(n_mels), dtype=torch.float64), htk=htk)


@functools.lru_cache(maxsize=32)
def _mel_filterbank_f64(
    sample_rate: float, n_fft: int, n_mels: int, f_min: float, f_max: float, htk: bool, norm
) -> torch.Tensor:
    fft_freqs = fft_frequencies(sample_rate=sample_rate, n_fft=n_fft)  # (bins,)
    edges = mel_frequencies(n_mels=n_mels + 2, f_min=f_min, f_max=f_max, htk=htk)
    widths = edges.diff()  # (n_mels + 1,)
    ramps = edges[:, None] - fft_freqs[None, :]  # (n_mels + 2, bins)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)  # (n_mels, bins)
    if norm == "slaney":
        weights = weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.contiguous()


def mel_filterbank(
    *,
    sample_rate: float,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Triangular mel filterbank, laid out to right-multiply a spectrogram.

    Built as ``librosa.filters.mel`` (which it matches, transposed): ``n_mels + 2``
    band edges evenly spaced in mels between ``f_min`` and ``f_max``; band ``m`` rises
    linearly (in Hz) from edge ``m`` to ``m + 1`` and falls to edge ``m + 2``.

    Args:
        sample_rate: in Hz.
        n_fft: FFT size of the spectrogram it will be applied to.
        n_mels: number of bands.
        f_min, f_max: frequency range in Hz (``f_max`` defaults to ``sample_rate / 2``).
        htk: HTK mel scale if True, else the Slaney scale.
        norm: "slaney" scales each band to unit area (``2 / (f[m+2] - f[m])``, constant
            energy per band); None leaves peaks at 1.
        dtype, device: of the result. It is computed in float64 and cached.
    Returns:
        (bins, n_mels) weights: ``spectrogram @ fb`` gives (..., frames, n_mels).
    """
    n_fft = _check_positive_int(n_fft, "n_fft")
    n_mels = _check_positive_int(n_mels, "n_mels")
    if norm not in ("slaney", None):
        raise ValueError(f"norm: expected 'slaney' or None, got {norm!r}")
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max:
        raise ValueError(f"need 0 <= f_min < f_max, got f_min={f_min}, f_max={f_max}")
    fb = _mel_filterbank_f64(float(sample_rate), n_fft, n_mels, float(f_min), f_max, bool(htk), norm)
    return fb.to(dtype=dtype, device=device, copy=True)  # never hand out the cached tensor


def _to_log(x: torch.Tensor, *, log: str | None, eps: float, db_scale: float) -> torch.Tensor:
    if log is None:
        return x
    x = x.clamp(min=eps)
    if log == "ln":
        return torch.log(x)
    if log == "log10":
        return torch.log10(x)
    return db_scale * torch.log10(x)


def mel_spectrogram(
    audio: torch.Tensor,
    *,
    sample_rate: float,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    win_length: int | None = None,
    window: str | torch.Tensor = "hann",
    f_min: float = 0.0,
    f_max: float | None = None,
    power: float = 1.0,
    htk: bool = False,
    norm: str | None = "slaney",
    log: str | None = None,
    eps: float = 1e-10,
    top_db: float | None = None,
    center: bool = True,
    pad_mode: str = "constant",
    frames: int | None = None,
) -> torch.Tensor:
    """Mel spectrogram, optionally on a log scale.

    ``mel = magnitude_spectrogram(audio, power=power) @ mel_filterbank(...)``, then

    * ``log=None``: ``mel``;
    * ``log="ln"``: ``ln(max(mel, eps))`` (HiFi-GAN uses eps=1e-5);
    * ``log="log10"``: ``log10(max(mel, eps))``;
    * ``log="db"``: ``(20 / power) * log10(max(mel, eps))``, i.e. librosa's
      ``power_to_db`` for power=2 (amin=eps, ref=1) and ``amplitude_to_db`` for
      power=1 (with amin=eps); ``top_db`` then floors each item at its own maximum
      minus ``top_db`` (librosa takes the maximum over the whole array it is given).

    The TTS convention of ParallelWaveGAN / HiFi-GAN feature extraction (22.05 kHz,
    n_fft=1024, hop_length=256, n_mels=80, f_min=80, f_max=7600, Slaney scale and
    norm, log10 of the magnitude mel floored at 1e-10) is::

        mel_spectrogram(audio, sample_rate=22050, n_fft=1024, hop_length=256,
                        n_mels=80, f_min=80, f_max=7600, power=1, log="log10",
                        eps=1e-10, pad_mode="reflect")

    Args:
        audio: (..., samples) real signal.
        sample_rate, n_mels, f_min, f_max, htk, norm: see :func:`mel_filterbank`.
        n_fft, hop_length, win_length, window, center, pad_mode, frames: see
            :func:`stft`.
        power: exponent of the magnitude before the filterbank (1 or 2).
        log: None, "ln", "log10" or "db".
        eps: floor applied before the logarithm.
        top_db: dynamic range below each item's maximum, only with ``log="db"``.
    Returns:
        (..., frames, n_mels) mel spectrogram, dtype of ``audio``.
    """
    if log not in _LOG_MODES:
        raise ValueError(f"log: expected one of {_LOG_MODES}, got {log!r}")
    if top_db is not None and log != "db":
        raise ValueError("top_db applies only with log='db'")
    spec = magnitude_spectrogram(
        audio,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        frames=frames,
        power=power,
    )
    fb = mel_filterbank(
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        f_min=f_min,
        f_max=f_max,
        htk=htk,
        norm=norm,
        dtype=spec.dtype,
        device=spec.device,
    )
    mel = _to_log(spec @ fb, log=log, eps=eps, db_scale=20.0 / power)
    if top_db is not None:
        if top_db < 0:
            raise ValueError(f"top_db must be non-negative, got {top_db}")
        peak = mel.amax(dim=(-2, -1), keepdim=True)
        mel = torch.maximum(mel, peak - top_db)
    return mel


def dct_matrix(
    n_in: int,
    *,
    n_out: int | None = None,
    norm: str | None = "ortho",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """DCT-II as a matrix: ``x @ dct_matrix(n)`` equals ``scipy.fft.dct(x, 2, norm=norm)``.

    ``C[n, k] = s_k * cos(pi * k * (2 n + 1) / (2 N))`` with ``s_k = sqrt(1/N)`` for
    k=0 and ``sqrt(2/N)`` otherwise when ``norm="ortho"`` (orthonormal), and
    ``s_k = 2`` when ``norm=None``.

    Args:
        n_in: input length N.
        n_out: number of coefficients kept (default N).
        norm: "ortho" or None.
    Returns:
        (n_in, n_out) matrix.
    """
    n_in = _check_positive_int(n_in, "n_in")
    n_out = n_in if n_out is None else _check_positive_int(n_out, "n_out")
    if n_out > n_in:
        raise ValueError(f"n_out ({n_out}) must not exceed n_in ({n_in})")
    n = torch.arange(n_in, dtype=torch.float64)[:, None]
    k = torch.arange(n_out, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * k * (2.0 * n + 1.0) / (2.0 * n_in))
    if norm == "ortho":
        scale = torch.full((n_out,), math.sqrt(2.0 / n_in), dtype=torch.float64)
        scale[0] = math.sqrt(1.0 / n_in)
        basis = basis * scale
    elif norm is None:
        basis = 2.0 * basis
    else:
        raise ValueError(f"norm: expected 'ortho' or None, got {norm!r}")
    return basis.to(dtype=dtype, device=device)


def mfcc_from_log_mel(log_mel: torch.Tensor, *, n_mfcc: int = 20, lifter: float = 0.0) -> torch.Tensor:
    """Cepstral coefficients of a log-mel spectrogram (orthonormal DCT-II over mels).

    Args:
        log_mel: (..., frames, n_mels) log-mel spectrogram, e.g. in dB as librosa.
        n_mfcc: coefficients kept (at most n_mels).
        lifter: if > 0, multiply coefficient ``k`` by
            ``1 + (lifter / 2) * sin(pi * (k + 1) / lifter)`` (librosa's liftering).
    Returns:
        (..., frames, n_mfcc) MFCCs.
    """
    if log_mel.ndim < 2:
        raise ValueError(f"log_mel: expected shape (..., frames, n_mels), got {tuple(log_mel.shape)}")
    basis = dct_matrix(
        log_mel.shape[-1], n_out=n_mfcc, norm="ortho", dtype=log_mel.dtype, device=log_mel.device
    )
    coeffs = log_mel @ basis
    if lifter < 0:
        raise ValueError(f"lifter must be non-negative, got {lifter}")
    if lifter > 0:
        k = torch.arange(1, n_mfcc + 1, dtype=log_mel.dtype, device=log_mel.device)
        coeffs = coeffs * (1.0 + (lifter / 2.0) * torch.sin(math.pi * k / lifter))
    return coeffs


def mfcc(
    audio: torch.Tensor,
    *,
    sample_rate: float,
    n_mfcc: int = 20,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: str | torch.Tensor = "hann",
    n_mels: int = 128,
    f_min: float = 0.0,
    f_max: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    eps: float = 1e-10,
    top_db: float | None = 80.0,
    lifter: float = 0.0,
    center: bool = True,
    pad_mode: str = "constant",
    frames: int | None = None,
) -> torch.Tensor:
    """Mel-frequency cepstral coefficients, as ``librosa.feature.mfcc``.

    Power mel spectrogram -> dB (``10 log10(max(mel, eps))`` floored at each item's
    maximum minus ``top_db``, librosa's ``power_to_db`` defaults) -> orthonormal
    DCT-II over the mel axis, keeping ``n_mfcc`` coefficients. The defaults are
    librosa's. For a batch librosa floors at the maximum of the whole batch, this
    function at each item's maximum; single signals agree.

    Args:
        audio: (..., samples) real signal.
        n_mfcc: coefficients kept.
        lifter: cepstral liftering, see :func:`mfcc_from_log_mel`.
        others: see :func:`mel_spectrogram`.
    Returns:
        (..., frames, n_mfcc) MFCCs.
    """
    log_mel = mel_spectrogram(
        audio,
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
        win_length=win_length,
        window=window,
        f_min=f_min,
        f_max=f_max,
        power=2.0,
        htk=htk,
        norm=norm,
        log="db",
        eps=eps,
        top_db=top_db,
        center=center,
        pad_mode=pad_mode,
        frames=frames,
    )
    return mfcc_from_log_mel(log_mel, n_mfcc=n_mfcc, lifter=lifter)


# IEC 61672-1 A-weighting pole frequencies (Hz), as in librosa.
_A_POLES_HZ: Sequence[float] = (12194.217, 20.598997, 107.65265, 737.86223)


def a_weighting_db(frequencies_hz, *, min_db: float | None = -80.0) -> torch.Tensor:
    """A-weighting (IEC 61672-1) in dB, normalised to about 0 dB at 1 kHz.

    ``A(f) = 2.0 + 20 log10(p1² f⁴ / ((f² + p1²) (f² + p2²) sqrt(f² + p3²)
    sqrt(f² + p4²)))`` with poles p1..p4 = 12194.217, 20.598997, 107.65265,
    737.86223 Hz; computed in float64, identical to ``librosa.A_weighting``.

    Args:
        frequencies_hz: tensor (any shape) or array-like of frequencies in Hz.
        min_db: floor of the curve (librosa's default -80 dB); None leaves it
            unbounded (-inf at 0 Hz).
    Returns:
        weights in dB, same shape; same dtype as a floating tensor input, else float64.
    """
    f = _as_float_tensor(frequencies_hz)
    out_dtype = f.dtype
    f_sq = f.to(torch.float64).square()
    p_sq = [p * p for p in _A_POLES_HZ]
    weights = 2.0 + 20.0 * (
        math.log10(p_sq[0])
        + 2.0 * torch.log10(f_sq)
        - torch.log10(f_sq + p_sq[0])
        - torch.log10(f_sq + p_sq[1])
        - 0.5 * torch.log10(f_sq + p_sq[2])
        - 0.5 * torch.log10(f_sq + p_sq[3])
    )
    if min_db is not None:
        weights = weights.clamp(min=float(min_db))
    return weights.to(out_dtype)
