import math

import numpy as np
import pytest
import torch

from vocoder.source_filter.excitation import (
    RD_RANGE,
    combtooth,
    fill_unvoiced_f0,
    glottal_flow_derivative,
    harmonic_count,
    lf_harmonics,
    lf_parameters,
    lf_waveform,
    mix_excitation,
    pulse_train,
    sawtooth,
    white_noise,
)

SR, HOP = 16000, 80


def const_f0(value, frames=60, dtype=torch.float64):
    return torch.full((1, frames), float(value), dtype=dtype)


def phase_of(f0, n):
    return 2 * np.pi * f0 * np.arange(n) / SR


def n_below(f0):
    return int(math.ceil(SR / 2 / f0) - 1)


# --------------------------------------------------------------------------- references


def test_pulse_train_matches_cosine_series():
    f0 = 217.3
    n = 60 * HOP
    phi = phase_of(f0, n)
    k_max = n_below(f0)
    series = sum(np.cos(k * phi) for k in range(1, k_max + 1))
    y = pulse_train(const_f0(f0), sample_rate=SR, hop_length=HOP, normalize="none")[0].numpy()
    np.testing.assert_allclose(y, series, atol=1e-8)
    peak = pulse_train(const_f0(f0), sample_rate=SR, hop_length=HOP)[0].numpy()
    np.testing.assert_allclose(peak, series / k_max, atol=1e-10)
    assert peak.max() == pytest.approx(1.0, abs=1e-9)
    white = pulse_train(const_f0(f0), sample_rate=SR, hop_length=HOP, normalize="white")[0].numpy()
    np.testing.assert_allclose(white, series * 2 * math.sqrt(f0 / SR), atol=1e-9)


def test_sawtooth_matches_band_limited_fourier_series():
    for f0 in (217.3, 1234.5):
        n = 60 * HOP
        phi = phase_of(f0, n)
        series = -(2 / np.pi) * sum(np.sin(k * phi) / k for k in range(1, n_below(f0) + 1))
        y = sawtooth(const_f0(f0), sample_rate=SR, hop_length=HOP)[0].numpy()
        np.testing.assert_allclose(y, series, atol=1e-5)
        y32 = sawtooth(const_f0(f0, dtype=torch.float32), sample_rate=SR, hop_length=HOP)[0].numpy()
        np.testing.assert_allclose(y32, series, atol=2e-3)
    # Rising ramp phi / pi - 1 away from the jump (Gibbs ripple aside).
    f0 = 50.0
    y = sawtooth(const_f0(f0), sample_rate=SR, hop_length=HOP)[0].numpy()
    ramp = (phase_of(f0, y.size) % (2 * np.pi)) / np.pi - 1
    away = np.abs(ramp) < 0.8
    assert np.abs(y - ramp)[away].max() < 0.02


def test_combtooth_is_the_periodic_sinc():
    for f0 in (100.0, 200.0):
        y = combtooth(const_f0(f0, 40), sample_rate=SR, hop_length=HOP)[0].numpy()
        n = np.arange(y.size)
        phi = phase_of(f0, y.size)
        series = f0 / SR * (1 + 2 * sum(np.cos(k * phi) for k in range(1, n_below(f0) + 1)))
        np.testing.assert_allclose(y, series, atol=1e-9)
        # DDSP-SVC's truncated sinc comb: sinc(sr * tau), tau the time to the nearest pulse.
        cycles = f0 * n / SR
        truncated = np.sinc(SR * (cycles - np.round(cycles)) / f0)
        assert np.abs(y - truncated).max() <= f0 / SR + 1e-6
        assert np.corrcoef(y, truncated)[0, 1] > 0.99


@pytest.mark.parametrize("f0", [3100.0, 2700.0, 7000.0, 440.0])
@pytest.mark.parametrize("source", ["pulse", "comb", "saw", "lf"])
def test_no_energy_off_the_harmonics_below_nyquist(f0, source):
    # 3200 samples hold a whole number of periods of each f0 (bins 100 * f0 / 500 apart).
    n = 3200
    f0_t = const_f0(f0, frames=(n + 2 * 800) // HOP)
    fn = {
        "pulse": lambda: pulse_train(f0_t, sample_rate=SR, hop_length=HOP),
        "comb": lambda: combtooth(f0_t, sample_rate=SR, hop_length=HOP),
        "saw": lambda: sawtooth(f0_t, sample_rate=SR, hop_length=HOP),
        "lf": lambda: glottal_flow_derivative(f0_t, 1.2, sample_rate=SR, hop_length=HOP),
    }[source]
    y = fn()[0, 800:800 + n].numpy()
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / SR)
    harmonic = np.isclose(freqs[:, None], f0 * np.arange(0, n_below(f0) + 1)[None, :]).any(axis=1)
    assert harmonic.sum() == n_below(f0) + 1
    assert power[~harmonic].sum() < 1e-18 * power.sum()
    assert power[freqs == f0] > 1e-3 * power.sum()


def test_harmonic_count_and_fill():
    f0 = torch.tensor([[0.0, 0.0, 100.0, 0.0, 200.0, 0.0]])
    filled = fill_unvoiced_f0(f0)
    assert filled.tolist() == [[100.0, 100.0, 100.0, 100.0, 200.0, 200.0]]
    assert fill_unvoiced_f0(torch.zeros(1, 3)).tolist() == [[0.0, 0.0, 0.0]]
    count = harmonic_count(torch.tensor([[100.0, 100.0, 3100.0, 0.0]]), sample_rate=SR)
    # Segment n spans frames n and n + 1 and uses the larger f0 of the two.
    assert count.tolist() == [[79.0, 2.0, 2.0, 0.0]]


def test_unvoiced_frames_are_silent_and_gradients_finite():
    f0 = torch.tensor([[0.0, 0.0, 150.0, 160.0, 170.0, 0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    rd = torch.full((1, 8), 1.0, dtype=torch.float64, requires_grad=True)
    outs = [pulse_train(f0, sample_rate=SR, hop_length=HOP, normalize="white"),
            combtooth(f0, sample_rate=SR, hop_length=HOP),
            sawtooth(f0, sample_rate=SR, hop_length=HOP),
            glottal_flow_derivative(f0, rd, sample_rate=SR, hop_length=HOP)]
    for y in outs:
        assert torch.all(y[0, :HOP] == 0) and torch.all(y[0, 6 * HOP:] == 0)
        assert y[0, 2 * HOP:5 * HOP].abs().max() > 1e-3
    sum(y.pow(2).sum() for y in outs).backward()
    assert torch.isfinite(f0.grad).all() and torch.isfinite(rd.grad).all()
    assert f0.grad[0, 2:5].abs().sum() > 0 and rd.grad[0, 2:5].abs().sum() > 0


def test_batch_consistency():
    f0 = torch.tensor([[120.0] * 10, [0.0] * 3 + [300.0] * 7], dtype=torch.float64)
    for fn in (pulse_train, combtooth, sawtooth):
        both = fn(f0, sample_rate=SR, hop_length=HOP, **({"n_harmonics": 66} if fn is sawtooth else {}))
        for b in range(2):
            one = fn(f0[b:b + 1], sample_rate=SR, hop_length=HOP, **({"n_harmonics": 66} if fn is sawtooth else {}))
            torch.testing.assert_close(both[b:b + 1], one, atol=1e-10, rtol=0)


def test_gradcheck_pulse_sources():
    # All voiced: at f0 = 0 the voicing decision is a step, so no finite difference exists.
    f0 = torch.tensor([[300.0, 320.0, 310.0, 350.0, 340.0]], dtype=torch.float64, requires_grad=True)
    for fn in (lambda f: pulse_train(f, sample_rate=4000, hop_length=4, normalize="white"),
               lambda f: combtooth(f, sample_rate=4000, hop_length=4),
               lambda f: sawtooth(f, sample_rate=4000, hop_length=4)):
        assert torch.autograd.gradcheck(fn, (f0,))


# --------------------------------------------------------------------------- LF model


@pytest.mark.parametrize("rd", [0.3, 0.8, 1.5, 2.7])
def test_lf_period_integrates_to_zero_and_coefficients_match_fft(rd):
    n = 1 << 16
    t = torch.arange(n, dtype=torch.float64) / n
    e = lf_waveform(t, torch.tensor(rd)).numpy()
    p = lf_parameters(torch.tensor(rd))
    # Zero net flow over a period; the main excitation E(te) = -Ee = -1.
    assert abs(e.mean()) < 1e-7 * np.abs(e).mean()  # quadrature error of the corner at te
    te = float(p["te"])
    assert lf_waveform(torch.tensor([te], dtype=torch.float64), torch.tensor(rd)).item() == pytest.approx(-1.0, abs=1e-9)
    # Continuity at te and at the period boundary.
    assert abs(e[0]) < 1e-12 and abs(lf_waveform(torch.tensor([1 - 1e-12], dtype=torch.float64), torch.tensor(rd)).item()) < 1e-9
    fft = np.fft.rfft(e) / n
    coeffs = lf_harmonics(torch.tensor(rd), 60).numpy()
    np.testing.assert_allclose(coeffs, fft[1:61], atol=1e-8)


def test_lf_shape_changes_monotonically_with_rd():
    rd = torch.linspace(*RD_RANGE, 13)
    c = lf_harmonics(rd, 40).abs()
    h1_h2 = 20 * torch.log10(c[:, 0] / c[:, 1])
    high = (c[:, 9:] ** 2).sum(-1) / (c ** 2).sum(-1)
    assert torch.all(torch.diff(h1_h2) > 0)  # H1-H2 grows with Rd
    assert torch.all(torch.diff(high) < 0)  # spectral tilt steepens with Rd
    p = lf_parameters(rd)
    assert torch.all(torch.diff(p["te"]) > 0) or torch.all(torch.diff(p["ta"]) > 0)
    assert torch.all(torch.diff(p["ta"]) > 0)


def test_lf_rendered_matches_continuous_waveform_at_low_f0():
    f0 = const_f0(100.0, 40)
    y = glottal_flow_derivative(f0, 1.0, sample_rate=SR, hop_length=HOP)[0].numpy()
    cycles = torch.from_numpy(100.0 * np.arange(y.size) / SR)
    ref = lf_waveform(cycles, torch.tensor(1.0)).numpy()
    assert np.corrcoef(y, ref)[0, 1] > 0.9999


def test_lf_gradients_wrt_rd():
    rd = torch.tensor([0.4, 1.0, 2.2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: torch.view_as_real(lf_harmonics(r, 6)), (rd,))
    f0 = torch.tensor([[400.0, 410.0, 420.0]], dtype=torch.float64, requires_grad=True)
    rd2 = torch.tensor([[0.6, 1.1, 1.8]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda f, r: glottal_flow_derivative(f, r, sample_rate=4000, hop_length=4), (f0, rd2))


# --------------------------------------------------------------------------- noise, mixing


def test_white_noise_is_seeded_and_scaled():
    a = white_noise(2, 50000, generator=3)
    b = white_noise(2, 50000, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert a.std().item() == pytest.approx(1.0, abs=0.02)
    u = white_noise(1, 50000, distribution="uniform", generator=1)
    assert u.min() >= -1 and u.max() < 1 and u.std().item() == pytest.approx(1 / math.sqrt(3), abs=0.02)
    with pytest.raises(ValueError, match="distribution"):
        white_noise(1, 10, distribution="pink")


def test_mix_excitation_extremes_and_power_complement():
    f0 = const_f0(150.0, 50)
    harm = pulse_train(f0, sample_rate=SR, hop_length=HOP, normalize="white")
    noise = white_noise(1, harm.shape[1], generator=0, dtype=torch.float64)
    ap0 = torch.zeros(1, 50, 9, dtype=torch.float64)
    torch.testing.assert_close(mix_excitation(harm, noise, ap0, hop_length=HOP), harm, atol=1e-6, rtol=0)
    ap1 = torch.ones_like(ap0)
    torch.testing.assert_close(mix_excitation(harm, noise, ap1, hop_length=HOP), noise, atol=1e-4, rtol=0)
    half = torch.full_like(ap0, math.sqrt(0.5))
    mixed = mix_excitation(harm, noise, half, hop_length=HOP)[0, 800:-800]
    expected = 0.5 * (harm[0, 800:-800].pow(2).mean() + noise[0, 800:-800].pow(2).mean())
    assert mixed.pow(2).mean().item() == pytest.approx(expected.item(), rel=0.1)


def test_bad_inputs():
    with pytest.raises(ValueError, match="f0_hz"):
        pulse_train(torch.zeros(10), sample_rate=SR, hop_length=HOP)
    with pytest.raises(ValueError, match="normalize"):
        pulse_train(const_f0(100.0), sample_rate=SR, hop_length=HOP, normalize="rms")
    with pytest.raises(ValueError, match="rd"):
        glottal_flow_derivative(const_f0(100.0), torch.ones(1, 3), sample_rate=SR, hop_length=HOP)
