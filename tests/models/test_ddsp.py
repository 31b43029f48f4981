"""The model registry and the DDSP autoencoder: shapes, gradients, gating, reverb,
statistics buffers and continuous f0."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vocoder.analysis.f0 import interpolate_log_f0
from vocoder.models import available_models, build_model, get_model_class, register
from vocoder.models.ddsp import DDSP, continuous_f0

SR, HOP = 16000, 80
TINY = dict(sample_rate=SR, hop_length=HOP, n_harmonics=16, n_noise_bands=17, hidden_size=32, gru_size=32,
            mlp_layers=1, encoder_gru_size=16, n_mfcc=12, speaker_dim=8, reverb_duration_s=0.05)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread (and do not fight other jobs for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**kw):
    torch.manual_seed(0)
    return build_model("ddsp", **{**TINY, **kw})


def inputs(batch=2, frames=30, *, n_mfcc=12, speakers=0, vuv=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    f0 = 110.0 + 100.0 * torch.rand(batch, 1, generator=g) + 5.0 * torch.rand(batch, frames, generator=g)
    if vuv is None:
        vuv = torch.ones(batch, frames)
        vuv[:, frames // 3: frames // 2] = 0.0
    f0 = f0 * vuv
    d = {"f0": f0, "vuv": vuv, "loudness": -40.0 + 10.0 * torch.randn(batch, frames, generator=g),
         "mfcc": torch.randn(batch, frames, n_mfcc, generator=g)}
    if speakers:
        d["speaker"] = torch.arange(batch) % speakers
    return d


# ---------------------------------------------------------------- registry

def test_registry():
    assert "ddsp" in available_models()
    assert get_model_class("ddsp") is DDSP
    model = build_model("ddsp", **TINY)
    assert isinstance(model, DDSP) and model.model_name == "ddsp"
    assert model.input_streams == ("f0", "vuv", "loudness", "mfcc")


def test_registry_unknown_name_lists_models():
    with pytest.raises(ValueError, match=r"unknown model 'nope'; available: .*ddsp"):
        build_model("nope", **TINY)


def test_registry_bad_kwarg_is_value_error():
    with pytest.raises(ValueError, match="model 'ddsp': bad settings.*hidden"):
        build_model("ddsp", **TINY, hidden=3)
    with pytest.raises(ValueError, match="bad settings"):
        build_model("ddsp", hop_length=HOP)  # sample_rate missing


def test_register_rejects_a_second_class_under_the_same_name():
    with pytest.raises(ValueError, match="already registered"):
        @register("ddsp")
        class Other(torch.nn.Module):
            pass


# ---------------------------------------------------------------- forward

@pytest.mark.parametrize("z_dim, n_speakers", [(0, 0), (4, 0), (0, 3), (4, 3)])
def test_forward_shapes(z_dim, n_speakers):
    model = tiny(z_dim=z_dim, n_speakers=n_speakers)
    assert hasattr(model, "encoder_gru") == (z_dim > 0)
    assert hasattr(model, "speaker_embedding") == (n_speakers > 0)
    x = inputs(batch=3, frames=25, speakers=n_speakers)
    if z_dim == 0:
        del x["mfcc"]  # not needed without the encoder
    out = model(x, generator=torch.Generator().manual_seed(0))
    n = 25 * HOP
    for key in ("audio", "dry_audio", "harmonic", "noise"):
        assert out[key].shape == (3, n), key
        assert torch.isfinite(out[key]).all(), key
    assert out["harmonic_amplitudes"].shape == (3, 25, 16)
    assert out["noise_magnitudes"].shape == (3, 25, 17)
    assert out["f0_hz"].shape == (3, 25) and torch.all(out["f0_hz"] > 0)
    assert (out["z"] is None) == (z_dim == 0)
    if z_dim:
        assert out["z"].shape == (3, 25, z_dim)


def test_skip_z_passes_z_around_the_gru():
    """With the decoder GRU deaf to its input, z reaches the output only through the skip."""
    x = inputs(batch=1, frames=20)
    x["f0_continuous"] = continuous_f0(x["f0"], x["vuv"])
    x2 = dict(x, mfcc=x["mfcc"] + torch.randn(x["mfcc"].shape, generator=torch.Generator().manual_seed(5)))
    changed = {}
    for skip in (False, True):
        torch.manual_seed(0)
        model = tiny(z_dim=4, harmonic_head="envelope", skip_z=skip).eval()
        assert model.out_mlp[0].in_features == model.gru.hidden_size + (3 if skip else 2) * 32
        with torch.no_grad():
            model.gru.weight_ih_l0.zero_()
            a, b = model.decode(x)["envelope"], model.decode(x2)["envelope"]
        changed[skip] = float((a - b).abs().max())
    assert changed[False] == 0.0 and changed[True] > 1e-3


def test_skip_z_needs_the_encoder():
    with pytest.raises(ValueError, match="skip_z"):
        tiny(z_dim=0, skip_z=True)


def test_speakers_by_name_and_embedding_blend():
    model = tiny(speakers=["alice", "bob"])
    assert model.n_speakers == 2 and model.speaker_index("bob") == 1
    with pytest.raises(ValueError, match="unknown speaker.*alice, bob"):
        model.speaker_index("carol")
    x = inputs(batch=2, speakers=2)
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    with torch.no_grad():
        a = model(x, generator=g())["audio"]
        emb = model.speaker_embedding(x["speaker"])
        y = {k: v for k, v in x.items() if k != "speaker"}
        b = model({**y, "speaker_embedding": emb}, generator=g())["audio"]
        c = model({**x, "speaker": 1 - x["speaker"]}, generator=g())["audio"]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_repeatable_with_generator_and_batch_consistent():
    model = tiny(z_dim=4, n_speakers=2).eval()
    x = inputs(batch=2, speakers=2)
    with torch.no_grad():
        a = model(x, generator=torch.Generator().manual_seed(5))
        b = model(x, generator=torch.Generator().manual_seed(5))
        c = model(x, generator=torch.Generator().manual_seed(6))
        one = model({k: v[1:] for k, v in x.items()}, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a["audio"], b["audio"], rtol=0, atol=0)
    assert not torch.equal(a["noise"], c["noise"])
    torch.testing.assert_close(a["harmonic"], c["harmonic"], rtol=0, atol=0)
    # the harmonic part of a row does not depend on the rest of the batch
    torch.testing.assert_close(one["harmonic"][0], a["harmonic"][1], rtol=1e-4, atol=1e-5)


def test_per_example_generators():
    """A list of generators gives row i the noise FilteredNoise would draw from generator i,
    whatever the rest of the batch: examples keep their noise when a batch is split."""
    model = tiny(z_dim=4).eval()
    mags = torch.rand(3, 12, 17)
    seeds = [11, 22, 33]
    gens = lambda idx: [torch.Generator().manual_seed(seeds[i]) for i in idx]  # noqa: E731
    batched = model.render_noise(mags, gens([0, 1, 2]))
    for i in range(3):
        row = model.noise.get_signal(mags[i:i + 1], torch.Generator().manual_seed(seeds[i]))
        torch.testing.assert_close(batched[i:i + 1], row, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.render_noise(mags[1:], gens([1, 2])), batched[1:], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="2 noise generators for a batch of 3"):
        model.render_noise(mags, gens([0, 1]))
    x = inputs(batch=2)
    with torch.no_grad():
        a = model(x, generator=gens([0, 1]))
        b = model({k: v[1:] for k, v in x.items()}, generator=gens([1]))
    torch.testing.assert_close(a["noise"][1:], b["noise"], rtol=1e-4, atol=1e-6)


def test_gradients_finite_for_all_parameters():
    model = tiny(z_dim=4, n_speakers=2)
    out = model(inputs(batch=2, speakers=2), generator=torch.Generator().manual_seed(0))
    target = torch.randn_like(out["audio"]) * 0.1
    loss = (out["audio"] - target).abs().mean() + out["audio"].pow(2).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, bad
    # every parameter gets some gradient (the speaker rows that are used)
    zero = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    assert not zero, zero


def test_unvoiced_frames_gate_the_harmonics():
    model = tiny(z_dim=4)
    x = inputs(vuv=torch.zeros(2, 30))
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(0))
    assert torch.all(out["harmonic_amplitudes"] == 0)
    assert torch.all(out["harmonic"] == 0)
    assert out["noise"].abs().max() > 0
    torch.testing.assert_close(out["dry_audio"], out["noise"], rtol=0, atol=0)
    # partly voiced: the harmonics sound only around voiced frames
    vuv = torch.zeros(1, 30)
    vuv[:, 10:20] = 1
    with torch.no_grad():
        out = model(inputs(batch=1, vuv=vuv), generator=torch.Generator().manual_seed(0))
    h = out["harmonic"][0]
    assert h[: 9 * HOP].abs().max() == 0 and h[21 * HOP:].abs().max() == 0
    assert h[11 * HOP: 19 * HOP].abs().max() > 1e-3
    # without gating the harmonics play through the unvoiced frames
    ungated = tiny(z_dim=4, gate_unvoiced=False)
    with torch.no_grad():
        out = ungated(x, generator=torch.Generator().manual_seed(0))
    assert out["harmonic"].abs().max() > 1e-3


def test_dry_skips_the_reverb():
    model = tiny()
    x = inputs()
    with torch.no_grad():
        wet = model(x, generator=torch.Generator().manual_seed(0))
        dry = model(x, generator=torch.Generator().manual_seed(0), dry=True)
    torch.testing.assert_close(dry["audio"], dry["dry_audio"], rtol=0, atol=0)
    torch.testing.assert_close(wet["dry_audio"], dry["dry_audio"], rtol=0, atol=0)
    torch.testing.assert_close(wet["audio"], model.reverb(wet["dry_audio"]))
    assert not torch.allclose(wet["audio"], dry["audio"])
    no_reverb = tiny(reverb=False)
    assert no_reverb.reverb is None
    with torch.no_grad():
        out = no_reverb(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["audio"], out["dry_audio"], rtol=0, atol=0)


def test_set_statistics_fills_buffers_in_state_dict():
    model = tiny()
    stats = {"version": 1, "global": {"logf0": {"mean": 5.1, "std": 0.3, "count": 10},
                                       "loudness": {"mean": -33.0, "std": 0.0, "count": 10},
                                       "mel": {"mean": [1.0], "std": [1.0], "count": 10}}}
    model.set_statistics(stats)
    assert float(model.logf0_mean) == pytest.approx(5.1)
    assert float(model.logf0_std) == pytest.approx(0.3)
    assert float(model.loudness_mean) == -33.0
    assert float(model.loudness_std) == pytest.approx(1e-3)  # a zero std is floored
    sd = model.state_dict()
    for name in ("logf0_mean", "logf0_std", "loudness_mean", "loudness_std"):
        assert name in sd
    other = tiny()
    assert float(other.logf0_mean) == pytest.approx(math.log(150.0))
    other.load_state_dict(sd)
    assert float(other.logf0_mean) == pytest.approx(5.1)
    # a bare {"logf0": ...} dict works as well, missing entries are left alone
    other.set_statistics({"logf0": {"mean": 4.0, "std": 0.5}})
    assert float(other.logf0_mean) == 4.0 and float(other.loudness_mean) == -33.0
    # the statistics change the network's input
    x = inputs()
    with torch.no_grad():
        a = tiny()(x, generator=torch.Generator().manual_seed(0))["audio"]
        b = model(x, generator=torch.Generator().manual_seed(0))["audio"]
    assert not torch.allclose(a, b)


# ---------------------------------------------------------------- continuous_f0

def test_continuous_f0_matches_interpolate_log_f0():
    rng = np.random.default_rng(0)
    for trial in range(40):
        frames = int(rng.integers(1, 60))
        batch = int(rng.integers(1, 4))
        f0 = rng.uniform(60.0, 500.0, (batch, frames)).astype(np.float32)
        vuv = rng.random((batch, frames)) < rng.uniform(0.05, 0.95)
        if trial % 5 == 0:
            vuv[0, :] = False
            vuv[0, rng.integers(frames)] = True  # a single voiced frame
        f0 = np.where(vuv, f0, 0.0).astype(np.float32)
        got = continuous_f0(torch.from_numpy(f0), torch.from_numpy(vuv.astype(np.float32)))
        want = np.exp(interpolate_log_f0(f0, vuv, fill_hz=100.0))
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, err_msg=f"trial {trial}")
        assert torch.all(got > 0)


def test_continuous_f0_edges_and_unvoiced_rows():
    f0 = torch.tensor([[0.0, 0.0, 100.0, 0.0, 400.0, 0.0], [0.0] * 6, [0.0, 0.0, 0.0, 0.0, 0.0, 200.0]])
    vuv = (f0 > 0).float()
    out = continuous_f0(f0, vuv)
    torch.testing.assert_close(out[0], torch.tensor([100.0, 100.0, 100.0, 200.0, 400.0, 400.0]))
    torch.testing.assert_close(out[1], torch.full((6,), 100.0))
    torch.testing.assert_close(out[2], torch.full((6,), 200.0))
    # f0 > 0 on a frame flagged unvoiced is ignored
    out = continuous_f0(torch.tensor([[100.0, 999.0, 400.0]]), torch.tensor([[1.0, 0.0, 1.0]]))
    torch.testing.assert_close(out, torch.tensor([[100.0, 200.0, 400.0]]))


def test_forward_interpolates_f0_when_not_given():
    model = tiny()
    x = inputs()
    with torch.no_grad():
        a = model(x, generator=torch.Generator().manual_seed(0))
        b = model({**x, "f0_continuous": continuous_f0(x["f0"], x["vuv"])},
                  generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a["audio"], b["audio"], rtol=0, atol=0)
    torch.testing.assert_close(a["f0_hz"], continuous_f0(x["f0"], x["vuv"]))


def test_room_reverb_option():
    """reverb_type 'room': an exponential-envelope reverb the model trains; --dry skips it."""
    from vocoder.effects import ExpDecayReverb, rt60_from_ir
    from vocoder.models import build_model

    kw = dict(sample_rate=16000, hop_length=80, n_harmonics=8, n_noise_bands=9, hidden_size=16, gru_size=16,
              mlp_layers=1, z_dim=0, reverb_duration_s=0.5)
    model = build_model("ddsp", reverb_type="room", **kw)
    assert isinstance(model.reverb, ExpDecayReverb)
    ir = model.reverb.impulse_response().detach()
    assert ir.shape == (8000,) and 0.3 < float(rt60_from_ir(ir, sample_rate=16000)) < 0.7  # 0.5 s initial room
    inputs = {"f0": torch.full((1, 20), 150.0), "vuv": torch.ones(1, 20), "loudness": torch.full((1, 20), -30.0)}
    out = model(inputs, generator=torch.Generator().manual_seed(0))
    dry = model(inputs, generator=torch.Generator().manual_seed(0), dry=True)
    torch.testing.assert_close(out["dry_audio"], dry["audio"])
    assert not torch.allclose(out["audio"], dry["audio"])
    out["audio"].pow(2).sum().backward()
    assert all(p.grad is not None for p in model.reverb.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="reverb_type must be 'fir' or 'room'"):
        build_model("ddsp", reverb_type="hall", **kw)


def test_checkpoint_mlps_gives_the_same_gradients():
    """Activation checkpointing of the MLPs changes memory, not the numbers."""
    import torch

    from vocoder.models.ddsp import DDSP
    grads = []
    for ck in (False, True):
        torch.manual_seed(0)
        m = DDSP(sample_rate=16000, hop_length=160, n_harmonics=16, n_noise_bands=17, hidden_size=32, gru_size=32,
                 mlp_layers=2, z_dim=4, n_mfcc=8, reverb=False, checkpoint_mlps=ck).train()
        n = 30
        x = {"f0": torch.full((2, n), 150.0), "vuv": torch.ones(2, n), "loudness": torch.full((2, n), -30.0),
             "mfcc": torch.randn(2, n, 8, generator=torch.Generator().manual_seed(1))}
        out = m(x, generator=torch.Generator().manual_seed(2))
        out["audio"].pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]))
    assert grads[0].numel() == grads[1].numel() and torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_overlapped_decode_equals_forward():
    """forward(overlap=True): encoder a chunk ahead in a thread, decoder state carried."""
    import torch

    from vocoder.models.ddsp import DDSP
    torch.manual_seed(0)
    for norm in ("layer", "instance"):
        m = DDSP(sample_rate=16000, hop_length=160, n_harmonics=16, n_noise_bands=17, hidden_size=32, gru_size=32,
                 mlp_layers=1, z_dim=4, n_mfcc=8, n_speakers=2, encoder_norm=norm).eval()
        n = 300  # several chunks of 128
        x = {"f0": torch.full((1, n), 150.0), "vuv": torch.ones(1, n), "loudness": torch.full((1, n), -30.0),
             "mfcc": torch.randn(1, n, 8, generator=torch.Generator().manual_seed(1)), "speaker": torch.tensor([1])}
        with torch.no_grad():
            a = m(x, generator=torch.Generator().manual_seed(2))["audio"]
            b = m(x, generator=torch.Generator().manual_seed(2), overlap=True)["audio"]
        assert torch.allclose(a, b, atol=1e-5 * float(a.abs().max())), norm
