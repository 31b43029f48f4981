"""Tests for vocoder.effects: Reverb, ExpDecayReverb, FixedReverb, rt60_from_ir."""
import math

import numpy as np
import pytest
import scipy.signal
import torch

from vocoder.effects import (
    ExpDecayReverb,
    FixedReverb,
    Reverb,
    rt60_from_ir,
    synthetic_rir,
)

SR = 16000


def _decaying_noise(rt60_s, *, sample_rate=SR, duration_s=1.0, seed=0, batch=()):
    g = torch.Generator().manual_seed(seed)
    n = int(duration_s * sample_rate)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    return torch.randn(*batch, n, generator=g, dtype=torch.float64) * torch.exp(-t * 3 * math.log(10) / rt60_s)


# --------------------------------------------------------------------------- rt60_from_ir
@pytest.mark.parametrize("rt60", [0.5, 0.3, 1.2])
@pytest.mark.parametrize("fit_range_db", [(-5.0, -25.0), (-5.0, -35.0)])
def test_rt60_from_ir_measures_exponential_decay(rt60, fit_range_db):
    ir = _decaying_noise(rt60, duration_s=max(1.0, 1.5 * rt60), seed=int(rt60 * 10))
    measured = rt60_from_ir(ir, sample_rate=SR, fit_range_db=fit_range_db)
    assert measured.shape == ()
    assert abs(measured.item() - rt60) < 0.05 * rt60


def test_rt60_from_ir_batched_and_undefined_cases():
    irs = torch.stack([_decaying_noise(0.5, seed=1), _decaying_noise(0.25, seed=2)]).float()
    measured = rt60_from_ir(irs.reshape(2, 1, -1), sample_rate=SR)
    assert measured.shape == (2, 1)
    np.testing.assert_allclose(measured[:, 0].numpy(), [0.5, 0.25], rtol=0.05)
    impulse = torch.zeros(100)
    impulse[0] = 1.0
    assert torch.isnan(rt60_from_ir(impulse, sample_rate=SR))
    assert torch.isnan(rt60_from_ir(torch.zeros(100), sample_rate=SR))
    with pytest.raises(ValueError, match="fit_range_db"):
        rt60_from_ir(impulse, sample_rate=SR, fit_range_db=(-25.0, -5.0))
    with pytest.raises(ValueError, match="ir"):
        rt60_from_ir(torch.zeros(1), sample_rate=SR)


# --------------------------------------------------------------------------------- Reverb
def test_reverb_initialisation():
    reverb = Reverb(sample_rate=SR)
    assert reverb.ir_length == SR and reverb.ir.shape == (SR,)
    wet = reverb.wet_impulse_response()
    assert wet[0].item() == 0.0
    dry = 1.0 - reverb.mix
    wet_db = 10 * torch.log10(wet.pow(2).sum() / dry**2).item()
    assert abs(wet_db - (-20.0)) < 0.01
    assert abs(rt60_from_ir(wet, sample_rate=SR).item() - 0.5) < 0.025
    assert reverb.ir.requires_grad and reverb.mix_logit.requires_grad
    assert Reverb(sample_rate=SR, duration_s=0.25).ir_length == 4000
    assert Reverb(sample_rate=SR, ir_length=123).ir_length == 123
    frozen = Reverb(sample_rate=SR, ir_length=64, trainable=False, trainable_mix=False)
    assert not frozen.ir.requires_grad and not frozen.mix_logit.requires_grad
    assert rt60_from_ir(Reverb(sample_rate=SR, rt60_s=0.2).wet_impulse_response(), sample_rate=SR).item() == pytest.approx(0.2, rel=0.05)


def test_reverb_rejects_bad_arguments():
    with pytest.raises(ValueError, match="not both"):
        Reverb(sample_rate=SR, duration_s=0.5, ir_length=100)
    with pytest.raises(ValueError, match="init"):
        Reverb(sample_rate=SR, init="gaussian")
    with pytest.raises(ValueError, match="sample_rate"):
        Reverb(sample_rate=0)
    with pytest.raises(ValueError, match="at least 2"):
        Reverb(sample_rate=SR, ir_length=1)
    with pytest.raises(ValueError, match="audio"):
        Reverb(sample_rate=SR, ir_length=8)(torch.zeros(2, 0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("module_cls", [Reverb, ExpDecayReverb])
def test_reverb_is_causal_convolution_with_its_impulse_response(module_cls, dtype):
    module = module_cls(sample_rate=SR, duration_s=0.1).to(dtype)
    g = torch.Generator().manual_seed(3)
    audio = torch.randn(3, 4000, generator=g, dtype=torch.float64).to(dtype)
    ir = module.impulse_response().detach()
    assert ir.shape == (1600,) and ir.dtype == dtype
    ref = scipy.signal.fftconvolve(audio.double().numpy(), ir.double().numpy()[None], axes=-1)
    tol = 2e-5 if dtype == torch.float32 else 1e-10
    out = module(audio).detach()
    assert out.shape == audio.shape and out.dtype == dtype
    np.testing.assert_allclose(out.double().numpy(), ref[:, :4000], atol=tol * np.abs(ref).max())
    with_tail = module(audio, tail=True).detach()
    assert with_tail.shape == (3, 4000 + 1600 - 1)
    np.testing.assert_allclose(with_tail.double().numpy(), ref, atol=tol * np.abs(ref).max())
    # An impulse in gives the effective impulse response out.
    impulse = torch.zeros(1, 1600, dtype=dtype)
    impulse[0, 0] = 1.0
    torch.testing.assert_close(module(impulse)[0].detach(), ir, rtol=0, atol=tol)


@pytest.mark.parametrize("module_cls", [Reverb, ExpDecayReverb])
def test_reverb_batch_consistency_and_shapes(module_cls):
    module = module_cls(sample_rate=8000, ir_length=500)
    audio = torch.randn(2, 3, 1000, generator=torch.Generator().manual_seed(4))
    out = module(audio)
    assert out.shape == audio.shape
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(module(audio[i, j]), out[i, j], rtol=1e-5, atol=1e-6)


def test_reverb_dry_and_wet_paths():
    reverb = Reverb(sample_rate=SR, ir_length=256, init="zeros")
    audio = torch.randn(2, 500, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(reverb(audio), (1 - reverb.mix) * audio)
    with torch.no_grad():
        reverb.ir.fill_(1.0)  # ir[0] is ignored: the direct path is the dry term only
    ir = reverb.impulse_response()
    assert ir[0].item() == pytest.approx(1 - reverb.mix.item())
    torch.testing.assert_close(ir[1:], reverb.mix.expand(255))


def test_reverb_gradients():
    reverb = Reverb(sample_rate=SR, ir_length=64).double()
    audio = torch.randn(2, 100, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    reverb(audio).pow(2).sum().backward()
    assert torch.isfinite(reverb.ir.grad).all() and torch.isfinite(reverb.mix_logit.grad)
    assert reverb.ir.grad[0] == 0 and reverb.ir.grad[1:].abs().min() > 0
    assert reverb.mix_logit.grad != 0

    small = Reverb(sample_rate=SR, ir_length=6).double()
    x = torch.randn(2, 9, dtype=torch.float64, requires_grad=True)

    def run(inp, ir, logit):
        return torch.func.functional_call(small, {"ir": ir, "mix_logit": logit}, (inp,), {"tail": True})

    args = (x, small.ir.detach().clone().requires_grad_(), small.mix_logit.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(run, args)


def test_reverb_state_dict_round_trip():
    a = Reverb(sample_rate=SR, ir_length=100, seed=1)
    b = Reverb(sample_rate=SR, ir_length=100, seed=2)
    assert not torch.equal(a.ir, b.ir)
    assert set(a.state_dict()) == {"ir", "mix_logit"}
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.impulse_response(), b.impulse_response())



# ---------------------------------------------------------------------------- FixedReverb
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fixed_reverb_plays_an_exported_impulse_response(dtype):
    learned = Reverb(sample_rate=SR, ir_length=700, seed=3)
    with torch.no_grad():
        fixed = FixedReverb(learned.impulse_response(), sample_rate=SR)
    assert fixed.ir_length == 700 and not list(fixed.parameters()) and set(fixed.state_dict()) == {"ir"}
    audio = torch.randn(2, 3000, generator=torch.Generator().manual_seed(8), dtype=torch.float64).to(dtype)
    out = fixed(audio)
    assert out.dtype == dtype and out.shape == audio.shape
    with torch.no_grad():
        torch.testing.assert_close(out.float(), learned(audio.float()), rtol=0, atol=1e-5)
    ref = scipy.signal.fftconvolve(audio.double().numpy(), fixed.ir.double().numpy()[None], axes=-1)
    np.testing.assert_allclose(fixed(audio, tail=True).double().numpy(), ref, atol=2e-5 * np.abs(ref).max())
    torch.testing.assert_close(fixed.wet_impulse_response()[1:], fixed.impulse_response()[1:])
    assert fixed.wet_impulse_response()[0] == 0


def test_fixed_reverb_edge_cases():
    gain = FixedReverb(torch.tensor([0.5]), sample_rate=SR)  # a one-sample IR is a gain
    x = torch.randn(1, 50)
    torch.testing.assert_close(gain(x), 0.5 * x)
    assert gain(x, tail=True).shape == (1, 50)
    for bad in (torch.zeros(0), torch.tensor([1.0, float("nan")])):
        with pytest.raises(ValueError, match="FixedReverb"):
            FixedReverb(bad, sample_rate=SR)


# ------------------------------------------------------------------------- ExpDecayReverb
def test_exp_decay_reverb_initialisation_and_formula():
    reverb = ExpDecayReverb(sample_rate=SR)
    assert reverb.ir_length == SR
    assert reverb.rt60_s.item() == pytest.approx(0.5)
    wet = reverb.wet_impulse_response()
    assert wet[0].item() == 0.0
    assert 10 * torch.log10(wet.pow(2).sum()).item() == pytest.approx(-20.0, abs=0.01)
    assert abs(rt60_from_ir(wet, sample_rate=SR).item() - 0.5) < 0.025
    t = torch.arange(SR) / SR
    torch.testing.assert_close(wet, reverb.gain * reverb.noise * torch.exp(-reverb.decay * t))
    ir = reverb.impulse_response()
    assert ir[0].item() == 1.0
    torch.testing.assert_close(ir[1:], wet[1:])
    assert set(reverb.state_dict()) == {"noise", "log_gain", "log_decay"}
    assert torch.equal(ExpDecayReverb(sample_rate=SR, seed=3).noise, ExpDecayReverb(sample_rate=SR, seed=3).noise)
    assert not torch.equal(ExpDecayReverb(sample_rate=SR, seed=3).noise, reverb.noise)
    frozen = ExpDecayReverb(sample_rate=SR, ir_length=10, trainable=False)
    assert not frozen.log_gain.requires_grad and not frozen.log_decay.requires_grad
    with pytest.raises(ValueError, match="rt60_s"):
        ExpDecayReverb(sample_rate=SR, rt60_s=0.0)


def test_exp_decay_reverb_gradcheck():
    module = ExpDecayReverb(sample_rate=100, ir_length=8).double()
    x = torch.randn(2, 10, dtype=torch.float64, requires_grad=True)

    def run(inp, log_gain, log_decay):
        params = {"log_gain": log_gain, "log_decay": log_decay}
        return torch.func.functional_call(module, params, (inp,), {"tail": True})

    args = (x, module.log_gain.detach().clone().requires_grad_(), module.log_decay.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(run, args)


def test_exp_decay_reverb_learns_decay_and_gain():
    sample_rate, ir_length = 4000, 2000
    target = ExpDecayReverb(sample_rate=sample_rate, ir_length=ir_length, rt60_s=0.2, wet_db=-6.0, trainable=False)
    model = ExpDecayReverb(sample_rate=sample_rate, ir_length=ir_length, rt60_s=0.4, wet_db=-15.0)
    audio = torch.randn(2, 3000, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        wanted = target(audio)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        optimiser.zero_grad()
        loss = (model(audio) - wanted).pow(2).mean()
        loss.backward()
        optimiser.step()
    assert model.rt60_s.item() == pytest.approx(0.2, rel=0.05)
    assert model.gain.item() == pytest.approx(target.gain.item(), rel=0.05)



def test_exp_decay_reverb_trainable_noise_and_lr_scale():
    base = ExpDecayReverb(sample_rate=SR, duration_s=0.25, seed=4)
    free = ExpDecayReverb(sample_rate=SR, duration_s=0.25, seed=4, trainable_noise=True, lr_scale=10.0)
    # the same impulse response and the same state-dict keys, with or without the options
    torch.testing.assert_close(free.wet_impulse_response(), base.wet_impulse_response())
    assert free.rt60_s.item() == pytest.approx(0.5) and free.log_decay.item() == pytest.approx(base.log_decay.item() / 10)
    assert set(free.state_dict()) == set(base.state_dict()) == {"noise", "log_gain", "log_decay"}
    assert isinstance(free.noise, torch.nn.Parameter) and not isinstance(base.noise, torch.nn.Parameter)
    fixed_noise = ExpDecayReverb(sample_rate=SR, duration_s=0.25, seed=9, trainable_noise=True)
    fixed_noise.load_state_dict(base.state_dict())  # a buffer's checkpoint loads into the parameter
    torch.testing.assert_close(fixed_noise.impulse_response(), base.impulse_response())
    # sample 0 stays the direct path even when the noise there is changed
    with torch.no_grad():
        free.noise[0] = 5.0
    assert free.wet_impulse_response()[0].item() == 0.0 and free.impulse_response()[0].item() == 1.0
    audio = torch.randn(2, 1000, generator=torch.Generator().manual_seed(2))
    free(audio).pow(2).sum().backward()
    assert free.noise.grad[0] == 0 and free.noise.grad[1:].abs().max() > 0
    # one Adam step moves the log-decay by about lr_scale * lr
    before = math.log(free.decay.item())
    torch.optim.Adam(free.parameters(), lr=1e-3).step()
    assert abs(math.log(free.decay.item()) - before) == pytest.approx(1e-2, rel=1e-3)
    with pytest.raises(ValueError, match="lr_scale"):
        ExpDecayReverb(sample_rate=SR, lr_scale=0.0)


def test_exp_decay_reverb_with_trainable_noise_learns_a_room_from_spectra():
    # Another noise realisation than the room's: only a spectral loss can compare them.
    from vocoder.dsp.filters import fft_convolve
    from vocoder.losses import multiscale_spectral_loss

    sample_rate = 4000
    room = synthetic_rir(0.2, sample_rate, duration_s=0.5, drr_db=3.0, seed=5)
    g = torch.Generator().manual_seed(8)
    audio = torch.randn(4, 3000, generator=g) * (torch.rand(4, 12, generator=g) > 0.5).float().repeat_interleave(250, 1)
    target = fft_convolve(audio, room, mode="causal")
    model = ExpDecayReverb(sample_rate=sample_rate, duration_s=0.5, rt60_s=0.08, wet_db=-15.0, trainable_noise=True,
                           lr_scale=10.0, seed=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(120):
        optimiser.zero_grad()
        multiscale_spectral_loss(model(audio), target, fft_sizes=(512, 256, 128, 64)).backward()
        optimiser.step()
    true_rt60 = rt60_from_ir(room[1:], sample_rate=sample_rate).item()
    assert rt60_from_ir(model.wet_impulse_response().detach(), sample_rate=sample_rate).item() == pytest.approx(
        true_rt60, rel=0.15)


def test_free_reverb_taps_fill_with_an_adam_floor():
    # Reverb's documented limitation: one Adam step moves every tap by ~lr, a flat floor.
    reverb = Reverb(sample_rate=SR, rt60_s=0.2)
    assert rt60_from_ir(reverb.wet_impulse_response().detach(), sample_rate=SR).item() == pytest.approx(0.2, rel=0.05)
    audio = torch.randn(2, 4000, generator=torch.Generator().manual_seed(3))
    reverb(audio).pow(2).sum().backward()
    torch.optim.Adam([reverb.ir], lr=2e-3).step()
    assert rt60_from_ir(reverb.wet_impulse_response().detach(), sample_rate=SR).item() > 2.0

# -------------------------------------------------------------------------- synthetic_rir
@pytest.mark.parametrize("rt60", [0.2, 0.5, 0.8, 1.2])
@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_rir_has_the_requested_rt60(rt60, seed):
    wet = synthetic_rir(rt60, SR, direct=False, seed=seed)
    assert wet.dtype == torch.float32 and wet.shape == (round(rt60 * SR),)
    assert wet[0].item() == 0.0
    assert rt60_from_ir(wet, sample_rate=SR).item() == pytest.approx(rt60, rel=0.05)
    assert rt60_from_ir(wet, sample_rate=SR, fit_range_db=(-5.0, -35.0)).item() == pytest.approx(rt60, rel=0.05)


def test_synthetic_rir_direct_path_level_and_determinism():
    ir = synthetic_rir(0.5, SR, seed=3, drr_db=6.0, predelay_s=0.01, duration_s=0.8)
    assert ir.shape == (int(0.8 * SR),) and ir[0].item() == 1.0
    assert torch.count_nonzero(ir[1:160]) == 0 and ir[160].item() != 0.0  # 10 ms predelay
    tail_energy = ir[1:].double().pow(2).sum().item()
    assert 10 * math.log10(1.0 / tail_energy) == pytest.approx(6.0, abs=1e-4)
    torch.testing.assert_close(ir, synthetic_rir(0.5, SR, seed=3, drr_db=6.0, predelay_s=0.01, duration_s=0.8))
    assert not torch.equal(ir, synthetic_rir(0.5, SR, seed=4, drr_db=6.0, predelay_s=0.01, duration_s=0.8))
    wet = synthetic_rir(0.5, SR, seed=3, drr_db=6.0, predelay_s=0.01, duration_s=0.8, direct=False)
    torch.testing.assert_close(wet[1:], ir[1:])
    # the envelope falls 60 dB per RT60 from the start of the tail
    assert rt60_from_ir(wet[160:], sample_rate=SR).item() == pytest.approx(0.5, rel=0.05)
    with pytest.raises(ValueError, match="rt60_s"):
        synthetic_rir(0.0, SR)
    with pytest.raises(ValueError, match="no room"):
        synthetic_rir(0.5, SR, duration_s=0.01, predelay_s=0.02)
