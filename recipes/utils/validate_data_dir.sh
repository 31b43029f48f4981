#!/usr/bin/env bash
# validate_data_dir.sh: check a Kaldi data dir; each problem names its file and line.
set -euo pipefail

usage="Usage: $0 [--need-text] [--allow-pipes] <data-dir>
Checks wav.scp, utt2spk, spk2utt (and segments, text, other tables if present): sorted
(LC_ALL=C) unique keys, no empty lines, consistent utterance and speaker lists, valid
segments. Exit status 1 with one line per problem on stderr if the dir is invalid.
  --need-text     require a text file
  --allow-pipes   accept 'command |' entries in wav.scp
Runs \${PYTHON:-python3} -m vocoder.data.kaldi validate."

opts=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) echo "$usage"; exit 0 ;;
    --need-text|--allow-pipes) opts+=("$1"); shift ;;
    -*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [[ $# -ne 1 ]]; then
  echo "$usage" >&2
  exit 1
fi

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m vocoder.data.kaldi validate "${opts[@]}" "$1"
