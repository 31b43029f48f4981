# shellcheck shell=bash
# log.sh: timestamped messages for recipe scripts.
#
# Usage (in run.sh):
#     . utils/log.sh
#     log "stage 1: feature extraction"
# prints `2024-05-01 12:00:00 (run.sh:42) stage 1: feature extraction` to stderr.

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  echo "Usage: . ${0##*/}   (source it, then call: log MESSAGE...)" >&2
  exit 1
fi

log() {
  local where="${BASH_SOURCE[1]:-$0}"
  echo "$(date '+%Y-%m-%d %H:%M:%S') (${where##*/}:${BASH_LINENO[0]}) $*" >&2
}
