"""Bad-input cases built on the fly, shared by test_bad_inputs.py and
benchmarks/robustness_report.py (which imports this file by path).

Each case writes one file into a directory and says what the commands must do with it:
``expect="ok"`` (processed; ``frames`` is the expected frame count at SR / HOP) or
``expect="fail"`` (that item fails with a one-line reason naming the file and matching
``cause``, a regular expression).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SR, HOP = 16000, 80


def tone(f0: float, seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a slight vibrato and a little noise, peak 0.5."""
    t = np.arange(int(round(seconds * sr))) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1.0 + 0.02 * np.sin(2 * np.pi * 3 * t))) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, int(0.45 * min(sr, 16000) / f0)))
    x = 0.5 * x / np.abs(x).max() + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)
    return x.astype(np.float32)


def frames_at(n_samples: int, sr: int) -> int:
    """Frames the extractor gives for ``n_samples`` at ``sr`` once resampled to SR."""
    if sr != SR:
        import soxr

        n_samples = soxr.resample(np.zeros(n_samples, np.float32), sr, SR).size
    return math.ceil(n_samples / HOP)


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]  # writes the input into a dir, returns its path
    expect: str  # "ok" or "fail"
    cause: str = ""  # regex the failure reason must match
    frames: int | None = None  # expected frames when ok
    f0_range: bool = False  # check every voiced f0 lies in [f0_min, f0_max]


def _write(name: str, x, sr: int = SR, **kw):
    def make(d: Path) -> Path:
        p = d / name
        sf.write(p, x, sr, **kw)
        return p
    return make


def _raw(name: str, data: bytes):
    def make(d: Path) -> Path:
        p = d / name
        p.write_bytes(data)
        return p
    return make


def _wav_bytes(fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, tone(150.0, 0.2), SR, format=fmt, subtype=subtype)
    return buf.getvalue()


def _corrupt(data: bytes, magic_len: int = 4) -> bytes:
    return b"JUNK"[:magic_len] + data[magic_len:]


def _with(x: np.ndarray, index, value) -> np.ndarray:
    y = x.copy()
    y[index] = value
    return y


def _missing(d: Path) -> Path:
    return d / "does_not_exist.wav"


def _named(dirname: str):
    def make(d: Path) -> Path:
        sub = d / dirname
        sub.mkdir(exist_ok=True)
        p = sub / "voice.wav"
        sf.write(p, TONE, SR)
        return p
    return make


def _non_utf8(d: Path) -> Path:
    raw = os.fsencode(d) + b"/caf\xe9_latin1.wav"  # Latin-1 byte, not valid UTF-8
    data = _wav_bytes()
    with open(raw, "wb") as f:
        f.write(data)
    return Path(os.fsdecode(raw))


def _non_utf8_missing(d: Path) -> Path:
    return Path(os.fsdecode(os.fsencode(d) + b"/gone_\xff.wav"))


TONE = tone(150.0, 0.3)
N = TONE.size
rng = np.random.default_rng(1)

CASES = [
    # unreadable files
    Case("empty_file", _raw("empty.wav", b""), "fail", r"empty\.wav: cannot read audio"),
    Case("zero_length", _write("zero.wav", np.zeros(0, np.float32)), "fail", r"zero\.wav: audio is empty"),
    Case("truncated_wav_header", _raw("trunc.wav", _wav_bytes()[:20]), "fail", r"trunc\.wav: cannot read audio"),
    Case("corrupt_wav_header", _raw("corrupt.wav", _corrupt(_wav_bytes())), "fail",
         r"corrupt\.wav: cannot read audio"),
    Case("truncated_flac_header", _raw("trunc.flac", _wav_bytes("FLAC")[:30]), "fail",
         r"trunc\.flac: cannot read audio"),
    Case("corrupt_flac_header", _raw("corrupt.flac", _corrupt(_wav_bytes("FLAC"))), "fail",
         r"corrupt\.flac: cannot read audio"),
    Case("non_audio", _raw("notes.wav", b"this is a text file, not audio\n" * 20), "fail",
         r"notes\.wav: cannot read audio"),
    Case("missing_file", _missing, "fail", r"does_not_exist\.wav: no such file"),
    # formats that are processed (converted to mono float at SR)
    Case("pcm_8bit", _write("u8.wav", TONE, subtype="PCM_U8"), "ok", frames=frames_at(N, SR)),
    Case("pcm_24bit", _write("s24.wav", TONE, subtype="PCM_24"), "ok", frames=frames_at(N, SR)),
    Case("float32", _write("f32.wav", TONE, subtype="FLOAT"), "ok", frames=frames_at(N, SR)),
    Case("flac", _write("ok.flac", TONE), "ok", frames=frames_at(N, SR)),
    Case("stereo", _write("stereo.wav", np.stack([TONE, 0.5 * TONE], axis=1)), "ok", frames=frames_at(N, SR)),
    Case("six_channels", _write("six.wav", np.repeat(TONE[:, None], 6, axis=1)), "ok", frames=frames_at(N, SR)),
    Case("rate_8k", _write("sr8k.wav", tone(150.0, 0.3, sr=8000), sr=8000), "ok",
         frames=frames_at(round(0.3 * 8000), 8000)),
    Case("rate_96k", _write("sr96k.wav", tone(150.0, 0.3, sr=96000), sr=96000, subtype="PCM_24"), "ok",
         frames=frames_at(round(0.3 * 96000), 96000)),
    Case("rate_44k1", _write("sr44k.wav", tone(150.0, 0.3, sr=44100), sr=44100), "ok",
         frames=frames_at(round(0.3 * 44100), 44100)),
    # bad samples
    Case("nan_samples", _write("nan.wav", _with(TONE, slice(100, 103), np.nan), subtype="FLOAT"), "fail",
         r"nan\.wav: audio contains 3 NaN/inf samples"),
    Case("inf_samples", _write("inf.wav", _with(TONE, 500, np.inf), subtype="FLOAT"), "fail",
         r"inf\.wav: audio contains 1 NaN/inf samples"),
    Case("clipped_pcm", _write("clip16.wav", np.clip(4 * TONE, -1, 1)), "ok", frames=frames_at(N, SR)),
    Case("over_full_scale_float", _write("loud.wav", 8 * TONE, subtype="FLOAT"), "ok", frames=frames_at(N, SR)),
    Case("silence", _write("silence.wav", np.zeros(N, np.float32)), "fail", r"audio is all silent"),
    Case("white_noise", _write("noise.wav", (0.3 * rng.standard_normal(N)).astype(np.float32)), "ok",
         frames=frames_at(N, SR)),
    # shorter than one hop (80 samples), and than the f0 analysis window
    Case("shorter_than_a_frame", _write("short.wav", TONE[:40]), "fail", r"audio too short"),
    Case("one_sample", _write("one.wav", TONE[:1]), "fail", r"audio too short"),
    Case("shorter_than_f0_window", _write("short2.wav", TONE[:400]), "fail", r"audio too short"),
    # paths
    Case("space_in_path", _named("dir with spaces"), "ok", frames=frames_at(N, SR)),
    Case("non_utf8_path", _non_utf8, "ok", frames=frames_at(round(0.2 * SR), SR)),
    Case("non_utf8_missing", _non_utf8_missing, "fail", r"no such file"),
    # f0 outside the searched range (65..800 Hz by default)
    Case("f0_below_range", _write("low_f0.wav", tone(40.0, 0.3)), "ok", frames=frames_at(N, SR), f0_range=True),
    Case("f0_above_range", _write("high_f0.wav", tone(1200.0, 0.3)), "ok", frames=frames_at(N, SR),
         f0_range=True),
]


# --------------------------------------------------------------------------- batches

GOOD = ("a_good", "c_good")
ITEM = "b_item"


def write_data_dir(root: Path, items: dict, *, utt2spk: dict | None = None) -> Path:
    """A data dir from {utt: path}, written as bytes (paths may not be UTF-8)."""
    data = root / "data"
    data.mkdir()
    with open(data / "wav.scp", "wb") as f:
        for utt, path in items.items():
            f.write(utt.encode() + b" " + os.fsencode(path) + b"\n")
    spk = utt2spk if utt2spk is not None else {u: "spk" for u in items}
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in spk.items()))
    spk2utt: dict = {}
    for u, s in sorted(spk.items()):
        spk2utt.setdefault(s, []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return data


def batch_with(case, root: Path) -> tuple[Path, Path]:
    """A data dir a_good, b_item (the case), c_good; returns (data dir, the case's file)."""
    for i, utt in enumerate(GOOD):
        sf.write(root / f"{utt}.wav", tone(120.0 + 60 * i, 0.3, seed=i), SR)
    path = case.make(root)
    items = {"a_good": root / "a_good.wav", ITEM: path, "c_good": root / "c_good.wav"}
    return write_data_dir(root, items), path


def read_table(path: Path) -> dict:
    """A two-column table of a dump ({} if absent); undecodable bytes kept as surrogates."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    return dict(line.split(" ", 1) for line in text.splitlines() if line)


def table_case(name: str, root: Path) -> Path:
    """A data dir of three good files whose tables have the problem ``name``."""
    for utt in ("u1", "u2", "u3"):
        sf.write(root / f"{utt}.wav", TONE, SR)
    wavs = {u: root / f"{u}.wav" for u in ("u1", "u2", "u3")}
    if name == "duplicate_key":
        data = write_data_dir(root, wavs)
        with open(data / "wav.scp", "ab") as f:
            f.write(b"u3 " + os.fsencode(root / "u1.wav") + b"\n")
    elif name == "unsorted_keys":
        data = write_data_dir(root, dict(reversed(wavs.items())))
    elif name == "utt2spk_lacks_an_utterance":
        data = write_data_dir(root, wavs, utt2spk={"u1": "spk", "u2": "spk"})
    elif name == "utt2spk_has_an_extra_utterance":
        data = write_data_dir(root, {u: wavs[u] for u in ("u1", "u2")},
                              utt2spk={u: "spk" for u in ("u1", "u2", "u3")})
    else:
        raise KeyError(name)
    return data


# (case, extract: where the one-line error points, evaluate: None = processes every
# utterance of wav.scp, else where its error points)
TABLE_CASES = [
    ("duplicate_key", r"wav\.scp:4: duplicate key 'u3'", r"wav\.scp:4: duplicate key 'u3'"),
    ("unsorted_keys", r"(wav\.scp|utt2spk):2: key 'u2' is out of LC_ALL=C order", None),
    ("utt2spk_lacks_an_utterance", r"wav\.scp.*u3|u3.*wav\.scp", None),
    ("utt2spk_has_an_extra_utterance", r"utt2spk.*u3|u3.*utt2spk", None),
]
