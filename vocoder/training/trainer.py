"""The training loop: optimiser, LR schedule, AMP, DDP, checkpoints, TensorBoard.

One :class:`Trainer` trains any registered model on :class:`~vocoder.data.dataset.CropDataset`
examples with the multi-scale spectral loss, plus ``mel_loss_weight`` times a log-mel L1
term (:class:`~vocoder.losses.LogMelLoss`, off by default) and the model's own
``aux_loss`` when its ``forward`` returns one (e.g. the mel vocoder's f0 supervision). It

* runs on ``cpu`` or ``cuda`` (``resolve_device("auto")`` picks CUDA when present), with
  mixed precision (bfloat16 autocast) for the network on CUDA, and on the CPU with
  ``cpu_amp`` (the synthesizers stay float32);
* runs data-parallel under ``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on
  CUDA): global batch ``k`` of an epoch is the examples ``k*B ... k*B + B - 1`` of the
  dataset and process ``r`` of W takes the ``r``-th contiguous slice of ``B / W`` of
  them; the noise of example ``i`` comes from its own generator seeded by
  ``(seed, epoch, i)``. So a run on W processes follows the single-process run with
  the same ``batch_size`` (up to float rounding), and so does a resumed run, which
  continues at the saved position in the data. Only rank 0 writes checkpoints, logs
  and TensorBoard;
* clips gradients, decays the learning rate exponentially after a warm-up;
* writes atomic checkpoints every ``checkpoint_interval`` steps keeping the last
  ``keep_last``, and resumes from the newest complete one at its step (a run killed
  mid-write leaves only a hidden temporary file, removed when training starts again);
* skips steps whose loss or gradients are not finite, counts them, names the step and
  the utterances of the batch, and stops after ``max_nonfinite_in_row`` in a row.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..losses import LogMelLoss, MultiScaleSpectralLoss
from .checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_partial_checkpoints,
    save_checkpoint,
)

__all__ = ["TrainConfig", "Trainer", "resolve_device", "NonFiniteLossError"]


class NonFiniteLossError(RuntimeError):
    """Too many consecutive steps with a NaN/inf loss or gradient."""


@dataclass
class TrainConfig:
    """Training settings (the ``train:`` section of a config)."""

    max_steps: int = 10000
    batch_size: int = 16
    crop_seconds: float = 1.0
    learning_rate: float = 1e-3
    final_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 3.0
    fft_sizes: tuple = (2048, 1024, 512, 256, 128, 64)
    log_weight: float = 1.0
    linear_weight: float = 1.0
    # added to the magnitudes inside the multi-scale loss's log (docs/architecture.md: a tiny
    # eps lets near-silent bins dominate, and scramble, the gradient)
    loss_eps: float = 1e-7
    # HiFi-GAN-style log-mel L1 term added to the multi-scale loss (0: off); its analysis
    # is ``mel_loss_n_fft`` points (0: the power of two nearest 64 ms) and 80 bands 0-Nyquist.
    mel_loss_weight: float = 0.0
    mel_loss_n_fft: int = 0
    mel_loss_bands: int = 80
    checkpoint_interval: int = 1000
    keep_last: int = 3
    log_interval: int = 50
    valid_interval: int = 500
    audio_interval: int = 1000
    seed: int = 0
    # bfloat16 autocast of the network on CUDA
    amp: bool = True
    # bfloat16 autocast of the network on the CPU too: on CPUs with native bfloat16
    # (AVX512-BF16 or AMX) the reference step runs 1.4x (16 x 1 s) to 1.7x (16 x 4 s) faster
    # (docs/benchmarks.md); elsewhere it is emulated and slower, so it is off by default
    cpu_amp: bool = False
    num_workers: int = 0
    max_nonfinite_in_row: int = 10
    valid_max_utts: int = 8

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown train settings {sorted(unknown)}; valid: {sorted(names)}")
        d = dict(d)
        if "fft_sizes" in d:
            d["fft_sizes"] = tuple(d["fft_sizes"])
        return cls(**d)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but no CUDA device is available")
    return dev


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16``
    flag in ``cpuinfo``; False where that file cannot be read, e.g. off Linux)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def adamw(params, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, fused (one kernel over all parameters) where this torch supports it for the
    parameters' device (CPU since torch 2.4, CUDA), else the per-parameter loop. The same
    update up to float rounding; on a 2-core CPU a step over 4.7 M parameters takes 3 ms
    fused against 10.5."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch, or a device without the kernel
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


class _GlobalBatchSampler(torch.utils.data.Sampler):
    """Batches ``start ... n_batches - 1`` of an epoch; this process's slice of each.

    Global batch ``k`` holds dataset indices ``k*B ... k*B + B - 1`` (``B`` the global
    batch size); rank ``r`` of ``world`` takes ``k*B + r*b ... k*B + (r+1)*b - 1`` with
    ``b = B / world``. A :class:`CropDataset` draws crop ``i`` from ``(seed, epoch, i)``,
    so an index past its length is just another crop: an epoch has at least one batch
    even when the dataset has fewer examples than ``B``.
    """

    def __init__(self, *, n_batches: int, batch_size: int, rank: int, world: int, start: int = 0):
        self.n_batches, self.batch_size, self.start = n_batches, batch_size, start
        self.local = batch_size // world
        self.offset = rank * self.local

    def __len__(self) -> int:
        return max(0, self.n_batches - self.start)

    def __iter__(self):
        for k in range(self.start, self.n_batches):
            first = k * self.batch_size + self.offset
            yield list(range(first, first + self.local))


def example_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of the noise generator of example ``index`` of ``epoch`` (a 63-bit int)."""
    import numpy as np

    state = np.random.SeedSequence([int(seed), int(epoch), int(index), 0x6E6F697365]).generate_state(2)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & ((1 << 63) - 1)


def _collate(items: list[dict]) -> dict:
    out = {}
    for key in items[0]:
        values = [it[key] for it in items]
        out[key] = values if isinstance(values[0], str) else torch.stack(values)
    return out


class Trainer:
    """Train ``model`` on ``train_set``; see the module docstring.

    Args:
        model: a registered model (``forward(inputs) -> {"audio": ...}``).
        train_set: :class:`CropDataset` of random crops.
        valid_set: :class:`CropDataset` with ``fixed=True`` (or None).
        exp_dir: experiment directory (checkpoints/, tensorboard/ are created in it).
        config: :class:`TrainConfig`.
        full_config: the resolved configuration stored in every checkpoint.
        device: ``torch.device``.
        progress: show a tqdm progress bar.
    """

    def __init__(self, model, train_set, valid_set, *, exp_dir, config: TrainConfig, full_config: dict,
                 device: torch.device, progress: bool = True):
        self.cfg = config
        self.full_config = full_config
        self.exp_dir = Path(exp_dir)
        self.ckpt_dir = self.exp_dir / "checkpoints"
        self.world, self.rank, local_rank = _dist_info()
        self.distributed = self.world > 1
        if self.distributed and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            if device.type == "cuda":
                device = torch.device("cuda", local_rank)
                torch.cuda.set_device(device)
            torch.distributed.init_process_group(backend=backend)
        self.device = device
        self.is_main = self.rank == 0
        if config.batch_size % self.world:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the {self.world} processes")
        self.local_batch = config.batch_size // self.world
        torch.manual_seed(config.seed)
        self.model = model.to(device)
        self.net = self.model
        if self.distributed:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.train_set = train_set
        self.valid_set = valid_set
        self.optimizer = adamw(self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.loss_fn = MultiScaleSpectralLoss(fft_sizes=config.fft_sizes, log_weight=config.log_weight,
                                              linear_weight=config.linear_weight, eps=config.loss_eps).to(device)
        self.mel_loss_fn = None
        if config.mel_loss_weight:
            sr = int(self.model.sample_rate)
            n_fft = config.mel_loss_n_fft or 2 ** round(math.log2(0.064 * sr))
            self.mel_loss_fn = LogMelLoss(sample_rate=sr, n_fft=n_fft, n_mels=config.mel_loss_bands).to(device)
        self.amp = bool(config.amp and device.type == "cuda") or bool(config.cpu_amp and device.type == "cpu")
        if config.cpu_amp and device.type == "cpu" and self.is_main and not cpu_has_native_bf16():
            warnings.warn("train.cpu_amp: this CPU reports no native bfloat16 (no avx512_bf16 or amx_bf16 "
                          "flag in /proc/cpuinfo); "
                          "bfloat16 autocast is emulated here and likely slower than float32", stacklevel=2)
        self.step = 0
        self.skipped_steps = 0
        self.batches_seen = 0  # position in the data: batches consumed, skipped ones included
        self.progress = progress and self.is_main
        self.writer = None

    # -- schedule --------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        c = self.cfg
        warm = min(1.0, (step + 1) / max(1, c.warmup_steps))
        decay = c.final_lr_ratio ** min(1.0, step / max(1, c.max_steps))
        return warm * decay

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step,
                "skipped_steps": self.skipped_steps, "batches_seen": self.batches_seen,
                "config": self.full_config}

    def save(self) -> Path | None:
        if not self.is_main:
            return None
        return save_checkpoint(self.ckpt_dir / f"step_{self.step:08d}.pt", self.state_dict(),
                               keep_last=self.cfg.keep_last)

    def resume(self) -> bool:
        """Load the newest complete checkpoint of the experiment; False if none."""
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            if list_checkpoints(self.ckpt_dir):
                print(f"vocoder train: no readable checkpoint in {self.ckpt_dir}; starting from scratch",
                      file=sys.stderr)
            return False
        state = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.batches_seen = int(state.get("batches_seen", self.step + self.skipped_steps))
        if self.is_main:
            print(f"vocoder train: resumed from {path} at step {self.step}", file=sys.stderr)
        return True

    # -- loop ------------------------------------------------------------------------
    def steps_per_epoch(self) -> int:
        return max(1, len(self.train_set) // self.cfg.batch_size)

    def _loader(self, epoch: int, start: int = 0) -> DataLoader:
        """This process's batches ``start ...`` of ``epoch`` (see :class:`_GlobalBatchSampler`)."""
        self.train_set.set_epoch(epoch)
        sampler = _GlobalBatchSampler(n_batches=self.steps_per_epoch(), batch_size=self.cfg.batch_size,
                                      rank=self.rank, world=self.world, start=start)
        return DataLoader(self.train_set, batch_sampler=sampler, num_workers=self.cfg.num_workers,
                          collate_fn=_collate)

    def _generators(self, epoch: int, batch_index: int) -> list[torch.Generator]:
        """One noise generator per example of this process's slice of a global batch."""
        first = batch_index * self.cfg.batch_size + self.rank * self.local_batch
        dev = self.device if self.device.type == "cuda" else torch.device("cpu")
        return [torch.Generator(device=dev).manual_seed(example_seed(self.cfg.seed, epoch, first + j))
                for j in range(self.local_batch)]

    def _to_device(self, batch: dict) -> dict:
        return {k: (v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}

    def spectral_loss(self, audio: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The multi-scale spectral loss, plus ``mel_loss_weight`` times the log-mel L1 when set."""
        loss = self.loss_fn(audio, target)
        if self.mel_loss_fn is not None:
            loss = loss + self.cfg.mel_loss_weight * self.mel_loss_fn(audio, target)
        return loss

    def _forward_loss(self, batch: dict, generator=None) -> tuple[torch.Tensor, dict]:
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.net(batch, generator=generator)
        audio = out["audio"].float()
        target = batch["audio"][:, : audio.shape[-1]]
        loss = self.spectral_loss(audio, target)
        if "aux_loss" in out:  # a model's own extra objective (e.g. f0 supervision), a scalar
            loss = loss + out["aux_loss"].float()
        return loss, out

    def train(self) -> dict:
        """Run until ``max_steps``; returns a summary dict (steps, seconds, losses)."""
        if self.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
            for p in remove_partial_checkpoints(self.ckpt_dir):  # left by a run killed mid-write
                print(f"vocoder train: removed {p}, a checkpoint write that did not finish", file=sys.stderr)
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.exp_dir / "tensorboard"), purge_step=self.step or None)
        cfg = self.cfg
        steps_per_epoch = self.steps_per_epoch()
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=cfg.max_steps, initial=self.step, desc="train", unit="step", file=sys.stderr,
                       dynamic_ncols=True)
        nonfinite_in_row = 0
        t_start = time.time()
        last_loss = float("nan")
        audio_seconds = 0.0
        self.model.train()
        while self.step < cfg.max_steps:
            # resume mid-epoch at the next unseen batch (not recomputed from the step, which
            # does not count the batches of skipped non-finite steps)
            epoch, start = divmod(self.batches_seen, steps_per_epoch)
            for k, batch in enumerate(self._loader(epoch, start), start=start):
                if self.step >= cfg.max_steps:
                    break
                self.batches_seen += 1
                batch = self._to_device(batch)
                loss, _ = self._forward_loss(batch, generator=self._generators(epoch, k))
                self.optimizer.zero_grad(set_to_none=True)
                finite = bool(torch.isfinite(loss))
                if self.distributed:
                    # agree before backward: DDP's gradient all-reduce needs every rank in it
                    flag = torch.tensor([1.0 if finite else 0.0], device=self.device)
                    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
                    finite = bool(flag.item() > 0)
                grad_norm = torch.tensor(float("nan"))
                if finite:
                    loss.backward()
                    # the gradients are averaged over the ranks, so all ranks see the same norm
                    grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    finite = bool(torch.isfinite(grad_norm))
                if not finite:
                    nonfinite_in_row += 1
                    self.skipped_steps += 1
                    utts = ", ".join(batch["utt"][:8])
                    msg = (f"non-finite loss/gradient at step {self.step + 1} (batch utterances: {utts}); "
                           f"step skipped ({nonfinite_in_row} in a row, {self.skipped_steps} in total)")
                    print(f"vocoder train: {msg}", file=sys.stderr)
                    if nonfinite_in_row >= cfg.max_nonfinite_in_row:
                        raise NonFiniteLossError(f"{msg}; stopping after {nonfinite_in_row} in a row")
                    self.optimizer.zero_grad(set_to_none=True)
                    continue
                nonfinite_in_row = 0
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                last_loss = float(loss.detach())
                audio_seconds += batch["audio"].shape[0] * batch["audio"].shape[1] / self.model.sample_rate
                if bar is not None:  # the bar redraws at most every `mininterval` (TQDM_MININTERVAL)
                    bar.set_postfix(loss=f"{last_loss:.3f}", refresh=False)
                    bar.update(1)
                if self.is_main and self.step % cfg.log_interval == 0:
                    self.writer.add_scalar("train/loss", last_loss, self.step)
                    self.writer.add_scalar("train/grad_norm", float(grad_norm), self.step)
                    self.writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                    self.writer.add_scalar("train/skipped_steps", self.skipped_steps, self.step)
                if self.valid_set is not None and self.step % cfg.valid_interval == 0:
                    self.validate(write_audio=self.step % cfg.audio_interval == 0)
                if self.step % cfg.checkpoint_interval == 0:
                    self.save()
                    if self.distributed:
                        torch.distributed.barrier()
                if self.step >= cfg.max_steps:
                    break  # before the loader fetches a batch that will not be used
        if bar is not None:
            bar.close()
        if not list_checkpoints(self.ckpt_dir) or self.step % cfg.checkpoint_interval:
            self.save()
        summary = {"steps": self.step, "seconds": time.time() - t_start, "last_loss": last_loss,
                   "skipped_steps": self.skipped_steps, "audio_seconds": audio_seconds}
        if self.valid_set is not None:
            summary["valid_loss"] = self.validate(write_audio=True)
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
        return summary

    @torch.no_grad()
    def validate(self, *, write_audio: bool = False) -> float:
        """Mean loss over the validation crops; rank 0 logs it (and audio, spectrograms)."""
        if self.valid_set is None:
            return float("nan")
        self.model.eval()
        n = min(len(self.valid_set), self.cfg.valid_max_utts)
        losses, first = [], None
        g = torch.Generator().manual_seed(1234)
        for i in range(n):
            batch = self._to_device(_collate([self.valid_set[i]]))
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.model(batch, generator=g if self.device.type == "cpu" else None)
            audio = out["audio"].float()
            losses.append(float(self.spectral_loss(audio, batch["audio"][:, : audio.shape[-1]])))
            if first is None:
                first = (batch, out)
        self.model.train()
        loss = sum(losses) / max(1, len(losses))
        if self.is_main and self.writer is not None:
            self.writer.add_scalar("valid/loss", loss, self.step)
            if write_audio and first is not None:
                batch, out = first
                sr = self.model.sample_rate
                self.writer.add_audio("valid/target", batch["audio"][0].cpu().clamp(-1, 1), self.step, sr)
                self.writer.add_audio("valid/synthesis", out["audio"][0].float().cpu().clamp(-1, 1), self.step, sr)
                self.writer.add_figure("valid/spectrogram", _spectrogram_figure(
                    batch["audio"][0].cpu(), out["audio"][0].float().cpu(), sr), self.step)
        return loss


def _spectrogram_figure(target: torch.Tensor, synth: torch.Tensor, sample_rate: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for ax, x, title in zip(axes, (target, synth), ("target", "synthesis")):
        n_fft = 1024
        spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True)
        db = 20 * torch.log10(spec.abs().clamp_min(1e-5))
        ax.imshow(db.numpy(), origin="lower", aspect="auto", vmin=float(db.max()) - 80, vmax=float(db.max()),
                  extent=[0, x.shape[-1] / sample_rate, 0, sample_rate / 2])
        ax.set_title(title)
        ax.set_ylabel("Hz")
    axes[-1].set_xlabel("s")
    fig.tight_layout()
    return fig


def steps_per_second(summary: dict) -> float:
    return summary["steps"] / summary["seconds"] if summary.get("seconds") else math.nan
