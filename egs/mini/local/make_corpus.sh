#!/usr/bin/env bash
# Regenerate the embedded mini corpus (egs/mini/corpus) from scratch, deterministically.
#
#   egs/mini/local/make_corpus.sh [CORPUS_DIR]      (default: egs/mini/corpus)
#
# Speech: the sentences in CORPUS_DIR/sentences.txt spoken by festival kal_diphone (kal),
# ked_diphone (ked), cmu_us_slt_arctic_hts (slt) and espeak-ng en-us+f3 (f3).
# Music: random-but-musical monophonic MIDI phrases (fixed seeds, make_corpus.py) for
# violin, flute, trumpet and cello, rendered dry with fluidsynth and FluidR3_GM.
# All audio: trimmed to 0.1 s of silence at each end, peak -3 dBFS, 16 kHz mono 16-bit
# FLAC (level 8 with LPC order up to 32, --lax), samples rounded to $BITS significant
# bits (default 15: keeps the corpus under its 10 MB budget; BITS=16 gives ~9.8 MB).
# Rewrites CORPUS_DIR/{speech,music,splits}; keeps sentences.txt and README.md.
#
# Needs: festival (text2wave) with festvox-kallpc16k, festvox-kdlpc16k and
# festvox-us-slt-hts; espeak-ng; fluidsynth and fluid-soundfont-gm; flac; a Python with
# numpy, soundfile and soxr ($PYTHON, default: python3). Only this script needs them: the
# recipes use the committed FLAC files.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
corpus=${1:-$here/../corpus}
PYTHON=${PYTHON:-python3}
SF2=${SF2:-/usr/share/sounds/sf2/FluidR3_GM.sf2}
BITS=${BITS:-15}
voices=(kal ked slt f3)

die() { echo "make_corpus.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ tool checks
for tool in text2wave espeak-ng fluidsynth flac; do
  command -v "$tool" >/dev/null 2>&1 \
    || die "'$tool' not found; install it (Debian: apt-get install festival espeak-ng fluidsynth flac)"
done
"$PYTHON" -c 'import numpy, soundfile, soxr' 2>/dev/null \
  || die "$PYTHON lacks numpy/soundfile/soxr; set PYTHON=.venv/bin/python (after 'make venv')"
[[ -f $SF2 ]] || die "soundfont $SF2 not found (Debian: apt-get install fluid-soundfont-gm, or set SF2=)"
[[ -f $corpus/sentences.txt ]] || die "$corpus/sentences.txt not found"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# synth VOICE TEXTFILE OUT.wav
synth() {
  case $1 in
    kal) text2wave -eval "(voice_kal_diphone)" -o "$3" "$2" >/dev/null 2>&1 || true ;;
    ked) text2wave -eval "(voice_ked_diphone)" -o "$3" "$2" >/dev/null 2>&1 || true ;;
    slt) text2wave -eval "(voice_cmu_us_slt_arctic_hts)" -o "$3" "$2" >/dev/null 2>&1 || true ;;
    f3) espeak-ng -v en-us+f3 -w "$3" -f "$2" ;;
    *) die "unknown voice $1" ;;
  esac
  # text2wave exits 0 even when the voice is missing, so look at the output instead
  [[ -s $3 ]] || die "voice '$1' produced no audio; is its package installed?" \
    "(kal: festvox-kallpc16k, ked: festvox-kdlpc16k, slt: festvox-us-slt-hts, f3: espeak-ng-data)"
}

printf 'A test.\n' >"$tmp/probe.txt"
for v in "${voices[@]}"; do
  synth "$v" "$tmp/probe.txt" "$tmp/probe_$v.wav"
done

# ---------------------------------------------------------------------- speech
echo "make_corpus.sh: synthesising speech (${voices[*]})"
while read -r sid text; do
  [[ -n $sid ]] || continue
  printf '%s\n' "$text" >"$tmp/text.txt"
  for v in "${voices[@]}"; do
    mkdir -p "$tmp/raw/speech/$v"
    synth "$v" "$tmp/text.txt" "$tmp/raw/speech/$v/${v}_$sid.wav"
  done
done <"$corpus/sentences.txt"

# ----------------------------------------------------------------------- music
echo "make_corpus.sh: writing MIDI phrases and rendering them with fluidsynth"
"$PYTHON" "$here/make_corpus.py" midi "$tmp/midi" >"$tmp/midi.log"
for mid in "$tmp"/midi/*/*.mid; do
  inst=$(basename "$(dirname "$mid")")
  mkdir -p "$tmp/raw/music/$inst"
  # dry (-R 0 -C 0), 48 kHz float; make_corpus.py resamples to 16 kHz with soxr
  fluidsynth -q -ni -g 0.8 -R 0 -C 0 -r 48000 -O float -T wav \
    -F "$tmp/raw/music/$inst/$(basename "$mid" .mid).wav" "$SF2" "$mid" >/dev/null 2>&1
  [[ -s $tmp/raw/music/$inst/$(basename "$mid" .mid).wav ]] || die "fluidsynth failed on $mid"
done

# ------------------------------------------------------ clean-up and encoding
echo "make_corpus.sh: trimming, resampling, normalising, encoding FLAC"
"$PYTHON" "$here/make_corpus.py" process --bits "$BITS" "$tmp/raw" "$tmp/wav"
rm -rf "$corpus/speech" "$corpus/music" "$corpus/splits"
for wav in "$tmp"/wav/*/*/*.wav; do
  rel=${wav#"$tmp/wav/"}
  mkdir -p "$corpus/$(dirname "$rel")"
  flac --silent --force -8 --lax -l 32 --no-padding -o "$corpus/${rel%.wav}.flac" "$wav"
done
"$PYTHON" "$here/make_corpus.py" splits "$corpus"
"$PYTHON" "$here/make_corpus.py" stats "$corpus"
echo "make_corpus.sh: done"
