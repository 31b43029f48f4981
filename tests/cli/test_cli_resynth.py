"""`vocoder resynth IN OUT`: lengths, rates, f0 choices, refinement, one-line errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder.cli.main import main

SR = 16000


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """0.5 s vowel-like tone at 16 kHz (1/k harmonics, slight vibrato, a little noise)."""
    t = np.arange(int(0.5 * SR) - 13) / SR
    f = 150.0 * (1.0 + 0.03 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(0.3 / k * np.sin(k * phase) for k in range(1, 40))
    x = 0.5 * x / np.abs(x).max() + 1e-3 * np.random.default_rng(0).standard_normal(t.size)
    path = tmp_path_factory.mktemp("resynth") / "in.wav"
    sf.write(path, x, SR)
    return path


def test_default_run_keeps_length_and_rate(clip, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert main(["resynth", str(clip), str(out), "--seed", "1"]) == 0
    y, sr = sf.read(out)
    assert sr == SR and y.shape == sf.read(clip)[0].shape
    err = capsys.readouterr().err
    assert "chunk 1/1: analysing" in err and "f0 harvest" in err


def test_praat_refine_and_output_rate(clip, tmp_path, capsys):
    out = tmp_path / "sub" / "out.flac"
    assert main(["resynth", str(clip), str(out), "--f0", "praat", "--refine", "3",
                 "--sample-rate", "22050"]) == 0
    y, sr = sf.read(out)
    n_in = sf.info(str(clip)).frames
    assert sr == 22050 and abs(y.size - n_in * 22050 / SR) <= 1
    err = capsys.readouterr().err
    assert "f0 praat_ac" in err and "step 3/3" in err and "loss" in err


def test_missing_input_is_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "nope.wav"
    proc = subprocess.run([sys.executable, "-m", "vocoder.cli.main", "resynth", str(missing),
                           str(tmp_path / "o.wav")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "vocoder resynth: error:" in lines[0] and str(missing) in lines[0]
    assert not (tmp_path / "o.wav").exists()


def test_non_audio_input_and_bad_options(tmp_path, capsys):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n")
    assert main(["resynth", str(bad), str(tmp_path / "o.wav")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "cannot read audio" in err
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(SR), SR)
    assert main(["resynth", str(quiet), str(tmp_path / "o.wav")]) == 1
    assert "silent" in capsys.readouterr().err
    assert main(["resynth", str(bad), str(tmp_path / "o.wav"), "--f0", "praat",
                 "--f0-method", "harvest"]) == 1
    assert "contradicts" in capsys.readouterr().err
    assert main(["resynth", str(bad), str(tmp_path / "o.wav"), "--refine", "-2"]) == 1
    assert "--refine" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["resynth", str(bad), str(tmp_path / "o.wav"), "--f0", "yin"])
