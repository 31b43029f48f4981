#!/usr/bin/env python
"""Training throughput and peak memory of one DDSP training step, against an
acids-ircam/ddsp_pytorch-style baseline.

Reference configuration: 16 kHz, hop 160 (10 ms; ddsp_pytorch's ``block_size``),
100 harmonics, 65 noise bands, decoder MLPs of 3 x 512 and a 512-unit GRU, 1 s
learned reverb, float32, batches of 16 x 4 s and 16 x 1 s (and the peak memory of a
16 x 2 s step, also with ``checkpoint_mlps``: the decoder MLPs' activations recomputed in
backward), 2 threads by default.

One step is what :class:`vocoder.training.trainer.Trainer` does per batch on CPU:
forward, multi-scale spectral loss (the trainer's FFT sizes 2048 ... 64), backward,
gradient clipping, AdamW step. With ``--variant reference`` (default) our model has the
baseline's inputs (f0 and loudness: no z encoder, no voicing input), so the networks
match; ``--variant speech`` adds the speech model's z encoder (MFCC -> GRU 256 -> z_dim
16) and voicing input.

The baseline, written below after the approach of acids-ircam/ddsp_pytorch (its
``ddsp/core.py``, ``ddsp/model.py``, ``train.py``), is their model and step: pitch and
loudness MLPs, GRU 512, output MLP; harmonic amplitudes and pitch upsampled to the
sample rate (nearest) and a full (batch, samples, harmonics) tensor of sines summed;
noise from per-block 128-tap windowed FIRs applied by FFT on 160-sample blocks (no
overlap-add); a 1 s reverb applied by a 2N-point FFT convolution; their multi-scale
STFT loss (scales 4096 ... 128, overlap 0.75, normalised, centred STFT); Adam. (Their
pitch and loudness MLPs are one shared module; here they are two, which costs the same.)

Figures: steps/s and audio-seconds of training per wall-clock second for each batch
shape, the peak memory of one step (growth of the peak resident set over the resident
set just before the step, in a fresh child process after a small warm-up step, so that
weights and optimiser state are not counted), and the inference real-time factor
(compute time / audio duration) for 10 s at batch 1 without gradients. Both
implementations run in the same process on the same synthetic inputs (fixed seed).
Step times are the median of the timed steps after a warm-up step, ours and the
baseline alternating step by step; with ``--quick`` one step each after a small warm-up
step, and the 16 x 4 s steps are timed once, in the memory children (``timing_source_*``
says which).
Where the CPU computes bfloat16 natively (AVX512-BF16 or AMX; ``--bf16 auto``, the
default) a third runner, ``ours_bf16``, is timed in the same alternation: ours with the
trainer's ``cpu_amp`` (the network under bfloat16 autocast, synthesizers and loss in
float32). Its figures are reported next to the float32 ones (``ours_bf16_*``,
``speedup_audio_s_per_s_*_bf16``), not instead of them: the baseline is float32.
The 1-minute load average at start and end is recorded: other processes on a 2-core
machine slow 2-thread steps down a lot, so compare ratios from one run.

    python benchmarks/train_speed.py            # full run (1-2 minutes on 2 idle cores)
    python benchmarks/train_speed.py --quick    # under 60 s
    python benchmarks/train_speed.py --phases   # where our step and inference spend their time

The last line printed is one JSON object with the figures; ``reference_acids_*`` are
published figures of acids-ircam/ddsp_pytorch on a 2-core machine, for comparison.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _common import (current_rss_mb, emit, machine_info, peak_rss_mb,  # noqa: E402
                     reset_peak_rss, run_child)  # noqa: E402

from vocoder.models.ddsp import DDSP  # noqa: E402
from vocoder.training.trainer import TrainConfig, Trainer, cpu_has_native_bf16  # noqa: E402

SAMPLE_RATE = 16000
HOP = 160
N_HARMONICS = 100
N_BANDS = 65
HIDDEN = 512
N_MFCC = 30
Z_DIM = 16
REVERB_S = 1.0
SHAPES = ((16, 4.0), (16, 1.0))
MEMORY_ONLY_SHAPES = ((16, 2.0),)  # issue #7's training-memory figure: one step of 16 x 2 s
RTF_SECONDS = 10.0

# Published figures for acids-ircam/ddsp_pytorch at this configuration on a 2-core machine.
REFERENCE_ACIDS = {
    "reference_acids_16x4s_steps_per_s": 0.2,
    "reference_acids_16x4s_audio_s_per_s": 14.0,
    "reference_acids_16x4s_peak_gb": 3.2,
    "reference_acids_16x1s_steps_per_s": 1.4,
    "reference_acids_16x1s_audio_s_per_s": 22.0,
    "reference_acids_16x1s_peak_gb": 1.1,
    "reference_acids_rtf_10s_b1": 0.027,
}


# ----------------------------------------------------------------------------------------
# Synthetic inputs
# ----------------------------------------------------------------------------------------
def _smooth(x: torch.Tensor, n_frames: int) -> torch.Tensor:
    """(batch, anchors) -> (batch, n_frames) by linear interpolation."""
    return F.interpolate(x.unsqueeze(1), size=n_frames, mode="linear", align_corners=True).squeeze(1)


def make_batch(batch: int, seconds: float, seed: int = 0) -> dict:
    """Frame features and target audio as a training batch (the dataset's keys)."""
    g = torch.Generator().manual_seed(seed)
    n_frames = int(round(seconds * SAMPLE_RATE)) // HOP
    anchors = max(2, int(seconds * 4))
    f0 = _smooth(100.0 * 4.0 ** torch.rand(batch, anchors, generator=g), n_frames)  # 100-400 Hz
    vuv = (_smooth(torch.rand(batch, anchors * 2, generator=g), n_frames) > 0.2).float()
    loudness = _smooth(-70.0 + 50.0 * torch.rand(batch, anchors, generator=g), n_frames)
    mfcc = torch.randn(batch, n_frames, N_MFCC, generator=g) * 10.0
    # Target: a sawtooth-like harmonic tone at f0 plus a little noise.
    f0_up = f0.repeat_interleave(HOP, dim=1).double()
    phase = torch.cumsum(2 * math.pi * f0_up / SAMPLE_RATE, dim=1)
    audio = sum(torch.sin(k * phase) / k for k in range(1, 9)).float() * 0.1
    audio = audio * vuv.repeat_interleave(HOP, dim=1) + 0.003 * torch.randn(audio.shape, generator=g)
    return {"f0": f0 * vuv, "vuv": vuv, "loudness": loudness, "mfcc": mfcc, "f0_continuous": f0,
            "audio": audio.contiguous()}


# ----------------------------------------------------------------------------------------
# Baseline: the approach of acids-ircam/ddsp_pytorch, re-written here
# ----------------------------------------------------------------------------------------
def _acids_mlp(in_size: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(in_size if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU()]
    return nn.Sequential(*mods)


def _acids_scale(x: torch.Tensor) -> torch.Tensor:
    """Their exponentiated sigmoid: 2 * sigmoid(x) ** ln(10) + 1e-7."""
    return 2.0 * torch.sigmoid(x) ** math.log(10.0) + 1e-7


def _nearest_upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(batch, frames, channels) -> (batch, frames * factor, channels), each frame repeated."""
    y = F.interpolate(x.transpose(1, 2), size=x.shape[1] * factor, mode="nearest")
    return y.transpose(1, 2)


def _half_fft_convolve(signal: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Their FFT convolution: signal zero-padded after, kernel before, to twice the
    length; the second half of the circular result is the first N samples of the linear
    convolution."""
    n = signal.shape[-1]
    s = F.pad(signal, (0, n))
    k = F.pad(kernel, (kernel.shape[-1], 0))
    out = torch.fft.irfft(torch.fft.rfft(s) * torch.fft.rfft(k))
    return out[..., out.shape[-1] // 2:]


def _block_impulse_responses(mags: torch.Tensor, block: int) -> torch.Tensor:
    """(batch, frames, bands) magnitudes -> (batch, frames, block) zero-phase windowed FIRs."""
    ir = torch.fft.irfft(mags)  # real magnitudes, zero phase: 2 * (bands - 1) taps
    taps = ir.shape[-1]
    ir = torch.roll(ir, taps // 2, -1) * torch.hann_window(taps, dtype=ir.dtype, device=ir.device)
    ir = F.pad(ir, (0, block - taps))
    return torch.roll(ir, -(taps // 2), -1)


class AcidsReverb(nn.Module):
    """Noise impulse response under a learned exponential decay and wet gain, direct path 1."""

    def __init__(self, length: int, sample_rate: int):
        super().__init__()
        self.length = length
        self.noise = nn.Parameter(torch.rand(length) * 2 - 1)
        self.decay = nn.Parameter(torch.tensor(5.0))
        self.wet = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("t", torch.arange(length) / sample_rate)
        direct = torch.zeros(length)
        direct[0] = 1.0
        self.register_buffer("direct", direct)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, samples)
        env = torch.exp(-F.softplus(-self.decay) * self.t * 500.0)
        ir = self.noise * env * torch.sigmoid(self.wet)
        ir = ir * (1.0 - self.direct) + self.direct
        ir = F.pad(ir, (0, x.shape[-1] - self.length))  # to the signal's length (crop if shorter)
        return _half_fft_convolve(x, ir.unsqueeze(0))


class AcidsDDSP(nn.Module):
    """acids-ircam/ddsp_pytorch's DDSP decoder + synthesizers (pitch, loudness -> audio)."""

    def __init__(self, *, hidden_size=HIDDEN, n_harmonics=N_HARMONICS, n_bands=N_BANDS,
                 sample_rate=SAMPLE_RATE, block_size=HOP, reverb_length=int(REVERB_S * SAMPLE_RATE)):
        super().__init__()
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.pitch_mlp = _acids_mlp(1, hidden_size, 3)
        self.loudness_mlp = _acids_mlp(1, hidden_size, 3)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out_mlp = _acids_mlp(hidden_size + 2, hidden_size, 3)
        self.harmonic_proj = nn.Linear(hidden_size, n_harmonics + 1)
        self.noise_proj = nn.Linear(hidden_size, n_bands)
        self.reverb = AcidsReverb(reverb_length, sample_rate)
        self.register_buffer("k", torch.arange(1, n_harmonics + 1, dtype=torch.float32))

    def forward(self, pitch: torch.Tensor, loudness: torch.Tensor) -> torch.Tensor:
        """pitch (batch, frames, 1) Hz, loudness (batch, frames, 1) standardised -> (batch, samples)."""
        h = torch.cat([self.pitch_mlp(pitch), self.loudness_mlp(loudness)], -1)
        h = torch.cat([self.gru(h)[0], pitch, loudness], -1)
        h = self.out_mlp(h)

        # Harmonic part: frame-rate amplitudes, then everything at the sample rate.
        p = _acids_scale(self.harmonic_proj(h))
        total, dist = p[..., :1], p[..., 1:]
        dist = dist * ((pitch * self.k < self.sample_rate / 2).float() + 1e-4)
        amps = dist / dist.sum(-1, keepdim=True) * total
        amps = _nearest_upsample(amps, self.block_size)
        f0 = _nearest_upsample(pitch, self.block_size)
        phase = torch.cumsum(2 * math.pi * f0 / self.sample_rate, 1)
        harmonic = (torch.sin(phase * self.k) * amps).sum(-1)

        # Noise part: one FIR per block, applied to that block's noise only.
        mags = _acids_scale(self.noise_proj(h) - 5.0)
        irs = _block_impulse_responses(mags, self.block_size)
        noise = torch.rand(irs.shape, dtype=irs.dtype) * 2 - 1
        noise = _half_fft_convolve(noise, irs).reshape(irs.shape[0], -1)

        return self.reverb(harmonic + noise)


ACIDS_SCALES = (4096, 2048, 1024, 512, 256, 128)


def acids_multiscale_loss(pred: torch.Tensor, target: torch.Tensor, scales=ACIDS_SCALES, overlap=0.75):
    loss = 0.0
    for s in scales:
        window = torch.hann_window(s, dtype=pred.dtype)
        mags = [torch.stft(x, s, int(s * (1 - overlap)), s, window, center=True, normalized=True,
                           return_complex=True).abs() for x in (target, pred)]
        loss = loss + (mags[0] - mags[1]).abs().mean()
        loss = loss + (torch.log(mags[0] + 1e-7) - torch.log(mags[1] + 1e-7)).abs().mean()
    return loss


# ----------------------------------------------------------------------------------------
# The two training steps
# ----------------------------------------------------------------------------------------
class OursRunner:
    """Our DDSP model trained by the project's Trainer (its loss, clipping, AdamW, schedule)."""

    name = "ours"

    variant = "reference"  # set from --variant
    cpu_amp = False

    def __init__(self, batch_size: int = 16):
        torch.manual_seed(0)
        speech = self.variant == "speech"
        model = DDSP(sample_rate=SAMPLE_RATE, hop_length=HOP, n_harmonics=N_HARMONICS, n_noise_bands=N_BANDS,
                     hidden_size=HIDDEN, gru_size=HIDDEN, mlp_layers=3, z_dim=Z_DIM if speech else 0,
                     n_mfcc=N_MFCC, use_vuv=speech, gate_unvoiced=speech,
                     reverb=True, reverb_duration_s=REVERB_S)
        cfg = TrainConfig(batch_size=batch_size, amp=False, cpu_amp=self.cpu_amp, seed=0)
        self.trainer = Trainer(model, None, None, exp_dir="/nonexistent-train-speed", config=cfg,
                               full_config={}, device=torch.device("cpu"), progress=False)
        self.model = model

    def inputs(self, batch: dict) -> dict:
        return batch

    def step(self, batch: dict) -> float:
        tr = self.trainer
        loss, _ = tr._forward_loss(batch)
        tr.optimizer.zero_grad(set_to_none=True)
        if not bool(torch.isfinite(loss)):
            raise RuntimeError("non-finite loss in the benchmark")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tr.model.parameters(), tr.cfg.grad_clip)
        tr.optimizer.step()
        tr.scheduler.step()
        return float(loss.detach())

    @torch.no_grad()
    def infer(self, batch: dict) -> torch.Tensor:
        self.model.eval()
        out = self.model(batch, generator=torch.Generator().manual_seed(0))["audio"]
        self.model.train()
        return out


class OursBf16Runner(OursRunner):
    """Ours with the trainer's ``cpu_amp``: the network under bfloat16 autocast."""

    name = "ours_bf16"
    cpu_amp = True


class AcidsRunner:
    """The baseline model with their loss and Adam."""

    name = "baseline"

    def __init__(self, batch_size: int = 16):
        torch.manual_seed(0)
        self.model = AcidsDDSP()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def inputs(self, batch: dict) -> dict:
        return {"pitch": batch["f0_continuous"].unsqueeze(-1),
                "loudness": ((batch["loudness"] + 60.0) / 20.0).unsqueeze(-1), "audio": batch["audio"]}

    def step(self, inputs: dict) -> float:
        y = self.model(inputs["pitch"], inputs["loudness"])
        loss = acids_multiscale_loss(y, inputs["audio"])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def infer(self, inputs: dict) -> torch.Tensor:
        return self.model(inputs["pitch"], inputs["loudness"])


class OursCheckpointedRunner(OursRunner):
    """Ours with ``checkpoint_mlps: true`` (MLP activations recomputed in backward)."""

    name = "ours_ckpt"

    def __init__(self, batch_size: int = 16):
        super().__init__(batch_size)
        self.model.checkpoint_mlps = True


RUNNERS = {"ours": OursRunner, "baseline": AcidsRunner}
MEMORY_RUNNERS = {**RUNNERS, "ours_ckpt": OursCheckpointedRunner}


def _tag(batch: int, seconds: float) -> str:
    return f"{batch}x{seconds:g}s"


def time_interleaved(runners: dict, inputs: dict, *, steps: int, warmup: int) -> dict:
    """Step times of each runner, alternating runners step by step (fairer under a varying load)."""
    for _ in range(warmup):
        for name, runner in runners.items():
            runner.step(inputs[name])
    times = {name: [] for name in runners}
    for _ in range(steps):
        for name, runner in runners.items():
            t = time.perf_counter()
            runner.step(inputs[name])
            times[name].append(time.perf_counter() - t)
    return times


def measure_memory(impl: str, batch: int, seconds: float, threads: int) -> dict:
    """Child-process entry: peak RSS growth of one training step at (batch, seconds)."""
    torch.set_num_threads(threads)
    runner = MEMORY_RUNNERS[impl](batch)
    # A small warm-up step allocates the optimiser state and loads the kernels.
    runner.step(runner.inputs(make_batch(2, 1.0, seed=1)))
    inputs = runner.inputs(make_batch(batch, seconds))
    gc.collect()
    before = current_rss_mb()
    reset_peak_rss()
    t = time.perf_counter()
    runner.step(inputs)
    step_s = time.perf_counter() - t
    peak = peak_rss_mb()
    return {"peak_mb": peak - before, "peak_rss_total_mb": peak, "rss_before_mb": before, "cold_step_s": step_s}


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def phase_times(reps: int = 5) -> dict:
    """Where our step (16 x 1 s) and our inference (10 s, batch 1) spend their time.

    Training: the network alone (decode forward, backward of its outputs' sum), the
    synthesizers and reverb alone (forward and backward from fixed network outputs), the
    trainer's loss alone (forward and backward), gradient clipping and AdamW, and the
    whole step; the baseline's whole step in the same run gives the bound on the ratio
    that the network (the same network in both) leaves. Inference: the network, its GRU,
    the synthesizers, the reverb and the whole forward. Medians of ``reps`` runs.
    """
    from vocoder.models import rnn
    from vocoder.models.ddsp import continuous_f0

    out = {}
    ours = OursRunner(16)
    model, tr = ours.model, ours.trainer
    base = AcidsRunner(16)
    data = make_batch(16, 1.0)
    inputs = dict(data, f0_continuous=continuous_f0(data["f0"], data["vuv"]))
    f0, vuv = inputs["f0_continuous"], inputs["vuv"]

    def network():
        raw = model.decode(inputs)
        total = sum(raw[k].sum() for k in ("amplitude", "harmonic_distribution", "noise_magnitudes"))
        model.zero_grad(set_to_none=True)
        total.backward()

    with torch.no_grad():
        fixed = {k: v.detach() for k, v in model.decode(inputs).items() if k != "gru_state" and v is not None}

    def synthesis():
        raw = {k: v.clone().requires_grad_(True) for k, v in fixed.items()}
        amps, mags = model.synth_controls(raw, f0, vuv)
        audio = model.harmonic.get_signal(amps, f0) + model.render_noise(mags, torch.Generator().manual_seed(0))
        model.reverb(audio).sum().backward()

    target = data["audio"]
    noisy = target * 0.9 + 0.01 * torch.randn(target.shape, generator=torch.Generator().manual_seed(1))

    def loss():
        tr.spectral_loss(noisy.clone().requires_grad_(True), target).backward()

    def optimizer():
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        torch.nn.utils.clip_grad_norm_(model.parameters(), tr.cfg.grad_clip)
        tr.optimizer.step()

    base_inputs = base.inputs(data)
    for name, fn in (("network", network), ("synthesis", synthesis), ("loss", loss), ("optimizer", optimizer),
                     ("step", lambda: ours.step(data)), ("baseline_step", lambda: base.step(base_inputs))):
        out[f"train_16x1s_{name}_s"] = _median_time(fn, reps)
    out["train_16x1s_ratio_bound"] = out["train_16x1s_baseline_step_s"] / out["train_16x1s_network_s"]

    model.eval()
    data = make_batch(1, RTF_SECONDS)
    inputs = dict(data, f0_continuous=continuous_f0(data["f0"], data["vuv"]))
    f0, vuv = inputs["f0_continuous"], inputs["vuv"]
    with torch.inference_mode():
        raw = model.decode(inputs)
        amps, mags = model.synth_controls(raw, f0, vuv)
        gru_in = torch.randn(1, f0.shape[1], model.gru.input_size)
        dry = model.harmonic.get_signal(amps, f0) + model.render_noise(mags, torch.Generator().manual_seed(0))
        for name, fn in (("network", lambda: model.decode(inputs)),
                         ("gru", lambda: rnn.gru(model.gru, gru_in)),
                         ("synthesis", lambda: (model.harmonic.get_signal(amps, f0),
                                                model.render_noise(mags, torch.Generator().manual_seed(0)))),
                         ("reverb", lambda: model.reverb(dry)),
                         ("forward", lambda: model(data, generator=torch.Generator().manual_seed(0)))):
            out[f"infer_10s_{name}_s"] = _median_time(fn, reps)
    model.train()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="shorter run (under 60 s)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--variant", choices=["reference", "speech"], default="reference",
                   help="our model with the baseline's inputs (reference) or the speech model's z and vuv")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="also time ours with bfloat16 autocast (train.cpu_amp); auto: where the CPU "
                        "has native bfloat16")
    p.add_argument("--phases", action="store_true",
                   help="instead: where our 16 x 1 s step and 10 s inference spend their time")
    p.add_argument("--_memory", nargs=3, metavar=("IMPL", "BATCH", "SECONDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    OursRunner.variant = args.variant
    if args._memory:
        impl, batch, seconds = args._memory
        emit(measure_memory(impl, int(batch), float(seconds), args.threads))
        return
    torch.set_num_threads(args.threads)
    if args.phases:
        phases = phase_times()
        for key, value in phases.items():
            print(f"{key:32s} {value * 1e3:8.1f} ms" if key.endswith("_s") else f"{key:32s} {value:8.2f}",
                  file=sys.stderr)
        emit({"benchmark": "train_speed_phases", "threads": args.threads, **machine_info(args.threads),
              "load_average_1min": os.getloadavg()[0], **phases})
        return
    t_total = time.perf_counter()
    load_start = os.getloadavg()[0]
    result = {"benchmark": "train_speed", "sample_rate": SAMPLE_RATE, "hop_length": HOP,
              "n_harmonics": N_HARMONICS, "n_noise_bands": N_BANDS, "hidden_size": HIDDEN, "variant": args.variant,
              "z_dim": Z_DIM if args.variant == "speech" else 0,
              "reverb_s": REVERB_S, "dtype": "float32", "quick": bool(args.quick),
              **machine_info(args.threads), **REFERENCE_ACIDS,
              "load_average_1min_start": load_start}
    # Memory children first: once this process has run torch ops, its idle OpenMP
    # threads can keep spinning and slow a child down on a 2-core machine.
    memory = {(name, batch, seconds): run_child(__file__, ["--threads", str(args.threads), "--variant",
                                                           args.variant, "--_memory", name, str(batch), str(seconds)])
              for batch, seconds in SHAPES + MEMORY_ONLY_SHAPES
              for name in (MEMORY_RUNNERS if (batch, seconds) in MEMORY_ONLY_SHAPES else RUNNERS)}
    runners = {name: cls() for name, cls in RUNNERS.items()}
    native_bf16 = cpu_has_native_bf16()
    bf16 = args.bf16 == "on" or (args.bf16 == "auto" and native_bf16)
    result["bf16_timed"] = bf16
    result["cpu_native_bf16"] = native_bf16
    timed_runners = dict(runners, ours_bf16=OursBf16Runner()) if bf16 else runners
    result["ours_parameters"] = sum(p.numel() for p in runners["ours"].model.parameters())
    result["baseline_parameters"] = sum(p.numel() for p in runners["baseline"].model.parameters())

    def record_times(name: str, batch: int, seconds: float, times: list[float], source: str) -> None:
        tag = _tag(batch, seconds)
        audio_s = batch * seconds
        step_s = statistics.median(times)
        result[f"{name}_{tag}_step_s"] = step_s
        result[f"{name}_{tag}_step_times_s"] = times
        result[f"{name}_{tag}_steps_per_s"] = 1.0 / step_s
        result[f"{name}_{tag}_audio_s_per_s"] = audio_s / step_s
        result[f"timing_source_{tag}"] = source
        print(f"{name:8s} {tag:7s} train step: {step_s:6.3f} s  {1 / step_s:6.2f} steps/s  "
              f"{audio_s / step_s:7.1f} audio-s/s  (steps {', '.join(f'{t:.3f}' for t in times)}; {source})",
              file=sys.stderr)

    # In quick mode the long batch is timed by the memory children (one step each, after a
    # small warm-up step in a fresh process), so that no 16 x 4 s step runs twice.
    timed_here = [s for s in SHAPES if not (args.quick and s[1] > 1)]
    if args.quick:  # warm up on a small batch only
        small = make_batch(2, 1.0, seed=1)
        for runner in timed_runners.values():
            runner.step(runner.inputs(small))
    for batch, seconds in timed_here:
        data = make_batch(batch, seconds)
        inputs = {name: runner.inputs(data) for name, runner in timed_runners.items()}
        steps = 1 if args.quick else (3 if seconds > 1 else 5)
        times = time_interleaved(timed_runners, inputs, steps=steps, warmup=0 if args.quick else 1)
        warm = "a 2 x 1 s warm-up step" if args.quick else "1 warm-up step"
        for name in timed_runners:
            record_times(name, batch, seconds, times[name],
                         f"median of {steps} step(s) after {warm}, {', '.join(timed_runners)} alternating")
        if bf16:
            tag = _tag(batch, seconds)
            result[f"speedup_audio_s_per_s_{tag}_bf16"] = (result[f"ours_bf16_{tag}_audio_s_per_s"]
                                                           / result[f"baseline_{tag}_audio_s_per_s"])

    data = make_batch(1, RTF_SECONDS)
    for name, runner in runners.items():
        inputs = runner.inputs(data)
        runner.infer(inputs)  # warm-up
        best = float("inf")
        for _ in range(1 if args.quick else 5):
            t = time.perf_counter()
            runner.infer(inputs)
            best = min(best, time.perf_counter() - t)
        result[f"{name}_rtf_{RTF_SECONDS:g}s_b1"] = best / RTF_SECONDS
        print(f"{name:8s} inference 1x{RTF_SECONDS:g}s: RTF {best / RTF_SECONDS:.4f} ({best * 1e3:.0f} ms)",
              file=sys.stderr)
    result["rtf_speedup"] = result[f"baseline_rtf_{RTF_SECONDS:g}s_b1"] / result[f"ours_rtf_{RTF_SECONDS:g}s_b1"]
    # Our model with int8 dynamic quantisation of its GRU and Linear layers (vocoder synth --int8).
    from vocoder.cli.synth import quantize_dynamic_int8

    ours = runners["ours"]
    ours.model.eval()
    qmodel = quantize_dynamic_int8(ours.model)
    inputs = ours.inputs(data)
    with torch.inference_mode():
        ref = ours.model(inputs, generator=torch.Generator().manual_seed(0))["audio"]
        qmodel(inputs, generator=torch.Generator().manual_seed(0))  # warm-up
        best = float("inf")
        for _ in range(1 if args.quick else 5):
            t = time.perf_counter()
            out = qmodel(inputs, generator=torch.Generator().manual_seed(0))["audio"]
            best = min(best, time.perf_counter() - t)
    ours.model.train()
    err_db = 10 * math.log10(float(((out - ref) ** 2).mean() / (ref ** 2).mean().clamp_min(1e-20)))
    result[f"ours_int8_rtf_{RTF_SECONDS:g}s_b1"] = best / RTF_SECONDS
    result["ours_int8_error_db"] = err_db
    print(f"ours int8 inference 1x{RTF_SECONDS:g}s: RTF {best / RTF_SECONDS:.4f} (output vs float32: {err_db:.1f} dB)",
          file=sys.stderr)
    del runners, timed_runners, data, inputs
    gc.collect()

    for batch, seconds in SHAPES:
        tag = _tag(batch, seconds)
        for name in RUNNERS:
            r = memory[(name, batch, seconds)]
            result[f"{name}_{tag}_peak_mb"] = r["peak_mb"]
            result[f"{name}_{tag}_peak_rss_total_mb"] = r["peak_rss_total_mb"]
            print(f"{name:8s} {tag:7s} train step peak memory: {r['peak_mb']:.0f} MB over "
                  f"{r['rss_before_mb']:.0f} MB resident (process peak {r['peak_rss_total_mb']:.0f} MB; "
                  f"step {r['cold_step_s']:.2f} s)", file=sys.stderr)
            if (batch, seconds) not in timed_here:
                record_times(name, batch, seconds, [r["cold_step_s"]],
                             "1 step in the memory child after a 2 x 1 s warm-up step")
        result[f"memory_ratio_{tag}"] = result[f"ours_{tag}_peak_mb"] / result[f"baseline_{tag}_peak_mb"]
    for batch, seconds in MEMORY_ONLY_SHAPES:
        tag = _tag(batch, seconds)
        for name in MEMORY_RUNNERS:
            result[f"{name}_{tag}_peak_mb"] = memory[(name, batch, seconds)]["peak_mb"]
        result[f"memory_ratio_{tag}"] = result[f"ours_{tag}_peak_mb"] / result[f"baseline_{tag}_peak_mb"]
        result[f"memory_ratio_ckpt_{tag}"] = result[f"ours_ckpt_{tag}_peak_mb"] / result[f"baseline_{tag}_peak_mb"]
        print(f"{tag}: train step peak memory ours {result[f'ours_{tag}_peak_mb']:.0f} MB "
              f"(x{result[f'memory_ratio_{tag}']:.2f}), "
              f"with checkpoint_mlps {result[f'ours_ckpt_{tag}_peak_mb']:.0f} MB "
              f"(x{result[f'memory_ratio_ckpt_{tag}']:.2f}); baseline {result[f'baseline_{tag}_peak_mb']:.0f} MB",
              file=sys.stderr)
    for batch, seconds in SHAPES:
        tag = _tag(batch, seconds)
        result[f"speedup_audio_s_per_s_{tag}"] = (result[f"ours_{tag}_audio_s_per_s"]
                                                  / result[f"baseline_{tag}_audio_s_per_s"])

    # Headline figures: the long batch.
    result["steps_per_s"] = result["ours_16x4s_steps_per_s"]
    result["audio_s_per_s"] = result["ours_16x4s_audio_s_per_s"]
    result["peak_mb"] = result["ours_16x4s_peak_mb"]
    result["rtf"] = result[f"ours_rtf_{RTF_SECONDS:g}s_b1"]
    result["wall_s"] = time.perf_counter() - t_total
    result["load_average_1min_end"] = os.getloadavg()[0]
    print(f"ours / baseline: audio-s/s x{result['speedup_audio_s_per_s_16x4s']:.2f} (16x4 s), "
          f"x{result['speedup_audio_s_per_s_16x1s']:.2f} (16x1 s); peak memory x{result['memory_ratio_16x4s']:.2f} "
          f"(16x4 s), x{result['memory_ratio_16x1s']:.2f} (16x1 s); inference {result['rtf_speedup']:.2f}x faster "
          f"({result['wall_s']:.0f} s in all)", file=sys.stderr)
    for tag in ("16x4s", "16x1s"):
        if f"speedup_audio_s_per_s_{tag}_bf16" in result:
            print(f"ours with bfloat16 autocast (train.cpu_amp) / baseline (float32): audio-s/s "
                  f"x{result[f'speedup_audio_s_per_s_{tag}_bf16']:.2f} ({tag})", file=sys.stderr)
    emit(result)


if __name__ == "__main__":
    main()
