"""`vocoder stats`, `vocoder train` and `vocoder synth` end to end on a tiny dump, and
the top-level command (--version, --help, unknown subcommands)."""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from vocoder.analysis.f0 import estimate_f0
from vocoder.cli.main import main
from vocoder.training.checkpoint import list_checkpoints, load_checkpoint
from vocoder.version import __version__

ROOT = Path(__file__).resolve().parents[2]
SR, HOP = 16000, 80
UTTS = (("spkA_u1", 120.0, 0.6), ("spkA_u2", 130.0, 0.5), ("spkB_u1", 200.0, 0.6), ("spkB_u2", 210.0, 0.5))
CONFIG = {
    "version": 1,
    "features": {"sample_rate": SR, "hop_length": HOP},
    "model": {"name": "ddsp", "n_harmonics": 16, "n_noise_bands": 17, "hidden_size": 32, "gru_size": 32,
              "mlp_layers": 1, "z_dim": 4, "n_mfcc": 12, "encoder_gru_size": 16, "speakers": "auto",
              "speaker_dim": 8, "reverb": True, "reverb_duration_s": 0.05},
    "train": {"max_steps": 20, "batch_size": 2, "crop_seconds": 0.1, "fft_sizes": [256, 128, 64],
              "warmup_steps": 1, "checkpoint_interval": 3, "keep_last": 2, "log_interval": 1,
              "valid_interval": 3, "audio_interval": 6, "valid_max_utts": 2, "amp": False},
}


def tone(f0, seconds, seed=0):
    t = np.arange(int(round(seconds * SR))) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 3 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, int(0.45 * SR / f0)))
    x = 0.5 * x / np.abs(x).max() + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)
    return x.astype(np.float32)


def vocoder(*args, cwd):
    """The command as a subprocess, on one thread (tiny models; other jobs share the cores)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vocoder.cli.main", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=180, env=env)


def vocoder_inproc(*args):
    """The command in this process (saves a torch import); returns (status, stderr)."""
    err, threads = io.StringIO(), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stderr(err):
            rc = main([str(a) for a in args])
    finally:
        torch.set_num_threads(threads)
    return rc, err.getvalue()


def error_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if ": error:" in line]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """data -> dump -> stats -> a 6-step training run (as subprocesses where it counts)."""
    root = tmp_path_factory.mktemp("cli_train")
    data = root / "data"
    data.mkdir()
    for i, (utt, f0, sec) in enumerate(UTTS):
        sf.write(root / f"{utt}.wav", tone(f0, sec, seed=i), SR)
    (data / "wav.scp").write_text("".join(f"{u} {root / u}.wav\n" for u, _, _ in UTTS))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u, _, _ in UTTS))
    (data / "spk2utt").write_text("spkA spkA_u1 spkA_u2\nspkB spkB_u1 spkB_u2\n")
    rc, err = vocoder_inproc("extract", data, root / "dump", "--streams", "f0,vuv,loudness,mfcc")
    assert rc == 0, err
    (root / "conf.yaml").write_text(yaml.safe_dump(CONFIG))
    stats = vocoder("stats", "dump", cwd=root)
    assert stats.returncode == 0, stats.stderr
    train = vocoder("train", "--config", "conf.yaml", "--train-dump", "dump", "--valid-dump", "dump",
                    "--exp", "exp", "--device", "cpu", "--no-progress", "--set", "train.max_steps=6", cwd=root)
    assert train.returncode == 0, train.stderr
    return {"root": root, "stats": stats, "train": train}


def test_stats(exp):
    root = exp["root"]
    assert "4 utterances, 2 speakers" in exp["stats"].stderr
    stats = json.loads((root / "dump" / "stats.json").read_text())
    assert stats["version"] == 1 and stats["n_utts"] == 4
    g = stats["global"]
    assert set(g) == {"logf0", "loudness"}  # no mel stream in this dump
    assert math.log(120.0) < g["logf0"]["mean"] < math.log(210.0)
    assert g["logf0"]["std"] > 0.1 and g["logf0"]["count"] > 100
    assert np.isfinite(g["loudness"]["mean"]) and g["loudness"]["std"] > 0
    spk = stats["speakers"]
    assert set(spk) == {"spkA", "spkB"}
    assert spk["spkA"]["f0_percentiles_hz"]["p50"] == pytest.approx(125.0, rel=0.06)
    assert spk["spkB"]["f0_percentiles_hz"]["p50"] == pytest.approx(205.0, rel=0.06)
    assert spk["spkA"]["logf0"]["mean"] < spk["spkB"]["logf0"]["mean"]


def test_train_writes_resolved_config_and_checkpoints(exp):
    root = exp["root"]
    assert "done at step 6" in exp["train"].stderr
    cfg = yaml.safe_load((root / "exp" / "config.yaml").read_text())
    assert cfg["version"] == 1 and cfg["package_version"] == __version__
    assert cfg["features"]["sample_rate"] == SR and cfg["features"]["hop_length"] == HOP
    assert cfg["model"]["sample_rate"] == SR and cfg["model"]["hop_length"] == HOP
    assert cfg["model"]["speakers"] == ["spkA", "spkB"]
    assert cfg["train"]["max_steps"] == 6 and cfg["train"]["fft_sizes"] == [256, 128, 64]
    assert cfg["data"]["train_dump"] == str((root / "dump").resolve())
    assert cfg["data"]["stats"] == str((root / "dump" / "stats.json").resolve())
    ckpts = list_checkpoints(root / "exp" / "checkpoints")
    assert [p.name for p in ckpts] == ["step_00000003.pt", "step_00000006.pt"]
    state = load_checkpoint(ckpts[-1])
    assert state["step"] == 6 and state["config"]["model"] == cfg["model"]
    stats = json.loads((root / "dump" / "stats.json").read_text())
    assert float(state["model"]["logf0_mean"]) == pytest.approx(stats["global"]["logf0"]["mean"])
    assert float(state["model"]["loudness_std"]) == pytest.approx(stats["global"]["loudness"]["std"])
    summary = json.loads((root / "exp" / "train_summary.json").read_text())
    assert summary["steps"] == 6 and np.isfinite(summary["last_loss"]) and np.isfinite(summary["valid_loss"])
    assert (root / "exp" / "tensorboard").is_dir()


def test_train_again_without_resume_is_an_error(exp):
    root = exp["root"]
    proc = vocoder("train", "--config", "conf.yaml", "--train-dump", "dump", "--exp", "exp", "--device", "cpu",
                   cwd=root)
    assert proc.returncode != 0
    assert len(error_lines(proc.stderr)) == 1 and "Traceback" not in proc.stderr
    assert "already has checkpoints; pass --resume" in error_lines(proc.stderr)[0]
    assert error_lines(proc.stderr)[0].startswith("vocoder train: error:")


def test_resume_past_max_steps_has_nothing_to_do(exp):
    root = exp["root"]
    before = [p.stat().st_mtime_ns for p in list_checkpoints(root / "exp" / "checkpoints")]
    rc, err = vocoder_inproc("train", "--config", root / "conf.yaml", "--train-dump", root / "dump",
                             "--exp", root / "exp", "--device", "cpu", "--resume", "--set", "train.max_steps=6")
    assert rc == 0, err
    assert "already trained to step 6" in err and "nothing to do" in err
    assert [p.stat().st_mtime_ns for p in list_checkpoints(root / "exp" / "checkpoints")] == before


def test_resume_continues_in_a_copy(exp, tmp_path):
    root = exp["root"]
    import shutil
    shutil.copytree(root / "exp", tmp_path / "exp")
    rc, err = vocoder_inproc("train", "--config", root / "conf.yaml", "--train-dump", root / "dump",
                             "--exp", tmp_path / "exp", "--device", "cpu", "--resume", "--no-progress",
                             "--set", "train.max_steps=8", "--set", "train.valid_interval=100")
    assert rc == 0, err
    assert "resumed from" in err and "at step 6" in err and "done at step 8" in err
    assert list_checkpoints(tmp_path / "exp" / "checkpoints")[-1].name == "step_00000008.pt"
    assert yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())["train"]["max_steps"] == 8


def test_train_config_errors_are_one_line(exp, tmp_path):
    root = exp["root"]
    for override, needle in [("train.max_step=3", "unknown train settings"),
                             ("model.hidden=3", "bad settings"),
                             ("model.n_mfcc=99", "n_mfcc=99 but the dump has 30 MFCCs"),
                             ("features.hop_length=160", "features.hop_length=160 but the dump")]:
        rc, err = vocoder_inproc("train", "--config", root / "conf.yaml", "--train-dump", root / "dump",
                                 "--exp", tmp_path / "new", "--device", "cpu", "--set", override)
        assert rc != 0, override
        assert len(error_lines(err)) == 1 and needle in error_lines(err)[0], (override, err)
    assert not list_checkpoints(tmp_path / "new" / "checkpoints")


def voiced_f0(audio):
    f0, vuv = estimate_f0(audio, sample_rate=SR, hop_length=HOP, method="harvest", f0_min=60.0, f0_max=800.0)
    return np.median(f0[vuv]) if vuv.sum() > 10 else float("nan")


@pytest.fixture(scope="module")
def synth(exp):
    root = exp["root"]
    plain = vocoder("synth", "--checkpoint", "exp", "--dump", "dump", "--out", "wav/plain", "--device", "cpu",
                    cwd=root)
    assert plain.returncode == 0, plain.stderr
    rc, err = vocoder_inproc("synth", "--checkpoint", root / "exp", "--dump", root / "dump",
                             "--out", root / "wav" / "up", "--device", "cpu", "--f0-shift", 12)
    assert rc == 0, err
    return root


def test_synth_writes_wavs_of_the_right_length(synth, exp):
    root = synth
    frames = dict(line.split() for line in (root / "dump" / "utt2num_frames").read_text().splitlines())
    for utt, _, sec in UTTS:
        x, sr = sf.read(root / "wav" / "plain" / f"{utt}.wav")
        assert sr == SR
        assert x.shape == (int(frames[utt]) * HOP,)
        assert 0 <= x.size - round(sec * SR) < HOP
        assert np.isfinite(x).all() and np.abs(x).max() > 1e-3
    info = json.loads((root / "wav" / "plain" / "synth.json").read_text())
    assert info["utterances"] == 4 and not info["failed"] and info["step"] == 6
    assert info["rtf"] > 0 and info["device"] == "cpu" and info["threads"] >= 1


def test_synth_f0_shift_doubles_f0(synth):
    root = synth
    for utt, f0, _ in UTTS:
        plain, _ = sf.read(root / "wav" / "plain" / f"{utt}.wav", dtype="float32")
        up, _ = sf.read(root / "wav" / "up" / f"{utt}.wav", dtype="float32")
        assert voiced_f0(plain) == pytest.approx(f0, rel=0.05), utt
        assert voiced_f0(up) == pytest.approx(2 * f0, rel=0.05), utt


def test_synth_skips_existing_outputs(synth):
    root = synth
    wav = root / "wav" / "plain" / "spkA_u1.wav"
    mtime = wav.stat().st_mtime_ns
    rc, err = vocoder_inproc("synth", "--checkpoint", root / "exp", "--dump", root / "dump",
                             "--out", root / "wav" / "plain", "--device", "cpu")
    assert rc == 0, err
    assert "0 written" in err and wav.stat().st_mtime_ns == mtime


def test_synth_dry_and_forced_speaker(synth):
    root = synth
    rc, err = vocoder_inproc("synth", "--checkpoint", root / "exp", "--dump", root / "dump", "--utts", 1,
                             "--out", root / "wav" / "dry", "--device", "cpu", "--dry", "--speaker", "spkB")
    assert rc == 0, err
    assert sorted(p.name for p in (root / "wav" / "dry").glob("*.wav")) == ["spkA_u1.wav"]


def test_synth_unknown_speaker_lists_known_ones(synth):
    root = synth
    rc, err = vocoder_inproc("synth", "--checkpoint", root / "exp", "--dump", root / "dump",
                             "--out", root / "wav" / "x", "--device", "cpu", "--speaker", "carol")
    assert rc != 0
    lines = error_lines(err)
    assert len(lines) == 1
    assert "unknown speaker/instrument 'carol'" in lines[0] and "spkA, spkB" in lines[0]


def test_synth_int8_close_to_float32(synth):
    root = synth
    rc, err = vocoder_inproc("synth", "--checkpoint", root / "exp", "--dump", root / "dump", "--utts", 2,
                             "--out", root / "wav" / "int8", "--device", "cpu", "--int8")
    assert rc == 0, err
    for utt in ("spkA_u1", "spkA_u2"):
        ref, _ = sf.read(root / "wav" / "plain" / f"{utt}.wav", dtype="float32")
        q, _ = sf.read(root / "wav" / "int8" / f"{utt}.wav", dtype="float32")
        assert q.shape == ref.shape
        assert 20 * np.log10(np.linalg.norm(q - ref) / np.linalg.norm(ref)) < -20, utt


def test_int8_quantises_linear_layers_and_large_grus_only():
    from torch.ao.nn.quantized.dynamic import GRU as QuantGRU
    from torch.ao.nn.quantized.dynamic import Linear as QuantLinear

    from vocoder.cli.synth import quantize_dynamic_int8
    from vocoder.models.ddsp import DDSP

    m = quantize_dynamic_int8(DDSP(sample_rate=SR, hop_length=HOP, n_harmonics=8, n_noise_bands=9, hidden_size=16,
                                   gru_size=512, mlp_layers=1, z_dim=4, n_mfcc=13, encoder_gru_size=32,
                                   reverb=False).eval())
    assert isinstance(m.gru, QuantGRU)  # torch's quantised GRU is faster at 512 units
    assert type(m.encoder_gru) is torch.nn.GRU  # the compiled float32 loop is faster at 32
    assert all(not isinstance(mod, torch.nn.Linear) or isinstance(mod, QuantLinear) for mod in m.modules())
    assert isinstance(m.out, QuantLinear)


def test_synth_missing_checkpoint_is_one_line(tmp_path, exp):
    rc, err = vocoder_inproc("synth", "--checkpoint", tmp_path, "--dump", exp["root"] / "dump",
                             "--out", tmp_path / "out", "--device", "cpu")
    assert rc != 0 and len(error_lines(err)) == 1 and "no checkpoint found" in err


# ---------------------------------------------------------------- the command itself

def test_version_and_help(tmp_path):
    proc = vocoder("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"ddsp-vocoder {__version__}"
    proc = vocoder("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for cmd in ("extract", "stats", "train", "synth"):
        assert cmd in proc.stdout
    proc = vocoder("train", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "--resume" in proc.stdout


def test_unknown_subcommand_fails(tmp_path):
    proc = vocoder("frobnicate", cwd=tmp_path)
    assert proc.returncode != 0
    assert "invalid choice" in proc.stderr and "frobnicate" in proc.stderr


def test_torchrun_two_processes_on_cpu(exp, tmp_path):
    """`torchrun --nproc_per_node 2 -m vocoder.cli.main train` (gloo on CPU): rank 0 alone
    writes the checkpoints, and both processes finish."""
    root = exp["root"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", "-m", "vocoder.cli.main", "train", "--config",
                          str(root / "conf.yaml"), "--train-dump", str(root / "dump"), "--exp",
                          str(tmp_path / "ddp"), "--device", "cpu", "--no-progress",
                          "--set", "train.max_steps=4", "--set", "train.checkpoint_interval=2"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    ckpts = list_checkpoints(tmp_path / "ddp" / "checkpoints")
    assert [p.name for p in ckpts] == ["step_00000002.pt", "step_00000004.pt"]
    assert load_checkpoint(ckpts[-1])["step"] == 4
    assert res.stderr.count("done at step 4") == 1  # rank 0 reports once


def test_train_rejects_a_mel_dump_made_with_other_settings(exp, tmp_path):
    """A mel model built for one mel analysis refuses a dump extracted with another."""
    root = exp["root"]
    conf = {"version": 1, "features": {"sample_rate": SR, "hop_length": HOP, "n_mels": 40, "mel_n_fft": 512,
                                       "mel_f_min": 80, "mel_f_max": 7000, "streams": ["f0", "vuv", "loudness", "mel"]}}
    (tmp_path / "feats.yaml").write_text(yaml.safe_dump(conf))
    rc, err = vocoder_inproc("extract", "--config", tmp_path / "feats.yaml", root / "data", tmp_path / "dump")
    assert rc == 0, err
    conf["model"] = {"name": "mel_ddsp", "n_mels": 40, "mel_n_fft": 512, "mel_f_min": 80, "mel_f_max": 7600,
                     "channels": 8, "conv_layers": 1, "gru_size": 0, "n_aperiodicity": 4, "n_f0_bins": 16,
                     "reverb": False}
    conf["features"].pop("mel_f_max")  # the dump decides: the model's 7600 Hz disagrees with its 7000
    conf["train"] = {"max_steps": 1, "batch_size": 2, "crop_seconds": 0.1}
    (tmp_path / "conf.yaml").write_text(yaml.safe_dump(conf))
    rc, err = vocoder_inproc("train", "--config", tmp_path / "conf.yaml", "--train-dump", tmp_path / "dump",
                             "--exp", tmp_path / "exp", "--device", "cpu", "--no-progress")
    assert rc != 0
    assert "features do not match the model's analysis: mel_f_max=7000.0 (model: 7600.0)" in err
