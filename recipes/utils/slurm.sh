#!/usr/bin/env bash
# slurm.sh: run a command as a Slurm array job, with the interface of run_local.sh
# (Kaldi's slurm.pl / queue.pl role).
set -euo pipefail

prog=${0##*/}
usage="Usage: $0 [options] [JOB=1:N] <log-file> <command> [<args>...]
Submits <command> as a Slurm array job with one task per job index 1..N
('sbatch --array=1-N'; a single job without a JOB=A:B range) and waits for it to end
('sbatch --wait'). The string JOB (or whatever name is given before '=') is replaced by
the job index in <log-file> and in every argument, e.g.
    $0 --mem 4G JOB=1:4 exp/log/extract.JOB.log vocoder extract data/train/split4/JOB ...
The tasks run in the current directory (which, like the log directory, must be on a
filesystem the compute nodes share) with the current environment (sbatch's default
--export=ALL). Each task's stdout and stderr go to its log, between a header (command
line, start time, host, Slurm job id) and a footer (exit status, elapsed time), as with
run_local.sh; quoting and bare shell operators ('\\|') work the same way. The batch
scripts and Slurm's own output files go to <log-dir>/q/.
When a job fails: '$prog: K/N jobs failed', the failed job indices and the last 20
lines of the first failing job's log on stderr, exit status 1. SIGINT/SIGTERM to $prog
cancel the Slurm job (scancel).
Options (queue-style ones mapped to sbatch options):
  --gpu N             --gres=gpu:N (N=0: no GPU)
  --mem SIZE          --mem=SIZE (memory per node, e.g. 4G)
  --time T            --time=T (e.g. 1:00:00 or 2-00:00:00)
  --num-threads N, --cpus N
                      --cpus-per-task=N; the task also gets OMP_NUM_THREADS=N
                      (and MKL_NUM_THREADS, OPENBLAS_NUM_THREADS)
  --max-jobs-run M    at most M tasks at once (--array=1-N%M)
  --partition P       --partition=P
  --account A         --account=A
  --config FILE       extra sbatch options, one or more per line, '#' starts a comment
                      (default: conf/slurm.conf if it exists, e.g. '--qos=normal')
The environment variable SLURM_SH_OPTS adds sbatch options too (split on whitespace).
Options from the config file and SLURM_SH_OPTS come after the mapped ones, so they win;
sbatch's own input variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...) apply as usual.
A log without its footer after the job has ended (a task killed hard, or a network
filesystem that is slow to show it) is waited for up to SLURM_SH_LOG_WAIT seconds
(default 10), then counted as failed."

die() {
  echo "$prog: $*" >&2
  exit 1
}
# shellcheck source-path=SCRIPTDIR source=job_lib.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/job_lib.sh"

gpu=0
mem=""
time_limit=""
threads=""
max_jobs=""
partition=""
account=""
config=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) echo "$usage"; exit 0 ;;
    --) shift; break ;;
    --*=*) opt=${1%%=*}; value=${1#*=}; shift ;;
    --*) [[ $# -ge 2 ]] || die "option $1 needs a value"; opt=$1; value=$2; shift 2 ;;
    *) break ;;
  esac
  case "$opt" in
    --gpu) gpu=$value ;;
    --mem) mem=$value ;;
    --time) time_limit=$value ;;
    --num-threads|--cpus) threads=$value ;;
    --max-jobs-run) max_jobs=$value ;;
    --partition) partition=$value ;;
    --account) account=$value ;;
    --config) config=$value ;;
    *) die "unknown option $opt (see $0 --help)" ;;
  esac
done
[[ "$gpu" =~ ^[0-9]+$ ]] || die "--gpu needs a non-negative integer, got '$gpu'"
[[ -z "$threads" || "$threads" =~ ^[1-9][0-9]*$ ]] || die "--num-threads needs a positive integer, got '$threads'"
[[ -z "$max_jobs" || "$max_jobs" =~ ^[1-9][0-9]*$ ]] || die "--max-jobs-run needs a positive integer, got '$max_jobs'"

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
command -v sbatch > /dev/null || die "sbatch not found: is Slurm installed on this machine? (or use utils/run_local.sh)"

# --- sbatch options -------------------------------------------------------------------
log_of() { if [[ -n "$job_var" ]]; then echo "${log_template//"$job_var"/$1}"; else echo "$log_template"; fi; }
first_log=$(log_of "$first")
qdir=$(dirname "$first_log")/q
mkdir -p "$qdir"
qdir=$(cd "$qdir" && pwd -P)
name=$(basename "$log_template")
name=${name%.log}
if [[ -n "$job_var" ]]; then
  name=${name//."$job_var"/}
  name=${name//"$job_var"/}
fi
name=${name:-job}

opts=(--job-name="$name" --chdir="$PWD" --parsable --wait)
if [[ -n "$job_var" ]]; then
  opts+=(--array="$first-$last${max_jobs:+%$max_jobs}" --output="$qdir/$name.%A_%a.out")
else
  opts+=(--output="$qdir/$name.%j.out")
fi
(( gpu > 0 )) && opts+=(--gres="gpu:$gpu")
[[ -n "$mem" ]] && opts+=(--mem="$mem")
[[ -n "$time_limit" ]] && opts+=(--time="$time_limit")
[[ -n "$threads" ]] && opts+=(--cpus-per-task="$threads")
[[ -n "$partition" ]] && opts+=(--partition="$partition")
[[ -n "$account" ]] && opts+=(--account="$account")
if [[ -z "$config" && -f conf/slurm.conf ]]; then
  config=conf/slurm.conf
fi
if [[ -n "$config" ]]; then
  [[ -f "$config" ]] || die "config file '$config' not found"
  while IFS= read -r line || [[ -n "$line" ]]; do
    line=${line%%#*}
    read -r -a words <<< "$line"
    opts+=("${words[@]}")
  done < "$config"
fi
read -r -a words <<< "${SLURM_SH_OPTS:-}"
opts+=("${words[@]}")

# --- the batch script -----------------------------------------------------------------
script=$qdir/$name.sh
{
  echo '#!/usr/bin/env bash'
  echo "# Written by $prog at $(date); runs one task of the Slurm job."
  echo 'set -uo pipefail'
  printf 'job_var=%s\n' "${job_var@Q}"
  # shellcheck disable=SC2016  # expanded in the batch script
  printf 'id=${SLURM_ARRAY_TASK_ID:-%d}\n' "$first"
  printf 'log=%s\n' "${log_template@Q}"
  printf 'threads=%d\n' "${threads:-1}"
  printf 'args=('
  for arg in "$@"; do printf ' %s' "${arg@Q}"; done
  printf ' )\n'
  if [[ -n "$threads" ]]; then
    # shellcheck disable=SC2016
    echo 'export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads'
  fi
  declare -f quote_command
  cat << 'EOF'
if [[ -n "$job_var" ]]; then
  args=("${args[@]//"$job_var"/$id}")
  log=${log//"$job_var"/$id}
fi
cmdline=$(quote_command "${args[@]}")
mkdir -p "$(dirname "$log")"
start=$(date +%s)
{
  printf '# %s\n' "$cmdline"
  printf '# Started at %s on %s (Slurm job %s)\n#\n' "$(date)" "$(hostname)" \
    "${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-?}}${SLURM_ARRAY_TASK_ID:+_$SLURM_ARRAY_TASK_ID}"
} > "$log"
footer() {
  local end
  end=$(date +%s)
  printf '# Accounting: time=%d threads=%d\n# Ended (code %d) at %s, elapsed time %d seconds\n' \
    "$((end - start))" "$threads" "$1" "$(date)" "$((end - start))" >> "$log"
}
trap 'printf "# Killed (SIGTERM: cancelled or out of time) at %s\n" "$(date)" >> "$log"; footer 143; exit 143' TERM
rc=0
bash -o pipefail -c "$cmdline" >> "$log" 2>&1 < /dev/null &
wait $! || rc=$?
footer "$rc"
exit "$rc"
EOF
} > "$script"

# Stale logs of a previous run would be mistaken for this run's results.
for ((id = first; id <= last; id++)); do
  rm -f "$(log_of "$id")"
done

# --- submit, wait, cancel on a signal --------------------------------------------------
submit_out=$qdir/$name.submit
: > "$submit_out"
sbatch "${opts[@]}" "$script" > "$submit_out" 2> "$submit_out.err" &
sbatch_pid=$!
slurm_job() { local id; read -r id < "$submit_out" 2> /dev/null || true; echo "${id%%;*}"; }
# shellcheck disable=SC2317  # called by the traps
on_signal() {
  trap - INT TERM
  local id
  id=$(slurm_job)
  echo "$prog: got SIG$1; cancelling Slurm job ${id:-(not submitted yet)}" >&2
  [[ -n "$id" ]] && scancel "$id" 2> /dev/null
  kill "$sbatch_pid" 2> /dev/null || true
  exit "$2"
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
sbatch_rc=0
wait "$sbatch_pid" || sbatch_rc=$?
trap - INT TERM
slurm_id=$(slurm_job)
if [[ -z "$slurm_id" ]]; then
  {
    echo "$prog: sbatch failed (exit status $sbatch_rc):"
    cat "$submit_out.err"
  } >&2
  exit 1
fi

# --- results: the footer of every log ---------------------------------------------------
# A footer may show up late on a network filesystem: wait a little for missing ones.
exit_status() {  # exit status from the footer of a log, empty if none
  [[ -f "$1" ]] || return 0
  sed -n 's/^# Ended (code \([0-9]*\)).*/\1/p' "$1" | tail -n 1
}
log_wait=${SLURM_SH_LOG_WAIT:-10}
[[ "$log_wait" =~ ^[0-9]+$ ]] || die "SLURM_SH_LOG_WAIT needs a whole number of seconds, got '$log_wait'"
declare -A rc_of=()
for ((tries = 0; ; tries++)); do
  missing=0
  for ((id = first; id <= last; id++)); do
    [[ -n "${rc_of[$id]:-}" ]] && continue
    rc=$(exit_status "$(log_of "$id")")
    if [[ -n "$rc" ]]; then rc_of[$id]=$rc; else missing=$((missing + 1)); fi
  done
  (( missing == 0 || tries >= log_wait )) && break
  sleep 1
done

failed=()
for ((id = first; id <= last; id++)); do
  if [[ "${rc_of[$id]:-none}" != 0 ]]; then
    failed+=("$id")
  fi
done
if (( ${#failed[@]} == 0 )); then
  if (( sbatch_rc != 0 )); then
    echo "$prog: every log reports success, but 'sbatch --wait' exited with status $sbatch_rc (Slurm job $slurm_id)" >&2
    exit 1
  fi
  exit 0
fi

id=${failed[0]}
log=$(log_of "$id")
if [[ -n "$job_var" ]]; then out=$qdir/$name.${slurm_id}_$id.out; else out=$qdir/$name.$slurm_id.out; fi
{
  echo "$prog: ${#failed[@]}/$n_jobs jobs failed (Slurm job $slurm_id)"
  echo "$prog: failed jobs: ${failed[*]}"
  if [[ -n "${rc_of[$id]:-}" ]]; then
    echo "$prog: job $id exited with status ${rc_of[$id]}; last 20 lines of $log:"
    tail -n 20 "$log"
  elif [[ -f "$log" ]]; then
    echo "$prog: job $id did not finish (killed, or out of memory?); last 20 lines of $log:"
    tail -n 20 "$log"
  else
    echo "$prog: job $id wrote no log ($log): did it start? Is the directory shared with the compute nodes?"
  fi
  if [[ -s "$out" ]]; then
    echo "$prog: Slurm's output for job $id ($out):"
    tail -n 10 "$out"
  fi
} >&2
exit 1
