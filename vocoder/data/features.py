"""Frame features of a data dir, stored as Kaldi archives (one ark/scp pair per stream).

A feature dump ``dump/<set>/`` holds:

================  ==================================================================
``feats.yaml``    the analysis settings (:class:`FeatureConfig`) and format version
``wav.scp``       audio resampled to ``sample_rate``, 16-bit WAV inside ``arks/wav.J.ark``
``f0.scp``        (frames,) float32 f0 in Hz, 0 where unvoiced
``vuv.scp``       (frames,) float32 voicing flag, 1 voiced / 0 unvoiced
``loudness.scp``  (frames,) float32 A-weighted loudness in dB
``mfcc.scp``      (frames, n_mfcc) float32 MFCCs (DDSP's z-encoder input)
``mel.scp``       (frames, n_mels) float32 log mel spectrogram (the TTS front-end format)
``utt2spk``       speakers of the utterances in the dump (``spk2utt`` beside it)
``utt2num_frames``frames per utterance (``utt2num_samples``: audio samples)
``failed``        ``<utt> <reason>`` for items that could not be processed
================  ==================================================================

Every ``.scp`` is a Kaldi script file readable with ``kaldiio.load_scp``; a TTS front end
that writes mel ``feats.scp`` in the same layout can feed the vocoder directly. All
streams share the frame grid of docs/architecture.md: ``ceil(samples / hop_length)``
frames, frame ``n`` centred on sample ``n * hop_length``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..audio import AudioError, check_audio, load_audio

__all__ = ["FeatureConfig", "compute_features", "read_wav_entry", "FeatureDump", "FEATURE_FORMAT_VERSION"]

FEATURE_FORMAT_VERSION = 1
FRAME_STREAMS = ("f0", "vuv", "loudness", "mfcc", "mel")


@dataclass
class FeatureConfig:
    """Analysis settings of a feature dump (all keyword arguments, saved in feats.yaml)."""

    sample_rate: int = 16000
    hop_length: int = 80
    f0_method: str = "harvest"
    f0_min: float = 65.0
    f0_max: float = 800.0
    n_mfcc: int = 30
    mfcc_n_fft: int = 1024
    mfcc_n_mels: int = 128
    n_mels: int = 80
    mel_n_fft: int = 1024
    mel_f_min: float = 80.0
    mel_f_max: float | None = 7600.0
    mel_log: str = "log10"
    loudness_n_fft: int | None = None
    streams: list[str] = field(default_factory=lambda: list(FRAME_STREAMS))

    def __post_init__(self):
        if not self.streams:
            raise ValueError(f"no feature streams selected; choose from {list(FRAME_STREAMS)}")
        unknown = set(self.streams) - set(FRAME_STREAMS)
        if unknown:
            raise ValueError(f"unknown feature streams {sorted(unknown)}; choose from {list(FRAME_STREAMS)}")
        if self.hop_length < 1 or self.sample_rate < 1:
            raise ValueError("sample_rate and hop_length must be positive integers")
        if self.mel_f_max is not None and self.mel_f_max > self.sample_rate / 2:
            self.mel_f_max = self.sample_rate / 2

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown feature settings {sorted(unknown)}; valid: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Streams computed frame by frame (loudness, mel) are computed this many frames at a
# time (60 s at a 5 ms hop), so that a long file does not hold a whole-file STFT and its
# temporaries (about 80 bytes a sample for loudness).
_CHUNK_FRAMES = 12000
# The MFCC floor below the file's loudest mel bin (dsp.spectral.mfcc's top_db default).
_MFCC_TOP_DB = 80.0


def _framewise_in_chunks(fn, x: np.ndarray, *, hop_length: int, n_fft: int, frames: int) -> np.ndarray:
    """``fn(x, frames)`` for a per-frame analysis (centred frames ``n * hop_length``,
    window ``n_fft``), computed on overlapping pieces of ``x`` and joined.

    Each piece carries ``ceil(n_fft / 2 / hop_length)`` frames of context on each side,
    so every kept frame sees the same samples (and, at the two ends of ``x``, the same
    padding) as in one call: the result equals ``fn(x, frames)``.
    """
    if frames <= _CHUNK_FRAMES:
        return np.asarray(fn(x, frames), dtype=np.float32)
    context = -(-(n_fft // 2) // hop_length)
    parts = []
    for a in range(0, frames, _CHUNK_FRAMES):
        b = min(frames, a + _CHUNK_FRAMES)
        start = max(0, a - context) * hop_length
        stop = min(x.size, (b + context) * hop_length)
        y = fn(np.ascontiguousarray(x[start:stop]), math.ceil((stop - start) / hop_length))
        offset = a - start // hop_length
        parts.append(np.asarray(y[offset:offset + (b - a)], dtype=np.float32))
    return np.concatenate(parts)


@contextlib.contextmanager
def _named_errors(name: str):
    """Prefix ``name`` to a ValueError that does not name the input (e.g. from the STFT)."""
    try:
        yield
    except ValueError as exc:
        if str(exc).startswith(name):
            raise
        cause = str(exc).strip().splitlines()
        cause = cause[0] if cause else type(exc).__name__
        raise AudioError(f"{name}: {cause.removeprefix('audio: ')}") from exc


def compute_features(audio: np.ndarray, cfg: FeatureConfig, *, name: str = "audio") -> dict[str, np.ndarray]:
    """All frame streams of one mono signal at ``cfg.sample_rate``.

    Args:
        audio: (samples,) float signal already at ``cfg.sample_rate``.
        cfg: analysis settings.
        name: how the input is named in error messages.
    Returns:
        dict stream -> float32 array with ``ceil(samples / hop_length)`` rows.
    """
    import torch

    from ..analysis.f0 import estimate_f0
    from ..analysis.loudness import a_weighted_loudness, default_loudness_n_fft
    from ..dsp.spectral import mel_spectrogram, mfcc_from_log_mel

    x = check_audio(audio, name=name)
    n_frames = math.ceil(x.size / cfg.hop_length)
    out: dict[str, np.ndarray] = {}
    if "f0" in cfg.streams or "vuv" in cfg.streams:
        f0, vuv = estimate_f0(x, sample_rate=cfg.sample_rate, hop_length=cfg.hop_length, method=cfg.f0_method,
                              f0_min=cfg.f0_min, f0_max=cfg.f0_max, name=name)
        out["f0"] = f0.astype(np.float32)
        out["vuv"] = vuv.astype(np.float32)
    if "loudness" in cfg.streams:
        loudness_n_fft = cfg.loudness_n_fft or default_loudness_n_fft(cfg.sample_rate)
        out["loudness"] = _framewise_in_chunks(
            lambda seg, frames: a_weighted_loudness(seg, sample_rate=cfg.sample_rate, hop_length=cfg.hop_length,
                                                    n_fft=loudness_n_fft, name=name),
            x, hop_length=cfg.hop_length, n_fft=loudness_n_fft, frames=n_frames)
    xt = torch.from_numpy(x.astype(np.float32))
    with torch.no_grad(), _named_errors(name):
        if "mfcc" in cfg.streams:
            # dsp.spectral.mfcc, with the power-dB mel computed in chunks: the floor
            # (the file's maximum less 80 dB) and the DCT come after the joining.
            log_mel = _framewise_in_chunks(
                lambda seg, frames: mel_spectrogram(
                    torch.from_numpy(seg), sample_rate=cfg.sample_rate, n_fft=cfg.mfcc_n_fft,
                    hop_length=cfg.hop_length, n_mels=cfg.mfcc_n_mels, power=2.0, log="db", eps=1e-10,
                    top_db=None, pad_mode="constant", frames=frames).numpy(),
                xt.numpy(), hop_length=cfg.hop_length, n_fft=cfg.mfcc_n_fft, frames=n_frames)
            log_mel = np.maximum(log_mel, log_mel.max() - _MFCC_TOP_DB)
            out["mfcc"] = mfcc_from_log_mel(torch.from_numpy(log_mel), n_mfcc=cfg.n_mfcc).numpy()
        if "mel" in cfg.streams:
            out["mel"] = _framewise_in_chunks(
                lambda seg, frames: mel_spectrogram(
                    torch.from_numpy(seg), sample_rate=cfg.sample_rate, n_fft=cfg.mel_n_fft,
                    hop_length=cfg.hop_length, n_mels=cfg.n_mels, f_min=cfg.mel_f_min, f_max=cfg.mel_f_max,
                    power=1.0, log=cfg.mel_log, eps=1e-10, pad_mode="reflect", frames=frames).numpy(),
                xt.numpy(), hop_length=cfg.hop_length, n_fft=cfg.mel_n_fft, frames=n_frames)
    for key, value in out.items():
        if value.shape[0] != n_frames:
            raise RuntimeError(f"{name}: stream {key} has {value.shape[0]} frames, expected {n_frames}")
        out[key] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def read_wav_entry(value: str, *, sample_rate: int | None, allow_pipes: bool = False,
                   start_s: float | None = None, end_s: float | None = None, name: str | None = None):
    """Read the audio a ``wav.scp`` value points to (a path, or ``cmd |`` with allow_pipes).

    Returns:
        (samples,) float32 mono audio at ``sample_rate`` (original rate if None), and the rate.
    Raises:
        AudioError: missing/unreadable file, pipe not allowed or failed, bad segment.
    """
    import io

    import soundfile as sf

    label = name or value
    value = value.strip()
    if value.endswith("|"):
        if not allow_pipes:
            raise AudioError(f"{label}: wav.scp entry is a shell pipe ({value!r}); pass --allow-pipes to run it")
        proc = subprocess.run(value[:-1], shell=True, capture_output=True)  # noqa: S602 (opt-in)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise AudioError(f"{label}: pipe command failed with status {proc.returncode}"
                             + (f": {err[-1]}" if err else ""))
        try:
            data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioError(f"{label}: pipe output is not audio ({str(exc).splitlines()[0]})") from None
        x = check_audio(data.mean(axis=1), name=label)
        if start_s is not None:
            a = int(round(start_s * sr))
            b = x.size if end_s is None or end_s < 0 else int(round(end_s * sr))
            if a >= x.size or b <= a:
                raise AudioError(f"{label}: segment {start_s}-{end_s} s lies outside the recording "
                                 f"({x.size / sr:.2f} s)")
            x = x[a:b]
    else:
        # A segment is read by seeking in the file: only its samples are loaded, however
        # long the recording (extract holds one segment at a time, not the recording).
        x, sr = load_audio(value, sample_rate=None, start_s=start_s,
                           end_s=end_s if start_s is not None else None)
    if sample_rate and sr != sample_rate:
        import soxr
        x, sr = soxr.resample(x, sr, sample_rate).astype(np.float32), sample_rate
    return check_audio(x, name=label), int(sr)


class FeatureDump:
    """Read access to a feature dump directory (see the module docstring).

    Args:
        path: the dump directory.
        streams: streams to open (default: every ``<stream>.scp`` present).
    """

    def __init__(self, path, *, streams: list[str] | None = None):
        import kaldiio

        self.path = Path(path)
        meta_file = self.path / "feats.yaml"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{meta_file}: not a feature dump (run `vocoder extract` first)")
        meta = yaml.safe_load(meta_file.read_text()) or {}
        self.version = int(meta.get("version", 0))
        if self.version > FEATURE_FORMAT_VERSION:
            raise ValueError(f"{meta_file}: format version {self.version} is newer than this "
                             f"package understands ({FEATURE_FORMAT_VERSION}); upgrade ddsp-vocoder")
        self.config = FeatureConfig.from_dict(meta.get("features", {}))
        available = [s for s in ("wav",) + FRAME_STREAMS if (self.path / f"{s}.scp").is_file()]
        self.streams = available if streams is None else list(streams)
        missing = [s for s in self.streams if s not in available]
        if missing:
            raise FileNotFoundError(f"{self.path}: streams {missing} not in the dump (have {available})")
        for s in self.streams:
            refuse_pipes(self.path / f"{s}.scp")
        self._scp = {s: kaldiio.load_scp(str(self.path / f"{s}.scp")) for s in self.streams}
        keys = None
        for s in self.streams:
            k = set(self._scp[s].keys())
            keys = k if keys is None else keys & k
        self.utts = sorted(keys or [], key=lambda u: u.encode())
        self.utt2spk = _read_kv(self.path / "utt2spk")
        self.utt2num_samples = {k: int(v) for k, v in _read_kv(self.path / "utt2num_samples").items()}

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def __len__(self) -> int:
        return len(self.utts)

    def speaker(self, utt: str) -> str:
        return self.utt2spk.get(utt, utt.split("_")[0])

    def load(self, utt: str, streams: list[str] | None = None) -> dict[str, np.ndarray]:
        """Streams of one utterance; ``wav`` comes back as float32 in [-1, 1]."""
        out = {}
        for s in streams or self.streams:
            value = self._scp[s][utt]
            if s == "wav":
                rate, data = value
                if rate != self.sample_rate:
                    raise ValueError(f"{self.path}/wav.scp: {utt} has rate {rate}, dump says {self.sample_rate}")
                out[s] = (data.astype(np.float32) / 32768.0) if data.dtype == np.int16 else data.astype(np.float32)
            else:
                out[s] = np.array(value, dtype=np.float32)  # a writable copy
        return out


def refuse_pipes(scp: Path) -> None:
    """Raise ValueError if a script file holds a shell command (``cmd |``), which
    ``kaldiio.load_scp`` would run when the entry is read: feature tables are read only
    from archives and files (wav.scp pipes run only in ``vocoder extract --allow-pipes``)."""
    with open(scp, encoding="utf-8", errors="surrogateescape") as f:
        for n, line in enumerate(f, start=1):
            parts = line.split(maxsplit=1)
            if len(parts) == 2 and parts[1].rstrip().endswith("|"):
                raise ValueError(f"{scp}:{n}: entry '{parts[0]}' is a shell command ({parts[1].strip()!r}); "
                                 "feature tables are not run as commands, write the features to an ark first")


def _read_kv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def write_meta(path: Path, cfg: FeatureConfig, **extra) -> None:
    """Write feats.yaml atomically."""
    from ..outputs import write_atomic

    text = yaml.safe_dump({"version": FEATURE_FORMAT_VERSION, "features": cfg.to_dict(), **extra}, sort_keys=False)
    write_atomic(path, text, what="the dump's settings")
