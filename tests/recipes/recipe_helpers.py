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


def make_scratch_recipe(tmp_path: Path, name: str) -> Path:
    """tmp_path/<name>: a copy of egs/mini/<name>'s run.sh and cmd.sh, links to the rest."""
    recipe = ROOT / "egs" / "mini" / name
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
    return subprocess.run(["bash", str(work / "run.sh"), "--corpus", str(CORPUS), *args], cwd=work,
                          env=recipe_env(**env), capture_output=True, text=True, timeout=timeout)
