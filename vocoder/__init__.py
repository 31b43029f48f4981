"""ddsp-vocoder: differentiable DSP synthesis for speech and music.

Sub-packages:
    vocoder.dsp            pure tensor functions (oscillators, filters, spectral ops)
    vocoder.synths         Harmonic, FilteredNoise modules
    vocoder.effects        Reverb, ExpDecayReverb
    vocoder.losses         multi-scale spectral loss
    vocoder.analysis       f0, loudness, mel, WORLD features
    vocoder.source_filter  excitation sources and time-varying filters for speech
"""
import warnings

from .version import __version__

# pyworld 0.3.5 imports pkg_resources, which warns on every import; the pin
# setuptools<81 keeps it importable (see setup.py).
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

__all__ = ["__version__"]
