"""Synthesizer modules: thin ``nn.Module`` wrappers over :mod:`vocoder.dsp`.

Each synthesizer separates turning raw network outputs into valid controls
(``get_controls``: scaling, Nyquist masking, normalisation) from rendering
(``get_signal``), as in magenta/ddsp's ``Processor``. ``forward`` does both and can
return the controls for plots and debugging.

Shapes: frame controls are channels-last ``(batch, frames, dims)``, f0 is
``(batch, frames)``, audio is ``(batch, frames * hop_length)``.
"""
from __future__ import annotations

import torch
from torch import nn

from .dsp.filters import filtered_noise
from .dsp.oscillators import harmonic_frequencies, harmonic_synthesis
from .dsp.scaling import exp_sigmoid

__all__ = ["Harmonic", "FilteredNoise"]


def _scale(x: torch.Tensor, how: str | None) -> torch.Tensor:
    if how is None or how == "none":
        return x
    if how == "exp_sigmoid":
        return exp_sigmoid(x)
    raise ValueError(f"unknown scaling {how!r}; use 'exp_sigmoid' or None")


class Harmonic(nn.Module):
    """Harmonic oscillator bank driven by an overall amplitude and a harmonic distribution.

    Args:
        sample_rate: audio samples per second.
        hop_length: samples per frame.
        n_harmonics: number of harmonics (the distribution's last dim).
        scale: nonlinearity applied to raw amplitude and distribution
            (``"exp_sigmoid"``, DDSP's default) or None when they are already valid.
        normalize_below_nyquist: renormalise the distribution over the harmonics that
            are below Nyquist, so the overall amplitude is kept when high harmonics drop.
    """

    def __init__(self, *, sample_rate: int, hop_length: int, n_harmonics: int = 100,
                 scale: str | None = "exp_sigmoid", normalize_below_nyquist: bool = True):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.n_harmonics = int(n_harmonics)
        self.scale = scale
        self.normalize_below_nyquist = normalize_below_nyquist

    def get_controls(self, amplitude: torch.Tensor, harmonic_distribution: torch.Tensor,
                     f0_hz: torch.Tensor) -> dict[str, torch.Tensor]:
        """Valid controls from raw network outputs.

        Args:
            amplitude: (batch, frames, 1) overall amplitude (raw if ``scale`` is set).
            harmonic_distribution: (batch, frames, n_harmonics) relative harmonic levels.
            f0_hz: (batch, frames) fundamental frequency in Hz.
        Returns:
            dict with ``amplitudes`` (batch, frames, n_harmonics) linear per-harmonic
            amplitudes, ``amplitude`` (batch, frames, 1), ``harmonic_distribution``
            (normalised, masked) and ``f0_hz``.
        """
        if harmonic_distribution.shape[-1] != self.n_harmonics:
            raise ValueError(f"harmonic_distribution has {harmonic_distribution.shape[-1]} harmonics, "
                             f"expected {self.n_harmonics}")
        amplitude = _scale(amplitude, self.scale)
        dist = _scale(harmonic_distribution, self.scale)
        below = (harmonic_frequencies(f0_hz.detach(), self.n_harmonics) < self.sample_rate / 2).to(dist.dtype)
        dist = dist * below
        if self.normalize_below_nyquist:
            dist = dist / dist.sum(dim=-1, keepdim=True).clamp_min(1e-7)
        return {"amplitude": amplitude, "harmonic_distribution": dist,
                "amplitudes": amplitude * dist, "f0_hz": f0_hz}

    def get_signal(self, amplitudes: torch.Tensor, f0_hz: torch.Tensor,
                   initial_phase: torch.Tensor | None = None) -> torch.Tensor:
        """Render (batch, frames, n_harmonics) amplitudes at f0 to (batch, frames * hop) audio."""
        return harmonic_synthesis(f0_hz, amplitudes, sample_rate=self.sample_rate,
                                  hop_length=self.hop_length, initial_phase=initial_phase)

    def forward(self, amplitude, harmonic_distribution, f0_hz, *, return_controls: bool = False):
        controls = self.get_controls(amplitude, harmonic_distribution, f0_hz)
        audio = self.get_signal(controls["amplitudes"], f0_hz)
        return (audio, controls) if return_controls else audio


class FilteredNoise(nn.Module):
    """Uniform noise shaped by per-frame magnitude responses (time-varying FIR).

    Args:
        hop_length: samples per frame.
        n_bands: bands of the magnitude response, linearly spaced from 0 to Nyquist.
        ir_length: length of each frame's FIR (default ``2 * (n_bands - 1)``).
        scale: ``"exp_sigmoid"`` for raw network outputs or None for linear magnitudes.
        initial_bias: added to raw magnitudes before scaling (DDSP uses -5, so noise
            starts quiet).
    """

    def __init__(self, *, hop_length: int, n_bands: int = 65, ir_length: int | None = None,
                 scale: str | None = "exp_sigmoid", initial_bias: float = -5.0):
        super().__init__()
        self.hop_length = int(hop_length)
        self.n_bands = int(n_bands)
        self.ir_length = ir_length
        self.scale = scale
        self.initial_bias = float(initial_bias) if scale else 0.0

    def get_controls(self, magnitudes: torch.Tensor) -> dict[str, torch.Tensor]:
        """(batch, frames, n_bands) raw values to non-negative linear magnitudes."""
        if magnitudes.shape[-1] != self.n_bands:
            raise ValueError(f"magnitudes has {magnitudes.shape[-1]} bands, expected {self.n_bands}")
        return {"magnitudes": _scale(magnitudes + self.initial_bias, self.scale)}

    def get_signal(self, magnitudes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Render (batch, frames, n_bands) magnitudes to (batch, frames * hop) audio."""
        return filtered_noise(magnitudes, hop_length=self.hop_length, generator=generator,
                              ir_length=self.ir_length)

    def forward(self, magnitudes, *, generator: torch.Generator | None = None, return_controls: bool = False):
        controls = self.get_controls(magnitudes)
        audio = self.get_signal(controls["magnitudes"], generator)
        return (audio, controls) if return_controls else audio
