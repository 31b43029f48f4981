"""vocoder.report and `vocoder report`: a self-contained HTML page from metrics.json."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vocoder.report import AudioSource, write_report

SR = 16000
UTTS = ["utt_a", "utt_b"]
SUMMARY = {
    "ddsp": {"count": 2, "mcd_db": 4.321, "f0_rmse_cents": 23.456, "f0_corr": 0.987,
             "mssd": float("nan"), "n_valid": {"mcd_db": 2, "mssd": 0}},
    "world": {"count": 2, "mcd_db": 5.678, "f0_rmse_cents": 12.345, "f0_corr": 0.912,
              "mssd": 7.25, "n_valid": {"mcd_db": 2, "mssd": 2}},
}


def _voice(f0_start, f0_end, seed, seconds=0.5):
    """A gliding harmonic tone with a little noise, like a vowel."""
    n = int(SR * seconds)
    f0 = np.linspace(f0_start, f0_end, n)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 20) if k * f0_end < SR / 2)
    x = 0.2 * x + 0.003 * np.random.default_rng(seed).standard_normal(n)
    return (x * np.hanning(n) ** 0.2).astype(np.float32)


def _make_exp(root: Path) -> Path:
    exp = root / "exp" / "tiny"
    for i, utt in enumerate(UTTS):
        base = 120.0 + 40 * i
        for sub, shift in (("ref", 1.0), ("ddsp", 1.01), ("world", 0.98)):
            d = root / "wav" / sub
            d.mkdir(parents=True, exist_ok=True)
            sf.write(d / f"{utt}.wav", _voice(base * shift, 1.3 * base * shift, seed=i), SR,
                     subtype="FLOAT")
    # world as a wav.scp inside a data dir; ddsp as a plain directory, relative to EXP
    data = root / "data" / "world"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"{u} {root / 'wav' / 'world' / (u + '.wav')}\n"
                                          for u in UTTS))
    exp.mkdir(parents=True)
    (exp / "wav").symlink_to(root / "wav" / "ddsp")
    systems = {}
    for system, hyp in (("ddsp", "wav"), ("world", str(data))):
        summary = SUMMARY[system]
        systems[system] = {
            "ref": str(root / "wav" / "ref"),
            "hyp": hyp,
            "settings": {"sample_rate": SR, "hop_length": 80},
            "summary": summary,
            "per_utt": {u: {k: v + 0.5 * j for k, v in summary.items()
                            if k not in ("count", "n_valid")} for j, u in enumerate(UTTS)},
            "failed": {},
        }
    systems["world"]["per_utt"]["utt_b"]["warning"] = "length mismatch: hyp shorter"
    metrics = {"version": 1, "sets": {"test": {"systems": systems}}}
    (exp / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (exp / "config.yaml").write_text("version: 1\nmodel:\n  name: <ddsp & co>\n")
    return exp


def _links(page: str) -> list[str]:
    return re.findall(r'<(?:audio|img)\b[^>]*\bsrc="([^"]+)"', page)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    exp = _make_exp(root)
    index = write_report(exp, f0_method="dio", title="Tiny <report>")
    return exp, index


def test_writes_self_contained_page(report):
    exp, index = report
    assert index == exp / "report" / "index.html" and index.is_file()
    page = index.read_text(encoding="utf-8")
    links = _links(page)
    # 2 utts x (reference + 2 systems) players, 2 utts x 3 figures
    assert len([s for s in links if s.endswith(".wav")]) == 6
    assert len([s for s in links if s.endswith(".png")]) == 6
    for src in links:
        assert not src.startswith(("/", "file:", "http")) and ".." not in src
        assert (index.parent / src).is_file(), src
    for src in links:
        if src.endswith(".wav"):
            assert sf.info(str(index.parent / src)).subtype == "PCM_16"


def test_page_content(report):
    exp, index = report
    page = index.read_text(encoding="utf-8")
    assert "Tiny &lt;report&gt;" in page and "<report>" not in page
    assert "tiny" in page  # experiment name
    for value in ("4.321", "5.678", "23.456", "12.345", "0.987", "0.912"):
        assert value in page
    for utt in UTTS:
        assert utt in page
    assert "&lt;ddsp &amp; co&gt;" in page  # config.yaml, escaped
    assert "n_valid" not in page and "n/a" in page  # NaN summary shown as n/a
    assert "length mismatch: hyp shorter" in page  # per-utterance warning
    # best per metric: lower MCD (ddsp), lower f0 RMSE (world), higher f0 corr (ddsp)
    best = re.findall(r'<td class="best"[^>]*>([^<]+)</td>', page.split("<h3>")[0])
    assert sorted(best) == ["0.9870", "12.345", "4.321"]  # mssd: only one finite value


def test_rerun_overwrites_and_missing_hyp(tmp_path):
    exp = _make_exp(tmp_path)
    index = write_report(exp, f0_method="dio")
    metrics = json.loads((exp / "metrics.json").read_text())
    ddsp = metrics["sets"]["test"]["systems"]["ddsp"]
    ddsp["hyp"] = str(tmp_path / "nowhere")  # every ddsp file missing
    ddsp["failed"] = {"utt_b": "length mismatch"}
    (exp / "metrics.json").write_text(json.dumps(metrics))
    (index.parent / "stale.txt").write_text("left from before")
    index2 = write_report(exp, f0_method="dio", max_utts=1)
    page = index2.read_text(encoding="utf-8")
    assert index2 == index
    assert not (index.parent / "stale.txt").exists()
    assert "missing" in page and "length mismatch" in page
    links = _links(page)
    assert len([s for s in links if s.endswith(".wav")]) == 2  # ref + world of utt_a
    for src in links:
        assert (index.parent / src).is_file(), src
    assert not list(index.parent.glob("audio/*/*/utt_b.wav"))


def test_missing_metrics_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json not found: run the evaluation"):
        write_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such experiment directory"):
        write_report(tmp_path / "nowhere")
    assert not (tmp_path / "report").exists()


def test_refuses_to_replace_foreign_folder(report, tmp_path):
    exp, _ = report
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="refusing"):
        write_report(exp, out_dir=tmp_path)
    assert (tmp_path / "keep.txt").is_file()


def test_audio_source_kinds(tmp_path):
    wav = tmp_path / "rec.wav"
    sf.write(wav, np.linspace(-0.5, 0.5, SR, dtype=np.float32), SR)
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text("rec ../rec.wav\n")  # relative to the table's dir
    (d / "segments").write_text("rec-part rec 0.25 0.5\n")
    src = AudioSource("data", bases=[tmp_path / "nowhere", tmp_path])
    assert src.has("rec-part") and not src.has("rec")
    x, sr = src.load("rec-part")
    assert sr == SR and x.size == SR // 4
    assert not AudioSource("no/such/dir", bases=[tmp_path]).has("rec")


def test_cli(report, tmp_path):
    exp, _ = report
    out = tmp_path / "rep"
    cmd = [sys.executable, "-m", "vocoder.cli.main", "report", str(exp), "--out", str(out),
           "--max-utts", "1", "--f0-method", "dio", "--hop-length", "160"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "index.html").is_file()
    assert proc.stdout.strip() == str(out / "index.html")

    (tmp_path / "empty").mkdir()
    missing = subprocess.run([sys.executable, "-m", "vocoder.cli.main", "report",
                              str(tmp_path / "empty")], capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith(
        "metrics.json not found: run the evaluation stage first")
    assert len(missing.stderr.strip().splitlines()) == 1
