"""Kaldi data directories: read, write, validate, split, subset and fix.

A data dir holds plain-text tables, one ``<key> <value>`` per line, sorted by key in
``LC_ALL=C`` (byte) order, keys unique:

==============  =================================================================
``wav.scp``     ``<utt> <path>`` (``<recording> <path>`` when ``segments`` exists);
                a value ending in ``|`` is a shell command (a "pipe") writing audio
``utt2spk``     ``<utt> <speaker>``
``spk2utt``     ``<speaker> <utt> <utt> ...`` (derived from ``utt2spk``)
``segments``    ``<utt> <recording> <start-seconds> <end-seconds>`` (optional)
``text``        ``<utt> <transcription>`` (optional)
``utt2*``,      other per-utterance tables (``utt2dur``, ``feats.scp``, ...);
``*.scp``       ``spk2*`` / ``cmvn.scp`` are per speaker, ``reco2*`` per recording
==============  =================================================================

Python API::

    read_table(path) -> dict                 write_table(path, mapping)  # atomic, sorted
    utt2spk_to_spk2utt(utt2spk) -> dict      spk2utt_to_utt2spk(spk2utt) -> dict
    validate_data_dir(path) -> [problems]    check_data_dir(path)  # raises DataDirError
    read_data_dir(path) -> DataDir           read_segments(path) -> {utt: Segment}
    split_data_dir(src, n) -> [dirs]         subset_data_dir(src, out, utts=...) -> out
    fix_data_dir(path) -> {reason: [utts]}

Command line (exit status 1 and the cause on stderr on failure)::

    python -m vocoder.data.kaldi validate [--need-text] [--allow-pipes] DIR
    python -m vocoder.data.kaldi split [--out OUT] DIR N
    python -m vocoder.data.kaldi subset (--utt-list F | --spk-list F | --first N | --last N) SRC OUT
    python -m vocoder.data.kaldi fix DIR
    python -m vocoder.data.kaldi utt2spk-to-spk2utt [IN [OUT]]   # '-' or absent: stdin/stdout
    python -m vocoder.data.kaldi spk2utt-to-utt2spk [IN [OUT]]

Only the standard library is used, so the recipe scripts can call this module with any
``python3``.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Union

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "TableError",
    "DataDirError",
    "Segment",
    "DataDir",
    "c_sorted",
    "read_table",
    "write_table",
    "read_segments",
    "utt2spk_to_spk2utt",
    "spk2utt_to_utt2spk",
    "validate_data_dir",
    "check_data_dir",
    "read_data_dir",
    "split_data_dir",
    "subset_data_dir",
    "fix_data_dir",
    "main",
]

# Files are read and written as UTF-8; undecodable bytes survive a round trip and sort
# by their byte value, like `LC_ALL=C sort`.
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
# At most this many lines of one kind of problem are named per file.
_MAX_REPORTED = 5


class TableError(ValueError):
    """A malformed Kaldi table; the message starts with ``file:line:``."""


class DataDirError(ValueError):
    """An invalid data dir. ``problems`` lists every problem found, one line each."""

    def __init__(self, path: PathLike, problems: Sequence[str]):
        self.path = Path(path)
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) if self.problems else f"{path}: invalid data dir")


class Segment(NamedTuple):
    """One line of ``segments``: the utterance is ``recording[start_s:end_s]``."""

    recording: str
    start_s: float
    end_s: float


@dataclass
class DataDir:
    """The tables of a data dir, read by :func:`read_data_dir`.

    ``wav_scp`` is keyed by utterance, or by recording when ``segments`` is not None.
    """

    path: Path
    wav_scp: dict[str, str]
    utt2spk: dict[str, str]
    spk2utt: dict[str, list[str]]
    segments: dict[str, Segment] | None = None
    text: dict[str, str] | None = None

    @property
    def utt_ids(self) -> list[str]:
        """Utterance ids in ``LC_ALL=C`` order."""
        return list(self.utt2spk)


def _c_key(key: str) -> bytes:
    return key.encode(_ENCODING, _ERRORS)


def c_sorted(keys: Iterable[str]) -> list[str]:
    """``keys`` sorted in ``LC_ALL=C`` (byte) order, the order Kaldi tables use."""
    return sorted(keys, key=_c_key)


# --------------------------------------------------------------------------------------
# Reading and writing tables


@dataclass
class _Entry:
    lineno: int
    key: str
    value: str


class _Problems:
    """Collects problem lines, naming at most a few lines of each kind per file."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, msg: str) -> None:
        self.lines.append(msg)

    def add_capped(self, where: str, kind: str, msg: str) -> None:
        n = self._counts.get((where, kind), 0) + 1
        self._counts[(where, kind)] = n
        if n <= _MAX_REPORTED:
            self.lines.append(msg)

    def finish(self) -> list[str]:
        for (where, kind), n in self._counts.items():
            if n > _MAX_REPORTED:
                self.lines.append(f"{where}: ... and {n - _MAX_REPORTED} more lines with {kind}")
        return self.lines


def _scan(lines: Iterable[str], name: str, problems: _Problems) -> list[_Entry]:
    """Parse table lines into entries; record layout problems (one per line at most).

    Lines that have a key but no value are kept (with an empty value) so that they are
    not reported a second time as missing keys.
    """
    entries = []
    for lineno, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\n") else raw
        if line.endswith("\r"):
            problems.add_capped(name, "Windows line endings",
                                f"{name}:{lineno}: Windows line ending (\\r); convert with dos2unix")
            line = line[:-1]
        if not line.strip():
            problems.add_capped(name, "empty lines", f"{name}:{lineno}: empty line")
            continue
        if line[0].isspace():
            problems.add_capped(name, "leading whitespace",
                                f"{name}:{lineno}: line starts with whitespace")
        parts = line.split(None, 1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if not value:
            problems.add_capped(name, "no value", f"{name}:{lineno}: key '{key}' has no value")
        entries.append(_Entry(lineno, key, value))
    return entries


def _check_keys(entries: Sequence[_Entry], name: str, problems: _Problems, *,
                check_order: bool = True) -> None:
    """Report duplicate keys and (if ``check_order``) the first key out of LC_ALL=C order."""
    first_line: dict[str, int] = {}
    prev: _Entry | None = None
    order_reported = False
    for e in entries:
        if e.key in first_line:
            problems.add_capped(name, "duplicate keys",
                                f"{name}:{e.lineno}: duplicate key '{e.key}' "
                                f"(also on line {first_line[e.key]})")
        else:
            first_line[e.key] = e.lineno
        if check_order and prev is not None and not order_reported and _c_key(e.key) < _c_key(prev.key):
            problems.add(f"{name}:{e.lineno}: key '{e.key}' is out of LC_ALL=C order (it follows "
                         f"'{prev.key}' on line {prev.lineno}); sort with utils/fix_data_dir.sh")
            order_reported = True
        prev = e


def _open_lines(path: PathLike) -> list[str]:
    with open(path, encoding=_ENCODING, errors=_ERRORS, newline="\n") as f:
        return f.readlines()


def _parse_strict(lines: Iterable[str], name: str) -> dict[str, str]:
    problems = _Problems()
    entries = _scan(lines, name, problems)
    _check_keys(entries, name, problems, check_order=False)
    if problems.lines:
        raise TableError(problems.lines[0])
    return {e.key: e.value for e in entries}


def read_table(path: PathLike) -> dict[str, str]:
    """Read a Kaldi table ``<key> <value...>`` into a dict in file order.

    The value is the rest of the line with surrounding whitespace removed. Order is not
    checked here (see :func:`validate_data_dir`).

    Raises:
        TableError: on an empty line, a key without a value or a duplicate key; the
            message names the file and line.
        OSError: if the file cannot be read.
    """
    return _parse_strict(_open_lines(path), str(path))


def _format_value(key: str, value: str | Sequence[str]) -> str:
    text = value if isinstance(value, str) else " ".join(value)
    text = text.strip()
    if not key or any(c.isspace() for c in key):
        raise ValueError(f"table key {key!r} is empty or contains whitespace")
    if not text:
        raise ValueError(f"table key '{key}' has an empty value")
    if "\n" in text or "\r" in text:
        raise ValueError(f"value of table key '{key}' contains a line break")
    return text


def _write_text_atomic(path: Path, text: str) -> None:
    from ..outputs import write_atomic

    # temp file + fsync + rename; a failure is an OutputError naming the file
    write_atomic(path, text.encode(_ENCODING, _ERRORS), what="table")


def write_table(path: PathLike, mapping: Mapping[str, str | Sequence[str]]) -> None:
    """Write ``mapping`` as a Kaldi table sorted by key in ``LC_ALL=C`` order.

    A sequence value (e.g. the utterances of a ``spk2utt`` line) is joined with spaces.
    The file is written to a temporary name and renamed, so readers never see half a
    table.

    Raises:
        ValueError: for a key that is empty or contains whitespace, or an empty value.
    """
    lines = [f"{key} {_format_value(key, mapping[key])}\n" for key in c_sorted(mapping)]
    _write_text_atomic(Path(path), "".join(lines))


def _parse_segment(value: str) -> Segment:
    """Parse ``<recording> <start> <end>``; raise ValueError with the reason."""
    fields = value.split()
    if len(fields) != 3:
        raise ValueError(f"expected '<utt> <recording> <start> <end>', got {len(fields) + 1} fields")
    rec, start_text, end_text = fields
    try:
        start, end = float(start_text), float(end_text)
    except ValueError:
        raise ValueError(f"times '{start_text}' '{end_text}' are not numbers") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"times '{start_text}' '{end_text}' are not finite")
    if start < 0:
        raise ValueError(f"start time {start_text} is negative")
    if start >= end:
        hint = " (Kaldi's end time -1 is not supported: give the end time)" if end == -1 else ""
        raise ValueError(f"start time {start_text} is not before end time {end_text}{hint}")
    return Segment(rec, start, end)


def read_segments(path: PathLike) -> dict[str, Segment]:
    """Read a ``segments`` file into ``{utt: Segment(recording, start_s, end_s)}``.

    Raises:
        TableError: on a malformed line (naming file and line).
    """
    table = read_table(path)
    out = {}
    for lineno, (utt, value) in enumerate(table.items(), 1):
        try:
            out[utt] = _parse_segment(value)
        except ValueError as e:
            # read_table rejects empty lines, so entry numbers are line numbers.
            raise TableError(f"{path}:{lineno}: '{utt}': {e}") from None
    return out


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert ``{utt: speaker}`` into ``{speaker: [utt, ...]}``, both in LC_ALL=C order."""
    spk2utt: dict[str, list[str]] = {}
    for utt in c_sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in c_sorted(spk2utt)}


def spk2utt_to_utt2spk(spk2utt: Mapping[str, str | Sequence[str]]) -> dict[str, str]:
    """Invert ``{speaker: [utt, ...]}`` (or space-separated utts) into ``{utt: speaker}``.

    Raises:
        ValueError: if an utterance is listed under two speakers.
    """
    utt2spk: dict[str, str] = {}
    for spk, utts in spk2utt.items():
        for utt in utts.split() if isinstance(utts, str) else utts:
            if utt in utt2spk and utt2spk[utt] != spk:
                raise ValueError(f"utterance '{utt}' is listed under speakers "
                                 f"'{utt2spk[utt]}' and '{spk}'")
            utt2spk[utt] = spk
    return {utt: utt2spk[utt] for utt in c_sorted(utt2spk)}


# --------------------------------------------------------------------------------------
# Validation


def _table_kind(name: str, has_segments: bool) -> str | None:
    """What the keys of table ``name`` are: 'utt', 'spk', 'reco', or None (not a table)."""
    if name == "wav.scp":
        return "reco" if has_segments else "utt"
    if name in ("utt2spk", "segments", "text") or name.startswith("utt2"):
        return "utt"
    if name == "spk2utt":
        return "spk"
    if name.startswith("spk2") or name == "cmvn.scp":
        return "spk"
    if name.startswith("reco2"):
        return "reco"
    if name.endswith(".scp"):
        return "utt"
    return None


def _table_names(d: Path) -> list[str]:
    has_segments = (d / "segments").is_file()
    names = [p.name for p in d.iterdir()
             if p.is_file() and not p.name.startswith(".") and _table_kind(p.name, has_segments)]
    return c_sorted(names)


def _examples(keys: Sequence[str], lines: Mapping[str, int] | None, where: str = "line") -> str:
    shown = []
    for key in keys[:_MAX_REPORTED]:
        shown.append(f"'{key}' ({where} {lines[key]})" if lines and key in lines else f"'{key}'")
    more = f", ... ({len(keys) - _MAX_REPORTED} more)" if len(keys) > _MAX_REPORTED else ""
    return ", ".join(shown) + more


def _compare_keys(problems: _Problems, *, name: str, entries: Sequence[_Entry], what: str,
                  ref_name: str, ref_lines: Mapping[str, int], check_missing: bool = True) -> None:
    """Report keys of ``name`` that are not in ``ref_name`` and (optionally) the reverse."""
    lines = {e.key: e.lineno for e in entries}
    extra = [e.key for e in entries if e.key not in ref_lines]
    extra = list(dict.fromkeys(extra))
    if extra:
        s = "" if len(extra) == 1 else "s"
        problems.add(f"{name}:{lines[extra[0]]}: {len(extra)} {what}{s} not in {ref_name}: "
                     f"{_examples(extra, lines)}")
    if check_missing:
        missing = [k for k in ref_lines if k not in lines]
        if missing:
            s = "" if len(missing) == 1 else "s"
            problems.add(f"{name}: lacks {len(missing)} {what}{s} of {ref_name}: "
                         f"{_examples(missing, ref_lines, f'{Path(ref_name).name} line')}")


def validate_data_dir(path: PathLike, *, need_text: bool = False,
                      allow_pipes: bool = False) -> list[str]:
    """Check a data dir; return its problems, one line each (empty when valid).

    Each problem names the file and, where there is one, the line
    (``data/train/utt2spk:7: duplicate key 'u3' (also on line 6)``). Checked:
    required files (``wav.scp``, ``utt2spk``, ``spk2utt``; ``text`` if ``need_text``);
    in every table, empty lines, keys without a value, duplicate keys and the first key
    out of ``LC_ALL=C`` order; utterances of ``utt2spk`` against ``wav.scp`` (or
    ``segments``) and every other per-utterance table (``text``, ``utt2dur``,
    ``feats.scp``, ...); ``spk2utt`` against ``utt2spk``; per-speaker and per-recording
    tables; ``segments`` lines (4 fields, numeric times, ``0 <= start < end``, known
    recording); ``wav.scp`` commands ending in ``|`` unless ``allow_pipes``.

    Args:
        path: the data dir.
        need_text: require a ``text`` file.
        allow_pipes: accept ``wav.scp`` values that are shell commands (``cmd |``).
    Returns:
        list of problem lines; empty if the dir is valid.
    """
    d = Path(path)
    if not d.is_dir():
        return [f"{d}: not a directory"]
    problems = _Problems()
    required = ["wav.scp", "utt2spk", "spk2utt"] + (["text"] if need_text else [])
    for name in required:
        if not (d / name).is_file():
            hint = (" (generate it with utils/utt2spk_to_spk2utt.sh or utils/fix_data_dir.sh)"
                    if name == "spk2utt" else "")
            problems.add(f"{d / name}: missing (required){hint}")

    tables: dict[str, list[_Entry]] = {}
    for name in _table_names(d):
        where = str(d / name)
        try:
            lines = _open_lines(d / name)
        except OSError as e:
            problems.add(f"{where}: cannot read: {e.strerror or e}")
            continue
        tables[name] = _scan(lines, where, problems)
        _check_keys(tables[name], where, problems)

    def keylines(name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in tables.get(name, []):
            out.setdefault(e.key, e.lineno)
        return out

    p = lambda name: str(d / name)  # noqa: E731
    has_segments = "segments" in tables

    if "wav.scp" in tables and not allow_pipes:
        for e in tables["wav.scp"]:
            if e.value.endswith("|"):
                problems.add_capped(p("wav.scp"), "pipe commands",
                                    f"{p('wav.scp')}:{e.lineno}: '{e.key}' is a command ending in '|'; "
                                    "pipes are not accepted here (allow_pipes=True / --allow-pipes)")

    if has_segments:
        recordings = keylines("wav.scp") if "wav.scp" in tables else None
        for e in tables["segments"]:
            if not e.value:
                continue  # already reported
            try:
                seg = _parse_segment(e.value)
            except ValueError as err:
                problems.add_capped(p("segments"), "bad segments",
                                    f"{p('segments')}:{e.lineno}: '{e.key}': {err}")
                continue
            if recordings is not None and seg.recording not in recordings:
                problems.add_capped(p("segments"), "unknown recordings",
                                    f"{p('segments')}:{e.lineno}: '{e.key}': recording "
                                    f"'{seg.recording}' not in wav.scp")

    if "utt2spk" in tables:
        utts = keylines("utt2spk")
        utt_source = "segments" if has_segments else "wav.scp"
        if utt_source in tables:
            _compare_keys(problems, name=p("utt2spk"), entries=tables["utt2spk"],
                          what="utterance", ref_name=p(utt_source), ref_lines=keylines(utt_source))
        for name, entries in tables.items():
            if name in ("utt2spk", utt_source) or _table_kind(name, has_segments) != "utt":
                continue
            _compare_keys(problems, name=p(name), entries=entries, what="utterance",
                          ref_name=p("utt2spk"), ref_lines=utts)

        utt2spk = {e.key: e.value for e in tables["utt2spk"] if e.value}
        expected = utt2spk_to_spk2utt(utt2spk)
        spk_lines: dict[str, int] = {}
        for e in tables["utt2spk"]:
            if e.value:
                spk_lines.setdefault(e.value, e.lineno)
        if "spk2utt" in tables:
            _check_spk2utt(problems, p("spk2utt"), tables["spk2utt"], expected, p("utt2spk"), spk_lines)
        for name, entries in tables.items():
            if name != "spk2utt" and _table_kind(name, has_segments) == "spk":
                _compare_keys(problems, name=p(name), entries=entries, what="speaker",
                              ref_name=p("utt2spk"), ref_lines=spk_lines)

    if has_segments and "wav.scp" in tables:
        recordings = keylines("wav.scp")
        for name, entries in tables.items():
            if name != "wav.scp" and _table_kind(name, True) == "reco":
                _compare_keys(problems, name=p(name), entries=entries, what="recording",
                              ref_name=p("wav.scp"), ref_lines=recordings)
    return problems.finish()


def _check_spk2utt(problems: _Problems, name: str, entries: Sequence[_Entry],
                   expected: Mapping[str, list[str]], utt2spk_name: str,
                   spk_lines: Mapping[str, int]) -> None:
    hint = "; regenerate it with utils/utt2spk_to_spk2utt.sh or utils/fix_data_dir.sh"
    seen = set()
    for e in entries:
        if e.key in seen or not e.value:
            continue  # duplicates and empty values are reported already
        seen.add(e.key)
        got = e.value.split()
        want = expected.get(e.key)
        if want is None:
            problems.add_capped(name, "inconsistent speakers",
                                f"{name}:{e.lineno}: speaker '{e.key}' has no utterances in "
                                f"{utt2spk_name}{hint}")
        elif got != want:
            want_set, got_set = set(want), set(got)
            extra = [u for u in got if u not in want_set]
            missing = [u for u in want if u not in got_set]
            if extra or missing:
                detail = []
                if extra:
                    detail.append(f"lists {_examples(extra, None)} not given to it by utt2spk")
                if missing:
                    detail.append(f"lacks {_examples(missing, None)}")
                why = " and ".join(detail)
            else:
                why = "lists its utterances out of LC_ALL=C order or more than once"
            problems.add_capped(name, "inconsistent speakers",
                                f"{name}:{e.lineno}: speaker '{e.key}' {why}{hint}")
    absent = [spk for spk in expected if spk not in seen]
    if absent:
        s = "" if len(absent) == 1 else "s"
        problems.add(f"{name}: lacks {len(absent)} speaker{s} of {utt2spk_name}: "
                     f"{_examples(absent, spk_lines, 'utt2spk line')}{hint}")


def check_data_dir(path: PathLike, *, need_text: bool = False, allow_pipes: bool = False) -> None:
    """Like :func:`validate_data_dir`, but raise if there is any problem.

    Raises:
        DataDirError: with ``.problems``; its message lists them, one per line, each
            naming the file and line.
    """
    problems = validate_data_dir(path, need_text=need_text, allow_pipes=allow_pipes)
    if problems:
        raise DataDirError(path, problems)


def read_data_dir(path: PathLike, *, need_text: bool = False, allow_pipes: bool = False,
                  check: bool = True) -> DataDir:
    """Read the main tables of a data dir (validated first unless ``check=False``).

    Raises:
        DataDirError: if ``check`` and the dir is invalid.
    """
    d = Path(path)
    if check:
        check_data_dir(d, need_text=need_text, allow_pipes=allow_pipes)
    utt2spk = read_table(d / "utt2spk")
    spk2utt = ({k: v.split() for k, v in read_table(d / "spk2utt").items()}
               if (d / "spk2utt").is_file() else utt2spk_to_spk2utt(utt2spk))
    return DataDir(
        path=d,
        wav_scp=read_table(d / "wav.scp"),
        utt2spk=utt2spk,
        spk2utt=spk2utt,
        segments=read_segments(d / "segments") if (d / "segments").is_file() else None,
        text=read_table(d / "text") if (d / "text").is_file() else None,
    )


# --------------------------------------------------------------------------------------
# Split, subset, fix


def _read_all_tables(d: Path) -> dict[str, dict[str, str]]:
    return {name: read_table(d / name) for name in _table_names(d)}


def _write_subset(tables: Mapping[str, Mapping[str, str]], out: Path, utts: Sequence[str]) -> None:
    """Write the rows of every table that belong to ``utts`` into data dir ``out``."""
    has_segments = "segments" in tables
    keep = {"utt": set(utts)}
    keep["spk"] = {tables["utt2spk"][u] for u in utts}
    keep["reco"] = ({tables["segments"][u].split()[0] for u in utts} if has_segments else keep["utt"])
    out.mkdir(parents=True, exist_ok=True)
    written = {"spk2utt"}
    for name, table in tables.items():
        if name == "spk2utt":
            continue
        kind = _table_kind(name, has_segments)
        assert kind is not None
        write_table(out / name, {k: v for k, v in table.items() if k in keep[kind]})
        written.add(name)
    write_table(out / "spk2utt", utt2spk_to_spk2utt({u: tables["utt2spk"][u] for u in utts}))
    for name in _table_names(out):  # tables left over from an earlier run
        if name not in written:
            (out / name).unlink()


def split_data_dir(src: PathLike, n: int, *, out: PathLike | None = None) -> list[Path]:
    """Split a data dir by utterance into ``n`` data dirs ``{out}/1 .. {out}/n``.

    Utterances (``LC_ALL=C`` order) go in contiguous chunks whose sizes differ by at
    most one. Each part holds the rows of every table that belong to its utterances
    (speakers, recordings) and a regenerated ``spk2utt``, so it is a valid data dir.

    Args:
        src: a valid data dir (``wav.scp`` pipes allowed).
        n: number of parts, 1 <= n <= number of utterances.
        out: where the parts go; default ``{src}/split{n}``.
    Returns:
        the ``n`` part dirs in order.
    Raises:
        DataDirError: if ``src`` is not valid.
        ValueError: if ``n`` is out of range.
    """
    src = Path(src)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"number of parts must be a positive integer, got {n!r}")
    check_data_dir(src, allow_pipes=True)
    tables = _read_all_tables(src)
    utts = c_sorted(tables["utt2spk"])
    if n > len(utts):
        raise ValueError(f"cannot split {src} ({len(utts)} utterances) into {n} parts")
    out = Path(out) if out is not None else src / f"split{n}"
    base, extra = divmod(len(utts), n)
    parts, begin = [], 0
    for i in range(n):
        end = begin + base + (1 if i < extra else 0)
        part = out / str(i + 1)
        _write_subset(tables, part, utts[begin:end])
        parts.append(part)
        begin = end
    for child in out.iterdir():  # parts of an earlier, larger split into the same dir
        if child.is_dir() and child.name.isdigit() and int(child.name) > n:
            shutil.rmtree(child)
    return parts


def subset_data_dir(src: PathLike, out: PathLike, *, utts: Iterable[str] | None = None,
                    speakers: Iterable[str] | None = None, first: int | None = None,
                    last: int | None = None) -> Path:
    """Write a data dir with some of the utterances of ``src``; give exactly one selector.

    Args:
        src: a valid data dir.
        out: the new data dir (created; tables already there are replaced).
        utts: these utterance ids.
        speakers: all utterances of these speakers.
        first: the first N utterances in LC_ALL=C order.
        last: the last N utterances.
    Returns:
        ``out`` as a Path.
    Raises:
        DataDirError: if ``src`` is not valid.
        ValueError: for unknown ids, a count out of range, or not exactly one selector.
    """
    src, out = Path(src), Path(out)
    given = [x is not None for x in (utts, speakers, first, last)]
    if sum(given) != 1:
        raise ValueError("give exactly one of utts, speakers, first, last")
    if out.resolve() == src.resolve():
        raise ValueError(f"output dir {out} is the source dir")
    check_data_dir(src, allow_pipes=True)
    tables = _read_all_tables(src)
    all_utts = c_sorted(tables["utt2spk"])
    if utts is not None or speakers is not None:
        wanted = list(utts if utts is not None else speakers)  # type: ignore[arg-type]
        known = tables["utt2spk"] if utts is not None else set(tables["utt2spk"].values())
        unknown = [x for x in wanted if x not in known]
        if unknown:
            what = "utterance" if utts is not None else "speaker"
            raise ValueError(f"{len(unknown)} {what}(s) not in {src / 'utt2spk'}: "
                             f"{_examples(unknown, None)}")
        chosen = set(wanted)
        selected = [u for u in all_utts
                    if (u if utts is not None else tables["utt2spk"][u]) in chosen]
    else:
        count = first if first is not None else last
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= len(all_utts):
            raise ValueError(f"count must be in 1..{len(all_utts)}, got {count!r}")
        selected = all_utts[:count] if first is not None else all_utts[-count:]
    if not selected:
        raise ValueError("the subset is empty")
    _write_subset(tables, out, selected)
    return out


def _scan_for_fix(path: Path, name: str, log: Callable[[str], None]) -> dict[str, str]:
    """Read a table leniently, dropping empty lines and repeated identical lines."""
    problems = _Problems()
    entries = _scan(_open_lines(path / name), str(path / name), problems)
    table: dict[str, str] = {}
    lines: dict[str, int] = {}
    for e in entries:
        if e.key in table and table[e.key] != e.value:
            raise DataDirError(path, [f"{path / name}:{e.lineno}: key '{e.key}' is also on line "
                                      f"{lines[e.key]} with another value; cannot tell which to "
                                      "keep, fix it by hand"])
        if e.key in table:
            log(f"fix_data_dir: {path / name}:{e.lineno}: dropped repeated line of '{e.key}'")
            continue
        table[e.key], lines[e.key] = e.value, e.lineno
    for line in problems.lines:
        if "empty line" in line:
            log(f"fix_data_dir: {line}: dropped")
    return table


def fix_data_dir(path: PathLike, *, log: Callable[[str], None] | None = print) -> dict[str, list[str]]:
    """Make a data dir consistent in place, as Kaldi's ``utils/fix_data_dir.sh`` does.

    Sorts every table, drops empty lines and repeated identical lines, drops each
    utterance that is missing from any per-utterance table (or has no value there, a
    bad ``segments`` line, or a speaker / recording missing from a per-speaker /
    per-recording table), keeps only the recordings still used, and regenerates
    ``spk2utt``. The original files are first copied to ``{path}/.backup/``.

    Args:
        path: the data dir.
        log: called with one line per thing done or dropped (None: silent).
    Returns:
        ``{reason: [utt, ...]}`` for the dropped utterances.
    Raises:
        DataDirError: if ``wav.scp`` or ``utt2spk`` is missing, a key repeats with
            different values, or no utterance would be left; nothing is changed then.
    """
    d = Path(path)
    say: Callable[[str], None] = log if log is not None else (lambda _msg: None)
    missing = [n for n in ("wav.scp", "utt2spk") if not (d / n).is_file()]
    if missing:
        raise DataDirError(d, [f"{d / n}: missing (required)" for n in missing])
    names = [n for n in _table_names(d) if n != "spk2utt"]
    raw = {name: _scan_for_fix(d, name, say) for name in names}
    has_segments = "segments" in raw

    dropped: dict[str, list[str]] = {}

    def drop(utt: str, reason: str) -> None:
        dropped.setdefault(reason, []).append(utt)

    candidates = c_sorted(raw["utt2spk"])
    segments: dict[str, Segment] = {}
    if has_segments:
        for utt, value in raw["segments"].items():
            try:
                segments[utt] = _parse_segment(value)
            except ValueError:
                pass
    # The audio source first, so that an utterance without audio is reported as such.
    source = "segments" if has_segments else "wav.scp"
    utt_tables = [source] + [n for n in raw if n not in (source, "utt2spk")
                             and _table_kind(n, has_segments) == "utt"]
    kept = []
    for utt in candidates:
        reason = None
        spk = raw["utt2spk"][utt]
        if not spk:
            reason = "no speaker in utt2spk"
        for name in utt_tables:
            table = raw[name]
            if reason:
                break
            if utt not in table:
                reason = f"not in {name}"
            elif not table[utt]:
                reason = f"no value in {name}"
            elif name == "segments" and utt not in segments:
                reason = "bad line in segments"
        if not reason:
            reco = segments[utt].recording if has_segments else utt
            for name, table in raw.items():
                kind = _table_kind(name, has_segments)
                key = spk if kind == "spk" else reco if kind == "reco" else None
                if key is not None and not table.get(key):
                    what = "speaker" if kind == "spk" else "recording"
                    reason = f"{what} not in {name}"
                    break
        if reason:
            drop(utt, reason)
        else:
            kept.append(utt)
    if not kept:
        raise DataDirError(d, [f"{d}: no utterance would be left; nothing changed ("
                               + "; ".join(f"{len(v)} {k}" for k, v in dropped.items()) + ")"])

    backup = d / ".backup"
    backup.mkdir(exist_ok=True)
    for name in _table_names(d):
        shutil.copy2(d / name, backup / name)
    tables = {name: {k: v for k, v in table.items() if v} for name, table in raw.items()}
    _write_subset(tables, d, kept)

    n_dropped = sum(len(v) for v in dropped.values())
    for reason, utts in dropped.items():
        say(f"fix_data_dir: {d}: dropped {len(utts)} utterance(s) {reason}: {_examples(utts, None)}")
    # Rows that belonged to no utterance of utt2spk (not counted as dropped utterances).
    dropped_utts = {u for utts in dropped.values() for u in utts}
    keep = {"utt": set(kept), "spk": {raw["utt2spk"][u] for u in kept}}
    keep["reco"] = {segments[u].recording for u in kept} if has_segments else keep["utt"]
    orphan_kind = {"utt": "utterances not in utt2spk", "spk": "speakers with no utterance left",
                   "reco": "recordings with no utterance left"}
    for name, table in raw.items():
        kind = _table_kind(name, has_segments)
        assert kind is not None
        extra = [k for k in table if k not in keep[kind] and k not in dropped_utts]
        if extra:
            say(f"fix_data_dir: {d / name}: removed {len(extra)} line(s) of {orphan_kind[kind]}: "
                f"{_examples(extra, None)}")
    say(f"fix_data_dir: {d}: kept {len(kept)} of {len(candidates)} utterances "
        f"({n_dropped} dropped); originals in {backup}")
    return dropped


# --------------------------------------------------------------------------------------
# Command line


def _read_stream(name: str) -> tuple[list[str], str]:
    if name == "-":
        stdin = open(sys.stdin.fileno(), encoding=_ENCODING, errors=_ERRORS, newline="\n", closefd=False)
        return stdin.readlines(), "<stdin>"
    return _open_lines(name), name


def _emit_table(table: Mapping[str, str | Sequence[str]], out: str) -> None:
    if out == "-":
        for key in c_sorted(table):
            sys.stdout.write(f"{key} {_format_value(key, table[key])}\n")
    else:
        write_table(out, table)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vocoder.data.kaldi",
                                     description="Kaldi data dir tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a data dir; list its problems")
    p.add_argument("--need-text", action="store_true", help="require a text file")
    p.add_argument("--allow-pipes", action="store_true", help="accept 'cmd |' entries in wav.scp")
    p.add_argument("dir")

    p = sub.add_parser("split", help="split a data dir by utterance into DIR/splitN/{1..N}")
    p.add_argument("--out", help="output dir (default DIR/splitN)")
    p.add_argument("dir")
    p.add_argument("n", type=int)

    p = sub.add_parser("subset", help="copy some utterances of SRC into OUT")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--utt-list", help="file with utterance ids (first field of each line)")
    g.add_argument("--spk-list", help="file with speaker ids (first field of each line)")
    g.add_argument("--first", type=int, help="the first N utterances")
    g.add_argument("--last", type=int, help="the last N utterances")
    p.add_argument("src")
    p.add_argument("out")

    p = sub.add_parser("fix", help="sort tables, drop inconsistent utterances, remake spk2utt")
    p.add_argument("dir")

    for name, what in (("utt2spk-to-spk2utt", "utt2spk into spk2utt"),
                       ("spk2utt-to-utt2spk", "spk2utt into utt2spk")):
        p = sub.add_parser(name, help=f"turn {what} ('-' or absent: stdin / stdout)")
        p.add_argument("input", nargs="?", default="-")
        p.add_argument("output", nargs="?", default="-")
    return parser


def _read_id_list(path: str) -> list[str]:
    lines, _ = _read_stream(path)
    return [line.split()[0] for line in lines if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 failure)."""
    args = _build_parser().parse_args(argv)
    cmd = args.command
    try:
        if cmd == "validate":
            problems = validate_data_dir(args.dir, need_text=args.need_text,
                                         allow_pipes=args.allow_pipes)
            if problems:
                for line in problems:
                    print(f"validate_data_dir: {line}", file=sys.stderr)
                return 1
            utt2spk = read_table(Path(args.dir) / "utt2spk")
            print(f"validate_data_dir: {args.dir}: OK ({len(utt2spk)} utterances, "
                  f"{len(set(utt2spk.values()))} speakers)")
        elif cmd == "split":
            parts = split_data_dir(args.dir, args.n, out=args.out)
            print(f"split_data: {args.dir}: {args.n} parts in {parts[0].parent}")
        elif cmd == "subset":
            if args.utt_list or args.spk_list:
                ids = _read_id_list(args.utt_list or args.spk_list)
                key = "utts" if args.utt_list else "speakers"
                subset_data_dir(args.src, args.out, **{key: ids})
            else:
                subset_data_dir(args.src, args.out, first=args.first, last=args.last)
            print(f"subset_data_dir: wrote {args.out}")
        elif cmd == "fix":
            fix_data_dir(args.dir)
        elif cmd == "utt2spk-to-spk2utt":
            lines, name = _read_stream(args.input)
            _emit_table(utt2spk_to_spk2utt(_parse_strict(lines, name)), args.output)
        elif cmd == "spk2utt-to-utt2spk":
            lines, name = _read_stream(args.input)
            _emit_table(spk2utt_to_utt2spk(_parse_strict(lines, name)), args.output)
    except DataDirError as e:
        for line in e.problems:
            print(f"{cmd}: {line}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:
        msg = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.filename else str(e)
        print(f"{cmd}: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
