"""Tiny stand-ins for real corpora, in their exact on-disk layout, for the recipe tests.

The audio is synthetic speech-like sound: a harmonic tone whose f0 follows a contour
set by the sentence (the same for every speaker, so the data is parallel) around a
speaker's own base f0, shaped by speaker-specific formants, with a noise burst
(an unvoiced stretch) and short silences at both ends.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import soundfile as sf


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def speechlike(*, speaker_f0: float, formants: tuple[float, ...], sentence: str, sample_rate: int,
               seconds: float = 1.1) -> np.ndarray:
    """(samples,) float32 in [-1, 1]: a voiced stretch, a noise burst, more voicing."""
    rng = np.random.default_rng(_seed(sentence, str(speaker_f0)))
    srng = np.random.default_rng(_seed(sentence))  # the sentence's contour: shared by all speakers
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    knots = srng.uniform(-3.0, 3.0, size=6)  # semitones
    contour = np.interp(t, np.linspace(0, seconds, knots.size), knots)
    f0 = speaker_f0 * 2.0 ** (contour / 12.0)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = np.zeros(n)
    for k in range(1, 40):
        fk = k * f0
        gain = sum(np.exp(-0.5 * ((fk - fc) / 150.0) ** 2) for fc in formants) + 0.05
        voiced += np.where(fk < sample_rate / 2, gain / k ** 0.5, 0.0) * np.sin(k * phase)
    voiced /= np.abs(voiced).max() + 1e-9
    env = np.ones(n)
    edge = int(0.08 * sample_rate)
    env[:edge] = 0.0
    env[-edge:] = 0.0
    burst = slice(int(0.45 * n), int(0.55 * n))
    out = 0.5 * voiced * env
    out[burst] = 0.1 * rng.standard_normal(burst.stop - burst.start)
    out += 1e-4 * rng.standard_normal(n)
    return out.astype(np.float32)


ARCTIC_VOICES = {  # base f0 (Hz), formants (Hz)
    "bdl": (110.0, (600.0, 1200.0, 2500.0)),
    "slt": (190.0, (800.0, 1600.0, 2900.0)),
    "rms": (95.0, (500.0, 1000.0, 2300.0)),
    "clb": (210.0, (900.0, 1900.0, 3100.0)),
}
ARCTIC_TEXTS = {
    "arctic_a0001": "Author of the danger trail, Philip Steels, etc.",
    "arctic_a0002": "Not at this particular case, Tom, apologized Whittemore.",
    "arctic_b0475": "Somewhere in the train a woman laughed.",
    "arctic_b0476": "He stood there for a moment, waiting.",
    "arctic_b0507": "The night was still.",
    "arctic_b0508": "Then he went back to the camp.",
    "arctic_b0539": "It was the end of a long day.",
}


def make_arctic(root: Path, speakers=("bdl", "slt", "rms"), sentences=None, *, sample_rate: int = 16000,
                missing_wav: dict | None = None) -> Path:
    """root/cmu_us_<spk>_arctic/{wav/<id>.wav, etc/txt.done.data} as festvox unpacks them.

    missing_wav: {speaker: [sentence ids]} listed in the prompts but without a wav.
    """
    sentences = sentences or ARCTIC_TEXTS
    for spk in speakers:
        f0, formants = ARCTIC_VOICES[spk]
        d = root / f"cmu_us_{spk}_arctic"
        (d / "wav").mkdir(parents=True)
        (d / "etc").mkdir()
        lines = []
        for sid, text in sorted(sentences.items()):
            lines.append(f'( {sid} "{text}" )\n')
            if sid in (missing_wav or {}).get(spk, ()):
                continue
            audio = speechlike(speaker_f0=f0, formants=formants, sentence=sid, sample_rate=sample_rate)
            sf.write(str(d / "wav" / f"{sid}.wav"), audio, sample_rate, subtype="PCM_16")
        (d / "etc" / "txt.done.data").write_text("".join(lines))
    return root


VCTK_VOICES = {  # gender, base f0 (Hz), formants (Hz)
    "p225": ("F", 200.0, (850.0, 1700.0, 3000.0)),
    "p226": ("M", 105.0, (600.0, 1200.0, 2500.0)),
    "p227": ("M", 120.0, (550.0, 1100.0, 2400.0)),
    "p228": ("F", 215.0, (900.0, 1900.0, 3100.0)),
}
VCTK_SHARED = {  # the elicitation paragraph: the same text for every speaker
    "001": "Please call Stella.",
    "002": "Ask her to bring these things with her from the store.",
}


def vctk_texts(spk: str) -> dict:
    """Eval 001-002 (shared), dev 025, train 035-037 (newspaper: differ by speaker)."""
    texts = dict(VCTK_SHARED)
    for i, num in enumerate(("025", "035", "036", "037")):
        texts[num] = f"Newspaper sentence {i} read by speaker {spk}."
    return texts


def make_vctk(root: Path, speakers=("p225", "p226", "p227"), texts=None, *, sample_rate: int = 48000,
              mics=("mic1", "mic2"), no_transcripts=(), speaker_info: bool = True) -> Path:
    """root/{wav48_silence_trimmed/<spk>/<spk>_NNN_<mic>.flac, txt/<spk>/<spk>_NNN.txt, speaker-info.txt}.

    texts: {speaker: {NNN: text}} (default vctk_texts); no_transcripts: speakers with
    recordings but no txt/ dir (like p315 in VCTK 0.92).
    """
    info = ["ID  AGE  GENDER  ACCENTS  REGION COMMENTS \n"]
    for spk in speakers:
        gender, f0, formants = VCTK_VOICES[spk]
        info.append(f"{spk}  23  {gender}    English    Southern  England\n")
        wav_dir = root / "wav48_silence_trimmed" / spk
        wav_dir.mkdir(parents=True)
        spk_texts = (texts or {}).get(spk) or vctk_texts(spk)
        if spk not in no_transcripts:
            (root / "txt" / spk).mkdir(parents=True)
        for num, text in sorted(spk_texts.items()):
            utt = f"{spk}_{num}"
            audio = speechlike(speaker_f0=f0, formants=formants, sentence=text, sample_rate=sample_rate)
            for j, mic in enumerate(mics):
                sf.write(str(wav_dir / f"{utt}_{mic}.flac"), audio * (1.0 - 0.2 * j), sample_rate,
                         format="FLAC", subtype="PCM_16")
            if spk not in no_transcripts:
                (root / "txt" / spk / f"{utt}.txt").write_text(text + "\n")
    if speaker_info:
        (root / "speaker-info.txt").write_text("".join(info))
    (root / "README.txt").write_text("CSTR VCTK Corpus (test stand-in)\n")
    return root


LJ_VOICE = (205.0, (850.0, 1800.0, 2950.0))  # base f0 (Hz), formants (Hz): one female reader
LJ_TEXTS = [  # (raw, normalized), as in metadata.csv: the normalized text spells numbers and abbreviations out
    ("Printing, in the only sense with which we are at present concerned, differs from most if not from all the arts",
     "Printing, in the only sense with which we are at present concerned, differs from most if not from all the arts"),
    ("in being comparatively modern.", "in being comparatively modern."),
    ("The earliest book printed with movable types, the Gutenberg, or \"forty-two line Bible\" of about 1455,",
     ("The earliest book printed with movable types, the Gutenberg, or \"forty-two line Bible\" of about "
      "fourteen fifty-five,")),
    ("Mr. Cobden's speech in 1843;", "Mister Cobden's speech in eighteen forty-three;"),
    ("the prisoner's allowance was 2s. 6d. a week,", "the prisoner's allowance was two shillings sixpence a week,"),
    ("Dr. Müller's report", "Doctor Müller's report"),
]


def lj_ids(n: int) -> list[str]:
    """n clip ids in metadata.csv order: chapters LJ001, LJ002, ... of 5 clips each."""
    return [f"LJ{1 + i // 5:03d}-{1 + i % 5:04d}" for i in range(n)]


def make_ljspeech(root: Path, n: int = 12, *, sample_rate: int = 22050, missing_wav=(), extra_wav=(),
                  seconds: float = 1.1) -> Path:
    """root/LJSpeech-1.1/{metadata.csv, wavs/<id>.wav, README} as the LJSpeech 1.1 tarball unpacks.

    metadata.csv: one line per clip, 'id|raw text|normalized text', pipe-separated, no
    header, in clip order; wavs are 16-bit mono at sample_rate (the corpus's 22050 Hz).
    missing_wav: ids listed in metadata.csv without a wav; extra_wav: wavs not listed.
    Returns the LJSpeech-1.1 dir.
    """
    corpus = root / "LJSpeech-1.1"
    (corpus / "wavs").mkdir(parents=True)
    f0, formants = LJ_VOICE
    lines = []
    ids = lj_ids(n)
    for i, utt in enumerate(ids):
        raw, normalized = LJ_TEXTS[i % len(LJ_TEXTS)]
        lines.append(f"{utt}|{raw}|{normalized}\n")
    for utt in [u for u in ids if u not in missing_wav] + list(extra_wav):
        audio = speechlike(speaker_f0=f0, formants=formants, sentence=utt, sample_rate=sample_rate,
                           seconds=seconds)
        sf.write(str(corpus / "wavs" / f"{utt}.wav"), audio, sample_rate, subtype="PCM_16")
    (corpus / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    (corpus / "README").write_text("The LJ Speech Dataset\n\nVersion 1.1 (test stand-in)\n")
    return corpus


# URMP: instrument code -> (lowest and highest note (MIDI), spectral tilt: harmonic k has
# amplitude k ** -tilt, odd-harmonic weight: < 1 mutes even harmonics partly (clarinet-like)).
URMP_TIMBRES = {
    "vn": ((55, 84), 0.9, 1.0),
    "va": ((48, 76), 1.0, 1.0),
    "vc": ((36, 64), 1.0, 1.0),
    "fl": ((60, 91), 2.2, 1.0),
    "ob": ((58, 86), 0.8, 1.0),
    "cl": ((50, 84), 1.2, 0.3),
    "tpt": ((55, 82), 0.6, 1.0),
}
URMP_PIECES = {  # folder -> seconds (every track of a piece has the piece's length)
    "01_Jupiter_vn_vc": 24.0,
    "02_Sonata_vn_vn": 20.0,
    "08_Spring_fl_vn": 26.0,
    "11_Maria_ob_vc": 22.0,
    "12_Spring_vn_vn_vc": 28.0,
}
# A minimal type-0 MIDI file (header and an empty track): the scores are not read.
_EMPTY_MIDI = bytes.fromhex("4d546864000000060000000101e0" "4d54726b0000000400ff2f00")


def urmp_track(code: str, *, piece: str, track: int, seconds: float, sample_rate: int = 48000,
               frame_s: float = 0.01) -> tuple[np.ndarray, list[tuple[float, float]], list[tuple[float, float, float]]]:
    """One URMP-like part: notes (0.4-1.6 s, a little vibrato) with rests between phrases.

    Returns:
        (samples,) float32 audio; F0s rows (time s, f0 Hz or 0 where the part rests), one
        per frame_s; Notes rows (onset s, f0 Hz, duration s).
    """
    (low, high), tilt, even = URMP_TIMBRES[code]
    rng = np.random.default_rng(_seed(piece, str(track), code))
    n = round(seconds * sample_rate)
    f0 = np.zeros(n)
    notes = []
    t = rng.uniform(0.2, 0.8)  # a short silence first
    while t < seconds - 0.5:
        phrase_end = min(seconds - 0.3, t + rng.uniform(2.0, 5.0))
        midi = rng.integers(low, high - 6)
        while t < phrase_end:
            dur = min(rng.uniform(0.4, 1.6), phrase_end - t)
            midi = int(np.clip(midi + rng.integers(-4, 5), low, high))
            hz = 440.0 * 2.0 ** ((midi - 69) / 12)
            f0[int(t * sample_rate):int((t + dur) * sample_rate)] = hz
            notes.append((t, hz, dur))
            t += dur
        t += rng.uniform(0.4, 1.5)  # a rest between phrases
    voiced = f0 > 0
    time = np.arange(n) / sample_rate
    vibrato = 1.0 + 0.004 * np.sin(2 * np.pi * 5.5 * time)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sample_rate
    audio = np.zeros(n)
    # sin(k phase) by the recurrence s_k = 2 cos(phase) s_(k-1) - s_(k-2): no sin per harmonic
    two_cos, s_prev, s_k = 2.0 * np.cos(phase), np.zeros(n), np.sin(phase)
    for k in range(1, 17):
        gain = k ** -tilt * (1.0 if k % 2 else even)
        audio += np.where(f0 * k < sample_rate / 2, gain, 0.0) * s_k
        s_prev, s_k = s_k, two_cos * s_k - s_prev
    # a 20 ms attack and release on every note: a moving average of the voicing
    w = int(0.02 * sample_rate)
    c = np.concatenate([[0.0], np.cumsum(np.pad(voiced.astype(float), (w // 2, w - w // 2)))])
    env = (c[w:] - c[:-w])[:n] / w
    audio = 0.3 * audio * env / (np.abs(audio).max() + 1e-9)
    audio += 1e-4 * rng.standard_normal(n)
    frames = np.arange(0.0, seconds, frame_s)
    f0_rows = [(float(ft), float(f0[min(n - 1, int(ft * sample_rate))])) for ft in frames]
    return audio.astype(np.float32), f0_rows, notes


def make_urmp(root: Path, pieces: dict | None = None, *, sample_rate: int = 48000, seconds: float | None = None,
              videos: bool = True) -> Path:
    """root/Dataset/<NN_Title_inst...>/ in URMP's layout; returns root/Dataset.

    Per piece: AuSep_<track>_<inst>_<NN>_<Title>.wav (48 kHz mono, 24-bit),
    F0s_<track>_<inst>_<NN>_<Title>.txt ('<time>\\t<f0>' every 10 ms, 0 in rests),
    Notes_<track>_<inst>_<NN>_<Title>.txt ('<onset>\\t<f0>\\t<duration>'),
    AuMix_<folder>.wav, Sco_<folder>.mid and (videos) a stand-in Vid_<folder>.mp4; and
    Supplementary_Files/, which is not a piece. pieces: {folder: seconds} (default
    URMP_PIECES); seconds: one length for every piece instead.
    """
    dataset = root / "Dataset"
    for folder, length in (pieces or URMP_PIECES).items():
        length = seconds or length
        number, title, *codes = folder.split("_")
        d = dataset / folder
        d.mkdir(parents=True)
        mix = None
        for track, code in enumerate(codes, 1):
            stem = f"{track}_{code}_{number}_{title}"
            audio, f0_rows, notes = urmp_track(code, piece=folder, track=track, seconds=length,
                                               sample_rate=sample_rate)
            sf.write(str(d / f"AuSep_{stem}.wav"), audio, sample_rate, subtype="PCM_24")
            (d / f"F0s_{stem}.txt").write_text("".join(f"{t:.4f}\t{f:.4f}\n" for t, f in f0_rows))
            (d / f"Notes_{stem}.txt").write_text("".join(f"{a:.4f}\t{f:.4f}\t{b:.4f}\n" for a, f, b in notes))
            mix = audio if mix is None else mix + audio
        sf.write(str(d / f"AuMix_{folder}.wav"), mix / len(codes), sample_rate, subtype="PCM_24")
        (d / f"Sco_{folder}.mid").write_bytes(_EMPTY_MIDI)
        if videos:
            (d / f"Vid_{folder}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 stand-in, not a video")
    (dataset / "Supplementary_Files").mkdir(parents=True, exist_ok=True)
    (dataset / "Supplementary_Files" / "README.txt").write_text("URMP supplementary files (test stand-in)\n")
    return dataset
