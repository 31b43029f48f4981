"""`vocoder export`: the TorchScript streaming model, checked, and run without the package."""
import subprocess
import sys
from pathlib import Path

import soundfile as sf
from test_cli_stream import make_checkpoint
from test_cli_train_synth import vocoder_inproc

ROOT = Path(__file__).resolve().parents[2]


def test_cli_export_and_standalone_example(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ckpt.pt")
    out = tmp_path / "model.ts"
    rc, err = vocoder_inproc("export", "--checkpoint", ckpt, out, "--speaker", "spkB")
    assert rc == 0, err
    assert out.is_file() and not (tmp_path / "model.ts.tmp").exists()
    assert "equals the eager stream within" in err
    rc, err = vocoder_inproc("export", "--checkpoint", ckpt, tmp_path / "x.onnx", "--format", "onnx")
    assert rc != 0 and "rfft" in err and not (tmp_path / "x.onnx").exists()
    # The example runs with torch alone: importing `vocoder` is made to fail.
    code = ("import sys, runpy; sys.modules['vocoder'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "run_exported.py"), str(out),
                          str(tmp_path / "ex.wav"), "--n-mfcc", "12"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    y, sr = sf.read(tmp_path / "ex.wav")
    assert sr == 16000 and len(y) == 300 * 80 and abs(y).max() > 0


def test_cli_export_mel_vocoder(tmp_path):
    import torch
    from test_cli_train_synth import CONFIG

    from vocoder.models import build_model
    from vocoder.training.checkpoint import save_checkpoint
    model_cfg = {"name": "mel_ddsp", "sample_rate": 22050, "hop_length": 256, "channels": 16, "conv_layers": 2}
    torch.manual_seed(0)
    model = build_model(**model_cfg)
    cfg = {**CONFIG, "features": {"sample_rate": 22050, "hop_length": 256}, "model": model_cfg}
    ckpt = save_checkpoint(tmp_path / "mel.pt", {"model": model.state_dict(), "config": cfg, "step": 0})
    rc, err = vocoder_inproc("export", "--checkpoint", ckpt, tmp_path / "mel.ts")
    assert rc == 0, err
    ts = torch.jit.load(str(tmp_path / "mel.ts"))
    with torch.no_grad():
        y = torch.cat([ts(torch.randn(1, 40, 80) - 2.0), ts.flush()], dim=1)
    assert y.shape == (1, 40 * 256 + ts.delay_samples) and torch.isfinite(y).all()
    rc, err = vocoder_inproc("export", "--checkpoint", ckpt, tmp_path / "x.ts", "--speaker", "a")
    assert rc != 0 and "mel vocoder" in err
