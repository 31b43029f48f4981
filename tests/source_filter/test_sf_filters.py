import numpy as np
import pytest
import scipy.signal
import torch

from vocoder.analysis.world import mel_cepstrum, mel_cepstrum_to_envelope
from vocoder.dsp.filters import frequency_sampling_fir, ltv_fir, minimum_phase
from vocoder.source_filter.filters import (
    AllPoleFilter,
    CepstrumFilter,
    EnvelopeFilter,
    allpole_filter,
    cepstrum_filter,
    cepstrum_to_spectrum,
    envelope_filter,
    lpc_to_reflection,
    ltv_spectral_filter,
    minimum_phase_spectrum,
    reflection_filter,
    reflection_from_raw,
    reflection_to_lpc,
)

HOP = 80


def smooth_envelope(rng, n_frames, n_bins=257):
    """Power envelopes with formant-like bumps, (1, frames, bins)."""
    f = np.linspace(0, 1, n_bins)
    env = np.zeros((n_frames, n_bins))
    for centre in (0.08, 0.2, 0.35, 0.6):
        c = centre + 0.02 * rng.standard_normal((n_frames, 1))
        env += np.exp(-0.5 * ((f - c) / 0.02) ** 2) * rng.uniform(0.5, 2.0, (n_frames, 1))
    return torch.from_numpy((1e-3 * (env + 0.01))[None])


# --------------------------------------------------------------------------- LTV machinery


def test_ltv_spectral_filter_matches_ltv_fir_and_fftconvolve():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((2, 3000)))
    taps = torch.from_numpy(rng.standard_normal((2, 40, 120)))  # 120 <= 512 - 160 + 1: no wrap
    spectra = torch.fft.rfft(taps, n=512)
    torch.testing.assert_close(ltv_spectral_filter(x, spectra, hop_length=HOP),
                               ltv_fir(x, taps, hop_length=HOP), atol=1e-12, rtol=0)
    const = torch.fft.rfft(taps[:, :1], n=512).expand(2, 40, -1)
    y = ltv_spectral_filter(x, const, hop_length=HOP).numpy()
    for b in range(2):
        ref = scipy.signal.fftconvolve(x[b].numpy(), taps[b, 0].numpy())[:3000]
        np.testing.assert_allclose(y[b], ref, atol=1e-12)


def test_minimum_phase_spectrum_is_minimum_phase():
    rng = np.random.default_rng(1)
    env = smooth_envelope(rng, 3)
    log_mag = 0.5 * torch.log(env)
    h = minimum_phase_spectrum(log_mag, n_fft=512)
    np.testing.assert_allclose(h.abs().numpy(), torch.exp(log_mag).numpy(), rtol=1e-10)
    ir = torch.fft.irfft(h, n=512)
    ref = minimum_phase(torch.exp(log_mag), n_fft=512)
    torch.testing.assert_close(ir, ref, atol=1e-12, rtol=0)
    # Energy is front-loaded: more in the first 64 taps than any other 64-tap window.
    energy = ir.pow(2)
    first = energy[..., :64].sum(-1)
    assert torch.all(first > 0.9 * energy.sum(-1))


def test_envelope_filter_constant_equals_fftconvolve():
    rng = np.random.default_rng(2)
    env = smooth_envelope(rng, 1).expand(1, 30, -1)
    x = torch.from_numpy(rng.standard_normal((1, 2400)))
    y = envelope_filter(x, env, hop_length=HOP).numpy()[0]
    ir = torch.fft.irfft(minimum_phase_spectrum(0.5 * torch.log(env[0, 0]), n_fft=512), n=512).numpy()
    ref = scipy.signal.fftconvolve(x[0].numpy(), ir)[:2400]
    # The IR is kept to n_fft - 2 * hop taps per frame before wrapping; it has decayed there.
    np.testing.assert_allclose(y, ref, atol=1e-6 * np.abs(ref).max())
    lin = envelope_filter(x, env, hop_length=HOP, phase="linear").numpy()[0]
    fir = frequency_sampling_fir(torch.sqrt(env[0, 0]), ir_length=512).numpy()
    ref_lin = scipy.signal.fftconvolve(x[0].numpy(), fir)[256:256 + 2400]
    np.testing.assert_allclose(lin, ref_lin, atol=1e-10)
    mag = EnvelopeFilter(hop_length=HOP, kind="magnitude")(x, torch.sqrt(env))
    torch.testing.assert_close(mag, torch.from_numpy(y)[None], atol=1e-10, rtol=0)


@pytest.mark.parametrize("alpha", [0.0, 0.42])
def test_cepstrum_response_matches_world_mel_cepstrum(alpha):
    rng = np.random.default_rng(3)
    sp = smooth_envelope(rng, 4, n_bins=513)[0].numpy()
    mc = mel_cepstrum(sp, sample_rate=16000, order=30, alpha=alpha).astype(np.float64)
    env = mel_cepstrum_to_envelope(mc, sample_rate=16000, fft_size=1024, alpha=alpha)
    h = cepstrum_to_spectrum(torch.from_numpy(mc), n_fft=1024, alpha=alpha)
    np.testing.assert_allclose(np.log(h.abs().numpy() ** 2), np.log(env), atol=1e-5)
    # Minimum phase: the same as the homomorphic minimum phase of that magnitude.
    ir = torch.fft.irfft(h, n=1024)
    ref = minimum_phase(h.abs(), n_fft=1024)
    torch.testing.assert_close(ir, ref, atol=1e-6 * ir.abs().max().item(), rtol=0)


def test_cepstrum_filter_constant_equals_fftconvolve():
    rng = np.random.default_rng(4)
    c = torch.from_numpy(0.3 * rng.standard_normal(20) / np.arange(1, 21))
    x = torch.from_numpy(rng.standard_normal((1, 2000)))
    y = CepstrumFilter(hop_length=HOP, n_fft=512, alpha=0.42)(x, c.expand(1, 25, -1)).numpy()[0]
    ir = torch.fft.irfft(cepstrum_to_spectrum(c, n_fft=512, alpha=0.42), n=512).numpy()
    ref = scipy.signal.fftconvolve(x[0].numpy(), ir)[:2000]
    np.testing.assert_allclose(y, ref, atol=1e-6 * np.abs(ref).max())


# --------------------------------------------------------------------------- LPC


def test_step_up_and_down():
    k = torch.tensor([0.5, -0.3, 0.8, 0.2], dtype=torch.float64)
    a = reflection_to_lpc(k)
    # A(z) = 1 + 0.5 z^-1 for order 1; order 2: [k1 + k2 k1, k2].
    assert reflection_to_lpc(k[:2]).tolist() == pytest.approx([0.5 - 0.3 * 0.5, -0.3])
    torch.testing.assert_close(lpc_to_reflection(a), k)
    rng = np.random.default_rng(5)
    for _ in range(20):
        kk = torch.from_numpy(rng.uniform(-0.99, 0.99, 12))
        roots = np.roots(np.r_[1.0, reflection_to_lpc(kk).numpy()])
        assert np.abs(roots).max() < 1.0
        torch.testing.assert_close(lpc_to_reflection(reflection_to_lpc(kk)), kk, atol=1e-8, rtol=0)


@pytest.mark.parametrize("structure", ["lattice", "direct"])
@pytest.mark.parametrize("normalize", [False, True])
def test_constant_allpole_equals_lfilter(structure, normalize):
    pytest.importorskip("torchlpc") if structure == "direct" else pytest.importorskip("numba")
    rng = np.random.default_rng(6)
    k = torch.from_numpy(rng.uniform(-0.9, 0.9, 10))
    a = reflection_to_lpc(k).numpy()
    x = torch.from_numpy(rng.standard_normal((2, 3000)))
    y = reflection_filter(x, k.expand(2, 38, -1), hop_length=HOP, normalize_gain=normalize,
                          structure=structure).numpy()
    gain = np.prod(np.sqrt(1 - k.numpy() ** 2)) if normalize else 1.0
    ref = scipy.signal.lfilter([gain], np.r_[1.0, a], x.numpy(), axis=-1)
    np.testing.assert_allclose(y, ref, atol=1e-9 * np.abs(ref).max())
    if structure == "direct" and not normalize:
        y2 = allpole_filter(x, torch.from_numpy(a).expand(2, 38, -1), hop_length=HOP).numpy()
        np.testing.assert_allclose(y2, ref, atol=1e-9 * np.abs(ref).max())


def test_time_varying_coefficients_are_interpolated_per_sample():
    pytest.importorskip("numba")
    k_frames = torch.tensor([[[0.5], [-0.5], [0.2]]], dtype=torch.float64)
    f64 = {"dtype": torch.float64}
    per_sample = torch.cat([torch.linspace(0.5, -0.5, 5, **f64)[:-1], torch.linspace(-0.5, 0.2, 5, **f64)[:-1],
                            torch.full((4,), 0.2, **f64)]).reshape(1, 12, 1)
    x = torch.randn(1, 12, dtype=torch.float64)
    torch.testing.assert_close(reflection_filter(x, k_frames, hop_length=4),
                               reflection_filter(x, per_sample, hop_length=1))
    # A first-order recursion written out: y[t] = (x[t] - k[t] y[t-1]) with A = 1 + k z^-1.
    y, prev = [], 0.0
    for t in range(12):
        prev = x[0, t].item() - per_sample[0, t, 0].item() * prev
        y.append(prev)
    np.testing.assert_allclose(reflection_filter(x, k_frames, hop_length=4)[0].numpy(), y, atol=1e-12)


# --------------------------------------------------------------------------- stability


def test_lattice_is_bounded_for_any_network_output():
    pytest.importorskip("numba")
    torch.manual_seed(0)
    x = torch.randn(3, 8000)
    for scale in (1.0, 3.0, 30.0):
        raw = scale * torch.randn(3, 101, 24)
        y = AllPoleFilter(hop_length=HOP)(x, raw)
        assert torch.isfinite(y).all()
        bound = torch.sqrt(torch.cumsum(x.double() ** 2, dim=1))
        assert torch.all(y.abs().double() <= bound * (1 + 1e-6) + 1e-6)
    controls = AllPoleFilter(hop_length=HOP).get_controls(30.0 * torch.randn(2, 5, 24))
    assert controls["reflection"].abs().max() < 1.0 and torch.isfinite(controls["lpc"]).all()


def test_direct_form_is_stable_for_smooth_controls():
    pytest.importorskip("torchlpc")
    torch.manual_seed(1)
    x = torch.randn(2, 8000)
    raw = torch.cumsum(0.05 * torch.randn(2, 101, 12), dim=1)  # slowly varying
    y = reflection_filter(x, reflection_from_raw(raw), hop_length=HOP, normalize_gain=True, structure="direct")
    assert torch.isfinite(y).all() and y.abs().max() < 100


def test_fir_filters_finite_for_extreme_values():
    torch.manual_seed(2)
    x = torch.randn(2, 4000)
    env = torch.cat([torch.full((2, 10, 257), 1e30), torch.zeros(2, 10, 257),
                     torch.full((2, 10, 257), 1e-30), torch.rand(2, 21, 257) * 1e6], dim=1)
    for phase in ("minimum", "linear"):
        assert torch.isfinite(envelope_filter(x, env, hop_length=HOP, phase=phase)).all()
    cep = 100.0 * torch.randn(2, 51, 40)
    for alpha in (0.0, 0.42):
        y = cepstrum_filter(x, cep, hop_length=HOP, n_fft=512, alpha=alpha)
        assert torch.isfinite(y).all()


# --------------------------------------------------------------------------- gradients


def test_gradcheck_fir_filters():
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((1, 16))).requires_grad_()
    env = torch.from_numpy(rng.uniform(0.5, 2.0, (1, 4, 9))).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, e: envelope_filter(s, e, hop_length=4, n_fft=16), (x, env))
    assert torch.autograd.gradcheck(
        lambda s, e: envelope_filter(s, e, hop_length=4, n_fft=16, phase="linear"), (x, env))
    cep = torch.from_numpy(0.2 * rng.standard_normal((1, 4, 4))).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda s, c: cepstrum_filter(s, c, hop_length=4, n_fft=16, alpha=0.3), (x, cep))


@pytest.mark.parametrize("structure", ["lattice", "direct"])
def test_gradcheck_allpole(structure):
    pytest.importorskip("torchlpc") if structure == "direct" else pytest.importorskip("numba")
    rng = np.random.default_rng(8)
    x = torch.from_numpy(rng.standard_normal((2, 30))).requires_grad_()
    raw = torch.from_numpy(rng.standard_normal((2, 4, 3))).requires_grad_()
    fn = lambda s, r: reflection_filter(s, reflection_from_raw(r, max_reflection=0.9), hop_length=10,
                                        normalize_gain=True, structure=structure)
    assert torch.autograd.gradcheck(fn, (x, raw))
    k = torch.from_numpy(rng.uniform(-0.8, 0.8, (3, 5))).requires_grad_()
    assert torch.autograd.gradcheck(reflection_to_lpc, (k,))
    assert torch.autograd.gradcheck(lpc_to_reflection, (reflection_to_lpc(k.detach()).requires_grad_(),))


def test_bad_inputs():
    x = torch.randn(1, 100)
    with pytest.raises(ValueError, match="signal"):
        envelope_filter(torch.randn(100), torch.ones(1, 2, 9), hop_length=HOP)
    with pytest.raises(ValueError, match="n_fft"):
        ltv_spectral_filter(x, torch.ones(1, 2, 9, dtype=torch.complex64), hop_length=HOP)
    with pytest.raises(ValueError, match="alpha"):
        cepstrum_to_spectrum(torch.zeros(5), n_fft=64, alpha=1.0)
    with pytest.raises(ValueError, match="max_reflection"):
        reflection_from_raw(torch.zeros(3), max_reflection=1.0)
    with pytest.raises(ValueError, match="structure"):
        reflection_filter(x, torch.zeros(1, 2, 3), hop_length=HOP, structure="ladder")
