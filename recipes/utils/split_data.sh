#!/usr/bin/env bash
# split_data.sh: split a Kaldi data dir by utterance into <data-dir>/split<N>/{1..N}.
set -euo pipefail

usage="Usage: $0 [--per-utt] <data-dir> <N>
Writes <data-dir>/split<N>/1 .. <data-dir>/split<N>/<N>: contiguous chunks of the sorted
utterances (sizes differ by at most one), each a valid data dir with its rows of
wav.scp/segments/utt2spk/text/... and its own spk2utt. Splitting is always by
utterance; --per-utt is accepted for Kaldi compatibility. Jobs then read
<data-dir>/split<N>/JOB (see run_local.sh).
Runs \${PYTHON:-python3} -m vocoder.data.kaldi split."

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) echo "$usage"; exit 0 ;;
    --per-utt) shift ;;
    -*) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [[ $# -ne 2 ]]; then
  echo "$usage" >&2
  exit 1
fi

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m vocoder.data.kaldi split "$1" "$2"
