"""Tests for vocoder.dsp.filters against scipy / numpy references."""
import math

import numpy as np
import pytest
import scipy.fft
import scipy.signal
import torch

from vocoder.dsp.filters import (
    fft_convolve,
    filtered_noise,
    frequency_sampling_fir,
    ltv_fir,
    minimum_phase,
    next_fast_len,
)

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}  # relative to the reference's max


def _assert_close_rel(actual, expected, dtype):
    actual = actual.detach().cpu().double().numpy() if torch.is_tensor(actual) else actual
    scale = max(np.abs(expected).max(), 1e-30)
    assert np.abs(actual - expected).max() <= TOL[dtype] * scale


def _smooth_magnitudes(n_bands, *, batch_shape=(), seed=0, dtype=torch.float64):
    """Positive, smooth magnitude responses: a few low-order cosines in log domain."""
    g = torch.Generator().manual_seed(seed)
    w = torch.linspace(0, math.pi, n_bands, dtype=torch.float64)
    coef = 0.4 * torch.randn(*batch_shape, 4, 1, generator=g, dtype=torch.float64)
    orders = torch.arange(1, 5, dtype=torch.float64)[:, None]
    log_mag = (coef * torch.cos(orders * w)).sum(-2)
    return torch.exp(log_mag).to(dtype)


# ----------------------------------------------------------------------------- fft sizes
def test_next_fast_len_is_the_smallest_even_5_smooth_size():
    def smooth(m):
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    even_smooth = [m for m in range(2, 6000, 2) if smooth(m)]
    for n in range(1, 2500):
        got = next_fast_len(n)
        assert got == min(m for m in even_smooth if m >= n)
        # scipy's choice for real FFTs may be odd (3**k, 5**k, ...); ours is that of n/2, doubled
        assert got == 2 * scipy.fft.next_fast_len(-(-n // 2), real=True)
    assert next_fast_len(175999) == 180000  # not 177147 = 3**11
    with pytest.raises(ValueError):
        next_fast_len(0)


# -------------------------------------------------------------------------- fft_convolve
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["full", "same", "causal"])
@pytest.mark.parametrize("n,k", [(1000, 77), (64, 64), (50, 131), (1, 1), (9, 2)])
def test_fft_convolve_matches_scipy(dtype, mode, n, k):
    g = torch.Generator().manual_seed(n * 1000 + k)
    x = torch.randn(3, n, generator=g, dtype=torch.float64)
    h = torch.randn(3, k, generator=g, dtype=torch.float64)
    out = fft_convolve(x.to(dtype), h.to(dtype), mode=mode)
    assert out.dtype == dtype
    scipy_mode = "full" if mode == "causal" else mode
    ref = scipy.signal.fftconvolve(x.numpy(), h.numpy(), mode=scipy_mode, axes=-1)
    if mode == "causal":
        ref = ref[:, :n]
    assert out.shape == ref.shape
    _assert_close_rel(out, ref, dtype)


def test_fft_convolve_broadcasts_and_batches():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 200, generator=g, dtype=torch.float64)
    h = torch.randn(40, generator=g, dtype=torch.float64)
    out = fft_convolve(x, h, mode="same")
    assert out.shape == (2, 3, 200)
    for i in range(2):
        for j in range(3):
            single = fft_convolve(x[i, j], h, mode="same")
            torch.testing.assert_close(out[i, j], single, rtol=0, atol=1e-12)
    per_channel = torch.randn(3, 40, generator=g, dtype=torch.float64)
    out = fft_convolve(x, per_channel)
    ref = scipy.signal.fftconvolve(x.numpy(), per_channel.numpy()[None], axes=-1)
    _assert_close_rel(out, ref, torch.float64)


def test_fft_convolve_gradcheck():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 7, generator=g, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    for mode in ["full", "same", "causal"]:
        assert torch.autograd.gradcheck(lambda a, b: fft_convolve(a, b, mode=mode), (x, h))


def test_fft_convolve_rejects_bad_input():
    x = torch.randn(10)
    with pytest.raises(ValueError, match="mode"):
        fft_convolve(x, x, mode="valid")
    with pytest.raises(ValueError, match="empty"):
        fft_convolve(x, torch.zeros(0))


# ------------------------------------------------------------------ frequency_sampling_fir
def _realised_response(ir, n_fft):
    """|DFT| of an IR (centred layout) on an n_fft grid, without the linear-phase term."""
    return torch.fft.rfft(ir, n=n_fft).abs()


@pytest.mark.parametrize("dtype", DTYPES)
def test_frequency_sampling_fir_realises_smooth_response(dtype):
    n_bands = 129
    mags = _smooth_magnitudes(n_bands, batch_shape=(2, 3), dtype=dtype)
    ir = frequency_sampling_fir(mags, ir_length=255)
    assert ir.shape == (2, 3, 255) and ir.dtype == dtype
    realised = _realised_response(ir.double(), 256)
    err = (realised - mags.double()).abs().max() / mags.double().abs().max()
    assert err < 0.01


@pytest.mark.parametrize("length", [31, 64, 128, 200, 256])
def test_frequency_sampling_fir_is_linear_phase(length):
    mags = torch.rand(4, 65, generator=torch.Generator().manual_seed(length), dtype=torch.float64)
    ir = frequency_sampling_fir(mags, ir_length=length)
    centre = length // 2
    lags = np.arange(-centre, length - centre)
    symmetric = np.abs(lags) <= min(centre, length - 1 - centre)
    # Symmetric about index L // 2 (for even L the unmatched first tap is zero).
    np.testing.assert_allclose(ir[..., centre - lags[symmetric]].numpy(), ir[..., centre + lags[symmetric]].numpy(), atol=1e-12)
    np.testing.assert_allclose(ir[..., ~symmetric].numpy(), 0.0, atol=1e-12)
    # Phase of the realised response is exactly -w * centre (the response is real after removal).
    spec = torch.fft.rfft(ir, n=512)
    w = torch.linspace(0, math.pi, 257, dtype=torch.float64)
    zero_phase = spec * torch.exp(1j * w * centre)
    assert zero_phase.imag.abs().max() < 1e-10


def test_frequency_sampling_fir_layouts_and_defaults():
    mags = _smooth_magnitudes(33, batch_shape=(5,))
    ir = frequency_sampling_fir(mags)
    assert ir.shape == (5, 64)  # default 2 * (n_bands - 1)
    zero_phase = frequency_sampling_fir(mags, zero_phase_centre=False)
    torch.testing.assert_close(zero_phase, torch.roll(ir, -32, dims=-1))
    # Rectangular window at the full length is the plain irfft in centred form.
    rect = frequency_sampling_fir(mags, window=None, zero_phase_centre=False)
    torch.testing.assert_close(rect, torch.fft.irfft(mags, n=64), rtol=0, atol=1e-12)
    # Flat magnitude -> unit impulse at the centre.
    delta = frequency_sampling_fir(torch.ones(2, 33, dtype=torch.float64), ir_length=41)
    expected = torch.zeros(2, 41, dtype=torch.float64)
    expected[:, 20] = 1.0
    torch.testing.assert_close(delta, expected, rtol=0, atol=1e-12)


def test_frequency_sampling_fir_longer_than_fft_zero_pads():
    mags = _smooth_magnitudes(17, batch_shape=(3,))
    short = frequency_sampling_fir(mags)  # 32 taps, centre 16
    long = frequency_sampling_fir(mags, ir_length=100)  # centre 50
    torch.testing.assert_close(long[:, 50 - 16:50 + 16], short, rtol=0, atol=1e-12)
    assert long[:, :50 - 16].abs().max() == 0 and long[:, 50 + 16:].abs().max() == 0


def test_frequency_sampling_fir_gradcheck_and_errors():
    mags = torch.rand(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m: frequency_sampling_fir(m, ir_length=7), (mags,))
    with pytest.raises(ValueError, match="2 bands"):
        frequency_sampling_fir(torch.ones(3, 1))
    with pytest.raises(ValueError, match="window"):
        frequency_sampling_fir(torch.ones(3, 5), window="kaiser")
    with pytest.raises(ValueError, match="ir_length"):
        frequency_sampling_fir(torch.ones(3, 5), ir_length=0)


# ------------------------------------------------------------------------ minimum_phase
@pytest.mark.parametrize("a", [0.5, -0.8, 0.9])
def test_minimum_phase_one_pole_analytic(a):
    # |1 / (1 - a e^{-jw})| is the magnitude of the minimum-phase filter h[n] = a^n.
    n_fft = 1024
    w = np.linspace(0, np.pi, n_fft // 2 + 1)
    mags = torch.tensor(1.0 / np.abs(1.0 - a * np.exp(-1j * w)))
    h = minimum_phase(mags)
    assert h.shape == (n_fft,)
    np.testing.assert_allclose(h.numpy()[:100], a ** np.arange(100), atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_minimum_phase_keeps_magnitude(dtype):
    mags = _smooth_magnitudes(257, batch_shape=(2, 3), dtype=dtype)
    h = minimum_phase(mags)
    assert h.shape == (2, 3, 512) and h.dtype == dtype
    realised = torch.fft.rfft(h, n=512).abs()
    _assert_close_rel(realised, mags.double().numpy(), dtype)


def test_minimum_phase_matches_scipy_homomorphic_and_front_loads_energy():
    n_taps, n_fft = 63, 2048
    lin = frequency_sampling_fir(_smooth_magnitudes(65, seed=3), ir_length=n_taps)
    mags = torch.fft.rfft(lin, n=n_fft).abs()
    h_min = minimum_phase(mags)
    ref = scipy.signal.minimum_phase(lin.numpy(), method="homomorphic", n_fft=n_fft, half=False)
    np.testing.assert_allclose(h_min.numpy()[:n_taps], ref, atol=1e-5 * np.abs(ref).max())
    # Minimum phase: the partial energy is at least the linear-phase filter's at every index.
    e_min = np.cumsum(h_min.numpy() ** 2)
    e_lin = np.cumsum(np.pad(lin.numpy(), (0, n_fft - n_taps)) ** 2)
    assert np.all(e_min >= e_lin - 1e-9 * e_lin[-1])
    np.testing.assert_allclose(e_min[-1], e_lin[-1], rtol=1e-9)


def test_minimum_phase_interpolates_to_larger_fft():
    mags = _smooth_magnitudes(33, batch_shape=(4,))
    h = minimum_phase(mags, n_fft=256)
    assert h.shape == (4, 256)
    realised = torch.fft.rfft(h).abs()
    # Realised on the fine grid = log-linear interpolation of the coarse response.
    np.testing.assert_allclose(realised[:, ::4].numpy(), mags.numpy(), rtol=1e-10)
    # Energy is concentrated at the start (no bulk delay).
    energy = h**2
    assert torch.all(energy[:, :32].sum(-1) > 0.99 * energy.sum(-1))


def test_minimum_phase_batch_consistency_and_gradcheck():
    mags = _smooth_magnitudes(17, batch_shape=(3,))
    batched = minimum_phase(mags)
    for i in range(3):
        torch.testing.assert_close(batched[i], minimum_phase(mags[i]), rtol=0, atol=1e-12)
    small = (torch.rand(2, 5, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda m: minimum_phase(m), (small,))
    assert torch.autograd.gradcheck(lambda m: minimum_phase(m, n_fft=12), (small,))


# ------------------------------------------------------------------------------ ltv_fir
def _ltv_reference(x, irs, hop, centred):
    """Direct numpy evaluation of sum_n h_n * (w_n x) with the last frame held."""
    batch, n = x.shape
    n_frames, length = irs.shape[1:]
    t = np.arange(n)
    out = np.zeros((batch, n + length - 1))
    for frame in range((n - 1) // hop + 2):
        lag = (t - frame * hop) / hop  # window support |lag| < 1
        w = np.where(np.abs(lag) < 1, 0.5 + 0.5 * np.cos(np.pi * lag), 0.0)
        h = irs[:, min(frame, n_frames - 1)]
        for b in range(batch):
            out[b] += np.convolve(w * x[b], h[b])
    start = length // 2 if centred else 0
    return out[:, start:start + n]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("centred", [False, True])
def test_ltv_fir_constant_ir_is_plain_convolution(dtype, centred):
    g = torch.Generator().manual_seed(4)
    hop, n_frames, length = 80, 25, 37
    x = torch.randn(2, n_frames * hop, generator=g, dtype=torch.float64)
    h = torch.randn(2, length, generator=g, dtype=torch.float64)
    irs = h[:, None].expand(2, n_frames, length)
    y = ltv_fir(x.to(dtype), irs.to(dtype), hop_length=hop, centred=centred)
    assert y.shape == x.shape and y.dtype == dtype
    full = scipy.signal.fftconvolve(x.numpy(), h.numpy(), axes=-1)
    start = length // 2 if centred else 0
    ref = full[:, start:start + x.shape[1]]
    # Windows sum to one over the whole signal (the last frame is held), so the
    # equality holds everywhere, interior and edges.
    _assert_close_rel(y, ref, dtype)


@pytest.mark.parametrize("n_samples", [200, 237, 90])
@pytest.mark.parametrize("centred", [False, True])
def test_ltv_fir_time_varying_matches_direct_reference(n_samples, centred):
    g = torch.Generator().manual_seed(n_samples)
    hop, n_frames, length = 20, 10, 15
    x = torch.randn(3, n_samples, generator=g, dtype=torch.float64)
    irs = torch.randn(3, n_frames, length, generator=g, dtype=torch.float64)
    y = ltv_fir(x, irs, hop_length=hop, centred=centred)
    ref = _ltv_reference(x.numpy(), irs.numpy(), hop, centred)
    _assert_close_rel(y, ref, torch.float64)
    # Batch consistency and broadcasting of a single set of IRs.
    for b in range(3):
        single = ltv_fir(x[b:b + 1], irs[b:b + 1], hop_length=hop, centred=centred)
        torch.testing.assert_close(single[0], y[b], rtol=0, atol=1e-12)
    shared = ltv_fir(x, irs[:1], hop_length=hop, centred=centred)
    torch.testing.assert_close(shared, ltv_fir(x, irs[:1].expand(3, -1, -1), hop_length=hop, centred=centred))


def test_ltv_fir_float32_close_to_float64():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4000, generator=g, dtype=torch.float64)
    irs = minimum_phase(_smooth_magnitudes(65, batch_shape=(2, 50)))
    y64 = ltv_fir(x, irs, hop_length=80)
    y32 = ltv_fir(x.float(), irs.float(), hop_length=80)
    _assert_close_rel(y32, y64.numpy(), torch.float32)


def test_ltv_fir_gradcheck_and_errors():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(1, 13, generator=g, dtype=torch.float64, requires_grad=True)
    irs = torch.randn(1, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    for centred in (False, True):
        assert torch.autograd.gradcheck(lambda a, b: ltv_fir(a, b, hop_length=4, centred=centred), (x, irs))
    with pytest.raises(ValueError, match="signal"):
        ltv_fir(torch.zeros(10), torch.zeros(1, 2, 3), hop_length=4)
    with pytest.raises(ValueError, match="impulse_responses"):
        ltv_fir(torch.zeros(1, 10), torch.zeros(2, 3), hop_length=4)
    with pytest.raises(ValueError, match="batch"):
        ltv_fir(torch.zeros(2, 10), torch.zeros(3, 2, 3), hop_length=4)
    with pytest.raises(ValueError, match="hop_length"):
        ltv_fir(torch.zeros(1, 10), torch.zeros(1, 2, 3), hop_length=0)


# ------------------------------------------------------------------------ filtered_noise
def _uniform_noise(batch, n, seed, dtype=torch.float32):
    return 2.0 * torch.rand(batch, n, generator=torch.Generator().manual_seed(seed), dtype=dtype) - 1.0


def test_filtered_noise_flat_response_is_the_noise():
    mags = torch.ones(2, 30, 65)
    out = filtered_noise(mags, hop_length=64, generator=torch.Generator().manual_seed(7))
    assert out.shape == (2, 30 * 64) and out.dtype == torch.float32
    torch.testing.assert_close(out, _uniform_noise(2, 30 * 64, 7), rtol=0, atol=1e-5)
    # Integer seed, explicit n_samples and float64.
    out64 = filtered_noise(mags.double(), hop_length=64, generator=7, n_samples=1000)
    torch.testing.assert_close(out64, _uniform_noise(2, 1000, 7, torch.float64), rtol=0, atol=1e-12)


def test_filtered_noise_is_deterministic_with_generator():
    mags = torch.rand(2, 20, 33, generator=torch.Generator().manual_seed(0))
    a = filtered_noise(mags, hop_length=32, generator=torch.Generator().manual_seed(11))
    b = filtered_noise(mags, hop_length=32, generator=torch.Generator().manual_seed(11))
    c = filtered_noise(mags, hop_length=32, generator=torch.Generator().manual_seed(12))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 0.01
    shared = torch.Generator().manual_seed(11)
    first = filtered_noise(mags, hop_length=32, generator=shared)
    second = filtered_noise(mags, hop_length=32, generator=shared)
    torch.testing.assert_close(first, a, rtol=0, atol=0)
    assert (first - second).abs().max() > 0.01  # the generator's state advances


def test_filtered_noise_lowpass_stopband():
    n_bands, hop, n_frames = 129, 64, 400
    cutoff = 32  # band index: a quarter of Nyquist
    mags = torch.zeros(1, n_frames, n_bands)
    mags[..., :cutoff] = 1.0
    out = filtered_noise(mags, hop_length=hop, generator=torch.Generator().manual_seed(8), ir_length=256)
    freqs, psd = scipy.signal.welch(out[0].numpy().astype(np.float64), fs=2.0, nperseg=512)
    passband = psd[freqs < 0.8 * cutoff / (n_bands - 1)].mean()
    stopband = psd[freqs > 1.6 * cutoff / (n_bands - 1)].mean()
    assert 10 * np.log10(passband / stopband) > 30.0
    # Passband level matches the white noise's (uniform noise PSD = 1/3 per unit of fs/2).
    np.testing.assert_allclose(passband, 1.0 / 3.0, rtol=0.15)


def test_filtered_noise_follows_frame_gains():
    n_bands, hop, n_frames, length = 65, 64, 120, 128
    shape = _smooth_magnitudes(n_bands, seed=9, dtype=torch.float32)
    gains = torch.ones(n_frames)
    gains[60:] = 0.1
    seed = 10
    varying = filtered_noise(shape * gains[None, :, None], hop_length=hop, generator=seed, ir_length=length)
    steady = filtered_noise(shape.expand(1, n_frames, n_bands), hop_length=hop, generator=seed, ir_length=length)
    first = slice(10 * hop, 55 * hop)
    second = slice(60 * hop + length, 115 * hop)  # past the crossfade and the filter memory
    torch.testing.assert_close(varying[:, first], steady[:, first], rtol=0, atol=1e-5)
    torch.testing.assert_close(varying[:, second], 0.1 * steady[:, second], rtol=0, atol=1e-6)
    rms = lambda v: v.pow(2).mean().sqrt().item()  # noqa: E731
    np.testing.assert_allclose(rms(varying[:, second]) / rms(varying[:, first]), 0.1, rtol=0.15)


def test_filtered_noise_gradcheck():
    mags = torch.rand(1, 3, 5, dtype=torch.float64, requires_grad=True)
    func = lambda m: filtered_noise(m, hop_length=4, generator=torch.Generator().manual_seed(0))  # noqa: E731
    assert torch.autograd.gradcheck(func, (mags,))
    with pytest.raises(ValueError, match="magnitudes"):
        filtered_noise(torch.ones(4, 5), hop_length=4)
