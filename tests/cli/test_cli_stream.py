"""`vocoder stream`: one utterance block by block, figures printed, equal to offline."""
from __future__ import annotations

import json

import soundfile as sf
import torch
from test_cli_train_synth import CONFIG, HOP, SR, error_lines, tone, vocoder_inproc

from vocoder.models import build_model
from vocoder.training.checkpoint import save_checkpoint


def make_checkpoint(path, **model_changes):
    cfg = dict(CONFIG)
    cfg["model"] = {**CONFIG["model"], "speakers": ["spkA", "spkB"], "sample_rate": SR, "hop_length": HOP,
                    **model_changes}
    torch.manual_seed(0)
    model = build_model(**cfg["model"])
    return save_checkpoint(path, {"model": model.state_dict(), "config": cfg, "step": 0})


def test_stream_wav_prints_latency_percentiles_and_matches_offline(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ckpt.pt", encoder_norm="instance")
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(150.0, 0.7), SR)
    out, js = tmp_path / "out.wav", tmp_path / "stream.json"
    rc, err = vocoder_inproc("stream", "--checkpoint", ckpt, wav, out, "--block-size", "64", "--speaker", "spkB",
                             "--check", "--json", js)
    assert rc == 0, err
    y, sr = sf.read(out)
    assert sr == SR and abs(len(y) - int(0.7 * SR)) < HOP
    info = json.loads(js.read_text())
    assert info["latency_frames"] == 2 and info["budget_ms"] == 64 / SR * 1000
    assert info["calls"] >= int(0.7 * SR) // 64
    assert 0 < info["compute_ms"]["p50"] <= info["compute_ms"]["p99"] <= info["compute_ms"]["max"]
    assert info["offline_error_db"] < -60
    assert "p99" in err and "latency 2 frames" in err


def test_stream_errors_are_one_line(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ckpt.pt")
    wav = tmp_path / "in.wav"
    sf.write(wav, tone(150.0, 0.3), SR)
    rc, err = vocoder_inproc("stream", "--checkpoint", ckpt, wav, tmp_path / "o.wav", "--speaker", "nobody")
    assert rc != 0 and len(error_lines(err)) == 1 and "nobody" in err
    rc, err = vocoder_inproc("stream", "--checkpoint", ckpt, tmp_path / "missing.wav", tmp_path / "o.wav")
    assert rc != 0 and len(error_lines(err)) == 1 and "missing.wav" in err
