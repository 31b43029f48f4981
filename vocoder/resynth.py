"""Analysis-synthesis with no trained model: WORLD features into the differentiable synthesizer.

:func:`resynthesize` analyses a signal with WORLD (f0 by Harvest, DIO or Praat,
CheapTrick envelope ``sp``, D4C aperiodicity ``ap``) and renders it again with
:func:`vocoder.source_filter.world_synthesis`. With ``refine_steps > 0`` the frame
parameters are then refined by analysis-by-synthesis: Adam on the multi-scale spectral
loss (:func:`vocoder.losses.multiscale_spectral_loss`) between the synthesis and the
input, starting from the analysis. The refined parameters are

- the log power envelope ``log sp`` per frame and bin (on the synthesis filters' bins,
  ``n_fft // 2 + 1``),
- the aperiodicity as logits, ``ap = sigmoid(a)``,
- optionally (``refine_f0=True``) a bounded log-f0 correction per voiced frame,
  ``f0 = f0_analysis * exp(max_f0_correction * tanh(d))``; off by default, since the
  spectral loss is a poor guide for f0 (measured: it makes the result worse).

The excitation noise is fixed for the whole refinement (drawn from a seed), so the
objective is deterministic and the run repeatable.

Long files are processed in chunks (:func:`chunk_layout`): the signal is cut into cores
of at most ``chunk_seconds``; each core is analysed, synthesized and refined together
with ``context_seconds`` of the signal on each side, and neighbouring chunks are
crossfaded over ``crossfade_seconds`` centred on the core boundary. Peak memory is that
of one chunk whatever the file's length. Chunks join without seams: the noise is a
function of the absolute sample position (drawn in fixed blocks, each from its own
seed), and each chunk's pulse train starts at the phase that makes it agree with the
previous chunk's at the boundary, so on a steady signal the chunked result equals the
unchunked one.

Symbols: ``N`` samples, ``F`` frames (frame ``n`` centred on sample ``n * hop_length``,
``F = ceil(N / hop_length)``), ``E`` envelope bins.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["F0_CHOICES", "block_noise", "chunk_layout", "resynthesize", "resynthesize_segment"]

#: ``--f0`` shorthands of the CLI: family -> f0 method.
F0_CHOICES = {"world": "harvest", "praat": "praat_ac"}

# Noise is drawn in blocks of this many samples, block ``i`` from its own seed, so the
# noise at a sample does not depend on where a chunk starts.
_NOISE_BLOCK = 8192
# Largest aperiodicity the refinement produces (see resynthesize_segment).
_AP_MAX = 1.0 - 1e-6


def _mix_seed(seed: int, block: int) -> int:
    """A 63-bit seed for noise block ``block`` of a stream seeded ``seed`` (splitmix64 step)."""
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(block) * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) % 2**63


def block_noise(seed: int, start: int, length: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Unit-variance Gaussian noise for samples ``[start, start + length)`` of a seeded stream.

    The stream is cut into blocks of 8192 samples, block ``i`` drawn from a generator
    seeded by ``(seed, i)``; any window of the stream can be drawn alone and two
    overlapping windows agree on their common samples.

    Args:
        seed: integer seed of the stream.
        start: first sample (>= 0).
        length: number of samples.
    Returns:
        (1, length) noise.
    """
    if start < 0 or length < 0:
        raise ValueError(f"block_noise: start and length must be >= 0, got {start}, {length}")
    first, last = start // _NOISE_BLOCK, (start + length - 1) // _NOISE_BLOCK
    blocks = [torch.randn(_NOISE_BLOCK, generator=torch.Generator().manual_seed(_mix_seed(seed, i)))
              for i in range(first, last + 1)] if length else [torch.zeros(0)]
    flat = torch.cat(blocks)
    offset = start - first * _NOISE_BLOCK
    return flat[offset:offset + length].to(dtype).unsqueeze(0)


def chunk_layout(n_samples: int, *, hop_length: int, chunk_samples: int,
                 context_samples: int) -> list[tuple[int, int, int, int]]:
    """How a signal is cut into chunks.

    The signal is split into ``ceil(N / chunk)`` cores of equal length (rounded to whole
    hops, at most ``chunk_samples``); each core is processed with up to
    ``context_samples`` of signal on each side.

    Args:
        n_samples: signal length N.
        hop_length: samples per frame; core boundaries and segment starts are
            multiples of it.
        chunk_samples: longest core (a multiple of ``hop_length`` is used).
        context_samples: context on each side (rounded up to whole hops).
    Returns:
        list of ``(core_start, core_end, segment_start, segment_end)``; the cores tile
        ``[0, N)``, segment ``[segment_start, segment_end)`` is the core plus context,
        clipped to the signal.
    """
    hop = int(hop_length)
    chunk = max(hop, (int(chunk_samples) // hop) * hop)
    context = -(-int(context_samples) // hop) * hop
    n_chunks = max(1, -(-int(n_samples) // chunk))
    n_hops = -(-int(n_samples) // hop)
    bounds = [min(int(n_samples), round(k * n_hops / n_chunks) * hop) for k in range(n_chunks + 1)]
    bounds[-1] = int(n_samples)
    return [(a, b, max(0, a - context), min(int(n_samples), b + context))
            for a, b in zip(bounds[:-1], bounds[1:])]


def _resample_bins(x: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Last axis (0 Hz .. Nyquist) onto ``n_bins`` points: subsampling or linear interpolation."""
    n_in = x.shape[-1]
    if n_in == n_bins:
        return x
    if (n_in - 1) % (n_bins - 1) == 0:
        return x[..., ::(n_in - 1) // (n_bins - 1)].contiguous()
    lead = x.shape[:-1]
    return F.interpolate(x.reshape(-1, 1, n_in), size=n_bins, mode="linear",
                         align_corners=True).reshape(*lead, n_bins)


def _phase_at(f0_hz: torch.Tensor, frame: int, *, sample_rate: int, hop_length: int,
              initial_phase: torch.Tensor | None) -> torch.Tensor:
    """(1,) float64 pulse phase of :func:`world_synthesis` at sample ``frame * hop_length``."""
    from .dsp.oscillators import frame_phase
    from .source_filter import fill_unvoiced_f0

    phase, final = frame_phase(fill_unvoiced_f0(f0_hz.detach()), sample_rate=sample_rate,
                               hop_length=hop_length, initial_phase=initial_phase)
    return phase[:, frame] if frame < phase.shape[1] else final


def resynthesize_segment(
    audio,
    features: dict,
    *,
    sample_rate: int,
    hop_length: int,
    refine_steps: int = 0,
    learning_rate: float = 0.1,
    final_learning_rate: float | None = None,
    refine_f0: bool = False,
    max_f0_correction: float = 0.05,
    noise: torch.Tensor | None = None,
    seed: int = 0,
    method: str = "filter",
    n_fft: int | None = None,
    phase_reference: tuple[int, float] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[np.ndarray, dict]:
    """Synthesize one segment from its WORLD features, optionally refined against ``audio``.

    Args:
        audio: (N,) the analysed signal (the refinement's target; only its length is
            used when ``refine_steps == 0``).
        features: WORLD features of ``audio`` as from
            :func:`vocoder.analysis.world.world_features`: ``f0_hz`` (F,), ``sp`` (F, E),
            ``ap`` (F, E), ``F = ceil(N / hop_length)``.
        sample_rate: samples per second.
        hop_length: samples per frame.
        refine_steps: Adam steps of analysis-by-synthesis (0: plain synthesis). The
            result is the parameters with the lowest loss seen, so ``loss_final <=
            loss_initial``; a non-finite loss stops the refinement.
        learning_rate: Adam's learning rate at the first step.
        final_learning_rate: learning rate at the last step (exponential decay from
            ``learning_rate``); default ``learning_rate / 10``.
        refine_f0: also refine a log-f0 correction, bounded by ``max_f0_correction``
            (natural-log units: 0.05 is about 87 cents).
        noise: (1, F * hop_length) excitation noise; default ``block_noise(seed, 0, .)``.
        seed: seed of the default noise.
        method, n_fft: passed to :func:`vocoder.source_filter.world_synthesis`
            (``n_fft`` default: :func:`~vocoder.source_filter.default_synthesis_fft`).
        phase_reference: ``(frame, phase)``: start the pulse train so that its phase at
            sample ``frame * hop_length`` is ``phase`` (radians); default phase 0 at
            sample 0.
        progress: called as ``progress(step, refine_steps, loss)`` after every Adam step
            (``step`` from 1; ``loss`` the value that step minimised).
    Returns:
        ``(audio_out, info)``: (N,) float32 synthesis and a dict with ``loss_initial``,
        ``loss_final`` (multi-scale spectral loss against ``audio``, float32, None
        without refinement), ``n_fft``, ``f0_hz`` (F,) the f0 used (refined if
        ``refine_f0``), ``initial_phase`` ((1,) float64 pulse phase at sample 0, None
        for 0) and ``seconds`` (compute time).
    """
    from .losses import multiscale_spectral_loss
    from .source_filter import default_synthesis_fft, world_synthesis

    t0 = time.perf_counter()
    target = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(1, -1)
    n = target.shape[1]
    f0 = torch.as_tensor(np.asarray(features["f0_hz"], dtype=np.float32)).reshape(1, -1)
    sp = torch.as_tensor(np.asarray(features["sp"], dtype=np.float32)).unsqueeze(0)
    ap = torch.as_tensor(np.asarray(features["ap"], dtype=np.float32)).unsqueeze(0)
    n_frames = f0.shape[1]
    if n_frames != -(-n // hop_length) or sp.shape[1] != n_frames or ap.shape != sp.shape:
        raise ValueError(f"resynthesize_segment: features do not fit {n} samples at hop {hop_length}: "
                         f"f0 {tuple(f0.shape[1:])}, sp {tuple(sp.shape[1:])}, ap {tuple(ap.shape[1:])}")
    if refine_steps < 0:
        raise ValueError(f"refine_steps must be >= 0, got {refine_steps}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if n_fft is None:
        n_fft = default_synthesis_fft(sp.shape[-1], sample_rate=sample_rate, hop_length=hop_length)
    n_bins = n_fft // 2 + 1
    if noise is None:
        noise = block_noise(seed, 0, n_frames * hop_length)

    # Parameters on the synthesis filters' bins (what world_synthesis would resample to).
    log_sp = _resample_bins(torch.log(sp.clamp_min(1e-30)), n_bins)
    ap_logit = torch.logit(_resample_bins(ap, n_bins).clamp(1e-3, _AP_MAX))
    f0_delta = torch.zeros_like(f0)

    def controls():
        f = f0 * torch.exp(max_f0_correction * torch.tanh(f0_delta)) if refine_f0 else f0
        # ap stays below 1 - 1e-6: at ap = 1 (where float32 sigmoid saturates) the
        # gradient of WORLD's periodic gain sqrt(1 - ap^2) is infinite.
        return f, torch.exp(log_sp), torch.sigmoid(ap_logit).clamp(max=_AP_MAX)

    def initial_phase(f):
        if phase_reference is None:
            return None
        frame, phase = phase_reference
        own = _phase_at(f, frame, sample_rate=sample_rate, hop_length=hop_length, initial_phase=None)
        return torch.remainder(torch.as_tensor([phase], dtype=torch.float64) - own, 2 * math.pi)

    def synth():
        f, s, a = controls()
        return world_synthesis(f, s, a, sample_rate=sample_rate, hop_length=hop_length, method=method,
                               n_fft=n_fft, noise=noise, initial_phase=initial_phase(f))[:, :n]

    loss_initial = loss_final = None
    if refine_steps:
        params = [log_sp.requires_grad_(), ap_logit.requires_grad_()]
        if refine_f0:
            params.append(f0_delta.requires_grad_())
        final_lr = learning_rate / 10.0 if final_learning_rate is None else float(final_learning_rate)
        opt = torch.optim.Adam(params, lr=learning_rate)
        decay = (final_lr / learning_rate) ** (1.0 / max(1, refine_steps - 1))
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=decay)
        best, best_params = math.inf, None
        for step in range(refine_steps):
            opt.zero_grad(set_to_none=True)
            loss = multiscale_spectral_loss(synth(), target)
            value = float(loss.detach())
            if step == 0:
                loss_initial = value
            if not math.isfinite(value):
                break
            if value < best:  # the parameters this loss was measured at
                best, best_params = value, [p.detach().clone() for p in params]
            loss.backward()
            opt.step()
            sched.step()
            if progress is not None:
                progress(step + 1, refine_steps, value)
        for p in params:
            p.requires_grad_(False)
    with torch.no_grad():
        y = synth()
        if refine_steps:
            loss_final = float(multiscale_spectral_loss(y, target))
            if not loss_final <= best and best_params is not None:
                # The last step made it worse (or not finite): keep the best parameters seen.
                for p, b in zip(params, best_params):
                    p.copy_(b)
                y, loss_final = synth(), best
        f_used = controls()[0]
        info = {
            "loss_initial": loss_initial,
            "loss_final": loss_final,
            "n_fft": int(n_fft),
            "f0_hz": f_used[0].numpy().copy(),
            "initial_phase": initial_phase(f_used),
            "seconds": time.perf_counter() - t0,
        }
    return y[0].numpy().astype(np.float32), info


def resynthesize(
    audio,
    *,
    sample_rate: int,
    hop_length: int | None = None,
    f0_method: str = "harvest",
    f0_min: float = 65.0,
    f0_max: float = 800.0,
    refine_steps: int = 0,
    learning_rate: float = 0.1,
    final_learning_rate: float | None = None,
    refine_f0: bool = False,
    chunk_seconds: float = 10.0,
    context_seconds: float = 0.5,
    crossfade_seconds: float = 0.1,
    generator: torch.Generator | int | None = None,
    method: str = "filter",
    n_fft: int | None = None,
    progress: Callable[[dict], None] | None = None,
    name: str = "audio",
) -> tuple[np.ndarray, dict]:
    """WORLD analysis, then synthesis (optionally refined) by the differentiable synthesizer.

    See the module docstring for the method, the refinement and the chunking.

    Args:
        audio: (N,) mono signal (numpy array or tensor) at ``sample_rate``.
        sample_rate: samples per second (any rate).
        hop_length: samples per frame; default ``sample_rate // 200`` (5 ms).
        f0_method: "harvest", "dio", "praat_ac" or "praat_cc" (or the shorthands
            "world" = harvest, "praat" = praat_ac).
        f0_min, f0_max: f0 search range in Hz.
        refine_steps: Adam steps of analysis-by-synthesis per chunk (0: none).
        learning_rate, final_learning_rate, refine_f0: see :func:`resynthesize_segment`.
        chunk_seconds: longest core of a chunk (peak memory scales with it).
        context_seconds: signal analysed and synthesized on each side of a core (edge
            effects of the analysis and of the filters stay in it).
        crossfade_seconds: raised-cosine crossfade across each core boundary (at most
            ``2 * context_seconds``).
        generator: ``torch.Generator`` or integer seed of the excitation noise (None:
            drawn from torch's global generator).
        method, n_fft: synthesis options of :func:`vocoder.source_filter.world_synthesis`.
        progress: called with a dict ``{"chunk", "chunks", "stage", "step", "steps",
            "loss"}`` (``stage`` "analysis", "refine" or "done"; chunks counted from 1).
        name: how the input is named in error messages.
    Returns:
        ``(audio_out, info)``: (N,) float32 resynthesis and a dict with the settings
        (``sample_rate``, ``hop_length``, ``f0_method``, ``fft_size``, ``n_fft``,
        ``refine_steps``, ``learning_rate``, ``seed``), ``chunks`` (list of
        ``[core_start, core_end, segment_start, segment_end]`` in samples),
        ``loss_initial`` / ``loss_final`` (per chunk, None without refinement),
        ``voiced_fraction``, ``silent_chunks`` (all-zero segments, left silent) and timings ``seconds_analysis``, ``seconds_synthesis``.
    Raises:
        ValueError: invalid audio (``AudioError``, naming ``name``) or settings.
    """
    from .analysis.f0 import F0_METHODS, check_f0_audio, check_f0_range, check_rate_and_hop
    from .analysis.world import default_fft_size, world_features

    f0_method = F0_CHOICES.get(f0_method, f0_method)
    if f0_method not in F0_METHODS:
        raise ValueError(f"unknown f0 method {f0_method!r}; choose one of "
                         f"{', '.join((*F0_METHODS, *F0_CHOICES))}")
    sample_rate, _ = check_rate_and_hop(sample_rate, 1)
    sample_rate, hop_length = check_rate_and_hop(
        sample_rate, max(1, sample_rate // 200) if hop_length is None else hop_length)
    f0_min, f0_max = check_f0_range(f0_min, f0_max, sample_rate=sample_rate)
    if int(refine_steps) != refine_steps or refine_steps < 0:
        raise ValueError(f"refine_steps must be a non-negative integer, got {refine_steps}")
    if not (context_seconds >= 0 and 0 <= crossfade_seconds <= 2 * context_seconds):
        raise ValueError(f"need context_seconds >= 0 and 0 <= crossfade_seconds <= 2 * "
                         f"context_seconds; got {context_seconds}, {crossfade_seconds}")
    chunk = int(round(chunk_seconds * sample_rate)) if chunk_seconds > 0 else 0
    fade = int(round(crossfade_seconds * sample_rate))
    if chunk < 2 * fade + 2 * hop_length:
        raise ValueError(f"chunk_seconds ({chunk_seconds}) must exceed twice crossfade_seconds "
                         f"({crossfade_seconds}) plus two hops")
    x = check_f0_audio(audio, sample_rate=sample_rate, f0_min=f0_min, name=name)
    n = x.size
    if isinstance(generator, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    elif generator is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    else:
        seed = int(generator)
    fft_size = default_fft_size(sample_rate=sample_rate, f0_min=f0_min)

    layout = chunk_layout(n, hop_length=hop_length, chunk_samples=chunk,
                          context_samples=int(round(context_seconds * sample_rate)))
    # Every segment must be long enough for f0 analysis: merge a too-short last one.
    if len(layout) > 1 and layout[-1][3] - layout[-1][2] < 3.0 * sample_rate / f0_min:
        layout[-2:] = [(layout[-2][0], n, layout[-2][2], n)]
    fade_in = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(np.float32)

    out = np.zeros(n, dtype=np.float32)
    info = {"sample_rate": sample_rate, "hop_length": hop_length, "f0_method": f0_method,
            "f0_min": f0_min, "f0_max": f0_max, "fft_size": fft_size, "n_fft": None,
            "refine_steps": int(refine_steps), "learning_rate": float(learning_rate),
            "refine_f0": bool(refine_f0), "seed": seed, "chunk_seconds": float(chunk_seconds),
            "chunks": [list(c) for c in layout], "loss_initial": [], "loss_final": [],
            "voiced_fraction": 0.0, "silent_chunks": 0, "seconds_analysis": 0.0,
            "seconds_synthesis": 0.0}
    voiced = 0
    previous = None  # (segment start, f0 (1, F), initial phase) of the previous chunk

    def report(k, stage, step=0, steps=0, loss=None):
        if progress is not None:
            progress({"chunk": k + 1, "chunks": len(layout), "stage": stage, "step": step,
                      "steps": steps, "loss": loss})

    for k, (core_a, core_b, seg_a, seg_b) in enumerate(layout):
        report(k, "analysis")
        segment = x[seg_a:seg_b]
        if not np.any(segment):  # digital silence: nothing to analyse, silence out
            info["loss_initial"].append(None)
            info["loss_final"].append(None)
            info["silent_chunks"] += 1
            previous = None
            report(k, "done")
            continue
        t0 = time.perf_counter()
        feats = world_features(segment, sample_rate=sample_rate, hop_length=hop_length,
                               f0_method=f0_method, f0_min=f0_min, f0_max=f0_max,
                               fft_size=fft_size, name=name)
        info["seconds_analysis"] += time.perf_counter() - t0
        first, last = (core_a - seg_a) // hop_length, -(-(core_b - seg_a) // hop_length)
        voiced += int(np.count_nonzero(feats["vuv"][first:last]))
        reference = None
        if previous is not None:
            # Continue the previous chunk's pulse phase at this core's start.
            prev_a, prev_f0, prev_phase = previous
            phase = _phase_at(prev_f0, (core_a - prev_a) // hop_length, sample_rate=sample_rate,
                              hop_length=hop_length, initial_phase=prev_phase)
            reference = (first, float(phase[0]))
        noise = block_noise(seed, seg_a, feats["f0_hz"].shape[0] * hop_length)
        y, seg_info = resynthesize_segment(
            segment, feats, sample_rate=sample_rate, hop_length=hop_length,
            refine_steps=int(refine_steps), learning_rate=learning_rate,
            final_learning_rate=final_learning_rate, refine_f0=refine_f0, noise=noise,
            method=method, n_fft=n_fft, phase_reference=reference,
            progress=lambda s, total, loss, k=k: report(k, "refine", s, total, loss))
        info["seconds_synthesis"] += seg_info["seconds"]
        info["n_fft"] = seg_info["n_fft"]
        info["loss_initial"].append(seg_info["loss_initial"])
        info["loss_final"].append(seg_info["loss_final"])
        previous = (seg_a, torch.from_numpy(seg_info["f0_hz"]).unsqueeze(0), seg_info["initial_phase"])

        # Raised-cosine crossfades centred on the core boundaries (none at the file's
        # ends); a chunk's fade-out and the next one's fade-in sum to one.
        lo = core_a - fade // 2 if k > 0 else core_a
        hi = core_b + fade - fade // 2 if k + 1 < len(layout) else core_b
        piece = y[lo - seg_a:hi - seg_a].copy()
        if k > 0 and fade:
            piece[:fade] *= fade_in
        if k + 1 < len(layout) and fade:
            piece[-fade:] *= fade_in[::-1]
        out[lo:hi] += piece
        report(k, "done", int(refine_steps), int(refine_steps), seg_info["loss_final"])
    info["voiced_fraction"] = voiced / max(1, -(-n // hop_length))
    return out, info
