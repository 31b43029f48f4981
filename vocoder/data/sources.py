"""Where utterances' audio comes from: audio dirs, Kaldi data dirs, wav.scp tables, files.

``list_audio(path)`` lists the utterances of any of these sources and ``load_item``
reads one (segment cut, optional resampling); ``vocoder evaluate``, ``copy-synth`` and
``report`` share them, so every command accepts the same kinds of REF/HYP inputs.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["AUDIO_EXTENSIONS", "AudioItem", "list_audio", "load_item"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
_ARK_OFFSET = re.compile(r"^.+:\d+(\[[^\]]*\])?$")


@dataclass(frozen=True)
class AudioItem:
    """Where one utterance's audio comes from.

    ``source`` is a file path, a Kaldi pipe (``cmd |``) or an ark offset
    (``file.ark:123``); ``start_s`` / ``end_s`` cut a segment (``end_s`` None: to
    the end). ``error`` is set when the listing already knows the item is bad. A pipe
    is run only if ``allow_pipe`` (``list_audio(..., allow_pipes=True)``, the commands'
    ``--allow-pipes``).
    """

    utt: str
    source: str
    start_s: float = 0.0
    end_s: float | None = None
    error: str | None = None
    allow_pipe: bool = False


def list_audio(path, *, allow_pipes: bool = False) -> dict[str, AudioItem]:
    """Utterances of a directory of audio files, a data dir, a wav.scp or one file.

    - a directory with ``wav.scp``: a Kaldi data dir (``segments`` applied if present);
    - another directory: its audio files (``.wav``, ``.flac``, ...; not recursive),
      keyed by file name without extension;
    - a file named ``*.scp``: a ``wav.scp`` table (relative paths resolve against the
      current directory, else against the table's directory; ``segments`` beside a
      file named ``wav.scp`` is applied);
    - any other file: one utterance keyed by its name without extension.

    A ``wav.scp`` value that is a shell command (``cmd |``) is run when the item is
    loaded only with ``allow_pipes``; otherwise loading it fails with a reason saying so.

    Returns:
        ``{utt: AudioItem}`` in ``LC_ALL=C`` order of the ids.
    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: an empty directory, duplicate ids, a malformed table (naming the
            file and line).
    """
    from .kaldi import c_sorted

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if p.is_dir():
        if (p / "wav.scp").is_file():
            items = _from_scp(p / "wav.scp", allow_pipes)
        else:
            items = {}
            for f in sorted(p.iterdir()):
                if (f.is_file() and not f.name.startswith(".")
                        and f.suffix.lower() in AUDIO_EXTENSIONS):
                    if f.stem in items:
                        raise ValueError(f"{path}: two audio files for utterance '{f.stem}' "
                                         f"({Path(items[f.stem].source).name}, {f.name})")
                    items[f.stem] = AudioItem(f.stem, str(f))
            if not items:
                raise ValueError(f"{path}: directory holds neither wav.scp nor audio files "
                                 f"({', '.join(AUDIO_EXTENSIONS)})")
    elif p.suffix == ".scp":
        items = _from_scp(p, allow_pipes)
    else:
        items = {p.stem: AudioItem(p.stem, str(p))}
    return {u: items[u] for u in c_sorted(items)}


def _from_scp(scp: Path, allow_pipes: bool) -> dict[str, AudioItem]:
    from .kaldi import read_segments, read_table

    table = {key: _resolve(value, scp.parent) for key, value in read_table(scp).items()}
    segments_file = scp.parent / "segments"
    if scp.name != "wav.scp" or not segments_file.is_file():
        return {utt: AudioItem(utt, source, allow_pipe=allow_pipes) for utt, source in table.items()}
    items = {}
    for utt, seg in read_segments(segments_file).items():
        if seg.recording in table:
            items[utt] = AudioItem(utt, table[seg.recording], seg.start_s, seg.end_s, allow_pipe=allow_pipes)
        else:
            items[utt] = AudioItem(utt, "", error=f"recording '{seg.recording}' of "
                                   f"{segments_file} is not in {scp}")
    return items


def _is_audio_file(path) -> bool:
    p = Path(path)
    return p.is_file() and p.suffix != ".scp"


def _resolve(value: str, base: Path) -> str:
    value = value.strip()
    if value.endswith("|") or os.path.isabs(value) or os.path.exists(value):
        return value
    if (base / value).exists():
        return str(base / value)
    return value


def load_item(item: AudioItem, *, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read one utterance as mono float32, cut to its segment, resampled if asked.

    Returns:
        (audio, sample_rate).
    Raises:
        ValueError (``AudioError``): missing, unreadable or invalid audio, a segment
            outside the recording, a pipe without ``item.allow_pipe`` (not run); the
            message names the source.
    """
    from ..audio import AudioError, check_audio, load_audio

    if item.error:
        raise AudioError(item.error)
    source = item.source
    if source.rstrip().endswith("|") and not item.allow_pipe:
        raise AudioError(f"{item.utt}: wav.scp entry is a shell pipe ({source!r}); "
                         "it is run only with --allow-pipes")
    if source.endswith("|") or (_ARK_OFFSET.match(source) and not os.path.exists(source)):
        import kaldiio

        try:
            loaded = kaldiio.load_mat(source)
        except Exception as exc:
            raise AudioError(f"{source}: cannot read audio ({_first_line(exc)})") from None
        if not (isinstance(loaded, tuple) and len(loaded) == 2):
            raise AudioError(f"{source}: holds a matrix, not audio")
        sr, data = int(loaded[0]), loaded[1]
        x = check_audio(data, name=source, mix_channels=True)
        if item.start_s > 0 or item.end_s is not None:
            start = int(round(item.start_s * sr))
            end = x.size if item.end_s is None else min(x.size, int(round(item.end_s * sr)))
            if start >= end:
                raise AudioError(f"{source}: segment {item.start_s}-{item.end_s} s of '{item.utt}' "
                                 f"lies outside the recording ({x.size / sr:.3f} s)")
            x = x[start:end]
    elif item.start_s > 0 or item.end_s is not None:
        # Seek and read the segment only, not the whole recording.
        try:
            x, sr = load_audio(source, start_s=item.start_s, end_s=item.end_s)
        except AudioError as exc:
            if "outside the recording" not in str(exc):
                raise
            raise AudioError(f"{exc} (segment of '{item.utt}')") from None
    else:
        x, sr = load_audio(source)
    if sample_rate is not None and sr != sample_rate:
        import soxr

        x = soxr.resample(x, sr, sample_rate).astype(np.float32)
        sr = int(sample_rate)
    return np.ascontiguousarray(x, dtype=np.float32), int(sr)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
