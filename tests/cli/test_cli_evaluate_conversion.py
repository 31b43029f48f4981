"""`vocoder evaluate-conversion` on synthetic speakers (pulse trains through formants)."""
from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import soundfile as sf
from synthetic_voices import SPEAKERS, SR, voice

from vocoder.cli.evaluate_conversion import read_pairs
from vocoder.cli.main import main

SENTENCE = ([0, 1, 2, 3], [0.12, 0.1, 0.14, 0.1])


def write_data_dir(path, utts):
    """Kaldi data dir of {utt: (speaker, audio)}."""
    path.mkdir(parents=True)
    (path / "wav").mkdir()
    wav_scp, utt2spk, spk2utt = [], [], {}
    for utt in sorted(utts):
        spk, x = utts[utt]
        sf.write(path / "wav" / f"{utt}.wav", x, SR)
        wav_scp.append(f"{utt} {path / 'wav' / f'{utt}.wav'}\n")
        utt2spk.append(f"{utt} {spk}\n")
        spk2utt.setdefault(spk, []).append(utt)
    (path / "wav.scp").write_text("".join(wav_scp))
    (path / "utt2spk").write_text("".join(utt2spk))
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in sorted(spk2utt.items())))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """data/train (3 utterances per speaker), data/check (1 per speaker), wav/ with each
    speaker's recording of one sentence (seed = index), conv/ with "conversions": the
    target's voice on the source's exact f0 contour and timing, and pairs.txt."""
    root = tmp_path_factory.mktemp("vc")

    def random_utt(spk, seed):
        r = np.random.default_rng(seed)
        return spk, voice(spk, r.integers(0, 4, 3), r.uniform(0.1, 0.15, 3), seed=seed)

    write_data_dir(root / "data" / "train",
                   {f"{s}_u{j}": random_utt(s, 10 * i + j) for i, s in enumerate(SPEAKERS)
                    for j in range(3)})
    write_data_dir(root / "data" / "check",
                   {f"{s}_c0": random_utt(s, 100 + i) for i, s in enumerate(SPEAKERS)})
    (root / "wav").mkdir()
    (root / "conv").mkdir()
    seeds = {s: i for i, s in enumerate(SPEAKERS)}
    for s in SPEAKERS:
        sf.write(root / "wav" / f"{s}.wav", voice(s, *SENTENCE, seed=seeds[s]), SR)
    lines = []
    for src, tgt in (("low", "mid"), ("mid", "high"), ("high", "low"), ("low", "high")):
        f0_scale = SPEAKERS[src][1] / SPEAKERS[tgt][1]
        y = voice(tgt, *SENTENCE, seed=seeds[src], f0_scale=f0_scale)
        sf.write(root / "conv" / f"{src}_to_{tgt}.wav", y, SR)
        lines.append(f"{src}_to_{tgt} conv/{src}_to_{tgt}.wav wav/{src}.wav {src} {tgt} "
                     f"wav/{tgt}.wav\n")
    lines.insert(2, "# a comment line, then a blank one\n\n")
    lines.append("lost conv/lost.wav wav/low.wav low mid wav/mid.wav\n")  # missing file
    lines.append("timbre_high_to_low conv/high_to_low.wav wav/high.wav high low\n")  # no ref
    (root / "pairs.txt").write_text("".join(lines))
    return root


def common_args(root):
    return ["--pairs", str(root / "pairs.txt"),
            "--check-data", str(root / "data" / "check")]


def test_read_pairs(corpus, tmp_path):
    items = read_pairs(corpus / "pairs.txt")
    assert [p.key for p in items] == ["low_to_mid", "mid_to_high", "high_to_low", "low_to_high",
                                      "lost", "timbre_high_to_low"]
    first = items[0]
    assert first.converted == str(corpus / "conv" / "low_to_mid.wav")  # relative to the file
    assert (first.source_label, first.target_label) == ("low", "mid")
    assert first.target_reference == str(corpus / "wav" / "mid.wav")
    assert items[-1].target_reference is None
    bad = tmp_path / "bad.txt"
    bad.write_text("a x.wav y.wav low mid\nb x.wav y.wav low\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected 5 to 7 fields"):
        read_pairs(bad)
    bad.write_text("a x.wav y.wav low mid - 12.5\nb x.wav y.wav low mid ref.wav\n")
    a, b = read_pairs(bad)
    assert a.target_reference is None and a.f0_shift == 12.5
    assert b.target_reference.endswith("ref.wav") and b.f0_shift is None
    bad.write_text("a x.wav y.wav low mid - up\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: f0_shift 'up' is not a finite number"):
        read_pairs(bad)
    bad.write_text("a x.wav y.wav low mid\na x.wav y.wav low high\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: key 'a' repeats line 1"):
        read_pairs(bad)


def test_end_to_end_with_a_missing_wav(corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # paths in pairs.txt resolve against its directory
    metrics = tmp_path / "exp" / "metrics.json"
    rc = main(["evaluate-conversion", *common_args(corpus),
               "--train-data", str(corpus / "data" / "train"),
               "--json", "out.json", "--save-classifier", "clf.json",
               "--update", str(metrics), "--set", "eval", "--system", "vc"])
    captured = capsys.readouterr()
    assert rc == 1  # one item failed
    err = captured.err.strip().splitlines()
    assert any("item lost failed: " in line and "conv/lost.wav: no such file" in line
               for line in err)
    assert err[-1].startswith("vocoder evaluate-conversion: error: 1 failed (of 6 items")
    assert "5 items evaluated, 1 failed" in captured.out
    assert "classifier check: 3/3 recordings" in captured.out
    table = captured.out.splitlines()
    assert table[0].split()[:3] == ["pair", "n", "mcd"]
    assert [line.split()[0] for line in table[1:6]] == [
        "high->low", "low->high", "low->mid", "mid->high", "all"]

    doc = json.loads((tmp_path / "out.json").read_text())
    assert list(doc["per_utt"]) == ["low_to_mid", "mid_to_high", "high_to_low", "low_to_high",
                                    "timbre_high_to_low"]
    assert list(doc["failed"]) == ["lost"] and "conv/lost.wav" in doc["failed"]["lost"]
    assert doc["settings"]["f0_method"] == "harvest" and doc["settings"]["sample_rate"] == SR
    assert doc["settings"]["f0_shift_semitones"] == 0.0
    assert doc["classifier"]["counts"] == {"high": 3, "low": 3, "mid": 3}
    assert doc["target_log_f0"]["mid"]["from"] == "train_data"
    assert doc["target_log_f0"]["mid"]["f0_geomean_hz"] == pytest.approx(150.0, rel=0.07)
    assert doc["check"]["accuracy"] == 1.0 and doc["check"]["count"] == 3

    for key, r in doc["per_utt"].items():
        # the target's voice on the source's f0 contour: classified as the target,
        # f0 follows the source, and the spectrum is nearer the target than the source's
        assert r["predicted"] == r["target_label"] and r["correct"] is True, key
        assert r["f0_track_corr"] > 0.99 and r["f0_track_rmse_cents"] < 20, key
        if key.startswith("timbre"):
            assert r["mcd_db"] is None and "target_reference" not in r
        else:
            assert r["mcd_db"] < 0.5 * r["mcd_source_db"], key
        # the f0 was kept: the converted mean log-f0 is the source's, not the target's
        assert r["log_f0_diff_cents"] == pytest.approx(r["source_log_f0_diff_cents"], abs=20)
        src_f0, tgt_f0 = SPEAKERS[r["source_label"]][1], SPEAKERS[r["target_label"]][1]
        assert r["log_f0_diff_cents"] == pytest.approx(1200 * math.log2(src_f0 / tgt_f0), abs=150)

    s = doc["summary"]
    assert s["count"] == 5 and s["accuracy"] == 1.0 and s["classifier_check_accuracy"] == 1.0
    assert s["n_valid"]["mcd_db"] == 4 and s["mcd_reduction"] > 0.5
    assert s["f0_track_corr"] > 0.99
    assert set(doc["by_pair"]) == {"high->low", "low->high", "low->mid", "mid->high"}
    assert doc["by_pair"]["high->low"]["count"] == 2  # with the reference-less item
    assert doc["by_pair"]["high->low"]["n_valid"]["mcd_db"] == 1

    merged = json.loads(metrics.read_text())
    assert merged["version"] == 1
    assert merged["sets"]["eval"]["systems"]["vc"]["summary"] == s

    # the saved classifier, reused with per-speaker log-f0 from `vocoder stats`
    clf = json.loads((tmp_path / "clf.json").read_text())
    assert sorted(clf["classes"]) == ["high", "low", "mid"]
    stats = {"version": 1, "speakers": {s: {"logf0": {"mean": math.log(SPEAKERS[s][1])}}
                                        for s in SPEAKERS}}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    (tmp_path / "pairs.txt").write_text(
        "".join(line for line in (corpus / "pairs.txt").read_text().splitlines(True)
                if not line.startswith("lost")).replace("conv/", f"{corpus}/conv/")
        .replace("wav/", f"{corpus}/wav/"))
    rc = main(["evaluate-conversion", "--pairs", "pairs.txt", "--classifier", "clf.json",
               "--stats", "stats.json", "--json", "again.json"])
    assert rc == 0, capsys.readouterr().err
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["failed"] == {} and again["target_log_f0"]["mid"]["from"] == "stats"
    assert again["summary"]["accuracy"] == 1.0 and again["check"] is None
    r = again["per_utt"]["low_to_mid"]
    assert r["mcd_db"] == pytest.approx(doc["per_utt"]["low_to_mid"]["mcd_db"])

    # a line's own f0_shift overrides --f0-shift: the unshifted output is then an octave off
    (tmp_path / "pairs.txt").write_text(f"k {corpus}/conv/low_to_mid.wav {corpus}/wav/low.wav low mid - 12\n")
    rc = main(["evaluate-conversion", "--pairs", "pairs.txt", "--classifier", "clf.json",
               "--stats", "stats.json", "--f0-shift", "-5", "--json", "shifted.json"])
    assert rc == 0, capsys.readouterr().err
    r = json.loads((tmp_path / "shifted.json").read_text())["per_utt"]["k"]
    assert r["f0_track_rmse_cents"] == pytest.approx(1200, abs=30)


def test_jobs_survive_pickling(corpus):
    """--nj N sends jobs to spawned processes: a job (classifier included) pickles and
    runs the same after the round trip."""
    from vocoder.cli.evaluate_conversion import _job
    from vocoder.metrics import SpeakerClassifier

    clf = SpeakerClassifier(sample_rate=SR, f0_method="dio").fit_features(
        ["a", "b"], np.stack([np.zeros(24), np.ones(24)]))
    pair = read_pairs(corpus / "pairs.txt")[0]
    opts = {"sample_rate": SR, "hop_length": 80, "f0_method": "dio", "f0_min": 65.0,
            "f0_max": 800.0, "f0_shift": 0.0, "classifier": clf}
    job = ("convert", pair.key, (pair, math.log(150.0)), opts)
    kind, key, ok, result = _job(pickle.loads(pickle.dumps(job)))
    assert (kind, key, ok) == ("convert", "low_to_mid", True)
    assert result == _job(job)[3] and result["correct"] is None  # "mid" is no class here


def test_fail_fast_and_argument_errors(corpus, tmp_path, capsys):
    rc = main(["evaluate-conversion", *common_args(corpus), "--classifier", "absent.json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    assert err[0].startswith("vocoder evaluate-conversion: error: absent.json: cannot read")

    assert main(["evaluate-conversion", "--pairs", str(corpus / "pairs.txt")]) == 1
    assert "--train-data" in capsys.readouterr().err

    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"lost {tmp_path}/lost.wav {corpus}/wav/low.wav low mid\n"
                     f"ok {corpus}/conv/low_to_mid.wav {corpus}/wav/low.wav low mid\n")
    rc = main(["evaluate-conversion", "--pairs", str(pairs), "--f0-method", "dio",
               "--train-data", str(corpus / "data" / "train"), "--fail-fast"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert err[-1].startswith("vocoder evaluate-conversion: error: failed (--fail-fast): "
                              "item lost: ")
    assert "lost.wav: no such file" in err[-1]
