#!/usr/bin/env python3
"""Write the --pairs file of `vocoder evaluate-conversion` for a parallel eval data dir.

    utils/make_vc_pairs.py [--speakers "spk1 spk2 ..."] [--f0-shifts] [--out PAIRS] DATA_DIR WAV_DIR

DATA_DIR is a Kaldi data dir (wav.scp, utt2spk, optional text) whose utterance ids are
<speaker>_<sentence> (the speaker as in utt2spk; e.g. kal_s045, bdl_arctic_b0508,
p225_001). For every utterance of a source speaker and every other speaker that
recorded the same sentence, one line (sorted, LC_ALL=C):

    <src>_to_<tgt>_<sentence> WAV_DIR/<src>_to_<tgt>/<utt>.wav <source wav> <src> <tgt> <target wav>

i.e. the converted file where `vocoder convert ... DATA WAV_DIR/<src>_to_<tgt>` writes
it, the source recording, the two speakers, and the target's recording of the sentence:
the parallel reference of the MCD. With a text table, a target recording whose text
differs from the source's (compared lower-cased, without punctuation) is not taken as
the reference. A source utterance with no parallel recording of a target is left out;
the counts of what was left out go to stderr.

--speakers keeps the pairs among those speakers (spaces or commas; default: every
speaker of DATA_DIR). --f0-shifts appends to each line the f0 shift (semitones) that
`vocoder convert` applied to that utterance, from WAV_DIR/<src>_to_<tgt>/convert.json,
so that evaluate-conversion scores the f0 tracking against the source moved by it (with
`--f0-transform stats` the per-utterance median of the change; the variance scaling of
that transform is left in the tracking error). --out writes the file atomically (default: stdout).
"""
import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

PROG = "make_vc_pairs.py"


class PairsError(Exception):
    pass


def read_table(path: Path, *, required: bool = True) -> dict:
    """<key> <rest of line> per line; blank lines skipped."""
    if not path.is_file():
        if required:
            raise PairsError(f"{path} not found")
        return {}
    table = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            if len(parts) < 2 and path.name != "text":
                raise PairsError(f"{path}:{n}: expected '<key> <value>', got {line.strip()!r}")
            if parts[0] in table:
                raise PairsError(f"{path}:{n}: duplicate key {parts[0]!r}")
            table[parts[0]] = parts[1] if len(parts) > 1 else ""
    return table


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def applied_shifts(record_path: Path) -> dict:
    """utt -> the f0 shift (semitones) `vocoder convert` recorded in its convert.json."""
    import json

    try:
        doc = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PairsError(f"{record_path} not found (--f0-shifts reads the convert.json that "
                         "`vocoder convert` writes next to its wavs)") from None
    except (OSError, ValueError) as exc:
        raise PairsError(f"{record_path}: not readable JSON ({exc})") from None
    utts = doc.get("utterances") if isinstance(doc, dict) else None
    if not isinstance(utts, dict):
        raise PairsError(f"{record_path}: no 'utterances' object (not a convert.json)")
    return {utt: (entry or {}).get("f0_shift_semitones") for utt, entry in utts.items()}


def make_pairs(data_dir: Path, wav_dir: str, speakers=None, *, f0_shifts: bool = False):
    """(lines, notes): the pairs lines, sorted, and what was left out."""
    wav = read_table(data_dir / "wav.scp")
    utt2spk = read_table(data_dir / "utt2spk")
    text = read_table(data_dir / "text", required=False)
    missing = sorted(set(utt2spk) - set(wav))
    if missing:
        raise PairsError(f"{data_dir}/wav.scp lacks {len(missing)} utterance(s) of utt2spk, e.g. {missing[0]!r}")
    all_speakers = sorted(set(utt2spk.values()))
    if speakers:
        unknown = [s for s in speakers if s not in all_speakers]
        if unknown:
            raise PairsError(f"speaker(s) {' '.join(unknown)} not in {data_dir}/utt2spk "
                             f"(it has: {' '.join(all_speakers)})")
        chosen = sorted(set(speakers))
    else:
        chosen = all_speakers
    sentence_of = {}
    for utt, spk in utt2spk.items():
        if not utt.startswith(spk + "_") or len(utt) == len(spk) + 1:
            raise PairsError(f"{data_dir}/utt2spk: utterance id {utt!r} is not <speaker>_<sentence> "
                             f"for its speaker {spk!r}")
        sentence_of[utt] = utt[len(spk) + 1:]
    by_sentence = {(spk, sentence_of[utt]): utt for utt, spk in utt2spk.items()}
    lines, no_reference, text_differs = [], 0, 0
    records: dict = {}
    for utt in sorted(utt2spk):
        src = utt2spk[utt]
        if src not in chosen:
            continue
        sentence = sentence_of[utt]
        for tgt in chosen:
            if tgt == src:
                continue
            ref = by_sentence.get((tgt, sentence))
            if ref is None:
                no_reference += 1
                continue
            if text and utt in text and ref in text and normalise(text[utt]) != normalise(text[ref]):
                text_differs += 1
                continue
            converted = f"{wav_dir}/{src}_to_{tgt}/{utt}.wav"
            line = f"{src}_to_{tgt}_{sentence} {converted} {wav[utt]} {src} {tgt} {wav[ref]}"
            if f0_shifts:
                pair_dir = f"{wav_dir}/{src}_to_{tgt}"
                if pair_dir not in records:
                    records[pair_dir] = applied_shifts(Path(pair_dir) / "convert.json")
                if utt not in records[pair_dir]:
                    raise PairsError(f"{pair_dir}/convert.json has no entry for {utt!r} (not converted yet?)")
                shift = records[pair_dir][utt]
                # No voiced frame, no shift recorded: 0 (the f0 tracking has nothing to score).
                line += f" {0.0 if shift is None else float(shift):.4f}"
            lines.append(line)
    notes = []
    if no_reference:
        notes.append(f"{no_reference} conversion(s) left out: the target did not record the sentence")
    if text_differs:
        notes.append(f"{text_differs} conversion(s) left out: the target's recording with the same "
                     f"sentence id has another text")
    return sorted(lines), notes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", help="eval data dir (wav.scp, utt2spk, optional text)")
    p.add_argument("wav_dir", help="dir holding <src>_to_<tgt>/<utt>.wav (as written in the pairs file)")
    p.add_argument("--speakers", default="", help="pairs among these speakers only (default: all)")
    p.add_argument("--f0-shifts", action="store_true",
                   help="append the f0 shift convert applied to each utterance (from its convert.json)")
    p.add_argument("--out", help="pairs file to write (default: stdout)")
    args = p.parse_args(argv)
    speakers = args.speakers.replace(",", " ").split()
    try:
        lines, notes = make_pairs(Path(args.data_dir), args.wav_dir.rstrip("/"), speakers,
                                   f0_shifts=args.f0_shifts)
    except (PairsError, OSError, UnicodeDecodeError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    if not lines:
        print(f"{PROG}: no pairs: no two of the speakers recorded the same sentence in {args.data_dir}",
              file=sys.stderr)
        return 1
    body = "".join(line + "\n" for line in lines)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, out)
        print(f"{PROG}: {len(lines)} pairs -> {out}", file=sys.stderr)
    else:
        sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
