import numpy as np
import pytest
import torch

from vocoder.synths import FilteredNoise, Harmonic


def test_harmonic_controls_normalised_and_masked():
    synth = Harmonic(sample_rate=16000, hop_length=80, n_harmonics=10)
    f0 = torch.full((2, 5), 1000.0)  # harmonics 8..10 (8 kHz and up) are at/above Nyquist
    amp = torch.zeros(2, 5, 1)
    dist = torch.randn(2, 5, 10)
    c = synth.get_controls(amp, dist, f0)
    assert c["amplitudes"].shape == (2, 5, 10)
    assert (c["harmonic_distribution"][..., 7:] == 0).all()
    torch.testing.assert_close(c["harmonic_distribution"].sum(-1), torch.ones(2, 5))
    assert (c["amplitudes"] >= 0).all()


def test_harmonic_forward_renders_expected_tone():
    sr, hop = 16000, 160
    synth = Harmonic(sample_rate=sr, hop_length=hop, n_harmonics=3, scale=None)
    f0 = torch.full((1, 100), 200.0, dtype=torch.float64)
    amp = torch.full((1, 100, 1), 0.5, dtype=torch.float64)
    dist = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64).expand(1, 100, 3)
    audio, controls = synth(amp, dist, f0, return_controls=True)
    assert audio.shape == (1, 100 * hop)
    spec = np.abs(np.fft.rfft(audio[0].numpy())) / (audio.shape[1] / 2)
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / sr)
    at = lambda f: spec[np.argmin(np.abs(freqs - f))]  # noqa: E731
    assert abs(at(200) - 0.25) < 1e-6 and abs(at(600) - 0.25) < 1e-6 and at(400) < 1e-6


def test_harmonic_gradients_flow_to_raw_outputs():
    synth = Harmonic(sample_rate=16000, hop_length=64, n_harmonics=20)
    amp = torch.randn(1, 8, 1, requires_grad=True)
    dist = torch.randn(1, 8, 20, requires_grad=True)
    f0 = torch.full((1, 8), 220.0, requires_grad=True)
    synth(amp, dist, f0).pow(2).sum().backward()
    for t in (amp, dist, f0):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_harmonic_wrong_size():
    with pytest.raises(ValueError, match="harmonics"):
        Harmonic(sample_rate=16000, hop_length=64, n_harmonics=4).get_controls(
            torch.zeros(1, 2, 1), torch.zeros(1, 2, 5), torch.zeros(1, 2))


def test_filtered_noise_deterministic_and_shaped():
    synth = FilteredNoise(hop_length=64, n_bands=33)
    mags = torch.randn(2, 10, 33)
    a = synth(mags, generator=torch.Generator().manual_seed(3))
    b = synth(mags, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 640)
    torch.testing.assert_close(a, b)
    c = synth(mags, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(a, c)


def test_filtered_noise_level_follows_magnitudes():
    synth = FilteredNoise(hop_length=128, n_bands=17, scale=None)
    g = torch.Generator().manual_seed(0)
    loud = synth(torch.ones(1, 50, 17), generator=g)
    g = torch.Generator().manual_seed(0)
    quiet = synth(torch.full((1, 50, 17), 0.1), generator=g)
    ratio = loud.pow(2).mean().sqrt() / quiet.pow(2).mean().sqrt()
    assert abs(float(ratio) - 10.0) < 1e-3


def test_filtered_noise_gradients():
    synth = FilteredNoise(hop_length=32, n_bands=9)
    mags = torch.randn(1, 6, 9, requires_grad=True)
    synth(mags, generator=torch.Generator().manual_seed(0)).pow(2).sum().backward()
    assert torch.isfinite(mags.grad).all() and mags.grad.abs().sum() > 0
