"""recipes/utils: option parsing, data-dir wrappers, the run_local.sh job launcher."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UTILS = ROOT / "recipes" / "utils"
TEMPLATES = ROOT / "recipes" / "templates"
ENV = {**os.environ, "PYTHON": sys.executable, "LC_ALL": "C"}


def bash(script, *, cwd, check=False, timeout=30, **kw):
    r = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                       env=ENV, timeout=timeout, **kw)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def egs(tmp_path):
    """A recipe dir laid out like egs/<corpus>/<task>, with utils linked to recipes/utils."""
    d = tmp_path / "egs" / "toy" / "voc1"
    d.mkdir(parents=True)
    (d / "utils").symlink_to(UTILS)
    return d


# ---------------------------------------------------------------- shellcheck

@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_scripts_pass_shellcheck():
    scripts = sorted(UTILS.glob("*.sh")) + sorted(TEMPLATES.glob("*.sh"))
    assert len(scripts) >= 9
    r = subprocess.run(["shellcheck", "-x", *map(str, scripts)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_scripts_are_executable_and_strict():
    for script in UTILS.glob("*.sh"):
        text = script.read_text()
        if script.name in ("parse_options.sh", "log.sh", "job_lib.sh"):  # sourced
            assert "shellcheck shell=bash" in text
            continue
        assert os.access(script, os.X_OK), script
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text, script


# ---------------------------------------------------------------- parse_options.sh

RUN_SH = """#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
nj=4
conf=conf/default.yaml
tag=""
use_gpu=false
help_message="Usage: $0 [--stage N] [--stop_stage N] [--nj N] <dir>"
. utils/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage nj=$nj conf=$conf tag=$tag use_gpu=$use_gpu"
echo "args=$# ${*:-}"
"""


@pytest.fixture
def run_sh(egs):
    (egs / "run.sh").write_text(RUN_SH)
    (egs / "run.sh").chmod(0o755)
    return egs


def test_parse_options_assigns_variables(run_sh):
    r = bash("./run.sh --stage 2 --stop-stage=5 --nj=8 --conf 'conf/a b.yaml' --tag= "
             "--use_gpu true data/train extra", cwd=run_sh, check=True)
    assert r.stdout.splitlines() == [
        "stage=2 stop_stage=5 nj=8 conf=conf/a b.yaml tag= use_gpu=true",
        "args=2 data/train extra",
    ]
    r = bash("./run.sh", cwd=run_sh, check=True)
    assert r.stdout.splitlines()[0].startswith("stage=0 stop_stage=100 nj=4")
    r = bash("./run.sh --nj 2 -- --stage", cwd=run_sh, check=True)
    assert "nj=2" in r.stdout and "args=1 --stage" in r.stdout


def test_parse_options_rejects_bad_options(run_sh):
    r = bash("./run.sh --foo 1", cwd=run_sh)
    assert r.returncode == 1 and "unknown option --foo" in r.stderr and r.stdout == ""
    r = bash("./run.sh --bad-name=1 x", cwd=run_sh)
    assert r.returncode == 1 and "unknown option --bad-name" in r.stderr
    r = bash("./run.sh --nj", cwd=run_sh)
    assert r.returncode == 1 and "--nj needs a value" in r.stderr
    r = bash("./run.sh --use_gpu yes", cwd=run_sh)
    assert r.returncode == 1 and "true or false" in r.stderr


def test_parse_options_help(run_sh):
    for flag in ("--help", "-h"):
        r = bash(f"./run.sh --stage 3 {flag}", cwd=run_sh)
        assert r.returncode == 0 and r.stdout.startswith("Usage: ./run.sh [--stage N]"), r.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_run_sh_sourcing_the_utils_passes_shellcheck(run_sh):
    (run_sh / "run.sh").write_text(RUN_SH + ". utils/log.sh\nlog \"stage $stage\"\n")
    r = subprocess.run(["shellcheck", "-x", "run.sh"], cwd=run_sh, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    r = bash("./run.sh --stage 7", cwd=run_sh, check=True)
    assert "(run.sh:" in r.stderr and r.stderr.rstrip().endswith("stage 7")


def test_sourced_helpers_refuse_to_run(tmp_path):
    for name in ("parse_options.sh", "log.sh"):
        r = bash(f"bash {UTILS / name}", cwd=tmp_path)
        assert r.returncode == 1 and "Usage" in r.stderr


# ---------------------------------------------------------------- data-dir wrappers

def write_data_dir(d: Path, n_utt=6):
    d.mkdir(parents=True)
    utts = [f"spk{i % 2}_utt{i}" for i in range(n_utt)]
    utts.sort()
    (d / "wav.scp").write_text("".join(f"{u} /audio/{u}.wav\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u in utts))
    (d / "text").write_text("".join(f"{u} some words\n" for u in utts))
    return utts


def test_data_dir_wrappers_from_a_recipe_dir(egs):
    utts = write_data_dir(egs / "data" / "train")
    r = bash("utils/validate_data_dir.sh data/train", cwd=egs)
    assert r.returncode == 1 and "data/train/spk2utt: missing" in r.stderr
    bash("utils/utt2spk_to_spk2utt.sh data/train/utt2spk > data/train/spk2utt", cwd=egs, check=True)
    assert (egs / "data/train/spk2utt").read_text() == (
        "spk0 spk0_utt0 spk0_utt2 spk0_utt4\nspk1 spk1_utt1 spk1_utt3 spk1_utt5\n")
    r = bash("utils/spk2utt_to_utt2spk.sh < data/train/spk2utt", cwd=egs, check=True)
    assert r.stdout == (egs / "data/train/utt2spk").read_text()
    r = bash("utils/validate_data_dir.sh --need-text data/train", cwd=egs, check=True)
    assert "OK (6 utterances, 2 speakers)" in r.stdout

    bash("utils/split_data.sh data/train 4", cwd=egs, check=True)
    seen = []
    for j in range(1, 5):
        bash(f"utils/validate_data_dir.sh data/train/split4/{j}", cwd=egs, check=True)
        seen += [line.split()[0] for line in (egs / f"data/train/split4/{j}/text").read_text().splitlines()]
    assert seen == utts

    r = bash("utils/subset_data_dir.sh --first data/train 2 data/first2", cwd=egs, check=True)
    assert (egs / "data/first2/utt2spk").read_text().count("\n") == 2
    # the first N utterances of every speaker (the recipes' debug subsets), nothing else left there
    bash("utils/subset_data_dir.sh --per-spk 2 data/train data/debug/train", cwd=egs, check=True)
    assert (egs / "data/debug/train/spk2utt").read_text() == (
        "spk0 spk0_utt0 spk0_utt2\nspk1 spk1_utt1 spk1_utt3\n")
    assert sorted(p.name for p in (egs / "data/debug/train").iterdir()) == ["spk2utt", "text", "utt2spk", "wav.scp"]
    r = bash("utils/subset_data_dir.sh --per-spk two data/train data/x", cwd=egs)
    assert r.returncode == 1 and "N must be a number" in r.stderr

    with open(egs / "data/train/wav.scp", "a") as f:
        f.write("zzz_extra /audio/z.wav\n")
    r = bash("utils/validate_data_dir.sh data/train", cwd=egs)
    assert r.returncode == 1 and "data/train/utt2spk: lacks 1 utterance of data/train/wav.scp: " \
        "'zzz_extra' (wav.scp line 7)" in r.stderr
    r = bash("utils/fix_data_dir.sh data/train", cwd=egs, check=True)
    assert "data/train/wav.scp: removed 1 line(s) of utterances not in utt2spk: 'zzz_extra'" in r.stdout
    bash("utils/validate_data_dir.sh data/train", cwd=egs, check=True)


def test_wrappers_work_from_any_cwd_and_print_usage(tmp_path):
    write_data_dir(tmp_path / "d")
    bash(f"{UTILS}/fix_data_dir.sh d && {UTILS}/validate_data_dir.sh d", cwd=tmp_path, check=True)
    for name in ("validate_data_dir.sh", "fix_data_dir.sh", "split_data.sh", "subset_data_dir.sh",
                 "run_local.sh"):
        r = bash(f"{UTILS / name} --help", cwd=tmp_path)
        assert r.returncode == 0 and r.stdout.startswith("Usage: "), name
        r = bash(f"{UTILS / name} < /dev/null", cwd=tmp_path)
        assert r.returncode == 1 and r.stderr.startswith("Usage: "), name
    r = bash(f"{UTILS}/split_data.sh d 99", cwd=tmp_path)
    assert r.returncode == 1 and "into 99 parts" in r.stderr


# ---------------------------------------------------------------- run_local.sh

JOB_SCRIPT = """#!/usr/bin/env bash
# job.sh ID OUT: record start and end time, print a line, optionally fail.
set -euo pipefail
date +%s.%N > "$2.start"
echo "hello from job $1"
sleep "${SLEEP:-0.8}"
date +%s.%N > "$2.end"
if [[ "$1" == "${FAIL_JOB:-none}" ]]; then
  for i in $(seq 1 30); do echo "noise line $i"; done
  echo "job $1 is failing" >&2
  exit 3
fi
"""


@pytest.fixture
def job_sh(tmp_path):
    p = tmp_path / "job.sh"
    p.write_text(JOB_SCRIPT)
    p.chmod(0o755)
    return p


def intervals(tmp_path, n):
    return [(float((tmp_path / f"out.{j}.start").read_text()),
             float((tmp_path / f"out.{j}.end").read_text())) for j in range(1, n + 1)]


def test_run_local_runs_jobs_in_parallel(tmp_path, job_sh):
    t0 = time.monotonic()
    r = bash(f"{UTILS}/run_local.sh --max-jobs-run 4 JOB=1:4 log/job.JOB.log ./job.sh JOB out.JOB",
             cwd=tmp_path, check=True)
    assert r.stdout == "" and r.stderr == ""
    spans = intervals(tmp_path, 4)
    assert max(s for s, _ in spans) < min(e for _, e in spans), "jobs did not overlap"
    assert time.monotonic() - t0 < 4 * 0.8
    for j in range(1, 5):
        lines = (tmp_path / f"log/job.{j}.log").read_text().splitlines()
        assert lines[0] == f"# ./job.sh {j} out.{j}"
        assert lines[1].startswith("# Started at ")
        assert f"hello from job {j}" in lines
        assert lines[-2].startswith("# Accounting: time=")
        assert lines[-1].startswith("# Ended (code 0) at ") and "elapsed time" in lines[-1]


def test_run_local_limits_parallel_jobs(tmp_path, job_sh):
    ENV_SLEEP = "SLEEP=0.2"
    bash(f"{ENV_SLEEP} {UTILS}/run_local.sh --max-jobs-run=1 JOB=1:3 log/j.JOB.log ./job.sh JOB out.JOB",
         cwd=tmp_path, check=True)
    spans = sorted(intervals(tmp_path, 3))
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "jobs overlapped"


def test_run_local_reports_a_failing_job(tmp_path, job_sh):
    r = bash(f"SLEEP=0.1 FAIL_JOB=3 {UTILS}/run_local.sh JOB=1:4 log/job.JOB.log ./job.sh JOB out.JOB",
             cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0] == "run_local.sh: 1/4 jobs failed"
    assert lines[1] == "run_local.sh: job 3 exited with status 3; last 20 lines of log/job.3.log:"
    assert len(lines) == 22
    assert "job 3 is failing" in lines and "# Ended (code 3)" in lines[-1]
    assert (tmp_path / "out.4.end").exists()  # the other jobs still ran


def test_run_local_single_job_and_shell_operators(tmp_path):
    r = bash(f"{UTILS}/run_local.sh log/one.log echo \"it's JOB\" \\| tr a-z A-Z \\> out.txt",
             cwd=tmp_path, check=True)
    assert (tmp_path / "out.txt").read_text() == "IT'S JOB\n"
    assert (tmp_path / "log/one.log").read_text().startswith("# echo 'it'\\''s JOB' | tr a-z A-Z > out.txt\n")
    r = bash(f"{UTILS}/run_local.sh log/fail.log false", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("run_local.sh: 1/1 jobs failed")
    r = bash(f"{UTILS}/run_local.sh --bogus 1 log/x.log true", cwd=tmp_path)
    assert r.returncode == 1 and "unknown option --bogus" in r.stderr
    r = bash(f"{UTILS}/run_local.sh --gpu 1 --mem 4G JOB=2:3 log/x.JOB.log touch f.JOB", cwd=tmp_path,
             check=True)
    assert (tmp_path / "f.2").exists() and (tmp_path / "f.3").exists() and not (tmp_path / "f.1").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_killing_run_local_kills_its_jobs(tmp_path, sig, code):
    p = subprocess.Popen([str(UTILS / "run_local.sh"), "JOB=1:2", "log/s.JOB.log",
                          "bash", "-c", "echo $$ > pid.JOB; sleep 120"],
                         cwd=tmp_path, env=ENV, stderr=subprocess.PIPE, text=True,
                         # a shell cannot trap a signal ignored on entry (SIGINT is ignored
                         # in background jobs, e.g. `make test &`): start from the default
                         preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    deadline = time.monotonic() + 30  # generous: CI machines may be loaded
    while not all((tmp_path / f"pid.{j}").exists() and (tmp_path / f"pid.{j}").read_text()
                  for j in (1, 2)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = [int((tmp_path / f"pid.{j}").read_text()) for j in (1, 2)]
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)  # well before the jobs' own end (120 s)
    assert p.returncode == code and "killing the running jobs" in err
    time.sleep(0.2)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "# Killed at" in (tmp_path / "log/s.1.log").read_text() or \
        "# Interrupted at" in (tmp_path / "log/s.1.log").read_text()


# ---------------------------------------------------------------- templates

def test_path_sh_finds_the_repo_root(tmp_path):
    link = tmp_path / "path.sh"
    link.symlink_to(TEMPLATES / "path.sh")
    for path_sh in (TEMPLATES / "path.sh", link):
        r = bash(f"set -euo pipefail; unset PYTHONPATH; . {path_sh}; "
                 'echo "$VOCODER_ROOT|$LC_ALL|$PYTHONUNBUFFERED|$PYTHONPATH|$PATH"',
                 cwd=tmp_path, check=True)
        root, lc_all, unbuffered, pythonpath, path = r.stdout.strip().split("|")
        assert root == str(ROOT) and lc_all == "C" and unbuffered == "1" and pythonpath == str(ROOT)
        if (ROOT / ".venv" / "bin").is_dir():
            assert path.startswith(f"{ROOT}/.venv/bin:")
    copy = tmp_path / "copy.sh"
    shutil.copy(TEMPLATES / "path.sh", copy)
    r = bash(f". {copy}", cwd=tmp_path)
    assert r.returncode == 1 and "vocoder/__init__.py" in r.stderr


def test_cmd_sh_sets_the_launchers(egs, tmp_path):
    shutil.copy(TEMPLATES / "cmd.sh", egs / "cmd.sh")
    r = bash(". ./cmd.sh; ${train_cmd} JOB=1:2 log/t.JOB.log echo JOB; "
             "${cuda_cmd} --gpu 1 log/c.log echo gpu; ${decode_cmd} log/d.log echo d; cat log/t.2.log",
             cwd=egs, check=True)
    assert "\n2\n" in r.stdout
