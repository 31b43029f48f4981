"""Tests for vocoder.reverb_io: reverbs from checkpoints and impulse response files."""
import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder.effects import FixedReverb, Reverb
from vocoder.models import build_model
from vocoder.reverb_io import load_reverb, model_reverb, resample_ir
from vocoder.training.checkpoint import save_checkpoint

TINY = {"name": "ddsp", "sample_rate": 8000, "hop_length": 40, "n_harmonics": 4, "n_noise_bands": 5,
        "hidden_size": 8, "gru_size": 8, "mlp_layers": 1, "z_dim": 0, "reverb_duration_s": 0.05}


def checkpoint(path, **settings):
    cfg = {**TINY, **settings}
    model = build_model(**cfg)
    return save_checkpoint(path, {"model": model.state_dict(), "config": {"model": cfg}, "step": 0}), model


def test_resample_ir_keeps_the_filter_gain():
    t = np.arange(4800) / 48000
    ir = np.exp(-t / 0.01)  # smooth, well inside 8 kHz
    low = resample_ir(ir, from_rate=48000, to_rate=16000)
    assert low.dtype == np.float32 and abs(low.size - 1600) <= 1
    assert low.sum() == pytest.approx(ir.sum(), rel=0.01)  # DC gain
    echo = np.zeros(300)
    echo[0], echo[100] = 0.8, 0.5  # direct path and one reflection
    up = resample_ir(echo, from_rate=16000, to_rate=48000)
    assert up.size == 900 and up[0] == pytest.approx(0.8)
    assert np.argmax(np.abs(up[1:])) + 1 == 300  # the reflection 6.25 ms later, at the new rate
    assert up[1:].sum() == pytest.approx(0.5, rel=0.01)
    np.testing.assert_array_equal(resample_ir(ir, from_rate=16000, to_rate=16000), ir.astype(np.float32))


def test_load_reverb_from_a_file(tmp_path):
    ir = np.zeros((400, 2), dtype=np.float32)
    ir[0] = 1.0
    ir[100] = (0.5, 0.3)  # channels are averaged
    sf.write(tmp_path / "room.wav", ir, 8000, subtype="FLOAT")
    same = load_reverb(tmp_path / "room.wav", sample_rate=8000)
    assert isinstance(same, FixedReverb) and same.sample_rate == 8000
    np.testing.assert_allclose(same.impulse_response().numpy(), ir.mean(axis=1))
    double = load_reverb(tmp_path / "room.wav", sample_rate=16000)
    assert double.sample_rate == 16000 and double.ir_length == 800
    with pytest.raises(FileNotFoundError, match="nowhere.wav"):
        load_reverb(tmp_path / "nowhere.wav", sample_rate=8000)
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="junk.wav"):
        load_reverb(tmp_path / "junk.wav", sample_rate=8000)


def test_load_reverb_from_a_checkpoint(tmp_path):
    path, model = checkpoint(tmp_path / "a.pt")
    same = load_reverb(path, sample_rate=8000)
    assert isinstance(same, Reverb) and not any(p.requires_grad for p in same.parameters())
    with torch.no_grad():
        torch.testing.assert_close(same.impulse_response(), model.reverb.impulse_response())
        other = load_reverb(path, sample_rate=16000)
        assert isinstance(other, FixedReverb) and other.ir_length == 800
        want = resample_ir(model.reverb.impulse_response().numpy(), from_rate=8000, to_rate=16000)
        np.testing.assert_array_equal(other.impulse_response().numpy(), want)
    dry, _ = checkpoint(tmp_path / "dry.pt", reverb=False)
    with pytest.raises(ValueError, match=r"dry\.pt: model 'ddsp' has no learned reverb"):
        load_reverb(dry, sample_rate=8000)
    with pytest.raises(ValueError, match="has no learned reverb"):
        model_reverb(build_model(**{**TINY, "reverb": False}))
