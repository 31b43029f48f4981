#!/usr/bin/env bash
# Kaldi-style data directories for LJSpeech 1.1.
#
#   local/data_prep.sh [--n_dev 250] [--n_eval 250] [--text normalized|raw] CORPUS_DIR DATA_DIR
#
# Reads CORPUS_DIR/{metadata.csv,wavs/LJ001-0001.wav,...} (the unpacked LJSpeech-1.1/:
# 13,100 clips of one reader, 22.05 kHz 16-bit mono wav; metadata.csv has one line per
# clip, 'id|raw text|normalized text', pipe-separated, UTF-8, no header) and writes
# DATA_DIR/{train,dev,eval}/{wav.scp,utt2spk,spk2utt,text}. Utterance ids are the clip
# ids (LJ001-0001), all of speaker LJ; wav.scp holds absolute paths; text holds the
# normalized transcription (numbers and abbreviations spelt out; --text raw: the raw one;
# a line without a normalized text falls back on the raw one); every file is sorted with
# LC_ALL=C, which for LJSpeech's ids is metadata.csv's order.
#
# Split by position in metadata.csv, the ESPnet / ParallelWaveGAN convention:
#   eval  the last --n_eval lines (default 250: LJ050-0029 .. LJ050-0278)
#   dev   the --n_dev lines before them (default 250)
#   train everything before (12,600 clips)
# A clip listed in metadata.csv without its wav is left out of its split (so the split
# of the others stays the same) and counted, as is a wav that metadata.csv does not list.
# The first wav's header is read: a rate other than 22050 Hz gives a warning (vocoder
# extract resamples to the config's rate anyway).
# Running it again rewrites the same files. Needs only bash, coreutils, findutils and awk.
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

n_dev=250
n_eval=250
text=normalized
while [[ $# -gt 0 ]]; do
  case $1 in
    --n_dev|--n-dev) [[ $# -ge 2 ]] || die "$1 needs a value"; n_dev=$2; shift 2 ;;
    --n_eval|--n-eval) [[ $# -ge 2 ]] || die "$1 needs a value"; n_eval=$2; shift 2 ;;
    --text) [[ $# -ge 2 ]] || die "--text needs a value"; text=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[[ $# -eq 2 ]] || die "usage: $prog [--n_dev N] [--n_eval N] [--text normalized|raw] CORPUS_DIR DATA_DIR"
[[ $n_dev =~ ^[0-9]+$ && $n_eval =~ ^[0-9]+$ ]] || die "--n_dev and --n_eval take whole numbers (got '$n_dev', '$n_eval')"
(( n_dev > 0 && n_eval > 0 )) || die "--n_dev and --n_eval must be at least 1"
case $text in
  normalized) field=3 ;;
  raw) field=2 ;;
  *) die "--text takes normalized or raw, not '$text'" ;;
esac
[[ -d $1 ]] || die "corpus directory '$1' not found (download it with ./run.sh --stage -1, or give --corpus_dir DIR, the unpacked LJSpeech-1.1/)"
corpus=$(cd "$1" && pwd -P)
data=$2
case $corpus in
  *[[:space:]]*) die "corpus path '$corpus' contains whitespace, which wav.scp cannot hold" ;;
esac
metadata=$corpus/metadata.csv
[[ -s $metadata ]] || die "$metadata is missing or empty (is $corpus the unpacked LJSpeech-1.1/?)"
[[ -d $corpus/wavs ]] || die "$corpus/wavs not found"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
find "$corpus/wavs" -maxdepth 1 -name '*.wav' -printf '%f\n' >"$tmp/wavs"
[[ -s $tmp/wavs ]] || die "no .wav files in $corpus/wavs"

# 1st input: the wav files there; 2nd: metadata.csv. Output: split utt wav text.
awk -F'|' -v field="$field" -v n_dev="$n_dev" -v n_eval="$n_eval" -v wavdir="$corpus/wavs" \
    -v metadata="$metadata" -v prog="$prog" '
    FILENAME == ARGV[1] { sub(/\.wav$/, ""); have[$0] = 1; next }
    { sub(/\r$/, "") }
    /^[[:space:]]*$/ { next }
    {
      if (NF < 2 || NF > 3 || $1 !~ /^[^[:space:]]+$/) {
        printf "%s: %s:%d: expected id|raw text|normalized text, got: %s\n", prog, metadata, FNR, $0 > "/dev/stderr"
        bad = 1; exit
      }
      if ($1 in seen) {
        printf "%s: %s:%d: clip %s listed twice (also on line %d)\n", prog, metadata, FNR, $1, seen[$1] > "/dev/stderr"
        bad = 1; exit
      }
      seen[$1] = FNR
      t = (NF >= field && $field ~ /[^[:space:]]/) ? $field : $2
      gsub(/^[[:space:]]+|[[:space:]]+$/, "", t)
      gsub(/[[:space:]]+/, " ", t)
      if (t == "") {
        printf "%s: %s:%d: clip %s has no text\n", prog, metadata, FNR, $1 > "/dev/stderr"
        bad = 1; exit
      }
      n++; id[n] = $1; txt[n] = t
    }
    END {
      if (bad) exit 1
      if (n <= n_dev + n_eval) {
        printf "%s: %s lists %d clips: too few for %d dev and %d eval clips and a training set (see --n_dev, --n_eval)\n", prog, metadata, n, n_dev, n_eval > "/dev/stderr"
        exit 1
      }
      for (i = 1; i <= n; i++) {
        if (!(id[i] in have)) { nowav++; continue }
        s = (i > n - n_eval) ? "eval" : (i > n - n_eval - n_dev) ? "dev" : "train"
        print s, id[i], wavdir "/" id[i] ".wav", txt[i]
      }
      for (w in have) if (!(w in seen)) nomd++
      if (nowav) printf "%s: %d clip(s) of metadata.csv without a wav, left out\n", prog, nowav > "/dev/stderr"
      if (nomd) printf "%s: %d wav(s) not listed in metadata.csv, left out\n", prog, nomd > "/dev/stderr"
    }' "$tmp/wavs" "$metadata" >"$tmp/all" || die "cannot read $metadata"

for split in train dev eval; do
  out=$data/$split
  awk -v s="$split" '$1 == s' "$tmp/all" | cut -d' ' -f2- | sort -k1,1 >"$tmp/$split"
  [[ -s $tmp/$split ]] || die "no $split utterances with a wav"
  mkdir -p "$out"
  cut -d' ' -f1,2 "$tmp/$split" >"$tmp/wav.scp"
  awk '{ t = $0; sub(/^[^ ]+ [^ ]+ /, "", t); print $1, t }' "$tmp/$split" >"$tmp/text"
  awk '{ print $1, "LJ" }' "$tmp/wav.scp" >"$tmp/utt2spk"
  awk '{ u = u " " $1 } END { print "LJ" u }' "$tmp/wav.scp" >"$tmp/spk2utt"
  for f in wav.scp utt2spk spk2utt text; do
    mv "$tmp/$f" "$out/$f"
  done
  echo "$prog: $out: $(wc -l <"$out/wav.scp") utterances ($(head -n 1 "$out/wav.scp" | cut -d' ' -f1) .. $(tail -n 1 "$out/wav.scp" | cut -d' ' -f1))" >&2
done

# The sample rate in the first wav's header (bytes 24-27, little-endian, of a RIFF/WAVE file).
first=$(head -n 1 "$data/train/wav.scp" | cut -d' ' -f2)
header=$(od -An -tu1 -N28 "$first" | tr '\n' ' ')
read -r -a hdr <<<"$header"
if (( ${#hdr[@]} == 28 )) && [[ $(head -c 4 "$first") == RIFF ]]; then
  sr=$(( hdr[24] + 256 * hdr[25] + 65536 * hdr[26] + 16777216 * hdr[27] ))
  if (( sr != 22050 )); then
    echo "$prog: warning: $first is $sr Hz, not LJSpeech 1.1's 22050 Hz (features are computed at the config's rate anyway)" >&2
  fi
else
  echo "$prog: warning: $first is not a RIFF/WAVE file" >&2
fi
