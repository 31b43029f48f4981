#!/usr/bin/env bash
# Download (or take from DOWNLOAD_DIR) and extract the CSTR VCTK Corpus 0.92.
#
#   local/download.sh [--url URL] [--checksums FILE] DOWNLOAD_DIR CORPUS_DIR
#
#   - CORPUS_DIR already holds wav48_silence_trimmed/ and txt/: nothing to do;
#   - else DOWNLOAD_DIR/VCTK-Corpus-0.92.zip (about 11 GB) is fetched from the Edinburgh
#     DataShare (https://datashare.ed.ac.uk/handle/10283/3443) with
#     utils/fetch_archive.sh: resumable, its SHA-256 checked against local/checksums
#     (or --checksums FILE), and not fetched at all if it is already there (put it
#     there yourself to download by hand; DataShare's whole-item zip
#     DS_10283_3443.zip, which holds it, will do as well); then unzipped into
#     CORPUS_DIR (through CORPUS_DIR.partial, so an interrupted extraction leaves
#     nothing half-made).
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
utils=$(cd "$here/../../../recipes/utils" && pwd)
url=https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip
page=https://datashare.ed.ac.uk/handle/10283/3443
checksums=$here/checksums
while [[ $# -gt 0 ]]; do
  case $1 in
    --url) [[ $# -ge 2 ]] || die "--url needs a value"; url=$2; shift 2 ;;
    --checksums) [[ $# -ge 2 ]] || die "--checksums needs a value"; checksums=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[[ $# -eq 2 ]] || die "usage: $prog [--url URL] [--checksums FILE] DOWNLOAD_DIR CORPUS_DIR"
download_dir=$1
corpus_dir=${2%/}

if [[ -d $corpus_dir/wav48_silence_trimmed && -d $corpus_dir/txt ]]; then
  echo "$prog: $corpus_dir is there; nothing to download" >&2
  exit 0
fi
if [[ -e $corpus_dir ]] && [[ -n $(ls -A "$corpus_dir") ]]; then
  die "$corpus_dir exists but lacks wav48_silence_trimmed/ or txt/; move it away (or complete it) and rerun"
fi

mkdir -p "$download_dir"
archive=$download_dir/VCTK-Corpus-0.92.zip
whole_item=$download_dir/DS_10283_3443.zip
if [[ ! -f $archive && -f $whole_item ]]; then
  echo "$prog: taking VCTK-Corpus-0.92.zip out of $whole_item" >&2
  unzip -o -q "$whole_item" VCTK-Corpus-0.92.zip -d "$download_dir" \
    || die "$whole_item holds no readable VCTK-Corpus-0.92.zip"
fi
"$utils/fetch_archive.sh" --checksums "$checksums" --page "$page" "$url" "$archive" \
  || die "no VCTK archive; see the message above"

tmp=$corpus_dir.partial
rm -rf "$tmp"
mkdir -p "$tmp"
echo "$prog: extracting $archive (some minutes)" >&2
if command -v unzip >/dev/null; then
  unzip -q "$archive" -d "$tmp"
else
  python3 -m zipfile -e "$archive" "$tmp"
fi
src=$(find "$tmp" -maxdepth 2 -type d -name wav48_silence_trimmed | head -n 1)
[[ -n $src && -d $(dirname "$src")/txt ]] || die "$archive holds no wav48_silence_trimmed/ and txt/"
src=$(dirname "$src")
[[ ! -d $corpus_dir ]] || rmdir "$corpus_dir"
mv "$src" "$corpus_dir"
rm -rf "$tmp"
echo "$prog: $corpus_dir: $(find "$corpus_dir/wav48_silence_trimmed" -mindepth 1 -maxdepth 1 -type d | wc -l) speakers" >&2
