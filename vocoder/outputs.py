"""Writing output files so that a crash or a full disk never leaves one that looks complete.

Every output a later stage takes as finished (checkpoints, wavs, feature tables and
completion markers, JSON summaries) is written with :func:`write_atomic`: the bytes go to
a hidden temporary file in the same directory (``.NAME.XXXXXXXX.tmp``), are flushed to
disk and the file is renamed to ``NAME``. A reader sees the old file, or none, or the
whole new one; a process killed mid-write leaves only the temporary file, which no
reader takes for an output and :func:`remove_stale_temps` clears on the next run. A
failed write (disk full, file-size limit, unwritable directory) raises
:class:`OutputError`, whose message names the file and the cause, and removes the
temporary file.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["OutputError", "remove_stale_temps", "write_atomic"]


class OutputError(OSError):
    """An output could not be written: ``str()`` is ``"PATH: cannot write WHAT (cause)"``.

    ``errno`` and ``filename`` are those of the failed write (e.g. ``errno.ENOSPC``).
    """

    def __init__(self, message: str, errno: int | None = None, filename: str | None = None):
        super().__init__(message)
        self.message = message
        self.errno = errno
        self.filename = filename

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # crosses process boundaries (extract's job pool) intact
        return type(self), (self.message, self.errno, self.filename)

    @classmethod
    def wrap(cls, path, what: str, exc: BaseException) -> OutputError:
        """The error for writing ``what`` to ``path`` that failed with ``exc``."""
        if isinstance(exc, OutputError):
            return exc
        cause = getattr(exc, "strerror", None)
        if not cause:
            text = str(exc).strip().splitlines()
            cause = text[0] if text else type(exc).__name__
        return cls(f"{path}: cannot write {what} ({cause})", getattr(exc, "errno", None), str(path))


def write_atomic(path, data, *, what: str = "file") -> Path:
    """Write ``data`` (bytes, or str as UTF-8) to ``path`` atomically, creating parent dirs.

    Temporary file in the same directory, ``fsync``, then ``os.replace``; the file gets
    the usual permissions (``0o666`` less the umask). ``what`` names the output in errors.

    Raises:
        OutputError: the directory or the file could not be written; no temporary file
            is left behind.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError.wrap(path, what, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError.wrap(path, what, exc) from None
        raise
    return path


def remove_stale_temps(directory, pattern: str = "*") -> list[Path]:
    """Delete the temporary files :func:`write_atomic` left in ``directory`` for outputs
    named like ``pattern`` (a glob, e.g. ``"step_*.pt"``) when a process was killed mid-write.

    Call it only where one process writes the directory (a rerun of a stage).
    Returns the files removed.
    """
    d = Path(directory)
    if not d.is_dir():
        return []
    removed = []
    for p in d.glob(f".{pattern}.*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def _umask() -> int:
    try:  # Linux: read it, rather than set and restore it under other threads
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask
