"""`vocoder` with slow writes and steps, so that a test's SIGKILL lands mid-write.

    python tests/robustness/slow_cli.py ARGS...     (the arguments of `vocoder`)

Only the timing changes: every byte still goes through the package's own code. Settings
come from the environment (unset: no slowdown):

SLOW_WRITE_S   seconds each write of a hidden temporary output file (``.NAME.*.tmp``,
               opened by vocoder.outputs.write_atomic: checkpoints, wavs, tables) takes;
               the bytes go out in 8 flushed pieces, so a kill leaves a partial file
SLOW_STEP_S    seconds added to each training step
SLOW_UTTS      comma-separated utterance ids whose audio takes SLOW_UTT_S seconds to read
               in `vocoder extract`, each only once the file SLOW_AFTER (if set) exists:
               so one job is still running when another is done
STARTED_FILE   created at the first training step
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path


class _SlowFile:
    """A binary file whose writes go out in flushed pieces, ``seconds`` per write."""

    PIECES = 8

    def __init__(self, f, seconds: float):
        self._f, self._seconds = f, seconds

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        for i in range(self.PIECES):
            self._f.write(view[n * i // self.PIECES: n * (i + 1) // self.PIECES])
            self._f.flush()
            time.sleep(self._seconds / self.PIECES)
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def _patch() -> None:
    write_s = float(os.environ.get("SLOW_WRITE_S") or 0)
    if write_s > 0:
        fdopen = os.fdopen

        def slow_fdopen(fd, mode="r", *args, **kwargs):
            f = fdopen(fd, mode, *args, **kwargs)
            try:
                name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                return f
            if "w" in mode and "b" in mode and name.startswith(".") and name.endswith(".tmp"):
                return _SlowFile(f, write_s)
            return f

        os.fdopen = slow_fdopen

    step_s = float(os.environ.get("SLOW_STEP_S") or 0)
    started = os.environ.get("STARTED_FILE")
    if step_s > 0 or started:
        from vocoder.training.trainer import Trainer

        forward_loss = Trainer._forward_loss

        def slow_forward_loss(self, *args, **kwargs):
            if started and not os.path.exists(started):
                Path(started).touch()
            time.sleep(step_s)
            return forward_loss(self, *args, **kwargs)

        Trainer._forward_loss = slow_forward_loss

    slow_utts = {u for u in (os.environ.get("SLOW_UTTS") or "").split(",") if u}
    if slow_utts:
        from vocoder.cli import extract

        utt_s = float(os.environ.get("SLOW_UTT_S") or 1.0)
        after = os.environ.get("SLOW_AFTER")
        read_wav_entry = extract.read_wav_entry

        def slow_read(value, **kwargs):
            if (kwargs.get("name") or "").split(" ")[0] in slow_utts:
                while after and not os.path.exists(after):
                    time.sleep(0.01)
                time.sleep(utt_s)
            return read_wav_entry(value, **kwargs)

        extract.read_wav_entry = slow_read  # forked jobs inherit it


if __name__ == "__main__":
    _patch()
    from vocoder.cli.main import main

    sys.exit(main(sys.argv[1:]))
