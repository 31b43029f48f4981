#!/usr/bin/env python3
"""Helper for make_corpus.sh: MIDI phrases, audio clean-up, splits and a summary.

Sub-commands (all deterministic):

  midi OUT_DIR            write OUT_DIR/<instrument>/<instrument>_pNNN.mid
  process RAW_DIR OUT_DIR for every RAW_DIR/**/*.wav write OUT_DIR/<same path>.wav:
                          mono, 16 kHz, silence trimmed to PAD s, peak -3 dBFS, 16-bit
                          PCM rounded to --bits significant bits (default 15)
  splits CORPUS_DIR       write CORPUS_DIR/splits/{train,dev,eval} from the FLAC files
  stats CORPUS_DIR        print durations, peaks, sizes and split counts; exit 1 on a
                          silent or clipped file (``--f0`` adds a WORLD harvest check
                          of the music notes, needs pyworld)

Needs numpy, soundfile and soxr (all dependencies of the vocoder package).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
PEAK_DBFS = -3.0
PAD_S = 0.1
SEED = 20240607
BITS = 15  # significant bits kept in the 16-bit samples (see README: size budget)
MIN_MUSIC_S = 60.0  # seconds of audio per instrument, at least
MUSIC_NOTES_S = 61.0  # seconds of notes written per instrument (release tails add a little)
MAX_BYTES = 10_000_000  # size budget of the committed corpus directory

# name: (GM program, 0-based; lowest MIDI note; highest MIDI note)
INSTRUMENTS = {
    "violin": (40, 55, 88),  # G3-E6
    "flute": (73, 60, 96),  # C4-C7
    "trumpet": (56, 52, 84),  # E3-C6
    "cello": (42, 36, 69),  # C2-A4
}
N_PHRASES = {"train": 12, "dev": 2, "eval": 2}
N_SENTENCES = {"train": 40, "dev": 4, "eval": 4}
SPLITS = ("train", "dev", "eval")

SCALES = (
    (0, 2, 4, 5, 7, 9, 11),  # major
    (0, 2, 3, 5, 7, 8, 10),  # natural minor
    (0, 2, 3, 5, 7, 8, 11),  # harmonic minor
    (0, 2, 3, 5, 7, 9, 10),  # dorian
    (0, 2, 4, 5, 7, 9, 10),  # mixolydian
    (0, 2, 4, 7, 9),  # major pentatonic
)
DURS = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0])  # beats
DUR_P = np.array([0.14, 0.36, 0.10, 0.24, 0.08, 0.08])
STEPS = np.array([-4, -3, -2, -1, 0, 1, 2, 3, 4, 7, -7])  # scale degrees
STEP_P = np.array([0.03, 0.06, 0.14, 0.24, 0.04, 0.24, 0.14, 0.06, 0.03, 0.01, 0.01])
TPQ = 480  # MIDI ticks per quarter note


# --------------------------------------------------------------------------- MIDI
def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def write_smf(path: Path, events: list[tuple[int, int, bytes]]) -> None:
    """Write a format-0 Standard MIDI File; events are (tick, priority, message)."""
    track = bytearray()
    last = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track += _vlq(tick - last) + msg
        last = tick
    data = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    data += TPQ.to_bytes(2, "big")
    data += b"MTrk" + len(track).to_bytes(4, "big") + bytes(track)
    path.write_bytes(data)


def make_phrase(rng: np.random.Generator, program: int, lo: int, hi: int, target_s: float):
    """A random-but-musical monophonic phrase of target_s seconds of notes.

    Scale-based random walk (steps of 1-2 degrees mostly, a few leaps, drawn back towards
    the middle of the range), varied note lengths, legato or detached notes, rests, an
    arched velocity contour and CC11 swells. Returns (events, pitches, seconds).
    """
    bpm = int(rng.integers(80, 141))
    spb = 60.0 / bpm
    tonic = int(rng.integers(0, 12))
    scale = SCALES[int(rng.integers(len(SCALES)))]
    pitches = [p for p in range(lo, hi + 1) if (p - tonic) % 12 in scale]
    n = len(pitches)
    idx = int(rng.integers(n // 6, 5 * n // 6 + 1))
    target = target_s / spb  # beats
    legato_p = rng.uniform(0.3, 0.9)
    base_vel = rng.uniform(55.0, 100.0)
    expr_base = rng.uniform(85.0, 120.0)
    vibrato = int(rng.choice([0, 0, 10, 20, 30]))

    notes = []  # (start beat, length beats, gate, pitch, velocity)
    t = 0.0
    while True:
        dur = float(rng.choice(DURS, p=DUR_P))
        last = target - t - dur < 1.0  # no room for another note: this one ends the phrase
        if last:  # a long tonic or fifth near the current pitch, ending on target
            dur = max(target - t, 1.0)
            cands = [i for i, p in enumerate(pitches) if (p - tonic) % 12 in (0, 7)]
            idx = min(cands, key=lambda i: (abs(i - idx), i))
        elif notes:
            step = int(rng.choice(STEPS, p=STEP_P))
            off_centre = (idx - (n - 1) / 2) / n  # -0.5 .. 0.5
            if not 0 <= idx + step < n or (step * off_centre > 0 and rng.random() < 2 * abs(off_centre)):
                step = -step
            idx = int(np.clip(idx + step, 0, n - 1))
        pos = t / target
        vel = base_vel + 15 * np.sin(np.pi * min(pos, 1.0)) + rng.normal(0, 7)
        vel += 8 if t % 4 == 0 else 0
        gate = 1.0 if (rng.random() < legato_p and not last) else rng.uniform(0.55, 0.9)
        notes.append((t, dur, gate, pitches[idx], int(np.clip(round(vel), 40, 120))))
        t += dur
        if last:
            break
        if rng.random() < 0.1 and target - t > 2.5:  # a rest (breath, bow change)
            t += float(rng.choice([0.5, 1.0, 1.5]))

    def tick(beats: float) -> int:
        return int(round(beats * TPQ))

    ev: list[tuple[int, int, bytes]] = [
        (0, 0, b"\xff\x51\x03" + round(60e6 / bpm).to_bytes(3, "big")),
        (0, 0, bytes([0xB0, 0, 0])),  # bank 0
        (0, 0, bytes([0xC0, program])),
        (0, 0, bytes([0xB0, 7, 100])),  # volume
        (0, 0, bytes([0xB0, 10, 64])),  # pan centre
        (0, 0, bytes([0xB0, 91, 0])),  # no reverb send
        (0, 0, bytes([0xB0, 93, 0])),  # no chorus send
        (0, 0, bytes([0xB0, 1, vibrato])),  # modulation wheel (vibrato depth)
    ]
    # expression (CC11): per-note level, swells on long notes, 20 ms control rate
    expr_pts: list[tuple[float, float]] = []  # (beat, value)
    for start, dur, _, _, _ in notes:
        level = float(np.clip(expr_base + rng.normal(0, 8), 60, 127))
        sec = dur * spb
        if sec >= 0.6 and rng.random() < 0.6:
            low = rng.uniform(45, 80)
            shape = int(rng.integers(3))
            k = max(2, int(sec / 0.02))
            for j in range(k + 1):
                u = j / k
                w = (u, 1 - u, np.sin(np.pi * u))[shape]  # crescendo, diminuendo, messa di voce
                expr_pts.append((start + u * dur, low + (127 - low) * w))
        else:
            expr_pts.append((start, level))
    prev = -1
    for beat, val in expr_pts:
        v = int(np.clip(round(val), 0, 127))
        if v != prev:
            ev.append((tick(beat), 2, bytes([0xB0, 11, v])))
            prev = v
    for i, (start, dur, gate, pitch, vel) in enumerate(notes):
        on = tick(start)
        off = tick(start + dur) if gate >= 1.0 else tick(start + dur * gate)
        if i + 1 < len(notes):
            off = min(off, tick(notes[i + 1][0]))
        ev.append((on, 3, bytes([0x90, pitch, vel])))
        ev.append((max(off, on + 1), 1, bytes([0x80, pitch, 64])))
    end = tick(t) + tick(1.5 / spb)  # let the release ring before the end of track
    ev.append((end, 4, b"\xff\x2f\x00"))
    return ev, tuple(p for _, _, _, p, _ in notes), t * spb


def cmd_midi(args: argparse.Namespace) -> None:
    out = Path(args.out_dir)
    seen: dict[tuple, str] = {}
    total = sum(N_PHRASES.values())
    for k, (name, (program, lo, hi)) in enumerate(INSTRUMENTS.items()):
        (out / name).mkdir(parents=True, exist_ok=True)
        # phrase lengths: 3-4.6 s, scaled so that the instrument has MUSIC_NOTES_S of notes
        lengths = np.random.default_rng([SEED, k]).uniform(3.0, 4.6, total)
        lengths *= MUSIC_NOTES_S / lengths.sum()
        for i in range(1, total + 1):
            utt = f"{name}_p{i:03d}"
            rng = np.random.default_rng([SEED, k, i])
            ev, melody, sec = make_phrase(rng, program, lo, hi, lengths[i - 1])
            if melody in seen:  # never happens with these seeds; guards the split rule
                sys.exit(f"make_corpus.py: {utt} repeats the melody of {seen[melody]}")
            seen[melody] = utt
            write_smf(out / name / f"{utt}.mid", ev)
            print(f"{utt} notes={len(melody)} range={min(melody)}-{max(melody)} dur={sec:.2f}s")


# -------------------------------------------------------------------------- audio
def trim(x: np.ndarray, sr: int, pad_s: float = PAD_S, rel_db: float = -40.0, abs_db: float = -60.0):
    """Keep the span whose 10 ms RMS is above max(peak - 40 dB, -60 dBFS), plus pad_s each side."""
    hop = sr // 100
    n = len(x) // hop
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    db = 20 * np.log10(rms + 1e-12)
    active = np.nonzero(db > max(db.max() + rel_db, abs_db))[0]
    if active.size == 0:
        raise ValueError("silent file")
    start, end = active[0] * hop, min(len(x), (active[-1] + 1) * hop)
    pad = int(round(pad_s * sr))
    s, e = max(0, start - pad), min(len(x), end + pad)
    y = np.concatenate([np.zeros(pad - (start - s)), x[s:e], np.zeros(pad - (e - end))])
    fade = sr // 100  # 10 ms raised-cosine fades inside the padding
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    y[:fade] *= ramp
    y[-fade:] *= ramp[::-1]
    return y


def cmd_process(args: argparse.Namespace) -> None:
    import soundfile as sf
    import soxr

    raw, out = Path(args.raw_dir), Path(args.out_dir)
    files = sorted(raw.rglob("*.wav"))
    if not files:
        sys.exit(f"make_corpus.py: no .wav files under {raw}")
    gain = 10 ** (PEAK_DBFS / 20)
    for f in files:
        x, sr = sf.read(f, dtype="float64", always_2d=True)
        x = x.mean(axis=1)
        x -= x.mean()  # remove DC
        if sr != SAMPLE_RATE:
            x = soxr.resample(x, sr, SAMPLE_RATE, quality="VHQ")
        y = trim(x, SAMPLE_RATE)
        y *= gain / np.max(np.abs(y))
        # 16-bit samples rounded to `bits` significant bits (the FLAC encoder stores the
        # zero low bits for free); quantisation noise of 15 bits is about -95 dBFS
        step = 2 ** (16 - args.bits)
        yi = np.clip(np.round(y * 32768 / step) * step, -32768, 32767).astype(np.int16)
        dst = out / f.relative_to(raw)
        dst.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dst, yi, SAMPLE_RATE, subtype="PCM_16")


# ------------------------------------------------------------------------- splits
def split_of(utt: str) -> str:
    """s001-s040 / p001-p012 train, then dev, then eval (see N_SENTENCES, N_PHRASES)."""
    kind, num = utt.rsplit("_", 1)[1][0], int(utt.rsplit("_", 1)[1][1:])
    counts = N_SENTENCES if kind == "s" else N_PHRASES
    edge = 0
    for name in SPLITS:
        edge += counts[name]
        if num <= edge:
            return name
    raise ValueError(f"{utt}: number beyond the last split")


def cmd_splits(args: argparse.Namespace) -> None:
    corpus = Path(args.corpus_dir)
    utts = sorted(p.stem for p in corpus.glob("*/*/*.flac"))
    if not utts:
        sys.exit(f"make_corpus.py: no FLAC files under {corpus}")
    (corpus / "splits").mkdir(exist_ok=True)
    for name in SPLITS:
        ids = sorted(u for u in utts if split_of(u) == name)  # Python sort == LC_ALL=C
        (corpus / "splits" / name).write_text("".join(u + "\n" for u in ids))


# -------------------------------------------------------------------------- stats
def cmd_stats(args: argparse.Namespace) -> None:
    import soundfile as sf

    corpus = Path(args.corpus_dir)
    bad = 0
    print(f"{'kind/speaker':18s} {'files':>5s} {'total_s':>8s} {'min_s':>6s} {'max_s':>6s} "
          f"{'peak_dBFS':>9s} {'rms_dBFS':>8s} {'kB':>7s}")
    for kind in ("speech", "music"):
        for spk_dir in sorted((corpus / kind).iterdir()):
            durs, peaks, rmss, size = [], [], [], 0
            for f in sorted(spk_dir.glob("*.flac")):
                x, sr = sf.read(f, dtype="float64")
                info = sf.info(f)
                if sr != SAMPLE_RATE or x.ndim != 1 or info.subtype != "PCM_16":
                    print(f"BAD format: {f} ({sr} Hz, {info.channels} ch, {info.subtype})")
                    bad += 1
                hop = sr // 100
                n = len(x) // hop
                fr = 20 * np.log10(np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, 1)) + 1e-12)
                rms = 20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12)
                peak = 20 * np.log10(np.max(np.abs(x)) + 1e-12)
                if rms < -40 or np.mean(fr > -40) < 0.3 or peak > -2.5:
                    print(f"BAD level: {f} rms={rms:.1f} active={np.mean(fr > -40):.2f} peak={peak:.1f}")
                    bad += 1
                durs.append(len(x) / sr)
                peaks.append(peak)
                rmss.append(rms)
                size += f.stat().st_size
            if kind == "music" and sum(durs) < MIN_MUSIC_S:
                print(f"BAD: {spk_dir} holds {sum(durs):.1f} s < {MIN_MUSIC_S} s")
                bad += 1
            if kind == "speech" and len(durs) < sum(N_SENTENCES.values()):
                print(f"BAD: {spk_dir} holds {len(durs)} files")
                bad += 1
            print(f"{kind + '/' + spk_dir.name:18s} {len(durs):5d} {sum(durs):8.1f} {min(durs):6.2f} "
                  f"{max(durs):6.2f} {max(peaks):9.2f} {np.mean(rmss):8.1f} {size / 1e3:7.0f}")
    for name in SPLITS:
        ids = (corpus / "splits" / name).read_text().split()
        sp = sum(1 for u in ids if u.rsplit("_", 1)[1][0] == "s")
        print(f"split {name:5s}: {len(ids):4d} utts ({sp} speech, {len(ids) - sp} music)")
    total = sum(f.stat().st_size for f in corpus.rglob("*") if f.is_file())
    print(f"total size of {corpus}: {total / 1e6:.2f} MB ({total} bytes)")
    if total > MAX_BYTES:
        print(f"BAD: corpus larger than {MAX_BYTES / 1e6:.0f} MB")
        bad += 1
    if args.f0:
        check_f0(corpus)
    if bad:
        sys.exit(f"make_corpus.py: {bad} bad file(s)")


def check_f0(corpus: Path) -> None:
    """WORLD harvest on every music file: voiced share, and share of voiced frames whose
    f0 lies within the instrument's written range (one semitone of slack)."""
    import pyworld
    import soundfile as sf

    for name, (_, lo, hi) in INSTRUMENTS.items():
        voiced, inside, med = [], [], []
        for f in sorted((corpus / "music" / name).glob("*.flac")):
            x, sr = sf.read(f, dtype="float64")
            f0, _ = pyworld.harvest(x, sr, f0_floor=50.0, f0_ceil=2200.0, frame_period=5.0)
            midi = 69 + 12 * np.log2(f0[f0 > 0] / 440)
            voiced.append(midi.size / f0.size)
            inside.append(np.mean((midi > lo - 1) & (midi < hi + 1)))
            med.append(np.median(midi))
        print(f"f0 {name:8s}: voiced {np.mean(voiced):.2f}, in range {np.mean(inside):.3f}, "
              f"median MIDI note per file {min(med):.1f}-{max(med):.1f} (range {lo}-{hi})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("midi")
    p.add_argument("out_dir")
    p.set_defaults(func=cmd_midi)
    p = sub.add_parser("process")
    p.add_argument("raw_dir")
    p.add_argument("out_dir")
    p.add_argument("--bits", type=int, default=BITS, choices=range(12, 17),
                   help="significant bits of the 16-bit samples (default: %(default)s)")
    p.set_defaults(func=cmd_process)
    p = sub.add_parser("splits")
    p.add_argument("corpus_dir")
    p.set_defaults(func=cmd_splits)
    p = sub.add_parser("stats")
    p.add_argument("corpus_dir")
    p.add_argument("--f0", action="store_true")
    p.set_defaults(func=cmd_stats)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
