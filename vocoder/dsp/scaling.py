"""Turning raw network outputs into valid synthesizer controls, and unit conversions."""
from __future__ import annotations

import math

import torch

__all__ = ["exp_sigmoid", "hz_to_midi", "midi_to_hz", "db_to_amplitude", "amplitude_to_db"]


def exp_sigmoid(x: torch.Tensor, *, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7) -> torch.Tensor:
    """DDSP's positive, bounded nonlinearity: ``max_value * sigmoid(x) ** log(exponent) + threshold``.

    Gives amplitudes on a roughly logarithmic scale with a smooth floor, so networks
    can reach -100 dB without exploding gradients. Shape preserved.
    """
    return max_value * torch.sigmoid(x).pow(math.log(exponent)) + threshold


def hz_to_midi(f_hz: torch.Tensor) -> torch.Tensor:
    """Frequency in Hz to (fractional) MIDI note number; 0 Hz maps to 0, not -inf."""
    midi = 12.0 * torch.log2(f_hz.clamp_min(1e-5) / 440.0) + 69.0
    return torch.where(f_hz > 0, midi, torch.zeros_like(midi))


def midi_to_hz(midi: torch.Tensor) -> torch.Tensor:
    """MIDI note number to frequency in Hz."""
    return 440.0 * torch.pow(2.0, (midi - 69.0) / 12.0)


def db_to_amplitude(db: torch.Tensor) -> torch.Tensor:
    """Decibels (20 log10) to linear amplitude."""
    return torch.pow(10.0, db / 20.0)


def amplitude_to_db(x: torch.Tensor, *, min_db: float = -120.0) -> torch.Tensor:
    """Linear amplitude to decibels (20 log10), floored at ``min_db``."""
    return (20.0 * torch.log10(x.abs().clamp_min(10 ** (min_db / 20.0))))
