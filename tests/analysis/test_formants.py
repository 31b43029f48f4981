"""vocoder.analysis.formants: Praat Burg formants of synthetic vowels with known resonances."""
import numpy as np
import pytest
import scipy.signal

from vocoder.analysis.formants import formant_medians, formant_tracks
from vocoder.audio import AudioError
from vocoder.conversion import vtln_factor

SR, HOP = 16000, 80


def vowel(formants, *, f0=120.0, seconds=1.0, scale=1.0):
    """An impulse train at f0 with a -6 dB/octave tilt (glottal source and lip radiation)
    through a cascade of two-pole resonators: ``formants`` (F1-F3) and, as in speech,
    F4 and F5 (3500 and 4500 Hz times ``scale``) below Praat's 5500 Hz ceiling."""
    n = int(seconds * SR)
    x = np.zeros(n)
    x[:: int(round(SR / f0))] = 1.0
    x = scipy.signal.lfilter([1.0], [1.0, -0.95], x)
    all_formants = (*formants, 3500.0 * scale, 4500.0 * scale)
    for fc, bw in zip(all_formants, (80.0, 100.0, 140.0, 200.0, 250.0)):
        r = np.exp(-np.pi * bw / SR)
        x = scipy.signal.lfilter([1.0 - r], [1.0, -2.0 * r * np.cos(2 * np.pi * fc / SR), r * r], x)
    return 0.3 * x / np.abs(x).max()


@pytest.mark.parametrize("formants", [(700.0, 1220.0, 2600.0), (300.0, 2300.0, 3000.0), (600.0, 1000.0, 2400.0)])
def test_medians_find_the_resonances(formants):
    x = vowel(formants)
    tracks = formant_tracks(x, sample_rate=SR, hop_length=HOP)
    assert tracks.shape == (-(-x.size // HOP), 3)
    medians, frames = formant_medians(tracks, np.ones(len(tracks)))
    assert frames > 0.8 * len(tracks)
    np.testing.assert_allclose(medians, formants, rtol=0.06)


def test_a_shorter_tract_gives_the_scale_factor():
    a = formant_tracks(vowel((600.0, 1500.0, 2500.0)), sample_rate=SR, hop_length=HOP)
    b = formant_tracks(vowel((690.0, 1725.0, 2875.0), f0=200.0, scale=1.15), sample_rate=SR, hop_length=HOP)  # x 1.15
    ones = np.ones(len(a))
    assert vtln_factor(formant_medians(a, ones)[0], formant_medians(b, ones)[0]) == pytest.approx(1.15, rel=0.03)


def test_unvoiced_frames_are_left_out_and_bad_input_is_named():
    tracks = np.array([[500.0, 1500.0, 2500.0], [np.nan, 1600.0, 2600.0], [900.0, 1900.0, 2900.0]])
    assert formant_medians(tracks, [1, 1, 0]) == ([500.0, 1500.0, 2500.0], 1)
    assert formant_medians(tracks, [0, 0, 0]) == (None, 0)
    with pytest.raises(AudioError, match="bad.wav"):
        formant_tracks(np.zeros(0), sample_rate=SR, hop_length=HOP, name="bad.wav")
    with pytest.raises(ValueError, match="max_formant"):
        formant_tracks(vowel((700.0, 1220.0, 2600.0)), sample_rate=SR, hop_length=HOP, max_formant=9000.0)
