"""`vocoder convert`, `vocoder export-ir` and `synth --reverb-from` on a tiny trained model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from test_cli_train_synth import (
    CONFIG,
    HOP,
    SR,
    UTTS,
    error_lines,
    tone,
    vocoder_inproc,
)

from vocoder.analysis.f0 import estimate_f0
from vocoder.data.dataset import utterance_inputs
from vocoder.data.features import FeatureConfig, compute_features
from vocoder.models import build_model
from vocoder.training.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    load_model,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    """data -> dump -> stats -> a 3-step training run, all in this process."""
    root = tmp_path_factory.mktemp("cli_convert")
    data = root / "data"
    data.mkdir()
    for i, (utt, f0, sec) in enumerate(UTTS):
        sf.write(root / f"{utt}.wav", tone(f0, sec, seed=i), SR)
    (data / "wav.scp").write_text("".join(f"{u} {root / u}.wav\n" for u, _, _ in UTTS))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u, _, _ in UTTS))
    (data / "spk2utt").write_text("spkA spkA_u1 spkA_u2\nspkB spkB_u1 spkB_u2\n")
    rc, err = vocoder_inproc("extract", data, root / "dump", "--streams", "f0,vuv,loudness,mfcc")
    assert rc == 0, err
    rc, err = vocoder_inproc("stats", root / "dump")
    assert rc == 0, err
    (root / "conf.yaml").write_text(yaml.safe_dump(CONFIG))
    rc, err = vocoder_inproc("train", "--config", root / "conf.yaml", "--train-dump", root / "dump",
                             "--exp", root / "exp", "--device", "cpu", "--no-progress",
                             "--set", "train.max_steps=3", "--set", "train.valid_interval=100")
    assert rc == 0, err
    ckpt = list_checkpoints(root / "exp" / "checkpoints")[-1]
    stats = json.loads((root / "dump" / "stats.json").read_text())
    return {"root": root, "data": data, "ckpt": ckpt, "stats": stats}


def convert(exp, *args):
    return vocoder_inproc("convert", "--checkpoint", exp["ckpt"], "--device", "cpu", *args)


def read(path):
    x, sr = sf.read(path, dtype="float32")
    assert sr == SR
    return x


def voiced_logf0(audio):
    f0, vuv = estimate_f0(audio, sample_rate=SR, hop_length=HOP, method="harvest", f0_min=60.0, f0_max=800.0)
    assert vuv.sum() > 10
    return np.log(f0[vuv])


def derived_checkpoint(exp, path, *, model=None, config=None):
    """The trained checkpoint with config sections replaced (None: removed) and, with
    ``model`` settings changed, a freshly initialised model of those settings."""
    state = load_checkpoint(exp["ckpt"])
    cfg = {**state["config"], **(config or {})}
    if model:
        cfg["model"] = {**cfg["model"], **model}
        torch.manual_seed(0)
        state["model"] = build_model(**cfg["model"]).state_dict()
    state["config"] = {k: v for k, v in cfg.items() if v is not None}
    return save_checkpoint(path, state)


# ------------------------------------------------------------------- checkpoint statistics

def test_stats_and_checkpoint_carry_per_speaker_values(exp):
    spk = exp["stats"]["speakers"]
    for name in ("spkA", "spkB"):
        # Non-silent frames are louder on average than all frames (the tones fade at the ends).
        assert spk[name]["loudness_active"]["mean"] >= spk[name]["loudness"]["mean"]
        assert spk[name]["loudness_active"]["count"] <= spk[name]["loudness"]["count"]
    state = load_checkpoint(exp["ckpt"])
    carried = state["config"]["stats"]
    assert carried["speakers"] == spk
    assert carried["global"] == exp["stats"]["global"]
    assert "stats" not in yaml.safe_load((exp["root"] / "exp" / "config.yaml").read_text())


# ---------------------------------------------------------------------------- convert

def test_convert_stats_moves_f0_to_the_target_mean(exp, tmp_path):
    src = exp["root"] / "spkA_u1.wav"
    rc, err = convert(exp, "--target", "spkB", src, tmp_path / "out.wav")
    assert rc == 0, err
    assert "to spkB" in err and "median f0" in err
    out = read(tmp_path / "out.wav")
    assert out.shape == read(src).shape and np.isfinite(out).all()
    target = exp["stats"]["speakers"]["spkB"]["logf0"]["mean"]
    assert abs(np.mean(voiced_logf0(out)) - target) < 0.04  # within 4 %
    assert abs(np.mean(voiced_logf0(read(src))) - target) > 0.4  # the source was far from it


def test_convert_from_source_speaker_statistics(exp, tmp_path):
    rc, err = convert(exp, "--target", "spkB", "--source-speaker", "spkA", exp["root"] / "spkA_u2.wav",
                      tmp_path / "out.wav")
    assert rc == 0, err
    spk = exp["stats"]["speakers"]
    a, b = spk["spkA"]["logf0"], spk["spkB"]["logf0"]
    src = np.mean(voiced_logf0(read(exp["root"] / "spkA_u2.wav")))
    want = (src - a["mean"]) / a["std"] * b["std"] + b["mean"]
    assert abs(np.mean(voiced_logf0(read(tmp_path / "out.wav"))) - want) < 0.04


def test_f0_shift_12_doubles_f0(exp, tmp_path):
    src = exp["root"] / "spkB_u1.wav"
    for shift in (0, 12):
        rc, err = convert(exp, "--target", "spkA", "--f0-transform", "none", "--f0-shift", shift, src,
                          tmp_path / f"{shift}.wav")
        assert rc == 0, err
    ratio = np.exp(np.median(voiced_logf0(read(tmp_path / "12.wav"))) - np.median(voiced_logf0(read(tmp_path / "0.wav"))))
    assert ratio == pytest.approx(2.0, rel=0.03)
    assert np.exp(np.median(voiced_logf0(read(tmp_path / "0.wav")))) == pytest.approx(200.0, rel=0.05)


def test_fold_moves_by_whole_octaves_into_the_target_range(exp, tmp_path):
    # spkB's range is about 195-215 Hz: 120 Hz folds up one octave to 240 Hz, the nearest.
    rc, err = convert(exp, "--target", "spkB", "--f0-transform", "fold", exp["root"] / "spkA_u1.wav",
                      tmp_path / "out.wav")
    assert rc == 0, err
    assert np.exp(np.median(voiced_logf0(read(tmp_path / "out.wav")))) == pytest.approx(240.0, rel=0.05)


def test_mix_with_weights_one_and_zero_equals_target(exp, tmp_path):
    src = exp["root"] / "spkA_u1.wav"
    rc, err = convert(exp, "--target", "spkB", src, tmp_path / "target.wav")
    assert rc == 0, err
    rc, err = convert(exp, "--mix", "spkA:0,spkB:2.5", src, tmp_path / "mix.wav")
    assert rc == 0, err
    np.testing.assert_array_equal(read(tmp_path / "mix.wav"), read(tmp_path / "target.wav"))
    rc, err = convert(exp, "--mix", "spkA:0.5,spkB:0.5", src, tmp_path / "half.wav")
    assert rc == 0, err
    assert np.abs(read(tmp_path / "half.wav") - read(tmp_path / "target.wav")).max() > 1e-3


def model_output(exp, wav, speaker):
    """What the model makes of ``wav`` with no transforms: (audio, dry_audio)."""
    model, state = load_model(exp["ckpt"])
    cfg = FeatureConfig.from_dict({**state["config"]["features"], "streams": ["f0", "vuv", "loudness", "mfcc"]})
    x = read(wav)
    feats = utterance_inputs(compute_features(x, cfg))
    inputs = {k: torch.from_numpy(v).unsqueeze(0) for k, v in feats.items()}
    inputs["speaker"] = torch.tensor([model.speaker_index(speaker)])
    with torch.no_grad():
        out = model(inputs, generator=torch.Generator().manual_seed(0))
    return out["audio"][0, : x.size].numpy(), out["dry_audio"][0, : x.size].numpy()


def test_dry_equals_the_models_dry_audio_and_reverb_from_reproduces_wet(exp, tmp_path):
    src = exp["root"] / "spkB_u2.wav"
    plain = ("--target", "spkA", "--f0-transform", "none", "--loudness-transform", "none")
    wet, dry = model_output(exp, src, "spkA")
    assert np.abs(wet - dry).max() > 1e-2
    outputs = {"wet": (), "dry": ("--dry",), "ckpt": ("--reverb-from", exp["root"] / "exp")}
    rc, err = vocoder_inproc("export-ir", exp["ckpt"], tmp_path / "ir.wav")
    assert rc == 0, err
    outputs["ir"] = ("--reverb-from", tmp_path / "ir.wav")
    for name, extra in outputs.items():
        rc, err = convert(exp, *plain, *extra, src, tmp_path / f"{name}.wav")
        assert rc == 0, (name, err)
    pcm = 1.0 / 32768
    np.testing.assert_allclose(read(tmp_path / "wet.wav"), wet, atol=1.5 * pcm)
    np.testing.assert_allclose(read(tmp_path / "dry.wav"), dry, atol=1.5 * pcm)
    np.testing.assert_array_equal(read(tmp_path / "ckpt.wav"), read(tmp_path / "wet.wav"))
    np.testing.assert_allclose(read(tmp_path / "ir.wav"), wet, atol=2 * pcm)


def test_reverb_from_an_ir_at_another_rate_is_resampled(exp, tmp_path):
    ir = np.zeros(4800, dtype=np.float32)
    ir[0], ir[2400] = 1.0, 0.5  # direct sound and one echo 50 ms later
    sf.write(tmp_path / "ir48k.wav", ir, 48000, subtype="FLOAT")
    common = ("--target", "spkA", "--f0-transform", "none", "--loudness-transform", "none",
              exp["root"] / "spkA_u1.wav")
    rc, err = convert(exp, "--dry", *common, tmp_path / "dry.wav")
    assert rc == 0, err
    rc, err = convert(exp, "--reverb-from", tmp_path / "ir48k.wav", *common, tmp_path / "echo.wav")
    assert rc == 0, err
    dry, echo = read(tmp_path / "dry.wav"), read(tmp_path / "echo.wav")
    lag = int(0.05 * SR)
    want = dry.copy()
    want[lag:] += 0.5 * dry[:-lag]
    assert np.abs(echo - want).max() < 0.02 * np.abs(want).max()


def test_batch_reports_a_corrupt_file_and_converts_the_others(exp, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for utt in ("spkA_u1", "spkB_u1"):
        (src / f"{utt}.wav").write_bytes((exp["root"] / f"{utt}.wav").read_bytes())
    (src / "broken.wav").write_bytes(b"RIFF\x00\x01not a wav file at all")
    rc, err = convert(exp, "--target", "spkB", src, tmp_path / "out")
    assert rc == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["spkA_u1.wav", "spkB_u1.wav"]
    lines = [line for line in err.splitlines() if "broken" in line]
    assert lines and all("broken.wav" in line and "cannot read audio" in line for line in lines)
    assert "2 written to spkB, 1 failed" in err and "failed items:" in err
    rc, err = convert(exp, "--target", "spkB", "--fail-fast", src, tmp_path / "fast")
    assert rc == 1 and not list((tmp_path / "fast").glob("*.wav"))  # 'broken' sorts first


def test_batch_from_a_data_dir_and_a_feature_dump(exp, tmp_path):
    for name, source in (("data", exp["data"]), ("dump", exp["root"] / "dump")):
        rc, err = convert(exp, "--target", "spkA", "--source-speaker", "spkB", source, tmp_path / name)
        assert rc == 0, err
        assert sorted(p.stem for p in (tmp_path / name).glob("*.wav")) == sorted(u for u, _, _ in UTTS)
    for utt, _, sec in UTTS:
        from_data, from_dump = read(tmp_path / "data" / f"{utt}.wav"), read(tmp_path / "dump" / f"{utt}.wav")
        assert from_data.size == round(sec * SR)
        np.testing.assert_array_equal(from_data, from_dump)  # the dump holds the same analysis


def test_f0_method_swaps_the_estimator_of_audio_input(exp, tmp_path):
    """--f0-method praat_ac: the input's f0 comes from Praat (recorded in convert.json);
    the converted tone still plays the source's pitch; a dump input is refused."""
    outs = {}
    for method in (None, "praat_ac"):
        out = tmp_path / (method or "default")
        extra = ("--f0-method", method) if method else ()
        rc, err = convert(exp, "--target", "spkA", "--f0-transform", "none", *extra, exp["data"], out)
        assert rc == 0, err
        outs[method] = read(out / "spkB_u1.wav")
        record = json.loads((out / "convert.json").read_text())
        assert record["settings"].get("f0_method") == method
    assert not np.array_equal(outs[None], outs["praat_ac"])
    for audio in outs.values():
        assert np.exp(np.median(voiced_logf0(audio))) == pytest.approx(200.0, rel=0.05)
    rc, err = convert(exp, "--target", "spkA", "--f0-method", "praat_ac", exp["root"] / "dump", tmp_path / "d")
    assert rc == 1 and "apply to audio input" in err
    # --f0-min/--f0-max: recorded with the conversion; a bad range is refused up front.
    rc, err = convert(exp, "--target", "spkA", "--f0-transform", "none", "--f0-min", "100", "--f0-max", "700",
                      exp["data"], tmp_path / "range")
    assert rc == 0, err
    settings = json.loads((tmp_path / "range" / "convert.json").read_text())["settings"]
    assert (settings["f0_min"], settings["f0_max"]) == (100.0, 700.0) and "f0_method" not in settings
    rc, err = convert(exp, "--target", "spkA", "--f0-max", "20000", exp["root"] / "spkB_u1.wav", tmp_path / "x.wav")
    assert rc == 1 and "below Nyquist" in err


def test_batch_records_shifts_and_a_rerun_skips_finished_items(exp, tmp_path):
    out = tmp_path / "out"
    args = ("--target", "spkB", "--f0-transform", "fold", exp["data"], out)
    rc, err = convert(exp, *args)
    assert rc == 0, err
    record = json.loads((out / "convert.json").read_text())
    assert record["settings"]["f0_transform"] == "fold"
    shifts = {u: e["f0_shift_semitones"] for u, e in record["utterances"].items()}
    assert sorted(shifts) == sorted(u for u, _, _ in UTTS)
    assert all(s is not None and abs(s - 12 * round(s / 12)) < 1e-3 for s in shifts.values())  # whole octaves
    assert shifts["spkA_u1"] == pytest.approx(12.0, abs=1e-3)  # 120 Hz up one octave into spkB's range
    # A crash left one wav missing: the rerun writes only that one and keeps the others.
    (out / "spkA_u2.wav").unlink()
    mtime = (out / "spkB_u1.wav").stat().st_mtime_ns
    rc, err = convert(exp, *args)
    assert rc == 0 and "1 written to spkB, 3 already there" in err, err
    assert (out / "spkA_u2.wav").exists() and (out / "spkB_u1.wav").stat().st_mtime_ns == mtime
    # Other settings rewrite everything.
    rc, err = convert(exp, "--target", "spkB", "--f0-transform", "fold", "--f0-shift", "1", exp["data"], out)
    assert rc == 0 and "4 written to spkB" in err, err
    record = json.loads((out / "convert.json").read_text())
    assert record["utterances"]["spkA_u1"]["f0_shift_semitones"] == pytest.approx(13.0, abs=1e-3)


def test_vtln_factor_warps_the_content_features_and_is_recorded(exp, tmp_path):
    outs = {}
    for vtln in ("none", "1.0", "1.2"):
        rc, err = convert(exp, "--target", "spkB", "--source-speaker", "spkA", "--vtln", vtln, exp["data"],
                          tmp_path / vtln)
        assert rc == 0, err
        record = json.loads((tmp_path / vtln / "convert.json").read_text())
        assert record["settings"]["vtln"] == (vtln if vtln == "none" else float(vtln))
        assert {e["vtln_alpha"] for e in record["utterances"].values()} == {1.0 if vtln != "1.2" else 1.2}
        outs[vtln] = read(tmp_path / vtln / "spkA_u1.wav")
    np.testing.assert_array_equal(outs["none"], outs["1.0"])
    assert np.abs(outs["1.2"] - outs["none"]).max() > 1e-4  # the encoder saw other MFCCs


def test_vtln_auto_uses_formant_statistics(exp, tmp_path):
    from vocoder.conversion import vtln_factor

    src = exp["root"] / "spkA_u1.wav"
    rc, err = convert(exp, "--target", "spkB", "--vtln", "auto", src, tmp_path / "x.wav")
    assert rc != 0 and len(error_lines(err)) == 1
    assert "no formant statistics for spkB" in err and "vocoder stats --formants" in err
    rc, err = vocoder_inproc("stats", exp["root"] / "dump", "--formants", "--out", tmp_path / "stats.json")
    assert rc == 0, err
    stats = json.loads((tmp_path / "stats.json").read_text())
    formants = {spk: stats["speakers"][spk]["formants"]["median_hz"] for spk in ("spkA", "spkB")}
    assert all(len(f) == 3 and 0 < f[0] < f[1] < f[2] < SR / 2 for f in formants.values())
    rc, err = convert(exp, "--target", "spkB", "--source-speaker", "spkA", "--vtln", "auto",
                      "--stats", tmp_path / "stats.json", exp["data"], tmp_path / "auto")
    assert rc == 0, err
    record = json.loads((tmp_path / "auto" / "convert.json").read_text())
    want = vtln_factor(formants["spkA"], formants["spkB"])
    assert [e["vtln_alpha"] for e in record["utterances"].values()] == pytest.approx([want] * len(UTTS))
    # Without --source-speaker, each input utterance's own formants.
    rc, err = convert(exp, "--target", "spkB", "--vtln", "auto", "--stats", tmp_path / "stats.json", src,
                      tmp_path / "one.wav")
    assert rc == 0 and "vtln x" in err, err


def test_errors_are_one_line(exp, tmp_path):
    src = exp["root"] / "spkA_u1.wav"
    rc, err = convert(exp, "--target", "carol", src, tmp_path / "x.wav")
    assert rc == 1 and len(error_lines(err)) == 1
    assert "unknown speaker/instrument 'carol'" in err and "spkA, spkB" in err
    rc, err = convert(exp, "--mix", "spkA:0.5,bob:0.5", src, tmp_path / "x.wav")
    assert rc == 1 and "unknown speaker/instrument 'bob'" in err
    rc, err = convert(exp, "--mix", "spkA:-1", src, tmp_path / "x.wav")
    assert rc == 1 and "weights >= 0" in err
    rc, err = convert(exp, "--target", "spkB", "--source-speaker", "carol", src, tmp_path / "x.wav")
    assert rc == 1 and "no statistics for speaker/instrument 'carol'" in err
    rc, err = convert(exp, "--target", "spkB", tmp_path / "missing.wav", tmp_path / "x.wav")
    assert rc == 1 and len(error_lines(err)) == 1 and "missing.wav" in err
    assert not (tmp_path / "x.wav").exists()


def test_checkpoint_without_speakers_or_statistics(exp, tmp_path):
    src = exp["root"] / "spkA_u1.wav"
    no_spk = derived_checkpoint(exp, tmp_path / "nospk.pt", model={"speakers": None, "n_speakers": 0})
    rc, err = vocoder_inproc("convert", "--checkpoint", no_spk, "--target", "spkA", src, tmp_path / "x.wav")
    assert rc == 1 and len(error_lines(err)) == 1 and "has no speakers or instruments" in err
    # A checkpoint from before the statistics were stored, whose stats file is gone.
    data = {**load_checkpoint(exp["ckpt"])["config"]["data"], "stats": str(tmp_path / "gone.json")}
    old = derived_checkpoint(exp, tmp_path / "old.pt", config={"stats": None, "data": data})
    rc, err = vocoder_inproc("convert", "--checkpoint", old, "--target", "spkB", src, tmp_path / "x.wav")
    assert rc == 1 and "no per-speaker statistics" in err and "--stats" in err
    rc, err = vocoder_inproc("convert", "--checkpoint", old, "--target", "spkB", "--stats",
                             exp["root"] / "dump" / "stats.json", src, tmp_path / "a.wav")
    assert rc == 0, err
    rc, err = vocoder_inproc("convert", "--checkpoint", old, "--target", "spkB", "--f0-transform", "shift",
                             "--loudness-transform", "none", src, tmp_path / "b.wav")
    assert rc == 0, err
    rc, err = convert(exp, "--target", "spkB", src, tmp_path / "c.wav")
    assert rc == 0, err
    np.testing.assert_array_equal(read(tmp_path / "a.wav"), read(tmp_path / "c.wav"))


# ----------------------------------------------------------------- export-ir, synth --reverb-from

def test_export_ir_writes_the_models_impulse_response(exp, tmp_path):
    rc, err = vocoder_inproc("export-ir", exp["root"] / "exp", tmp_path / "ir.wav")
    assert rc == 0, err
    ir, sr = sf.read(tmp_path / "ir.wav", dtype="float32")
    assert sr == SR and sf.info(tmp_path / "ir.wav").subtype == "FLOAT"
    model, _ = load_model(exp["ckpt"])
    with torch.no_grad():
        np.testing.assert_array_equal(ir, model.reverb.impulse_response().numpy())
    assert ir.size == round(CONFIG["model"]["reverb_duration_s"] * SR)
    assert "RT60" in err and f"{ir.size} samples" in err


def test_export_ir_without_reverb_is_an_error(exp, tmp_path):
    dry = derived_checkpoint(exp, tmp_path / "dry.pt", model={"reverb": False})
    for cmd in (("export-ir", dry, tmp_path / "ir.wav"),
                ("synth", "--checkpoint", exp["ckpt"], "--dump", exp["root"] / "dump", "--out", tmp_path / "w",
                 "--reverb-from", dry)):
        rc, err = vocoder_inproc(*cmd)
        assert rc == 1 and len(error_lines(err)) == 1, err
        assert "has no learned reverb" in err and "dry.pt" in err
    assert not (tmp_path / "ir.wav").exists()


def test_synth_reverb_from_the_exported_ir_matches_the_model(exp, tmp_path):
    root = exp["root"]
    rc, err = vocoder_inproc("export-ir", exp["ckpt"], tmp_path / "ir.wav")
    assert rc == 0, err
    base = ("synth", "--checkpoint", exp["ckpt"], "--dump", root / "dump", "--device", "cpu", "--utts", 2)
    for name, extra in (("own", ()), ("ir", ("--reverb-from", tmp_path / "ir.wav")), ("dry", ("--dry",))):
        rc, err = vocoder_inproc(*base, "--out", tmp_path / name, *extra)
        assert rc == 0, err
    for utt in ("spkA_u1", "spkA_u2"):
        own, via_ir = read(tmp_path / "own" / f"{utt}.wav"), read(tmp_path / "ir" / f"{utt}.wav")
        np.testing.assert_allclose(via_ir, own, atol=2.0 / 32768)
        assert np.abs(read(tmp_path / "dry" / f"{utt}.wav") - own).max() > 1e-2
    with pytest.raises(SystemExit):  # argparse: --dry and --reverb-from exclude each other
        vocoder_inproc(*base, "--out", tmp_path / "both", "--dry", "--reverb-from", tmp_path / "ir.wav")


def test_help_lists_the_new_commands():
    import contextlib
    import io

    from vocoder.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    assert "convert" in out.getvalue() and "export-ir" in out.getvalue()
