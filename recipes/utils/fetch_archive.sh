#!/usr/bin/env bash
# fetch_archive.sh: download a corpus archive (resumable) or take one put there by hand,
# and check it before anything is extracted.
set -euo pipefail

prog=${0##*/}
usage="Usage: $0 [options] <url> <file>
Makes sure <file> holds the archive served at <url>, complete and intact:
  - <file> already there (fetched before, or downloaded by hand and put there): it is
    checked and nothing is fetched;
  - otherwise <url> is downloaded to <file>.part, resuming what an interrupted run left
    (curl -C -, else wget -c), checked, and renamed to <file>.
The check: the sha256 or md5 listed for the name of <file> in --checksums; for an
archive with no listed checksum, a warning and an integrity test instead (bzip2 -t,
gzip -t, xz -t or unzip -t, by extension).
When the download fails (no network, proxy, moved URL), the message says where to
download the file by hand and where to put it; the exit status is then 1.
Options:
  --checksums FILE   lines '<sha256|md5> <hex digest> <file name>'; '#' starts a comment
  --page URL         the page to download the archive from by hand (for the message)
  --no-download      never use the network: only check a <file> that is there"

die() {
  echo "$prog: $*" >&2
  exit 1
}
warn() {
  echo "$prog: warning: $*" >&2
}

checksums=""
page=""
download=true
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) echo "$usage"; exit 0 ;;
    --checksums) [[ $# -ge 2 ]] || die "option $1 needs a value"; checksums=$2; shift 2 ;;
    --checksums=*) checksums=${1#*=}; shift ;;
    --page) [[ $# -ge 2 ]] || die "option $1 needs a value"; page=$2; shift 2 ;;
    --page=*) page=${1#*=}; shift ;;
    --no-download) download=false; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see $0 --help)" ;;
    *) break ;;
  esac
done
if [[ $# -ne 2 ]]; then
  echo "$usage" >&2
  exit 1
fi
url=$1
file=$2
name=${file##*/}
[[ -n $name ]] || die "<file> '$file' names a directory, not a file"
[[ -z $checksums || -f $checksums ]] || die "checksum list '$checksums' not found"

# The listed checksum of $name: "algo digest", or nothing.
expected=""
if [[ -n $checksums ]]; then
  expected=$(awk -v name="$name" '
    { sub(/#.*/, "") }
    NF == 3 && $3 == name { print tolower($1), tolower($2); exit }' "$checksums")
  case ${expected%% *} in
    ""|sha256|md5) ;;
    *) die "$checksums: unknown checksum type '${expected%% *}' for $name (want sha256 or md5)" ;;
  esac
fi

# check FILE: 0 if intact; the reason on stdout otherwise.
check() {
  local f=$1 algo digest actual
  if [[ -n $expected ]]; then
    read -r algo digest <<<"$expected"
    case $algo in
      sha256) actual=$(sha256sum "$f" | cut -d' ' -f1) ;;
      *) actual=$(md5sum "$f" | cut -d' ' -f1) ;;
    esac
    if [[ $actual != "$digest" ]]; then
      echo "$algo mismatch (expected $digest, got $actual)"
      return 1
    fi
    return 0
  fi
  local tester
  case $name in
    *.tar.bz2|*.tbz2|*.bz2) tester=(bzip2 -tq) ;;
    *.tar.gz|*.tgz|*.gz) tester=(gzip -tq) ;;
    *.tar.xz|*.txz|*.xz) tester=(xz -tq) ;;
    *.zip) tester=(unzip -tqq) ;;
    *) tester=() ;;
  esac
  if (( ${#tester[@]} == 0 )); then
    return 0
  fi
  if ! command -v "${tester[0]}" >/dev/null; then
    warn "${tester[0]} not found: $f is not tested"
    return 0
  fi
  if ! "${tester[@]}" "$f" >/dev/null 2>&1; then
    echo "the archive is truncated or corrupt (${tester[*]} failed)"
    return 1
  fi
}

manual_hint() {
  echo "$prog: download it by hand${page:+ (from $page)} and put it at $file;" \
    "the stage then only checks and extracts it." >&2
}

if [[ -z $expected ]]; then
  warn "no checksum known for $name${checksums:+ (none listed in $checksums)}: only an integrity test of the archive is done"
fi

if [[ -f $file ]]; then
  if reason=$(check "$file"); then
    echo "$prog: $file is there and passes the check; nothing to fetch" >&2
    exit 0
  fi
  die "$file is there but fails the check: $reason. If it is a partial download, rename it to $file.part and rerun to resume it; otherwise delete it and rerun."
fi

if [[ $download == false ]]; then
  echo "$prog: $file is missing and downloading is off (--no-download)." >&2
  manual_hint
  exit 1
fi

mkdir -p "$(dirname "$file")"
part=$file.part
if [[ -s $part ]]; then
  echo "$prog: resuming $url ($(du -h "$part" | cut -f1) already in $part)" >&2
else
  echo "$prog: downloading $url to $file" >&2
fi
rc=0
if command -v curl >/dev/null; then
  tool=curl
  curl --fail --location --retry 3 --continue-at - --output "$part" "$url" || rc=$?
elif command -v wget >/dev/null; then
  tool=wget
  wget --continue --tries=3 --output-document="$part" "$url" || rc=$?
else
  echo "$prog: neither curl nor wget is installed, so $url cannot be downloaded." >&2
  manual_hint
  exit 1
fi
if (( rc != 0 )); then
  # A .part that is already complete makes the server refuse the resume (HTTP 416):
  # accept it when its listed checksum says so.
  if [[ -n $expected && -s $part ]] && check "$part" >/dev/null; then
    rc=0
  else
    echo "$prog: could not download $url ($tool exit status $rc; no network, a proxy, or a moved URL?)." >&2
    [[ -s $part ]] && echo "$prog: the partial download $part is kept; rerunning resumes it." >&2
    manual_hint
    exit 1
  fi
fi
if ! reason=$(check "$part"); then
  die "downloaded $part fails the check: $reason. Delete it and rerun to download it again."
fi
mv -f "$part" "$file"
echo "$prog: $file downloaded and checked" >&2
