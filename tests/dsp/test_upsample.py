import numpy as np
import pytest
import torch

from vocoder.dsp.upsample import upsample_hann, upsample_linear


@pytest.mark.parametrize("fn", [upsample_linear, upsample_hann])
def test_frame_centres_hold_frame_values(fn):
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    y = fn(x, hop_length=5)
    assert y.shape == (3, 35, 4)
    torch.testing.assert_close(y[:, ::5], x)


@pytest.mark.parametrize("fn", [upsample_linear, upsample_hann])
def test_constant_stays_constant_and_2d_input(fn):
    x = torch.full((2, 9), 0.37)
    y = fn(x, hop_length=16)
    assert y.shape == (2, 144)
    torch.testing.assert_close(y, torch.full_like(y, 0.37))


def test_linear_matches_numpy_interp():
    x = np.random.default_rng(0).normal(size=(1, 6))
    hop = 8
    y = upsample_linear(torch.from_numpy(x), hop_length=hop).numpy()[0]
    t = np.arange(6 * hop)
    ref = np.interp(t, np.arange(6) * hop, x[0])  # np.interp holds the last value
    np.testing.assert_allclose(y, ref, atol=1e-12)


def test_hann_is_smooth_step():
    x = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    y = upsample_hann(x, hop_length=100)[0, :100].numpy()
    ref = np.sin(np.pi * np.arange(100) / 200) ** 2
    np.testing.assert_allclose(y, ref, atol=1e-12)


@pytest.mark.parametrize("fn", [upsample_linear, upsample_hann])
def test_gradients_finite(fn):
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fn(t, hop_length=4), (x,))


def test_bad_hop():
    with pytest.raises(ValueError, match="hop_length"):
        upsample_linear(torch.zeros(1, 3), hop_length=0)
