"""Write the impulse response of a model's learned reverb as a wav file.

    vocoder export-ir EXP_OR_CKPT OUT.wav

The impulse response is the one the model applies (`Reverb.impulse_response()`: the
dry level at sample 0 plus the wet part), as 32-bit float at the model's sample
rate, so `vocoder synth --reverb-from OUT.wav` (or any convolution reverb) reproduces
the model's room. Prints its length and RT60 (Schroeder T20 of the wet part; n/a when
the tail does not fall 25 dB within the impulse response).
"""
from __future__ import annotations

import math
import sys


def add_arguments(p) -> None:
    p.add_argument("checkpoint", metavar="EXP_OR_CKPT", help="checkpoint file or experiment dir (newest checkpoint)")
    p.add_argument("out", metavar="OUT.wav", help="output impulse response (32-bit float)")


def run(args) -> int:
    import torch

    from ..audio import save_audio
    from ..effects import rt60_from_ir
    from ..reverb_io import model_reverb
    from ..training.checkpoint import load_model, resolve_checkpoint

    if not str(args.out).lower().endswith(".wav"):
        raise ValueError(f"{args.out}: the impulse response is written as 32-bit float WAV; name it *.wav")
    ckpt = resolve_checkpoint(args.checkpoint)
    model, _ = load_model(ckpt, device="cpu")
    reverb = model_reverb(model, where=str(ckpt))
    with torch.no_grad():
        ir = reverb.impulse_response().detach().float()
        rt60 = float(rt60_from_ir(reverb.wet_impulse_response().detach(), sample_rate=model.sample_rate))
    save_audio(args.out, ir.numpy(), model.sample_rate, subtype="FLOAT")
    mix = getattr(reverb, "mix", None)
    wet = f", wet mix {float(mix.detach()):.3f}" if mix is not None else ""
    rt = f"RT60 {rt60:.3f} s" if math.isfinite(rt60) else "RT60 n/a (the tail does not fall 25 dB)"
    print(f"vocoder export-ir: {args.out}: {ir.numel()} samples ({ir.numel() / model.sample_rate:.3f} s) at "
          f"{model.sample_rate} Hz; {rt}{wet}", file=sys.stderr)
    return 0
