"""Entry point of the ``vocoder`` command.

Each subcommand lives in ``vocoder/cli/<name>.py`` and defines ``add_arguments(parser)``
and ``run(args) -> int``. Failures exit non-zero with a one-line cause on stderr
(``vocoder <cmd>: error: ...``; a file that cannot be written or read as
``PATH: reason``); ``--debug`` (or ``VOCODER_DEBUG=1``) shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from ..version import __version__

# name -> (module, one-line help). Modules are imported only when their parser is built.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "extract": ("vocoder.cli.extract", "data dir -> feature dump (f0, vuv, loudness, mel, ...)"),
    "stats": ("vocoder.cli.stats", "feature dump -> normalisation and per-speaker statistics"),
    "train": ("vocoder.cli.train", "feature dump + config -> experiment dir with checkpoints"),
    "synth": ("vocoder.cli.synth", "checkpoint + feature dump or mel feats.scp -> wavs"),
    "convert": ("vocoder.cli.convert", "checkpoint + audio + target speaker/instrument -> converted wavs"),
    "stream": ("vocoder.cli.stream", "checkpoint + one utterance -> audio, block by block as a real-time host"),
    "export": ("vocoder.cli.export", "checkpoint -> TorchScript streaming model (runs without this package)"),
    "export-ir": ("vocoder.cli.export_ir", "checkpoint -> impulse response wav of its learned reverb"),
    "evaluate": ("vocoder.cli.evaluate", "metrics of HYP wavs against REF wavs"),
    "evaluate-conversion": ("vocoder.cli.evaluate_conversion",
                            "metrics of voice conversion / timbre transfer outputs (MCD, f0, classifier)"),
    "report": ("vocoder.cli.report", "HTML report with audio, spectrograms, f0 and metrics"),
    "copy-synth": ("vocoder.cli.copy_synth", "WORLD analysis/synthesis baseline of a data dir"),
    "resynth": ("vocoder.cli.resynth", "one file: WORLD analysis, differentiable resynthesis (+ refinement)"),
}


class CommandError(Exception):
    """A failure to report as one line on stderr with a non-zero exit status."""


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for name, (module, text) in SUBCOMMANDS.items():
        spec = importlib.util.find_spec(module)
        if spec is not None:
            found[name] = (module, text)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vocoder",
        description="ddsp-vocoder: differentiable DSP vocoder for speech, voice conversion and music.",
    )
    parser.add_argument("--version", action="version", version=f"ddsp-vocoder {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, text) in _available().items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=text, description=(mod.__doc__ or text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    debug = args.debug or os.environ.get("VOCODER_DEBUG") == "1"
    try:
        rc = args._run(args)
    except KeyboardInterrupt:
        print(f"vocoder {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one-line cause; traceback with --debug
        if debug:
            raise
        print(f"vocoder {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return int(rc or 0)


def _one_line(exc: Exception) -> str:
    """The cause of a failure in one line; an ``OSError`` from the system (unwritable or
    missing path, disk full) as ``PATH: reason`` rather than ``[Errno N] reason: 'PATH'``."""
    from ..outputs import OutputError

    if isinstance(exc, OSError) and not isinstance(exc, OutputError) and exc.filename and exc.strerror:
        where = os.fsdecode(exc.filename)
        if exc.filename2:
            where += f" -> {os.fsdecode(exc.filename2)}"
        return f"{where}: {exc.strerror}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
