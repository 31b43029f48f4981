"""Audio I/O and input validation shared by analysis, training and the CLI.

Every function that takes audio from outside validates it with :func:`check_audio`,
which raises :class:`AudioError` (a ``ValueError``) whose message names the input
and the problem, e.g. ``"utt1.wav: audio contains 12 NaN/inf samples"``.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

__all__ = ["AudioError", "check_audio", "load_audio", "save_audio"]


class AudioError(ValueError):
    """Invalid audio input; the message names the input and the cause."""


def check_audio(
    audio,
    *,
    name: str = "audio",
    min_samples: int = 1,
    mix_channels: bool = False,
    allow_silent: bool = True,
) -> np.ndarray:
    """Validate a mono signal and return it as a contiguous float numpy array.

    Args:
        audio: (samples,) array-like or tensor. A 2-D array is multichannel, read as
            (samples, channels) if its second axis is the shorter one, else
            (channels, samples).
        name: how the input is named in error messages (usually a file path or key).
        min_samples: shortest accepted length.
        mix_channels: average multichannel input to mono instead of rejecting it.
        allow_silent: accept an all-zero signal.
    Returns:
        (samples,) float32 or float64 numpy array (float64 input stays float64).
    Raises:
        AudioError: empty, too short, non-finite, multichannel (unless mixed),
            non-numeric, or silent when ``allow_silent`` is False.
    """
    if hasattr(audio, "detach"):
        audio = audio.detach().cpu().numpy()
    x = np.asarray(audio)
    if x.dtype.kind not in "fiu":
        raise AudioError(f"{name}: audio must be numeric, got dtype {x.dtype}")
    if x.ndim == 2:
        if 1 in x.shape:
            x = x.reshape(-1)
        elif not mix_channels:
            raise AudioError(
                f"{name}: multichannel audio of shape {x.shape}; pass a mono signal "
                "or ask for the channels to be averaged (mix_channels=True)"
            )
        else:
            axis = 1 if x.shape[1] < x.shape[0] else 0
            x = x.mean(axis=axis)
    elif x.ndim != 1:
        raise AudioError(f"{name}: expected 1-D mono audio, got shape {x.shape}")
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = x.astype(np.float32) / float(max(abs(info.min), info.max))
    elif x.dtype != np.float64:
        x = x.astype(np.float32)
    if x.size == 0:
        raise AudioError(f"{name}: audio is empty (0 samples)")
    if x.size < min_samples:
        raise AudioError(f"{name}: audio too short: {x.size} samples, need at least {min_samples}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise AudioError(f"{name}: audio contains {int(bad.sum())} NaN/inf samples")
    if not allow_silent and not np.any(x):
        raise AudioError(f"{name}: audio is all silent (every sample is zero)")
    return np.ascontiguousarray(x)


def load_audio(
    path,
    *,
    sample_rate: int | None = None,
    mix_channels: bool = True,
    min_samples: int = 1,
    start_s: float | None = None,
    end_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read an audio file (or one region of it) as mono float32, resampled (soxr) to
    ``sample_rate`` if given.

    With ``start_s`` / ``end_s`` only the samples ``[round(start_s * sr), round(end_s * sr))``
    are read: the file is opened, the reader seeks to the start and reads that many
    frames, so a segment of a recording of any length costs memory for the segment only
    (a format that cannot seek is read whole and cut).

    Args:
        path: the audio file.
        sample_rate: resample to this rate (Hz); None keeps the file's rate.
        mix_channels: average several channels to mono (else they are an error).
        min_samples: shortest accepted result, after resampling.
        start_s: start of the region in seconds (None: 0).
        end_s: end of the region in seconds (None or negative: the end of the file; past
            the end: cut at the end).
    Returns:
        (audio, sample_rate): (samples,) float32 array and its sample rate.
    Raises:
        AudioError: the file is missing, unreadable, empty, holds invalid samples, or the
            region lies outside the recording.
    """
    import soundfile as sf

    path = str(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    region = start_s is not None or (end_s is not None and end_s >= 0)
    try:
        # A name that is not valid UTF-8 (undecodable bytes as surrogates) goes as bytes.
        with sf.SoundFile(path if _utf8(path) else os.fsencode(path)) as f:
            sr = f.samplerate
            if region:
                a, b = _region(start_s, end_s, sr=sr, n=f.frames, path=path)
                if f.seekable():
                    f.seek(a)
                    data = f.read(b - a, dtype="float32", always_2d=True)
                else:
                    data = f.read(dtype="float32", always_2d=True)[a:b]
            else:
                data = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises several types for bad files
        raise AudioError(f"{path}: cannot read audio ({_first_line(exc)})") from None
    data = data.T  # (channels, samples)
    if data.shape[0] > 1 and not mix_channels:
        raise AudioError(f"{path}: {data.shape[0]} channels; expected mono")
    x = check_audio(data.mean(axis=0), name=path, min_samples=1)
    if sample_rate is not None and sr != sample_rate:
        import soxr

        x = soxr.resample(x, sr, sample_rate).astype(np.float32)
        sr = sample_rate
    if x.size < min_samples:
        raise AudioError(f"{path}: audio too short: {x.size} samples, need at least {min_samples}")
    return x, int(sr)


def save_audio(path, audio, sample_rate: int, *, subtype: str = "PCM_16") -> None:
    """Write mono audio atomically (temporary file + rename), creating parent dirs.

    Samples outside [-1, 1] are clipped for integer subtypes. The format follows the
    file extension (.wav, .flac, ...).

    Raises:
        OutputError (an ``OSError``): the file could not be written (disk full, unwritable
            directory); nothing is left under ``path``.
    """
    import soundfile as sf

    from .outputs import write_atomic

    x = check_audio(audio, name=str(path))
    if subtype.startswith("PCM"):
        x = np.clip(x, -1.0, 1.0)
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    # Encoded in memory, then written by write_atomic: a full disk is an OutputError naming
    # the file and the cause (libsndfile says only "System error."), and a process killed
    # mid-write leaves a hidden .tmp file, never a truncated PATH.
    encoded = io.BytesIO()
    sf.write(encoded, x, int(sample_rate), subtype=subtype, format=fmt)
    write_atomic(path, encoded.getbuffer(), what="audio")


def _region(start_s: float | None, end_s: float | None, *, sr: int, n: int, path: str) -> tuple[int, int]:
    """Sample range ``[a, b)`` of the region start_s..end_s of a recording of n samples."""
    a = round((start_s or 0.0) * sr)
    b = n if end_s is None or end_s < 0 else min(n, round(end_s * sr))
    if a < 0 or a >= n or b <= a:
        raise AudioError(f"{path}: segment {start_s}-{end_s} s lies outside the recording "
                         f"({n / sr:.2f} s)")
    return a, b


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
