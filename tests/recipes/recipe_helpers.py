"""Shared by the recipe tests: a scratch copy of a recipe and a way to run it.

The recipe directory is recreated under tmp_path with links to the repository's
scripts, configs and corpus, so a run writes nothing inside the checkout.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "egs" / "mini" / "corpus"


def make_scratch_recipe(tmp_path: Path, name: str, corpus: str = "mini") -> Path:
    """tmp_path/<name>: a copy of egs/<corpus>/<name>'s run.sh and cmd.sh, links to the rest."""
    recipe = ROOT / "egs" / corpus / name
    work = tmp_path / name
    work.mkdir()
    shutil.copy(recipe / "run.sh", work / "run.sh")
    shutil.copy(recipe / "cmd.sh", work / "cmd.sh")
    for link in ("path.sh", "utils", "local", "conf"):
        os.symlink((recipe / link).resolve(), work / link)
    return work


def recipe_env(**extra: str) -> dict:
    """The environment with this interpreter's bin/ first on PATH (the `vocoder` command)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env.update(extra)
    return env


def run_recipe(work: Path, *args: str, timeout: int = 1200, **env: str) -> subprocess.CompletedProcess:
    """bash WORK/run.sh --corpus <the mini corpus> ARGS..., output captured."""
    return run_script(work, "--corpus", str(CORPUS), *args, timeout=timeout, **env)


def run_script(work: Path, *args: str, script: str = "run.sh", timeout: int = 1200,
               path_prefix: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """bash WORK/<script> ARGS... in WORK, output captured; path_prefix goes first on PATH."""
    environ = recipe_env(**env)
    if path_prefix is not None:
        environ["PATH"] = f"{path_prefix}:{environ['PATH']}"
    return subprocess.run(["bash", str(work / script), *args], cwd=work, env=environ,
                          capture_output=True, text=True, timeout=timeout)


def read_table(path: Path) -> dict:
    """A Kaldi table as {key: rest of the line}."""
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


def fake_network_tools(tmp_path: Path) -> Path:
    """tmp_path/fakebin/{curl,wget}: fail like a machine without network, noting each call in fakebin/calls.

    Put the dir first on PATH (run_script(..., path_prefix=...)) and nothing can be downloaded.
    """
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    for tool, code in (("curl", 6), ("wget", 4)):
        script = bindir / tool
        script.write_text(f'#!/usr/bin/env bash\necho "{tool} $*" >> "{bindir}/calls"\n'
                          f'echo "{tool}: Could not resolve host" >&2\nexit {code}\n')
        script.chmod(0o755)
    return bindir
