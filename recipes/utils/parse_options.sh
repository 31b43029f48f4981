# shellcheck shell=bash
# parse_options.sh: Kaldi-style option parsing for recipe scripts.
#
# Usage (in run.sh, after the defaults are set):
#     stage=0
#     stop_stage=100
#     nj=4
#     help_message="Usage: $0 [--stage N] [--stop_stage N] [--nj N] <arg>"
#     . utils/parse_options.sh
#
# Every option names a shell variable that already exists: `--name value` and
# `--name=value` both assign it; dashes in the name become underscores, so
# `--stop-stage 3` sets stop_stage. If the variable holds true or false, the new value
# must be true or false as well. `--help` / `-h` prints $help_message and exits 0; an
# option with no variable of that name is an error ("unknown option --foo", exit 1).
# Parsing stops at `--` or at the first argument that does not start with `--`; the
# arguments left over stay in "$@".
#
# Must be sourced (it changes the caller's variables and positional arguments).

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  echo "Usage: . ${0##*/}   (source it from run.sh after setting the defaults)" >&2
  exit 1
fi

while [[ $# -gt 0 ]]; do
  case "$1" in
    --help|-h)
      printf '%s\n' "${help_message:-No help message; read the top of ${0##*/}.}"
      exit 0 ;;
    --)
      shift
      break ;;
    --*=*)
      __po_opt=${1%%=*}
      __po_value=${1#*=}
      __po_shift=1 ;;
    --?*)
      __po_opt=$1
      if [[ $# -lt 2 ]]; then
        echo "${0##*/}: option $1 needs a value" >&2
        exit 1
      fi
      __po_value=$2
      __po_shift=2 ;;
    *)
      break ;;
  esac
  __po_name=${__po_opt#--}
  __po_name=${__po_name//-/_}
  if [[ ! "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [[ -z "${!__po_name+set}" ]]; then
    echo "${0##*/}: unknown option $__po_opt" >&2
    exit 1
  fi
  __po_old=${!__po_name}
  if [[ "$__po_old" == true || "$__po_old" == false ]] \
      && [[ "$__po_value" != true && "$__po_value" != false ]]; then
    echo "${0##*/}: option $__po_opt takes true or false, got '$__po_value'" >&2
    exit 1
  fi
  printf -v "$__po_name" '%s' "$__po_value"
  shift "$__po_shift"
done
unset __po_opt __po_value __po_shift __po_name __po_old
