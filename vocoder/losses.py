"""Multi-scale spectral loss (DDSP's ``SpectralLoss``), also used as a metric.

For each FFT size ``s`` (hop ``s * (1 - overlap)``, periodic Hann window), with
magnitude spectrograms ``P`` of the prediction and ``T`` of the target::

    loss_s = linear_weight * mean |P - T| + log_weight * mean |log(P + eps) - log(T + eps)|

and the loss is the *sum* of ``loss_s`` over the scales, as in DDSP (each mean runs
over frames and bins, and over the batch unless ``reduction`` says otherwise).
Frames follow DDSP's ``stft(..., pad_end=True)``: frame ``n`` starts at sample
``n * hop``, the signal is zero-padded at the end, and ``ceil(samples / hop)`` frames
are taken, so any length works, also shorter than the largest FFT.

The DDSP paper trains with both terms weighted 1 (the defaults here); DDSP's code
uses ``eps = 1e-5`` inside the log, this module 1e-7 by default.

In training (a gradient wanted for the prediction only) each scale's value and gradient
are taken in the forward pass. On the CPU that is a compiled loop (numba) per scale
instead of autograd through ``torch.stft``: one pass over the two spectra gives the
linear distance, the log ratio and the gradient with respect to the prediction's
spectrum (``d/dP |P| = P / |P|``, and ``sign(log(|P| + eps) - log(|T| + eps)) =
sign(|P| - |T|)``), then an inverse real FFT and an overlap-add give the gradient with
respect to the signal. The same values and gradients as autograd's up to float
rounding, in a third to a half of the time (16 x 1 s at 16 kHz, the trainer's six
scales: 58 -> 28 ms on two cores, ``benchmarks/train_speed.py --phases``);
``VOCODER_FAST_LOSS=0`` keeps autograd.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from torch import nn

from vocoder._threads import over_rows
from vocoder.dsp.spectral import get_window, mel_filterbank, stft

__all__ = [
    "LogMelLoss",
    "MultiScaleSpectralLoss",
    "multiscale_spectral_distance",
    "multiscale_spectral_loss",
]

DEFAULT_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
_REDUCTIONS = ("mean", "sum", "none")
# The compiled value-and-gradient of a scale on the CPU (_fused_piece); VOCODER_FAST_LOSS=0 keeps autograd.
_FAST_LOSS = os.environ.get("VOCODER_FAST_LOSS", "1") != "0"


def _hop(fft_size: int, overlap: float) -> int:
    hop = fft_size * (1.0 - overlap)
    if not 0.0 <= overlap < 1.0 or hop != int(hop) or hop < 1:
        raise ValueError(
            f"overlap={overlap} with fft_size={fft_size} must give a whole hop of at "
            f"least one sample (fft_size * (1 - overlap) = {hop})"
        )
    return int(hop)


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"{name}: expected a floating torch.Tensor, got {type(x).__name__}")
        if x.ndim not in (1, 2) or x.shape[-1] == 0:
            raise ValueError(
                f"{name}: expected (batch, samples) or (samples,), got shape {tuple(x.shape)}"
            )
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )


def _padded_magnitudes(audio: torch.Tensor, fft_size: int, hop: int, window) -> torch.Tensor:
    """(batch, samples) -> (batch, ceil(samples / hop), fft_size // 2 + 1), pad_end."""
    n_samples = audio.shape[-1]
    frames = -(-n_samples // hop)
    pad = (frames - 1) * hop + fft_size - n_samples
    padded = torch.nn.functional.pad(audio, (0, pad))
    spec = stft(padded, n_fft=fft_size, hop_length=hop, window=window, center=False)
    return spec.abs()


def multiscale_spectral_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
    overlap: float = 0.75,
    linear_weight: float = 1.0,
    log_weight: float = 1.0,
    eps: float = 1e-7,
    reduction: str = "mean",
    windows: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Multi-scale spectral loss between two signals (see the module docstring).

    Args:
        pred: (batch, samples) or (samples,) predicted audio.
        target: same shape as ``pred``.
        fft_sizes: FFT sizes, one scale each; ``fft_size * (1 - overlap)`` must be a
            whole number of samples.
        overlap: fraction of a frame shared with the next.
        linear_weight: weight of the L1 distance of magnitudes.
        log_weight: weight of the L1 distance of log magnitudes.
        eps: added to magnitudes inside the log (keeps the loss and its gradient
            finite for silent input).
        reduction: "mean" (scalar, mean over batch items), "sum" (scalar, sum over
            items) or "none" ((batch,) per item; () for 1-D input).
        windows: optional precomputed Hann windows, one per FFT size (as cached by
            :class:`MultiScaleSpectralLoss`).
    Returns:
        the loss, dtype of the inputs; differentiable in ``pred`` (and ``target``).
    """
    _check_pair(pred, target)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    if len(fft_sizes) == 0:
        raise ValueError("fft_sizes: need at least one FFT size")
    if windows is not None and len(windows) != len(fft_sizes):
        raise ValueError(f"windows: got {len(windows)} windows for {len(fft_sizes)} FFT sizes")
    squeeze = pred.ndim == 1
    batch = 1 if squeeze else pred.shape[0]
    pred2, target2 = pred.reshape(batch, -1), target.reshape(batch, -1)
    # A target without gradient (the usual case) is analysed outside autograd: its
    # STFT backward and stored intermediates would be pure waste.
    target_grad = target.requires_grad and torch.is_grad_enabled()

    def scale(fft_size, hop, window):
        def distance(p):
            with torch.set_grad_enabled(target_grad):
                t = _padded_magnitudes(target2, fft_size, hop, window)
                log_t = torch.log(t + eps) if log_weight else None
            return _scale_distance(p, t, log_t, fft_size, hop, window, linear_weight, log_weight, eps)
        return distance

    pieces = []
    for i, fft_size in enumerate(fft_sizes):
        window = "hann" if windows is None else windows[i].to(pred2.dtype)
        pieces.append(scale(int(fft_size), _hop(int(fft_size), overlap), window))
    # Training (a gradient for pred only): each scale's gradient is taken at once and
    # only their sum is kept for backward (_GradientInForward), instead of every scale's
    # spectrogram intermediates; the same values and gradients.
    if _gradient_in_forward(pred2, target2):
        if _fused_applies(pred2):
            fused = []
            for i, fft_size in enumerate(fft_sizes):
                n = int(fft_size)
                window = (get_window("hann", n, dtype=pred2.dtype) if windows is None
                          else windows[i].to(pred2.dtype))
                fused.append(_fused_piece(target2, n, _hop(n, overlap), window, linear_weight, log_weight, eps))
            per_item = _GradientInForward.apply(pred2, fused)
        else:
            per_item = _GradientInForward.apply(pred2, [_autograd_piece(d) for d in pieces])
    else:
        per_item = pred2.new_zeros(batch)
        for distance in pieces:
            per_item = per_item + distance(pred2)

    if reduction == "mean":
        return per_item.mean()
    if reduction == "sum":
        return per_item.sum()
    return per_item[0] if squeeze else per_item


class _GradientInForward(torch.autograd.Function):
    """Per-item loss of ``pred`` (batch, samples) whose gradient is taken in the forward pass.

    ``pieces`` are functions of ``pred`` to ``(values, gradient)``: (batch,) per-item
    values, each row's value a function of that row alone (a spectral distance to a fixed
    target), and the gradient of their sum with respect to ``pred``
    (:func:`_autograd_piece` makes one from a differentiable function, :func:`_fused_piece`
    computes both directly). The result is the sum of the values. Because the rows are
    independent, the gradient of the sum over items holds every item's own gradient, and
    backward scales its rows by the incoming per-item gradient. The pieces run one after
    the other, each freeing its intermediates at once, so what a training step keeps
    until backward is one tensor the size of ``pred``, not every piece's spectrogram
    intermediates. Values and gradients are those of autograd through the pieces.
    """

    @staticmethod
    def forward(ctx, pred, pieces):
        grad = torch.zeros_like(pred)
        per_item = pred.new_zeros(pred.shape[0])
        for piece in pieces:
            d, g = piece(pred.detach())
            grad += g
            per_item += d
            del d, g
        ctx.save_for_backward(grad)
        return per_item

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_items):
        (grad,) = ctx.saved_tensors
        return grad * grad_items.unsqueeze(-1), None


def _autograd_piece(distance):
    """A :class:`_GradientInForward` piece from a differentiable ``distance(pred) -> (batch,)``:
    its values and, by autograd, the gradient of their sum."""
    def piece(pred):
        with torch.enable_grad():
            p = pred.detach().requires_grad_(True)
            d = distance(p)
            (g,) = torch.autograd.grad(d.sum(), p)
        return d.detach(), g
    return piece


_kernels = None


def _compile_kernels():
    """The scale's value-and-gradient pass and the overlap-add as compiled loops (numba),
    or None without numba. Both work on rows ``lo`` to ``hi`` (the last two arguments),
    so that threads can share the batch."""
    global _kernels
    if _kernels is not None:
        return _kernels or None
    try:
        import numba
    except ImportError:
        _kernels = ()
        return None

    # Fast-math without the no-NaN/no-inf assumptions: a non-finite prediction must give a
    # non-finite loss (the trainer skips such steps); x / 0 gives inf, as in torch.
    flags = {"nsz", "arcp", "contract", "afn", "reassoc"}

    @numba.njit(cache=True, fastmath=flags, nogil=True, error_model="numpy")
    def value_and_grad(p, t, ratio, lin_sums, consts, n_fft, lo, hi):  # pragma: no cover - compiled
        # p, t: (rows, frames, bins, 2) real and imaginary parts of the prediction's and the
        # target's spectra; p is overwritten by the gradient that the inverse real FFT turns
        # into the frames' gradient. ratio: (rows, frames, bins) out, (|P| + eps) / (|T| + eps).
        # consts, in p's dtype: linear weight, log weight, eps, the scale of the interior
        # bins' gradient, a tiny magnitude, 0.
        frames, bins = p.shape[1], p.shape[2]
        lin_w, log_w, eps, half, tiny, zero = consts[0], consts[1], consts[2], consts[3], consts[4], consts[5]
        for r in range(lo, hi):
            total = 0.0
            for f in range(frames):
                acc = zero
                for k in range(bins):
                    pr = p[r, f, k, 0]
                    pi = p[r, f, k, 1]
                    tr = t[r, f, k, 0]
                    ti = t[r, f, k, 1]
                    mp = np.sqrt(pr * pr + pi * pi)
                    mt = np.sqrt(tr * tr + ti * ti)
                    a = mp + eps
                    ratio[r, f, k] = a / (mt + eps)
                    d = mp - mt
                    acc += abs(d)
                    w = np.sign(d) * (lin_w + log_w / a) * half / max(mp, tiny)
                    p[r, f, k, 0] = pr * w
                    p[r, f, k, 1] = pi * w
                total += acc
                p[r, f, 0, 0] *= 2
                p[r, f, 0, 1] *= 2
                if n_fft % 2 == 0:  # a Nyquist bin
                    p[r, f, bins - 1, 0] *= 2
                    p[r, f, bins - 1, 1] *= 2
            lin_sums[r] = total

    @numba.njit(cache=True, fastmath=flags, nogil=True, error_model="numpy")
    def overlap_add(frames, window, out, hop, lo, hi):  # pragma: no cover - compiled
        n_frames, n = frames.shape[1], frames.shape[2]
        for r in range(lo, hi):
            for f in range(n_frames):
                start = f * hop
                for i in range(n):
                    out[r, start + i] += frames[r, f, i] * window[i]

    _kernels = (value_and_grad, overlap_add)
    return _kernels


def _fused_applies(pred: torch.Tensor) -> bool:
    """Whether the training path may use :func:`_fused_piece`: a CPU float32/float64
    prediction, ``VOCODER_FAST_LOSS`` not 0, numba there."""
    return (_FAST_LOSS and pred.device.type == "cpu" and pred.dtype in (torch.float32, torch.float64)
            and _compile_kernels() is not None)


def _frames_spectrum(audio: torch.Tensor, fft_size: int, hop: int, window: torch.Tensor):
    """The pad_end frames' spectra, (batch, frames, bins) complex and contiguous, and the
    padded length (see :func:`_padded_magnitudes`)."""
    n_samples = audio.shape[-1]
    frames = -(-n_samples // hop)
    padded_len = (frames - 1) * hop + fft_size
    padded = torch.nn.functional.pad(audio, (0, padded_len - n_samples))
    return torch.fft.rfft(padded.unfold(-1, fft_size, hop) * window), padded_len


def _fused_piece(target, fft_size, hop, window, linear_weight, log_weight, eps):
    """A :class:`_GradientInForward` piece for one scale: the same values and gradient as
    :func:`_autograd_piece` of :func:`_scale_distance`, computed by the compiled pass
    (module docstring) instead of autograd."""
    value_and_grad, overlap_add = _compile_kernels()

    def piece(pred):
        batch, n_samples = pred.shape
        with torch.no_grad():
            spec, padded_len = _frames_spectrum(pred, fft_size, hop, window)
            spec_t, _ = _frames_spectrum(target.detach(), fft_size, hop, window)
            n_frames, n_bins = spec.shape[1], spec.shape[2]
            ratio = pred.new_empty(batch, n_frames, n_bins)
            lin_sums = np.zeros(batch)
            np_dtype = ratio.numpy().dtype
            # irfft(Y) * n = Re(Y_0) + 2 sum Re(Y_k e^(2 pi i k m / n)) + Re(Y_nyq) (-1)^m over
            # the interior bins k: their gradient is halved (the kernel doubles bin 0 and
            # Nyquist back), times n for irfft's 1 / n, over the mean's frames * bins.
            half = 0.5 * fft_size / (n_frames * n_bins)
            # A bin of the prediction with |P| < 1e-20 (in practice exactly 0) gets no gradient
            # instead of P / |P|'s unit direction; 1 / 1e-20 keeps the products finite in float32.
            consts = np.array([linear_weight, log_weight, eps, half, 1e-20, 0.0], dtype=np_dtype)
            over_rows(value_and_grad, batch, torch.view_as_real(spec).numpy(), torch.view_as_real(spec_t).numpy(),
                      ratio.numpy(), lin_sums, consts, fft_size)
            values = torch.from_numpy(lin_sums * (linear_weight / (n_frames * n_bins))).to(pred.dtype)
            if log_weight:
                values += (log_weight / (n_frames * n_bins)) * ratio.log_().abs_().sum(dim=(-2, -1))
            del ratio, spec_t
            frame_grads = torch.fft.irfft(spec, n=fft_size)
            del spec
            grad = pred.new_zeros(batch, padded_len)
            over_rows(overlap_add, batch, frame_grads.numpy(), window.contiguous().numpy(), grad.numpy(), hop)
        return values, grad[:, :n_samples]
    return piece


def _gradient_in_forward(pred: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether a loss takes :class:`_GradientInForward`: a gradient wanted for ``pred``
    only (the training case; a target that needs one goes through plain autograd)."""
    return pred.requires_grad and torch.is_grad_enabled() and not target.requires_grad


def _scale_distance(pred, t, log_t, fft_size, hop, window, linear_weight, log_weight, eps):
    """Per-item spectral distance at one FFT size, given the target's magnitudes."""
    p = _padded_magnitudes(pred, fft_size, hop, window)
    out = pred.new_zeros(pred.shape[0])
    if linear_weight:
        out = out + linear_weight * (p - t).abs().mean(dim=(-2, -1))
    if log_weight:
        out = out + log_weight * (torch.log(p + eps) - log_t).abs().mean(dim=(-2, -1))
    return out


@torch.no_grad()
def multiscale_spectral_distance(
    pred,
    target,
    *,
    fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
    overlap: float = 0.75,
    linear_weight: float = 1.0,
    log_weight: float = 1.0,
    eps: float = 1e-7,
    reduction: str = "mean",
):
    """:func:`multiscale_spectral_loss` as a metric: no gradient, plain numbers.

    Args:
        pred, target: (batch, samples) or (samples,) numpy arrays or tensors of the
            same shape (numpy input is read as float64 unless it is float32).
        reduction: "mean" -> float (mean over items); "none" -> (batch,) float64
            numpy array, or a float for 1-D input.
        others: as :func:`multiscale_spectral_loss`.
    Returns:
        the distance (0 for identical signals).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    pred, target = (_as_tensor(x) for x in (pred, target))
    if pred.dtype != target.dtype:
        pred, target = pred.double(), target.double()
    value = multiscale_spectral_loss(
        pred,
        target,
        fft_sizes=fft_sizes,
        overlap=overlap,
        linear_weight=linear_weight,
        log_weight=log_weight,
        eps=eps,
        reduction=reduction,
    )
    if value.ndim == 0:
        return float(value)
    return value.double().cpu().numpy()


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    x = np.asarray(x)
    return torch.from_numpy(x if x.dtype == np.float32 else x.astype(np.float64))


class MultiScaleSpectralLoss(nn.Module):
    """Module form of :func:`multiscale_spectral_loss`.

    Stores the settings and one Hann window per FFT size as non-persistent buffers
    (they follow ``.to(device)`` but are not written to checkpoints).

    Shapes: ``forward(pred, target)`` with (batch, samples) tensors -> scalar loss (or
    (batch,) with ``reduction="none"``).
    """

    def __init__(
        self,
        *,
        fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
        overlap: float = 0.75,
        linear_weight: float = 1.0,
        log_weight: float = 1.0,
        eps: float = 1e-7,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
        self.fft_sizes = tuple(int(s) for s in fft_sizes)
        if not self.fft_sizes:
            raise ValueError("fft_sizes: need at least one FFT size")
        for size in self.fft_sizes:
            _hop(size, overlap)
        self.overlap = float(overlap)
        self.linear_weight = float(linear_weight)
        self.log_weight = float(log_weight)
        self.eps = float(eps)
        self.reduction = reduction
        for size in self.fft_sizes:
            self.register_buffer(f"window_{size}", get_window("hann", size), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return multiscale_spectral_loss(
            pred,
            target,
            fft_sizes=self.fft_sizes,
            overlap=self.overlap,
            linear_weight=self.linear_weight,
            log_weight=self.log_weight,
            eps=self.eps,
            reduction=self.reduction,
            windows=[getattr(self, f"window_{size}") for size in self.fft_sizes],
        )

    def extra_repr(self) -> str:
        return (
            f"fft_sizes={self.fft_sizes}, overlap={self.overlap}, "
            f"linear_weight={self.linear_weight}, log_weight={self.log_weight}, "
            f"eps={self.eps}, reduction={self.reduction!r}"
        )


class LogMelLoss(nn.Module):
    """L1 distance of log mel spectrograms (HiFi-GAN's mel-spectrogram loss).

    ``mean |ln(max(M_pred, eps)) - ln(max(M_target, eps))|`` over frames and bands, with
    ``M`` the magnitude spectrogram (periodic Hann window of ``n_fft``, hop
    ``n_fft // 4``, frames as in :func:`multiscale_spectral_loss`: ``pad_end``) times a
    Slaney mel filterbank of ``n_mels`` bands over ``f_min``..``f_max``.

    The multi-scale spectral loss weighs every linear-frequency bin alike, so most of
    its weight lies above 2 kHz; this term spends its weight on a mel scale, as
    mel-cepstral distortion (MCD) does. ``TrainConfig.mel_loss_weight`` adds it to the
    training loss.

    Shapes: ``forward(pred, target)`` with (batch, samples) tensors -> scalar (the mean
    over items), or (batch,) with ``reduction="none"``.
    """

    def __init__(self, *, sample_rate: float, n_fft: int = 1024, n_mels: int = 80, f_min: float = 0.0,
                 f_max: float | None = None, eps: float = 1e-5, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
        self.n_fft = int(n_fft)
        if self.n_fft < 4:
            raise ValueError(f"n_fft must be at least 4, got {n_fft}")
        self.hop = self.n_fft // 4
        self.eps = float(eps)
        self.reduction = reduction
        fb = mel_filterbank(sample_rate=sample_rate, n_fft=self.n_fft, n_mels=int(n_mels), f_min=f_min,
                            f_max=f_max)
        if bool((fb.sum(dim=0) <= 0).any()):
            raise ValueError(f"LogMelLoss: {n_mels} mel bands over {f_min}-{f_max} Hz are too many for "
                             f"n_fft {n_fft} at {sample_rate} Hz: some bands hold no FFT bin")
        self.register_buffer("filterbank", fb, persistent=False)
        self.register_buffer("window", get_window("hann", self.n_fft), persistent=False)

    def _log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        mag = _padded_magnitudes(audio, self.n_fft, self.hop, self.window.to(audio.dtype))
        return torch.log((mag @ self.filterbank.to(mag.dtype)).clamp(min=self.eps))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_pair(pred, target)
        squeeze = pred.ndim == 1
        pred2, target2 = pred.reshape(-1, pred.shape[-1]), target.reshape(-1, target.shape[-1])
        with torch.set_grad_enabled(target.requires_grad and torch.is_grad_enabled()):
            t = self._log_mel(target2)

        def distance(p):
            return (self._log_mel(p) - t).abs().mean(dim=(-2, -1))

        # Training: the gradient taken in the forward pass, only it kept for backward.
        per_item = (_GradientInForward.apply(pred2, [_autograd_piece(distance)])
                    if _gradient_in_forward(pred2, target2) else distance(pred2))
        if self.reduction == "mean":
            return per_item.mean()
        return per_item[0] if squeeze else per_item

    def extra_repr(self) -> str:
        return f"n_fft={self.n_fft}, n_mels={self.filterbank.shape[1]}, eps={self.eps}"
