#!/usr/bin/env bash
# Kaldi-style data directories for the embedded mini corpus.
#
#   egs/mini/local/data_prep.sh CORPUS_DIR DATA_DIR
#
# Reads CORPUS_DIR/{sentences.txt,splits/{train,dev,eval},speech/*/*.flac,music/*/*.flac}
# (see egs/mini/corpus/README.md) and writes, for each split,
#   DATA_DIR/speech_<split>/{wav.scp,utt2spk,spk2utt,text}
#   DATA_DIR/music_<split>/{wav.scp,utt2spk,spk2utt}
# wav.scp holds absolute paths to the FLAC files; the speaker is the voice (kal, ked, slt,
# f3) or the instrument (violin, flute, trumpet, cello), i.e. the utterance id's prefix.
# Files are sorted with LC_ALL=C and have unique keys. Running it again rewrites the same
# files (other files in DATA_DIR are left alone). Needs only bash and coreutils/awk.
set -euo pipefail
export LC_ALL=C

die() { echo "data_prep.sh: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: data_prep.sh CORPUS_DIR DATA_DIR"
[[ -d $1 ]] || die "corpus directory '$1' not found"
corpus=$(cd "$1" && pwd -P)
data=$2
case $corpus in
  *[[:space:]]*) die "corpus path '$corpus' contains whitespace, which wav.scp cannot hold" ;;
esac
for f in sentences.txt splits/train splits/dev splits/eval; do
  [[ -s $corpus/$f ]] || die "$corpus/$f is missing or empty (regenerate with egs/mini/local/make_corpus.sh)"
done

# every utterance in at most one split, every sentence of dev/eval unseen in train
dups=$(cat "$corpus"/splits/{train,dev,eval} | sort | uniq -d | head -n 3)
[[ -z $dups ]] || die "utterance(s) listed twice in $corpus/splits: $dups"
dups=$(cat <(sed -n 's/^[^_]*_\(s[0-9]*\)$/\1/p' "$corpus/splits/train" | sort -u) \
  <(sed -n 's/^[^_]*_\(s[0-9]*\)$/\1/p' "$corpus/splits/dev" "$corpus/splits/eval" | sort -u) \
  | sort | uniq -d | head -n 3)
[[ -z $dups ]] || die "sentence(s) $dups occur in train and in dev/eval"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for split in train dev eval; do
  : >"$tmp/speech.wav.scp"
  : >"$tmp/music.wav.scp"
  n=0
  while read -r utt rest; do
    n=$((n + 1))
    [[ -n $utt ]] || continue
    [[ -z ${rest:-} ]] || die "$corpus/splits/$split line $n: expected one utterance id, got '$utt $rest'"
    [[ $utt =~ ^([A-Za-z0-9]+)_([sp])[0-9]+$ ]] \
      || die "$corpus/splits/$split line $n: bad utterance id '$utt' (want <speaker>_sNNN or <instrument>_pNNN)"
    spk=${BASH_REMATCH[1]}
    if [[ ${BASH_REMATCH[2]} == s ]]; then kind=speech; else kind=music; fi
    wav=$corpus/$kind/$spk/$utt.flac
    [[ -s $wav ]] || die "$wav is missing (listed in $corpus/splits/$split line $n)"
    echo "$utt $wav" >>"$tmp/$kind.wav.scp"
  done <"$corpus/splits/$split"

  for kind in speech music; do
    out=$data/${kind}_$split
    [[ -s $tmp/$kind.wav.scp ]] || die "no $kind utterances in $corpus/splits/$split"
    mkdir -p "$out"
    sort "$tmp/$kind.wav.scp" >"$tmp/wav.scp"
    awk '{ split($1, a, "_"); print $1, a[1] }' "$tmp/wav.scp" >"$tmp/utt2spk"
    awk '{ u[$2] = u[$2] " " $1 } END { for (s in u) print s u[s] }' "$tmp/utt2spk" | sort >"$tmp/spk2utt"
    files=(wav.scp utt2spk spk2utt)
    if [[ $kind == speech ]]; then
      # text: the sentence of each utterance, looked up by its sNNN suffix
      awk 'NR == FNR { if (NF > 1) { id = $1; $1 = ""; sent[id] = substr($0, 2) }; next }
           { n = split($1, a, "_"); sid = a[n]
             if (!(sid in sent)) { print "data_prep.sh: no sentence " sid " for " $1 > "/dev/stderr"; bad = 1; exit }
             print $1, sent[sid] }
           END { exit bad }' "$corpus/sentences.txt" "$tmp/wav.scp" >"$tmp/text" \
        || die "$corpus/sentences.txt lacks sentences listed in splits/$split"
      files+=(text)
    fi
    for f in "${files[@]}"; do
      mv "$tmp/$f" "$out/$f"
    done
  done
done
echo "data_prep.sh: wrote $data/{speech,music}_{train,dev,eval}"
