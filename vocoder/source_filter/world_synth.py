"""Differentiable synthesis from WORLD features: f0, spectral envelope, aperiodicity.

The model is WORLD's own (``synthesis.cpp``), made differentiable and vectorised:

- periodic part: a band-limited pulse train at f0 whose harmonics each carry
  ``2 sqrt(f0 / sr)`` (:func:`~.excitation.pulse_train`, ``normalize="white"``), shaped
  by a filter of magnitude ``sqrt(sp * (1 - ap^2))``;
- aperiodic part: unit-variance Gaussian white noise shaped by a filter of magnitude
  ``sqrt(sp) * ap`` in voiced frames and ``sqrt(sp)`` in unvoiced frames;
- both filters have the minimum phase of ``sqrt(sp)`` (:func:`world_filters`).

Why these levels. WORLD places at each pulse (period ``P = sr / f0`` samples) the
impulse response of ``sqrt(sp (1 - ap^2))`` times ``sqrt(P)``, which puts
``2 sqrt(P) / P |H(k f0)| = 2 sqrt(f0 / sr) |H(k f0)|`` on harmonic ``k``; its noise is
unit-variance Gaussian filtered by ``sqrt(sp) ap``. WORLD squares the aperiodicity in
synthesis (``GetAperiodicRatio``), i.e. ``ap`` is an amplitude ratio and the two parts
are power-complementary. So in synthesis ``sp`` acts as a power spectral density in
units where white noise of variance 1 has ``sp = 1`` at every bin, and no level
constant needs tuning: the output level matches ``pyworld.synthesize`` on the same features (see
``docs/source_filter.md`` for the measurements).

Time variation: each frame's two filters act on the Hann-windowed excitation around its
centre (frame ``n`` at sample ``n * hop_length``) and the pieces are overlap-added
(:func:`~.filters.ltv_spectral_filter`); both parts share the frame FFTs and one
inverse FFT per frame. ``method="harmonic"`` renders the periodic part instead with the
harmonic bank, each harmonic's complex amplitude read off the same minimum-phase
response at ``k f0`` (linear interpolation between bins), interpolated between frames.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..dsp.oscillators import frame_phase, harmonic_synthesis
from .excitation import _default_harmonics, fill_unvoiced_f0, harmonic_count, white_noise
from .filters import (
    DEFAULT_MAX_LOG_GAIN,
    _frame_spectra,
    _overlap_add,
    _resample_bins,
)

__all__ = ["default_synthesis_fft", "world_filters", "world_synthesis", "WorldSynth"]

# WORLD's guard: GetSafeAperiodicity clamps ap to [0.001, 1 - 1e-12].
_AP_MIN, _AP_MAX = 1e-3, 1.0 - 1e-12
# Largest power sp: the envelope filters' log magnitude is clamped at DEFAULT_MAX_LOG_GAIN.
_MAX_POWER = math.exp(2.0 * DEFAULT_MAX_LOG_GAIN)
_METHODS = ("filter", "harmonic")
# Spectral values (frames x bins) per chunk and thread of the filter method on the CPU.
_CHUNK_ELEMENTS = 1 << 17


def default_synthesis_fft(n_bins: int, *, sample_rate: float, hop_length: int) -> int:
    """FFT size of the synthesis filters: the power of two covering 32 ms and two hops.

    Capped at the envelope's own FFT size ``2 * (n_bins - 1)`` unless two hops need more.
    Each frame's filter then keeps ``n_fft - 2 * hop_length`` taps (22 ms at 16 kHz,
    5 ms hop) before its tail wraps around, enough for speech envelopes. Examples
    (5 ms hop): 512 at 16 kHz, 1024 at 22.05 / 24 kHz, 2048 at 44.1 / 48 kHz.
    """
    two_hops = 1 << (2 * int(hop_length) - 1).bit_length()
    need = max(2 * int(hop_length), math.ceil(0.032 * sample_rate))
    return max(two_hops, min(2 * (n_bins - 1), 1 << (need - 1).bit_length()))


def _check_inputs(f0_hz, sp, ap, sample_rate, hop_length):
    for name, x, dims in (("f0_hz", f0_hz, 2), ("spectral_envelope", sp, 3), ("aperiodicity", ap, 3)):
        if not isinstance(x, torch.Tensor) or x.dim() != dims:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"world_synthesis: {name} must be a {dims}-d tensor, got {shape}")
    if sp.shape != ap.shape or sp.shape[:2] != f0_hz.shape:
        raise ValueError(
            f"world_synthesis: shapes disagree: f0_hz {tuple(f0_hz.shape)}, spectral_envelope "
            f"{tuple(sp.shape)}, aperiodicity {tuple(ap.shape)}; expected (B, F), (B, F, E), (B, F, E)"
        )
    if f0_hz.shape[1] < 1 or sp.shape[-1] < 2:
        raise ValueError(f"world_synthesis: need at least one frame and two bins, got {tuple(sp.shape)}")
    if sample_rate <= 0 or int(hop_length) != hop_length or hop_length < 1:
        raise ValueError(f"world_synthesis: bad sample_rate {sample_rate} or hop_length {hop_length}")


def world_filters(
    spectral_envelope: torch.Tensor,
    aperiodicity: torch.Tensor,
    voiced: torch.Tensor,
    *,
    n_fft: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Periodic and aperiodic responses of each frame, WORLD's model.

    ``H`` is the minimum-phase response of ``sqrt(sp)``
    (:func:`~.filters.minimum_phase_spectrum`); the periodic response is
    ``H sqrt(1 - ap^2)`` (zero in unvoiced frames) and the aperiodic one ``H ap`` in
    voiced frames, ``H`` in unvoiced frames, with ``ap`` clamped to [0.001, 1) as WORLD
    does. The aperiodicity enters as a real (zero-phase) gain on the envelope's
    minimum-phase response: one cepstral transform per frame instead of two, with no
    systematic change in spectral distance or MCD on speech (WORLD's ``ap`` is smooth
    across frequency; see ``docs/source_filter.md``).

    Args:
        spectral_envelope: (B, F, E) power envelope ``sp``, bins linear 0 Hz..Nyquist.
        aperiodicity: (B, F, E) aperiodicity ``ap`` in [0, 1].
        voiced: (B, F) bool or 0/1.
        n_fft: FFT size of the responses (envelope and aperiodicity are interpolated
            linearly, the envelope in log, onto ``n_fft // 2 + 1`` bins if ``E`` differs).
    Returns:
        periodic, aperiodic: (B, F, n_fft // 2 + 1) complex responses.
    """
    rotation, aperiodic, periodic = _world_responses(spectral_envelope, aperiodicity, voiced, n_fft=n_fft)
    return rotation * periodic, rotation * aperiodic


def _minimum_phase_rotation(log_power: torch.Tensor, *, n_fft: int) -> torch.Tensor:
    """``exp(i phase)`` of the minimum-phase response whose log power is given.

    The phase part of :func:`~.filters.minimum_phase_spectrum` (``H = exp(rfft(fold *
    irfft(log |H|)))``) with less work: the real part of ``rfft(fold * c)`` is ``log |H|``
    itself, and its imaginary part only sees the cepstrum at quefrencies ``1 .. n_fft / 2
    - 1`` (doubled by the fold; ``c[0]`` and ``c[n_fft / 2]`` carry no sine), so
    ``phase = Im rfft(c2)`` with ``c2 = irfft(log |H|^2)`` set to zero from quefrency
    ``n_fft / 2`` on: the fold's factor 2 is that of the power, and no fold, padded copy
    or complex ``exp`` is needed.

    Args:
        log_power: (..., n_fft // 2 + 1) natural log of ``|H|^2``.
    Returns:
        (..., n_fft // 2 + 1) complex, modulus 1.
    """
    cepstrum = torch.fft.irfft(log_power, n=n_fft)
    cepstrum[..., n_fft // 2:] = 0.0  # in place: no padded copy (irfft keeps nothing for backward)
    phase = torch.fft.rfft(cepstrum).imag
    return torch.complex(torch.cos(phase), torch.sin(phase))


def _world_responses(sp, aperiodicity, voiced, *, n_fft):
    """Per frame and bin: (``exp(i phase)`` of the minimum-phase response of ``sqrt(sp)``,
    aperiodic magnitude ``sqrt(sp) ap`` or ``sqrt(sp)`` where unvoiced, periodic
    magnitude ``sqrt(sp (1 - ap^2))`` or 0 where unvoiced).

    The magnitudes are those of :func:`~.filters.minimum_phase_spectrum` (log magnitude
    clamped at ``DEFAULT_MAX_LOG_GAIN`` nats), taken directly from ``sp`` instead of
    through the cepstrum.
    """
    n_bins = n_fft // 2 + 1
    tiny = torch.finfo(sp.dtype).tiny
    if (sp.shape[-1] - 1) % (n_bins - 1) == 0:  # a plain subsampling: cheaper before the log
        power = _resample_bins(sp, n_bins).clamp(tiny, _MAX_POWER)
        log_power = torch.log(power)
        magnitude = torch.sqrt(power)
        ap = _resample_bins(aperiodicity, n_bins).clamp(_AP_MIN, _AP_MAX)
    else:
        log_power = _resample_bins(torch.log(sp.clamp_min(tiny)), n_bins).clamp(max=2.0 * DEFAULT_MAX_LOG_GAIN)
        magnitude = torch.exp(0.5 * log_power)
        ap = _resample_bins(aperiodicity.clamp(_AP_MIN, _AP_MAX), n_bins)
    rotation = _minimum_phase_rotation(log_power, n_fft=n_fft)
    v = voiced.to(ap.dtype).unsqueeze(-1)
    periodic = (magnitude * v) * torch.sqrt(1.0 - ap * ap)
    aperiodic = magnitude * (ap * v + (1.0 - v))  # ap where voiced, 1 where not
    return rotation, aperiodic, periodic


def _pulse_excitation(filled_f0, *, sample_rate, hop_length, initial_phase, dtype):
    """WORLD's pulse excitation ``2 sqrt(f0 / sr) sum_{k=1}^{K} cos(k phi)``: the
    ``pulse_train(..., normalize="white")`` of :mod:`.excitation` with fewer passes over
    the samples.

    Inside frame segment ``n`` the phase in cycles is a quadratic in the sample offset
    ``j`` (the exact integral of the linear f0), so the phase of every sample, and the
    squared level ``4 f0 / sr`` (linear in ``j``), is one small matrix product
    ``(B, F, 5) @ (5, 2 hop)``. With ``v = psi / (2 pi)`` in [-1/2, 1/2), ``psi`` the
    phase wrapped around the pulse
    (``frac`` of the cycles), the sum is the Dirichlet kernel ``sin(2 pi (K + 1/2) v) /
    (2 sin(pi v)) - 1/2`` (numerator and denominator both from ``v``, so they round
    consistently near the pulse), and where ``|(K + 1/2) psi| < 0.1`` its Taylor series
    in ``q = sin^2(pi v)``, ``K - 2 S2 q + (2/3)(S4 - S2) q^2`` (``S_m = sum_k k^m``;
    truncation error below 1e-9 K there, as for :func:`~.excitation._dirichlet`), blended
    in by ``lerp`` with a 0/1 weight (``torch.where`` is several times slower than a
    product on the CPU).

    Args:
        filled_f0: (B, F) f0 with unvoiced frames filled (:func:`fill_unvoiced_f0`).
    Returns:
        (B, F * hop_length) excitation.
    """
    batch, n_frames = filled_f0.shape
    start, _ = frame_phase(filled_f0, sample_rate=sample_rate, hop_length=hop_length, initial_phase=initial_phase)
    f = filled_f0.to(dtype)
    step = torch.cat([f[:, 1:], f[:, -1:]], dim=1) - f
    # Cycles (plus one half, so that frac - 1/2 is the phase wrapped to [-1/2, 1/2)) and f0.
    level2 = 4.0 / sample_rate  # the squared level 4 f0 / sr, linear in f0
    coeffs = torch.stack([(start * (0.5 / math.pi) + 0.5).to(dtype), f / sample_rate,
                          step / (2.0 * hop_length * sample_rate), level2 * f,
                          (level2 / hop_length) * step], dim=-1)  # (B, F, 5)
    phase_f0 = coeffs @ _pulse_basis(hop_length, dtype, filled_f0.device)  # (B, F, 2 hop)
    v = torch.frac(phase_f0[..., :hop_length]) - 0.5

    count = harmonic_count(filled_f0, sample_rate=sample_rate).to(dtype).unsqueeze(-1)  # (B, F, 1)
    half = count + 0.5
    num = torch.sin(v * (2.0 * math.pi * half))  # sin((K + 1/2) psi)
    sin_half = torch.sin(v * math.pi)  # sin(psi / 2)
    q = sin_half * sin_half
    small = (q < torch.sin(0.05 / half) ** 2).to(dtype)  # |(K + 1/2) psi| < 0.1
    closed = (num / (sin_half + small) - 1.0) * 0.5  # the shift keeps it finite where blended out
    s2 = count * (count + 1.0) * (2.0 * count + 1.0) / 6.0
    s4 = s2 * (3.0 * count * count + 3.0 * count - 1.0) / 5.0
    taylor = (q * ((2.0 / 3.0) * (s4 - s2)) - 2.0 * s2) * q + count
    kernel = torch.lerp(closed, taylor, small)
    level = torch.sqrt(phase_f0[..., hop_length:].clamp_min(1e-12 * level2))
    return (kernel * level).reshape(batch, n_frames * hop_length)


def _pulse_basis(hop_length: int, dtype: torch.dtype, device) -> torch.Tensor:
    """(5, 2 hop) rows ``[1, j, j^2 | 0]`` and ``[0 | 1, j]``, ``j = 0 .. hop - 1``."""
    j = torch.arange(hop_length, dtype=dtype, device=device)
    basis = torch.zeros(5, 2 * hop_length, dtype=dtype, device=device)
    basis[0, :hop_length] = 1.0
    basis[1, :hop_length] = j
    basis[2, :hop_length] = j * j
    basis[3, hop_length:] = 1.0
    basis[4, hop_length:] = j
    return basis


def _held_rows(x: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """Frames ``a .. b - 1`` of ``x`` (B, F, ...), frame ``F`` and on holding frame ``F - 1``."""
    n_frames = x.shape[1]
    if b <= n_frames:
        return x[:, a:b]
    held = x[:, -1:].expand(x.shape[0], b - max(a, n_frames), *x.shape[2:])
    return torch.cat([x[:, a:], held], dim=1) if a < n_frames else held


def _filter_synthesis(noise, pulses, sp, ap, voiced, *, hop_length, n_fft):
    """Noise and pulses through each frame's aperiodic and periodic filters, overlap-added.

    Frame ``n`` (of ``F + 1``; the last frame's filters are held) takes the Hann-windowed
    excitation on ``[(n - 1) hop, (n + 1) hop)`` (:func:`~.filters._frame_spectra`),
    mixes the two spectra with the real magnitudes, applies the minimum phase, and its
    ``irfft`` is added from sample ``(n - 1) hop`` on (:func:`~.filters._overlap_add`).
    On the CPU the frames are processed in chunks of about ``_CHUNK_ELEMENTS`` spectral
    values per thread, so that every intermediate stays small: reused by the allocator
    instead of fresh pages (a page fault costs more than the arithmetic on its 4 KB) and
    mostly in cache.

    Args:
        noise, pulses: (B, N) excitations, ``N = F hop``.
        sp, ap, voiced: (B, F, E), (B, F, E), (B, F) WORLD features.
    Returns:
        (B, N) audio.
    """
    batch, n_frames, n_bins = sp.shape
    n_out = n_fft // 2 + 1
    if (n_bins - 1) % (n_out - 1) == 0:  # subsample the bins first (a view): chunks copy less
        sp, ap = _resample_bins(sp, n_out), _resample_bins(ap, n_out)
    voiced = voiced.to(sp.dtype)
    n_used = n_frames + 1
    n_samples = n_frames * hop_length
    padded = noise.new_zeros(2 * batch, n_samples + 2 * hop_length)  # noise rows, then pulse rows
    padded[:batch, hop_length:-hop_length] = noise
    padded[batch:, hop_length:-hop_length] = pulses
    k = torch.arange(2 * hop_length, dtype=sp.dtype, device=sp.device)
    window = 0.5 - 0.5 * torch.cos(math.pi * k / hop_length)
    n_blocks = -(-n_fft // hop_length)
    out = sp.new_zeros(batch, n_used + n_blocks - 1, hop_length)
    # On the CPU, chunks of frames keep each thread's share of the intermediates small (and
    # fewer, larger chunks with more threads mean fewer parallel regions); a GPU wants few
    # launches.
    if sp.device.type == "cpu":
        chunk = max(1, _CHUNK_ELEMENTS * torch.get_num_threads() // n_out)
    else:
        chunk = n_used
    for a in range(0, n_used, chunk):
        b = min(n_used, a + chunk)
        rotation, aperiodic, periodic = _world_responses(
            _held_rows(sp, a, b), _held_rows(ap, a, b), _held_rows(voiced, a, b), n_fft=n_fft)
        # The windowed segments, zero-padded to n_fft, written in place (no padded copy).
        frames = padded.new_zeros(padded.shape[0], b - a, n_fft)
        head = frames[..., :2 * hop_length]
        head.copy_(padded[:, a * hop_length:(b + 1) * hop_length].unfold(-1, 2 * hop_length, hop_length))
        head.mul_(window)
        spectra = torch.fft.rfft(frames)  # (2B, b - a, bins)
        mixed = (spectra[:batch] * aperiodic + spectra[batch:] * periodic) * rotation
        pieces = torch.fft.irfft(mixed, n=n_fft)  # piece n starts at sample (n - 1) hop
        for j in range(n_blocks):
            width = min(hop_length, n_fft - j * hop_length)
            out[:, a + j:b + j, :width] += pieces[..., j * hop_length:j * hop_length + width]
    return out.reshape(batch, -1)[:, hop_length:hop_length + n_samples]


def _interp_bins(spectrum: torch.Tensor, freqs_hz: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """Linear interpolation of (B, F, bins) values at (B, F, K) frequencies (clamped to Nyquist)."""
    n_bins = spectrum.shape[-1]
    pos = (freqs_hz / (sample_rate / 2.0) * (n_bins - 1)).clamp(0.0, n_bins - 1.0)
    lo = pos.detach().floor().clamp(max=n_bins - 2).long()
    frac = (pos - lo.to(pos.dtype)).to(spectrum.real.dtype if spectrum.is_complex() else spectrum.dtype)
    left = torch.gather(spectrum, -1, lo)
    right = torch.gather(spectrum, -1, lo + 1)
    return left + (right - left) * frac


def world_synthesis(
    f0_hz: torch.Tensor,
    spectral_envelope: torch.Tensor,
    aperiodicity: torch.Tensor,
    *,
    sample_rate: float,
    hop_length: int,
    method: str = "filter",
    n_fft: int | None = None,
    generator: torch.Generator | int | None = None,
    noise: torch.Tensor | None = None,
    n_harmonics: int | None = None,
    initial_phase: torch.Tensor | None = None,
    leading_f0: float | None = None,
) -> torch.Tensor:
    """Synthesize speech from WORLD features, differentiably in f0, ``sp`` and ``ap``.

    See the module docstring for the model. Voiced frames are those with ``f0 > 0``;
    through unvoiced stretches the pulse phase runs on at the nearest voiced f0 (the
    periodic filter is zero there), so voicing fades with the frames' crossfade.

    Args:
        f0_hz: (B, F) f0 in Hz, 0 where unvoiced.
        spectral_envelope: (B, F, E) WORLD power envelope ``sp`` (``E = fft_size // 2 + 1``
            bins linear from 0 Hz to Nyquist), as from
            :func:`vocoder.analysis.world.world_features`.
        aperiodicity: (B, F, E) WORLD aperiodicity ``ap`` in [0, 1].
        sample_rate: samples per second.
        hop_length: samples per frame.
        method: "filter" (pulse train through per-frame minimum-phase filters, cost
            independent of the number of harmonics) or "harmonic" (harmonic bank with
            per-harmonic amplitudes and phases sampled at ``k f0``).
        n_fft: FFT size of the synthesis filters; default
            :func:`default_synthesis_fft` (512 at 16 kHz with a 5 ms hop: as good as
            WORLD's 1024 on speech and twice as fast).
        generator: ``torch.Generator`` or seed for the noise.
        noise: optional (B, F * hop_length) excitation noise to use instead of drawing
            unit-variance Gaussian noise.
        n_harmonics: harmonics of the bank for ``method="harmonic"`` (default: all below
            Nyquist at the lowest f0, down to 20 Hz).
        initial_phase: (B,) phase of the pulse train at sample 0 (default 0).
        leading_f0: the pulse train's f0 before the first voiced frame (default: the
            first voiced frame's f0; a constant is what a stream can do, see
            :mod:`vocoder.streaming`).
    Returns:
        (B, F * hop_length) audio.
    """
    _check_inputs(f0_hz, spectral_envelope, aperiodicity, sample_rate, hop_length)
    if method not in _METHODS:
        raise ValueError(f"world_synthesis: method must be one of {_METHODS}, got {method!r}")
    hop_length = int(hop_length)
    dtype = spectral_envelope.dtype
    f0_hz = f0_hz.to(dtype)
    batch, n_frames, n_bins = spectral_envelope.shape
    n_fft = default_synthesis_fft(n_bins, sample_rate=sample_rate, hop_length=hop_length) if n_fft is None else int(n_fft)
    if n_fft % 2 or n_fft < 2 * hop_length:
        raise ValueError(f"world_synthesis: n_fft must be even and >= 2 * hop_length, got {n_fft}")
    n_samples = n_frames * hop_length
    if noise is None:
        noise = white_noise(batch, n_samples, generator=generator, dtype=dtype, device=f0_hz.device)
    elif noise.shape != (batch, n_samples):
        raise ValueError(f"world_synthesis: noise must be ({batch}, {n_samples}), got {tuple(noise.shape)}")

    voiced = f0_hz > 0
    if leading_f0 is None:
        filled = fill_unvoiced_f0(f0_hz)
    else:
        from ..streaming import causal_continuous_f0
        filled = causal_continuous_f0(f0_hz, voiced.to(dtype), initial_f0=leading_f0)
    if method == "filter":
        pulses = _pulse_excitation(filled, sample_rate=sample_rate, hop_length=hop_length,
                                   initial_phase=initial_phase, dtype=dtype)
        return _filter_synthesis(noise.to(dtype), pulses, spectral_envelope, aperiodicity, voiced,
                                 hop_length=hop_length, n_fft=n_fft)

    # Frame n filters the excitation under the Hann window centred on n * hop; the
    # window of the held frame F also reaches back into the signal, so F + 1 frames.
    n_used = n_frames + 1
    rotation, aperiodic, periodic = _world_responses(
        *(_held_rows(x, 0, n_used) for x in (spectral_envelope, aperiodicity, voiced)), n_fft=n_fft)
    frames = _frame_spectra(noise.to(dtype), hop_length=hop_length, n_fft=n_fft, n_used=n_used)
    out = _overlap_add(frames * aperiodic * rotation, hop_length=hop_length, n_fft=n_fft,
                       n_samples=n_samples)
    periodic = rotation[:, :n_frames] * periodic[:, :n_frames]
    if n_harmonics is None:
        n_harmonics = _default_harmonics(filled, sample_rate)
    k = torch.arange(1, int(n_harmonics) + 1, dtype=dtype, device=f0_hz.device)
    freqs = filled.unsqueeze(-1) * k
    response = _interp_bins(periodic, freqs, sample_rate)  # (B, F, K) complex
    scale = 2.0 * torch.sqrt(filled.clamp_min(1e-12) / sample_rate).unsqueeze(-1)
    return out + harmonic_synthesis(filled, -scale * response.imag, sample_rate=sample_rate,
                                    hop_length=hop_length, initial_phase=initial_phase,
                                    cos_amplitudes=scale * response.real)


class WorldSynth(nn.Module):
    """Module form of :func:`world_synthesis`.

    ``forward(f0_hz (B, F), spectral_envelope (B, F, fft_size // 2 + 1), aperiodicity
    (same), generator=None) -> (B, F * hop_length)`` audio.

    Args:
        sample_rate: samples per second.
        hop_length: samples per frame.
        fft_size: WORLD FFT size of the envelopes it will be given (checked in forward).
        method: "filter" or "harmonic" (see :func:`world_synthesis`).
        n_fft: FFT size of the synthesis filters (default :func:`default_synthesis_fft`).
    """

    def __init__(self, *, sample_rate: int, hop_length: int, fft_size: int, method: str = "filter",
                 n_fft: int | None = None):
        super().__init__()
        if method not in _METHODS:
            raise ValueError(f"WorldSynth: method must be one of {_METHODS}, got {method!r}")
        if fft_size < 2 or fft_size % 2:
            raise ValueError(f"WorldSynth: fft_size must be even, got {fft_size}")
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.fft_size = int(fft_size)
        self.method = method
        self.n_fft = (int(n_fft) if n_fft is not None else
                      default_synthesis_fft(self.fft_size // 2 + 1, sample_rate=self.sample_rate,
                                            hop_length=self.hop_length))

    def forward(self, f0_hz: torch.Tensor, spectral_envelope: torch.Tensor, aperiodicity: torch.Tensor,
                generator: torch.Generator | int | None = None) -> torch.Tensor:
        if spectral_envelope.shape[-1] != self.fft_size // 2 + 1:
            raise ValueError(f"WorldSynth: expected {self.fft_size // 2 + 1} envelope bins "
                             f"(fft_size {self.fft_size}), got {spectral_envelope.shape[-1]}")
        return world_synthesis(f0_hz, spectral_envelope, aperiodicity, sample_rate=self.sample_rate,
                               hop_length=self.hop_length, method=self.method, n_fft=self.n_fft,
                               generator=generator)

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, hop_length={self.hop_length}, fft_size={self.fft_size}, "
                f"method={self.method!r}, n_fft={self.n_fft}")
