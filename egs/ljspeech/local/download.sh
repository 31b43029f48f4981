#!/usr/bin/env bash
# Download (or take from DOWNLOAD_DIR) and extract LJSpeech 1.1.
#
#   local/download.sh [--url URL] [--checksums FILE] DOWNLOAD_DIR CORPUS_DIR
#
#   - CORPUS_DIR already holds metadata.csv and wavs/: nothing to do;
#   - else DOWNLOAD_DIR/LJSpeech-1.1.tar.bz2 (2.6 GB) is fetched from
#     https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2 (--url) with
#     utils/fetch_archive.sh: resumable, its SHA-256 checked against local/checksums
#     (or --checksums FILE), and not fetched at all if it is already there (put it there
#     yourself to download by hand); then extracted into CORPUS_DIR (through
#     CORPUS_DIR.partial, so an interrupted extraction leaves nothing half-made). The
#     tarball unpacks to LJSpeech-1.1/{metadata.csv,README,wavs/}; CORPUS_DIR is that
#     directory (run.sh: DOWNLOAD_DIR/LJSpeech-1.1).
# LJSpeech is in the public domain: no licence to accept, nothing to register for.
# Extraction uses lbzip2 (parallel) when it is installed, else tar -j.
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
utils=$(cd "$here/../../../recipes/utils" && pwd)
url=https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2
page=https://keithito.com/LJ-Speech-Dataset/
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

if [[ -s $corpus_dir/metadata.csv && -d $corpus_dir/wavs ]]; then
  echo "$prog: $corpus_dir is there; nothing to download" >&2
  exit 0
fi
if [[ -e $corpus_dir ]] && [[ -n $(ls -A "$corpus_dir") ]]; then
  die "$corpus_dir exists but lacks metadata.csv or wavs/; move it away (or complete it) and rerun"
fi

mkdir -p "$download_dir"
archive=$download_dir/LJSpeech-1.1.tar.bz2
"$utils/fetch_archive.sh" --checksums "$checksums" --page "$page" "$url" "$archive" \
  || die "no LJSpeech archive; see the message above"

tmp=$corpus_dir.partial
rm -rf "$tmp"
mkdir -p "$tmp"
echo "$prog: extracting $archive (some minutes)" >&2
if command -v lbzip2 >/dev/null; then
  tar --use-compress-program=lbzip2 -xf "$archive" -C "$tmp"
else
  tar -xjf "$archive" -C "$tmp"
fi
src=$(find "$tmp" -maxdepth 2 -type f -name metadata.csv | head -n 1)
[[ -n $src && -d $(dirname "$src")/wavs ]] || die "$archive holds no LJSpeech-1.1/ with metadata.csv and wavs/"
src=$(dirname "$src")
[[ ! -d $corpus_dir ]] || rmdir "$corpus_dir"
mv "$src" "$corpus_dir"
rm -rf "$tmp"
echo "$prog: $corpus_dir: $(find "$corpus_dir/wavs" -name '*.wav' | wc -l) wav files, $(wc -l <"$corpus_dir/metadata.csv") lines in metadata.csv" >&2
