#!/usr/bin/env bash
# Kaldi-style data directories for the CSTR VCTK Corpus 0.92.
#
#   local/data_prep.sh [--mic mic1|mic2] [--eval_ids 1-24] [--dev_ids 25-34] CORPUS_DIR DATA_DIR SPK...|all
#
# Reads CORPUS_DIR/wav48_silence_trimmed/SPK/SPK_NNN_<mic>.flac (48 kHz FLAC, read
# directly by soundfile), CORPUS_DIR/txt/SPK/SPK_NNN.txt and, if present,
# CORPUS_DIR/speaker-info.txt, and writes DATA_DIR/{train,dev,eval}/{wav.scp,utt2spk,
# spk2utt,text[,spk2gender]}. Utterance ids are SPK_NNN (p225_001), the speaker SPK;
# wav.scp holds absolute paths; every file is sorted with LC_ALL=C. `all` takes every
# speaker of wav48_silence_trimmed/ that has transcripts (p315 has none in 0.92 and is
# skipped with a note). One microphone: mic1 (default) or mic2.
#
# Split, by sentence number NNN:
#   eval  NNN in --eval_ids (default 1-24): the sentences every speaker reads, the
#         elicitation paragraph ("Please call Stella. ...") and the rainbow passage, so
#         the eval set is parallel across speakers
#   dev   NNN in --dev_ids (default 25-34): the first ten newspaper sentences of each
#         speaker
#   train the rest (newspaper sentences)
# Newspaper sentences recur across speakers under other numbers, so a training
# utterance whose text (lower-cased, without punctuation) is also the text of an eval or
# dev utterance is left out: no eval or dev sentence is ever trained on. Recordings
# without a transcript, and transcripts without a recording, are left out and counted.
# Running it again rewrites the same files. Needs only bash, coreutils, findutils and awk.
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

mic=mic1
eval_ids=1-24
dev_ids=25-34
while [[ $# -gt 0 ]]; do
  case $1 in
    --mic) [[ $# -ge 2 ]] || die "--mic needs a value"; mic=$2; shift 2 ;;
    --eval_ids|--eval-ids) [[ $# -ge 2 ]] || die "$1 needs a value"; eval_ids=$2; shift 2 ;;
    --dev_ids|--dev-ids) [[ $# -ge 2 ]] || die "$1 needs a value"; dev_ids=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[[ $# -ge 3 ]] || die "usage: $prog [--mic mic1|mic2] [--eval_ids A-B] [--dev_ids A-B] CORPUS_DIR DATA_DIR SPK...|all"
[[ $mic == mic1 || $mic == mic2 ]] || die "--mic must be mic1 or mic2, got '$mic'"
for range in "$eval_ids" "$dev_ids"; do
  [[ $range =~ ^[0-9]+-[0-9]+$ ]] || die "sentence range '$range' is not A-B (e.g. 1-24)"
done
[[ -d $1 ]] || die "corpus directory '$1' not found (download it with ./run.sh --stage -1, or give --corpus_dir DIR, the dir holding wav48_silence_trimmed/ and txt/)"
corpus=$(cd "$1" && pwd -P)
data=$2
shift 2
case $corpus in
  *[[:space:]]*) die "corpus path '$corpus' contains whitespace, which wav.scp cannot hold" ;;
esac
wavroot=$corpus/wav48_silence_trimmed
txtroot=$corpus/txt
[[ -d $wavroot ]] || die "$wavroot not found (is '$corpus' the VCTK 0.92 root? It holds wav48_silence_trimmed/, txt/, speaker-info.txt)"
[[ -d $txtroot ]] || die "$txtroot not found"

if [[ $# -eq 1 && $1 == all ]]; then
  speakers=()
  for d in "$wavroot"/*/; do
    spk=$(basename "$d")
    if [[ -d $txtroot/$spk ]]; then
      speakers+=("$spk")
    else
      echo "$prog: note: $spk has no transcripts ($txtroot/$spk); skipped" >&2
    fi
  done
  (( ${#speakers[@]} > 0 )) || die "no speaker dirs with transcripts in $wavroot"
else
  mapfile -t speakers < <(printf '%s\n' "$@" | sort -u)
  for spk in "${speakers[@]}"; do
    [[ $spk =~ ^[a-z]*[0-9]+$ ]] || die "bad speaker name '$spk' (want e.g. p225)"
    [[ -d $wavroot/$spk ]] || die "$wavroot/$spk not found (no speaker $spk)"
    [[ -d $txtroot/$spk ]] || die "$txtroot/$spk not found: no transcripts for $spk (VCTK 0.92 has none for p315)"
  done
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/wavs"
: >"$tmp/texts"
for spk in "${speakers[@]}"; do
  # utt path, for SPK_NNN_<mic>.flac
  find "$wavroot/$spk" -maxdepth 1 -name "${spk}_*_${mic}.flac" -printf '%f\n' \
    | awk -v spk="$spk" -v mic="$mic" -v dir="$wavroot/$spk" '
        { utt = $0; sub("_" mic "\\.flac$", "", utt) }
        utt ~ ("^" spk "_[0-9]+$") { print utt, dir "/" $0 }' >>"$tmp/wavs"
  # utt text, from the first line of SPK_NNN.txt
  # shellcheck disable=SC2016  # an awk program
  find "$txtroot/$spk" -maxdepth 1 -name "${spk}_*.txt" -print0 \
    | xargs -0 -r awk 'FNR == 1 {
        utt = FILENAME; sub(/.*\//, "", utt); sub(/\.txt$/, "", utt)
        t = $0; sub(/\r$/, "", t); gsub(/^[ \t]+|[ \t]+$/, "", t); gsub(/[ \t]+/, " ", t)
        if (t != "") print utt, t }' >>"$tmp/texts"
done

# split utt wav text, with the counts of what was left out on stderr
awk -v eval_ids="$eval_ids" -v dev_ids="$dev_ids" -v prog="$prog" -v mic="$mic" '
  function norm(s) { s = tolower(s); gsub(/[^a-z0-9 ]/, " ", s); gsub(/ +/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s); return s }
  function spk_of(u) { sub(/_[0-9]+$/, "", u); return u }
  BEGIN { split(eval_ids, e, "-"); split(dev_ids, d, "-") }
  FILENAME == ARGV[1] { t = $0; sub(/^[^ ]+ /, "", t); text[$1] = t; next }
  {
    utt = $1; spk = spk_of(utt)
    if (!(utt in text)) { notext[spk]++; next }
    n = utt; sub(/.*_/, "", n); n += 0
    s = "train"
    if (n >= e[1] + 0 && n <= e[2] + 0) s = "eval"
    else if (n >= d[1] + 0 && n <= d[2] + 0) s = "dev"
    nu++; U[nu] = utt; W[nu] = $2; S[nu] = s; has_wav[utt] = 1
    if (s != "train") heldout[norm(text[utt])] = 1
  }
  END {
    for (i = 1; i <= nu; i++) {
      if (S[i] == "train" && (norm(text[U[i]]) in heldout)) { leak[spk_of(U[i])]++; continue }
      print S[i], U[i], W[i], text[U[i]]
    }
    for (u in text) if (!(u in has_wav)) nowav[spk_of(u)]++
    for (s in notext) printf "%s: %s: %d %s recording(s) without a transcript, left out\n", prog, s, notext[s], mic > "/dev/stderr"
    for (s in nowav) printf "%s: %s: %d transcript(s) without a %s recording, left out\n", prog, s, nowav[s], mic > "/dev/stderr"
    for (s in leak) printf "%s: %s: %d training utterance(s) left out: their text is an eval/dev sentence\n", prog, s, leak[s] > "/dev/stderr"
  }' "$tmp/texts" "$tmp/wavs" >"$tmp/all"

for spk in "${speakers[@]}"; do
  grep -q " ${spk}_[0-9]* " "$tmp/all" || echo "$prog: warning: no $mic utterance with a transcript for $spk" >&2
done

# spk2gender from speaker-info.txt ('p225  23  F  English ...'; ids with or without the p)
have_gender=false
info=$corpus/speaker-info.txt
if [[ -s $info ]]; then
  awk 'NR > 1 && NF >= 3 && $1 ~ /^[a-z]*[0-9]+$/ {
         id = $1; if (id ~ /^[0-9]+$/) id = "p" id
         g = tolower($3); if (g == "m" || g == "f") print id, g }' "$info" | sort -u -k1,1 >"$tmp/gender"
  have_gender=true
else
  echo "$prog: note: $info not found; no spk2gender" >&2
fi

for split in train dev eval; do
  out=$data/$split
  awk -v s="$split" '$1 == s' "$tmp/all" | cut -d' ' -f2- | sort -k1,1 >"$tmp/$split"
  [[ -s $tmp/$split ]] || die "no $split utterances (sentence numbers: eval $eval_ids, dev $dev_ids)"
  mkdir -p "$out"
  cut -d' ' -f1,2 "$tmp/$split" >"$tmp/wav.scp"
  awk '{ t = $0; sub(/^[^ ]+ [^ ]+ /, "", t); print $1, t }' "$tmp/$split" >"$tmp/text"
  awk '{ spk = $1; sub(/_[0-9]+$/, "", spk); print $1, spk }' "$tmp/wav.scp" >"$tmp/utt2spk"
  awk '{ u[$2] = u[$2] " " $1 } END { for (s in u) print s u[s] }' "$tmp/utt2spk" | sort >"$tmp/spk2utt"
  files=(wav.scp utt2spk spk2utt text)
  rm -f "$out/spk2gender"
  if [[ $have_gender == true ]]; then
    # only when speaker-info.txt names every speaker (p315 and s5 lack a line in some copies)
    missing=$(cut -d' ' -f1 "$tmp/spk2utt" | join -v 1 - "$tmp/gender" | head -n 3 | tr '\n' ' ')
    if [[ -z $missing ]]; then
      cut -d' ' -f1 "$tmp/spk2utt" | join - "$tmp/gender" >"$tmp/spk2gender"
      files+=(spk2gender)
    else
      echo "$prog: note: $info lacks speaker(s) $missing; no $out/spk2gender" >&2
    fi
  fi
  for f in "${files[@]}"; do
    mv "$tmp/$f" "$out/$f"
  done
  echo "$prog: $out: $(wc -l <"$out/wav.scp") utterances of $(wc -l <"$out/spk2utt") speakers" >&2
done
