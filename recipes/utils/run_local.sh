#!/usr/bin/env bash
# run_local.sh: run a command as parallel jobs on this machine, like Kaldi's run.pl.
set -euo pipefail

prog=${0##*/}
usage="Usage: $0 [options] [JOB=1:N] <log-file> <command> [<args>...]
Runs <command> once per job index 1..N (at most --max-jobs-run at a time). The string
JOB (or whatever name is given before '=') is replaced by the job index in <log-file>
and in every argument, e.g.
    $0 JOB=1:4 exp/log/extract.JOB.log vocoder extract data/train/split4/JOB ...
Without a JOB=A:B range the command runs once. Each job's stdout and stderr go to its
log, between a header (command line, start time) and a footer (exit status, elapsed
time). The command runs under 'bash -o pipefail -c'; every argument is quoted except a
bare shell operator ('|', '&&', '||', ';', '>', '>>', '<', '2>', '2>&1'), so an escaped
\\| builds a pipeline as with run.pl.
When a job fails: '$prog: K/N jobs failed' and the last 20 lines of the first failing
job's log on stderr, exit status 1. SIGINT/SIGTERM to $0 kill all its jobs.
Options:
  --max-jobs-run M   run at most M jobs at once (default: number of CPUs)
  --num-threads N, --cpus N
                     threads per job, only noted in the log footer
  --gpu N, --mem SIZE, --time T
                     accepted and ignored, so cmd.sh can use queue-style options"

die() {
  echo "$prog: $*" >&2
  exit 1
}
# shellcheck source-path=SCRIPTDIR source=job_lib.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/job_lib.sh"

max_jobs=$(num_cpus)
threads=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) echo "$usage"; exit 0 ;;
    --) shift; break ;;
    --*=*) opt=${1%%=*}; value=${1#*=}; shift ;;
    --*) [[ $# -ge 2 ]] || die "option $1 needs a value"; opt=$1; value=$2; shift 2 ;;
    *) break ;;
  esac
  case "$opt" in
    --max-jobs-run) max_jobs=$value ;;
    --num-threads|--cpus) threads=$value ;;
    --gpu|--mem|--time) ;;
    *) die "unknown option $opt (see $0 --help)" ;;
  esac
done
[[ "$max_jobs" =~ ^[1-9][0-9]*$ ]] || die "--max-jobs-run needs a positive integer, got '$max_jobs'"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--num-threads needs a positive integer, got '$threads'"

job_var=""
first=1
last=1
if parse_job_range "${1:-}"; then
  shift
fi
if [[ $# -lt 2 ]]; then
  echo "$usage" >&2
  exit 1
fi
log_template=$1
shift
n_jobs=$((last - first + 1))

# Run one job: header, command (output to the log), footer; return its exit status.
run_job() {
  local log=$1 cmdline=$2 threads=$3 start end rc=0
  mkdir -p "$(dirname "$log")"
  start=$(date +%s)
  {
    printf '# %s\n' "$cmdline"
    printf '# Started at %s\n#\n' "$(date)"
  } > "$log"
  exec 2>> "$log"  # the shell's own notes ("Terminated") go to the log, too
  trap 'printf "# Killed at %s, elapsed time %d seconds\n" "$(date)" "$(( $(date +%s) - start ))" >> "$log"; exit 143' TERM
  trap 'printf "# Interrupted at %s, elapsed time %d seconds\n" "$(date)" "$(( $(date +%s) - start ))" >> "$log"; exit 130' INT
  bash -o pipefail -c "$cmdline" >> "$log" 2>&1 < /dev/null || rc=$?
  end=$(date +%s)
  printf '# Accounting: time=%d threads=%d\n# Ended (code %d) at %s, elapsed time %d seconds\n' \
    "$((end - start))" "$threads" "$rc" "$(date)" "$((end - start))" >> "$log"
  return "$rc"
}

# Kill the process group of every job still running (each job is a group leader).
kill_jobs() {
  local pid
  for pid in $(jobs -rp); do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
}

on_signal() {
  trap - INT TERM EXIT
  echo "$prog: got SIG$1; killing the running jobs" >&2
  kill_jobs
  wait || true
  exit "$2"
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'kill_jobs' EXIT

declare -A pid_of=() log_of=()
running=0
for ((id = first; id <= last; id++)); do
  while (( running >= max_jobs )); do
    wait -n || true
    running=$((running - 1))
  done
  args=("$@")
  log=$log_template
  if [[ -n "$job_var" ]]; then
    args=("${args[@]//"$job_var"/$id}")
    log=${log//"$job_var"/$id}
  fi
  log_of[$id]=$log
  cmdline=$(quote_command "${args[@]}")
  set -m  # each job gets its own process group, so kill_jobs reaches its children
  run_job "$log" "$cmdline" "$threads" &
  pid_of[$id]=$!
  set +m
  running=$((running + 1))
done

failed=()
declare -A rc_of=()
for ((id = first; id <= last; id++)); do
  rc=0
  wait "${pid_of[$id]}" || rc=$?
  rc_of[$id]=$rc
  if (( rc != 0 )); then
    failed+=("$id")
  fi
done
trap - EXIT

if (( ${#failed[@]} > 0 )); then
  id=${failed[0]}
  log=${log_of[$id]}
  {
    echo "$prog: ${#failed[@]}/$n_jobs jobs failed"
    if (( ${#failed[@]} > 1 )); then
      echo "$prog: failed jobs: ${failed[*]}"
    fi
    if [[ -f "$log" ]]; then
      echo "$prog: job $id exited with status ${rc_of[$id]}; last 20 lines of $log:"
      tail -n 20 "$log"
    else
      echo "$prog: job $id exited with status ${rc_of[$id]} and wrote no log ($log)"
    fi
  } >&2
  exit 1
fi
