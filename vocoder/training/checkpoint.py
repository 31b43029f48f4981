"""Checkpoints: plain dicts written atomically, loaded with ``weights_only=True``.

A checkpoint is ``{"model", "optimizer", "scheduler", "step", "config", "version",
"format"}``; ``config`` is the resolved configuration the model was built from, so a
checkpoint alone rebuilds its model (:func:`load_model`); ``vocoder train`` adds to it
``stats``, the global and per-speaker statistics it trained with (``vocoder convert``
reads them; older checkpoints lack the key). Files are named
``checkpoints/step_<08d>.pt``; the newest complete one is the one to resume from.
"""
from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import torch

from ..outputs import remove_stale_temps, write_atomic
from ..version import __version__

__all__ = ["save_checkpoint", "load_checkpoint", "list_checkpoints", "latest_checkpoint", "load_model",
           "resolve_checkpoint", "remove_partial_checkpoints", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")


def save_checkpoint(path, state: dict, *, keep_last: int | None = None) -> Path:
    """Write ``state`` to ``path`` atomically (see :func:`vocoder.outputs.write_atomic`).

    The state is serialised in memory first, so a full disk gives an
    :class:`~vocoder.outputs.OutputError` naming the file and the cause (``torch.save``
    straight to a file reports it as an opaque "unexpected pos"), and the file appears
    under ``path`` only when complete. With ``keep_last``, older ``step_*.pt`` files in the
    same directory beyond the newest ``keep_last`` are deleted afterwards.
    """
    path = Path(path)
    state = {**state, "version": __version__, "format": CHECKPOINT_FORMAT}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getbuffer(), what="checkpoint")
    del buffer
    if keep_last:
        for old in list_checkpoints(path.parent)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def remove_partial_checkpoints(directory) -> list[Path]:
    """Delete temporary files of checkpoint writes that were killed (``.step_*.pt.*.tmp``)."""
    return remove_stale_temps(directory, "step_*.pt")


def list_checkpoints(directory) -> list[Path]:
    """``step_*.pt`` files of a directory, oldest step first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path, *, map_location="cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only=True refused a global (a class or function): never loaded otherwise
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        detail = next((x for x in lines if "GLOBAL" in x or "global" in x), lines[-1] if lines else "")
        raise ValueError(f"{path}: not a readable checkpoint (refused: it holds objects other than tensors "
                         f"and plain containers, which are never unpickled; {detail.rstrip('.')})") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a ddsp-vocoder checkpoint (no 'model' entry)")
    if int(state.get("format", 0)) > CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {state['format']} is newer than this package supports")
    return state


def latest_checkpoint(directory) -> Path | None:
    """Newest checkpoint in ``directory`` that loads; unreadable ones are skipped."""
    for p in reversed(list_checkpoints(directory)):
        try:
            load_checkpoint(p)
            return p
        except ValueError:
            continue
    return None


def resolve_checkpoint(path) -> Path:
    """A checkpoint file, or the newest one of an experiment dir (EXP/checkpoints/)."""
    p = Path(path)
    if p.is_dir():
        ckpt_dir = p / "checkpoints" if (p / "checkpoints").is_dir() else p
        found = latest_checkpoint(ckpt_dir)
        if found is None:
            raise FileNotFoundError(f"{p}: no checkpoint found (expected {ckpt_dir}/step_*.pt)")
        return found
    return p


def load_model(path, *, device="cpu"):
    """Rebuild a model from a checkpoint (file or experiment dir) in eval mode.

    Returns:
        (model, state) where state is the checkpoint dict.
    """
    from ..models import build_model

    state = load_checkpoint(resolve_checkpoint(path), map_location="cpu")
    cfg = state.get("config", {}).get("model")
    if not cfg or "name" not in cfg:
        raise ValueError(f"{path}: checkpoint has no model config")
    kwargs = {k: v for k, v in cfg.items() if k != "name"}
    model = build_model(cfg["name"], **kwargs)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state
