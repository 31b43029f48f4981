"""Training examples from a feature dump: random fixed-length crops of frames and audio.

Each example is a dict of tensors: ``audio`` (crop_frames * hop,), ``f0``, ``vuv``,
``loudness``, ``f0_continuous`` (crop_frames,), ``mfcc``/``mel`` (crop_frames, dims),
``speaker`` () long, and ``utt`` (the utterance id, a string). Crops are drawn with
probability proportional to utterance length from a generator seeded by
``(seed, epoch, index)``, so a resumed run sees the same data as an uninterrupted one.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from .features import FeatureDump

__all__ = ["CropDataset", "utterance_inputs"]


def _continuous_f0(f0: np.ndarray, vuv: np.ndarray) -> np.ndarray:
    from ..analysis.f0 import interpolate_log_f0

    voiced = (vuv > 0.5) & (f0 > 0)
    if not voiced.any():
        return np.full_like(f0, 100.0, dtype=np.float32)
    return np.exp(interpolate_log_f0(np.where(voiced, f0, 0.0), voiced)).astype(np.float32)


def utterance_inputs(feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``f0_continuous`` (unvoiced gaps filled in log-f0) to one utterance's streams."""
    out = dict(feats)
    if "f0" in feats and "vuv" in feats:
        out["f0_continuous"] = _continuous_f0(feats["f0"], feats["vuv"])
    return out


class CropDataset(Dataset):
    """Random crops of ``crop_frames`` frames (and the matching audio) from a dump.

    Args:
        dump: the feature dump (or its path).
        streams: frame streams to load besides ``wav``.
        crop_frames: frames per example; shorter utterances are padded at the end.
        speakers: speaker table; ``speaker`` holds the index of the utterance's speaker
            (-1 if absent from the table).
        seed: base seed of the crop generator.
        epoch_size: examples per epoch (default: total frames // crop_frames).
        fixed: take the first crop of every utterance instead of random ones
            (validation); then the dataset has one example per utterance.
    """

    def __init__(self, dump, *, streams, crop_frames: int, speakers: list[str] | None = None, seed: int = 0,
                 epoch_size: int | None = None, fixed: bool = False):
        self.dump = dump if isinstance(dump, FeatureDump) else FeatureDump(dump)
        self.streams = [s for s in streams if s != "wav"]
        self.hop = self.dump.hop_length
        self.crop_frames = int(crop_frames)
        self.speakers = list(speakers or [])
        self.seed = int(seed)
        self.fixed = fixed
        self.epoch = 0
        self.utts = list(self.dump.utts)
        if not self.utts:
            raise ValueError(f"{self.dump.path}: no utterances in the dump")
        self.data = [utterance_inputs(self.dump.load(u, ["wav"] + self.streams)) for u in self.utts]
        frames = np.array([d[self.streams[0]].shape[0] for d in self.data], dtype=np.float64)
        self.weights = frames / frames.sum()
        self.total_frames = int(frames.sum())
        self.epoch_size = len(self.utts) if fixed else (epoch_size or max(1, self.total_frames // self.crop_frames))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.epoch_size

    def speaker_id(self, utt: str) -> int:
        spk = self.dump.speaker(utt)
        return self.speakers.index(spk) if spk in self.speakers else -1

    def __getitem__(self, index: int) -> dict:
        if self.fixed:
            u, start = index, 0
        else:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            u = int(rng.choice(len(self.utts), p=self.weights))
            n = self.data[u][self.streams[0]].shape[0]
            start = int(rng.integers(0, max(1, n - self.crop_frames + 1)))
        return self._crop(u, start)

    def _crop(self, u: int, start: int) -> dict:
        d = self.data[u]
        c, hop = self.crop_frames, self.hop
        item: dict = {"utt": self.utts[u], "speaker": torch.tensor(self.speaker_id(self.utts[u]), dtype=torch.long)}
        for key, value in d.items():
            if key == "wav":
                seg = value[start * hop:(start + c) * hop]
                seg = np.pad(seg, (0, c * hop - seg.shape[0]))
                item["audio"] = torch.from_numpy(np.ascontiguousarray(seg, dtype=np.float32))
                continue
            seg = value[start:start + c]
            if seg.shape[0] < c:
                pad = c - seg.shape[0]
                if key in ("f0", "vuv"):
                    seg = np.concatenate([seg, np.zeros((pad,) + seg.shape[1:], seg.dtype)])
                else:  # hold the last frame (loudness, f0_continuous, mfcc, mel)
                    seg = np.concatenate([seg, np.repeat(seg[-1:], pad, axis=0)])
            item[key] = torch.from_numpy(np.ascontiguousarray(seg, dtype=np.float32))
        return item


def crop_frames_for(seconds: float, *, sample_rate: int, hop_length: int) -> int:
    """Frames covering ``seconds`` of audio."""
    return max(1, int(math.ceil(seconds * sample_rate / hop_length)))
