#!/usr/bin/env bash
# Kaldi-style data directories for CMU ARCTIC voices.
#
#   local/data_prep.sh CORPUS_DIR DATA_DIR SPK...
#
# Reads CORPUS_DIR/cmu_us_SPK_arctic/{etc/txt.done.data,wav/arctic_*.wav} (16 kHz, as
# unpacked from the festvox tarballs) and writes DATA_DIR/{train,dev,eval}/{wav.scp,
# utt2spk,spk2utt,text}. Utterance ids are SPK_arctic_a0001 (speaker SPK); wav.scp holds
# absolute paths; every file is sorted with LC_ALL=C.
#
# Split, by sentence and therefore the same for every voice (parallel):
#   eval  arctic_b0508 .. arctic_b0539   the last 32 sentences of the prompt list
#   dev   arctic_b0476 .. arctic_b0507   the 32 before them
#   train everything else                arctic_a0001..a0593, arctic_b0001..b0475
# so no eval or dev sentence is ever trained on. A sentence listed in txt.done.data
# without its wav (or a wav without a prompt) is left out and counted.
# Running it again rewrites the same files. Needs only bash, coreutils and awk.
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

[[ $# -ge 3 ]] || die "usage: $prog CORPUS_DIR DATA_DIR SPK... (e.g. downloads data bdl slt clb rms)"
[[ -d $1 ]] || die "corpus directory '$1' not found (download it with ./run.sh --stage -1, or give --corpus_dir DIR, the dir holding cmu_us_<spk>_arctic/)"
corpus=$(cd "$1" && pwd -P)
data=$2
shift 2
case $corpus in
  *[[:space:]]*) die "corpus path '$corpus' contains whitespace, which wav.scp cannot hold" ;;
esac
speakers=$(printf '%s\n' "$@" | sort -u)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/all"
for spk in $speakers; do
  [[ $spk =~ ^[a-z]+$ ]] || die "bad speaker name '$spk' (want e.g. bdl, slt, clb, rms)"
  dir=$corpus/cmu_us_${spk}_arctic
  [[ -d $dir ]] || die "$dir not found (download speaker $spk with ./run.sh --stage -1 --speakers \"... $spk\")"
  prompts=$dir/etc/txt.done.data
  [[ -s $prompts ]] || die "$prompts is missing or empty"
  [[ -d $dir/wav ]] || die "$dir/wav not found"
  # 1st input: the wav files there; 2nd: the prompts, '( arctic_a0001 "Author of ..." )'.
  # Output: split utt wav text.
  find "$dir/wav" -maxdepth 1 -name 'arctic_*.wav' -printf '%f\n' >"$tmp/wavs"
  [[ -s $tmp/wavs ]] || die "no arctic_*.wav files in $dir/wav"
  awk -v spk="$spk" -v wavdir="$dir/wav" -v prompts="$prompts" -v prog="$prog" '
      FILENAME == ARGV[1] { sub(/\.wav$/, ""); have[$0] = 1; next }
      { line = $0; sub(/\r$/, "", line) }
      line ~ /^[[:space:]]*$/ { next }
      {
        if (line !~ /^\( *[^ "]+ +".*" *\) *$/) {
          printf "%s: %s:%d: expected ( arctic_a0001 \"text\" ), got: %s\n", prog, prompts, FNR, line > "/dev/stderr"
          bad = 1; exit
        }
        id = line; sub(/^\( */, "", id); sub(/ .*/, "", id)
        text = line; sub(/^\( *[^ ]+ +"/, "", text); sub(/" *\) *$/, "", text)
        if (id in seen) {
          printf "%s: %s:%d: sentence %s listed twice\n", prog, prompts, FNR, id > "/dev/stderr"
          bad = 1; exit
        }
        seen[id] = 1
        if (!(id in have)) { nowav++; next }
        split_ = "train"
        if (id ~ /^arctic_b[0-9][0-9][0-9][0-9]$/) {
          n = substr(id, 9) + 0
          if (n >= 508 && n <= 539) split_ = "eval"
          else if (n >= 476 && n <= 507) split_ = "dev"
        }
        print split_, spk "_" id, wavdir "/" id ".wav", text
        used++
      }
      END {
        if (bad) exit 1
        for (w in have) if (!(w in seen)) noprompt++
        if (nowav) printf "%s: %s: %d prompt(s) without a wav, left out\n", prog, spk, nowav > "/dev/stderr"
        if (noprompt) printf "%s: %s: %d wav(s) without a prompt, left out\n", prog, spk, noprompt > "/dev/stderr"
        if (!used) { printf "%s: %s: no utterance with both a prompt and a wav in %s\n", prog, spk, wavdir > "/dev/stderr"; exit 1 }
      }' "$tmp/wavs" "$prompts" >>"$tmp/all" || die "cannot read the prompts of $spk"
done

for split in train dev eval; do
  out=$data/$split
  awk -v s="$split" '$1 == s' "$tmp/all" | cut -d' ' -f2- | sort -k1,1 >"$tmp/$split"
  [[ -s $tmp/$split ]] || die "no $split utterances (the $split sentences are listed at the top of $0)"
  mkdir -p "$out"
  cut -d' ' -f1,2 "$tmp/$split" >"$tmp/wav.scp"
  awk '{ t = $0; sub(/^[^ ]+ [^ ]+ /, "", t); print $1, t }' "$tmp/$split" >"$tmp/text"
  awk '{ spk = $1; sub(/_arctic_.*/, "", spk); print $1, spk }' "$tmp/wav.scp" >"$tmp/utt2spk"
  awk '{ u[$2] = u[$2] " " $1 } END { for (s in u) print s u[s] }' "$tmp/utt2spk" | sort >"$tmp/spk2utt"
  for f in wav.scp utt2spk spk2utt text; do
    mv "$tmp/$f" "$out/$f"
  done
  echo "$prog: $out: $(wc -l <"$out/wav.scp") utterances of $(wc -l <"$out/spk2utt") speakers" >&2
done
