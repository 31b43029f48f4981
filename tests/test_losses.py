"""vocoder.losses: multi-scale spectral loss (DDSP SpectralLoss) and distance metric."""
import math

import librosa
import numpy as np
import pytest
import torch

from vocoder.losses import (
    MultiScaleSpectralLoss,
    multiscale_spectral_distance,
    multiscale_spectral_loss,
)


def _pair(batch=3, n=4000, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    target = 0.3 * torch.randn(batch, n, generator=gen, dtype=torch.float64)
    pred = target + 0.05 * torch.randn(batch, n, generator=gen, dtype=torch.float64)
    return pred.to(dtype), target.to(dtype)


def _ddsp_reference(pred, target, *, fft_sizes, overlap, eps):
    """DDSP's SpectralLoss (mag + logmag, weights 1) with its numpy stft_np framing."""
    total = 0.0
    for size in fft_sizes:
        hop = int(size * (1 - overlap))
        n_frames = math.ceil(pred.size / hop)
        pad = (n_frames - 1) * hop + size - pred.size

        def mag(x, size=size, hop=hop, pad=pad):
            x = np.pad(x, (0, pad))
            return np.abs(librosa.stft(x, n_fft=size, hop_length=hop, center=False))

        p, t = mag(pred), mag(target)
        total += np.mean(np.abs(p - t)) + np.mean(np.abs(np.log(p + eps) - np.log(t + eps)))
    return total


def test_matches_ddsp_reference():
    pred, target = _pair(batch=1, n=3000, dtype=torch.float64)
    sizes = (1024, 256, 64)
    ours = multiscale_spectral_loss(pred, target, fft_sizes=sizes, eps=1e-5)
    ref = _ddsp_reference(pred[0].numpy(), target[0].numpy(), fft_sizes=sizes, overlap=0.75,
                          eps=1e-5)
    assert float(ours) == pytest.approx(ref, rel=1e-9)


def test_zero_for_identical_and_positive_otherwise():
    pred, target = _pair()
    assert float(multiscale_spectral_loss(target, target)) == 0.0
    assert float(multiscale_spectral_loss(pred, target)) > 0.0
    assert float(multiscale_spectral_loss(2 * target, target)) > float(
        multiscale_spectral_loss(pred, target)
    )


def test_symmetric():
    pred, target = _pair(dtype=torch.float64)
    forward = multiscale_spectral_loss(pred, target)
    backward = multiscale_spectral_loss(target, pred)
    assert torch.allclose(forward, backward, rtol=1e-12)


def test_batch_consistency_and_reductions():
    pred, target = _pair(batch=4, dtype=torch.float64)
    per_item = multiscale_spectral_loss(pred, target, reduction="none")
    assert per_item.shape == (4,)
    for i in range(4):
        single = multiscale_spectral_loss(pred[i], target[i])
        assert torch.allclose(per_item[i], single, rtol=1e-10)
        assert torch.allclose(multiscale_spectral_loss(pred[i], target[i], reduction="none"),
                              single, rtol=1e-10)
    assert torch.allclose(multiscale_spectral_loss(pred, target), per_item.mean(), rtol=1e-12)
    assert torch.allclose(multiscale_spectral_loss(pred, target, reduction="sum"),
                          per_item.sum(), rtol=1e-12)


def test_sum_over_scales_and_weights():
    pred, target = _pair(batch=2, dtype=torch.float64)
    sizes = (512, 128)
    total = multiscale_spectral_loss(pred, target, fft_sizes=sizes)
    parts = sum(multiscale_spectral_loss(pred, target, fft_sizes=(s,)) for s in sizes)
    assert torch.allclose(total, parts, rtol=1e-12)
    linear = multiscale_spectral_loss(pred, target, fft_sizes=sizes, log_weight=0.0)
    log = multiscale_spectral_loss(pred, target, fft_sizes=sizes, linear_weight=0.0)
    weighted = multiscale_spectral_loss(pred, target, fft_sizes=sizes, linear_weight=2.0,
                                        log_weight=0.5)
    assert torch.allclose(weighted, 2.0 * linear + 0.5 * log, rtol=1e-12)


def test_finite_gradients_including_silent_prediction():
    _, target = _pair()
    for pred in (torch.zeros_like(target), _pair()[0]):
        pred = pred.clone().requires_grad_(True)
        loss = multiscale_spectral_loss(pred, target)
        (grad,) = torch.autograd.grad(loss, pred)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
    both_silent = torch.zeros(2, 1000, requires_grad=True)
    loss = multiscale_spectral_loss(both_silent, torch.zeros(2, 1000))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(both_silent.grad).all()


def test_gradcheck_small():
    pred, target = _pair(batch=2, n=96, dtype=torch.float64)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: multiscale_spectral_loss(p, target, fft_sizes=(32, 16)), (pred,)
    )


def test_training_gradient_equals_plain_autograd():
    """The training path takes each scale's gradient in the forward pass and keeps only
    their sum; a target that needs a gradient goes through plain autograd instead. Both
    must give the same per-item values and the same gradient for any per-item weights,
    for every reduction and for 1-D input."""
    pred, target = _pair(batch=3, n=1500, dtype=torch.float64)
    weights = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    for reduction in ("none", "mean", "sum"):
        grads, values = [], []
        for target_grad in (False, True):
            p = pred.clone().requires_grad_(True)
            t = target.clone().requires_grad_(target_grad)
            loss = multiscale_spectral_loss(p, t, fft_sizes=(256, 64), eps=1e-5, reduction=reduction)
            (loss * weights).sum().backward() if reduction == "none" else loss.backward()
            grads.append(p.grad)
            values.append(loss.detach())
        torch.testing.assert_close(values[0], values[1], rtol=1e-12, atol=0)
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-18)
        assert grads[0].abs().sum() > 0
    one = pred[0].clone().requires_grad_(True)
    multiscale_spectral_loss(one, target[0], fft_sizes=(128,)).backward()
    row = pred[:1].clone().requires_grad_(True)
    multiscale_spectral_loss(row, target[:1], fft_sizes=(128,)).backward()
    torch.testing.assert_close(one.grad, row.grad[0], rtol=1e-12, atol=0)


_FUSED_CASES = [
    dict(n=4000, fft_sizes=(2048, 512, 128, 32)),
    dict(n=3000, fft_sizes=(25, 75), overlap=0.2),  # odd FFT sizes (no Nyquist bin), hop not a divisor
    dict(n=1500, fft_sizes=(64,), linear_weight=0.0),
    dict(n=1500, fft_sizes=(256,), log_weight=0.0, linear_weight=2.0),
    dict(n=300, fft_sizes=(2048, 1024), eps=1e-5),  # shorter than the FFT
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", range(len(_FUSED_CASES)))
def test_compiled_training_path_equals_autograd(monkeypatch, dtype, case):
    """On the CPU the training path computes each scale's value and gradient by a
    compiled pass (spectrum, magnitude gradient, inverse FFT, overlap-add) instead of
    autograd through the STFT: the same values and gradients up to rounding, for odd and
    even FFT sizes, either weight off, input shorter than the FFT, silent stretches and
    a strided (non-contiguous) prediction."""
    import vocoder.losses as losses

    if losses._compile_kernels() is None:
        pytest.skip("numba is not installed")
    kwargs = dict(_FUSED_CASES[case])
    n = kwargs.pop("n")
    pred, target = _pair(batch=3, n=2 * n, seed=case, dtype=dtype)
    pred, target = pred[:, ::2], target[:, ::2].contiguous()  # pred strided
    pred[0, : n // 3] = 0.0  # silence in both, then in the prediction only
    target[0, : n // 4] = 0.0
    weights = torch.tensor([1.5, -0.5, 2.0], dtype=dtype)
    built = []
    fused_piece = losses._fused_piece
    monkeypatch.setattr(losses, "_fused_piece", lambda *a: built.append(a[1]) or fused_piece(*a))
    results = []
    for fast in (True, False):
        monkeypatch.setattr(losses, "_FAST_LOSS", fast)
        p = pred.clone().requires_grad_(True)
        values = multiscale_spectral_loss(p, target, reduction="none", **kwargs)
        (values * weights).sum().backward()
        results.append((values.detach(), p.grad))
    assert built == list(kwargs["fft_sizes"])  # the compiled pass ran, once per scale
    (v_fast, g_fast), (v_ref, g_ref) = results
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(v_fast, v_ref, **tol)
    scale = float(g_ref.abs().max())
    assert scale > 0 and torch.isfinite(g_fast).all()
    torch.testing.assert_close(g_fast / scale, g_ref / scale, rtol=0, atol=tol["rtol"] * 10)


def test_compiled_training_path_non_finite_input(monkeypatch):
    """A NaN or inf in the prediction gives a non-finite loss on the compiled path too (the
    trainer detects such steps by the loss value and skips them)."""
    import vocoder.losses as losses

    if losses._compile_kernels() is None:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(losses, "_FAST_LOSS", True)
    for bad in (float("nan"), float("inf")):
        pred, target = _pair(batch=2, n=2000)
        pred[1, 700] = bad
        p = pred.requires_grad_(True)
        values = multiscale_spectral_loss(p, target, reduction="none", fft_sizes=(256, 64))
        assert torch.isfinite(values[0]) and not torch.isfinite(values[1])


def test_float64_and_short_inputs():
    pred, target = _pair(batch=2, n=300, dtype=torch.float64)  # shorter than 2048
    loss = multiscale_spectral_loss(pred, target)
    assert loss.dtype == torch.float64 and torch.isfinite(loss)
    one = multiscale_spectral_loss(pred[:, :1], target[:, :1])
    assert torch.isfinite(one)


def test_module_matches_function():
    pred, target = _pair()
    module = MultiScaleSpectralLoss(fft_sizes=(1024, 256, 64), log_weight=0.5)
    expected = multiscale_spectral_loss(pred, target, fft_sizes=(1024, 256, 64), log_weight=0.5)
    assert torch.allclose(module(pred, target), expected, rtol=1e-6)
    assert module.state_dict() == {}  # windows are not saved in checkpoints
    assert torch.allclose(module(pred.double(), target.double()), expected.double(), rtol=1e-5)
    assert MultiScaleSpectralLoss(reduction="none")(pred, target).shape == (3,)


def test_distance_metric():
    pred, target = _pair(dtype=torch.float64)
    value = multiscale_spectral_distance(pred, target)
    assert isinstance(value, float)
    assert value == pytest.approx(float(multiscale_spectral_loss(pred, target)), rel=1e-12)
    per_item = multiscale_spectral_distance(pred.numpy(), target.numpy(), reduction="none")
    assert isinstance(per_item, np.ndarray) and per_item.shape == (3,)
    assert multiscale_spectral_distance(target[0].numpy(), target[0].numpy()) == 0.0
    grad_input = pred.clone().requires_grad_(True)
    assert isinstance(multiscale_spectral_distance(grad_input, target), float)


def test_errors():
    pred, target = _pair()
    with pytest.raises(ValueError, match="same shape"):
        multiscale_spectral_loss(pred, target[:, :-1])
    with pytest.raises(ValueError, match="overlap"):
        multiscale_spectral_loss(pred, target, fft_sizes=(100,), overlap=0.75 + 1e-3)
    with pytest.raises(ValueError, match="reduction"):
        multiscale_spectral_loss(pred, target, reduction="max")
    with pytest.raises(ValueError, match="overlap"):
        MultiScaleSpectralLoss(fft_sizes=(6,))


# ------------------------------------------------------------------ log-mel loss

def _log_mel_reference(x, *, sr, n_fft, n_mels, eps):
    """ln of the librosa mel filterbank applied to |STFT| with the loss's pad_end framing."""
    hop = n_fft // 4
    n_frames = math.ceil(x.size / hop)
    x = np.pad(x, (0, (n_frames - 1) * hop + n_fft - x.size))
    mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, center=False))
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=False, norm="slaney")
    return np.log(np.maximum(fb @ mag, eps))


def test_log_mel_loss_matches_librosa_reference():
    from vocoder.losses import LogMelLoss

    pred, target = _pair(batch=2, n=6000, dtype=torch.float64)
    loss = LogMelLoss(sample_rate=16000, n_fft=512, n_mels=40, reduction="none")
    got = loss(pred, target).numpy()
    want = [np.mean(np.abs(_log_mel_reference(p, sr=16000, n_fft=512, n_mels=40, eps=1e-5)
                           - _log_mel_reference(t, sr=16000, n_fft=512, n_mels=40, eps=1e-5)))
            for p, t in zip(pred.numpy(), target.numpy())]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_log_mel_loss_reads_a_gain_as_its_log():
    """A gain g above the floor shifts every log-mel value by ln g: the loss is |ln g|."""
    from vocoder.losses import LogMelLoss

    _, target = _pair(batch=1, n=8000, dtype=torch.float64)
    loss = LogMelLoss(sample_rate=16000, n_fft=1024, n_mels=80)
    assert float(loss(target, target)) == 0.0
    for g in (0.5, 2.0, 10.0):
        assert float(loss(g * target, target)) == pytest.approx(abs(math.log(g)), rel=1e-9)


def test_log_mel_loss_training_gradient_equals_plain_autograd():
    """As the multi-scale loss: the gradient taken in the forward pass (a target without
    gradient) equals plain autograd's (a target that needs one), per-item weights too."""
    from vocoder.losses import LogMelLoss

    pred, target = _pair(batch=3, n=2000, dtype=torch.float64)
    weights = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    loss = LogMelLoss(sample_rate=16000, n_fft=256, n_mels=40, reduction="none").double()
    grads = []
    for target_grad in (False, True):
        p = pred.clone().requires_grad_(True)
        (loss(p, target.clone().requires_grad_(target_grad)) * weights).sum().backward()
        grads.append(p.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-18)
    assert torch.autograd.gradcheck(lambda p: loss(p, target[:1, :300]), (pred[:1, :300].clone().requires_grad_(True),))


def test_log_mel_loss_gradient_and_errors():
    from vocoder.losses import LogMelLoss

    pred, target = _pair(batch=2, n=3000)
    pred = torch.zeros_like(pred).requires_grad_(True)  # silent prediction: floored, still finite
    LogMelLoss(sample_rate=22050, n_fft=1024)(pred, target).backward()
    assert torch.isfinite(pred.grad).all()
    with pytest.raises(ValueError, match="hold no FFT bin"):
        LogMelLoss(sample_rate=16000, n_fft=64, n_mels=80)
    with pytest.raises(ValueError, match="same shape"):
        LogMelLoss(sample_rate=16000)(torch.zeros(1, 100), torch.zeros(1, 200))
