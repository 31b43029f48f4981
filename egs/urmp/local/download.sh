#!/usr/bin/env bash
# Take the URMP dataset from DOWNLOAD_DIR (downloaded by hand: a licence form stands
# before the download), check it and unpack it into CORPUS_DIR.
#
#   local/download.sh [--archive FILE] [--checksums FILE] [--with_video true|false]
#                     DOWNLOAD_DIR CORPUS_DIR
#
# URMP (University of Rochester Multi-Modal Music Performance dataset) is handed out by
# its authors through a request form on https://labsites.rochester.edu/air/projects/URMP.html,
# so nothing is fetched here:
#   - CORPUS_DIR already holds the piece folders (01_Jupiter_vn_vc/AuSep_1_vn_01_Jupiter.wav,
#     ...): nothing to do;
#   - else the archive is looked for: --archive FILE, or DOWNLOAD_DIR/URMP.zip,
#     Dataset.zip, URMP.tar.gz, Dataset.tar.gz, URMP.tar or Dataset.tar; it is checked
#     with utils/fetch_archive.sh --no-download (the sha256 or md5 listed for its name in
#     local/checksums, or --checksums FILE; with none listed, as now, a full test of
#     the archive: unzip -t, gzip -t, ...) and unpacked with local/unpack.py into
#     CORPUS_DIR.partial, resumably (a rerun after an interruption keeps the files
#     already written; the check is not repeated for the same archive), then the folder
#     holding the pieces is moved to CORPUS_DIR. The videos (Vid_*.mp4) are left in the
#     archive unless --with_video true;
#   - no archive: a message says where to get it and where to put it; exit status 1.
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
utils=$(cd "$here/../../../recipes/utils" && pwd)
page=https://labsites.rochester.edu/air/projects/URMP.html
checksums=$here/checksums
archive=""
with_video=false
while [[ $# -gt 0 ]]; do
  case $1 in
    --archive) [[ $# -ge 2 ]] || die "--archive needs a value"; archive=$2; shift 2 ;;
    --checksums) [[ $# -ge 2 ]] || die "--checksums needs a value"; checksums=$2; shift 2 ;;
    --with_video|--with-video) [[ $# -ge 2 ]] || die "$1 needs a value"; with_video=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[[ $# -eq 2 ]] || die "usage: $prog [--archive FILE] [--checksums FILE] [--with_video true|false] DOWNLOAD_DIR CORPUS_DIR"
[[ $with_video == true || $with_video == false ]] || die "--with_video must be true or false, got '$with_video'"
download_dir=${1%/}
corpus_dir=${2%/}

# The folder under $1 (itself, or up to 3 levels down) that holds URMP's piece folders.
find_pieces() {
  local wav
  [[ -d $1 ]] || return 1
  wav=$(find "$1" -maxdepth 4 -path '*/[0-9][0-9]_*/AuSep_*.wav' -not -name '*.part' -print -quit)
  [[ -n $wav ]] || return 1
  dirname "$(dirname "$wav")"
}

if found=$(find_pieces "$corpus_dir"); then
  if [[ $found -ef $corpus_dir ]]; then
    echo "$prog: $corpus_dir holds the URMP pieces; nothing to do" >&2
    exit 0
  fi
  die "the URMP piece folders are in $found, not directly in $corpus_dir: rerun with --corpus_dir $found"
fi
if [[ -d $corpus_dir ]] && [[ -n $(ls -A "$corpus_dir") ]]; then
  die "$corpus_dir exists but holds no URMP piece folders (NN_Title_inst.../AuSep_*.wav); move it away (or point --corpus_dir at the folder that holds 01_Jupiter_vn_vc/) and rerun"
fi

if [[ -z $archive ]]; then
  for name in URMP.zip Dataset.zip URMP.tar.gz Dataset.tar.gz URMP.tar Dataset.tar; do
    if [[ -f $download_dir/$name ]]; then
      archive=$download_dir/$name
      break
    fi
  done
fi
if [[ -z $archive ]]; then
  if found=$(find_pieces "$download_dir"); then
    die "no archive in $download_dir, but an unpacked URMP is at $found: rerun with --corpus_dir $found"
  fi
  cat >&2 <<EOF
$prog: the URMP dataset is not in $download_dir, and no script can download it:
$prog: its authors hand it out through a request form (read its terms of use there).
$prog:   1. open $page, fill in the
$prog:      download request, and download the dataset archive (about 12 GB);
$prog:   2. put it at $download_dir/URMP.zip (a .tar.gz as URMP.tar.gz; any other name:
$prog:      ./run.sh --urmp_archive FILE), or unpack it yourself so that
$prog:      $corpus_dir/01_Jupiter_vn_vc/AuSep_1_vn_01_Jupiter.wav exists;
$prog:   3. rerun: ./run.sh --download_dir $download_dir
$prog:      (unpacked elsewhere: ./run.sh --stage 0 --corpus_dir DIR, DIR holding 01_Jupiter_vn_vc/)
EOF
  exit 1
fi
[[ -f $archive ]] || die "archive $archive not found"

tmp=$corpus_dir.partial
stamp="$(basename "$archive") $(stat -c '%s %Y' "$archive")"
if [[ -f $tmp/.archive_checked && $(cat "$tmp/.archive_checked") == "$stamp" ]]; then
  echo "$prog: resuming the unpacking of $archive into $tmp (checked before)" >&2
else
  "$utils/fetch_archive.sh" --no-download --checksums "$checksums" --page "$page" "$page" "$archive" \
    || die "$archive fails the check (see above); download it again"
  mkdir -p "$tmp"
  echo "$stamp" >"$tmp/.archive_checked"
fi
echo "$prog: unpacking $archive (several minutes for the whole dataset)" >&2
opts=()
[[ $with_video == true ]] && opts+=(--with-video)
python3 "$here/unpack.py" "${opts[@]}" "$archive" "$tmp" || die "unpacking $archive failed; rerun to resume"
src=$(find_pieces "$tmp") || die "$archive holds no URMP piece folders (NN_Title_inst.../AuSep_*.wav)"
rm -f "$tmp/.archive_checked"
[[ ! -d $corpus_dir ]] || rmdir "$corpus_dir"
mv "$src" "$corpus_dir"
rm -rf "$tmp"
n=$(find "$corpus_dir" -mindepth 1 -maxdepth 1 -type d -name '[0-9][0-9]_*' | wc -l)
echo "$prog: $corpus_dir: $n pieces, $(find "$corpus_dir" -name 'AuSep_*.wav' | wc -l) tracks" >&2
