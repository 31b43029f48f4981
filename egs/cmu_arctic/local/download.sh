#!/usr/bin/env bash
# Download (or take from DOWNLOAD_DIR) and extract the CMU ARCTIC voices.
#
#   local/download.sh [--version 0.95-release|none] [--base_url URL] [--checksums FILE]
#                     DOWNLOAD_DIR CORPUS_DIR SPK...
#
# For each speaker SPK (bdl, slt, clb, rms, ...):
#   - CORPUS_DIR/cmu_us_SPK_arctic/ already holds wav/ and etc/txt.done.data: skipped;
#   - else DOWNLOAD_DIR/cmu_us_SPK_arctic-<version>.tar.bz2 is fetched from
#     <base_url> (http://festvox.org/cmu_arctic/packed) with utils/fetch_archive.sh:
#     resumable, checked against local/checksums (or --checksums FILE), and not
#     fetched at all if it is already there (put it there yourself to download by
#     hand); then extracted into CORPUS_DIR (through a temporary dir, so an
#     interrupted extraction leaves nothing half-made).
# --version 0.95-release (default) takes the 0.95 release tarballs; --version none takes
# the unversioned cmu_us_SPK_arctic.tar.bz2, which exists for all 18 speakers (aew, ahw,
# aup, awb, axb, bdl, clb, eey, fem, gka, jmk, ksp, ljm, lnh, rms, rxr, slp, slt) and has
# known SHA-256 digests; the 0.95 releases exist for the original voices (bdl, slt, clb,
# rms, jmk; awb as 0.90-release). All unpack to cmu_us_SPK_arctic/{wav,etc,lab,...}.
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
utils=$(cd "$here/../../../recipes/utils" && pwd)
version=0.95-release
base_url=http://festvox.org/cmu_arctic/packed
page=http://festvox.org/cmu_arctic/
checksums=$here/checksums
while [[ $# -gt 0 ]]; do
  case $1 in
    --version) [[ $# -ge 2 ]] || die "--version needs a value"; version=$2; shift 2 ;;
    --base_url|--base-url) [[ $# -ge 2 ]] || die "$1 needs a value"; base_url=$2; shift 2 ;;
    --checksums) [[ $# -ge 2 ]] || die "--checksums needs a value"; checksums=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[[ $# -ge 3 ]] || die "usage: $prog [--version 0.95-release|none] [--base_url URL] [--checksums FILE] DOWNLOAD_DIR CORPUS_DIR SPK..."
download_dir=$1
corpus_dir=$2
shift 2

mkdir -p "$download_dir" "$corpus_dir"
for spk in "$@"; do
  [[ $spk =~ ^[a-z]+$ ]] || die "bad speaker name '$spk' (want e.g. bdl, slt, clb, rms)"
  dir=$corpus_dir/cmu_us_${spk}_arctic
  if [[ -d $dir/wav && -s $dir/etc/txt.done.data ]]; then
    echo "$prog: $dir is there; skipping $spk" >&2
    continue
  fi
  [[ ! -e $dir ]] || die "$dir exists but lacks wav/ or etc/txt.done.data; move it away (or complete it) and rerun"
  if [[ $version == none || -z $version ]]; then
    archive=cmu_us_${spk}_arctic.tar.bz2
  else
    archive=cmu_us_${spk}_arctic-${version}.tar.bz2
  fi
  if ! "$utils/fetch_archive.sh" --checksums "$checksums" --page "$page" \
      "$base_url/$archive" "$download_dir/$archive"; then
    die "no archive for speaker $spk (see above). If the server said 404: not every voice has a $version tarball (see $base_url/); ./run.sh --arctic_version none takes cmu_us_${spk}_arctic.tar.bz2."
  fi
  tmp=$corpus_dir/.extract_$spk
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo "$prog: extracting $download_dir/$archive" >&2
  tar -xjf "$download_dir/$archive" -C "$tmp"
  src=$(find "$tmp" -maxdepth 2 -type d -name "cmu_us_${spk}_arctic" | head -n 1)
  [[ -n $src && -d $src/wav && -s $src/etc/txt.done.data ]] \
    || die "$download_dir/$archive holds no cmu_us_${spk}_arctic/ with wav/ and etc/txt.done.data"
  mv "$src" "$dir"
  rm -rf "$tmp"
  echo "$prog: $dir: $(find "$dir/wav" -name '*.wav' | wc -l) wav files" >&2
done
