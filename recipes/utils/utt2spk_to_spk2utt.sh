#!/usr/bin/env bash
# utt2spk_to_spk2utt.sh: turn a utt2spk table into a spk2utt table.
set -euo pipefail

usage="Usage: $0 [<utt2spk>] > <spk2utt>
Reads <utt2spk> (or stdin when absent or '-') and writes the spk2utt table, sorted
(LC_ALL=C), to stdout. Example: $0 data/train/utt2spk > data/train/spk2utt
Runs \${PYTHON:-python3} -m vocoder.data.kaldi utt2spk-to-spk2utt."

case "${1:-}" in
  -h|--help) echo "$usage"; exit 0 ;;
esac
if [[ $# -gt 1 ]] || [[ $# -eq 0 && -t 0 ]] || [[ "${1:-}" == -?* ]]; then
  echo "$usage" >&2
  exit 1
fi

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m vocoder.data.kaldi utt2spk-to-spk2utt "${1:--}"
