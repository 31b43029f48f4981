# shellcheck shell=bash
# job_lib.sh: what the job launchers (run_local.sh, slurm.sh) share; sourced, not run.
#
#   parse_job_range ARG   if ARG is a JOB=A:B (or JOB=A) range, set job_var, first and
#                         last and return 0 (the caller then shifts it off); else
#                         return 1 and leave them as they were. An empty range dies.
#   quote_command ARGS    the command line of one job: arguments quoted for bash, bare
#                         shell operators ('|', '&&', '||', ';', '>', '>>', '<', '2>',
#                         '2>>', '2>&1', '|&') left as they are.
# The caller defines die().

# shellcheck disable=SC2034  # job_var, first and last are the caller's
parse_job_range() {
  [[ "${1:-}" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)(:([0-9]+))?$ ]] || return 1
  job_var=${BASH_REMATCH[1]}
  first=$((10#${BASH_REMATCH[2]}))
  last=$((10#${BASH_REMATCH[4]:-${BASH_REMATCH[2]}}))
  (( first <= last )) || die "empty job range $1"
  return 0
}

quote_command() {
  local arg out=""
  for arg in "$@"; do
    case "$arg" in
      '|'|'||'|'&&'|';'|'>'|'>>'|'<'|'2>'|'2>>'|'2>&1'|'|&') out+="$arg " ;;
      *)
        if [[ "$arg" =~ ^[A-Za-z0-9_./:=+,@%^-]+$ ]]; then
          out+="$arg "
        else
          out+="${arg@Q} "
        fi ;;
    esac
  done
  printf '%s' "${out% }"
}
