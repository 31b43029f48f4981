# shellcheck shell=bash
# cmd.sh: how run.sh launches jobs; run.sh sources it (`. ./cmd.sh`).
#
# Each *_cmd is a job launcher with the interface of Kaldi's run.pl / queue.pl:
#     ${train_cmd} [options] JOB=1:N <log-file> <command> [<args>...]
# (JOB in the log file and in the arguments becomes the job index; see
# utils/run_local.sh --help).
#   train_cmd   CPU jobs: data preparation, feature extraction
#   cuda_cmd    jobs that want a GPU: training, synthesis on GPU
#   decode_cmd  synthesis, conversion and evaluation jobs
#
# Choosing a backend: edit the three lines at the end.
#   utils/run_local.sh   runs the jobs on this machine, at most --max-jobs-run M at once
#                        (default: number of CPUs); queue-style options (--gpu N,
#                        --mem SIZE, --time T) are accepted and ignored, and
#                        --num-threads/--cpus N only noted in the log, so recipes can
#                        pass them unconditionally, e.g. ${cuda_cmd} --gpu 1 ...
#   utils/slurm.sh       submits the jobs to Slurm as one array job (sbatch --array=1-N)
#                        and waits for it; the same options become --gres=gpu:N, --mem,
#                        --time, --cpus-per-task; --partition P and --account A choose
#                        where it runs; more sbatch options in conf/slurm.conf (one or
#                        more per line) or $SLURM_SH_OPTS. Logs and the recipe dir must be
#                        on a filesystem the compute nodes share. For example:
#     export train_cmd="utils/slurm.sh --partition cpu --mem 4G"
#     export cuda_cmd="utils/slurm.sh --partition gpu --gpu 1 --time 2-00:00:00"
#     export decode_cmd="utils/slurm.sh --partition cpu --mem 4G"
#   See recipes/README.md ("Running on a Slurm cluster") and utils/slurm.sh --help.
export train_cmd="utils/run_local.sh"
export cuda_cmd="utils/run_local.sh"
export decode_cmd="utils/run_local.sh"
