"""Reverbs from outside a model: another checkpoint's learned reverb, or an impulse response file.

``load_reverb(source, sample_rate=...)`` serves ``vocoder synth --reverb-from`` and
``vocoder convert --reverb-from``; ``model_reverb(model)`` is a model's own learned
reverb (``vocoder export-ir`` writes its ``impulse_response()``).

An impulse response recorded at another rate is resampled with soxr and scaled by
``source_rate / sample_rate``, so that the filter keeps its gain (the samples of an
impulse response are areas: at three times the rate there are three times as many);
its sample 0, the direct path, stays a single sample of the same value.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .effects import FixedReverb

__all__ = ["load_reverb", "model_reverb", "resample_ir"]


def model_reverb(model: nn.Module, *, where: str = "model") -> nn.Module:
    """The learned reverb of ``model`` (its ``reverb`` module).

    Raises:
        ValueError: the model has no reverb (naming ``where``, e.g. the checkpoint).
    """
    reverb = getattr(model, "reverb", None)
    if reverb is None:
        name = getattr(model, "model_name", type(model).__name__)
        raise ValueError(f"{where}: model {name!r} has no learned reverb (trained with `reverb: false`)")
    return reverb


def resample_ir(ir: np.ndarray, *, from_rate: int, to_rate: int) -> np.ndarray:
    """(L,) impulse response at ``from_rate`` -> (ceil(L * to_rate / from_rate),) at
    ``to_rate`` with the same gain.

    Sample 0 (the direct path) is a gain and stays one sample; the rest is resampled
    with soxr after zero padding in front, so that the resampling filter's ringing
    before an early reflection is kept rather than cut off at sample 0.
    """
    ir = np.asarray(ir, dtype=np.float64).reshape(-1)
    fr, to = int(from_rate), int(to_rate)
    if fr == to:
        return ir.astype(np.float32)
    import soxr

    step = fr // math.gcd(fr, to)  # pads of whole multiples of it map to whole samples at to_rate
    pad = step * max(1, math.ceil(fr / 100 / step))  # about 10 ms
    n_out = math.ceil(ir.size * to / fr)
    wet = np.concatenate([np.zeros(pad), [0.0], ir[1:]])
    out = soxr.resample(wet, fr, to) * (fr / to)
    out = out[pad * to // fr:][:n_out]
    out = np.concatenate([out, np.zeros(n_out - out.size)])
    out[0] += ir[0]
    return out.astype(np.float32)


def load_reverb(source, *, sample_rate: int, device="cpu") -> nn.Module:
    """A reverb to apply to a model's dry output at ``sample_rate``.

    Args:
        source: an audio file holding an impulse response (``.wav``, ``.flac``, ...;
            channels are averaged; sample 0 is the direct path), or a checkpoint file or
            experiment dir whose model has a learned reverb.
        sample_rate: the rate of the audio the reverb will be applied to.
        device: where the module goes.
    Returns:
        ``nn.Module`` with ``forward(audio) -> audio`` ((..., N) -> (..., N)): the other
        model's ``Reverb`` itself when the rates agree, else a :class:`FixedReverb`.
    Raises:
        FileNotFoundError, ValueError: missing or unreadable source, no reverb in the
            checkpoint; the message names the source.
    """
    from .data.sources import AUDIO_EXTENSIONS

    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such impulse response file or checkpoint")
    if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
        from .audio import load_audio

        ir, rate = load_audio(path)
        module: nn.Module = FixedReverb(resample_ir(ir, from_rate=rate, to_rate=sample_rate),
                                        sample_rate=sample_rate)
        return module.to(device).eval()
    from .training.checkpoint import load_model

    model, _ = load_model(path, device="cpu")
    reverb = model_reverb(model, where=str(source))
    if int(model.sample_rate) != int(sample_rate):
        with torch.no_grad():
            ir = reverb.impulse_response().detach().cpu().numpy()
        reverb = FixedReverb(resample_ir(ir, from_rate=model.sample_rate, to_rate=sample_rate),
                             sample_rate=sample_rate)
    reverb.requires_grad_(False)
    return reverb.to(device).eval()
