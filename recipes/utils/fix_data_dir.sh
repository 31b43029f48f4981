#!/usr/bin/env bash
# fix_data_dir.sh: make a Kaldi data dir consistent in place.
set -euo pipefail

usage="Usage: $0 <data-dir>
Sorts every table (LC_ALL=C), drops empty lines and repeated identical lines, drops
utterances missing from any per-utterance table (wav.scp or segments, utt2spk, text,
utt2dur, ...), keeps only the recordings still used, and regenerates spk2utt. Prints
what was dropped; the original files are copied to <data-dir>/.backup/ first.
Runs \${PYTHON:-python3} -m vocoder.data.kaldi fix."

case "${1:-}" in
  -h|--help) echo "$usage"; exit 0 ;;
esac
if [[ $# -ne 1 || "$1" == -* ]]; then
  echo "$usage" >&2
  exit 1
fi

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m vocoder.data.kaldi fix "$1"
