"""The mel-vocoder recipe (egs/mini/voc2) end to end with its debug config, in a scratch
copy, then `vocoder synth --feats` on a mel feats.scp as a TTS front end would hand it over."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from recipe_helpers import ROOT, recipe_env
from recipe_helpers import make_scratch_recipe as _make

RECIPE = ROOT / "egs" / "mini" / "voc2"


def make_scratch_recipe(tmp_path: Path) -> Path:
    return _make(tmp_path, "voc2")


def _env():
    return recipe_env(OMP_NUM_THREADS="1")  # tiny model; other jobs share the cores


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_debug_recipe_and_synth_from_feats_scp(tmp_path):
    work = make_scratch_recipe(tmp_path)
    res = subprocess.run(["bash", str(work / "run.sh"), "--corpus", str(ROOT / "egs/mini/corpus"),
                          "--debug", "true", "--nj", "2"], cwd=work, env=_env(), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = work / "exp" / "mel_ddsp_debug"
    systems = json.loads((exp / "metrics.json").read_text())["sets"]["speech_eval"]["systems"]
    assert set(systems) == {"ddsp", "world"}
    for name in ("ddsp", "world"):
        for key in ("mcd_db", "f0_rmse_cents", "vuv_error_rate", "mssd"):
            assert key in systems[name]["summary"], (name, key)
    wavs = sorted((exp / "wav" / "speech_eval").glob("*.wav"))
    assert len(wavs) == 4  # one eval utterance per voice
    assert sf.info(str(wavs[0])).samplerate == 22050
    assert (exp / "report" / "index.html").is_file()

    # A mel feats.scp alone (here the dev dump's), written next to nothing else.
    feats = tmp_path / "tts" / "feats.scp"
    feats.parent.mkdir()
    shutil.copy(work / "dump_debug" / "speech_dev" / "mel.scp", feats)
    out = tmp_path / "wav_tts"
    res = subprocess.run([sys.executable, "-m", "vocoder.cli.main", "synth", "--checkpoint", str(exp / "speech"),
                          "--feats", str(feats), "--out", str(out), "--device", "cpu"],
                         cwd=work, env={**_env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    frames = dict(line.split() for line in (work / "dump_debug/speech_dev/utt2num_frames").read_text().splitlines())
    written = sorted(out.glob("*.wav"))
    assert [w.stem for w in written] == sorted(frames)
    for w in written:
        assert sf.info(str(w)).frames == int(frames[w.stem]) * 256
    info = json.loads((out / "synth.json").read_text())
    assert info["utterances"] == len(frames) and info["rtf"] > 0

    # A feats.yaml beside the scp (as in a dump) is checked against the model's analysis.
    (feats.parent / "feats.yaml").write_text("features: {sample_rate: 22050, hop_length: 256, n_mels: 80, "
                                             "mel_f_max: 8000}\n")
    res = subprocess.run([sys.executable, "-m", "vocoder.cli.main", "synth", "--checkpoint", str(exp / "speech"),
                          "--feats", str(feats), "--out", str(tmp_path / "wav_bad")],
                         cwd=work, env={**_env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert res.returncode != 0
    assert "features do not match the model's analysis: mel_f_max=8000.0 (model: 7600.0)" in res.stderr

    # --feats is for mel-only models; --dump and --feats exclude each other.
    res = subprocess.run([sys.executable, "-m", "vocoder.cli.main", "synth", "--checkpoint", str(exp / "speech"),
                          "--feats", str(feats), "--dump", str(work / "dump_debug/speech_dev"), "--out", str(out)],
                         cwd=work, env={**_env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert res.returncode != 0 and "not allowed with argument" in res.stderr


def test_feats_rejects_models_that_need_more_than_mel(tmp_path):
    """A DDSP autoencoder checkpoint (f0, loudness, MFCC inputs) cannot run from a mel."""
    import torch

    from vocoder.cli.main import main
    from vocoder.models import build_model

    model = build_model("ddsp", sample_rate=16000, hop_length=80, n_harmonics=4, n_noise_bands=5, hidden_size=8,
                        gru_size=8, mlp_layers=1, z_dim=0, reverb=False)
    ckpt = tmp_path / "step_00000001.pt"
    torch.save({"model": model.state_dict(), "step": 1,
                "config": {"model": {"name": "ddsp", "sample_rate": 16000, "hop_length": 80, "n_harmonics": 4,
                                     "n_noise_bands": 5, "hidden_size": 8, "gru_size": 8, "mlp_layers": 1,
                                     "z_dim": 0, "reverb": False}}}, ckpt)
    (tmp_path / "feats.scp").write_text("")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["synth", "--checkpoint", str(ckpt), "--feats", str(tmp_path / "feats.scp"),
                   "--out", str(tmp_path / "out")])
    assert rc != 0
    assert "--feats: model 'ddsp' needs the streams f0, vuv, loudness, mfcc, not a mel alone" in err.getvalue()


def test_help_and_shellcheck(tmp_path):
    work = make_scratch_recipe(tmp_path)
    res = subprocess.run(["bash", str(work / "run.sh"), "--help"], cwd=work, capture_output=True, text=True)
    assert res.returncode == 0 and "--stop_stage" in res.stdout + res.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    res = subprocess.run(["shellcheck", "-x", "run.sh"], cwd=RECIPE, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
