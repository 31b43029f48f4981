"""Export a model (DDSP or mel vocoder) as a self-contained streaming TorchScript module.

:class:`DDSPStreamStep` is the streaming DDSP synthesizer of :mod:`vocoder.streaming`
rewritten frame-synchronously with all state in buffers, so that ``torch.jit.script``
compiles it and a program can run it without this package (C++ through libtorch, or
Python with only ``torch``; see ``examples/run_exported.py``)::

    m = torch.jit.load("model.ts")
    m.reset()
    for each block of k frames:                  # raw features: Hz, 0/1, dB, MFCC
        audio = m(f0, vuv, loudness, mfcc)       # (batch, k * hop) samples
    tail = m.flush()                             # (batch, delay_samples) at the end

Feature scaling (log-f0 and loudness standardisation, the encoder's MFCC normalisation)
is inside. Each call returns ``hop`` samples per frame, delayed by ``delay_samples =
3 * hop``: the audio of frame segment ``n`` comes out with frame ``n + 3`` (one frame to
interpolate towards, one for the noise filters' look-ahead of half their length, one of
emission granularity); the first ``delay_samples`` are silence. After dropping them the
output equals the eager stream, which equals offline synthesis (tests: below -60 dB,
in practice about -120 dB with the same noise).

Speaker: the embedding of one speaker (or a blend) is frozen into the module at export.
An instance-normalised encoder gets fixed MFCC statistics at export (``mfcc_stats``; by
default the per-coefficient mean and standard deviation the model saw in training are
not stored, so pass them, e.g. from the target speaker's enrollment audio).

ONNX: not offered. The synthesizers' FFTs (``rfft``/``irfft``, and the complex
frequency-domain delay line of the partitioned reverb) have no export path in
``torch.onnx``'s exporters, and the stateful frame loop would need its state as
explicit inputs and outputs. :class:`MelStreamStep` does the same for the mel vocoder
(docs/streaming.md).
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .dsp.filters import frequency_sampling_fir, next_fast_len

__all__ = ["DDSPStreamStep", "MelStreamStep", "export_torchscript", "save_scripted", "script_streaming"]


class DDSPStreamStep(nn.Module):
    """Frame-synchronous streaming DDSP with its state in buffers (TorchScript-able).

    Args:
        model: a :class:`~vocoder.models.ddsp.DDSP` (eval mode).
        speaker_embedding: (speaker_dim,) embedding to freeze in (multi-speaker models);
            default the first speaker's.
        mfcc_stats: (mean, std), each (n_mfcc,), for an instance-normalised encoder.
        dry: leave out the reverb.
        batch: rows streamed together.
        initial_f0: f0 held before the first voiced frame (Hz).
    """

    def __init__(self, model, *, speaker_embedding: Optional[torch.Tensor] = None,
                 mfcc_stats: Optional[tuple] = None, dry: bool = False, batch: int = 1, initial_f0: float = 100.0):
        super().__init__()
        m = model
        self.sample_rate = int(m.sample_rate)
        self.hop = int(m.hop_length)
        self.n_harmonics = int(m.n_harmonics)
        self.n_envelope = int(m.n_envelope)
        self.use_vuv = bool(m.use_vuv)
        self.gate_unvoiced = bool(m.gate_unvoiced)
        self.has_z = m.z_dim > 0
        self.skip_z = bool(m.skip_z)
        self.instance_norm = self.has_z and m.encoder_norm == "instance"
        self.n_mfcc = int(m.n_mfcc)
        self.batch = int(batch)
        self.initial_f0 = float(initial_f0)
        self.ir_length = int(m.noise.ir_length or 2 * (m.n_noise_bands - 1))
        self.shift = self.ir_length // 2
        if self.shift > self.hop:
            raise ValueError(f"noise filters of {self.ir_length} taps reach more than a hop ({self.hop}) ahead; "
                             "the frame-synchronous export supports ir_length <= 2 * hop_length")
        self.delay_samples = 3 * self.hop
        self.conv_length = 2 * self.hop + self.ir_length - 1
        self.conv_n_fft = next_fast_len(self.conv_length)
        # -- network (shared modules; feature scaling from the model's buffers) ---------
        self.mlp_f0 = m.input_mlps["f0"]
        self.mlp_loudness = m.input_mlps["loudness"]
        self.mlp_z = m.input_mlps["z"] if self.has_z else nn.Identity()
        self.mfcc_norm = m.mfcc_norm if self.has_z else nn.Identity()
        self.encoder_gru = m.encoder_gru if self.has_z else nn.GRU(1, 1, batch_first=True)
        self.encoder_out = m.encoder_out if self.has_z else nn.Identity()
        self.gru = m.gru
        self.out_mlp = m.out_mlp
        self.out = m.out
        for name in ("logf0_mean", "logf0_std", "loudness_mean", "loudness_std"):
            self.register_buffer(name, getattr(m, name).detach().clone())
        with torch.no_grad():
            if m.n_speakers > 0:
                emb = speaker_embedding if speaker_embedding is not None else m.speaker_embedding.weight[0]
                spk = emb.detach().reshape(1, -1).expand(self.batch, -1).clone()
            else:
                spk = torch.zeros(self.batch, 0)
        self.has_speaker = m.n_speakers > 0
        self.register_buffer("speaker", spk)
        if self.instance_norm:
            if mfcc_stats is None:
                raise ValueError("an instance-normalised encoder needs mfcc_stats=(mean, std) at export")
            mean, std = (torch.as_tensor(s, dtype=torch.float32).flatten()[: self.n_mfcc] for s in mfcc_stats)
        else:
            mean, std = torch.zeros(self.n_mfcc), torch.ones(self.n_mfcc)
        self.register_buffer("mfcc_mean", mean.clone())
        self.register_buffer("mfcc_std", std.clamp_min(1e-3).clone())
        # -- fixed DSP tables -----------------------------------------------------------------
        k = torch.arange(1, self.n_harmonics + 1, dtype=torch.float32)
        self.register_buffer("k", k)
        self.register_buffer("ramp", torch.arange(self.hop, dtype=torch.float32))
        self.register_buffer("weights", torch.arange(self.hop, dtype=torch.float32) / self.hop)
        # The noise filter design is linear in the magnitudes: one matrix.
        eye = torch.eye(m.n_noise_bands, dtype=torch.float64)
        self.register_buffer("fir_matrix", frequency_sampling_fir(eye, ir_length=self.ir_length).float())
        kk = torch.arange(2 * self.hop, dtype=torch.float32)
        self.register_buffer("window", 0.5 - 0.5 * torch.cos(math.pi * kk / self.hop))
        if m.n_envelope:
            mel_nyquist = 2595.0 * math.log10(1.0 + self.sample_rate / 2.0 / 700.0)
        else:
            mel_nyquist = 1.0
        self.mel_nyquist = float(mel_nyquist)
        # Reverb: uniformly partitioned convolution, one partition per hop.
        self.has_reverb = (not dry) and m.reverb is not None
        if self.has_reverb:
            with torch.no_grad():
                ir = m.reverb.impulse_response().detach().float()
        else:
            ir = torch.zeros(1)
        self.reverb = _PartitionedReverb(ir, self.hop, self.batch)
        # -- state ------------------------------------------------------------------------------
        b = self.batch
        self.register_buffer("h_dec", torch.zeros(1, b, m.gru.hidden_size))
        self.register_buffer("h_enc", torch.zeros(1, b, self.encoder_gru.hidden_size))
        self.register_buffer("last_f0", torch.full((b,), self.initial_f0))
        self.register_buffer("phase", torch.zeros(b, dtype=torch.float64))
        self.register_buffer("frames_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("p_f0", torch.zeros(b))
        self.register_buffer("p_amps", torch.zeros(b, self.n_harmonics))
        self.register_buffer("p_ir", torch.zeros(b, self.ir_length))
        self.register_buffer("noise_prev", torch.zeros(b, self.hop))
        self.register_buffer("noise_next", torch.zeros(b, self.hop))
        self.register_buffer("acc", torch.zeros(b, self.conv_length + 2 * self.hop))
        self.register_buffer("harm", torch.zeros(b, 3 * self.hop))

    @torch.jit.export
    def reset(self):
        """Back to the start of an utterance."""
        self.h_dec.zero_()
        self.h_enc.zero_()
        self.last_f0.fill_(self.initial_f0)
        self.phase.zero_()
        self.frames_seen.zero_()
        self.p_f0.zero_()
        self.p_amps.zero_()
        self.p_ir.zero_()
        self.noise_prev.zero_()
        self.noise_next.zero_()
        self.acc.zero_()
        self.harm.zero_()
        self.reverb.reset()

    # -- network ----------------------------------------------------------------------------
    def _controls(self, f0: torch.Tensor, vuv: torch.Tensor, loudness: torch.Tensor, mfcc: torch.Tensor):
        """(B, k) features -> continuous f0 (B, k), harmonic amplitudes (B, k, K), noise FIRs (B, k, L)."""
        k = f0.shape[1]
        voiced = (vuv > 0.5) & (f0 > 0)
        # causal fill: hold the last voiced f0 (vocoder.streaming.causal_continuous_f0)
        f0c = torch.empty_like(f0)
        last = self.last_f0.clone()
        for i in range(k):
            last = torch.where(voiced[:, i], f0[:, i], last)
            f0c[:, i] = last
        self.last_f0.copy_(last)
        f0_in = ((torch.log(f0c) - self.logf0_mean) / self.logf0_std).unsqueeze(-1)
        if self.use_vuv:
            f0_in = torch.cat([f0_in, vuv.unsqueeze(-1) * 2 - 1], dim=-1)
        h_f0 = self.mlp_f0(f0_in)
        h_loud = self.mlp_loudness(((loudness - self.loudness_mean) / self.loudness_std).unsqueeze(-1))
        parts = [h_f0, h_loud]
        if self.has_z:
            x = mfcc[..., : self.n_mfcc]
            if self.instance_norm:
                x = (x - self.mfcc_mean) / self.mfcc_std
            h, h_enc = self.encoder_gru(self.mfcc_norm(x), self.h_enc)
            self.h_enc.copy_(h_enc)
            parts.append(self.mlp_z(self.encoder_out(h)))
        skip = parts if self.skip_z else parts[:2]  # f0, loudness (, z) around the GRU
        x = torch.cat(parts, dim=-1)
        if self.has_speaker:
            x = torch.cat([x, self.speaker.unsqueeze(1).expand(-1, k, -1)], dim=-1)
        g, h_dec = self.gru(x, self.h_dec)
        self.h_dec.copy_(h_dec)
        y = self.out(self.out_mlp(torch.cat([g] + skip, dim=-1)))
        n_shape = self.n_envelope if self.n_envelope > 0 else self.n_harmonics
        shape = y[..., 1:1 + n_shape]
        if self.n_envelope > 0:
            shape = self._envelope_at_harmonics(shape, f0c)
        amplitude = _exp_sigmoid(y[..., :1])
        dist = _exp_sigmoid(shape) * (f0c.unsqueeze(-1) * self.k < self.sample_rate / 2.0).to(shape.dtype)
        dist = dist / dist.sum(dim=-1, keepdim=True).clamp_min(1e-7)
        amps = amplitude * dist
        if self.gate_unvoiced:
            amps = amps * vuv.unsqueeze(-1)
        mags = _exp_sigmoid(y[..., 1 + n_shape:] - 5.0)  # FilteredNoise's initial bias
        return f0c, amps, mags @ self.fir_matrix

    def _envelope_at_harmonics(self, envelope: torch.Tensor, f0c: torch.Tensor) -> torch.Tensor:
        freqs = f0c.unsqueeze(-1) * self.k
        mel = 2595.0 * torch.log10(1.0 + freqs / 700.0)
        n = self.n_envelope
        pos = (mel / self.mel_nyquist * (n - 1)).clamp(0.0, float(n - 1))
        i0 = pos.floor().clamp(max=float(n - 2))
        w = pos - i0
        idx = i0.long()
        lo = torch.gather(envelope, -1, idx)
        hi = torch.gather(envelope, -1, idx + 1)
        return lo + (hi - lo) * w

    # -- synthesis of one frame segment -------------------------------------------------------
    def _harmonic(self, fa: torch.Tensor, fb: torch.Tensor, aa: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        scale = 2.0 * math.pi / self.sample_rate
        offset = scale * (fa.unsqueeze(-1) * self.ramp + (fb - fa).unsqueeze(-1) * (self.ramp * self.ramp
                                                                                     / (2.0 * self.hop)))
        phase = torch.remainder(self.phase.float().unsqueeze(-1) + offset, 2.0 * math.pi)  # (B, hop)
        mask = (torch.maximum(fa, fb).unsqueeze(-1) * self.k < self.sample_rate / 2.0).to(aa.dtype)
        sines = torch.sin(phase.unsqueeze(-1) * self.k)  # (B, hop, K)
        left = (sines @ (aa * mask).unsqueeze(-1)).squeeze(-1)
        right = (sines @ (ab * mask).unsqueeze(-1)).squeeze(-1)
        # exact frame-centre phase in float64, as vocoder.dsp.oscillators.frame_phase
        step = (2.0 * math.pi * self.hop / self.sample_rate) * 0.5 * (fa.double() + fb.double())
        self.phase.copy_(torch.remainder(self.phase + step, 2.0 * math.pi))
        return left + (right - left) * self.weights

    def _add_noise_piece(self, noise: torch.Tensor, ir: torch.Tensor):
        seg = torch.cat([self.noise_prev, noise], dim=-1) * self.window
        spec = torch.fft.rfft(seg, n=self.conv_n_fft) * torch.fft.rfft(ir, n=self.conv_n_fft)
        piece = torch.fft.irfft(spec, n=self.conv_n_fft)[:, : self.conv_length]
        start = self.hop - self.shift
        self.acc[:, start:start + self.conv_length] += piece
        self.noise_prev.copy_(noise)

    def _segment(self, f0: torch.Tensor, amps: torch.Tensor, noise: torch.Tensor):
        """Segment between the pending frame and (f0, amps): harmonic and noise piece."""
        self.harm[:, 2 * self.hop:] = self._harmonic(self.p_f0, f0, self.p_amps, amps)
        self._add_noise_piece(noise, self.p_ir)

    def _emit(self) -> torch.Tensor:
        out = self.harm[:, : self.hop] + self.acc[:, : self.hop]
        self.harm.copy_(torch.cat([self.harm[:, self.hop:], torch.zeros_like(self.harm[:, : self.hop])], dim=1))
        self.acc.copy_(torch.cat([self.acc[:, self.hop:], torch.zeros_like(self.acc[:, : self.hop])], dim=1))
        return self.reverb(out) if self.has_reverb else out

    def forward(self, f0: torch.Tensor, vuv: torch.Tensor, loudness: torch.Tensor, mfcc: torch.Tensor,
                noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Next ``k`` frames -> ``(batch, k * hop)`` audio (delayed by ``delay_samples``).

        Args:
            f0: (batch, k) Hz, 0 where unvoiced. vuv: (batch, k) 0/1. loudness: (batch, k) dB.
            mfcc: (batch, k, n_mfcc) (any width when the model has no encoder).
            noise: optional (batch, k * hop) uniform [-1, 1) excitation (default: drawn).
        """
        k = f0.shape[1]
        f0c, amps, irs = self._controls(f0, vuv, loudness, mfcc)
        outs: List[torch.Tensor] = []
        for i in range(k):
            seen = self.frames_seen.item()
            if seen > 0:
                self._segment(f0c[:, i], amps[:, i], self.noise_next.clone())
                if seen <= 2:  # the first noise pieces reach before sample 0: offline drops that part
                    self.acc[:, : (3 - seen) * self.hop] = 0.0
            # the noise of this frame's segment (samples [n hop, (n + 1) hop)), used with the next frame
            if noise is None:
                self.noise_next.copy_(2.0 * torch.rand(self.batch, self.hop, device=f0.device) - 1.0)
            else:
                self.noise_next.copy_(noise[:, i * self.hop:(i + 1) * self.hop])
            self.p_f0.copy_(f0c[:, i])
            self.p_amps.copy_(amps[:, i])
            self.p_ir.copy_(irs[:, i])
            self.frames_seen.add_(1)
            outs.append(self._emit())
        return torch.cat(outs, dim=1)

    @torch.jit.export
    def flush(self) -> torch.Tensor:
        """End of the utterance: the last ``delay_samples`` of audio (the last frame held)."""
        if self.frames_seen.item() == 0:
            return torch.zeros(self.batch, 0)
        self._segment(self.p_f0.clone(), self.p_amps.clone(), self.noise_next.clone())
        first = self._emit()
        self._add_noise_piece(torch.zeros_like(self.noise_next), self.p_ir)  # the held filter over silence
        return torch.cat([first, self._emit(), self._emit()], dim=1)


class _PartitionedReverb(nn.Module):
    """Uniformly partitioned convolution (one partition per hop), TorchScript-able."""

    def __init__(self, ir: torch.Tensor, hop: int, batch: int):
        super().__init__()
        self.hop = hop
        n_parts = -(-ir.numel() // hop)
        parts = F.pad(ir, (0, n_parts * hop - ir.numel())).reshape(n_parts, hop)
        self.register_buffer("ir_spectra", torch.fft.rfft(parts, n=2 * hop).flip(0))
        self.register_buffer("delay", torch.zeros(batch, n_parts, hop + 1, dtype=torch.complex64))
        self.register_buffer("prev", torch.zeros(batch, hop))

    def reset(self):
        self.delay.zero_()
        self.prev.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(torch.cat([self.prev, x], dim=-1), n=2 * self.hop)
        line = torch.cat([self.delay[:, 1:], spec.unsqueeze(1)], dim=1)
        self.delay.copy_(line)
        self.prev.copy_(x)
        return torch.fft.irfft((line * self.ir_spectra).sum(dim=1), n=2 * self.hop)[:, self.hop:]


class _StepConv(nn.Module):
    """One 'same'-padded Conv1d fed a frame at a time (its last 2 p inputs kept)."""

    def __init__(self, conv: nn.Conv1d, batch: int, delay_in: int, residual: bool):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.dilation = int(conv.dilation[0])
        self.p = self.dilation * (conv.kernel_size[0] // 2)
        self.delay_in = delay_in  # frames between the mel and this layer's input
        self.residual = residual
        self.register_buffer("buf", torch.zeros(batch, conv.in_channels, 2 * self.p))

    def reset(self):
        self.buf.zero_()

    def forward(self, x: torch.Tensor, step: int, n_frames: int) -> torch.Tensor:
        """x: (B, C_in) input at position ``step - delay_in``; returns the output at
        position ``step - delay_in - p`` (zero outside the utterance, as the padding)."""
        pos_in = step - self.delay_in
        if n_frames >= 0 and pos_in >= n_frames:
            x = torch.zeros_like(x)  # right-hand zero padding at the end
        window = torch.cat([self.buf, x.unsqueeze(-1)], dim=-1)
        self.buf.copy_(window[..., 1:])
        y = F.leaky_relu(F.conv1d(window, self.weight, self.bias, dilation=self.dilation)[..., 0], 0.2)
        if self.residual:
            y = window[..., self.p] + y
        if pos_in - self.p < 0:
            y = torch.zeros_like(y)  # positions before the utterance: the next layer's zero padding
        return y


class MelStreamStep(nn.Module):
    """Frame-synchronous streaming mel vocoder with its state in buffers (TorchScript-able).

    ``forward(mel (B, k, n_mels), f0=None, vuv=None, noise=None) -> (B, k * hop)``: log10
    mel frames in (the standardisation is inside), audio out delayed by
    ``delay_samples = (lookahead + 2) * hop``; ``flush()`` returns the last
    ``delay_samples`` at the end. ``noise``: (B, k * hop) unit Gaussian excitation
    (default drawn). ``f0``/``vuv`` only for ``inference_f0: dump`` models.
    """

    def __init__(self, model, *, dry: bool = False, batch: int = 1, initial_f0: float = 100.0):
        super().__init__()
        from .source_filter.filters import DEFAULT_MAX_LOG_GAIN
        m = model
        if m.gru is not None:
            raise ValueError("TorchScript export of the mel vocoder supports gru_size 0 (the default)")
        self.sample_rate = int(m.sample_rate)
        self.hop = int(m.hop_length)
        self.batch = int(batch)
        self.n_mels = int(m.n_mels)
        self.n_fft = int(m.synthesis_n_fft)
        self.initial_f0 = float(initial_f0)
        self.mel_prior = bool(m.mel_prior)
        self.n_upper = int(m.n_upper_knots)
        self.f0_given = m.inference_f0 == "dump"
        self.n_f0_bins = int(m.n_f0_bins)
        self.max_power = math.exp(2.0 * DEFAULT_MAX_LOG_GAIN)
        layers = [_StepConv(m.input_conv, batch, 0, False)]
        delay = layers[0].p
        for block in m.convs:
            layers.append(_StepConv(block.conv, batch, delay, True))
            delay += layers[-1].p
        self.convs = nn.ModuleList(layers)
        self.lookahead = delay
        self.delay_samples = (self.lookahead + 2) * self.hop
        self.norm = m.norm
        self.envelope_head = m.envelope_head
        self.aperiodicity_head = m.aperiodicity_head
        self.f0_head = m.f0_head
        for name in ("mel_mean", "mel_std", "prior_offset", "envelope_interp", "aperiodicity_interp",
                     "f0_bins_log"):
            self.register_buffer(name, getattr(m, name).detach().clone())
        kk = torch.arange(2 * self.hop, dtype=torch.float32)
        self.register_buffer("window", 0.5 - 0.5 * torch.cos(math.pi * kk / self.hop))
        j = torch.arange(self.hop, dtype=torch.float32)
        basis = torch.zeros(5, 2 * self.hop)
        basis[0, :self.hop] = 1.0
        basis[1, :self.hop] = j
        basis[2, :self.hop] = j * j
        basis[3, self.hop:] = 1.0
        basis[4, self.hop:] = j
        self.register_buffer("basis", basis)
        self.has_reverb = (not dry) and m.reverb is not None
        with torch.no_grad():
            ir = m.reverb.impulse_response().detach().float() if self.has_reverb else torch.zeros(1)
        self.reverb = _PartitionedReverb(ir, self.hop, self.batch)
        b, bins = self.batch, self.n_fft // 2 + 1
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue", torch.zeros(b, self.lookahead + 1, self.n_mels + 2))  # raw mel, f0, vuv
        self.register_buffer("last_f0", torch.full((b,), self.initial_f0))
        self.register_buffer("phase", torch.zeros(b, dtype=torch.float64))
        self.register_buffer("p_f0", torch.zeros(b))
        self.register_buffer("p_rot", torch.zeros(b, bins, dtype=torch.complex64))
        self.register_buffer("p_aper", torch.zeros(b, bins))
        self.register_buffer("p_per", torch.zeros(b, bins))
        # noise of frames step - lookahead - 1 .. step: segment j - 1's is the oldest
        self.register_buffer("noise_queue", torch.zeros(b, (self.lookahead + 2) * self.hop))
        self.register_buffer("exc_prev", torch.zeros(2, b, self.hop))
        self.register_buffer("acc", torch.zeros(b, self.n_fft + self.hop))

    @torch.jit.export
    def reset(self):
        for c in self.convs:
            c.reset()
        self.reverb.reset()
        self.step_count.zero_()
        self.queue.zero_()
        self.last_f0.fill_(self.initial_f0)
        self.phase.zero_()
        self.p_f0.zero_()
        self.p_rot.zero_()
        self.p_aper.zero_()
        self.p_per.zero_()
        self.noise_queue.zero_()
        self.exc_prev.zero_()
        self.acc.zero_()

    def _controls(self, h: torch.Tensor, raw: torch.Tensor):
        """Network output h (B, C) and the raw inputs of that frame -> filled f0, responses."""
        h = self.norm(h)
        env = self.envelope_head(h)
        if self.mel_prior:
            prior = 2.302585092994046 * raw[:, : self.n_mels] - self.prior_offset
            upper = prior[:, -1:].expand(-1, self.n_upper)
            env = env + torch.cat([prior[:, :1], prior, upper], dim=-1)
        f0_out = self.f0_head(h)
        if self.f0_given:
            f0 = raw[:, self.n_mels] * (raw[:, self.n_mels + 1] > 0.5).to(h.dtype)
        else:
            probs = torch.softmax(f0_out[:, :-1], dim=-1)
            best = probs.argmax(dim=-1, keepdim=True)
            idx = torch.arange(self.n_f0_bins, device=h.device)
            w = probs * ((idx - best).abs() <= 4).to(probs.dtype)
            f0 = torch.exp((w * self.f0_bins_log).sum(-1) / w.sum(-1).clamp_min(1e-12))
            f0 = f0 * (torch.sigmoid(f0_out[:, -1]) > 0.5).to(f0.dtype)
        log_amp = env.clamp(-40.0, 10.0) @ self.envelope_interp
        ap = torch.sigmoid(self.aperiodicity_head(h) @ self.aperiodicity_interp)
        voiced = f0 > 0
        filled = torch.where(voiced, f0, self.last_f0)
        self.last_f0.copy_(filled)
        # WORLD's responses (vocoder.source_filter.world_synth._world_responses)
        power = torch.exp(2.0 * log_amp).clamp(1.1754943508222875e-38, self.max_power)
        log_power = torch.log(power)
        magnitude = torch.sqrt(power)
        ap = ap.clamp(1e-3, 1.0 - 1e-12)
        cep = torch.fft.irfft(log_power, n=self.n_fft)
        cep[:, self.n_fft // 2:] = 0.0
        phase = torch.fft.rfft(cep).imag
        rotation = torch.complex(torch.cos(phase), torch.sin(phase))
        v = voiced.to(ap.dtype).unsqueeze(-1)
        periodic = (magnitude * v) * torch.sqrt(1.0 - ap * ap)
        aperiodic = magnitude * (ap * v + (1.0 - v))
        return filled, rotation, aperiodic, periodic

    def _pulses(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        """WORLD's pulse excitation over one frame segment (world_synth._pulse_excitation)."""
        sr = float(self.sample_rate)
        hop = self.hop
        level2 = 4.0 / sr
        step = fb - fa
        start = torch.remainder(self.phase, 2.0 * math.pi)
        coeffs = torch.stack([(start * (0.5 / math.pi) + 0.5).float(), fa / sr, step / (2.0 * hop * sr),
                              level2 * fa, (level2 / hop) * step], dim=-1)
        phase_f0 = coeffs @ self.basis
        v = torch.frac(phase_f0[:, :hop]) - 0.5
        peak = torch.maximum(fa, fb)
        count = torch.ceil((sr / 2.0) / peak.clamp_min(1e-30)) - 1.0
        count = torch.where(peak > 0, count.clamp_min(0.0), torch.zeros_like(count)).unsqueeze(-1)
        half = count + 0.5
        num = torch.sin(v * (2.0 * math.pi * half))
        sin_half = torch.sin(v * math.pi)
        q = sin_half * sin_half
        small = (q < torch.sin(0.05 / half) ** 2).to(v.dtype)
        closed = (num / (sin_half + small) - 1.0) * 0.5
        s2 = count * (count + 1.0) * (2.0 * count + 1.0) / 6.0
        s4 = s2 * (3.0 * count * count + 3.0 * count - 1.0) / 5.0
        taylor = (q * ((2.0 / 3.0) * (s4 - s2)) - 2.0 * s2) * q + count
        kernel = torch.lerp(closed, taylor, small)
        level = torch.sqrt(phase_f0[:, hop:].clamp_min(1e-12 * level2))
        seg = (2.0 * math.pi * hop / sr) * 0.5 * (fa.double() + fb.double())
        self.phase.copy_(torch.remainder(self.phase + seg, 2.0 * math.pi))
        return kernel * level

    def _piece(self, noise: torch.Tensor, pulses: torch.Tensor, rot: torch.Tensor, aper: torch.Tensor,
               per: torch.Tensor):
        """Add the overlap-add piece of the pending frame (starting at the next output sample)."""
        fn = torch.cat([self.exc_prev[0], noise], dim=-1) * self.window
        fp = torch.cat([self.exc_prev[1], pulses], dim=-1) * self.window
        mixed = (torch.fft.rfft(fn, n=self.n_fft) * aper + torch.fft.rfft(fp, n=self.n_fft) * per) * rot
        self.acc[:, : self.n_fft] += torch.fft.irfft(mixed, n=self.n_fft)
        self.exc_prev[0].copy_(noise)
        self.exc_prev[1].copy_(pulses)

    def _emit(self) -> torch.Tensor:
        out = self.acc[:, : self.hop].clone()
        self.acc.copy_(torch.cat([self.acc[:, self.hop:], torch.zeros_like(out)], dim=1))
        return self.reverb(out) if self.has_reverb else out

    def _frame(self, mel_frame: torch.Tensor, raw: torch.Tensor, noise: torch.Tensor, n_frames: int) -> torch.Tensor:
        step = int(self.step_count.item())
        x = (mel_frame - self.mel_mean) / self.mel_std
        for c in self.convs:
            x = c(x, step, n_frames)
        # raw inputs and noise wait for the convolutions' delayed output
        self.queue.copy_(torch.cat([self.queue[:, 1:], raw.unsqueeze(1)], dim=1))
        self.noise_queue.copy_(torch.cat([self.noise_queue[:, self.hop:], noise], dim=1))
        j = step - self.lookahead  # the frame the network output belongs to
        if j >= 0:
            f0, rot, aper, per = self._controls(x, self.queue[:, 0])
            if j >= 1:  # segment j - 1: pending frame to this one
                seg_noise = self.noise_queue[:, : self.hop]
                self._piece(seg_noise, self._pulses(self.p_f0, f0), self.p_rot, self.p_aper, self.p_per)
                if j == 1:  # piece 0 starts a hop before sample 0; offline drops that part
                    self.acc[:, : self.hop] = 0.0
            self.p_f0.copy_(f0)
            self.p_rot.copy_(rot)
            self.p_aper.copy_(aper)
            self.p_per.copy_(per)
        self.step_count.add_(1)
        return self._emit()

    def forward(self, mel: torch.Tensor, f0: Optional[torch.Tensor] = None, vuv: Optional[torch.Tensor] = None,
                noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        k = mel.shape[1]
        outs: List[torch.Tensor] = []
        for i in range(k):
            raw = mel[:, i]
            if f0 is not None and vuv is not None:
                raw = torch.cat([raw, f0[:, i:i + 1], vuv[:, i:i + 1]], dim=-1)
            else:
                raw = torch.cat([raw, torch.zeros_like(raw[:, :2])], dim=-1)
            if noise is None:
                seg = torch.randn(self.batch, self.hop, device=mel.device)
            else:
                seg = noise[:, i * self.hop:(i + 1) * self.hop]
            outs.append(self._frame(mel[:, i], raw, seg, -1))
        return torch.cat(outs, dim=1)

    @torch.jit.export
    def flush(self) -> torch.Tensor:
        n_frames = int(self.step_count.item())
        if n_frames == 0:
            return torch.zeros(self.batch, 0)
        outs: List[torch.Tensor] = []
        zeros_mel = torch.zeros(self.batch, self.n_mels, device=self.acc.device)
        for _ in range(self.lookahead):  # the convolutions' right-hand padding
            raw = torch.zeros(self.batch, self.n_mels + 2, device=self.acc.device)
            outs.append(self._frame(zeros_mel, raw, torch.zeros(self.batch, self.hop, device=self.acc.device),
                                    n_frames))
        # the last frame held: its segment, then its filter once more over silence
        seg_noise = self.noise_queue[:, self.hop:2 * self.hop]  # frame F - 1's
        self._piece(seg_noise, self._pulses(self.p_f0, self.p_f0), self.p_rot, self.p_aper, self.p_per)
        outs.append(self._emit())
        zeros = torch.zeros(self.batch, self.hop, device=self.acc.device)
        self._piece(zeros, zeros, self.p_rot, self.p_aper, self.p_per)
        outs.append(self._emit())
        return torch.cat(outs, dim=1)


def _exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return 2.0 * torch.sigmoid(x).pow(math.log(10.0)) + 1e-7


def script_streaming(model, **kwargs) -> torch.jit.ScriptModule:
    """The TorchScript streaming module of ``model`` (DDSP: :class:`DDSPStreamStep`,
    MelDDSP: :class:`MelStreamStep`; ``kwargs`` go to it), in eval mode."""
    import warnings

    from .models.ddsp import DDSP
    from .models.mel_vocoder import MelDDSP
    if isinstance(model, DDSP):
        step = DDSPStreamStep(model.eval(), **kwargs).eval()
    elif isinstance(model, MelDDSP):
        step = MelStreamStep(model.eval(), **kwargs).eval()
    else:
        raise ValueError(f"no TorchScript export for {type(model).__name__}")
    with warnings.catch_warnings():  # torch 2.10+ marks TorchScript deprecated; it still is what libtorch loads
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(step)


def save_scripted(scripted: torch.jit.ScriptModule, path) -> None:
    """Save a scripted module to ``path`` atomically (:func:`vocoder.outputs.write_atomic`)."""
    import io
    import warnings

    from .outputs import write_atomic
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(scripted, buffer)
    write_atomic(path, buffer.getvalue(), what="TorchScript model")


def export_torchscript(model, path, **kwargs) -> torch.jit.ScriptModule:
    """:func:`script_streaming` of ``model``, saved to ``path``; returns the scripted module."""
    scripted = script_streaming(model, **kwargs)
    save_scripted(scripted, path)
    return scripted

