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
