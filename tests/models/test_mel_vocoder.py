"""The mel vocoder (mel_ddsp): registry, shapes, gradients, statistics buffers, the f0
source (teacher forcing / prediction), the mel prior's level, the trainer's aux-loss hook
and an f0 head that learns a tone."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vocoder.dsp.spectral import mel_spectrogram
from vocoder.models import available_models, build_model, get_model_class
from vocoder.models.mel_vocoder import MelDDSP, interpolation_matrix

SR, HOP = 16000, 160
MEL = dict(n_mels=40, mel_n_fft=512, mel_f_min=60.0, mel_f_max=7600.0)
TINY = dict(sample_rate=SR, hop_length=HOP, **MEL, channels=32, conv_layers=1, kernel_size=3, gru_size=16,
            n_aperiodicity=8, n_f0_bins=48, f0_min=60.0, f0_max=480.0)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**kw):
    torch.manual_seed(0)
    return build_model("mel_ddsp", **{**TINY, **kw})


def tone(f0=200.0, seconds=0.4, seed=0):
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(0.45 * SR / f0)))
    x = 0.3 * x / np.abs(x).max() + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)
    return torch.from_numpy(x.astype(np.float32))


def log_mel(audio):
    frames = math.ceil(audio.shape[-1] / HOP)
    return mel_spectrogram(audio, sample_rate=SR, n_fft=MEL["mel_n_fft"], hop_length=HOP, n_mels=MEL["n_mels"],
                           f_min=MEL["mel_f_min"], f_max=MEL["mel_f_max"], power=1.0, log="log10", eps=1e-10,
                           pad_mode="reflect", frames=frames)


def inputs(batch=2, frames=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    vuv = torch.ones(batch, frames)
    vuv[:, : frames // 4] = 0.0
    f0 = (120.0 + 80.0 * torch.rand(batch, 1, generator=g)) * vuv
    return {"mel": -2.0 + torch.randn(batch, frames, MEL["n_mels"], generator=g), "f0": f0, "vuv": vuv}


def test_registry_and_streams():
    assert "mel_ddsp" in available_models()
    assert get_model_class("mel_ddsp") is MelDDSP
    model = tiny()
    assert model.input_streams == ("mel", "f0", "vuv")
    assert model.required_streams == ("mel",)
    assert tiny(inference_f0="dump").required_streams == ("mel", "f0", "vuv")


def test_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="inference_f0"):
        tiny(inference_f0="harvest")
    with pytest.raises(ValueError, match="f0_min"):
        tiny(f0_min=500.0, f0_max=100.0)
    model = tiny()
    with pytest.raises(ValueError, match=r"mel must be \(batch, frames, 40\)"):
        model({"mel": torch.zeros(1, 10, 80)})
    model.eval()
    with pytest.raises(ValueError, match="needs an `f0` input"):
        model({"mel": torch.zeros(1, 10, 40)}, f0_source="dump")


def test_shapes_train_and_eval():
    model = tiny()
    x = inputs()
    out = model(x, generator=torch.Generator().manual_seed(0))
    n_bins = model.synthesis_n_fft // 2 + 1
    assert out["audio"].shape == (2, 20 * HOP)
    assert out["log_amplitude"].shape == out["aperiodicity"].shape == (2, 20, n_bins)
    assert out["f0_hz_predicted"].shape == out["vuv_predicted"].shape == (2, 20)
    assert out["aux_loss"].dim() == 0 and torch.isfinite(out["aux_loss"])
    assert torch.allclose(out["aux_loss"], out["f0_loss"] + out["vuv_loss"])
    assert ((out["aperiodicity"] > 0) & (out["aperiodicity"] < 1)).all()
    pred = out["f0_hz_predicted"]
    assert ((pred >= 60.0 * 0.999) & (pred <= 480.0 * 1.001)).all()
    model.eval()
    with torch.no_grad():
        out = model({"mel": x["mel"]}, generator=0)
    assert out["audio"].shape == (2, 20 * HOP) and "aux_loss" not in out
    assert torch.isfinite(out["audio"]).all()


def test_f0_source_teacher_forcing_and_prediction():
    model = tiny()
    x = inputs()
    out = model(x, generator=0)  # training mode: the dump's f0 plays
    assert torch.equal(out["f0_hz"], x["f0"] * (x["vuv"] > 0.5))
    model.eval()
    with torch.no_grad():
        out = model(x, generator=0)  # eval: the predicted f0, gated by predicted voicing
        voiced = out["vuv_predicted"] > 0.5
        assert torch.equal(out["f0_hz"], out["f0_hz_predicted"] * voiced)
        forced = model(x, generator=0, f0_source="dump")
    assert torch.equal(forced["f0_hz"], x["f0"])
    assert tiny(teacher_forcing=False)(x, generator=0)["f0_hz"].ne(x["f0"]).any()


def test_gradients_finite_and_reach_every_head():
    model = tiny(reverb=True, reverb_duration_s=0.02)
    out = model(inputs(), generator=[torch.Generator().manual_seed(i) for i in range(2)])
    (out["audio"].abs().mean() + out["aux_loss"]).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    for head in ("envelope_head", "aperiodicity_head", "f0_head", "input_conv"):
        assert getattr(model, head).weight.grad.abs().sum() > 0, head


def test_per_row_generators_match_single_rows():
    """Row i's noise comes from generator i alone (as the trainer relies on)."""
    model = tiny()
    x = inputs(batch=2)
    with torch.no_grad():
        both = model(x, generator=[torch.Generator().manual_seed(s) for s in (5, 6)])["audio"]
        row1 = model({k: v[1:] for k, v in x.items()}, generator=torch.Generator().manual_seed(6))["audio"]
    torch.testing.assert_close(both[1:], row1, atol=1e-5, rtol=1e-4)


def test_statistics_live_in_the_state_dict():
    model = tiny()
    mean, std = np.linspace(-4, -1, 40), np.linspace(0.5, 1.5, 40)
    model.set_statistics({"global": {"mel": {"mean": mean.tolist(), "std": std.tolist()},
                                     "logf0": {"mean": 5.0, "std": 0.3}}})
    state = model.state_dict()
    torch.testing.assert_close(state["mel_mean"], torch.tensor(mean, dtype=torch.float32))
    torch.testing.assert_close(state["mel_std"], torch.tensor(std, dtype=torch.float32))
    fresh = tiny()
    fresh.load_state_dict(state)
    x = {"mel": inputs()["mel"]}
    model.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x, generator=0)["audio"], fresh(x, generator=0)["audio"])
    with pytest.raises(ValueError, match="80 mel bins, the model reads 40"):
        model.set_statistics({"global": {"mel": {"mean": [0.0] * 80, "std": [1.0] * 80}}})
    model.set_statistics({"global": {}})  # no mel statistics: the buffers are kept
    torch.testing.assert_close(model.mel_mean, torch.tensor(mean, dtype=torch.float32))


def test_mel_prior_gives_the_level_of_noise():
    """Untrained, unvoiced: the output of white noise's mel has about that noise's level."""
    sigma = 0.05
    noise = sigma * torch.randn(SR // 2, generator=torch.Generator().manual_seed(0))
    mel = log_mel(noise)[None]
    model = tiny().eval()
    with torch.no_grad():
        out = model({"mel": mel, "f0": torch.zeros(1, mel.shape[1])}, generator=1, f0_source="dump")
    rms = out["audio"][0, HOP * 4: -HOP * 4].pow(2).mean().sqrt()
    assert abs(20 * math.log10(float(rms) / sigma)) < 2.0


def test_interpolation_matrix():
    w = interpolation_matrix(np.array([0.0, 100.0, 300.0]), np.array([0.0, 50.0, 200.0, 300.0, 400.0]))
    values = torch.tensor([[1.0, 3.0, 7.0]])
    torch.testing.assert_close(values @ w, torch.tensor([[1.0, 2.0, 5.0, 7.0, 7.0]]))


def test_trainer_adds_the_aux_loss():
    from vocoder.training.trainer import TrainConfig, Trainer

    model = tiny()
    cfg = TrainConfig(fft_sizes=(256, 64), amp=False, batch_size=2)
    trainer = Trainer(model, None, None, exp_dir="unused", config=cfg, full_config={},
                      device=torch.device("cpu"), progress=False)
    batch = {**inputs(), "audio": 0.1 * torch.randn(2, 20 * HOP, generator=torch.Generator().manual_seed(3))}
    loss, out = trainer._forward_loss(batch, generator=0)
    spectral = trainer.loss_fn(out["audio"], batch["audio"])
    torch.testing.assert_close(loss, spectral + out["aux_loss"])


def test_f0_head_learns_a_tone():
    """A few dozen steps on the auxiliary loss alone put the f0 of a steady tone within
    a semitone and call it voiced."""
    mel = torch.stack([log_mel(tone(200.0, seed=0)), log_mel(tone(200.0, seed=1))])
    frames = mel.shape[1]
    x = {"mel": mel, "f0": torch.full((2, frames), 200.0), "vuv": torch.ones(2, frames)}
    model = tiny()
    model.set_statistics({"global": {"mel": {"mean": mel.mean((0, 1)).tolist(), "std": mel.std((0, 1)).tolist()}}})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        raw = model.decode(x["mel"])
        f0_loss, vuv_loss = model.f0_losses(raw, x["f0"], x["vuv"])
        loss = f0_loss + vuv_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        raw = model.decode(x["mel"])
        f0 = model.decode_f0(raw["f0_logits"])
        vuv = torch.sigmoid(raw["vuv_logit"])
    cents = 1200 * torch.log2(f0 / 200.0)
    assert cents.abs().median() < 100, cents
    assert (vuv > 0.5).float().mean() > 0.9

