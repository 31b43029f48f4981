#!/usr/bin/env python3
"""Kaldi-style data directories (with segments) for the URMP dataset.

    local/data_prep.py [options] CORPUS_DIR DATA_DIR

CORPUS_DIR is URMP's Dataset/ directory: one folder per piece, NN_Title_inst1_inst2...
(01_Jupiter_vn_vc/ ... 44_K515_vn_vn_va_va_vc/), each holding per-instrument tracks
AuSep_<track>_<inst>_<NN>_<Title>.wav (48 kHz mono), pitch annotations
F0s_<track>_<inst>_<NN>_<Title>.txt (lines '<time s> <f0 Hz>', 0 where the part
rests), note annotations Notes_*.txt, the mix AuMix_<folder>.wav, the score
Sco_<folder>.mid and the video Vid_<folder>.mp4. Only the AuSep tracks (and their F0s,
if present) are used; other folders (Supplementary_Files/) and files are ignored. The
instrument of a track is read from its file name (it is the folder name's word for
the track in every piece but one, where the folder names the wrong instrument).

Output: DATA_DIR/{train,dev,eval}/{wav.scp,segments,utt2spk,spk2utt,reco2dur} and
DATA_DIR/pieces (one line per piece used: '<folder> <split> <track>:<inst> ...').
  recording  <instrument>_<NN>_<Title>_<track>, e.g. violin_01_Jupiter_1; wav.scp
             maps it to the AuSep file (absolute path); reco2dur holds its length (s)
  utterance  <recording>_<k>, k = 001, 002, ... in time order; segments gives its
             recording, start and end (s); utt2spk its instrument, the "speaker"
             (violin, viola, cello, doublebass, flute, oboe, clarinet, saxophone,
             bassoon, trumpet, horn, trombone, tuba)
Every table is sorted in LC_ALL=C order. Running it again rewrites the same files.

Segments: each track (minutes long) is cut into pieces of --min_seconds to
--max_seconds (default 4-10 s): a cut goes --target_seconds (7 s) after the previous
one, moved to the middle of a rest (a run of at least 0.1 s of f0 = 0 in the track's
F0s annotation) within --snap_seconds (2 s) of that point when there is one, else made
there (a fixed window); the last cut leaves at least --min_seconds. A track shorter
than --max_seconds is one segment. Segments in which the F0s annotation marks less
than --min_voiced (20 %) of the time as played are left out (the part rests there)
and counted. Without an F0s file the windows are fixed and all kept.

Split, by piece: no piece (and no recording) is in two splits. Pieces that share a
title (35_Rondeau_vn_vn_va_db, 36_Rondeau_vn_vn_va_vc, 37_Rondeau_fl_vn_va_cl) reuse
the same takes, so all pieces of one title go to the same split. Only tracks of
--instruments are kept (default "vn vc fl tpt"; "all" for every instrument), and
pieces without such a track are not used. Default rule, deterministic: for eval, then
dev, each instrument (in --instruments order) not yet in the split gets the title
group holding it with the fewest tracks of the chosen instruments (ties: the
highest piece number), provided every instrument of that group keeps a group for
train; an instrument in too few pieces is left out of eval (or dev), with a note.
The rest is train.
--eval_pieces / --dev_pieces "NN NN ..." give the pieces by number instead (their
title groups follow them).
"""
from __future__ import annotations

import argparse
import bisect
import itertools
import math
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PROG = "data_prep.py"
INSTRUMENTS = {
    "vn": "violin", "va": "viola", "vc": "cello", "db": "doublebass",
    "fl": "flute", "ob": "oboe", "cl": "clarinet", "sax": "saxophone", "bn": "bassoon",
    "tpt": "trumpet", "hn": "horn", "tbn": "trombone", "tba": "tuba",
}
PIECE_DIR = re.compile(r"^(\d{2})_([^_\s]+)_(\S+)$")
AUSEP = re.compile(r"^AuSep_(\d+)_([a-z]+)_(\d{2})_(\S+)\.wav$")
MIN_REST_S = 0.1
SPLITS = ("train", "dev", "eval")


class PrepError(Exception):
    """A problem with the corpus or the options; the message says which."""


@dataclass
class Track:
    piece: str          # folder name, e.g. 01_Jupiter_vn_vc
    number: int         # piece number NN
    title: str
    track: int
    code: str           # vn, vc, ...
    wav: Path
    f0s: Path | None
    duration: float = 0.0

    @property
    def instrument(self) -> str:
        return INSTRUMENTS[self.code]

    @property
    def recording(self) -> str:
        title = re.sub(r"[^A-Za-z0-9]", "", self.title) or "piece"
        return f"{self.instrument}_{self.number:02d}_{title}_{self.track}"


@dataclass
class Group:
    """Pieces of one title: they share takes and go to one split."""

    title: str
    pieces: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)

    @property
    def codes(self) -> set[str]:
        return {t.code for t in self.tracks}


def log(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr)


def scan_corpus(corpus: Path, codes: list[str]) -> tuple[list[Track], int]:
    """The AuSep tracks of the chosen instruments (sorted) and the number of pieces seen."""
    import soundfile as sf

    pieces = sorted(p for p in corpus.iterdir() if p.is_dir() and PIECE_DIR.match(p.name))
    for p in sorted(corpus.iterdir()):
        if p.is_dir() and p.name[:2].isdigit() and p not in pieces:
            log(f"note: {p} is not named like a piece (NN_Title_inst...); skipped")
    if not pieces:
        raise PrepError(f"no piece folders (NN_Title_inst..., e.g. 01_Jupiter_vn_vc) in {corpus}; "
                        "give the URMP Dataset/ directory")
    tracks = []
    for piece in pieces:
        number, title, _ = PIECE_DIR.match(piece.name).groups()
        found = 0
        for wav in sorted(piece.glob("AuSep_*.wav")):
            m = AUSEP.match(wav.name)
            if m is None:
                log(f"note: {wav} does not look like AuSep_<track>_<inst>_<NN>_<Title>.wav; skipped")
                continue
            track, code, nn, file_title = m.groups()
            if nn != number or file_title != title:
                log(f"note: {wav} names piece {nn}_{file_title}, its folder {number}_{title}: taken as "
                    f"piece {number}_{title}")
            if code not in INSTRUMENTS:
                raise PrepError(f"{wav}: unknown instrument code '{code}' (known: {' '.join(INSTRUMENTS)})")
            found += 1
            if code not in codes:
                continue
            f0s = wav.with_name(f"F0s_{track}_{code}_{nn}_{file_title}.txt")
            try:
                info = sf.info(str(wav))
            except Exception as exc:  # noqa: BLE001 -- soundfile raises several types
                raise PrepError(f"{wav}: cannot read the audio header ({str(exc).strip().splitlines()[0]})") from None
            if info.channels != 1:
                log(f"note: {wav} has {info.channels} channels (URMP tracks are mono); they are averaged")
            tracks.append(Track(piece.name, int(number), title, int(track), code, wav.resolve(),
                                f0s if f0s.is_file() else None, info.frames / info.samplerate))
        if not found:
            log(f"note: {piece} holds no AuSep_*.wav track; skipped")
    return tracks, len(pieces)


def read_f0s(path: Path) -> list[tuple[float, float]]:
    """(time s, f0 Hz) rows of an F0s annotation; fields split on any whitespace."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                t, f0 = float(fields[0]), float(fields[1])
            except (ValueError, IndexError):
                raise PrepError(f"{path}:{lineno}: expected '<time> <f0>', got {line.strip()!r}") from None
            rows.append((t, f0))
    return rows


@dataclass
class Annotation:
    """What a track's F0s file says: rest middles and a running count of played frames."""

    rests: list[float]
    times: list[float]
    played_before: list[int]    # played_before[i]: frames with f0 > 0 among the first i

    def voiced_fraction(self, start: float, end: float) -> float:
        """Fraction of the annotation frames in [start, end) that are played (1 if none)."""
        i, j = bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end)
        return (self.played_before[j] - self.played_before[i]) / (j - i) if j > i else 1.0


def annotate(rows: list[tuple[float, float]]) -> Annotation:
    """Rests (f0 = 0 for at least MIN_REST_S; their middles) and played frames of F0s rows."""
    rows = sorted(rows)
    times = [t for t, _ in rows]
    played_before = [0]
    for _, f0 in rows:
        played_before.append(played_before[-1] + (f0 > 0))
    hop = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.01
    rests = []
    run_start = None
    for t, f0 in rows + [(times[-1] + hop if times else 0.0, 1.0)]:
        if f0 <= 0 and run_start is None:
            run_start = t
        elif f0 > 0 and run_start is not None:
            if t - run_start >= MIN_REST_S:
                rests.append(0.5 * (run_start + t))
            run_start = None
    return Annotation(rests, times, played_before)


def cut_track(duration: float, rests: list[float], *, min_s: float, max_s: float, target_s: float,
              snap_s: float) -> list[tuple[float, float]]:
    """Segments (start, end) covering [0, duration], each min_s..max_s long (see the module doc)."""
    if duration <= max_s:
        return [(0.0, duration)]
    cuts = [0.0]
    while duration - cuts[-1] > max_s:
        start = cuts[-1]
        lo, hi = start + min_s, min(start + max_s, duration - min_s)
        ideal = min(max(start + target_s, lo), hi)
        near = [r for r in rests if lo <= r <= hi and abs(r - ideal) <= snap_s]
        cuts.append(min(near, key=lambda r: (abs(r - ideal), r)) if near else ideal)
    cuts.append(duration)
    return list(itertools.pairwise(cuts))


def group_tracks(tracks: list[Track]) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for t in tracks:
        g = groups.setdefault(t.title, Group(t.title))
        if t.piece not in g.pieces:
            g.pieces.append(t.piece)
            g.numbers.append(t.number)
        g.tracks.append(t)
    return groups


def assign_given(groups: dict[str, Group], eval_pieces: list[int], dev_pieces: list[int]) -> dict[str, str]:
    """Title -> split for the pieces given by number (their title groups follow them)."""
    split: dict[str, str] = {}
    by_number = {n: g for g in groups.values() for n in g.numbers}
    for name, numbers in (("eval", eval_pieces), ("dev", dev_pieces)):
        for n in numbers:
            g = by_number.get(n)
            if g is None:
                raise PrepError(f"--{name}_pieces: piece {n:02d} has no track of the chosen instruments "
                                f"(pieces that have: {' '.join(f'{m:02d}' for m in sorted(by_number))})")
            if split.get(g.title, name) != name:
                raise PrepError(f"piece {n:02d} is given for both eval and dev "
                                f"(pieces {' '.join(g.pieces)} share its title and takes)")
            others = [p for p, m in zip(g.pieces, g.numbers) if m not in numbers]
            if others and g.title not in split:
                log(f"note: {' '.join(others)} share the title of piece {n:02d} (and its takes): also in {name}")
            split[g.title] = name
    for title in groups:
        split.setdefault(title, "train")
    return split


def assign_auto(groups: dict[str, Group], codes: list[str]) -> dict[str, str]:
    """Title -> split by the default rule (module doc)."""
    split: dict[str, str] = {}
    free = {c: {g.title for g in groups.values() if c in g.codes} for c in codes}
    for name in ("eval", "dev"):
        covered: set[str] = set()
        for code in codes:
            if code in covered:
                continue
            # every instrument of a group taken keeps at least one group for train
            candidates = [groups[t] for t in free[code]
                          if all(len(free[c] - {t}) >= 1 for c in groups[t].codes)]
            if not candidates:
                log(f"note: {INSTRUMENTS[code]} ({code}) is in too few pieces ({len(free[code])} title "
                    f"group(s) left) to have one in {name}: it has no {name} data")
                continue
            best = min(candidates, key=lambda g: (len(g.tracks), -max(g.numbers)))
            split[best.title] = name
            covered |= best.codes
            for titles in free.values():
                titles.discard(best.title)
    for title in groups:
        split.setdefault(title, "train")
    return split


def write_dir(out: Path, rows: list[tuple[Track, str, float, float]]) -> None:
    from vocoder.data.kaldi import utt2spk_to_spk2utt, write_table

    out.mkdir(parents=True, exist_ok=True)
    recs = {t.recording: t for t, *_ in rows}
    write_table(out / "wav.scp", {r: str(t.wav) for r, t in recs.items()})
    write_table(out / "reco2dur", {r: f"{t.duration:.3f}" for r, t in recs.items()})
    write_table(out / "segments", {u: f"{t.recording} {a:.3f} {b:.3f}" for t, u, a, b in rows})
    utt2spk = {u: t.instrument for t, u, _, _ in rows}
    write_table(out / "utt2spk", utt2spk)
    write_table(out / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    # Kaldi's feature-less tables only: an old feats.scp or text would not match any more
    for stale in ("text", "utt2dur", "utt2num_frames", "feats.scp"):
        (out / stale).unlink(missing_ok=True)


def floor3(x: float) -> float:
    return math.floor(x * 1000.0) / 1000.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus_dir", help="URMP's Dataset/ directory (holds 01_Jupiter_vn_vc/ ...)")
    p.add_argument("data_dir", help="output: DATA_DIR/{train,dev,eval}")
    p.add_argument("--instruments", default="vn vc fl tpt",
                   help='instrument codes to keep, or "all" (default "vn vc fl tpt")')
    p.add_argument("--min_seconds", "--min-seconds", type=float, default=4.0)
    p.add_argument("--max_seconds", "--max-seconds", type=float, default=10.0)
    p.add_argument("--target_seconds", "--target-seconds", type=float, default=7.0)
    p.add_argument("--snap_seconds", "--snap-seconds", type=float, default=2.0)
    p.add_argument("--min_voiced", "--min-voiced", type=float, default=0.2,
                   help="drop segments the F0s annotation marks as played for less than this fraction")
    p.add_argument("--eval_pieces", "--eval-pieces", default="", help='piece numbers, e.g. "2 11"')
    p.add_argument("--dev_pieces", "--dev-pieces", default="", help='piece numbers, e.g. "1"')
    args = p.parse_args(argv)
    try:
        return run(args)
    except PrepError as exc:
        log(str(exc))
        return 1


def parse_numbers(text: str, option: str) -> list[int]:
    try:
        return [int(w) for w in text.replace(",", " ").split()]
    except ValueError:
        raise PrepError(f"{option}: expected piece numbers, e.g. \"2 11\", got {text!r}") from None


def run(args) -> int:
    if not 0 < args.min_seconds <= args.target_seconds <= args.max_seconds or args.max_seconds < 2 * args.min_seconds:
        raise PrepError("segment lengths: need 0 < --min_seconds <= --target_seconds <= --max_seconds "
                        "and --max_seconds >= 2 x --min_seconds")
    words = args.instruments.split()
    codes = list(INSTRUMENTS) if words == ["all"] else list(dict.fromkeys(words))
    unknown = [c for c in codes if c not in INSTRUMENTS]
    if not codes or unknown:
        raise PrepError(f"--instruments: unknown code(s) {' '.join(unknown) or '(none given)'}; "
                        f"known: {' '.join(INSTRUMENTS)} (or all)")
    corpus = Path(args.corpus_dir)
    if not corpus.is_dir():
        raise PrepError(f"corpus directory '{corpus}' not found (unpack URMP with ./run.sh --stage -1, "
                        "or give --corpus_dir DIR, the Dataset/ dir holding 01_Jupiter_vn_vc/ ...)")
    corpus = corpus.resolve()
    if re.search(r"\s", str(corpus)):
        raise PrepError(f"corpus path '{corpus}' contains whitespace, which wav.scp cannot hold")
    tracks, n_pieces = scan_corpus(corpus, codes)
    if not tracks:
        raise PrepError(f"no AuSep track of {' '.join(codes)} in the {n_pieces} pieces of {corpus}")
    for c in codes:
        if not any(t.code == c for t in tracks):
            log(f"warning: no track of {INSTRUMENTS[c]} ({c}) in {corpus}")
    groups = group_tracks(tracks)
    eval_pieces = parse_numbers(args.eval_pieces, "--eval_pieces")
    dev_pieces = parse_numbers(args.dev_pieces, "--dev_pieces")
    if eval_pieces or dev_pieces:
        split = assign_given(groups, eval_pieces, dev_pieces)
    else:
        split = assign_auto(groups, [c for c in codes if any(t.code == c for t in tracks)])

    rows: dict[str, list] = {s: [] for s in SPLITS}
    dropped = defaultdict(int)
    for t in tracks:
        note = annotate(read_f0s(t.f0s)) if t.f0s is not None else None
        if t.duration < 0.5:
            log(f"note: {t.wav} is only {t.duration:.2f} s long; skipped")
            continue
        segs = cut_track(t.duration, note.rests if note else [], min_s=args.min_seconds, max_s=args.max_seconds,
                         target_s=args.target_seconds, snap_s=args.snap_seconds)
        for k, (a, b) in enumerate(segs, 1):
            a, b = floor3(a), floor3(b)
            if note is not None and note.voiced_fraction(a, b) < args.min_voiced:
                dropped[t.instrument] += 1
                continue
            rows[split[t.title]].append((t, f"{t.recording}_{k:03d}", a, b))

    data = Path(args.data_dir)
    for s in SPLITS:
        if not rows[s]:
            raise PrepError(f"no {s} segments (pieces: {len(groups)} title group(s) with the chosen instruments; "
                            "see the notes above, or give --eval_pieces / --dev_pieces)")
    for s in SPLITS:
        write_dir(data / s, rows[s])
        hours = sum(b - a for _, _, a, b in rows[s]) / 3600
        per_inst = defaultdict(int)
        for t, *_ in rows[s]:
            per_inst[t.instrument] += 1
        counts = ", ".join(f"{k} {v}" for k, v in sorted(per_inst.items()))
        log(f"{data / s}: {len(rows[s])} segments ({hours:.2f} h) of {len({t.recording for t, *_ in rows[s]})} "
            f"tracks: {counts}")
    for inst, n in sorted(dropped.items()):
        log(f"{inst}: {n} segment(s) left out: the part rests there (F0s annotation)")
    lines = []
    for g in groups.values():
        for piece in g.pieces:
            insts = " ".join(f"{t.track}:{t.code}" for t in g.tracks if t.piece == piece)
            lines.append(f"{piece} {split[g.title]} {insts}\n")
    lines.sort()
    (data / "pieces").write_text("".join(lines))
    for s in ("eval", "dev"):
        log(f"{s} pieces: {' '.join(l.split()[0] for l in lines if l.split()[1] == s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
