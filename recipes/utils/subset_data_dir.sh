#!/usr/bin/env bash
# subset_data_dir.sh: copy some of the utterances of a Kaldi data dir into a new one.
set -euo pipefail

usage="Usage: $0 --utt-list <utt-list> <src-dir> <dest-dir>
       $0 --spk-list <spk-list> <src-dir> <dest-dir>
       $0 --first <src-dir> <N> <dest-dir>
       $0 --last <src-dir> <N> <dest-dir>
       $0 --per-spk <N> <src-dir> <dest-dir>
The lists hold one id per line (first field). --first/--last take the first/last N
utterances in sorted order; --per-spk the first N utterances of every speaker (in
spk2utt order; recipes' debug subsets). <dest-dir> gets the matching rows of every table and a
regenerated spk2utt.
Runs \${PYTHON:-python3} -m vocoder.data.kaldi subset."

case "${1:-}" in
  -h|--help) echo "$usage"; exit 0 ;;
  --utt-list|--spk-list)
    [[ $# -eq 4 ]] || { echo "$usage" >&2; exit 1; }
    args=("$1" "$2" "$3" "$4") ;;
  --per-spk)
    [[ $# -eq 4 ]] || { echo "$usage" >&2; exit 1; }
    [[ "$2" =~ ^[0-9]+$ ]] || { echo "$0: --per-spk: N must be a number, got '$2'" >&2; exit 1; }
    [[ -f "$3/spk2utt" ]] || { echo "$0: $3/spk2utt: no such file" >&2; exit 1; }
    list=$(mktemp)
    trap 'rm -f "$list"' EXIT
    awk -v n="$2" '{for (i = 2; i <= n + 1 && i <= NF; i++) print $i}' "$3/spk2utt" | LC_ALL=C sort > "$list"
    args=(--utt-list "$list" "$3" "$4") ;;
  --first|--last)
    [[ $# -eq 4 ]] || { echo "$usage" >&2; exit 1; }
    args=("$1" "$3" "$2" "$4") ;;
  *)
    echo "$usage" >&2
    exit 1 ;;
esac

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m vocoder.data.kaldi subset "${args[@]}"
