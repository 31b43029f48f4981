"""A mel-spectrogram vocoder for TTS: log mel -> network -> differentiable source-filter synthesis.

    log10 mel ─┬─▶ standardise ─▶ dilated conv stack (─▶ GRU) ─┬─▶ envelope residual ─┐
               │                                              ├─▶ aperiodicity       │
               │                                              └─▶ f0 classes, voicing logit
               └─▶ mel-to-envelope prior (fixed) ─────────────────────────────────────┘
        ─▶ spectral envelope (log amplitude at the mel band centres, interpolated to
           linear bins), aperiodicity, f0 ─▶ WORLD's synthesis model
           (:func:`vocoder.source_filter.world_synthesis`: pulse train + noise through
           per-frame minimum-phase filters) ─▶ optional learned reverb ─▶ audio

Inputs: ``mel`` (batch, frames, n_mels) log10 magnitude mel spectrogram in the
ParallelWaveGAN / HiFi-GAN convention (``vocoder.data.features``: Slaney mel, magnitude,
floor 1e-10), and, for training only, ``f0`` (batch, frames) Hz with 0 where unvoiced
and ``vuv`` (batch, frames) from the dump.

Why f0 is predicted from the mel. Behind a TTS acoustic model the vocoder gets a mel
spectrogram and nothing else, so it must find the pitch itself; f0 from a dump (harvest)
is there at training time only. The mel at 22.05 kHz with a 1024-point FFT resolves the
low harmonics (bands about 35 Hz apart below 1 kHz), so f0 can be read off it.
The network predicts it directly and is supervised with the dump's f0 and voicing
(``aux_loss``), rather than learning it through the spectral loss, whose gradient with
respect to f0 is known to be unreliable (many local minima, octave jumps). The f0 head
is a classifier over log-f0 bins (CREPE-style, Gaussian-blurred targets, read out as
the probability-weighted mean around the best bin) instead of a regression: when the
evidence is ambiguous (octave errors, creaky voice) a regression averages the two
candidates into a pitch that is neither, a classifier keeps the modes apart. Voicing is
a separate logit (binary cross-entropy).

During training the synthesizer is driven by the dump's f0 and voicing (teacher
forcing, ``teacher_forcing=True``): the envelope and aperiodicity are learned on a
correct pitch, and early, poor f0 guesses do not feed nonsense into the spectral loss.
Because the envelope is sampled at the harmonics of whatever f0 plays it (it is not a
per-harmonic distribution tied to one f0), the same envelope serves the predicted f0 at
inference. In eval mode the predicted f0 drives the synthesis (``inference_f0``;
``forward(..., f0_source="dump")`` uses the dump's f0 instead, e.g. to separate f0
errors from envelope errors).

The envelope starts from a fixed estimate computed from the mel itself: the mel band
magnitudes divided by the band's filterbank sum and the analysis window's energy give
the level of white noise with that power spectrum, in the units of
:func:`~vocoder.source_filter.world_synthesis` (``sp`` = 1 is unit-variance white noise).
The network learns a residual in log amplitude on the knots of :func:`envelope_knots`
(0 Hz, the band centres, the same mel spacing continued above ``mel_f_max`` up to
Nyquist, where the prior just holds the top band), so an untrained model already
speaks at the right level and training refines rather than discovers the spectral shape.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..dsp.spectral import get_window, hz_to_mel, mel_filterbank, mel_frequencies, mel_to_hz
from ..effects import Reverb
from ..source_filter.world_synth import default_synthesis_fft, world_synthesis
from . import register
from .rnn import gru

__all__ = ["MelDDSP", "envelope_knots", "interpolation_matrix"]

_F0_SOURCES = ("predicted", "dump")
_LN10 = math.log(10.0)


def interpolation_matrix(knots_hz: np.ndarray, bins_hz: np.ndarray) -> torch.Tensor:
    """Linear interpolation from values at ``knots_hz`` to ``bins_hz`` as a matrix.

    Args:
        knots_hz: (K,) increasing frequencies.
        bins_hz: (E,) frequencies to interpolate at (held at the end knots outside).
    Returns:
        (K, E) float32 matrix ``W``: ``values_at_bins = values_at_knots @ W``.
    """
    eye = np.eye(len(knots_hz))
    return torch.from_numpy(np.stack([np.interp(bins_hz, knots_hz, row) for row in eye])).float()


def envelope_knots(*, n_mels: int, f_min: float, f_max: float, sample_rate: float) -> tuple[np.ndarray, int]:
    """Frequencies where the envelope is predicted: 0 Hz, the mel band centres, then
    knots continuing the bands' mel spacing above ``f_max`` (where the mel says nothing,
    so the network learns the level there), and Nyquist.

    Returns:
        (knots_hz (K,), number of knots above the last band centre).
    """
    edges = mel_frequencies(n_mels=n_mels + 2, f_min=f_min, f_max=f_max)
    centres = edges[1:-1].numpy()
    nyquist = sample_rate / 2.0
    mels = hz_to_mel(edges)
    step = float(mels[1] - mels[0])
    upper = []
    m = float(mels[-2]) + step
    while True:
        f = float(mel_to_hz(torch.tensor(m, dtype=torch.float64)))
        if f >= nyquist - 1e-6:
            break
        upper.append(f)
        m += step
    knots = np.concatenate([[0.0], centres, upper, [nyquist]])
    return knots, len(upper) + 1


class _ConvBlock(nn.Module):
    """Residual (Conv1d, LeakyReLU) on (batch, channels, frames), 'same' padding."""

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.leaky_relu(self.conv(x), 0.2)


@register("mel_ddsp")
class MelDDSP(nn.Module):
    """Mel spectrogram to speech through a predicted f0, envelope and aperiodicity.

    See the module docstring for the model and the f0 decision.

    Args:
        sample_rate: audio rate (Hz).
        hop_length: samples per frame (the mel's hop).
        n_mels, mel_n_fft, mel_f_min, mel_f_max: the mel analysis the model reads (as
            in the ``features:`` section; ``mel_f_max`` None means Nyquist).
        channels: width of the convolution stack.
        conv_layers: residual conv layers after the input conv (dilations 1, 2, 4, ...
            cycling up to 8).
        kernel_size: conv kernel size (odd).
        gru_size: GRU units per direction; 0 (default) drops the GRU: on the mini corpus a
            bidirectional GRU of 64 added nothing measurable to the dilated convs
            (receptive field 35 frames, 0.4 s) and cost 5x their inference time.
        bidirectional: bidirectional GRU (the whole utterance is at hand in TTS).
        n_aperiodicity: aperiodicity knots, mel-spaced from 0 Hz to Nyquist.
        f0_min, f0_max: range of the f0 classifier (Hz).
        n_f0_bins: classes over log-f0 between f0_min and f0_max.
        f0_loss_weight, vuv_loss_weight: weights of the two terms of ``aux_loss``.
        teacher_forcing: in training mode, drive the synthesizer with the dump's f0.
        inference_f0: "predicted" (default) or "dump": the f0 used in eval mode.
        synthesis_n_fft: FFT size of the synthesis filters (default
            :func:`~vocoder.source_filter.default_synthesis_fft`, 1024 at 22.05 kHz).
        mel_prior: start the envelope from the mel (see the module docstring).
        reverb: add a learned reverb (off: TTS corpora are usually dry).
        reverb_duration_s: its impulse response length.
    """

    input_streams = ("mel", "f0", "vuv")
    required_streams = ("mel",)  # f0 and vuv are training targets; synthesis needs the mel alone

    def __init__(self, *, sample_rate: int, hop_length: int, n_mels: int = 80, mel_n_fft: int = 1024,
                 mel_f_min: float = 80.0, mel_f_max: float | None = 7600.0, channels: int = 128,
                 conv_layers: int = 5, kernel_size: int = 3, gru_size: int = 0, bidirectional: bool = True,
                 n_aperiodicity: int = 16, f0_min: float = 50.0, f0_max: float = 600.0, n_f0_bins: int = 96,
                 f0_loss_weight: float = 1.0, vuv_loss_weight: float = 1.0, teacher_forcing: bool = True,
                 inference_f0: str = "predicted", synthesis_n_fft: int | None = None, mel_prior: bool = True,
                 reverb: bool = False, reverb_duration_s: float = 0.25):
        super().__init__()
        if inference_f0 not in _F0_SOURCES:
            raise ValueError(f"inference_f0 must be one of {_F0_SOURCES}, got {inference_f0!r}")
        if not 0 < f0_min < f0_max < sample_rate / 2:
            raise ValueError(f"need 0 < f0_min < f0_max < Nyquist, got {f0_min}, {f0_max}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.mel_n_fft = int(mel_n_fft)
        self.mel_f_min = float(mel_f_min)
        self.mel_f_max = float(mel_f_max) if mel_f_max is not None else sample_rate / 2.0
        self.mel_f_max = min(self.mel_f_max, sample_rate / 2.0)  # as FeatureConfig clamps it
        self.n_f0_bins = int(n_f0_bins)
        self.f0_loss_weight = float(f0_loss_weight)
        self.vuv_loss_weight = float(vuv_loss_weight)
        self.teacher_forcing = bool(teacher_forcing)
        self.inference_f0 = inference_f0
        if inference_f0 == "dump":  # then synthesis needs the dump's pitch as well
            self.required_streams = ("mel", "f0", "vuv")
        self.mel_prior = bool(mel_prior)

        # -- network --------------------------------------------------------------------
        self.input_conv = nn.Conv1d(self.n_mels, channels, kernel_size, padding=kernel_size // 2)
        self.convs = nn.ModuleList(_ConvBlock(channels, kernel_size, 2 ** (i % 4)) for i in range(conv_layers))
        self.gru = (nn.GRU(channels, gru_size, batch_first=True, bidirectional=bidirectional)
                    if gru_size > 0 else None)
        hidden = channels + (gru_size * (2 if bidirectional else 1) if gru_size > 0 else 0)
        self.norm = nn.LayerNorm(hidden)

        # -- synthesis grid -------------------------------------------------------------
        self.synthesis_n_fft = (int(synthesis_n_fft) if synthesis_n_fft else
                                default_synthesis_fft(self.mel_n_fft // 2 + 1, sample_rate=self.sample_rate,
                                                      hop_length=self.hop_length))
        n_bins = self.synthesis_n_fft // 2 + 1
        bins_hz = np.linspace(0.0, sample_rate / 2.0, n_bins)
        knots, self.n_upper_knots = envelope_knots(n_mels=self.n_mels, f_min=self.mel_f_min,
                                                   f_max=self.mel_f_max, sample_rate=self.sample_rate)
        self.register_buffer("envelope_interp", interpolation_matrix(knots, bins_hz), persistent=False)
        ap_knots = mel_frequencies(n_mels=int(n_aperiodicity), f_min=0.0, f_max=sample_rate / 2.0).numpy()
        self.register_buffer("aperiodicity_interp", interpolation_matrix(ap_knots, bins_hz), persistent=False)
        # mel band value -> log amplitude of white noise with that spectrum (module docstring)
        fb = mel_filterbank(sample_rate=sample_rate, n_fft=self.mel_n_fft, n_mels=self.n_mels,
                            f_min=self.mel_f_min, f_max=self.mel_f_max, dtype=torch.float64)
        window = get_window("hann", self.mel_n_fft, dtype=torch.float64)
        offset = torch.log(fb.sum(0)) + 0.5 * torch.log((window ** 2).sum())
        self.register_buffer("prior_offset", offset.float(), persistent=False)

        # -- heads ------------------------------------------------------------------------
        n_knots = len(knots)
        self.envelope_head = nn.Linear(hidden, n_knots)
        self.aperiodicity_head = nn.Linear(hidden, int(n_aperiodicity))
        self.f0_head = nn.Linear(hidden, self.n_f0_bins + 1)  # f0 classes + voicing logit
        with torch.no_grad():
            self.envelope_head.weight.mul_(0.1)
            self.envelope_head.bias.zero_()
            if not self.mel_prior:
                self.envelope_head.bias.fill_(-4.0)  # quiet start: amplitude ~0.02 of unit noise
            # more periodic at low frequencies: ap from about 0.05 at 0 Hz to 0.5 at Nyquist
            self.aperiodicity_head.bias.copy_(torch.linspace(-3.0, 0.0, int(n_aperiodicity)))
        self.register_buffer("f0_bins_log", torch.linspace(math.log(f0_min), math.log(f0_max), self.n_f0_bins),
                             persistent=False)
        self.reverb = Reverb(sample_rate=sample_rate, duration_s=reverb_duration_s) if reverb else None

        # Normalisation statistics of the mel (set from the training set, saved in checkpoints).
        self.register_buffer("mel_mean", torch.full((self.n_mels,), -2.0))
        self.register_buffer("mel_std", torch.ones(self.n_mels))

    # -- statistics / settings -----------------------------------------------------------
    def set_statistics(self, stats: dict) -> None:
        """Take the per-bin ``mel`` mean/std from a ``vocoder stats`` dict."""
        g = stats.get("global", stats)
        if "mel" not in g or g["mel"].get("mean") is None:
            return
        mean = torch.as_tensor(g["mel"]["mean"], dtype=torch.float32).flatten()
        std = torch.as_tensor(g["mel"]["std"], dtype=torch.float32).flatten()
        if mean.numel() != self.n_mels or std.numel() != self.n_mels:
            raise ValueError(f"statistics have {mean.numel()} mel bins, the model reads {self.n_mels}")
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std.clamp_min(1e-3))

    def feature_settings(self) -> dict:
        """The mel analysis this model expects (``FeatureConfig`` names), for checks by callers."""
        return {"sample_rate": self.sample_rate, "hop_length": self.hop_length, "n_mels": self.n_mels,
                "mel_n_fft": self.mel_n_fft, "mel_f_min": self.mel_f_min, "mel_f_max": self.mel_f_max,
                "mel_log": "log10"}

    # -- network ---------------------------------------------------------------------------
    def decode(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw network outputs from (batch, frames, n_mels) log10 mel.

        Returns:
            dict with ``log_amplitude_knots`` (batch, frames, knots) natural-log
            envelope amplitude at the knots of :func:`envelope_knots`,
            ``aperiodicity_logits`` (batch, frames, n_aperiodicity), ``f0_logits``
            (batch, frames, n_f0_bins) and ``vuv_logit`` (batch, frames).
        """
        if mel.dim() != 3 or mel.shape[-1] != self.n_mels:
            raise ValueError(f"mel must be (batch, frames, {self.n_mels}), got {tuple(mel.shape)}")
        x = ((mel - self.mel_mean) / self.mel_std).transpose(1, 2)
        x = F.leaky_relu(self.input_conv(x), 0.2)
        for block in self.convs:
            x = block(x)
        h = x.transpose(1, 2)
        if self.gru is not None:
            g, _ = gru(self.gru, h)
            h = torch.cat([h, g], dim=-1)
        return self.heads(h, mel)

    def heads(self, h: torch.Tensor, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output heads on the network's (batch, frames, hidden) features ``h`` (after
        the convolutions and GRU) and the frames' log10 ``mel``: :meth:`decode`'s outputs.
        (vocoder.streaming calls it on the frames its convolutions have finished.)"""
        h = self.norm(h)
        env = self.envelope_head(h).float()
        if self.mel_prior:
            prior = _LN10 * mel.float() - self.prior_offset
            upper = prior[..., -1:].expand(*prior.shape[:-1], self.n_upper_knots)
            env = env + torch.cat([prior[..., :1], prior, upper], dim=-1)
        f0_out = self.f0_head(h).float()
        return {"log_amplitude_knots": env, "aperiodicity_logits": self.aperiodicity_head(h).float(),
                "f0_logits": f0_out[..., :-1], "vuv_logit": f0_out[..., -1]}

    def envelope_and_aperiodicity(self, raw: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log amplitude envelope and aperiodicity on the synthesis bins from :meth:`decode`'s outputs."""
        log_amp = raw["log_amplitude_knots"].clamp(-40.0, 10.0) @ self.envelope_interp  # exp stays finite
        return log_amp, torch.sigmoid(raw["aperiodicity_logits"] @ self.aperiodicity_interp)

    def decode_f0(self, f0_logits: torch.Tensor, *, width: int = 4) -> torch.Tensor:
        """(batch, frames, n_f0_bins) logits to (batch, frames) f0 in Hz.

        The probability-weighted mean of log-f0 over the ``2 width + 1`` bins around the
        most likely one (so a second mode an octave away does not pull the estimate).
        """
        probs = torch.softmax(f0_logits, dim=-1)
        best = probs.argmax(dim=-1, keepdim=True)
        idx = torch.arange(self.n_f0_bins, device=f0_logits.device)
        near = ((idx - best).abs() <= width).to(probs.dtype)
        w = probs * near
        log_f0 = (w * self.f0_bins_log).sum(-1) / w.sum(-1).clamp_min(1e-12)
        return torch.exp(log_f0)

    def f0_losses(self, raw: dict[str, torch.Tensor], f0_hz: torch.Tensor,
                  vuv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of the f0 classes (voiced frames) and BCE of voicing.

        Targets are Gaussians of one bin's width around the true log-f0 (CREPE-style).
        """
        voiced = (vuv > 0.5) & (f0_hz > 0)
        lo, hi = self.f0_bins_log[0], self.f0_bins_log[-1]
        pos = ((torch.log(f0_hz.clamp_min(1e-3)) - lo) / (hi - lo) * (self.n_f0_bins - 1))
        pos = pos.clamp(0, self.n_f0_bins - 1).unsqueeze(-1)
        idx = torch.arange(self.n_f0_bins, device=f0_hz.device, dtype=pos.dtype)
        target = torch.exp(-0.5 * (idx - pos) ** 2)
        target = target / target.sum(-1, keepdim=True)
        ce = -(target * torch.log_softmax(raw["f0_logits"], dim=-1)).sum(-1)
        m = voiced.to(ce.dtype)
        f0_loss = (ce * m).sum() / m.sum().clamp_min(1.0)
        vuv_loss = F.binary_cross_entropy_with_logits(raw["vuv_logit"], (vuv > 0.5).to(ce.dtype))
        return f0_loss, vuv_loss

    # -- synthesis -----------------------------------------------------------------------
    def _noise(self, batch: int, n: int, generator, device, dtype=torch.float32) -> torch.Tensor:
        """Unit-variance Gaussian noise; one generator, or one per batch row (as the trainer passes)."""
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        if generator is None or isinstance(generator, torch.Generator):
            gen_dev = generator.device if generator is not None else device
            return torch.randn(batch, n, generator=generator, dtype=dtype, device=gen_dev).to(device)
        gens = list(generator)
        if len(gens) != batch:
            raise ValueError(f"got {len(gens)} noise generators for a batch of {batch}")
        return torch.cat([torch.randn(1, n, generator=g, dtype=dtype, device=g.device).to(device) for g in gens])

    def forward(self, inputs: dict[str, torch.Tensor], *,
                generator: torch.Generator | Sequence[torch.Generator] | int | None = None,
                dry: bool = False, f0_source: str | None = None, noise: torch.Tensor | None = None,
                leading_f0: float | None = None) -> dict[str, torch.Tensor]:
        """Synthesize audio from a log mel spectrogram.

        Args:
            inputs: ``mel`` (batch, frames, n_mels) log10 magnitude mel; optionally
                ``f0`` (batch, frames) Hz, 0 where unvoiced, and ``vuv`` (batch, frames):
                the targets of ``aux_loss`` and the teacher-forced pitch in training.
            generator: noise generator (or seed), or one generator per batch row.
            dry: skip the reverb.
            f0_source: "predicted" or "dump"; default: the dump's f0 in training mode
                with ``teacher_forcing``, else ``inference_f0``.
            noise: (batch, frames * hop_length) Gaussian excitation instead of drawing it.
            leading_f0: pulse-train f0 before the first voiced frame (default: that
                frame's f0; a stream, which cannot look ahead, uses a constant).
        Returns:
            dict with ``audio`` (batch, frames * hop_length), ``dry_audio``, ``f0_hz``
            (batch, frames) the f0 that played (0 unvoiced), ``f0_hz_predicted`` and
            ``vuv_predicted`` (probability), ``log_amplitude`` and ``aperiodicity``
            (batch, frames, synthesis_n_fft // 2 + 1); with ``f0`` and ``vuv`` in the
            inputs also ``aux_loss`` (scalar, added to the training loss), ``f0_loss``
            and ``vuv_loss``.
        """
        mel = inputs["mel"]
        raw = self.decode(mel)
        f0_pred = self.decode_f0(raw["f0_logits"].detach())
        vuv_prob = torch.sigmoid(raw["vuv_logit"].detach())
        if f0_source is None:
            f0_source = ("dump" if self.training and self.teacher_forcing and "f0" in inputs
                         else self.inference_f0)
        if f0_source not in _F0_SOURCES:
            raise ValueError(f"f0_source must be one of {_F0_SOURCES}, got {f0_source!r}")
        if f0_source == "dump":
            if "f0" not in inputs:
                raise ValueError("f0_source='dump' needs an `f0` input")
            f0 = inputs["f0"].float()
            if "vuv" in inputs:
                f0 = f0 * (inputs["vuv"] > 0.5).to(f0.dtype)
        else:
            f0 = f0_pred * (vuv_prob > 0.5).to(f0_pred.dtype)
        batch, n_frames = f0.shape
        if noise is None:
            noise = self._noise(batch, n_frames * self.hop_length, generator, mel.device)
        with torch.autocast(device_type=mel.device.type, enabled=False):  # the synthesizer stays float32
            log_amp, ap = self.envelope_and_aperiodicity(raw)
            dry_audio = world_synthesis(f0, torch.exp(2.0 * log_amp), ap, sample_rate=self.sample_rate,
                                        hop_length=self.hop_length, n_fft=self.synthesis_n_fft, noise=noise,
                                        leading_f0=leading_f0)
            audio = dry_audio if (dry or self.reverb is None) else self.reverb(dry_audio)
        out = {"audio": audio, "dry_audio": dry_audio, "f0_hz": f0, "f0_hz_predicted": f0_pred,
               "vuv_predicted": vuv_prob, "log_amplitude": log_amp, "aperiodicity": ap}
        if "f0" in inputs and "vuv" in inputs:
            f0_loss, vuv_loss = self.f0_losses(raw, inputs["f0"].float(), inputs["vuv"].float())
            out["f0_loss"], out["vuv_loss"] = f0_loss, vuv_loss
            out["aux_loss"] = self.f0_loss_weight * f0_loss + self.vuv_loss_weight * vuv_loss
        return out
