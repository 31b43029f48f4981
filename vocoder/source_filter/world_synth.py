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

from ..dsp.oscillators import harmonic_phase, harmonic_synthesis
from ..dsp.upsample import upsample_linear
from .excitation import _default_harmonics, _dirichlet, fill_unvoiced_f0, harmonic_count, white_noise
from .filters import (
    _frame_spectra,
    _overlap_add,
    _resample_bins,
    minimum_phase_spectrum,
)

__all__ = ["default_synthesis_fft", "world_filters", "world_synthesis", "WorldSynth"]

# WORLD's guard: GetSafeAperiodicity clamps ap to [0.001, 1 - 1e-12].
_AP_MIN, _AP_MAX = 1e-3, 1.0 - 1e-12
_METHODS = ("filter", "harmonic")


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

    ``H`` is the minimum-phase response of ``sqrt(sp)`` (:func:`minimum_phase_spectrum`);
    the periodic response is ``H sqrt(1 - ap^2)`` (zero in unvoiced frames) and the
    aperiodic one ``H ap`` in voiced frames, ``H`` in unvoiced frames, with ``ap``
    clamped to [0.001, 1) as WORLD does. The aperiodicity enters as a real (zero-phase)
    gain on the envelope's minimum-phase response: one cepstral transform per frame
    instead of two, with no systematic change in spectral distance or MCD on speech
    (WORLD's ``ap`` is smooth across frequency; see ``docs/source_filter.md``).

    Args:
        spectral_envelope: (B, F, E) power envelope ``sp``, bins linear 0 Hz..Nyquist.
        aperiodicity: (B, F, E) aperiodicity ``ap`` in [0, 1].
        voiced: (B, F) bool or 0/1.
        n_fft: FFT size of the responses (envelope and aperiodicity are interpolated
            linearly, the envelope in log, onto ``n_fft // 2 + 1`` bins if ``E`` differs).
    Returns:
        periodic, aperiodic: (B, F, n_fft // 2 + 1) complex responses.
    """
    response, periodic_gain, noise_gain = _world_gains(spectral_envelope, aperiodicity, voiced, n_fft=n_fft)
    return response * periodic_gain, response * noise_gain


def _world_gains(sp, aperiodicity, voiced, *, n_fft):
    """(minimum-phase response of sqrt(sp), periodic gain, aperiodic gain) per frame and bin."""
    n_bins = n_fft // 2 + 1
    if (sp.shape[-1] - 1) % (n_bins - 1) == 0:
        sp = _resample_bins(sp, n_bins)  # a plain subsampling: cheaper before the log
    log_sp = 0.5 * torch.log(sp.clamp_min(torch.finfo(sp.dtype).tiny))
    response = minimum_phase_spectrum(_resample_bins(log_sp, n_bins), n_fft=n_fft)
    ap = _resample_bins(aperiodicity.clamp(_AP_MIN, _AP_MAX), n_bins)
    v = voiced.to(ap.dtype).unsqueeze(-1)
    periodic_gain = torch.sqrt(1.0 - ap * ap) * v
    noise_gain = ap * v + (1.0 - v)
    return response, periodic_gain, noise_gain


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

    # Frame n filters the excitation under the Hann window centred on n * hop; the
    # window of the held frame F also reaches back into the signal, so F + 1 frames.
    def held(x):
        return torch.cat([x, x[:, -1:]], dim=1)

    voiced = f0_hz > 0
    response, periodic_gain, noise_gain = _world_gains(
        held(spectral_envelope), held(aperiodicity), held(voiced), n_fft=n_fft)
    n_used = n_frames + 1
    filled = fill_unvoiced_f0(f0_hz)
    if method == "filter":
        phase = harmonic_phase(filled, sample_rate=sample_rate, hop_length=hop_length,
                               initial_phase=initial_phase, dtype=dtype)
        count = harmonic_count(filled, sample_rate=sample_rate).unsqueeze(-1)
        pulses = _dirichlet(phase, count).reshape(batch, n_samples)
        level = torch.sqrt(upsample_linear(filled, hop_length=hop_length).clamp_min(1e-12) * (4.0 / sample_rate))
        excitation = torch.cat([noise.to(dtype), pulses * level], dim=0)  # (2B, N)
        frames = _frame_spectra(excitation, hop_length=hop_length, n_fft=n_fft, n_used=n_used)
        mixed = frames[:batch] * noise_gain + frames[batch:] * periodic_gain
        return _overlap_add(mixed * response, hop_length=hop_length, n_fft=n_fft, n_samples=n_samples)

    frames = _frame_spectra(noise.to(dtype), hop_length=hop_length, n_fft=n_fft, n_used=n_used)
    out = _overlap_add(frames * (noise_gain * response), hop_length=hop_length, n_fft=n_fft,
                       n_samples=n_samples)
    periodic = response[:, :n_frames] * periodic_gain[:, :n_frames]
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
