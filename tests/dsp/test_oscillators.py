import math

import numpy as np
import pytest
import torch

from vocoder.dsp.oscillators import (frame_phase, harmonic_phase, harmonic_synthesis,
                                     segment_nyquist_mask)


def numpy_reference(f0, amps, sr, hop):
    """Sum of sines at sample level, written independently with numpy."""
    batch, n_frames, n_harm = amps.shape
    t = np.arange(n_frames * hop)
    n, j = t // hop, t % hop
    w = j / hop
    f0_next = np.concatenate([f0[:, 1:], f0[:, -1:]], axis=1)
    amps_next = np.concatenate([amps[:, 1:], amps[:, -1:]], axis=1)
    # Instantaneous frequency, integrated sample by sample with the trapezoid rule on
    # a fine grid is the exact integral here because f is linear within a segment.
    f = f0[:, n] * (1 - w) + f0_next[:, n] * w
    f_next_sample = np.concatenate([f[:, 1:], (f0_next[:, -1])[:, None]], axis=1)
    inc = 2 * np.pi / sr * 0.5 * (f + f_next_sample)
    phase = np.concatenate([np.zeros((batch, 1)), np.cumsum(inc, axis=1)[:, :-1]], axis=1)
    k = np.arange(1, n_harm + 1)
    peak = np.maximum(f0, f0_next)
    mask = peak[:, :, None] * k < sr / 2
    a = (amps * mask)[:, n] * (1 - w)[None, :, None] + (amps_next * mask)[:, n] * w[None, :, None]
    return (a * np.sin(phase[:, :, None] * k)).sum(-1)


def test_matches_numpy_sum_of_sines():
    rng = np.random.default_rng(1)
    f0 = rng.uniform(80, 900, size=(2, 30))
    amps = rng.uniform(0, 1, size=(2, 30, 12))
    y = harmonic_synthesis(torch.from_numpy(f0), torch.from_numpy(amps), sample_rate=16000, hop_length=40)
    ref = numpy_reference(f0, amps, 16000, 40)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-8)


def test_float32_close_to_float64():
    rng = np.random.default_rng(2)
    f0 = torch.from_numpy(rng.uniform(80, 400, size=(1, 50)))
    amps = torch.from_numpy(rng.uniform(0, 0.1, size=(1, 50, 20)))
    y64 = harmonic_synthesis(f0, amps, sample_rate=22050, hop_length=110)
    y32 = harmonic_synthesis(f0.float(), amps.float(), sample_rate=22050, hop_length=110)
    assert y32.dtype == torch.float32
    assert (y32.double() - y64).abs().max() < 1e-4


def test_chunking_does_not_change_result():
    f0 = torch.rand(3, 17) * 500 + 50
    amps = torch.rand(3, 17, 9)
    a = harmonic_synthesis(f0, amps, sample_rate=16000, hop_length=32, chunk_elements=1)
    b = harmonic_synthesis(f0, amps, sample_rate=16000, hop_length=32, chunk_elements=1 << 24)
    torch.testing.assert_close(a, b)


def test_batch_consistency():
    f0 = torch.rand(4, 12) * 300 + 100
    amps = torch.rand(4, 12, 6)
    batched = harmonic_synthesis(f0, amps, sample_rate=24000, hop_length=120)
    for i in range(4):
        single = harmonic_synthesis(f0[i:i + 1], amps[i:i + 1], sample_rate=24000, hop_length=120)
        torch.testing.assert_close(batched[i:i + 1], single)


def test_constant_tone_phase_after_ten_minutes():
    sr, hop = 48000, 240
    n_frames = 600 * sr // hop
    f0 = torch.full((1, n_frames), 440.0)
    phase = harmonic_phase(f0, sample_rate=sr, hop_length=hop).reshape(-1)
    # Compare the last second against the exact phase (float64, reduced exactly).
    t = torch.arange(n_frames * hop - sr, n_frames * hop, dtype=torch.float64)
    exact = torch.remainder(2 * math.pi * torch.remainder(440 * t, sr) / sr, 2 * math.pi)
    err = torch.remainder(phase[-sr:].double() - exact + math.pi, 2 * math.pi) - math.pi
    assert err.abs().max() < 0.01


def test_initial_phase_continues_stream():
    f0 = torch.rand(2, 40) * 300 + 100
    amps = torch.rand(2, 40, 5)
    whole = harmonic_synthesis(f0, amps, sample_rate=16000, hop_length=80)
    # Split where the first block's last frame is the second block's first frame.
    _, final = frame_phase(f0[:, :20], sample_rate=16000, hop_length=80)
    first = harmonic_synthesis(f0[:, :21], amps[:, :21], sample_rate=16000, hop_length=80)[:, :20 * 80]
    start, _ = frame_phase(f0, sample_rate=16000, hop_length=80)
    second = harmonic_synthesis(f0[:, 20:], amps[:, 20:], sample_rate=16000, hop_length=80,
                                initial_phase=start[:, 20])
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=2e-5, rtol=0)
    assert final.shape == (2,)


def test_harmonics_at_or_above_nyquist_are_silent():
    sr, hop = 16000, 64
    # f0 = 3000 Hz: harmonics 1 and 2 (3000, 6000 Hz) sound, 3 (9000 Hz) must not.
    f0 = torch.full((1, 20), 3000.0, dtype=torch.float64)
    amps = torch.zeros(1, 20, 3, dtype=torch.float64)
    amps[..., 2] = 1.0
    assert harmonic_synthesis(f0, amps, sample_rate=sr, hop_length=hop).abs().max() == 0
    # Exactly Nyquist is silenced too.
    f0 = torch.full((1, 20), 4000.0, dtype=torch.float64)
    amps = torch.zeros(1, 20, 2, dtype=torch.float64)
    amps[..., 1] = 1.0
    assert harmonic_synthesis(f0, amps, sample_rate=sr, hop_length=hop).abs().max() == 0
    mask = segment_nyquist_mask(torch.tensor([[100.0, 7000.0, 100.0]]), 2, sample_rate=sr)
    assert mask[0, :, 1].tolist() == [False, False, True]  # segment ends matter


def test_spectrum_has_only_requested_harmonics():
    sr, hop = 16000, 100
    f0 = torch.full((1, 160), 250.0, dtype=torch.float64)
    amps = torch.zeros(1, 160, 4, dtype=torch.float64)
    amps[..., 0], amps[..., 2] = 0.5, 0.25
    y = harmonic_synthesis(f0, amps, sample_rate=sr, hop_length=hop)[0].numpy()
    spec = np.abs(np.fft.rfft(y)) / (len(y) / 2)
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    for f, a in [(250, 0.5), (500, 0.0), (750, 0.25), (1000, 0.0)]:
        assert abs(spec[np.argmin(np.abs(freqs - f))] - a) < 1e-6


@pytest.mark.parametrize("f0_value", [0.0, 7999.0, 200.0])
def test_gradients_finite_for_edge_cases(f0_value):
    f0 = torch.full((2, 6), f0_value, dtype=torch.float64, requires_grad=True)
    amps = torch.zeros(2, 6, 4, dtype=torch.float64, requires_grad=True)
    y = harmonic_synthesis(f0, amps, sample_rate=16000, hop_length=16)
    (y.sum() + (y ** 2).sum()).backward()
    assert torch.isfinite(f0.grad).all() and torch.isfinite(amps.grad).all()


def test_gradcheck():
    f0 = (torch.rand(2, 4, dtype=torch.float64) * 600 + 100).requires_grad_()
    amps = torch.rand(2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda f, a: harmonic_synthesis(f, a, sample_rate=8000, hop_length=8, chunk_elements=40), (f0, amps))


def test_bad_shapes():
    with pytest.raises(ValueError, match="amplitudes"):
        harmonic_synthesis(torch.zeros(1, 5), torch.zeros(1, 4, 3), sample_rate=16000, hop_length=10)
    with pytest.raises(ValueError, match="f0_hz"):
        harmonic_synthesis(torch.zeros(5), torch.zeros(1, 5, 3), sample_rate=16000, hop_length=10)


def test_cos_amplitudes_add_cosine_terms():
    """y = sum_k a_k sin(k phi) + b_k cos(k phi); cos(k phi) = sin(k phi + pi / 2) per harmonic."""
    rng = np.random.default_rng(4)
    f0 = rng.uniform(80, 900, size=(2, 30))
    a = rng.uniform(-1, 1, size=(2, 30, 12))
    b = rng.uniform(-1, 1, size=(2, 30, 12))
    ft, at, bt = (torch.from_numpy(v) for v in (f0, a, b))
    both = harmonic_synthesis(ft, at, sample_rate=16000, hop_length=40, cos_amplitudes=bt)
    sines = harmonic_synthesis(ft, at, sample_rate=16000, hop_length=40)
    cosines = harmonic_synthesis(ft, None, sample_rate=16000, hop_length=40, cos_amplitudes=bt,
                                 chunk_elements=500)
    np.testing.assert_allclose(both.numpy(), (sines + cosines).numpy(), atol=1e-10)
    np.testing.assert_allclose(sines.numpy(), numpy_reference(f0, a, 16000, 40), atol=1e-8)
    # The cosine bank against numpy: the reference's sines advanced by a quarter period.
    t = np.arange(30 * 40)
    n, j = t // 40, t % 40
    w = j / 40
    f0_next = np.concatenate([f0[:, 1:], f0[:, -1:]], axis=1)
    f = f0[:, n] * (1 - w) + f0_next[:, n] * w
    f_next = np.concatenate([f[:, 1:], f0_next[:, -1:]], axis=1)
    phase = np.concatenate([np.zeros((2, 1)), np.cumsum(2 * np.pi / 16000 * 0.5 * (f + f_next), axis=1)[:, :-1]], axis=1)
    k = np.arange(1, 13)
    mask = np.maximum(f0, f0_next)[:, :, None] * k < 8000
    b_next = np.concatenate([b[:, 1:], b[:, -1:]], axis=1)
    amp = (b * mask)[:, n] * (1 - w)[None, :, None] + (b_next * mask)[:, n] * w[None, :, None]
    np.testing.assert_allclose(cosines.numpy(), (amp * np.cos(phase[:, :, None] * k)).sum(-1), atol=1e-8)


def test_cos_amplitudes_gradcheck_and_errors():
    f0 = (torch.rand(2, 4, dtype=torch.float64) * 600 + 100).requires_grad_()
    a = torch.rand(2, 4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.rand(2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda f, x, y: harmonic_synthesis(f, x, sample_rate=8000, hop_length=8, chunk_elements=40,
                                           cos_amplitudes=y), (f0, a, b))
    assert torch.autograd.gradcheck(
        lambda f, y: harmonic_synthesis(f, None, sample_rate=8000, hop_length=8, cos_amplitudes=y), (f0, b))
    with pytest.raises(ValueError, match="cos_amplitudes"):
        harmonic_synthesis(torch.zeros(1, 5), None, sample_rate=16000, hop_length=10)
    with pytest.raises(ValueError, match="cos_amplitudes"):
        harmonic_synthesis(torch.zeros(1, 5), torch.zeros(1, 5, 3), sample_rate=16000, hop_length=10,
                           cos_amplitudes=torch.zeros(1, 5, 4))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n_harmonics", [1, 7, 250])
def test_compiled_bank_equals_torch_sines(monkeypatch, dtype, n_harmonics):
    """The compiled bank (sin(k phi) by recurrence, rows split between threads) gives the
    sum of torch's sines: low f0 (phases near 0 and pi, where such recurrences lose
    precision first), many harmonics, batch rows beyond one thread's share. In float64
    to 1e-11; in float32 at least as close to the float64 result as torch's float32
    sines (which round k * phi to float32 first)."""
    from vocoder.dsp import oscillators as osc

    if osc._compile_sum() is None:
        pytest.skip("numba not installed")
    g = torch.Generator().manual_seed(n_harmonics)
    f0 = 30.0 + 300.0 * torch.rand(3, 40, generator=g, dtype=torch.float64)
    f0[1, 10:20] = 0.0  # unvoiced stretch
    amps = torch.rand(3, 40, n_harmonics, generator=g, dtype=torch.float64)
    phase0 = torch.tensor([0.0, 3.14159, 6.0], dtype=torch.float64)

    def bank(fast, dt):
        monkeypatch.setattr(osc, "_FAST_BANK", fast)
        with torch.no_grad():
            return osc.harmonic_synthesis(f0.to(dt), amps.to(dt), sample_rate=16000, hop_length=80,
                                          initial_phase=phase0.to(dt)).double()

    exact = bank(False, torch.float64)
    fast = bank(True, dtype)
    if dtype == torch.float64:
        torch.testing.assert_close(fast, exact, atol=1e-11 * n_harmonics, rtol=0)
    else:
        torch_error = (bank(False, torch.float32) - exact).abs().max()
        assert (fast - exact).abs().max() <= 1.05 * torch_error + 1e-6
