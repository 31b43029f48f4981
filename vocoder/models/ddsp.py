"""The DDSP autoencoder (Engel et al., ICLR 2020), for speech and music.

    f0, loudness ──────────────┐
    MFCC ─▶ encoder ─▶ z ───────┼─▶ decoder (MLPs, GRU, MLP) ─▶ harmonic amplitude,
    speaker / instrument id ───┘                                 distribution, noise bands
        ─▶ Harmonic + FilteredNoise ─▶ Reverb ─▶ audio

Inputs are frame features from a dump (``f0``, ``vuv``, ``loudness``, ``mfcc``), each
``(batch, frames)`` or ``(batch, frames, dims)``, plus ``speaker`` ``(batch,)`` ids.
f0 enters the network as normalised log-f0 (continuous through unvoiced gaps), with
the voicing flag as an extra input; loudness is standardised with the training-set
statistics kept in buffers. The harmonic synthesizer plays the continuous f0 and
its amplitude is gated by voicing (``gate_unvoiced``), so unvoiced frames are noise.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..dsp.filters import frequency_sampling_fir, ltv_fir
from ..effects import ExpDecayReverb, Reverb
from ..synths import FilteredNoise, Harmonic
from . import register
from .rnn import gru

__all__ = ["DDSP", "mlp", "continuous_f0"]

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def mlp(in_size: int, hidden: int, layers: int) -> nn.Sequential:
    """DDSP's fully connected stack: (Linear, LayerNorm, LeakyReLU) x layers."""
    mods: list[nn.Module] = []
    for i in range(layers):
        # In-place activation: LayerNorm backward needs only its input, so its output
        # need not be kept beside the activation (saves a third of the MLP memory).
        mods += [nn.Linear(in_size if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*mods)


def continuous_f0(f0_hz: torch.Tensor, vuv: torch.Tensor) -> torch.Tensor:
    """Fill unvoiced gaps of f0 by interpolation in log-f0 (edges held), per row.

    Args:
        f0_hz: (batch, frames), 0 where unvoiced.
        vuv: (batch, frames) voicing flag (>0.5 voiced).
    Returns:
        (batch, frames) f0 in Hz, positive everywhere (100 Hz for a row with no voicing).
    """
    voiced = (vuv > 0.5) & (f0_hz > 0)
    out = torch.empty_like(f0_hz)
    frames = torch.arange(f0_hz.shape[1], dtype=f0_hz.dtype, device=f0_hz.device)
    for b in range(f0_hz.shape[0]):
        idx = torch.nonzero(voiced[b]).flatten()
        if idx.numel() == 0:
            out[b] = 100.0
            continue
        logf = torch.log(f0_hz[b, idx])
        pos = torch.searchsorted(idx.to(f0_hz.dtype).contiguous(), frames.contiguous()).clamp(1, max(1, idx.numel() - 1))
        if idx.numel() == 1:
            out[b] = torch.exp(logf[0])
            continue
        x0, x1 = idx[pos - 1].to(f0_hz.dtype), idx[pos].to(f0_hz.dtype)
        y0, y1 = logf[pos - 1], logf[pos]
        w = ((frames - x0) / (x1 - x0)).clamp(0, 1)
        out[b] = torch.exp(y0 + (y1 - y0) * w)
    return out


@register("ddsp")
class DDSP(nn.Module):
    """DDSP autoencoder: f0 + loudness (+ MFCC z, + speaker) to harmonic-plus-noise audio.

    Args:
        sample_rate: audio rate (Hz).
        hop_length: samples per frame.
        n_harmonics: harmonics of the oscillator bank.
        n_noise_bands: bands of the filtered-noise magnitude response.
        hidden_size: width of the decoder MLPs.
        gru_size: decoder GRU units.
        mlp_layers: layers per MLP.
        z_dim: size of the MFCC encoder's output z; 0 disables the encoder (music).
        n_mfcc: MFCC coefficients read by the encoder.
        encoder_gru_size: encoder GRU units.
        n_speakers: size of the speaker / instrument table; 0 disables the embedding.
        speaker_dim: embedding size.
        use_vuv: feed the voicing flag to the decoder.
        gate_unvoiced: multiply the harmonic amplitude by the voicing flag.
        reverb: add the learned reverb; ``reverb_duration_s`` its impulse length.
        reverb_type: ``"fir"`` (a free impulse response, effects.Reverb) or ``"room"``
            (effects.ExpDecayReverb with trainable noise taps under a learned
            exponential envelope, whose gain and decay move ``reverb_lr_scale`` times
            faster): the one that learns a real room's RT60 (benchmarks/room_acoustics.py).
        harmonic_head: ``"distribution"`` (DDSP's free per-harmonic distribution) or
            ``"envelope"``: the decoder predicts a log spectral envelope at
            ``n_envelope`` knots evenly spaced in (HTK) mels from 0 Hz to Nyquist, and
            each harmonic's level is the envelope read at its frequency (a source-filter
            prior: the same formant shape serves any f0; used for speech).
        n_envelope: knots of the envelope head.
        encoder_norm: how the encoder normalises its MFCC input: ``"layer"`` (per frame,
            learned) or ``"instance"`` (per utterance and coefficient over time, then
            learned: removes the static spectral colour that identifies a speaker, for
            voice conversion).
        skip_z: also pass the z MLP's output around the decoder GRU to the output MLP
            (DDSP's RnnFcDecoder passes all its inputs; the default passes f0 and
            loudness only): the spectral detail z carries from the MFCC no longer has to
            go through the GRU's state. Needs ``z_dim > 0``.
        checkpoint_mlps: in training, recompute the decoder MLPs' activations in the
            backward pass instead of storing them (activation checkpointing): the same
            gradients, about a third less training memory (the MLP activations are most
            of what a step holds besides the loss), a little more compute.
    """

    input_streams = ("f0", "vuv", "loudness", "mfcc")

    def __init__(self, *, sample_rate: int, hop_length: int, n_harmonics: int = 100, n_noise_bands: int = 65,
                 hidden_size: int = 512, gru_size: int = 512, mlp_layers: int = 3, z_dim: int = 16,
                 n_mfcc: int = 30, encoder_gru_size: int = 256, n_speakers: int = 0, speaker_dim: int = 32,
                 use_vuv: bool = True, gate_unvoiced: bool = True, reverb: bool = True,
                 reverb_duration_s: float = 1.0, speakers: list[str] | None = None,
                 reverb_type: str = "fir", reverb_lr_scale: float = 10.0,
                 harmonic_head: str = "distribution", n_envelope: int = 40, encoder_norm: str = "layer",
                 skip_z: bool = False, checkpoint_mlps: bool = False):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.hop_length = int(hop_length)
        self.n_harmonics = int(n_harmonics)
        self.n_noise_bands = int(n_noise_bands)
        self.z_dim = int(z_dim)
        self.n_mfcc = int(n_mfcc)
        self.use_vuv = bool(use_vuv)
        self.gate_unvoiced = bool(gate_unvoiced)
        self.speakers = list(speakers) if speakers else []
        if harmonic_head not in ("distribution", "envelope"):
            raise ValueError(f"harmonic_head must be 'distribution' or 'envelope', got {harmonic_head!r}")
        if encoder_norm not in ("layer", "instance"):
            raise ValueError(f"encoder_norm must be 'layer' or 'instance', got {encoder_norm!r}")
        self.harmonic_head = harmonic_head
        self.n_envelope = int(n_envelope) if harmonic_head == "envelope" else 0
        if harmonic_head == "envelope" and self.n_envelope < 2:
            raise ValueError(f"n_envelope must be at least 2, got {n_envelope}")
        self.encoder_norm = encoder_norm
        self.checkpoint_mlps = bool(checkpoint_mlps)
        self.skip_z = bool(skip_z)
        if self.skip_z and self.z_dim <= 0:
            raise ValueError("skip_z needs the MFCC encoder (z_dim > 0)")
        n_speakers = max(int(n_speakers), len(self.speakers))
        self.n_speakers = n_speakers
        if self.z_dim > 0:
            self.mfcc_norm = nn.LayerNorm(self.n_mfcc)
            self.encoder_gru = nn.GRU(self.n_mfcc, encoder_gru_size, batch_first=True)
            self.encoder_out = nn.Linear(encoder_gru_size, self.z_dim)
        # The voicing flag rides along with f0 in one MLP (it qualifies the pitch input).
        inputs = {"f0": 2 if self.use_vuv else 1, "loudness": 1}
        if self.z_dim > 0:
            inputs["z"] = self.z_dim
        self.input_mlps = nn.ModuleDict({k: mlp(n, hidden_size, mlp_layers) for k, n in inputs.items()})
        gru_in = hidden_size * len(inputs)
        if n_speakers > 0:
            self.speaker_embedding = nn.Embedding(n_speakers, speaker_dim)
            gru_in += speaker_dim
        self.gru = nn.GRU(gru_in, gru_size, batch_first=True)
        self.out_mlp = mlp(gru_size + (3 if self.skip_z else 2) * hidden_size, hidden_size, mlp_layers)
        n_shape = self.n_envelope if harmonic_head == "envelope" else n_harmonics
        self.out = nn.Linear(hidden_size, 1 + n_shape + n_noise_bands)
        self.harmonic = Harmonic(sample_rate=sample_rate, hop_length=hop_length, n_harmonics=n_harmonics)
        self.noise = FilteredNoise(hop_length=hop_length, n_bands=n_noise_bands)
        if reverb_type not in ("fir", "room"):
            raise ValueError(f"reverb_type must be 'fir' or 'room', got {reverb_type!r}")
        if not reverb:
            self.reverb = None
        elif reverb_type == "room":
            self.reverb = ExpDecayReverb(sample_rate=sample_rate, duration_s=reverb_duration_s,
                                         trainable_noise=True, lr_scale=reverb_lr_scale)
        else:
            self.reverb = Reverb(sample_rate=sample_rate, duration_s=reverb_duration_s)
        # Normalisation statistics (set from the training set, saved in checkpoints).
        self.register_buffer("logf0_mean", torch.tensor(math.log(150.0)))
        self.register_buffer("logf0_std", torch.tensor(0.5))
        self.register_buffer("loudness_mean", torch.tensor(-60.0))
        self.register_buffer("loudness_std", torch.tensor(20.0))

    # -- statistics ----------------------------------------------------------------
    def set_statistics(self, stats: dict) -> None:
        """Take ``logf0`` and ``loudness`` mean/std from a ``vocoder stats`` dict."""
        g = stats.get("global", stats)
        for name in ("logf0", "loudness"):
            if name in g:
                getattr(self, f"{name}_mean").fill_(float(g[name]["mean"]))
                getattr(self, f"{name}_std").fill_(max(float(g[name]["std"]), 1e-3))

    def speaker_index(self, name: str) -> int:
        if name not in self.speakers:
            raise ValueError(f"unknown speaker/instrument {name!r}; the model knows: {', '.join(self.speakers)}")
        return self.speakers.index(name)

    # -- network -------------------------------------------------------------------
    def encode(self, mfcc: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(batch, frames, n_mfcc) MFCC to (batch, frames, z_dim) z.

        ``stats``: (mean, std), each (batch, n_mfcc), for the instance normalisation
        instead of the utterance's own (a stream cannot see the whole utterance).
        """
        x = mfcc[..., : self.n_mfcc]
        if self.encoder_norm == "instance":
            if stats is None:
                mean, std = x.mean(dim=1, keepdim=True), x.std(dim=1, keepdim=True)
            else:
                mean = stats[0].to(x).reshape(x.shape[0], 1, -1)[..., : self.n_mfcc]
                std = stats[1].to(x).reshape(x.shape[0], 1, -1)[..., : self.n_mfcc]
            x = (x - mean) / std.clamp_min(1e-3)
        h, _ = gru(self.encoder_gru, self.mfcc_norm(x))
        return self.encoder_out(h)

    def decode(self, inputs: dict[str, torch.Tensor], gru_state: torch.Tensor | None = None
               ) -> dict[str, torch.Tensor]:
        """Network outputs (raw) for the synthesizers; see :meth:`forward` for inputs.

        ``gru_state``: the decoder GRU's hidden state to start from (a chunk of a longer
        utterance); the state after the last frame is returned as ``gru_state``.
        """
        f0 = inputs["f0_continuous"]
        f0_in = ((torch.log(f0) - self.logf0_mean) / self.logf0_std).unsqueeze(-1)
        if self.use_vuv:
            f0_in = torch.cat([f0_in, inputs["vuv"].unsqueeze(-1) * 2 - 1], dim=-1)
        feats = {
            "f0": f0_in,
            "loudness": ((inputs["loudness"] - self.loudness_mean) / self.loudness_std).unsqueeze(-1),
        }
        if self.z_dim > 0:
            feats["z"] = inputs["z"] if "z" in inputs else self.encode(inputs["mfcc"])
        hidden = [self._mlp(self.input_mlps[k], v) for k, v in feats.items()]
        x = torch.cat(hidden, dim=-1)
        if self.n_speakers > 0:
            spk = inputs.get("speaker_embedding")
            if spk is None:
                # Index -1 (a speaker the model was not trained on): the mean embedding.
                idx = inputs["speaker"]
                known = self.speaker_embedding(idx.clamp_min(0))
                mean = self.speaker_embedding.weight.mean(0).expand_as(known)
                spk = torch.where((idx >= 0).unsqueeze(-1), known, mean)
            x = torch.cat([x, spk.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
        g, state = gru(self.gru, x, gru_state)
        skip = hidden[:3] if self.skip_z else hidden[:2]  # f0, loudness (, z)
        y = self.out(self._mlp(self.out_mlp, torch.cat([g, *skip], dim=-1)))
        n_shape = self.n_envelope or self.n_harmonics
        shape = y[..., 1:1 + n_shape]
        out = {"amplitude": y[..., :1], "noise_magnitudes": y[..., 1 + n_shape:], "z": feats.get("z"),
               "gru_state": state}
        if self.n_envelope:
            out["envelope"] = shape
            out["harmonic_distribution"] = self.envelope_at_harmonics(shape, f0)
        else:
            out["harmonic_distribution"] = shape
        return out

    @torch.no_grad()
    def decode_overlapped(self, inputs: dict[str, torch.Tensor], *, chunk_frames: int = 128
                          ) -> dict[str, torch.Tensor]:
        """:meth:`decode` for inference with the MFCC encoder running a chunk ahead in a
        second thread.

        The encoder and decoder GRUs are the two longest sequential parts at batch 1 and
        each is a single operator per chunk, during which torch releases the GIL: with one
        torch thread each they overlap on two cores. The decoder GRU carries its state
        across chunks and the instance normalisation uses the whole utterance's
        statistics, so the output equals :meth:`decode`'s. Call under
        ``torch.set_num_threads(1)`` (see :meth:`forward`'s ``overlap``).
        """
        import queue
        import threading

        inputs = dict(inputs)
        n = inputs["f0_continuous"].shape[1]
        starts = list(range(0, n, chunk_frames))
        zq: queue.Queue = queue.Queue()
        failure: list[BaseException] = []
        if self.z_dim > 0 and "z" not in inputs:
            x = inputs["mfcc"][..., : self.n_mfcc]
            if self.encoder_norm == "instance":
                x = (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True).clamp_min(1e-3)
            x = self.mfcc_norm(x)

            def encoder():
                try:
                    with torch.inference_mode():
                        h = None
                        for a in starts:
                            out, h = gru(self.encoder_gru, x[:, a:a + chunk_frames], h)
                            zq.put(self.encoder_out(out))
                except BaseException as exc:  # re-raised by the caller
                    failure.append(exc)
                    zq.put(None)

            worker = threading.Thread(target=encoder, name="ddsp-encoder", daemon=True)
            worker.start()
        else:
            worker = None
        pieces, state = [], None
        for a in starts:
            chunk = {k: (v[:, a:a + chunk_frames] if v.dim() >= 2 and v.shape[1] == n else v)
                     for k, v in inputs.items()}
            if worker is not None:
                z = zq.get()
                if z is None:
                    break
                chunk["z"] = z
            raw = self.decode(chunk, gru_state=state)
            state = raw.pop("gru_state")
            pieces.append(raw)
        if worker is not None:
            worker.join()
        if failure:
            raise failure[0]
        return {k: (torch.cat([p[k] for p in pieces], dim=1) if pieces[0][k] is not None else None)
                for k in pieces[0]}

    def _mlp(self, mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.checkpoint_mlps and self.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint
            return checkpoint(mlp, x, use_reentrant=False)
        return mlp(x)

    def synth_controls(self, raw: dict[str, torch.Tensor], f0_hz: torch.Tensor, vuv: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Synthesizer controls from :meth:`decode`'s outputs: per-harmonic amplitudes
        (batch, frames, n_harmonics), gated by voicing with ``gate_unvoiced``, and the
        noise bands' linear magnitudes (batch, frames, n_noise_bands)."""
        amps = self.harmonic.get_controls(raw["amplitude"], raw["harmonic_distribution"], f0_hz)["amplitudes"]
        if self.gate_unvoiced:
            amps = amps * vuv.unsqueeze(-1)
        return amps, self.noise.get_controls(raw["noise_magnitudes"])["magnitudes"]

    def envelope_at_harmonics(self, envelope: torch.Tensor, f0_hz: torch.Tensor) -> torch.Tensor:
        """Read a (batch, frames, n_envelope) envelope at the harmonics of f0.

        The knots are evenly spaced in HTK mels from 0 Hz to Nyquist; values are
        interpolated linearly in mels (harmonics above Nyquist hold the last knot and
        are masked by the synthesizer). Returns (batch, frames, n_harmonics).
        """
        k = torch.arange(1, self.n_harmonics + 1, device=f0_hz.device, dtype=envelope.dtype)
        freqs = f0_hz.detach().to(envelope.dtype).unsqueeze(-1) * k
        mel = 2595.0 * torch.log10(1.0 + freqs / 700.0)
        mel_nyquist = 2595.0 * math.log10(1.0 + self.sample_rate / 2.0 / 700.0)
        pos = (mel / mel_nyquist * (self.n_envelope - 1)).clamp(0, self.n_envelope - 1)
        i0 = pos.floor().clamp(max=self.n_envelope - 2)
        w = pos - i0
        i0 = i0.long()
        lo = torch.gather(envelope, -1, i0)
        hi = torch.gather(envelope, -1, i0 + 1)
        return lo + (hi - lo) * w

    def render_noise(self, magnitudes: torch.Tensor,
                     generator: torch.Generator | Sequence[torch.Generator] | None = None,
                     noise: torch.Tensor | None = None) -> torch.Tensor:
        """Filtered noise from valid (batch, frames, n_noise_bands) magnitudes.

        ``generator`` is one generator for the whole batch (``FilteredNoise.get_signal``)
        or a sequence of them, one per batch row: row ``i`` then gets exactly the noise
        that ``FilteredNoise.get_signal(magnitudes[i:i+1], generator[i])`` would, so an
        example's noise does not depend on which batch (or process) it is in. The rows
        are filtered together, as fast as the single-generator case. ``noise``
        ((batch, frames * hop) uniform in [-1, 1)) is filtered instead of drawing any.
        """
        if noise is not None:
            irs = frequency_sampling_fir(magnitudes, ir_length=self.noise.ir_length)
            return ltv_fir(noise.to(magnitudes), irs, hop_length=self.hop_length, centred=True)
        if generator is None or isinstance(generator, (torch.Generator, int)):
            return self.noise.get_signal(magnitudes, generator)
        gens = list(generator)
        if len(gens) != magnitudes.shape[0]:
            raise ValueError(f"got {len(gens)} noise generators for a batch of {magnitudes.shape[0]}")
        n = magnitudes.shape[1] * self.hop_length
        rows = [torch.rand(1, n, generator=g, dtype=magnitudes.dtype, device=g.device).to(magnitudes.device)
                for g in gens]  # as vocoder.dsp.filters.filtered_noise draws them
        noise = 2.0 * torch.cat(rows) - 1.0
        irs = frequency_sampling_fir(magnitudes, ir_length=self.noise.ir_length)
        return ltv_fir(noise, irs, hop_length=self.hop_length, centred=True)

    def forward(self, inputs: dict[str, torch.Tensor], *,
                generator: torch.Generator | Sequence[torch.Generator] | None = None,
                dry: bool = False, noise: torch.Tensor | None = None,
                overlap: bool = False) -> dict[str, torch.Tensor]:
        """Synthesize audio from frame features.

        Args:
            inputs: ``f0`` (batch, frames) Hz with 0 where unvoiced, ``vuv`` (batch,
                frames), ``loudness`` (batch, frames) dB, ``mfcc`` (batch, frames,
                n_mfcc) when z_dim > 0, ``speaker`` (batch,) long when the model has
                speakers (or ``speaker_embedding`` (batch, speaker_dim) for a blend).
                ``f0_continuous`` may be given; otherwise it is interpolated here.
            generator: noise generator, for repeatable output; or one generator per
                batch row (see :meth:`render_noise`), as the trainer passes them.
            dry: skip the reverb (blind dereverberation).
            noise: (batch, frames * hop_length) excitation of the filtered noise
                (uniform in [-1, 1)) instead of drawing it (vocoder.streaming compares
                against it).
            overlap: inference only (no gradient): run the MFCC encoder a chunk ahead
                of the decoder in a second thread, both single-threaded, then the
                synthesizers with the threads torch had (:meth:`decode_overlapped`; the
                same output, faster at batch 1 on two or more cores).
        Returns:
            dict with ``audio`` (batch, frames * hop_length), ``dry_audio``, the
            ``harmonic`` and ``noise`` signals and their controls.
        """
        inputs = dict(inputs)
        if "f0_continuous" not in inputs:
            inputs["f0_continuous"] = continuous_f0(inputs["f0"], inputs["vuv"])
        if overlap and not torch.is_grad_enabled() and self.z_dim > 0:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                raw = self.decode_overlapped(inputs)
            finally:
                torch.set_num_threads(threads)
        else:
            raw = self.decode(inputs)
        raw.pop("gru_state", None)
        f0 = inputs["f0_continuous"]
        # The synthesizers run in float32 under autocast too (bfloat16 sines and sums
        # would put rounding noise about 50 dB below the signal).
        raw = {k: v.float() if v is not None and v.dtype in _LOW_PRECISION else v for k, v in raw.items()}
        with torch.autocast(device_type=f0.device.type, enabled=False):
            amps, magnitudes = self.synth_controls(raw, f0, inputs["vuv"])
            harmonic = self.harmonic.get_signal(amps, f0)
            noise = self.render_noise(magnitudes, generator, noise)
            dry_audio = harmonic + noise
            audio = dry_audio if (dry or self.reverb is None) else self.reverb(dry_audio)
        return {"audio": audio, "dry_audio": dry_audio, "harmonic": harmonic, "noise": noise,
                "harmonic_amplitudes": amps, "noise_magnitudes": magnitudes, "f0_hz": f0, "z": raw["z"]}

