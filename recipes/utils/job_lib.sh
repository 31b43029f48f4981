# shellcheck shell=bash
# job_lib.sh: what the job launchers (run_local.sh, slurm.sh) and recipes share; sourced,
# not run.
#
#   num_cpus              the number of CPUs this process may use (GNU nproc would report
#                         OMP_NUM_THREADS or OMP_THREAD_LIMIT instead when they are set)
#   parse_job_range ARG   if ARG is a JOB=A:B (or JOB=A) range, set job_var, first and
#                         last and return 0 (the caller then shifts it off); else
#                         return 1 and leave them as they were. An empty range dies.
#   quote_command ARGS    the command line of one job: arguments quoted for bash, bare
#                         shell operators ('|', '&&', '||', ';', '>', '>>', '<', '2>',
#                         '2>>', '2>&1', '|&') left as they are.
# The caller defines die() (parse_job_range uses it).

num_cpus() {
  env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1
}

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
