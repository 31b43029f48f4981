"""WORLD spectral envelope and aperiodicity on the vocoder's frame grid, and codings.

Frame ``n`` is centred on sample ``n * hop_length``; ``N`` samples give
``ceil(N / hop_length)`` frames (docs/architecture.md), the grid of
:func:`vocoder.analysis.f0.estimate_f0`.

- :func:`world_features`: f0 / voicing, CheapTrick power envelope ``sp`` and D4C
  aperiodicity ``ap``.
- :func:`code_envelope` / :func:`decode_envelope`: WORLD's compact envelope coding
  (``pyworld.code_spectral_envelope``: a cosine transform of the log envelope on a
  mel axis).
- :func:`code_aperiodicity` / :func:`decode_aperiodicity`: WORLD band aperiodicity
  (dB at 3 kHz, 6 kHz, ...).
- :func:`mel_cepstrum` / :func:`mel_cepstrum_to_envelope`: all-pass warped
  (mel-)cepstrum of an envelope in SPTK's convention, the features of MCD.
- :func:`world_synthesize`: WORLD synthesis from those features (copy-synthesis
  baseline), exactly ``frames * hop_length`` samples.

Every function returns numpy float32 arrays; the arithmetic is done in float64.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .f0 import check_f0_audio, check_f0_range, check_rate_and_hop, estimate_f0

__all__ = [
    "world_features",
    "default_fft_size",
    "default_alpha",
    "code_envelope",
    "decode_envelope",
    "code_aperiodicity",
    "decode_aperiodicity",
    "mel_cepstrum",
    "mel_cepstrum_to_envelope",
    "world_synthesize",
]

# All-pass constants conventionally used for mel-cepstra at common sample rates.
_ALPHA_BY_RATE = {
    8000: 0.31,
    16000: 0.42,
    22050: 0.45,
    24000: 0.46,
    32000: 0.50,
    44100: 0.53,
    48000: 0.55,
}

# D4C's voiced/unvoiced check ("LoveTrain") compares the power in 100-4000 Hz with
# that in 100-7900 Hz; below this rate the upper band lies past Nyquist and WORLD
# reads uninitialised memory, so the check is switched off there.
_D4C_CHECK_MIN_RATE = 16000
_D4C_DEFAULT_THRESHOLD = 0.85


def default_fft_size(*, sample_rate: int, f0_min: float = 65.0) -> int:
    """CheapTrick's FFT size for ``f0_min``: the power of two above ``3 * sample_rate / f0_min``.

    Examples with ``f0_min = 65``: 1024 at 16 and 22.05 kHz, 2048 at 44.1 kHz,
    4096 at 48 kHz.
    """
    return int(2 ** math.ceil(math.log2(3.0 * sample_rate / f0_min + 1.0)))


def world_features(
    audio,
    *,
    sample_rate: int,
    hop_length: int,
    f0_hz=None,
    f0_method: str = "harvest",
    f0_min: float = 65.0,
    f0_max: float = 800.0,
    fft_size: int | None = None,
    d4c_threshold: float | None = None,
    mix_channels: bool = False,
    name: str = "audio",
) -> dict[str, np.ndarray]:
    """WORLD analysis of a mono signal: f0, voicing, spectral envelope, aperiodicity.

    Args:
        audio: (samples,) mono signal (see :func:`~vocoder.analysis.f0.estimate_f0`
            for accepted inputs and the errors raised).
        sample_rate: samples per second (integer).
        hop_length: samples per frame (integer).
        f0_hz: optional (frames,) f0 in Hz (0 = unvoiced) on this grid, with
            ``frames = ceil(samples / hop_length)``; estimated with ``f0_method``
            when None.
        f0_method: f0 estimator when ``f0_hz`` is None (see ``F0_METHODS``).
        f0_min, f0_max: f0 search range in Hz; ``f0_min`` also sets the default FFT
            size and the shortest accepted signal (three periods of ``f0_min``).
        fft_size: FFT size of the envelope and aperiodicity, a power of two at least
            :func:`default_fft_size` (which it defaults to) so that CheapTrick's
            three-period window fits periods of ``f0_min``.
        d4c_threshold: D4C's voiced/unvoiced check in [0, 1]: voiced frames whose
            share of 100-7900 Hz power lying below 4 kHz is at or under it get
            aperiodicity 1 (noise only). None: 0.85 (WORLD's value) at sample rates of
            16 kHz and above, 0 (check off, WORLD's check needs 7.9 kHz of bandwidth)
            below; a positive value below 16 kHz is rejected.
        mix_channels: average multichannel input instead of rejecting it.
        name: how the input is named in error messages.
    Returns:
        dict with ``f0_hz`` (frames,) Hz, 0 where unvoiced; ``vuv`` (frames,) bool;
        ``sp`` (frames, fft_size // 2 + 1) power spectral envelope (squared
        magnitude, linear frequency bins ``k * sample_rate / fft_size``); ``ap``
        (frames, fft_size // 2 + 1) aperiodicity in [0, 1] (ratio of aperiodic to
        total power per bin). Arrays are float32 except ``vuv``.
    Raises:
        ValueError: invalid audio (AudioError), arguments or ``f0_hz``.
    """
    import pyworld

    sample_rate, hop_length = check_rate_and_hop(sample_rate, hop_length)
    f0_min, f0_max = check_f0_range(f0_min, f0_max, sample_rate=sample_rate)
    fft_size = _check_fft_size(fft_size, sample_rate=sample_rate, f0_min=f0_min)
    threshold = _check_d4c_threshold(d4c_threshold, sample_rate)
    x = check_f0_audio(audio, sample_rate=sample_rate, f0_min=f0_min,
                       mix_channels=mix_channels, name=name)
    n_frames = -(-x.size // hop_length)
    if f0_hz is None:
        f0, _ = estimate_f0(x, sample_rate=sample_rate, hop_length=hop_length,
                            method=f0_method, f0_min=f0_min, f0_max=f0_max, name=name)
        f0 = f0.astype(np.float64)
    else:
        f0 = _as_float64(f0_hz, "f0_hz")
        if f0.shape != (n_frames,):
            raise ValueError(
                f"{name}: f0_hz has shape {f0.shape}, expected ({n_frames},) for "
                f"{x.size} samples at hop_length={hop_length}"
            )
        _require(np.isfinite(f0).all(), "f0_hz contains NaN/inf values")
        _require((f0 >= 0).all(), "f0_hz must be >= 0 (0 marks unvoiced frames)")
        f0 = np.ascontiguousarray(f0)
    times = np.arange(n_frames) * (hop_length / sample_rate)
    sp = pyworld.cheaptrick(x, f0, times, sample_rate, fft_size=fft_size)
    ap = pyworld.d4c(x, f0, times, sample_rate, threshold=threshold, fft_size=fft_size)
    return {
        "f0_hz": f0.astype(np.float32),
        "vuv": f0 > 0,
        "sp": sp.astype(np.float32),
        "ap": np.clip(ap, 0.0, 1.0).astype(np.float32),
    }


def code_envelope(sp, *, sample_rate: int, n_dims: int) -> np.ndarray:
    """Compress a power envelope with WORLD's coding (``pyworld.code_spectral_envelope``).

    Args:
        sp: (frames, fft_size // 2 + 1) power envelope, > 0.
        sample_rate: samples per second.
        n_dims: coded dimensions, 1 .. fft_size // 2.
    Returns:
        (frames, n_dims) coded envelope (cosine transform of the log envelope on a
        mel frequency axis).
    """
    import pyworld

    sample_rate, _ = check_rate_and_hop(sample_rate, 1)
    p = _check_envelope(sp, "sp")
    if not (isinstance(n_dims, (int, np.integer)) and 1 <= n_dims < p.shape[1]):
        raise ValueError(f"n_dims must be an integer in [1, {p.shape[1] - 1}] for "
                         f"{p.shape[1]} frequency bins, got {n_dims!r}")
    return pyworld.code_spectral_envelope(p, sample_rate, int(n_dims)).astype(np.float32)


def decode_envelope(coded, *, sample_rate: int, fft_size: int) -> np.ndarray:
    """Inverse of :func:`code_envelope`.

    Args:
        coded: (frames, n_dims) coded envelope.
        sample_rate: samples per second.
        fft_size: FFT size of the envelope to restore (a power of two).
    Returns:
        (frames, fft_size // 2 + 1) power envelope.
    """
    import pyworld

    sample_rate, _ = check_rate_and_hop(sample_rate, 1)
    fft_size = _check_power_of_two(fft_size)
    c = _check_2d(coded, "coded envelope")
    if c.shape[1] > fft_size // 2:
        raise ValueError(f"coded envelope has {c.shape[1]} dims, more than fft_size // 2 "
                         f"= {fft_size // 2}")
    return pyworld.decode_spectral_envelope(c, sample_rate, fft_size).astype(np.float32)


def code_aperiodicity(ap, *, sample_rate: int) -> np.ndarray:
    """Band aperiodicity (``pyworld.code_aperiodicity``).

    Args:
        ap: (frames, fft_size // 2 + 1) aperiodicity in [0, 1].
        sample_rate: samples per second; at least 12 kHz, since WORLD codes bands
            every 3 kHz up to min(15 kHz, Nyquist - 3 kHz).
    Returns:
        (frames, n_bands) aperiodicity in dB at 3 kHz, 6 kHz, ...;
        ``n_bands = pyworld.get_num_aperiodicities(sample_rate)`` (1 at 16 kHz, 2 at
        22.05 kHz, 3 at 24 kHz, 5 at 44.1 / 48 kHz).
    """
    import pyworld

    sample_rate, _ = check_rate_and_hop(sample_rate, 1)
    _aperiodicity_bands(sample_rate)
    a = _check_2d(ap, "ap")
    _require(a.shape[1] >= 2, f"ap needs at least 2 frequency bins, got {a.shape[1]}")
    _require(((a >= 0) & (a <= 1)).all(), "ap values must lie in [0, 1]")
    return pyworld.code_aperiodicity(a, sample_rate).astype(np.float32)


def decode_aperiodicity(coded, *, sample_rate: int, fft_size: int) -> np.ndarray:
    """Inverse of :func:`code_aperiodicity`.

    Args:
        coded: (frames, n_bands) band aperiodicity in dB.
        sample_rate: samples per second (at least 12 kHz).
        fft_size: FFT size of the aperiodicity to restore (a power of two).
    Returns:
        (frames, fft_size // 2 + 1) aperiodicity in [0, 1].
    """
    import pyworld

    sample_rate, _ = check_rate_and_hop(sample_rate, 1)
    fft_size = _check_power_of_two(fft_size)
    n_bands = _aperiodicity_bands(sample_rate)
    c = _check_2d(coded, "coded aperiodicity")
    if c.shape[1] != n_bands:
        raise ValueError(f"coded aperiodicity has {c.shape[1]} bands; sample_rate="
                         f"{sample_rate} uses {n_bands}")
    return pyworld.decode_aperiodicity(c, sample_rate, fft_size).astype(np.float32)


def default_alpha(sample_rate: int) -> float:
    """All-pass constant that makes the warped frequency axis approximate the mel scale.

    The conventional values at common rates: 8 kHz 0.31, 16 kHz 0.42, 22.05 kHz 0.45,
    24 kHz 0.46, 32 kHz 0.50, 44.1 kHz 0.53, 48 kHz 0.55. Other rates get the alpha
    (step 0.001) whose normalised warping is closest (RMS over 0 .. Nyquist) to the
    normalised mel scale ``log(1 + f / 1000)``, the fit SPTK's tools use.
    """
    sample_rate, _ = check_rate_and_hop(sample_rate, 1)
    if sample_rate in _ALPHA_BY_RATE:
        return _ALPHA_BY_RATE[sample_rate]
    return _fit_alpha(sample_rate)


def mel_cepstrum(sp, *, sample_rate: int, order: int = 24,
                 alpha: float | None = None) -> np.ndarray:
    """Mel-cepstrum of a power spectral envelope (e.g. WORLD's ``sp``).

    The coefficients ``c`` follow SPTK's convention (``mcep``/``sp2mc`` with gamma 0):
    the amplitude envelope is ``|H(w)| = exp(sum_{m=0}^{order} c[m] cos(m * v(w)))``,
    where ``v(w) = w + 2 * atan(alpha * sin(w) / (1 - alpha * cos(w)))`` is the phase
    of the first-order all-pass ``(z^-1 - alpha) / (1 - alpha z^-1)``. So ``c`` holds
    the cosine-series coefficients of ``log|H|`` on the warped axis ``v``, and the
    mel-cepstral distance of order 24 reads
    ``10 / ln(10) * sqrt(2 * sum_{m=1}^{24} (c[m] - c'[m]) ** 2)`` dB.

    Method: the log envelope is resampled (linear interpolation) on a uniform grid of
    the warped frequency ``v`` in [0, pi] (each ``v`` mapped back with the inverse
    warping, the all-pass with ``-alpha``); the grid is denser than the input by the
    largest stretch of the warping, ``ceil((1 + |alpha|) / (1 - |alpha|))``, so no
    part of the spectrum is undersampled; the real cepstrum of that warped log power
    spectrum is taken with an inverse real FFT, ``c[0]`` halved, and truncated to
    ``order + 1`` terms. With ``alpha = 0`` this is exactly the real cepstrum.

    Args:
        sp: (..., fft_size // 2 + 1) power envelope, > 0, bins linear from 0 Hz to
            Nyquist.
        sample_rate: samples per second (chooses the default alpha).
        order: highest cepstral index; less than the number of bins.
        alpha: all-pass constant in (-1, 1); None uses :func:`default_alpha`.
    Returns:
        (..., order + 1) mel-cepstral coefficients (``c[0]`` is the log gain).
    """
    p = _check_envelope(sp, "sp", any_rank=True)
    n_bins = p.shape[-1]
    order = _check_order(order, n_bins)
    alpha = _resolve_alpha(alpha, sample_rate)
    index, frac, n_fft = _warped_grid(n_bins, alpha)
    log_p = np.log(p)
    warped = log_p[..., index] * (1.0 - frac) + log_p[..., index + 1] * frac
    cep = np.fft.irfft(warped, n=n_fft, axis=-1)[..., : order + 1]
    cep[..., 0] *= 0.5
    return cep.astype(np.float32)


def mel_cepstrum_to_envelope(mc, *, sample_rate: int, fft_size: int,
                             alpha: float | None = None) -> np.ndarray:
    """Power envelope of a mel-cepstrum: the inverse of :func:`mel_cepstrum`.

    Evaluates ``|H(w)|^2 = exp(2 * sum_m c[m] cos(m * v(w)))`` at the bins
    ``w = pi * k / (fft_size // 2)``, ``k = 0 .. fft_size // 2`` (see
    :func:`mel_cepstrum` for ``v``). The result is the cepstrally smoothed envelope.

    Args:
        mc: (..., order + 1) mel-cepstrum.
        sample_rate: samples per second (chooses the default alpha).
        fft_size: FFT size of the envelope (even).
        alpha: all-pass constant; None uses :func:`default_alpha`.
    Returns:
        (..., fft_size // 2 + 1) power envelope.
    """
    c = _as_float64(mc, "mel-cepstrum")
    _require(c.ndim >= 1 and c.shape[-1] >= 1,
             f"mel-cepstrum must be (..., order + 1), got shape {c.shape}")
    _require(np.isfinite(c).all(), "mel-cepstrum contains NaN/inf values")
    if not (isinstance(fft_size, (int, np.integer)) and fft_size >= 2 and fft_size % 2 == 0):
        raise ValueError(f"fft_size must be an even integer >= 2, got {fft_size!r}")
    alpha = _resolve_alpha(alpha, sample_rate)
    w = np.linspace(0.0, np.pi, fft_size // 2 + 1)
    basis = np.cos(np.outer(_warp(w, alpha), np.arange(c.shape[-1])))  # (bins, order + 1)
    return np.exp(2.0 * (c @ basis.T)).astype(np.float32)


def world_synthesize(f0_hz, sp, ap, *, sample_rate: int, hop_length: int) -> np.ndarray:
    """WORLD synthesis (``pyworld.synthesize``) on the frame grid.

    Args:
        f0_hz: (frames,) f0 in Hz, 0 where unvoiced.
        sp: (frames, fft_size // 2 + 1) power envelope, > 0.
        ap: (frames, fft_size // 2 + 1) aperiodicity in [0, 1].
        sample_rate: samples per second.
        hop_length: samples per frame.
    Returns:
        (frames * hop_length,) float32 audio; frame ``n`` sits at sample
        ``n * hop_length``. Trim to the length you need.
    """
    import pyworld

    sample_rate, hop_length = check_rate_and_hop(sample_rate, hop_length)
    f0 = _as_float64(f0_hz, "f0_hz")
    _require(f0.ndim == 1 and f0.size > 0, f"f0_hz must be (frames,), got shape {f0.shape}")
    _require(np.isfinite(f0).all(), "f0_hz contains NaN/inf values")
    _require((f0 >= 0).all(), "f0_hz must be >= 0 (0 marks unvoiced frames)")
    p = _check_envelope(sp, "sp")
    a = _check_2d(ap, "ap")
    if p.shape[0] != f0.size or a.shape != p.shape:
        raise ValueError(f"shapes disagree: f0_hz {f0.shape}, sp {p.shape}, ap {a.shape}; "
                         "expected (frames,), (frames, bins), (frames, bins)")
    _check_power_of_two(2 * (p.shape[1] - 1), what="2 * (sp bins - 1)")
    _require(((a >= 0) & (a <= 1)).all(), "ap values must lie in [0, 1]")
    frame_period = 1000.0 * hop_length / sample_rate
    y = pyworld.synthesize(np.ascontiguousarray(f0), p, a, sample_rate, frame_period)
    n_out = f0.size * hop_length
    if y.size >= n_out:
        y = y[:n_out]
    else:
        y = np.concatenate([y, np.zeros(n_out - y.size)])
    return y.astype(np.float32)


# --------------------------------------------------------------------------- helpers


def _warp(w, alpha):
    """Phase of the all-pass ``(z^-1 - alpha) / (1 - alpha z^-1)`` at ``w`` (radians)."""
    return w + 2.0 * np.arctan2(alpha * np.sin(w), 1.0 - alpha * np.cos(w))


@functools.lru_cache(maxsize=32)
def _warped_grid(n_bins: int, alpha: float):
    """Interpolation indices and weights that sample bins on a uniform warped grid."""
    stretch = math.ceil((1.0 + abs(alpha)) / (1.0 - abs(alpha)))
    n_grid = (n_bins - 1) * stretch + 1
    v = np.linspace(0.0, np.pi, n_grid)
    position = np.clip(_warp(v, -alpha) / np.pi * (n_bins - 1), 0.0, n_bins - 1)
    index = np.minimum(np.floor(position).astype(np.int64), n_bins - 2)
    frac = position - index
    index.setflags(write=False)
    frac.setflags(write=False)
    return index, frac, 2 * (n_grid - 1)


def _fit_alpha(sample_rate: int) -> float:
    n = 1000
    freq = np.arange(n) * (sample_rate / 2.0 / n)
    mel = np.log1p(freq / 1000.0)
    mel /= mel[-1]
    w = np.pi * np.arange(n) / n
    alphas = np.arange(0.0, 0.999, 0.001)
    warped = _warp(w[None, :], alphas[:, None])
    warped /= warped[:, -1:]
    best = int(np.argmin(np.sqrt(np.mean((warped - mel) ** 2, axis=1))))
    return round(float(alphas[best]), 3)


def _resolve_alpha(alpha, sample_rate) -> float:
    if alpha is None:
        return default_alpha(sample_rate)
    alpha = float(alpha)
    if not -1.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (-1, 1), got {alpha}")
    return alpha


def _check_order(order, n_bins: int) -> int:
    if not (isinstance(order, (int, np.integer)) and 0 <= order < n_bins):
        raise ValueError(f"order must be an integer in [0, {n_bins - 1}] for {n_bins} "
                         f"frequency bins, got {order!r}")
    return int(order)


def _check_fft_size(fft_size, *, sample_rate: int, f0_min: float) -> int:
    need = default_fft_size(sample_rate=sample_rate, f0_min=f0_min)
    if fft_size is None:
        return need
    fft_size = _check_power_of_two(fft_size)
    if fft_size < need:
        raise ValueError(
            f"fft_size={fft_size} is too small for f0_min={f0_min:g} Hz at sample_rate="
            f"{sample_rate}: CheapTrick needs at least {need} (three periods of f0_min)"
        )
    return fft_size


def _check_power_of_two(n, what: str = "fft_size") -> int:
    if not (isinstance(n, (int, np.integer)) and n >= 2 and (int(n) & (int(n) - 1)) == 0):
        raise ValueError(f"{what} must be a power of two >= 2, got {n!r}")
    return int(n)


def _check_d4c_threshold(threshold, sample_rate: int) -> float:
    if threshold is None:
        return _D4C_DEFAULT_THRESHOLD if sample_rate >= _D4C_CHECK_MIN_RATE else 0.0
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"d4c_threshold must lie in [0, 1], got {threshold}")
    if threshold > 0 and sample_rate < _D4C_CHECK_MIN_RATE:
        raise ValueError(
            f"d4c_threshold={threshold} needs sample_rate >= {_D4C_CHECK_MIN_RATE} "
            f"(D4C's check measures power up to 7.9 kHz); use 0 or None at {sample_rate} Hz"
        )
    return threshold


def _aperiodicity_bands(sample_rate: int) -> int:
    import pyworld

    n_bands = pyworld.get_num_aperiodicities(sample_rate)
    if n_bands < 1:
        raise ValueError(
            f"WORLD band aperiodicity needs sample_rate >= 12000 (bands every 3 kHz up "
            f"to Nyquist - 3 kHz); got {sample_rate}"
        )
    return n_bands


def _as_float64(x, what: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _check_2d(x, what: str) -> np.ndarray:
    arr = _as_float64(x, what)
    _require(arr.ndim == 2 and arr.shape[0] > 0 and arr.shape[1] > 0,
             f"{what} must be a non-empty (frames, dims) array, got shape {arr.shape}")
    _require(np.isfinite(arr).all(), f"{what} contains NaN/inf values")
    return arr


def _check_envelope(sp, what: str, *, any_rank: bool = False) -> np.ndarray:
    if any_rank:
        p = _as_float64(sp, what)
        _require(p.ndim >= 1 and p.size > 0, f"{what} must be (..., bins), got shape {p.shape}")
        _require(np.isfinite(p).all(), f"{what} contains NaN/inf values")
    else:
        p = _check_2d(sp, what)
    _require(p.shape[-1] >= 2, f"{what} needs at least 2 frequency bins, got {p.shape[-1]}")
    bad = int(np.sum(p <= 0))
    _require(bad == 0, f"{what} must be a positive power envelope; {bad} values are <= 0")
    return p


def _require(ok, message: str) -> None:
    if not ok:
        raise ValueError(message)
