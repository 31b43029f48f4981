"""TorchScript export of the streaming DDSP model (vocoder.export, `vocoder export`)."""
import pytest
import torch
from test_streaming import DDSP_VARIANTS, ddsp_features, error_db

from vocoder.export import export_torchscript
from vocoder.models.ddsp import DDSP
from vocoder.streaming import offline_reference

@pytest.mark.parametrize("variant", sorted(DDSP_VARIANTS))
def test_exported_equals_offline(variant, tmp_path):
    torch.manual_seed(0)
    model = DDSP(sample_rate=16000, hop_length=160, hidden_size=48, gru_size=48, mlp_layers=2,
                 **DDSP_VARIANTS[variant]).eval()
    n = 203
    x = ddsp_features(n)
    stats = (x["mfcc"].mean(1), x["mfcc"].std(1))
    noise = 2.0 * torch.rand(1, n * 160, generator=torch.Generator().manual_seed(3)) - 1.0
    x_off = dict(x, speaker=torch.tensor([2])) if model.n_speakers else x
    ref = offline_reference(model, x_off, noise=noise, mfcc_stats=stats)
    emb = model.speaker_embedding.weight[2] if model.n_speakers else None
    export_torchscript(model, tmp_path / "m.ts", speaker_embedding=emb, mfcc_stats=(stats[0][0], stats[1][0]))
    ts = torch.jit.load(str(tmp_path / "m.ts"))
    assert ts.delay_samples == 3 * 160
    for frames_per_call in (1, 7, n):
        ts.reset()
        with torch.no_grad():
            outs = [ts(x["f0"][:, a:a + frames_per_call], x["vuv"][:, a:a + frames_per_call],
                       x["loudness"][:, a:a + frames_per_call], x["mfcc"][:, a:a + frames_per_call],
                       noise[:, a * 160:(a + frames_per_call) * 160])
                    for a in range(0, n, frames_per_call)]
            outs.append(ts.flush())
        y = torch.cat(outs, dim=1)
        assert y.shape[1] == n * 160 + ts.delay_samples
        assert y[:, :ts.delay_samples].abs().max() == 0  # the pre-roll is silence
        assert error_db(y[:, ts.delay_samples:], ref) < -60, (variant, frames_per_call)


def test_export_instance_norm_needs_stats(tmp_path):
    model = DDSP(sample_rate=16000, hop_length=160, hidden_size=16, gru_size=16, mlp_layers=1, z_dim=4,
                 encoder_norm="instance").eval()
    with pytest.raises(ValueError, match="mfcc_stats"):
        export_torchscript(model, tmp_path / "m.ts")
    assert not (tmp_path / "m.ts").exists()


@pytest.mark.parametrize("reverb", [False, True])
def test_exported_mel_vocoder_equals_offline(reverb, tmp_path):
    from test_streaming import mel_features
    from vocoder.models.mel_vocoder import MelDDSP
    torch.manual_seed(0)
    model = MelDDSP(sample_rate=22050, hop_length=256, channels=32, reverb=reverb, inference_f0="dump").eval()
    n = 150
    x = mel_features(n)
    noise = torch.randn(1, n * 256, generator=torch.Generator().manual_seed(3))
    ref = offline_reference(model, x, noise=noise)
    export_torchscript(model, tmp_path / "mel.ts")
    ts = torch.jit.load(str(tmp_path / "mel.ts"))
    assert ts.delay_samples == (18 + 1) * 256  # 17 frames of look-ahead + 2
    for frames_per_call in (1, 7, n):
        ts.reset()
        with torch.no_grad():
            outs = [ts(x["mel"][:, a:a + frames_per_call], x["f0"][:, a:a + frames_per_call],
                       x["vuv"][:, a:a + frames_per_call], noise[:, a * 256:(a + frames_per_call) * 256])
                    for a in range(0, n, frames_per_call)]
            outs.append(ts.flush())
        y = torch.cat(outs, dim=1)
        assert y.shape[1] == n * 256 + ts.delay_samples
        assert error_db(y[:, ts.delay_samples:], ref) < -60, frames_per_call
