"""Room effects: learned FIR reverb and an exponential-decay reverb (learned envelope).

The modules are causal convolutions by ``vocoder.dsp.filters.fft_convolve``, keep
the direct path (dry signal) separate from the wet impulse response (whose sample 0
is held at zero), and share one interface (``FixedReverb`` plays a given impulse
response, e.g. a measured room or another model's exported one):

    forward(audio, *, tail=False)   (..., N) -> (..., N), or (..., N + L - 1) with tail
    impulse_response()              (L,) effective IR, dry + wet (for export)
    wet_impulse_response()          (L,) the reverberant part only (for RT60)

``rt60_from_ir`` measures a reverberation time by Schroeder backward integration;
``synthetic_rir`` makes a room response of a given RT60 to test it (and to reverberate
dry data for the dereverberation benchmark, benchmarks/room_acoustics.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from vocoder.dsp.filters import fft_convolve

__all__ = ["ExpDecayReverb", "FixedReverb", "Reverb", "rt60_from_ir", "synthetic_rir"]

# Amplitude envelope exp(-decay * t) falls by 60 dB at t = rt60 when decay = _LN_1E3 / rt60.
_LN_1E3 = 3.0 * math.log(10.0)


def _resolve_ir_length(sample_rate: int, duration_s: float | None, ir_length: int | None) -> int:
    if sample_rate is None or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number, got {sample_rate}")
    if duration_s is not None and ir_length is not None:
        raise ValueError("give either duration_s or ir_length, not both")
    if ir_length is None:
        ir_length = round((1.0 if duration_s is None else duration_s) * sample_rate)
    if ir_length < 2:
        raise ValueError(f"impulse response must have at least 2 samples, got {ir_length}")
    return int(ir_length)


def _seeded_normal(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed))


def _apply_ir(audio: torch.Tensor, dry: torch.Tensor, wet_ir: torch.Tensor, tail: bool) -> torch.Tensor:
    """``dry * audio + wet_ir * audio`` (convolution), causal or with the full tail."""
    if audio.ndim < 1 or audio.shape[-1] == 0:
        raise ValueError(f"audio must be (..., samples) with samples > 0, got shape {tuple(audio.shape)}")
    wet = fft_convolve(audio, wet_ir, mode="full" if tail else "causal")
    n = audio.shape[-1]
    dry_part = dry * audio
    if tail:
        return torch.cat([wet[..., :n] + dry_part, wet[..., n:]], dim=-1)
    return wet + dry_part


class Reverb(nn.Module):
    """Learned FIR reverb with a dry/wet mix.

    ``y = (1 - mix) * x + mix * (ir_wet * x)`` with ``mix = sigmoid(mix_logit)`` in
    (0, 1) and ``ir_wet`` the trainable ``ir`` parameter with its first sample held
    at zero (the direct path is the dry term only). The overall scale of ``ir`` is
    free as well; ``mix`` keeps the dry level tied to the wet level so that raising
    the reverb lowers the direct sound, as a mixing desk's dry/wet knob does.

    Initialisation ``"exp_decay"``: Gaussian noise times ``exp(-t * 3 ln10 / rt60_s)``
    (60 dB down after ``rt60_s``), scaled to unit energy, and ``mix`` set so that the
    wet-to-dry energy ratio is ``wet_db`` (about -20 dB by default). ``"zeros"``
    starts from a silent wet path (gradients still reach ``ir``).

    The taps are free, so this module does not learn a room's decay: trained with
    Adam, every tap moves by about the learning rate per step whatever its gradient,
    and the late taps (true values far below the learning rate) fill up with a flat
    floor of that size. One Adam step at lr 2e-3 turns the default 1 s IR of RT60
    0.2 s into one whose Schroeder RT60 reads 5 s; trained on speech in a 0.5 s room it
    reads 2.9 s (benchmarks/room_acoustics.py, docs/benchmarks.md). To
    learn the room (its RT60, dereverberation with ``dry=True``), use
    :class:`ExpDecayReverb` with ``trainable_noise=True``: free taps under a learned
    exponential envelope.

    Args:
        sample_rate: samples per second.
        duration_s: IR length in seconds (default 1.0 when ``ir_length`` is not given).
        ir_length: IR length in samples (instead of ``duration_s``).
        init: ``"exp_decay"`` or ``"zeros"``.
        rt60_s: reverberation time of the initial IR, seconds.
        wet_db: initial wet-to-dry energy ratio in dB.
        trainable: whether ``ir`` is a trainable parameter.
        trainable_mix: whether ``mix_logit`` is a trainable parameter.
        seed: seed of the initial noise.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        duration_s: float | None = None,
        ir_length: int | None = None,
        init: str = "exp_decay",
        rt60_s: float = 0.5,
        wet_db: float = -20.0,
        trainable: bool = True,
        trainable_mix: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.ir_length = _resolve_ir_length(sample_rate, duration_s, ir_length)
        if init not in ("exp_decay", "zeros"):
            raise ValueError(f"Reverb: init must be 'exp_decay' or 'zeros', got {init!r}")
        if rt60_s <= 0:
            raise ValueError(f"Reverb: rt60_s must be positive, got {rt60_s}")
        if init == "exp_decay":
            t = torch.arange(self.ir_length, dtype=torch.float64) / sample_rate
            ir = _seeded_normal(self.ir_length, seed).double() * torch.exp(-t * _LN_1E3 / rt60_s)
            ir[0] = 0.0
            ir = (ir / ir.norm()).float()
        else:
            ir = torch.zeros(self.ir_length)
        self.ir = nn.Parameter(ir, requires_grad=trainable)
        # wet/dry amplitude ratio r = mix / (1 - mix) = 10 ** (wet_db / 20) -> logit = log r.
        self.mix_logit = nn.Parameter(
            torch.tensor(wet_db / 20.0 * math.log(10.0)), requires_grad=trainable_mix
        )
        mask = torch.ones(self.ir_length)
        mask[0] = 0.0
        self.register_buffer("_direct_mask", mask, persistent=False)

    @property
    def mix(self) -> torch.Tensor:
        """() wet fraction in (0, 1)."""
        return torch.sigmoid(self.mix_logit)

    def wet_impulse_response(self) -> torch.Tensor:
        """(L,) reverberant part, ``mix * ir`` with sample 0 zeroed."""
        return self.mix * self.ir * self._direct_mask

    def impulse_response(self) -> torch.Tensor:
        """(L,) effective impulse response: ``(1 - mix)`` at sample 0 plus the wet part."""
        ir = self.wet_impulse_response()
        return torch.cat([(1.0 - self.mix).reshape(1) + ir[:1], ir[1:]])

    def forward(self, audio: torch.Tensor, *, tail: bool = False) -> torch.Tensor:
        """Apply the reverb.

        Args:
            audio: (..., N) signal, e.g. (batch, samples).
            tail: also return the decay after the input ends.
        Returns:
            (..., N) causal output, or (..., N + L - 1) with ``tail=True``.
        """
        return _apply_ir(audio, 1.0 - self.mix, self.wet_impulse_response(), tail)

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, ir_length={self.ir_length}"


class ExpDecayReverb(nn.Module):
    """Reverb under a learned exponential envelope: wet gain, decay rate (and the taps).

    ``y = x + ir_wet * x`` with ``ir_wet[t] = gain * noise[t] * exp(-decay * t / sample_rate)``
    for ``t >= 1`` and ``ir_wet[0] = 0`` (the direct path is ``x`` itself, at unit gain).
    ``noise`` starts as seeded Gaussian noise; it is a fixed buffer (two trainable
    scalars: magenta/ddsp's ``ExpDecayReverb``) or, with ``trainable_noise``, a
    parameter: a free FIR whose overall decay is held by the learned envelope, the way
    to learn a room (see :class:`Reverb` for why a free FIR alone does not). ``gain =
    exp(lr_scale * log_gain)`` and ``decay = exp(lr_scale * log_decay)`` (per second)
    stay positive; ``rt60_s = 3 ln10 / decay``. The initial gain gives a wet-to-dry
    energy ratio of ``wet_db``.

    ``lr_scale`` speeds up the two scalars under an optimiser whose learning rate suits
    a network (Adam moves a parameter by about its learning rate per step, whatever
    the gradient's size): the parameters hold the log-gain and log-decay divided by
    ``lr_scale``, so one Adam step changes them by about ``lr_scale * lr`` (with
    ``lr_scale=10`` and lr 2e-3, a decay rate changes by up to 2 % per step). With the
    default 1 the parameters are the logs themselves.

    Args:
        sample_rate: samples per second.
        duration_s: IR length in seconds (default 1.0 when ``ir_length`` is not given).
        ir_length: IR length in samples (instead of ``duration_s``).
        rt60_s: initial reverberation time, seconds.
        wet_db: initial wet-to-dry energy ratio in dB.
        trainable: whether gain and decay are trainable.
        trainable_noise: whether the noise taps are trainable too.
        lr_scale: the scale of the gain and decay parameters (see above), > 0.
        seed: seed of the noise.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        duration_s: float | None = None,
        ir_length: int | None = None,
        rt60_s: float = 0.5,
        wet_db: float = -20.0,
        trainable: bool = True,
        trainable_noise: bool = False,
        lr_scale: float = 1.0,
        seed: int = 0,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.ir_length = _resolve_ir_length(sample_rate, duration_s, ir_length)
        if rt60_s <= 0:
            raise ValueError(f"ExpDecayReverb: rt60_s must be positive, got {rt60_s}")
        if not (math.isfinite(lr_scale) and lr_scale > 0):
            raise ValueError(f"ExpDecayReverb: lr_scale must be a positive number, got {lr_scale}")
        self.lr_scale = float(lr_scale)
        self.trainable_noise = bool(trainable_noise)
        noise = _seeded_normal(self.ir_length, seed)
        noise[0] = 0.0
        if self.trainable_noise:
            self.noise = nn.Parameter(noise, requires_grad=trainable)
        else:
            self.register_buffer("noise", noise)
        self.register_buffer("time_s", torch.arange(self.ir_length) / float(sample_rate), persistent=False)
        mask = torch.ones(self.ir_length)
        mask[0] = 0.0
        self.register_buffer("_direct_mask", mask, persistent=False)
        decay = _LN_1E3 / rt60_s
        envelope = noise.double() * torch.exp(-decay * self.time_s.double())
        gain = 10.0 ** (wet_db / 20.0) / envelope.norm().item()
        self.log_gain = nn.Parameter(torch.tensor(math.log(gain) / self.lr_scale), requires_grad=trainable)
        self.log_decay = nn.Parameter(torch.tensor(math.log(decay) / self.lr_scale), requires_grad=trainable)

    @property
    def gain(self) -> torch.Tensor:
        """() linear gain of the wet noise."""
        return torch.exp(self.lr_scale * self.log_gain)

    @property
    def decay(self) -> torch.Tensor:
        """() amplitude decay rate in 1/s."""
        return torch.exp(self.lr_scale * self.log_decay)

    @property
    def rt60_s(self) -> torch.Tensor:
        """() reverberation time implied by ``decay``, seconds."""
        return _LN_1E3 / self.decay

    def wet_impulse_response(self) -> torch.Tensor:
        """(L,) ``gain * noise * exp(-decay * t)``; sample 0 is zero."""
        return self.gain * self.noise * torch.exp(-self.decay * self.time_s) * self._direct_mask

    def impulse_response(self) -> torch.Tensor:
        """(L,) effective impulse response: 1 at sample 0 plus the wet part."""
        ir = self.wet_impulse_response()
        return torch.cat([ir[:1] + 1.0, ir[1:]])

    def forward(self, audio: torch.Tensor, *, tail: bool = False) -> torch.Tensor:
        """Apply the reverb.

        Args:
            audio: (..., N) signal, e.g. (batch, samples).
            tail: also return the decay after the input ends.
        Returns:
            (..., N) causal output, or (..., N + L - 1) with ``tail=True``.
        """
        return _apply_ir(audio, 1.0, self.wet_impulse_response(), tail)

    def extra_repr(self) -> str:
        extra = ", trainable_noise=True" if self.trainable_noise else ""
        scale = f", lr_scale={self.lr_scale:g}" if self.lr_scale != 1.0 else ""
        return f"sample_rate={self.sample_rate}, ir_length={self.ir_length}{extra}{scale}"


class FixedReverb(nn.Module):
    """Convolution with a fixed impulse response: ``y = ir * x`` (causal).

    ``ir[0]`` is the direct path, the rest the reverberant part, so the impulse
    response exported from a :class:`Reverb` (``impulse_response()``) reproduces it.
    Nothing is trainable; the IR is a buffer (it follows ``.to(device)``).

    Args:
        ir: (L,) impulse response, L >= 1.
        sample_rate: its samples per second.
    """

    def __init__(self, ir, *, sample_rate: int):
        super().__init__()
        ir = torch.as_tensor(ir, dtype=torch.float32).detach().flatten().clone()
        if ir.numel() < 1 or not torch.isfinite(ir).all():
            raise ValueError(f"FixedReverb: the impulse response must be finite and non-empty, got {ir.numel()} samples")
        self.sample_rate = int(sample_rate)
        self.ir_length = int(ir.numel())
        self.register_buffer("ir", ir)

    def wet_impulse_response(self) -> torch.Tensor:
        """(L,) the impulse response with sample 0 (the direct path) zeroed."""
        return torch.cat([torch.zeros_like(self.ir[:1]), self.ir[1:]])

    def impulse_response(self) -> torch.Tensor:
        """(L,) the impulse response."""
        return self.ir

    def forward(self, audio: torch.Tensor, *, tail: bool = False) -> torch.Tensor:
        """Apply the reverb.

        Args:
            audio: (..., N) signal, e.g. (batch, samples).
            tail: also return the decay after the input ends.
        Returns:
            (..., N) causal output, or (..., N + L - 1) with ``tail=True``.
        """
        ir = self.ir.to(audio.dtype)
        return _apply_ir(audio, ir[0], torch.cat([torch.zeros_like(ir[:1]), ir[1:]]), tail)

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, ir_length={self.ir_length}"


def rt60_from_ir(
    ir: torch.Tensor,
    *,
    sample_rate: int,
    fit_range_db: Sequence[float] = (-5.0, -25.0),
) -> torch.Tensor:
    """Reverberation time from an impulse response by Schroeder backward integration.

    The energy decay curve ``EDC(t) = sum_{s >= t} ir[s]^2`` (in dB, 0 dB at t = 0)
    is fitted by least squares with a line over the samples between the two levels
    of ``fit_range_db`` (default -5 to -25 dB, i.e. T20; ``(-5, -35)`` gives T30),
    and the line is extrapolated to a 60 dB fall. Pass the reverberant part only
    (e.g. ``Reverb.wet_impulse_response()``): a strong direct sound makes the EDC
    drop at once and the fit meaningless.

    Args:
        ir: (..., L) impulse responses.
        sample_rate: samples per second.
        fit_range_db: (upper, lower) EDC levels in dB bounding the fit.
    Returns:
        (...) RT60 in seconds (float64); ``nan`` where the EDC never reaches the
        lower level or the fit has fewer than 2 points or a non-negative slope.
    """
    if ir.ndim < 1 or ir.shape[-1] < 2:
        raise ValueError(f"rt60_from_ir: ir must be (..., L) with L >= 2, got shape {tuple(ir.shape)}")
    upper, lower = float(fit_range_db[0]), float(fit_range_db[1])
    if not upper > lower:
        raise ValueError(f"rt60_from_ir: fit_range_db must be (upper, lower) with upper > lower, got {fit_range_db}")
    energy = ir.detach().to(torch.float64) ** 2
    edc = torch.flip(torch.cumsum(torch.flip(energy, [-1]), -1), [-1])
    total = edc[..., :1]
    edc_db = 10.0 * torch.log10(edc.clamp_min(1e-300) / total.clamp_min(1e-300))
    t = torch.arange(ir.shape[-1], dtype=torch.float64, device=ir.device) / sample_rate
    mask = ((edc_db <= upper) & (edc_db >= lower)).to(torch.float64)
    count = mask.sum(-1)
    mean_t = (mask * t).sum(-1) / count.clamp_min(1)
    mean_db = (mask * edc_db).sum(-1) / count.clamp_min(1)
    dt = (t - mean_t[..., None]) * mask
    slope = (dt * (edc_db - mean_db[..., None])).sum(-1) / (dt**2).sum(-1).clamp_min(1e-300)
    rt60 = -60.0 / slope
    reached = edc_db.min(-1).values <= lower
    ok = reached & (count >= 2) & (slope < 0) & (total[..., 0] > 0)
    return torch.where(ok, rt60, torch.full_like(rt60, float("nan")))


def synthetic_rir(
    rt60_s: float,
    sample_rate: int,
    *,
    duration_s: float | None = None,
    direct: bool = True,
    drr_db: float = 0.0,
    seed: int = 0,
    predelay_s: float = 0.0,
) -> torch.Tensor:
    """A synthetic room impulse response: a unit direct path and an exponential noise tail.

    ``h[0] = 1`` (with ``direct``) and, from sample ``n0 = max(1, round(predelay_s *
    sample_rate))`` on, ``h[n] = g * w[n] * exp(-3 ln10 * (n - n0) / (sample_rate * rt60_s))``
    with ``w`` white Gaussian noise from ``seed``: the amplitude envelope falls by
    60 dB in ``rt60_s`` (``exp(-6.91 t / RT60)``), so the energy decay curve is a
    line of -60 dB per ``rt60_s`` (what :func:`rt60_from_ir` measures). The gain ``g``
    sets the direct-to-reverberant energy ratio ``10 log10(1 / sum(tail ** 2))`` to
    ``drr_db``; it is applied also with ``direct=False``, so the wet part is the same.

    Args:
        rt60_s: reverberation time, seconds (> 0).
        sample_rate: samples per second.
        duration_s: length of the response in seconds; default ``predelay_s + rt60_s``
            (the tail ends 60 dB down).
        direct: include the direct path (``h[0] = 1``); ``False`` gives the
            reverberant part only (``h[0] = 0``), e.g. for :func:`rt60_from_ir`.
        drr_db: direct-to-reverberant energy ratio in dB (0: equal energy).
        seed: seed of the noise; the same arguments give the same response.
        predelay_s: time from the direct path to the start of the tail, seconds.
    Returns:
        (L,) float32 impulse response, ``L = round(duration_s * sample_rate)``.
    """
    if not rt60_s > 0:
        raise ValueError(f"synthetic_rir: rt60_s must be positive, got {rt60_s}")
    if sample_rate is None or sample_rate <= 0:
        raise ValueError(f"synthetic_rir: sample_rate must be a positive number, got {sample_rate}")
    if not predelay_s >= 0:
        raise ValueError(f"synthetic_rir: predelay_s must be >= 0, got {predelay_s}")
    if duration_s is None:
        duration_s = predelay_s + rt60_s
    length = round(duration_s * sample_rate)
    start = max(1, round(predelay_s * sample_rate))
    if length <= start:
        raise ValueError(f"synthetic_rir: duration_s={duration_s} leaves no room for a tail after the "
                         f"predelay ({start} samples at {sample_rate} Hz)")
    n = torch.arange(length - start, dtype=torch.float64)
    tail = _seeded_normal(length - start, seed).double() * torch.exp(-_LN_1E3 * n / (sample_rate * rt60_s))
    tail = tail * (10.0 ** (-drr_db / 20.0) / tail.norm())
    ir = torch.zeros(length, dtype=torch.float64)
    ir[start:] = tail
    if direct:
        ir[0] = 1.0
    return ir.float()
