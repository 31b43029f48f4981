"""Nothing read from a file is run: checkpoints, configs, wav.scp and feature tables.

- a source scan (``ast``) of vocoder/, recipes/ and benchmarks/: every ``torch.load``
  passes ``weights_only=True``; YAML is read only with ``yaml.safe_load``; no ``eval``,
  ``exec`` or ``compile`` of text, no pickle/marshal/shelve loads, no
  ``np.load(allow_pickle=True)``; a shell runs only in the opt-in wav.scp pipe reader;
- a checkpoint holding a pickled object whose unpickling would create a marker file is
  refused with a clear error and the marker never appears (loader, resume, CLI);
- a YAML config with a ``!!python/object/apply`` tag is refused, naming the file and line;
- a ``wav.scp`` entry ``cmd |`` runs only with ``--allow-pipes`` (extract, evaluate); a
  feature table (``f0.scp``, a mel ``feats.scp``) is never run as a command.

Each payload is checked to be live (an unsafe loader does create the marker), so a
missing marker means the code refused it, not that the payload was inert.
"""
from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from kills import (
    UTTS,
    make_checkpoint,
    make_data,
    make_dump,
    vocoder_here,
    write_config,
)

from vocoder.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_model,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("vocoder", "recipes", "benchmarks")
# The one place a shell may run: the wav.scp pipe reader, behind allow_pipes / --allow-pipes.
SHELL_ALLOWED = {"vocoder/data/features.py"}


# ----------------------------------------------------------------------------- source scan

def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_calls(source: str, path: str) -> list[str]:
    """``path:line: what`` for every unsafe loader or code execution in ``source``."""
    found = []
    tree = ast.parse(source, filename=path)
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "yaml", "pickle", "marshal", "dill"):
            for alias in node.names:
                if alias.name in ("load", "loads", "unsafe_load", "full_load", "load_all", "Unpickler"):
                    found.append(f"{where}: from {node.module} import {alias.name}")
        if isinstance(node, ast.Attribute) and _dotted(node) in ("yaml.Loader", "yaml.UnsafeLoader",
                                                                  "yaml.FullLoader", "yaml.CLoader"):
            found.append(f"{where}: {_dotted(node)}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name == "torch.load" and not _is_true(_keyword(node, "weights_only")):
            found.append(f"{where}: torch.load without weights_only=True")
        elif name.startswith("yaml.") and name.split(".", 1)[1] in (
                "load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"):
            found.append(f"{where}: {name} (use yaml.safe_load)")
        elif name in ("eval", "exec", "compile", "builtins.eval", "builtins.exec"):
            found.append(f"{where}: {name}()")
        elif name.split(".")[0] in ("pickle", "cPickle", "_pickle", "dill", "marshal", "shelve", "joblib") and \
                name.split(".")[-1] in ("load", "loads", "open", "Unpickler"):
            found.append(f"{where}: {name}")
        elif name in ("np.load", "numpy.load") and _is_true(_keyword(node, "allow_pickle")):
            found.append(f"{where}: {name}(allow_pickle=True)")
        elif name in ("pd.read_pickle", "pandas.read_pickle"):
            found.append(f"{where}: {name}")
        elif (name in ("os.system", "os.popen") or (name.startswith("subprocess.")
                                                      and _is_true(_keyword(node, "shell")))) \
                and path not in SHELL_ALLOWED:
            found.append(f"{where}: {name} with a shell")
    return found


def test_scan_finds_what_it_should():
    """The scanner itself: each unsafe pattern is reported, the safe forms are not."""
    bad = """
import torch, yaml, pickle, os, subprocess
import numpy as np
torch.load(p)
torch.load(p, weights_only=False)
yaml.load(f)
yaml.load(f, Loader=yaml.Loader)
yaml.full_load(f)
yaml.unsafe_load(f)
eval(text)
exec(text)
pickle.load(f)
pickle.loads(b)
np.load(p, allow_pickle=True)
os.system(cmd)
subprocess.run(cmd, shell=True)
from torch import load
"""
    found = unsafe_calls(bad, "x.py")
    assert len(found) == 15, "\n".join(found)
    good = """
import torch, yaml, subprocess
import numpy as np
torch.load(p, weights_only=True)
torch.jit.load(p)
yaml.safe_load(f)
model.eval()
re.compile("x")
np.load(p)
subprocess.run(["ls"])
"""
    assert unsafe_calls(good, "y.py") == []


def test_no_unsafe_loader_or_code_execution_in_the_sources():
    files = sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)
    assert len(files) > 30
    found = []
    for p in files:
        found += unsafe_calls(p.read_text(encoding="utf-8"), p.relative_to(ROOT).as_posix())
    assert found == [], "\n".join(found)


# ----------------------------------------------------------------------------- payloads

class _Payload:
    """Unpickling this runs ``touch MARKER`` (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    return make_dump(tmp_path_factory.mktemp("security"))


@pytest.fixture(scope="module")
def exp(tmp_path_factory, dump):
    return make_checkpoint(tmp_path_factory.mktemp("security_ckpt"), dump)


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [x for x in stderr.splitlines() if ": error:" in x]
    assert len(lines) == 1, stderr
    return lines[0]


def test_checkpoint_with_a_pickled_object_is_refused_and_not_run(tmp_path, dump, exp):
    marker = tmp_path / "pwned"
    good = latest_checkpoint(exp / "checkpoints")
    state = torch.load(good, map_location="cpu", weights_only=True)
    ckdir = tmp_path / "exp" / "checkpoints"
    save_checkpoint(ckdir / "step_00000002.pt", state)
    evil = ckdir / "step_00000009.pt"  # newer: what resume and synth would pick
    torch.save({**state, "step": 9, "extra": _Payload(marker)}, evil)

    with pytest.raises(pickle.UnpicklingError):  # sanity: the default loader refuses it too
        torch.load(evil, weights_only=True)
    with pytest.raises(ValueError, match=rf"{evil.name}: not a readable checkpoint \(refused: it holds "
                                         r"objects other than tensors .*posix\.system"):
        load_checkpoint(evil)
    with pytest.raises(ValueError, match="refused"):
        load_model(evil)
    assert latest_checkpoint(ckdir).name == "step_00000002.pt"  # resume skips it
    rc, err = vocoder_here("synth", "--checkpoint", evil, "--dump", dump, "--out", tmp_path / "wav",
                           "--device", "cpu")
    assert rc == 1
    assert one_error_line(err).startswith(f"vocoder synth: error: {evil}: not a readable checkpoint (refused")
    assert not marker.exists()

    torch.load(evil, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()


def test_yaml_config_with_a_python_tag_is_refused(tmp_path, dump):
    marker = tmp_path / "pwned"
    conf = write_config(tmp_path / "conf.yaml")
    evil = tmp_path / "evil.yaml"
    evil.write_text(conf.read_text() + f"extra: !!python/object/apply:os.system [\"touch '{marker}'\"]\n")
    rc, err = vocoder_here("train", "--config", evil, "--train-dump", dump, "--exp", tmp_path / "exp",
                           "--device", "cpu", "--no-progress")
    assert rc == 1
    line = one_error_line(err)
    assert f"{evil}:" in line and "not a valid YAML config (could not determine a constructor" in line, line
    rc, err = vocoder_here("extract", make_data(tmp_path), tmp_path / "d", "--config", evil)
    assert rc == 1 and f"{evil}:" in one_error_line(err)
    assert not marker.exists()
    yaml.unsafe_load(evil.read_text())  # the payload is live
    assert marker.exists()


def _piped_data(root: Path, marker: Path) -> Path:
    """A data dir whose first utterance is read through ``touch MARKER; cat WAV |``."""
    data = make_data(root)
    lines = (data / "wav.scp").read_text().splitlines()
    utt, wav = lines[0].split(maxsplit=1)
    lines[0] = f"{utt} touch '{marker}'; cat '{wav}' |"
    (data / "wav.scp").write_text("\n".join(lines) + "\n")
    return data


def test_extract_runs_wav_scp_pipes_only_with_allow_pipes(tmp_path):
    marker = tmp_path / "ran"
    data = _piped_data(tmp_path, marker)
    rc, err = vocoder_here("extract", data, tmp_path / "dump", "--streams", "loudness")
    assert rc == 1
    line = one_error_line(err)
    assert "wav.scp" in line and "--allow-pipes" in line, line
    assert not marker.exists() and not (tmp_path / "dump" / "feats.yaml").exists()
    rc, err = vocoder_here("extract", data, tmp_path / "dump", "--streams", "loudness", "--allow-pipes")
    assert rc == 0, err
    assert marker.exists()
    assert (tmp_path / "dump" / "utt2num_frames").read_text().count("\n") == len(UTTS)


def test_evaluate_runs_wav_scp_pipes_only_with_allow_pipes(tmp_path):
    marker = tmp_path / "ran"
    data = _piped_data(tmp_path, marker)
    utt = UTTS[0][0]
    out = tmp_path / "eval.json"
    rc, err = vocoder_here("evaluate", data, data, "--json", out, "--f0-method", "dio")
    assert "Traceback" not in err
    result = json.loads(out.read_text())
    assert utt not in result["per_utt"] and "--allow-pipes" in result["failed"][utt]
    assert len(result["per_utt"]) == len(UTTS) - 1  # the other utterances are evaluated
    assert not marker.exists()
    rc, err = vocoder_here("evaluate", data, data, "--json", out, "--f0-method", "dio", "--allow-pipes")
    assert rc == 0, err
    assert marker.exists() and utt in json.loads(out.read_text())["per_utt"]


def test_feature_tables_are_never_run_as_commands(tmp_path, dump, exp):
    marker = tmp_path / "ran"
    bad = tmp_path / "dump"
    shutil.copytree(dump, bad)
    lines = (bad / "f0.scp").read_text().splitlines()
    utt = lines[0].split()[0]
    lines[0] = f"{utt} touch '{marker}' |"
    (bad / "f0.scp").write_text("\n".join(lines) + "\n")
    rc, err = vocoder_here("synth", "--checkpoint", exp, "--dump", bad, "--out", tmp_path / "wav", "--device", "cpu")
    assert rc == 1
    line = one_error_line(err)
    assert f"{bad / 'f0.scp'}:1: entry '{utt}' is a shell command" in line, line
    rc, err = vocoder_here("train", "--config", write_config(tmp_path / "c.yaml"), "--train-dump", bad,
                           "--exp", tmp_path / "exp", "--device", "cpu", "--no-progress")
    assert rc == 1 and "is a shell command" in one_error_line(err)
    assert not marker.exists()
