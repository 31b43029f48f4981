#!/usr/bin/env bash
# subset_data_dir.sh: copy some of the utterances of a Kaldi data dir into a new one.
set -euo pipefail

usage="Usage: $0 --utt-list <utt-list> <src-dir> <dest-dir>
       $0 --spk-list <spk-list> <src-dir> <dest-dir>
       $0 --first <src-dir> <N> <dest-dir>
       $0 --last <src-dir> <N> <dest-dir>
The lists hold one id per line (first field). --first/--last take the first/last N
utterances in sorted order. <dest-dir> gets the matching rows of every table and a
regenerated spk2utt.
Runs \${PYTHON:-python3} -m vocoder.data.kaldi subset."

case "${1:-}" in
  -h|--help) echo "$usage"; exit 0 ;;
  --utt-list|--spk-list)
    [[ $# -eq 4 ]] || { echo "$usage" >&2; exit 1; }
    args=("$1" "$2" "$3" "$4") ;;
  --first|--last)
    [[ $# -eq 4 ]] || { echo "$usage" >&2; exit 1; }
    args=("$1" "$3" "$2" "$4") ;;
  *)
    echo "$usage" >&2
    exit 1 ;;
esac

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m vocoder.data.kaldi subset "${args[@]}"
