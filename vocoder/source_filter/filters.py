"""Time-varying filters for source-filter synthesis: envelopes, (mel-)cepstra, LPC.

All filters are causal and stable for any finite frame values a network can produce:

- FIR filters (from a spectral envelope or a cepstrum) are stable by construction; their
  log gain is clamped at ``max_log_gain`` nats so that ``exp`` cannot overflow.
- All-pole (LPC) filters are parameterised by reflection coefficients
  ``k = max_reflection * tanh(raw)`` with ``max_reflection < 1``: a polynomial built by
  the step-up (Levinson) recursion from ``|k_i| < 1`` has all its roots inside the unit
  circle (Schur-Cohn), so ``1 / A(z)`` is stable, and linear interpolation between
  frames keeps ``|k_i| < 1`` (an interval is convex) where interpolating the direct-form
  coefficients would not. Frozen-time stability is not enough when the coefficients
  change every frame: a high-order direct form can still grow without bound. The
  default structure is therefore the normalized lattice (:mod:`.lattice`), an
  orthogonal recursion whose output is bounded by the input energy for *any* time
  variation. ``normalize_gain`` scales the input by ``sqrt(prod(1 - k_i^2))``, which
  makes the stationary white-noise power gain exactly 1.

Symbols in the shape docstrings:

    B   batch
    N   samples
    F   frames; frame ``n`` is centred on sample ``n * hop_length``
    M   filter order (LPC) or highest cepstral index
    E   envelope bins, linear from 0 Hz to Nyquist inclusive

Time variation follows :func:`vocoder.dsp.filters.ltv_fir`: frame ``n`` filters the
input under the Hann window of ``2 * hop_length`` samples centred on its sample, and the
filtered pieces are overlap-added (a filter held constant gives exactly the LTI result).
The all-pole filters instead interpolate their reflection coefficients per sample.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..dsp.filters import frequency_sampling_fir, ltv_fir
from ..dsp.upsample import upsample_linear

__all__ = [
    "DEFAULT_MAX_LOG_GAIN",
    "minimum_phase_spectrum",
    "cepstrum_to_spectrum",
    "ltv_spectral_filter",
    "envelope_filter",
    "cepstrum_filter",
    "reflection_from_raw",
    "reflection_to_lpc",
    "lpc_to_reflection",
    "allpole_filter",
    "reflection_filter",
    "EnvelopeFilter",
    "CepstrumFilter",
    "AllPoleFilter",
]

#: Largest log magnitude (nats, about 260 dB) a cepstral/envelope filter may have.
DEFAULT_MAX_LOG_GAIN = 30.0


# --------------------------------------------------------------------------- spectra


def _check_signal(signal: torch.Tensor, name: str) -> None:
    if not isinstance(signal, torch.Tensor) or signal.dim() != 2 or signal.shape[1] < 1:
        shape = tuple(signal.shape) if isinstance(signal, torch.Tensor) else type(signal).__name__
        raise ValueError(f"{name}: signal must be a non-empty (batch, samples) tensor, got {shape}")


def _check_frames(x: torch.Tensor, name: str, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[1] < 1 or x.shape[2] < 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: {what} must be a non-empty (batch, frames, dims) tensor, got {shape}")


def _resample_bins(x: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Linear interpolation of the last axis (0 Hz .. Nyquist) onto ``n_bins`` points."""
    n_in = x.shape[-1]
    if n_in == n_bins:
        return x
    if n_bins > 1 and (n_in - 1) % (n_bins - 1) == 0:
        return x[..., ::(n_in - 1) // (n_bins - 1)]  # integer ratio: the grid points are input bins
    lead = x.shape[:-1]
    return F.interpolate(x.reshape(-1, 1, n_in), size=n_bins, mode="linear",
                         align_corners=True).reshape(*lead, n_bins)


def _complex_exp(real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    """``exp(real + i imag)``; on CPU about 8x faster than ``torch.exp`` of a complex
    tensor and 2x faster than ``torch.polar``."""
    magnitude = torch.exp(real)
    return torch.complex(magnitude * torch.cos(imag), magnitude * torch.sin(imag))


@functools.lru_cache(maxsize=16)
def _fold(n_fft: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    fold = torch.zeros(n_fft, dtype=dtype, device=device)
    fold[0] = 1.0
    fold[1:(n_fft + 1) // 2] = 2.0
    if n_fft % 2 == 0:
        fold[n_fft // 2] = 1.0
    return fold


def minimum_phase_spectrum(
    log_magnitude: torch.Tensor,
    *,
    n_fft: int,
    max_log_gain: float = DEFAULT_MAX_LOG_GAIN,
) -> torch.Tensor:
    """Minimum-phase frequency response from a log magnitude (homomorphic method).

    The real cepstrum ``irfft(log|H|)`` is folded onto non-negative quefrencies and
    exponentiated back: ``H = exp(rfft(fold * cepstrum))``; ``|H|`` equals the input
    (clamped at ``max_log_gain``) at every bin and the phase is minimum up to cepstral
    aliasing, which shrinks as ``n_fft`` grows (the method of
    :func:`vocoder.dsp.filters.minimum_phase`, returned as a spectrum so that filtering
    needs no second FFT of the impulse response).

    Args:
        log_magnitude: (..., E) natural-log magnitude at ``E >= 2`` bins from 0 Hz to
            Nyquist; linearly interpolated onto ``n_fft // 2 + 1`` bins if ``E`` differs.
        n_fft: FFT size (even).
        max_log_gain: upper clamp of the log magnitude in nats.
    Returns:
        (..., n_fft // 2 + 1) complex response.
    """
    if log_magnitude.shape[-1] < 2:
        raise ValueError("minimum_phase_spectrum: log_magnitude needs at least 2 bins")
    if int(n_fft) != n_fft or n_fft < 2 or n_fft % 2:
        raise ValueError(f"minimum_phase_spectrum: n_fft must be an even integer >= 2, got {n_fft}")
    log_mag = _resample_bins(log_magnitude.clamp(max=max_log_gain), n_fft // 2 + 1)
    cepstrum = torch.fft.irfft(log_mag, n=n_fft)
    fold = _fold(int(n_fft), cepstrum.dtype, str(cepstrum.device))
    log_h = torch.fft.rfft(cepstrum * fold)
    return _complex_exp(log_h.real, log_h.imag)


def _warp(w: torch.Tensor, alpha: float) -> torch.Tensor:
    """Phase of the all-pass ``(z^-1 - alpha) / (1 - alpha z^-1)`` (as analysis.world._warp)."""
    return w + 2.0 * torch.atan2(alpha * torch.sin(w), 1.0 - alpha * torch.cos(w))


@functools.lru_cache(maxsize=16)
def _warped_basis(n_fft: int, n_coeffs: int, alpha: float, dtype: torch.dtype, device: str):
    w = torch.linspace(0.0, math.pi, n_fft // 2 + 1, dtype=torch.float64)
    arg = torch.outer(torch.arange(n_coeffs, dtype=torch.float64), _warp(w, alpha))  # (M + 1, bins)
    return torch.cos(arg).to(dtype=dtype, device=device), (-torch.sin(arg)).to(dtype=dtype, device=device)


def cepstrum_to_spectrum(
    cepstrum: torch.Tensor,
    *,
    n_fft: int,
    alpha: float = 0.0,
    max_log_gain: float = DEFAULT_MAX_LOG_GAIN,
) -> torch.Tensor:
    """Minimum-phase response ``H(z) = exp(sum_m c[m] zt^-m)`` of a (mel-)cepstrum.

    ``zt^-1 = (z^-1 - alpha) / (1 - alpha z^-1)`` is the first-order all-pass, whose
    phase on the unit circle is ``-v(w)`` with ``v(w) = w + 2 atan(alpha sin w /
    (1 - alpha cos w))``; so ``|H(w)| = exp(sum_m c[m] cos(m v(w)))``, the convention of
    :func:`vocoder.analysis.world.mel_cepstrum` (``mel_cepstrum_to_envelope`` returns
    ``|H|^2``). ``log H`` is analytic outside the unit circle, so ``H`` is minimum
    phase exactly; no cepstral folding is needed. ``alpha = 0`` is the plain cepstrum
    (computed by one ``rfft``). Evaluated at the bins ``w = 2 pi j / n_fft``; the
    implied impulse response (``irfft`` of the result) is time-aliased at ``n_fft``.

    Args:
        cepstrum: (..., M + 1) coefficients ``c[0] .. c[M]`` (``c[0]``: log gain).
        n_fft: FFT size (even, ``> 2 M`` for ``alpha = 0``).
        alpha: all-pass constant in (-1, 1) (0.42 at 16 kHz for mel-cepstra; see
            :func:`vocoder.analysis.world.default_alpha`).
        max_log_gain: upper clamp of ``log|H|`` in nats.
    Returns:
        (..., n_fft // 2 + 1) complex response.
    """
    if int(n_fft) != n_fft or n_fft < 2 or n_fft % 2:
        raise ValueError(f"cepstrum_to_spectrum: n_fft must be an even integer >= 2, got {n_fft}")
    if not -1.0 < float(alpha) < 1.0:
        raise ValueError(f"cepstrum_to_spectrum: alpha must lie in (-1, 1), got {alpha}")
    n_coeffs = cepstrum.shape[-1]
    if float(alpha) == 0.0:
        if n_coeffs > n_fft // 2:
            raise ValueError(f"cepstrum_to_spectrum: {n_coeffs} coefficients need n_fft > {2 * (n_coeffs - 1)}")
        log_h = torch.fft.rfft(cepstrum, n=int(n_fft))
        real, imag = log_h.real, log_h.imag
    else:
        cos_b, sin_b = _warped_basis(int(n_fft), n_coeffs, float(alpha), cepstrum.dtype, str(cepstrum.device))
        real, imag = cepstrum @ cos_b, cepstrum @ sin_b
    return _complex_exp(real.clamp(max=max_log_gain), imag)


# --------------------------------------------------------------------------- LTV filtering


def _frame_spectra(signal: torch.Tensor, *, hop_length: int, n_fft: int, n_used: int) -> torch.Tensor:
    """rfft (n_fft) of the Hann-windowed segments ``[(n - 1) hop, (n + 1) hop)``, n < n_used."""
    n_samples = signal.shape[-1]
    seg = 2 * hop_length
    padded = F.pad(signal, (hop_length, (n_used + 1) * hop_length - hop_length - n_samples))
    frames = padded.unfold(-1, seg, hop_length)  # (B, n_used, 2 hop)
    k = torch.arange(seg, dtype=signal.dtype, device=signal.device)
    window = 0.5 - 0.5 * torch.cos(math.pi * k / hop_length)
    return torch.fft.rfft(frames * window, n=n_fft)


def _overlap_add(spectra: torch.Tensor, *, hop_length: int, n_fft: int, n_samples: int) -> torch.Tensor:
    """irfft of per-segment spectra and causal overlap-add; (B, n_used, bins) -> (B, N)."""
    pieces = torch.fft.irfft(spectra, n=n_fft)  # (B, n_used, n_fft)
    batch, n_used, _ = pieces.shape
    # Piece n starts at sample (n - 1) * hop. Cut each piece into blocks of one hop and
    # add block j of every piece at once (one strided add per block; F.fold is ~10x slower).
    # The first block initialises the sum (no zero fill) and the last, partial block
    # is added as a slice (no padded copy of the pieces).
    n_blocks = -(-n_fft // hop_length)
    summed = pieces.new_empty(batch, n_used + n_blocks - 1, hop_length)
    summed[:, :n_used] = pieces[..., :hop_length]
    summed[:, n_used:] = 0.0
    for j in range(1, n_blocks):
        width = min(hop_length, n_fft - j * hop_length)
        summed[:, j:j + n_used, :width] += pieces[..., j * hop_length:j * hop_length + width]
    return summed.reshape(batch, -1)[:, hop_length:hop_length + n_samples]


def _frames_used(n_samples: int, hop_length: int) -> int:
    return (n_samples - 1) // hop_length + 2


def _hold_frames(x: torch.Tensor, n_used: int) -> torch.Tensor:
    """Truncate or extend (holding the last frame) along dim 1 to ``n_used`` frames."""
    n_frames = x.shape[1]
    if n_frames >= n_used:
        return x[:, :n_used]
    held = x[:, -1:].expand(x.shape[0], n_used - n_frames, *x.shape[2:])
    return torch.cat([x, held], dim=1)


def ltv_spectral_filter(
    signal: torch.Tensor,
    spectra: torch.Tensor,
    *,
    hop_length: int,
) -> torch.Tensor:
    """Time-varying causal filtering with one frequency response per frame.

    Like :func:`vocoder.dsp.filters.ltv_fir` (``centred=False``): frame ``n``'s response
    filters the input under the Hann window of ``2 * hop_length`` samples centred on
    sample ``n * hop_length`` and the results are overlap-added; but the filter is
    given as its spectrum on the ``n_fft`` grid, so each frame costs one complex
    product between an ``rfft`` of the windowed input and an ``irfft``. The product is a
    circular convolution of length ``n_fft``: the part of the impulse response
    ``irfft(spectra)`` beyond ``n_fft - 2 * hop_length`` taps wraps around, so use it
    for causal filters that decay within that (minimum-phase envelopes with
    ``n_fft`` of 20 ms or more do). For such a filter held constant the output equals
    ``scipy.signal.lfilter``/``fftconvolve`` of the input with it.

    Args:
        signal: (B, N) input.
        spectra: (B, F, n_fft // 2 + 1) complex responses (``n_fft`` even and at least
            ``2 * hop_length``; batch 1 broadcasts); frames past the signal are
            ignored and the last frame is held.
        hop_length: samples between frame centres.
    Returns:
        (B, N) filtered signal (real, dtype of ``signal``).
    """
    _check_signal(signal, "ltv_spectral_filter")
    _check_frames(spectra, "ltv_spectral_filter", "spectra")
    hop_length = int(hop_length)
    n_fft = 2 * (spectra.shape[-1] - 1)
    if n_fft < 2 * hop_length:
        raise ValueError(f"ltv_spectral_filter: n_fft = {n_fft} (from {spectra.shape[-1]} bins) "
                         f"must be >= 2 * hop_length = {2 * hop_length}")
    if spectra.shape[0] not in (1, signal.shape[0]):
        raise ValueError(f"ltv_spectral_filter: batch of spectra ({spectra.shape[0]}) does not match "
                         f"the signal's ({signal.shape[0]})")
    n_samples = signal.shape[1]
    n_used = _frames_used(n_samples, hop_length)
    x = _frame_spectra(signal, hop_length=hop_length, n_fft=n_fft, n_used=n_used)
    y = x * _hold_frames(spectra, n_used)
    return _overlap_add(y, hop_length=hop_length, n_fft=n_fft, n_samples=n_samples)


def _default_n_fft(n_bins: int, hop_length: int) -> int:
    n_fft = 2 * (n_bins - 1)
    while n_fft < 2 * hop_length:
        n_fft *= 2
    return n_fft


def envelope_filter(
    signal: torch.Tensor,
    envelope: torch.Tensor,
    *,
    hop_length: int,
    kind: str = "power",
    phase: str = "minimum",
    n_fft: int | None = None,
    eps: float = 1e-12,
    max_log_gain: float = DEFAULT_MAX_LOG_GAIN,
) -> torch.Tensor:
    """Filter by a time-varying spectral envelope (e.g. WORLD's ``sp``).

    The magnitude response of frame ``n`` is ``sqrt(envelope[n])`` (``kind="power"``) or
    ``envelope[n]`` (``"magnitude"``), floored at ``sqrt(eps)`` / ``eps``.
    ``phase="minimum"``: the minimum-phase response (:func:`minimum_phase_spectrum`)
    through :func:`ltv_spectral_filter` (causal, no delay). ``phase="linear"``: a
    Hann-windowed frequency-sampling FIR of ``n_fft`` taps through
    :func:`vocoder.dsp.filters.ltv_fir` with its delay removed (zero phase overall).

    Args:
        signal: (B, N) input.
        envelope: (B, F, E) non-negative envelope, bins linear from 0 Hz to Nyquist.
        hop_length: samples per frame.
        kind: "power" or "magnitude".
        phase: "minimum" or "linear".
        n_fft: FFT size of the filters; default ``2 * (E - 1)`` (doubled until it is at
            least ``2 * hop_length``).
        eps: floor of the envelope before the logarithm / square root.
        max_log_gain: clamp of the log magnitude (nats).
    Returns:
        (B, N) filtered signal.
    """
    _check_signal(signal, "envelope_filter")
    _check_frames(envelope, "envelope_filter", "envelope")
    if kind not in ("power", "magnitude"):
        raise ValueError(f"envelope_filter: kind must be 'power' or 'magnitude', got {kind!r}")
    if phase not in ("minimum", "linear"):
        raise ValueError(f"envelope_filter: phase must be 'minimum' or 'linear', got {phase!r}")
    n_fft = _default_n_fft(envelope.shape[-1], hop_length) if n_fft is None else int(n_fft)
    log_mag = torch.log(envelope.clamp_min(eps))
    if kind == "power":
        log_mag = 0.5 * log_mag
    if phase == "minimum":
        spectra = minimum_phase_spectrum(log_mag, n_fft=n_fft, max_log_gain=max_log_gain)
        return ltv_spectral_filter(signal, spectra, hop_length=hop_length)
    magnitude = torch.exp(_resample_bins(log_mag.clamp(max=max_log_gain), n_fft // 2 + 1))
    irs = frequency_sampling_fir(magnitude, ir_length=n_fft)
    return ltv_fir(signal, irs, hop_length=hop_length, centred=True)


def cepstrum_filter(
    signal: torch.Tensor,
    cepstrum: torch.Tensor,
    *,
    hop_length: int,
    n_fft: int = 1024,
    alpha: float = 0.0,
    max_log_gain: float = DEFAULT_MAX_LOG_GAIN,
) -> torch.Tensor:
    """Filter by a time-varying (mel-)cepstrum, minimum phase (an LTV-FIR MLSA filter).

    Frame ``n``'s filter is ``exp(sum_m c[n, m] zt^-m)`` (:func:`cepstrum_to_spectrum`),
    applied with :func:`ltv_spectral_filter`. With the mel-cepstrum of a power envelope
    from :func:`vocoder.analysis.world.mel_cepstrum` (same ``alpha``) the power response
    is ``mel_cepstrum_to_envelope`` of it.

    Args:
        signal: (B, N) input.
        cepstrum: (B, F, M + 1) (mel-)cepstral coefficients per frame.
        hop_length: samples per frame.
        n_fft: FFT size (impulse responses are time-aliased at ``n_fft``; at least
            ``2 * hop_length``).
        alpha: all-pass constant (0 for a plain cepstrum).
        max_log_gain: clamp of the log magnitude (nats).
    Returns:
        (B, N) filtered signal.
    """
    _check_signal(signal, "cepstrum_filter")
    _check_frames(cepstrum, "cepstrum_filter", "cepstrum")
    spectra = cepstrum_to_spectrum(cepstrum, n_fft=n_fft, alpha=alpha, max_log_gain=max_log_gain)
    return ltv_spectral_filter(signal, spectra, hop_length=hop_length)


# --------------------------------------------------------------------------- LPC


def reflection_from_raw(raw: torch.Tensor, *, max_reflection: float = 0.999) -> torch.Tensor:
    """Reflection coefficients ``max_reflection * tanh(raw)``, strictly inside (-1, 1).

    Any finite ``raw`` (a network output) maps to a stable all-pole filter. The margin
    ``max_reflection < 1`` keeps it stable in float32 too (``tanh`` rounds to 1 there
    for ``|raw| > 9``).

    Args:
        raw: (...) unconstrained values.
        max_reflection: bound on ``|k|``, in (0, 1).
    Returns:
        (...) reflection coefficients.
    """
    if not 0.0 < max_reflection < 1.0:
        raise ValueError(f"reflection_from_raw: max_reflection must lie in (0, 1), got {max_reflection}")
    return max_reflection * torch.tanh(raw)


def reflection_to_lpc(reflection: torch.Tensor) -> torch.Tensor:
    """Step-up (Levinson) recursion: reflection coefficients -> direct-form LPC.

    With ``A_0(z) = 1`` and ``A_m(z) = A_{m-1}(z) + k_m z^-m A_{m-1}(1/z)``:
    ``a_m[i] = a_{m-1}[i] + k_m a_{m-1}[m - i]`` (``i < m``), ``a_m[m] = k_m``.
    The filter is ``1 / A(z)``, ``A(z) = 1 + sum_{i=1}^{M} a[i] z^-i`` (scipy's
    ``lfilter([1], [1, *a])``); ``|k_m| < 1`` for all m makes it stable.

    Args:
        reflection: (..., M) ``k_1 .. k_M``.
    Returns:
        (..., M) ``a_1 .. a_M``.
    """
    if reflection.shape[-1] < 1:
        raise ValueError("reflection_to_lpc: need at least one coefficient")
    a = reflection[..., :1]
    for m in range(1, reflection.shape[-1]):
        k = reflection[..., m:m + 1]
        a = torch.cat([a + k * a.flip(-1), k], dim=-1)
    return a


def lpc_to_reflection(lpc: torch.Tensor) -> torch.Tensor:
    """Step-down recursion, the inverse of :func:`reflection_to_lpc`.

    ``k_m = a_m[m]``, ``a_{m-1}[i] = (a_m[i] - k_m a_m[m - i]) / (1 - k_m^2)``. Use it to
    initialise the raw parameters of a filter (``atanh(k / max_reflection)``) from an
    LPC analysis. A polynomial with a root on or outside the unit circle gives some
    ``|k_m| >= 1``.

    Args:
        lpc: (..., M) ``a_1 .. a_M`` of ``A(z) = 1 + sum a[i] z^-i``.
    Returns:
        (..., M) reflection coefficients.
    """
    if lpc.shape[-1] < 1:
        raise ValueError("lpc_to_reflection: need at least one coefficient")
    a = lpc
    ks = []
    for m in range(lpc.shape[-1], 0, -1):
        k = a[..., m - 1:m]
        ks.append(k)
        if m > 1:
            a = (a[..., :m - 1] - k * a[..., :m - 1].flip(-1)) / (1.0 - k * k)
    return torch.cat(ks[::-1], dim=-1)


def _per_sample(frames: torch.Tensor, hop_length: int, n_samples: int) -> torch.Tensor:
    """(B, F, M) frame values -> (B, N, M) by linear interpolation (last frame held)."""
    per = upsample_linear(frames, hop_length=hop_length)
    if per.shape[1] >= n_samples:
        return per[:, :n_samples]
    held = per[:, -1:].expand(per.shape[0], n_samples - per.shape[1], per.shape[2])
    return torch.cat([per, held], dim=1)


def _lpc_backend():
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchlpc import sample_wise_lpc
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "all-pole filtering needs the 'torchlpc' package (pip install 'torchlpc>=0.7')"
        ) from err
    return sample_wise_lpc


def allpole_filter(
    signal: torch.Tensor,
    lpc: torch.Tensor,
    *,
    hop_length: int,
) -> torch.Tensor:
    """Time-varying all-pole filter ``y[t] = x[t] - sum_i a_t[i] y[t - i]``.

    ``a_t`` is linearly interpolated between frame centres (last frame held). This is
    stable only if every interpolated polynomial is; for a guarantee use
    :func:`reflection_filter`. Runs on ``torchlpc.sample_wise_lpc`` (exact gradients
    w.r.t. signal and coefficients by its adjoint recursion).

    Args:
        signal: (B, N) input.
        lpc: (B, F, M) coefficients of ``A(z) = 1 + sum a[i] z^-i`` per frame (batch 1
            broadcasts); with ``hop_length=1`` and ``F = N``, per sample.
        hop_length: samples per frame.
    Returns:
        (B, N) output.
    """
    _check_signal(signal, "allpole_filter")
    _check_frames(lpc, "allpole_filter", "lpc")
    batch, n_samples = signal.shape
    if lpc.shape[0] not in (1, batch):
        raise ValueError(f"allpole_filter: batch of lpc ({lpc.shape[0]}) does not match the signal's ({batch})")
    dtype = torch.promote_types(signal.dtype, lpc.dtype)
    a = _per_sample(lpc.to(dtype), int(hop_length), n_samples).expand(batch, -1, -1).contiguous()
    return _lpc_backend()(signal.to(dtype).contiguous(), a)


def reflection_filter(
    signal: torch.Tensor,
    reflection: torch.Tensor,
    *,
    hop_length: int,
    normalize_gain: bool = False,
    structure: str = "lattice",
) -> torch.Tensor:
    """Stable time-varying all-pole filter from reflection coefficients.

    The reflection coefficients are interpolated linearly per sample (so ``|k| < 1``
    holds at every sample) and the input is filtered by ``g_t / A_t(z)``, ``A_t`` the
    step-up polynomial of ``k(t)`` (:func:`reflection_to_lpc`). ``g_t = 1`` by default;
    with ``normalize_gain`` ``g_t = sqrt(prod_i (1 - k_i(t)^2))``, the inverse of the
    filter's white-noise power gain, so a unit-variance white input keeps unit variance
    however close the poles are to the unit circle.

    ``structure="lattice"`` (default) runs the normalized lattice
    (:func:`~vocoder.source_filter.lattice.normalized_lattice`): for any time
    variation its output obeys ``|y(t)| <= sqrt(sum_{s<=t} (x(s) / g'(s))^2)`` with
    ``g' = 1`` when ``normalize_gain`` (else ``g' = sqrt(prod(1 - k^2))``), i.e. it
    cannot blow up. ``"direct"`` runs the direct form on ``torchlpc`` (faster on GPU):
    every frozen-time filter is stable, but a high-order direct form whose coefficients
    jump between frames can grow without bound (measured: order 24 with random
    ``|k|`` up to 0.8 changing every 5 ms reaches 1e14), so use it for smooth or
    low-order controls. Both give ``lfilter`` for constant coefficients.

    Args:
        signal: (B, N) input.
        reflection: (B, F, M) reflection coefficients in (-1, 1) per frame (see
            :func:`reflection_from_raw`; batch 1 broadcasts); with ``hop_length=1`` and
            ``F = N``, per sample.
        hop_length: samples per frame.
        normalize_gain: scale to unit white-noise power gain.
        structure: "lattice" or "direct".
    Returns:
        (B, N) output.
    """
    _check_signal(signal, "reflection_filter")
    _check_frames(reflection, "reflection_filter", "reflection")
    if structure not in ("lattice", "direct"):
        raise ValueError(f"reflection_filter: structure must be 'lattice' or 'direct', got {structure!r}")
    batch, n_samples = signal.shape
    if reflection.shape[0] not in (1, batch):
        raise ValueError(f"reflection_filter: batch of reflection ({reflection.shape[0]}) does not match "
                         f"the signal's ({batch})")
    dtype = torch.promote_types(signal.dtype, reflection.dtype)
    k = _per_sample(reflection.to(dtype), int(hop_length), n_samples).expand(batch, -1, -1)
    x = signal.to(dtype)
    if structure == "lattice":
        from .lattice import normalized_lattice

        if not normalize_gain:
            x = x / torch.sqrt(torch.prod((1.0 - k * k).clamp_min(1e-30), dim=-1))
        return normalized_lattice(x, k)
    if normalize_gain:
        x = x * torch.sqrt(torch.prod((1.0 - k * k).clamp_min(1e-30), dim=-1))
    a = reflection_to_lpc(k).contiguous()
    return _lpc_backend()(x.contiguous(), a)


# --------------------------------------------------------------------------- modules


class EnvelopeFilter(nn.Module):
    """Module form of :func:`envelope_filter`: ``forward(signal (B, N), envelope (B, F, E)) -> (B, N)``."""

    def __init__(self, *, hop_length: int, kind: str = "power", phase: str = "minimum",
                 n_fft: int | None = None, max_log_gain: float = DEFAULT_MAX_LOG_GAIN):
        super().__init__()
        self.hop_length = int(hop_length)
        self.kind = kind
        self.phase = phase
        self.n_fft = n_fft
        self.max_log_gain = float(max_log_gain)

    def forward(self, signal: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        return envelope_filter(signal, envelope, hop_length=self.hop_length, kind=self.kind,
                               phase=self.phase, n_fft=self.n_fft, max_log_gain=self.max_log_gain)

    def extra_repr(self) -> str:
        return f"hop_length={self.hop_length}, kind={self.kind!r}, phase={self.phase!r}, n_fft={self.n_fft}"


class CepstrumFilter(nn.Module):
    """Module form of :func:`cepstrum_filter`: ``forward(signal (B, N), cepstrum (B, F, M + 1)) -> (B, N)``."""

    def __init__(self, *, hop_length: int, n_fft: int = 1024, alpha: float = 0.0,
                 max_log_gain: float = DEFAULT_MAX_LOG_GAIN):
        super().__init__()
        self.hop_length = int(hop_length)
        self.n_fft = int(n_fft)
        self.alpha = float(alpha)
        self.max_log_gain = float(max_log_gain)

    def forward(self, signal: torch.Tensor, cepstrum: torch.Tensor) -> torch.Tensor:
        return cepstrum_filter(signal, cepstrum, hop_length=self.hop_length, n_fft=self.n_fft,
                               alpha=self.alpha, max_log_gain=self.max_log_gain)

    def extra_repr(self) -> str:
        return f"hop_length={self.hop_length}, n_fft={self.n_fft}, alpha={self.alpha}"


class AllPoleFilter(nn.Module):
    """Stable all-pole filter driven by raw network outputs.

    ``get_controls(raw)`` -> ``{"reflection", "lpc"}`` (``reflection_from_raw`` then the
    step-up recursion); ``forward(signal (B, N), raw (B, F, M)) -> (B, N)`` filters with
    :func:`reflection_filter` (normalized lattice by default: bounded for any outputs).
    """

    def __init__(self, *, hop_length: int, max_reflection: float = 0.999, normalize_gain: bool = True,
                 structure: str = "lattice"):
        super().__init__()
        self.hop_length = int(hop_length)
        self.max_reflection = float(max_reflection)
        self.normalize_gain = bool(normalize_gain)
        self.structure = structure

    def get_controls(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        reflection = reflection_from_raw(raw, max_reflection=self.max_reflection)
        return {"reflection": reflection, "lpc": reflection_to_lpc(reflection)}

    def forward(self, signal: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        reflection = reflection_from_raw(raw, max_reflection=self.max_reflection)
        return reflection_filter(signal, reflection, hop_length=self.hop_length,
                                 normalize_gain=self.normalize_gain, structure=self.structure)

    def extra_repr(self) -> str:
        return (f"hop_length={self.hop_length}, max_reflection={self.max_reflection}, "
                f"normalize_gain={self.normalize_gain}, structure={self.structure!r}")
