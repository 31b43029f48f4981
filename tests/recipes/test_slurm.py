"""recipes/utils/slurm.sh: the Slurm job launcher.

Two kinds of tests:
* with a stand-in `sbatch` (a script that records its options and runs the batch script
  once per array index): the option mapping, the batch script and the failure report,
  everywhere;
* against a real single-node Slurm on localhost (munged, slurmctld and slurmd started
  from a generated slurm.conf in a temp dir, SLURM_CONF pointing at it): skipped with the
  reason when Slurm or munge is not installed, when not root, or when the daemons do
  not come up (e.g. container restrictions). On Debian/Ubuntu:
  `apt-get install slurm-wlm munge`, then `pytest tests/recipes/test_slurm.py -rs`.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLURM_SH = ROOT / "recipes" / "utils" / "slurm.sh"


def clean_env(**extra):
    """The environment without Slurm's job and input variables (pytest may run inside a job)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SBATCH_", "SALLOC_", "SRUN_"))}
    env.update(LC_ALL="C", **extra)
    return env


def run(args, *, cwd, env, timeout=120):
    return subprocess.run(["bash", "-c", args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


# ---------------------------------------------------------------- without Slurm

FAKE_SBATCH = r"""#!/usr/bin/env bash
# Stand-in for sbatch: records the options, runs the batch script once per array index.
printf '%s\n' "$@" > "$FAKE_SBATCH_ARGS"
script=${*: -1}
array=""
for a in "$@"; do
  case $a in --array=*) array=${a#--array=} ;; --partition=nope) echo "invalid partition" >&2; exit 1 ;; esac
done
echo 42
rc=0
if [[ -n $array ]]; then
  range=${array%%\%*}
  for ((i = ${range%-*}; i <= ${range#*-}; i++)); do
    SLURM_ARRAY_JOB_ID=42 SLURM_ARRAY_TASK_ID=$i bash "$script" || { r=$?; (( r > rc )) && rc=$r; }
  done
else
  SLURM_JOB_ID=42 bash "$script" || rc=$?
fi
exit "$rc"
"""


@pytest.fixture
def fake(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text(FAKE_SBATCH)
    (bindir / "sbatch").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = clean_env(PATH=f"{bindir}:{os.environ['PATH']}", FAKE_SBATCH_ARGS=str(tmp_path / "args"))
    return work, env, tmp_path / "args"


def test_help_and_bad_options(tmp_path):
    r = run(f"{SLURM_SH} --help", cwd=tmp_path, env=clean_env())
    assert r.returncode == 0 and r.stdout.startswith("Usage:") and "--gres=gpu:N" in r.stdout
    r = run(f"{SLURM_SH} --bogus 1 log/x.log true", cwd=tmp_path, env=clean_env())
    assert r.returncode == 1 and "unknown option --bogus" in r.stderr
    r = run(f"{SLURM_SH} --gpu x log/x.log true", cwd=tmp_path, env=clean_env())
    assert r.returncode == 1 and "--gpu needs" in r.stderr
    r = run(f"{SLURM_SH} JOB=3:2 log/x.JOB.log true", cwd=tmp_path, env=clean_env())
    assert r.returncode == 1 and "empty job range" in r.stderr


def test_options_map_to_sbatch(fake):
    work, env, args_file = fake
    (work / "conf").mkdir()
    (work / "conf" / "slurm.conf").write_text("# site options\n--qos=normal  # a comment\n\n--nice=5 --requeue\n")
    env["SLURM_SH_OPTS"] = "--constraint=a100"
    r = run(f"{SLURM_SH} --gpu 2 --mem 4G --time 1:00:00 --num-threads 3 --partition gpu --account=proj "
            "--max-jobs-run 2 JOB=1:3 exp/log/train.JOB.log bash -c 'echo $OMP_NUM_THREADS' _ JOB",
            cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    opts = args_file.read_text().splitlines()
    q = work / "exp" / "log" / "q"
    assert opts == [
        "--job-name=train", f"--chdir={work}", "--parsable", "--wait", "--array=1-3%2",
        f"--output={q}/train.%A_%a.out", "--gres=gpu:2", "--mem=4G", "--time=1:00:00", "--cpus-per-task=3",
        "--partition=gpu", "--account=proj", "--qos=normal", "--nice=5", "--requeue", "--constraint=a100",
        str(q / "train.sh"),
    ]
    for j in (1, 2, 3):
        log = (work / f"exp/log/train.{j}.log").read_text().splitlines()
        assert log[0] == f"# bash -c 'echo $OMP_NUM_THREADS' _ {j}"
        assert log[1].endswith(f"(Slurm job 42_{j})") and log[3] == "3"
        assert log[-1].startswith("# Ended (code 0)") and log[-2].endswith(" threads=3")
    # --config FILE replaces conf/slurm.conf; --cpus is --num-threads; --gpu 0 asks for none
    (work / "site.conf").write_text("--exclusive\n")
    r = run(f"{SLURM_SH} --config site.conf --gpu 0 --cpus 2 log/one.log true", cwd=work, env=clean_env(
        PATH=env["PATH"], FAKE_SBATCH_ARGS=str(args_file)))
    assert r.returncode == 0, r.stderr
    opts = args_file.read_text().splitlines()
    assert "--exclusive" in opts and "--cpus-per-task=2" in opts and "--qos=normal" not in opts
    assert not any(o.startswith(("--array", "--gres")) for o in opts)
    assert f"--output={work}/log/q/one.%j.out" in opts


def test_jobs_substitute_quote_and_report_failures(fake):
    work, env, _ = fake
    r = run(f"{SLURM_SH} JOB=2:4 log/j.JOB.log bash -c 'echo \"job $1 of it'\\''s\"; [[ $1 != 3 ]] || exit 5' _ JOB",
            cwd=work, env=env)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0] == "slurm.sh: 1/3 jobs failed (Slurm job 42)"
    assert lines[1] == "slurm.sh: failed jobs: 3"
    assert lines[2] == "slurm.sh: job 3 exited with status 5; last 20 lines of log/j.3.log:"
    assert "job 3 of it's" in r.stderr and "# Ended (code 5)" in r.stderr
    assert not (work / "log/j.1.log").exists()
    assert "job 4 of it's" in (work / "log/j.4.log").read_text()
    # a single job; bare shell operators stay operators
    r = run(f"{SLURM_SH} log/pipe.log echo a b \\| tr a-z A-Z \\> out.txt", cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    assert (work / "out.txt").read_text() == "A B\n"
    # a job that never wrote its footer counts as failed
    env["SLURM_SH_LOG_WAIT"] = "1"
    r = run(f"{SLURM_SH} log/k.log bash -c 'kill -9 $PPID'", cwd=work, env=env, timeout=60)
    assert r.returncode == 1 and "job 1 did not finish" in r.stderr
    # sbatch refusing the job
    r = run(f"{SLURM_SH} --partition nope log/x.log true", cwd=work, env=env)
    assert r.returncode == 1 and "sbatch failed" in r.stderr and "invalid partition" in r.stderr


# ---------------------------------------------------------------- a real Slurm on localhost

def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


SLURM_CONF = """\
ClusterName=vocodertest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={d}/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurm:
    """munged + slurmctld + slurmd on localhost, all state in one temp dir."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="slurm-"))  # short: the munge socket path is limited
        self.procs = []

    def start(self):
        d = self.dir
        for sub in ("munge", "state", "spool", "log", "work"):
            (d / sub).mkdir()
        d.chmod(0o711)
        (d / "munge").chmod(0o711)
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        with open("/proc/meminfo") as f:
            mem_mb = int(f.readline().split()[1]) // 1024 // 2
        ctld_port, slurmd_port = _free_ports(2)
        conf = d / "slurm.conf"
        conf.write_text(SLURM_CONF.format(d=d, ctld_port=ctld_port, slurmd_port=slurmd_port,
                                          cpus=min(2, os.cpu_count() or 1), mem_mb=mem_mb))
        self.env = clean_env(SLURM_CONF=str(conf))
        m = d / "munge"
        self._spawn(["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={m}/munge.socket",
                     f"--log-file={m}/munged.log", f"--pid-file={m}/munged.pid", f"--seed-file={m}/munged.seed"],
                    "munged")
        if not self._wait_for(lambda: (m / "munge.socket").exists(), 10):
            return self._fail("munged did not create its socket")
        self._spawn(["slurmctld", "-D", "-i"], "slurmctld")
        self._spawn(["slurmd", "-D", "-N", "localhost"], "slurmd")

        def node_idle():
            r = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=self.env, capture_output=True, text=True,
                               check=False)
            return r.returncode == 0 and r.stdout.strip() == "idle"
        if not self._wait_for(node_idle, 30):
            return self._fail("the node did not come up (idle) within 30 s")
        return None

    def _spawn(self, cmd, name):
        with open(self.dir / "log" / f"{name}.out", "w") as out:
            self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def _wait_for(self, ready, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if ready():
                return True
            if any(p.poll() is not None for p in self.procs):
                return False
            time.sleep(0.3)
        return False

    def _fail(self, why):
        died = [f"{Path(p.args[0]).name} exited with {p.returncode}" for p in self.procs if p.poll() is not None]
        tails = []
        for f in sorted((self.dir / "log").glob("*")) + [self.dir / "munge" / "munged.log"]:
            if f.is_file() and f.stat().st_size:
                tails.append(f"{f.name}: " + " | ".join(f.read_text(errors="replace").splitlines()[-3:]))
        text = "; ".join([why, *died, *tails])
        return text if len(text) < 1000 else text[:1000] + " ..."

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        # job steps (slurmstepd) left behind would hold files open
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def slurm():
    missing = [t for t in ("sbatch", "sinfo", "scancel", "slurmctld", "slurmd", "munged") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"Slurm/munge not installed (no {', '.join(missing)}; apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root")
    cluster = LocalSlurm()
    try:
        try:
            why = cluster.start()
        except OSError as exc:  # a daemon that cannot be started at all
            why = f"{type(exc).__name__}: {exc}"
        if why:
            pytest.skip(f"could not start a local Slurm: {why}")
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow
def test_array_job_on_slurm(slurm):
    work = slurm.dir / "work"
    (work / "conf").mkdir()
    (work / "conf" / "slurm.conf").write_text("--job-name=fromconf  # overrides the log name\n")
    # (a script: the string JOB in SLURM_JOB_NAME on the command line would become the index)
    (work / "job.sh").write_text('echo "task $SLURM_ARRAY_TASK_ID of $SLURM_JOB_NAME, $OMP_NUM_THREADS thread" > "out.$1"\n'
                                 'echo "done $1"\n')
    t = time.time()
    r = run(f"{SLURM_SH} --num-threads 1 --mem 50M --time 5 JOB=1:3 exp/log/work.JOB.log bash job.sh JOB",
            cwd=work, env=slurm.env)
    assert r.returncode == 0, r.stderr
    assert time.time() - t < 60
    for j in (1, 2, 3):
        log = (work / f"exp/log/work.{j}.log").read_text().splitlines()
        assert log[0] == f"# bash job.sh {j}"
        assert log[1].startswith("# Started at ") and log[1].endswith(f"_{j})")
        assert log[3] == f"done {j}"
        assert log[-1].startswith("# Ended (code 0)")
        assert (work / f"out.{j}").read_text() == f"task {j} of fromconf, 1 thread\n"
    # Slurm's own output files are named after the log
    assert len(list((work / "exp/log/q").glob("work.*_*.out"))) == 3


@pytest.mark.slow
def test_failing_job_on_slurm(slurm):
    work = slurm.dir / "work"
    r = run(f"{SLURM_SH} JOB=1:3 exp/log/fail.JOB.log "
            "bash -c 'echo \"output of job $1\"; [[ $1 != 2 ]] || exit 3' _ JOB",
            cwd=work, env=slurm.env)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith("slurm.sh: 1/3 jobs failed (Slurm job ")
    assert lines[1] == "slurm.sh: failed jobs: 2"
    assert lines[2] == "slurm.sh: job 2 exited with status 3; last 20 lines of exp/log/fail.2.log:"
    assert "output of job 2" in r.stderr and "# Ended (code 3)" in r.stderr
    assert "# Ended (code 0)" in (work / "exp/log/fail.3.log").read_text()
    # a job Slurm refuses
    r = run(f"{SLURM_SH} --partition nope exp/log/x.log true", cwd=work, env=slurm.env)
    assert r.returncode == 1 and "sbatch failed" in r.stderr and "partition" in r.stderr


@pytest.mark.slow
def test_cancelling_slurm_sh_cancels_the_job(slurm):
    work = slurm.dir / "work"
    p = subprocess.Popen([str(SLURM_SH), "JOB=1:2", "exp/log/sleep.JOB.log", "sleep", "300"], cwd=work,
                         env=slurm.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = [work / f"exp/log/sleep.{j}.log" for j in (1, 2)]
    end = time.time() + 30
    while not all(f.exists() for f in logs) and time.time() < end:
        time.sleep(0.2)
    assert all(f.exists() for f in logs), "the tasks did not start"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 143 and "cancelling Slurm job" in err
    end = time.time() + 20
    while time.time() < end:
        q = subprocess.run(["squeue", "-h", "-o", "%i"], env=slurm.env, capture_output=True, text=True,
                           check=False)
        if q.returncode == 0 and not q.stdout.strip():
            break
        time.sleep(0.5)
    assert not q.stdout.strip(), q.stdout
    for f in logs:
        assert "# Killed (SIGTERM" in f.read_text()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
