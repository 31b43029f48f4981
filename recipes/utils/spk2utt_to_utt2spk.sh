#!/usr/bin/env bash
# spk2utt_to_utt2spk.sh: turn a spk2utt table into a utt2spk table.
set -euo pipefail

usage="Usage: $0 [<spk2utt>] > <utt2spk>
Reads <spk2utt> (or stdin when absent or '-') and writes the utt2spk table, sorted
(LC_ALL=C), to stdout. Example: $0 data/train/spk2utt > data/train/utt2spk
Runs \${PYTHON:-python3} -m vocoder.data.kaldi spk2utt-to-utt2spk."

case "${1:-}" in
  -h|--help) echo "$usage"; exit 0 ;;
esac
if [[ $# -gt 1 ]] || [[ $# -eq 0 && -t 0 ]] || [[ "${1:-}" == -?* ]]; then
  echo "$usage" >&2
  exit 1
fi

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m vocoder.data.kaldi spk2utt-to-utt2spk "${1:--}"
