"""Synthetic "speakers" shared by the conversion-metric tests.

A pulse train at the speaker's f0 through a glottal low-pass and three formant
resonators whose frequencies scale with the speaker's "vocal tract"; an utterance is a
vowel sequence. Used by tests/test_metrics.py and tests/cli/test_cli_evaluate_conversion.py
(tests/conftest.py puts this directory on sys.path).
"""
import numpy as np
from scipy.signal import lfilter

SR = 16000
VOWELS = ((700, 1200, 2600), (300, 2300, 3000), (500, 900, 2400), (400, 1900, 2500))
SPEAKERS = {"low": (0.85, 105.0, 0.9), "mid": (1.0, 150.0, 0.7), "high": (1.25, 230.0, 0.5)}


def voice(speaker, vowels, durations, *, seed=0, f0_scale=1.0):
    """A synthetic speaker's utterance: pulses at f0 (falling by two semitones, with
    vibrato, continuous phase) through a glottal low-pass and three formant resonators
    scaled by the speaker's "vocal tract", one vowel per entry of ``vowels``
    (10 ms cross-fades)."""
    scale, f0, pole = SPEAKERS[speaker]
    rng = np.random.default_rng(seed)
    f0 = f0 * f0_scale * 2 ** (rng.uniform(-1, 1) / 12)
    bounds = np.round(np.cumsum([0.0, *durations]) * SR).astype(int)
    t = np.arange(bounds[-1]) / SR
    semitones = 1.0 - 2.0 * t / t[-1] + 0.5 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))
    pulses = np.diff(np.floor(np.cumsum(f0 * 2 ** (semitones / 12)) / SR), prepend=0.0)
    excitation = lfilter([1 - pole], [1, -pole], pulses)
    fade = np.hanning(int(0.01 * SR))
    x = np.zeros(t.size)
    for v, start, end in zip(vowels, bounds[:-1], bounds[1:]):
        y = excitation
        r = np.exp(-np.pi * 80.0 / SR)
        for fc in VOWELS[v]:
            y = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc * scale / SR), r * r], y)
        weight = np.zeros(t.size)
        weight[start:end] = 1.0
        x += y * np.convolve(weight, fade / fade.sum(), mode="same")
    return 0.3 * x / np.abs(x).max() + 1e-4 * rng.standard_normal(x.size)
