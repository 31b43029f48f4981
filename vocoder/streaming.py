"""Block-wise (streaming) synthesis with carried state, for every model.

A real-time host gives the vocoder a few feature frames at a time and wants audio back
at once. The offline models see the whole utterance; here each stage keeps what it needs
between calls:

- oscillator phase (float64, as offline), so the harmonic bank and WORLD's pulse train
  continue without a click;
- recurrent state of the DDSP encoder and decoder GRUs; input buffers of the mel
  vocoder's dilated convolutions (each layer keeps its last ``2 * dilation`` inputs);
- the overlap-add tails of the frame-wise filters (DDSP's filtered noise, WORLD's
  minimum-phase filters);
- the reverb's input history, as a uniformly partitioned convolution (one partition per
  hop, frequency-domain delay line), so a 1 s impulse response costs a few small FFTs per
  frame instead of one long FFT per block.

Use::

    stream = StreamingSynth.from_model(model, speaker=...)     # DDSP or MelDDSP
    for block in host_blocks:              # any number of frames per call, 0 included
        audio = stream.process(block)      # dict of (1, k) / (1, k, dims) tensors
        play(audio)
    play(stream.flush())                   # the end of the utterance

Every call returns whole hops of audio. Output equals offline synthesis
(:func:`offline_reference`) to float rounding (about -130 dB; the tests require -60 dB).

Latency. Segment ``n`` of the signal (samples ``[n hop, (n + 1) hop)``) interpolates
frames ``n`` and ``n + 1``, so it can be rendered when frame ``n + 1`` arrives; the
frame filters of the noise reach half their length (DDSP: ``ir_length // 2`` samples)
ahead. :attr:`StreamingSynth.latency_frames` frames of algorithmic latency follow (DDSP:
2 frames, 20 ms at 16 kHz with hop 160; mel vocoder: 1 frame plus the convolutions'
look-ahead, ``sum(dilation * (kernel // 2))`` frames).

What streaming cannot know, and how it is handled (both have offline counterparts
that :func:`offline_reference` uses, so the comparison is exact):

- f0 through unvoiced gaps. DDSP's offline input interpolates log-f0 across a gap
  (:func:`~vocoder.models.ddsp.continuous_f0`: it needs the next voiced frame), and
  WORLD's pulse train starts leading silence at the first voiced f0. The stream holds
  the last voiced f0 instead (``causal_continuous_f0``), with ``initial_f0`` before
  the first voiced frame. Unvoiced frames are gated to noise either way; what changes
  is the network's f0 input there and the pulse phase after a gap.
- DDSP's instance-normalised encoder (``encoder_norm: instance``) needs the utterance's
  MFCC mean and standard deviation: pass ``mfcc_stats`` (e.g. of the speaker's
  enrollment audio); without them the stream uses running statistics of what it has
  seen so far (an approximation, noted in ``approximate``).

A bidirectional GRU (``MelDDSP(gru_size > 0, bidirectional=True)``) is not causal and
cannot be streamed; a unidirectional one can.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .dsp.filters import frequency_sampling_fir, next_fast_len
from .dsp.oscillators import frame_phase, harmonic_synthesis
from .models.rnn import gru, warm_up_gru

__all__ = [
    "StreamingConvolver",
    "StreamingSynth",
    "StreamingDDSP",
    "StreamingMelDDSP",
    "causal_continuous_f0",
    "offline_reference",
    "stream_in_blocks",
]

NoiseSource = Callable[[int, int], torch.Tensor]  # (batch, samples) -> noise


def causal_continuous_f0(f0_hz: torch.Tensor, vuv: torch.Tensor, *, initial_f0: float | torch.Tensor = 100.0
                         ) -> torch.Tensor:
    """f0 with unvoiced frames holding the last voiced frame's f0 (causal).

    Args:
        f0_hz: (batch, frames), 0 where unvoiced.
        vuv: (batch, frames) voicing flag (>0.5 voiced).
        initial_f0: the f0 held before the first voiced frame: a number or a (batch,)
            tensor (a stream passes the last voiced f0 of its previous block).
    Returns:
        (batch, frames) f0 in Hz, positive everywhere.
    """
    voiced = (vuv > 0.5) & (f0_hz > 0)
    batch, n = f0_hz.shape
    init = torch.as_tensor(initial_f0, dtype=f0_hz.dtype, device=f0_hz.device).expand(batch).reshape(batch, 1)
    values = torch.cat([init, f0_hz], dim=1)
    idx = torch.arange(n + 1, device=f0_hz.device).expand(batch, n + 1)
    mask = torch.cat([torch.ones_like(voiced[:, :1]), voiced], dim=1)
    last = torch.where(mask, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return torch.gather(values, 1, last)[:, 1:]


def _hann_window(hop: int, dtype, device) -> torch.Tensor:
    k = torch.arange(2 * hop, dtype=dtype, device=device)
    return 0.5 - 0.5 * torch.cos(math.pi * k / hop)


class StreamingConvolver:
    """Causal convolution with a fixed impulse response, fed hop-sized blocks.

    Uniformly partitioned overlap-save: the response is cut into ``ceil(L / hop)``
    partitions of ``hop`` taps, each transformed once (FFT size ``2 hop``); each input
    block's spectrum enters a delay line and an output block is the inverse FFT of the
    sum of (delayed spectrum x partition spectrum). Equal to ``fft_convolve(x, ir,
    mode="causal")`` over the concatenated blocks.

    Args:
        ir: (L,) impulse response.
        hop: block size in samples; :meth:`process` takes any multiple of it.
        batch: rows processed together.
    """

    def __init__(self, ir: torch.Tensor, *, hop: int, batch: int = 1, max_blocks_per_step: int = 64):
        ir = ir.detach().flatten()
        self.hop = int(hop)
        self.n_fft = 2 * self.hop
        n_parts = -(-ir.numel() // self.hop)
        parts = F.pad(ir, (0, n_parts * self.hop - ir.numel())).reshape(n_parts, self.hop)
        # partition q, reversed so that the delay line (oldest first) lines up with it
        self.spectra = torch.fft.rfft(parts, n=self.n_fft).flip(0)  # (Q, bins)
        self.n_parts = n_parts
        self.max_blocks = int(max_blocks_per_step)
        bins = self.n_fft // 2 + 1
        self.delay = torch.zeros(batch, n_parts - 1, bins, dtype=self.spectra.dtype, device=ir.device)
        self.prev = torch.zeros(batch, self.hop, dtype=ir.dtype, device=ir.device)

    def process(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, k * hop) input -> (batch, k * hop) output."""
        if x.shape[-1] == 0:
            return x
        if x.shape[-1] % self.hop:
            raise ValueError(f"StreamingConvolver: input of {x.shape[-1]} samples is not a multiple of {self.hop}")
        outs = []
        step = self.max_blocks * self.hop
        for a in range(0, x.shape[-1], step):
            outs.append(self._process(x[:, a:a + step]))
        return torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        k = x.shape[-1] // self.hop
        blocks = torch.cat([self.prev, x], dim=-1).unfold(-1, self.n_fft, self.hop)  # (B, k, 2 hop)
        spec = torch.fft.rfft(blocks, n=self.n_fft)  # (B, k, bins)
        line = torch.cat([self.delay, spec], dim=1)  # (B, Q - 1 + k, bins)
        windows = line.unfold(1, self.n_parts, 1)  # (B, k, bins, Q)
        y = torch.einsum("bkfq,qf->bkf", windows, self.spectra)
        out = torch.fft.irfft(y, n=self.n_fft)[..., self.hop:]  # overlap-save: the last hop is valid
        self.delay = line[:, line.shape[1] - (self.n_parts - 1):] if self.n_parts > 1 else self.delay
        self.prev = x[:, -self.hop:]
        return out.reshape(batch, k * self.hop)


class _FrameOLA:
    """Frame-wise filtering by overlap-add, fed one frame segment at a time.

    Piece ``n`` is the result of filtering the Hann-windowed excitation on
    ``[(n - 1) hop, (n + 1) hop)`` (the caller's ``pieces_fn``); it is added from
    position ``(n - 1) hop`` on, and output sample ``t`` is the sum at ``t + shift``
    (``shift`` cancels a centred filter's delay). After pieces ``0 .. n`` are in, the sum
    is final below ``n hop``.
    """

    def __init__(self, *, batch: int, hop: int, n_inputs: int, shift: int, dtype, device):
        self.hop = hop
        self.shift = shift
        self.prev = [torch.zeros(batch, hop, dtype=dtype, device=device) for _ in range(n_inputs)]
        self.window = _hann_window(hop, dtype, device)
        self.acc = torch.zeros(batch, 0, dtype=dtype, device=device)
        self.acc_start = shift  # position (before the shift) of acc[0]: output sample 0
        self.n_pieces = 0

    def add(self, excitations: list[torch.Tensor], pieces_fn) -> None:
        """Add pieces ``n .. n + k - 1`` given the excitations on ``[n hop, (n + k) hop)``."""
        k = excitations[0].shape[-1] // self.hop
        if k == 0:
            return
        framed = []
        for i, x in enumerate(excitations):
            seg = torch.cat([self.prev[i], x], dim=-1)
            framed.append(seg.unfold(-1, 2 * self.hop, self.hop) * self.window)  # (B, k, 2 hop)
            self.prev[i] = x[:, -self.hop:]
        pieces = pieces_fn(framed)  # (B, k, piece_length)
        batch, _, length = pieces.shape
        span = (k - 1) * self.hop + length
        local = F.fold(pieces.transpose(1, 2), output_size=(1, span), kernel_size=(1, length),
                       stride=(1, self.hop)).reshape(batch, span)
        start = (self.n_pieces - 1) * self.hop  # position of local[0]
        self.n_pieces += k
        offset = start - self.acc_start
        if offset < 0:  # what falls before output sample 0 (the first pieces' left halves)
            local = local[:, -offset:]
            offset = 0
        end = offset + local.shape[-1]
        if end > self.acc.shape[-1]:
            self.acc = F.pad(self.acc, (0, end - self.acc.shape[-1]))
        self.acc[:, offset:end] += local

    def ready(self) -> int:
        """Output samples (from the current start) that no later piece will change."""
        return max(0, (self.n_pieces - 1) * self.hop - self.acc_start)

    def pop(self, n: int) -> torch.Tensor:
        out = self.acc[:, :n]
        if out.shape[-1] < n:
            out = F.pad(out, (0, n - out.shape[-1]))
        self.acc = self.acc[:, n:]
        self.acc_start += n
        return out


class StreamingSynth:
    """Common driver: frames in, whole hops of audio out, the reverb applied on the way.

    Subclasses implement ``_frames(inputs) -> per-frame controls`` (the network, causal)
    and ``_segments(ctrl_prev_and_new, final) -> dry audio`` (the synthesizers).
    """

    latency_frames: int = 1

    def __init__(self, model, *, batch: int = 1, dry: bool = False, reverb_ir: torch.Tensor | None = None,
                 noise: NoiseSource | None = None, generator: torch.Generator | None = None):
        self.model = model
        self.hop = int(model.hop_length)
        self.sample_rate = int(model.sample_rate)
        self.batch = int(batch)
        p = next(model.parameters())
        self.dtype, self.device = torch.float32, p.device
        self.generator = generator
        self.noise_source = noise
        # Load (or compile) the GRU loop and choose each GRU's path now, not in the first
        # block's time budget.
        grus = [m for m in model.modules() if isinstance(m, torch.nn.GRU)]
        if grus:
            warm_up_gru(grus, self.batch)
        ir = None
        if reverb_ir is not None:
            ir = reverb_ir
        elif not dry and getattr(model, "reverb", None) is not None:
            with torch.no_grad():
                ir = model.reverb.impulse_response()
        self.reverb = (StreamingConvolver(ir.to(self.device, self.dtype), hop=self.hop, batch=self.batch)
                       if ir is not None else None)
        self.frames_in = 0
        self.samples_out = 0
        self.pending = None  # controls of the last frame, whose segment waits for the next one
        self.finished = False
        self.approximate: list[str] = []

    @staticmethod
    def from_model(model, **kwargs) -> "StreamingSynth":
        """The streaming wrapper for ``model`` (DDSP or MelDDSP)."""
        from .models.ddsp import DDSP
        from .models.mel_vocoder import MelDDSP
        if isinstance(model, DDSP):
            return StreamingDDSP(model, **kwargs)
        if isinstance(model, MelDDSP):
            mel_kwargs = {k: v for k, v in kwargs.items() if k not in ("speaker", "speaker_embedding", "mfcc_stats")}
            return StreamingMelDDSP(model, **mel_kwargs)
        raise TypeError(f"no streaming implementation for {type(model).__name__}")

    @property
    def latency_samples(self) -> int:
        return self.latency_frames * self.hop

    def _noise(self, n: int) -> torch.Tensor:
        if self.noise_source is not None:
            return self.noise_source(self.batch, n).to(self.device, self.dtype)
        return self._default_noise(n)

    def _default_noise(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def process(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Take the next frames (``(batch, k)`` / ``(batch, k, dims)`` tensors, k >= 0) and
        return the audio that became final: ``(batch, m * hop)``, m >= 0."""
        if self.finished:
            raise RuntimeError("stream already flushed; call reset() to start a new utterance")
        k = next(iter(inputs.values())).shape[1]
        if k == 0:
            return self._empty()
        return self._render(self._frames(inputs))

    def _render(self, ctrl: dict[str, torch.Tensor]) -> torch.Tensor:
        """Synthesize from the next frames' controls (the output of ``_frames``)."""
        self.frames_in += ctrl[next(iter(ctrl))].shape[1]
        merged = ctrl if self.pending is None else {key: torch.cat([self.pending[key], v], dim=1)
                                                    for key, v in ctrl.items()}
        # Segments of all but the newest frame can be rendered now.
        n_seg = merged[next(iter(merged))].shape[1] - 1
        if n_seg > 0:
            self._segments(merged, n_seg)
        self.pending = {key: v[:, -1:] for key, v in merged.items()}
        return self._emit(final=False)

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """End of the utterance: the rest of the audio, up to ``frames * hop`` samples."""
        if self.finished:
            return self._empty()
        self.finished = True
        if self.pending is None:
            return self._empty()
        # The last frame is held (as offline): its segment interpolates it with itself.
        held = {key: torch.cat([v, v], dim=1) for key, v in self.pending.items()}
        self._segments(held, 1, final=True)
        return self._emit(final=True)

    def _empty(self) -> torch.Tensor:
        return torch.zeros(self.batch, 0, dtype=self.dtype, device=self.device)

    def _emit(self, final: bool) -> torch.Tensor:
        """Pop the audio that is final (whole hops; at the end, everything up to frames * hop)."""
        if final:
            ready = self.frames_in * self.hop - self.samples_out
        else:
            ready = self._ready() // self.hop * self.hop
        if ready <= 0:
            return self._empty()
        dry = self._pop(ready)
        self.samples_out += ready
        return self.reverb.process(dry) if self.reverb is not None else dry

    def reset(self) -> None:
        """Forget the utterance (state back to the start)."""
        self.__init__(self.model, **self._init_kwargs)


class StreamingDDSP(StreamingSynth):
    """Streaming :class:`~vocoder.models.ddsp.DDSP`.

    Args:
        model: a DDSP model in eval mode.
        batch: rows streamed together.
        speaker: (batch,) speaker ids, a name, or None (the model's first).
        speaker_embedding: (batch, dim) embedding (a blend) instead of ``speaker``.
        mfcc_stats: ``(mean, std)`` of the MFCCs, each (batch, n_mfcc), for an
            instance-normalised encoder.
        dry: skip the reverb; ``reverb_ir`` replaces the model's response.
        noise: ``noise(batch, samples)`` returning the noise excitation (uniform in [-1,
            1), as the model draws it) for the next samples; default: ``torch.rand``
            with ``generator``.
        initial_f0: f0 held before the first voiced frame (Hz).
    """

    def __init__(self, model, *, batch: int = 1, speaker=None, speaker_embedding=None,
                 mfcc_stats: tuple[torch.Tensor, torch.Tensor] | None = None, dry: bool = False,
                 reverb_ir: torch.Tensor | None = None, noise: NoiseSource | None = None,
                 generator: torch.Generator | None = None, initial_f0: float = 100.0):
        self._init_kwargs = dict(batch=batch, speaker=speaker, speaker_embedding=speaker_embedding,
                                 mfcc_stats=mfcc_stats, dry=dry, reverb_ir=reverb_ir, noise=noise,
                                 generator=generator, initial_f0=initial_f0)
        super().__init__(model, batch=batch, dry=dry, reverb_ir=reverb_ir, noise=noise, generator=generator)
        m = model
        self.ir_length = m.noise.ir_length or 2 * (m.n_noise_bands - 1)
        shift = self.ir_length // 2
        # the noise is final below (pieces - 1) hop - shift; the harmonic below segments * hop
        self.latency_frames = 1 + -(-shift // self.hop)
        self.ola = _FrameOLA(batch=self.batch, hop=self.hop, n_inputs=1, shift=shift, dtype=self.dtype,
                             device=self.device)
        self.conv_n_fft = next_fast_len(2 * self.hop + self.ir_length - 1)
        self.harm = torch.zeros(self.batch, 0, dtype=self.dtype, device=self.device)
        self.phase = torch.zeros(self.batch, dtype=torch.float64, device=self.device)
        self.last_f0 = torch.full((self.batch,), float(initial_f0), dtype=self.dtype, device=self.device)
        self.h_dec = None
        self.h_enc = None
        self.spk = None
        if m.n_speakers > 0:
            if speaker_embedding is not None:
                self.spk = speaker_embedding.to(self.device, self.dtype).reshape(self.batch, -1)
            else:
                if speaker is None:
                    speaker = 0
                if isinstance(speaker, str):
                    speaker = m.speaker_index(speaker)
                idx = torch.as_tensor(speaker, device=self.device).reshape(-1).expand(self.batch)
                known = m.speaker_embedding(idx.clamp_min(0))
                mean = m.speaker_embedding.weight.mean(0).expand_as(known)
                self.spk = torch.where((idx >= 0).unsqueeze(-1), known, mean).detach()
        self.mfcc_stats = None
        self.running = None
        if m.z_dim > 0 and m.encoder_norm == "instance":
            if mfcc_stats is not None:
                mean, std = mfcc_stats
                self.mfcc_stats = (mean.to(self.device, self.dtype).reshape(self.batch, 1, -1)[..., :m.n_mfcc],
                                   std.to(self.device, self.dtype).reshape(self.batch, 1, -1)[..., :m.n_mfcc])
            else:
                self.approximate.append("instance-normalised encoder with running MFCC statistics "
                                        "(pass mfcc_stats for the utterance's own)")
                self.running = [0, 0.0, 0.0]

    def _default_noise(self, n: int) -> torch.Tensor:
        g = self.generator
        dev = g.device if g is not None else self.device
        return (2.0 * torch.rand(self.batch, n, generator=g, dtype=self.dtype, device=dev) - 1.0).to(self.device)

    def _encode(self, mfcc: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = mfcc[..., :m.n_mfcc].to(self.dtype)
        if m.encoder_norm == "instance":
            if self.mfcc_stats is not None:
                mean, std = self.mfcc_stats
            else:  # running mean and std over the frames seen so far (per coefficient)
                n0, s1, s2 = self.running
                n = n0 + x.shape[1]
                c1 = torch.cumsum(x, dim=1) + s1
                c2 = torch.cumsum(x * x, dim=1) + s2
                cnt = torch.arange(n0 + 1, n + 1, device=x.device, dtype=x.dtype).reshape(1, -1, 1)
                mean = c1 / cnt
                std = ((c2 - cnt * mean * mean) / (cnt - 1).clamp_min(1)).clamp_min(0).sqrt()
                self.running = [n, c1[:, -1:], c2[:, -1:]]
            x = (x - mean) / std.clamp_min(1e-3)
        h, self.h_enc = gru(m.encoder_gru, m.mfcc_norm(x), self.h_enc)
        return m.encoder_out(h)

    def _frames(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m = self.model
        f0 = inputs["f0"].to(self.device, self.dtype)
        vuv = inputs["vuv"].to(self.device, self.dtype)
        if "f0_continuous" in inputs:
            f0c = inputs["f0_continuous"].to(self.device, self.dtype)
        else:
            f0c = causal_continuous_f0(f0, vuv, initial_f0=self.last_f0)
        self.last_f0 = f0c[:, -1]
        x = {"f0_continuous": f0c, "vuv": vuv, "loudness": inputs["loudness"].to(self.device, self.dtype)}
        if m.z_dim > 0:  # the stream's own encoder state and normalisation
            x["z"] = inputs["z"].to(self.device, self.dtype) if "z" in inputs else self._encode(
                inputs["mfcc"].to(self.device))
        if self.spk is not None:
            x["speaker_embedding"] = self.spk
        raw = m.decode(x, gru_state=self.h_dec)
        self.h_dec = raw.pop("gru_state")
        amps, mags = m.synth_controls(raw, f0c, vuv)
        return {"f0": f0c, "amps": amps, "irs": frequency_sampling_fir(mags, ir_length=self.ir_length)}

    def _segments(self, ctrl: dict[str, torch.Tensor], n_seg: int, final: bool = False) -> None:
        # Harmonic: segments interpolate frame pairs; render n_seg + 1 frames, keep n_seg hops.
        f0 = ctrl["f0"][:, :n_seg + 1]
        audio = harmonic_synthesis(f0, ctrl["amps"][:, :n_seg + 1], sample_rate=self.sample_rate,
                                   hop_length=self.hop, initial_phase=self.phase)
        self.harm = torch.cat([self.harm, audio[:, :n_seg * self.hop]], dim=1)
        start, _ = frame_phase(f0, sample_rate=self.sample_rate, hop_length=self.hop, initial_phase=self.phase)
        self.phase = start[:, n_seg]
        # Noise: pieces of frames n .. n + n_seg - 1 over the noise of their segments.
        noise = self._noise(n_seg * self.hop)
        irs = ctrl["irs"][:, :n_seg]
        self.ola.add([noise], lambda fr: self._noise_pieces(fr[0], irs))
        if final:  # offline holds the last frame's filter once more, over silence beyond the end
            self.ola.add([torch.zeros_like(noise[:, :self.hop])], lambda fr: self._noise_pieces(fr[0], irs[:, -1:]))

    def _noise_pieces(self, frames: torch.Tensor, irs: torch.Tensor) -> torch.Tensor:
        conv_length = 2 * self.hop + self.ir_length - 1
        spec = torch.fft.rfft(frames, n=self.conv_n_fft) * torch.fft.rfft(irs, n=self.conv_n_fft)
        return torch.fft.irfft(spec, n=self.conv_n_fft)[..., :conv_length]

    def _ready(self) -> int:
        return min(self.harm.shape[1], self.ola.ready())

    def _pop(self, n: int) -> torch.Tensor:
        h = self.harm[:, :n]
        if h.shape[1] < n:
            h = F.pad(h, (0, n - h.shape[1]))
        self.harm = self.harm[:, n:]
        return h + self.ola.pop(n)


class _StreamingConv:
    """One 'same'-padded Conv1d, streamed: keeps its last ``2 p`` inputs (p = dilation *
    (kernel // 2)); its output lags its input by p frames, as the zero padding does."""

    def __init__(self, conv: torch.nn.Conv1d, batch: int, dtype, device):
        self.conv = conv
        self.p = conv.dilation[0] * (conv.kernel_size[0] // 2)
        self.buf = torch.zeros(batch, conv.in_channels, self.p, dtype=dtype, device=device)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, n) new inputs -> (outputs, the inputs they are centred on)."""
        full = torch.cat([self.buf, x], dim=-1)
        n_out = full.shape[-1] - 2 * self.p
        self.buf = full[..., max(0, full.shape[-1] - 2 * self.p):]
        if n_out <= 0:
            return full.new_zeros(full.shape[0], self.conv.out_channels, 0), full[..., :0]
        y = F.conv1d(full, self.conv.weight, self.conv.bias, dilation=self.conv.dilation)
        return y, full[..., self.p:self.p + n_out]


class StreamingMelDDSP(StreamingSynth):
    """Streaming :class:`~vocoder.models.mel_vocoder.MelDDSP` (mel in, speech out).

    The dilated convolutions see ``lookahead`` frames ahead, so the output lags the mel
    by ``lookahead + 1`` frames. f0 is the model's prediction (``inference_f0:
    predicted``), or the given ``f0``/``vuv`` with ``inference_f0: dump``.

    Args:
        model: a MelDDSP in eval mode (no bidirectional GRU).
        noise: ``noise(batch, samples)``: unit-variance Gaussian excitation; default
            ``torch.randn`` with ``generator``.
        initial_f0: pulse-train f0 before the first voiced frame (Hz).
    """

    def __init__(self, model, *, batch: int = 1, dry: bool = False, reverb_ir: torch.Tensor | None = None,
                 noise: NoiseSource | None = None, generator: torch.Generator | None = None,
                 initial_f0: float = 100.0):
        if model.gru is not None and model.gru.bidirectional:
            raise ValueError("a MelDDSP with a bidirectional GRU is not causal and cannot be streamed; "
                             "use gru_size 0 or bidirectional false")
        self._init_kwargs = dict(batch=batch, dry=dry, reverb_ir=reverb_ir, noise=noise, generator=generator,
                                 initial_f0=initial_f0)
        super().__init__(model, batch=batch, dry=dry, reverb_ir=reverb_ir, noise=noise, generator=generator)
        m = model
        self.convs = [_StreamingConv(m.input_conv, self.batch, self.dtype, self.device)]
        self.convs += [_StreamingConv(b.conv, self.batch, self.dtype, self.device) for b in m.convs]
        self.lookahead = sum(c.p for c in self.convs)
        self.latency_frames = 1 + self.lookahead
        self.n_fft = m.synthesis_n_fft
        self.ola = _FrameOLA(batch=self.batch, hop=self.hop, n_inputs=2, shift=0, dtype=self.dtype,
                             device=self.device)
        self.phase = torch.zeros(self.batch, dtype=torch.float64, device=self.device)
        self.last_f0 = torch.full((self.batch,), float(initial_f0), dtype=self.dtype, device=self.device)
        self.h_gru = None
        self.given = None  # raw mel (and a given f0/vuv) waiting for the convolutions' delayed output

    def _default_noise(self, n: int) -> torch.Tensor:
        g = self.generator
        dev = g.device if g is not None else self.device
        return torch.randn(self.batch, n, generator=g, dtype=self.dtype, device=dev).to(self.device)

    def _network(self, x: torch.Tensor, given: dict | None) -> dict[str, torch.Tensor] | None:
        """Convolution stack output frames (B, C, n) -> per-frame synthesis controls."""
        m = self.model
        if x.shape[-1] == 0:
            return None
        h = x.transpose(1, 2)
        if m.gru is not None:
            g, self.h_gru = gru(m.gru, h, self.h_gru)
            h = torch.cat([h, g], dim=-1)
        raw = m.heads(h, given["mel"])
        if m.inference_f0 == "dump":
            f0 = given["f0"].float() * (given["vuv"] > 0.5).float()
        else:
            f0_pred = m.decode_f0(raw["f0_logits"])
            f0 = f0_pred * (torch.sigmoid(raw["vuv_logit"]) > 0.5).to(f0_pred.dtype)
        log_amp, ap = m.envelope_and_aperiodicity(raw)
        return self._world_controls(f0, torch.exp(2.0 * log_amp), ap)

    def _world_controls(self, f0: torch.Tensor, sp: torch.Tensor, ap: torch.Tensor) -> dict[str, torch.Tensor]:
        from .source_filter.world_synth import _world_responses
        voiced = f0 > 0
        filled = causal_continuous_f0(f0, voiced.to(f0.dtype), initial_f0=self.last_f0)
        self.last_f0 = filled[:, -1]
        rotation, aperiodic, periodic = _world_responses(sp, ap, voiced, n_fft=self.n_fft)
        return {"f0": filled, "rotation": rotation, "aperiodic": aperiodic, "periodic": periodic}

    @torch.no_grad()
    def process(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.finished:
            raise RuntimeError("stream already flushed; call reset() to start a new utterance")
        mel = inputs["mel"].to(self.device, self.dtype)
        if mel.shape[1] == 0:
            return self._empty()
        self.frames_in += mel.shape[1]
        x = self._conv_stack(mel)
        return self._take(x, mel, inputs, final=False)

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        if self.finished:
            return self._empty()
        self.finished = True
        # Right-hand zero padding of each convolution in turn.
        x = None
        for i, c in enumerate(self.convs):
            inp = torch.zeros(self.batch, c.conv.in_channels, c.p, dtype=self.dtype, device=self.device)
            if x is not None:
                inp = torch.cat([x, inp], dim=-1)
            y, centre = c(inp)
            x = F.leaky_relu(y, 0.2) if i == 0 else centre + F.leaky_relu(y, 0.2)
        head = self._take(x, None, None, final=False)
        if self.pending is not None:
            held = {key: torch.cat([v, v], dim=1) for key, v in self.pending.items()}
            self._segments(held, 1, final=True)
        return torch.cat([head, self._emit(final=True)], dim=-1)

    def _conv_stack(self, mel: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = ((mel - m.mel_mean) / m.mel_std).transpose(1, 2)
        for i, c in enumerate(self.convs):
            y, centre = c(x)
            x = F.leaky_relu(y, 0.2) if i == 0 else centre + F.leaky_relu(y, 0.2)
        return x

    def _take(self, x: torch.Tensor, mel, inputs, final: bool) -> torch.Tensor:
        """Queue the raw inputs (the mel prior and a given f0 need them at the network's
        delayed output) and turn the convolution output frames into controls."""
        if mel is not None:
            given = {"mel": mel}
            if self.model.inference_f0 == "dump":
                given["f0"] = inputs["f0"].to(self.device, self.dtype)
                given["vuv"] = inputs["vuv"].to(self.device, self.dtype)
            self.given = given if self.given is None else {
                k: torch.cat([self.given[k], v], dim=1) for k, v in given.items()}
        n = x.shape[-1]
        if n == 0:
            return self._emit(final=False)
        given = {k: v[:, :n] for k, v in self.given.items()}
        self.given = {k: v[:, n:] for k, v in self.given.items()}
        ctrl = self._network(x, given)
        merged = ctrl if self.pending is None else {key: torch.cat([self.pending[key], v], dim=1)
                                                    for key, v in ctrl.items()}
        n_seg = merged["f0"].shape[1] - 1
        if n_seg > 0:
            self._segments(merged, n_seg)
        self.pending = {key: v[:, -1:] for key, v in merged.items()}
        return self._emit(final=False)

    def _segments(self, ctrl: dict[str, torch.Tensor], n_seg: int, final: bool = False) -> None:
        from .source_filter.world_synth import _pulse_excitation
        f0 = ctrl["f0"][:, :n_seg + 1]
        pulses = _pulse_excitation(f0, sample_rate=self.sample_rate, hop_length=self.hop,
                                   initial_phase=self.phase, dtype=self.dtype)[:, :n_seg * self.hop]
        start, _ = frame_phase(f0, sample_rate=self.sample_rate, hop_length=self.hop, initial_phase=self.phase)
        self.phase = start[:, n_seg]
        noise = self._noise(n_seg * self.hop)
        resp = {k: ctrl[k][:, :n_seg] for k in ("rotation", "aperiodic", "periodic")}
        self.ola.add([noise, pulses], lambda fr: self._world_pieces(fr, resp))
        if final:
            last = {k: v[:, -1:] for k, v in resp.items()}
            zeros = torch.zeros_like(noise[:, :self.hop])
            self.ola.add([zeros, zeros], lambda fr: self._world_pieces(fr, last))

    def _world_pieces(self, framed: list[torch.Tensor], resp: dict[str, torch.Tensor]) -> torch.Tensor:
        noise_spec = torch.fft.rfft(framed[0], n=self.n_fft)
        pulse_spec = torch.fft.rfft(framed[1], n=self.n_fft)
        mixed = (noise_spec * resp["aperiodic"] + pulse_spec * resp["periodic"]) * resp["rotation"]
        return torch.fft.irfft(mixed, n=self.n_fft)

    def _ready(self) -> int:
        return self.ola.ready()

    def _pop(self, n: int) -> torch.Tensor:
        return self.ola.pop(n)


def offline_reference(model, inputs: dict[str, torch.Tensor], *, noise: torch.Tensor, dry: bool = False,
                      mfcc_stats=None, initial_f0: float = 100.0) -> torch.Tensor:
    """Offline synthesis with the stream's causal conventions (f0 held through gaps,
    given MFCC statistics) and the given excitation noise: what a stream must equal.

    Args:
        model: DDSP or MelDDSP (eval mode).
        inputs: the utterance's frame features (as for ``model(inputs)``).
        noise: (batch, frames * hop) excitation the stream drew.
    """
    from .models.ddsp import DDSP
    from .models.mel_vocoder import MelDDSP
    with torch.no_grad():
        if isinstance(model, DDSP):
            x = dict(inputs)
            x["f0_continuous"] = causal_continuous_f0(x["f0"], x["vuv"], initial_f0=initial_f0)
            if model.z_dim > 0 and "z" not in x:
                x["z"] = model.encode(x["mfcc"], stats=mfcc_stats)
            return model(x, noise=noise, dry=dry)["audio"]
        if isinstance(model, MelDDSP):
            return model(inputs, noise=noise, dry=dry, leading_f0=initial_f0)["audio"]
    raise TypeError(f"no streaming implementation for {type(model).__name__}")


def stream_in_blocks(stream: StreamingSynth, inputs: dict[str, torch.Tensor], block_size: int,
                     timer=None) -> tuple[torch.Tensor, list[float]]:
    """Drive a stream as a real-time host with ``block_size``-sample audio blocks would.

    Block ``i`` ends at sample ``(i + 1) block_size``; the frames whose centres fall
    before it (``n hop < (i + 1) block_size``) are due then and are passed in one call.
    Returns the concatenated output and the compute time of each call (seconds).
    """
    import time
    timer = timer or time.perf_counter
    n_frames = next(iter(inputs.values())).shape[1]
    hop = stream.hop
    outs, times = [], []
    fed = 0
    i = 0
    while fed < n_frames:
        due = min(n_frames, -(-(i + 1) * block_size // hop))
        chunk = {k: v[:, fed:due] for k, v in inputs.items()}
        t = timer()
        outs.append(stream.process(chunk))
        times.append(timer() - t)
        fed = due
        i += 1
    t = timer()
    outs.append(stream.flush())
    times.append(timer() - t)
    return torch.cat(outs, dim=-1), times
