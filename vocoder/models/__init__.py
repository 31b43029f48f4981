"""Models by name.

Every model is an ``nn.Module`` with keyword-only constructor arguments (the
``model:`` section of a config, minus ``name``) and this small interface:

* ``input_streams``: feature streams it reads from a dump (e.g. ``("f0", "vuv", ...)``);
* ``forward(inputs, *, generator=None) -> dict`` with at least ``audio``
  (batch, frames * hop_length) and the synthesizer controls for plots; ``generator``
  is a ``torch.Generator`` or a list of them, one per batch row (the trainer passes
  per-example generators so that the noise of an example does not depend on the batch
  split across processes, nor on whether the run was resumed);
* ``set_statistics(stats)``: store normalisation statistics (from ``vocoder stats``)
  in buffers, so that they travel inside the checkpoint.

``build_model(name, **kwargs)`` makes one; ``register`` adds a class under a name.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

_REGISTRY: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a model to the registry under ``name``."""

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        cls.model_name = name
        return cls

    return deco


def _load_builtin() -> None:
    from . import ddsp  # noqa: F401
    from . import mel_vocoder  # noqa: F401


def available_models() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[nn.Module]:
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build_model(name: str, **kwargs) -> nn.Module:
    """Instantiate the model registered as ``name`` with keyword arguments."""
    cls = get_model_class(name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"model {name!r}: bad settings: {exc}") from None
