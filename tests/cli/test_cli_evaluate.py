"""`vocoder evaluate` and `vocoder copy-synth` run as subprocesses on tiny generated wavs."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from vocoder.cli.evaluate import AudioItem, list_audio, load_item
from vocoder.cli.main import main

SR = 16000
HOP = 80
UTTS = ("u1", "u2", "u3")


def tone(f0, seconds=0.5, seed=0):
    """0.5 s harmonic tone (1/k harmonics up to 7.9 kHz, slight vibrato, low noise)."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1.0 + 0.03 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(0.3 / k * np.sin(k * phase) for k in range(1, int(7900 / f0)))
    return x + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """ref/ (3 tones), same/ (identical copies), half/ (scaled by 0.5), bad/ (u2 corrupt),
    data/wav.scp (relative paths), other/ (no common names)."""
    root = tmp_path_factory.mktemp("eval")
    for name in ("ref", "same", "half", "bad", "other", "data"):
        (root / name).mkdir()
    lines = []
    for i, (utt, f0) in enumerate(zip(UTTS, (110.0, 150.0, 200.0))):
        x = tone(f0, seed=i)
        sf.write(root / "ref" / f"{utt}.wav", x, SR)
        sf.write(root / "half" / f"{utt}.wav", 0.5 * x, SR)
        sf.write(root / "other" / f"x{utt}.wav", x, SR)
        shutil.copy(root / "ref" / f"{utt}.wav", root / "same" / f"{utt}.wav")
        shutil.copy(root / "ref" / f"{utt}.wav", root / "bad" / f"{utt}.wav")
        lines.append(f"{utt} ref/{utt}.wav\n")
    (root / "bad" / "u2.wav").write_bytes(b"RIFF not really a wav file")
    (root / "data" / "wav.scp").write_text("".join(lines))
    return root


def vocoder(*args, cwd):
    return subprocess.run([sys.executable, "-m", "vocoder.cli.main", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_dir_vs_dir_with_json(corpus):
    proc = vocoder("evaluate", "ref", "same", "--json", "out/eval.json", cwd=corpus)
    assert proc.returncode == 0, proc.stderr
    assert "mcd_db" in proc.stdout and "loudness_l1_db" in proc.stdout
    assert "3 utterances evaluated, 0 failed" in proc.stdout
    doc = json.loads((corpus / "out" / "eval.json").read_text())
    assert set(doc) >= {"ref", "hyp", "settings", "summary", "per_utt", "failed"}
    assert doc["ref"] == "ref" and doc["hyp"] == "same" and doc["failed"] == {}
    assert doc["settings"]["f0_method"] == "harvest" and doc["settings"]["align"] == "none"
    assert list(doc["per_utt"]) == list(UTTS)
    assert doc["summary"]["count"] == 3 and doc["summary"]["n_valid"]["mcd_db"] == 3
    for result in doc["per_utt"].values():
        assert result["mcd_db"] == 0.0 and result["mssd"] == 0.0
        assert result["f0_rmse_cents"] == 0.0 and result["vuv_error_rate"] == 0.0


def test_wav_scp_and_update_merges_systems(corpus, tmp_path, monkeypatch):
    metrics = tmp_path / "exp" / "metrics.json"
    # in-process (the installed command's entry point), to keep the file fast
    monkeypatch.chdir(corpus)
    assert main(["evaluate", "data/wav.scp", "same", "--update", str(metrics), "--set", "test",
                 "--system", "copy"]) == 0
    # a data dir (with wav.scp) as REF, in parallel, a second system of the same set
    proc = vocoder("evaluate", "data", "half", "--nj", "2", "--update", metrics, "--set", "test",
                   "--system", "half", cwd=corpus)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(metrics.read_text())
    assert doc["version"] == 1
    systems = doc["sets"]["test"]["systems"]
    assert set(systems) == {"copy", "half"}
    assert systems["copy"]["summary"]["mcd_db"] == 0.0
    assert set(systems["half"]["per_utt"]) == set(UTTS)
    half = systems["half"]["summary"]
    assert half["loudness_l1_db"] == pytest.approx(20 * math.log10(2), abs=0.05)
    assert half["mcd_db"] < 0.2 and half["f0_rmse_cents"] < 1.0


def test_corrupt_hyp_is_recorded_and_rest_evaluated(corpus):
    proc = vocoder("evaluate", "ref", "bad", "--json", "out/bad.json", cwd=corpus)
    assert proc.returncode == 0, proc.stderr
    assert "2 utterances evaluated, 1 failed" in proc.stdout
    assert "u2" in proc.stderr
    doc = json.loads((corpus / "out" / "bad.json").read_text())
    assert list(doc["per_utt"]) == ["u1", "u3"]
    assert list(doc["failed"]) == ["u2"] and "bad/u2.wav" in doc["failed"]["u2"]
    assert doc["summary"]["count"] == 2


def test_fail_fast_stops_at_first_failure(corpus, capsys):
    assert main(["evaluate", str(corpus / "ref"), str(corpus / "bad"), "--fail-fast"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("vocoder evaluate: error: failed (--fail-fast): u2: ")
    assert "bad/u2.wav: cannot read audio" in lines[0]


def test_errors_give_one_line_and_status_1(corpus):
    proc = vocoder("evaluate", "missing_dir", "same", cwd=corpus)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "vocoder evaluate: error: missing_dir: no such file or directory"]

    proc = vocoder("evaluate", "ref", "other", cwd=corpus)
    assert proc.returncode == 1
    assert "no utterance" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_all_failed_exits_1(corpus, tmp_path):
    (tmp_path / "u1.wav").write_bytes(b"junk")
    proc = vocoder("evaluate", corpus / "ref", tmp_path, cwd=corpus)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "vocoder evaluate: error: all 1 utterances failed")


def test_copy_synth_then_evaluate(corpus, tmp_path):
    out = tmp_path / "copy"
    proc = vocoder("copy-synth", "data", out, cwd=corpus)
    assert proc.returncode == 0, proc.stderr
    assert "3 written, 0 skipped" in proc.stdout
    for utt in UTTS:
        y, sr = sf.read(out / f"{utt}.wav")
        x, _ = sf.read(corpus / "ref" / f"{utt}.wav")
        assert sr == SR and abs(y.size - x.size) <= HOP
    proc = vocoder("copy-synth", "data", out, cwd=corpus)
    assert "0 written, 3 skipped" in proc.stdout

    proc = vocoder("evaluate", "ref", out, "--json", tmp_path / "copy.json", cwd=corpus)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "copy.json").read_text())["summary"]
    assert summary["count"] == 3 and summary["mcd_db"] < 3.0


def test_single_files_pair_whatever_their_names(corpus, tmp_path, capsys):
    shutil.copy(corpus / "ref" / "u1.wav", tmp_path / "renamed.wav")
    items = list_audio(tmp_path / "renamed.wav")
    assert list(items) == ["renamed"]
    # in-process, to keep the file fast: the same entry point as the installed command
    assert main(["evaluate", str(corpus / "ref" / "u1.wav"), str(tmp_path / "renamed.wav"),
                 "--json", str(tmp_path / "one.json")]) == 0
    assert "1 utterances evaluated" in capsys.readouterr().out
    doc = json.loads((tmp_path / "one.json").read_text())
    assert list(doc["per_utt"]) == ["u1"] and doc["per_utt"]["u1"]["mcd_db"] == 0.0


def test_data_dir_with_segments(tmp_path):
    x = tone(120.0, seconds=1.0)
    sf.write(tmp_path / "rec.wav", x, SR)
    (tmp_path / "wav.scp").write_text(f"rec {tmp_path / 'rec.wav'}\n")
    (tmp_path / "segments").write_text("a rec 0.0 0.25\nb rec 0.5 1.0\nc nope 0 1\n")
    items = list_audio(tmp_path)
    assert list(items) == ["a", "b", "c"]
    a, sr = load_item(items["a"])
    assert sr == SR and a.size == 4000
    b, _ = load_item(items["b"], sample_rate=8000)
    assert b.size == 4000
    with pytest.raises(ValueError, match="nope"):
        load_item(items["c"])
    with pytest.raises(ValueError, match="no such file"):
        load_item(AudioItem("z", str(tmp_path / "absent.wav")))
