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
# Choosing a backend: edit the three lines below.
#   utils/run_local.sh   runs the jobs on this machine, at most --max-jobs-run M at once
#                        (default: number of CPUs); queue-style options (--gpu N,
#                        --mem SIZE, --time T) are accepted and ignored, so recipes can
#                        pass them unconditionally, e.g. ${cuda_cmd} --gpu 1 ...
#   Slurm                not yet: a utils/slurm.sh backend with the same interface will
#                        be added; switching will only change these lines, e.g.
#                        export cuda_cmd="utils/slurm.sh --partition gpu"
export train_cmd="utils/run_local.sh"
export cuda_cmd="utils/run_local.sh"
export decode_cmd="utils/run_local.sh"
