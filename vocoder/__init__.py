"""ddsp-vocoder: differentiable DSP synthesis for speech and music.

Sub-packages:
    vocoder.dsp            pure tensor functions (oscillators, filters, spectral ops)
    vocoder.synths         Harmonic, FilteredNoise modules
    vocoder.effects        Reverb, ExpDecayReverb
    vocoder.losses         multi-scale spectral loss
    vocoder.analysis       f0, loudness, mel, WORLD features
    vocoder.source_filter  excitation sources and time-varying filters for speech
"""
from .version import __version__

__all__ = ["__version__"]
