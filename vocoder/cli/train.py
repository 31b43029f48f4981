"""Train a model on a feature dump.

    vocoder train --config conf/ddsp_speech.yaml --train-dump dump/train --valid-dump dump/dev \\
                  --exp exp/ddsp_speech [--resume] [--device auto|cpu|cuda] [--set train.max_steps=500]

The config's `model:` section names a registered model and its settings, `train:` the
training settings (vocoder/training/trainer.py: TrainConfig). The sample rate and hop
come from the dump; `speakers: auto` takes the speaker list from the training dump.
The resolved configuration is saved as EXP/config.yaml (with a `version` key) and
inside every checkpoint; checkpoints also carry the statistics of --stats (global
log-f0/loudness and the per-speaker section: `vocoder convert` maps f0 and loudness
with them). Multi-GPU / multi-process: launch with
`torchrun --nproc_per_node N -m vocoder.cli.main train ...`.
"""
from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

import yaml

from ..outputs import write_atomic
from ..version import __version__

CONFIG_VERSION = 1


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, help="YAML config with model: and train: sections")
    p.add_argument("--train-dump", required=True, help="feature dump of the training set")
    p.add_argument("--valid-dump", help="feature dump of the validation set")
    p.add_argument("--stats", help="statistics JSON (default TRAIN_DUMP/stats.json if present)")
    p.add_argument("--exp", required=True, help="experiment directory")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in EXP")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. train.max_steps=100 (YAML value syntax)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML scalars/lists)."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return cfg


def read_yaml(path):
    """A YAML file's content via ``yaml.safe_load`` (plain data only: a tag such as
    ``!!python/object`` is refused, never run); errors name the file and the line."""
    with open(path, encoding="utf-8") as f:
        try:
            return yaml.safe_load(f)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
            raise ValueError(f"{where}: not a valid YAML config ({problem})") from None


def load_config(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config not found")
    cfg = read_yaml(path) or {}
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise ValueError(f"{path}: config needs a `model:` section")
    version = int(cfg.get("version", CONFIG_VERSION))
    if version > CONFIG_VERSION:
        raise ValueError(f"{path}: config version {version} is newer than this package ({CONFIG_VERSION})")
    return cfg


def resolve(cfg: dict, *, train_dump, valid_dump, stats_path) -> dict:
    """Fill in what the dump determines (rate, hop, speakers) and record the data paths."""
    from ..data.features import FeatureDump

    dump = FeatureDump(train_dump)
    resolved = copy.deepcopy(cfg)
    resolved["version"] = CONFIG_VERSION
    resolved["package_version"] = __version__
    feats = dump.config.to_dict()
    declared = resolved.get("features") or {}
    for key in ("sample_rate", "hop_length"):
        if key in declared and declared[key] != feats[key]:
            raise ValueError(f"config features.{key}={declared[key]} but the dump {train_dump} has {feats[key]}; "
                             "re-extract or fix the config")
    resolved["features"] = feats
    model = resolved["model"]
    model["sample_rate"] = feats["sample_rate"]
    model["hop_length"] = feats["hop_length"]
    if model.get("speakers") == "auto":
        model["speakers"] = sorted(set(dump.utt2spk.values()))
    if "n_mfcc" in model and "mfcc" in dump.streams and model.get("z_dim", 1):
        dims = dump.load(dump.utts[0], ["mfcc"])["mfcc"].shape[1]
        if model["n_mfcc"] > dims:
            raise ValueError(f"model.n_mfcc={model['n_mfcc']} but the dump has {dims} MFCCs")
    resolved["data"] = {"train_dump": str(Path(train_dump).resolve()),
                        "valid_dump": str(Path(valid_dump).resolve()) if valid_dump else None,
                        "stats": str(Path(stats_path).resolve()) if stats_path else None}
    return resolved


def checkpoint_stats(stats: dict) -> dict:
    """The part of a `vocoder stats` dict stored in checkpoints: the global log-f0 and
    loudness entries and the per-speaker section (not the per-bin mel values)."""
    glob = stats.get("global") or {}
    return {"version": stats.get("version"), "global": {k: glob[k] for k in ("logf0", "loudness") if k in glob},
            "speakers": stats.get("speakers") or {}}


def run(args) -> int:
    import torch

    from ..data.dataset import CropDataset, crop_frames_for
    from ..models import build_model, get_model_class
    from ..training.checkpoint import (
        latest_checkpoint,
        list_checkpoints,
        load_checkpoint,
    )
    from ..training.trainer import TrainConfig, Trainer, resolve_device

    exp = Path(args.exp)
    existing = list_checkpoints(exp / "checkpoints")
    if existing and not args.resume:
        raise RuntimeError(f"{exp} already has checkpoints; pass --resume to continue, or choose another --exp")
    stats_path = args.stats or (Path(args.train_dump) / "stats.json")
    stats_path = stats_path if Path(stats_path).is_file() else None
    if args.stats and stats_path is None:
        raise FileNotFoundError(f"{args.stats}: statistics file not found (run `vocoder stats`)")
    cfg = apply_overrides(load_config(args.config), args.set)
    cfg = resolve(cfg, train_dump=args.train_dump, valid_dump=args.valid_dump, stats_path=stats_path)
    tcfg = TrainConfig.from_dict(cfg.get("train") or {})
    cfg["train"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in tcfg.__dict__.items()}
    if args.resume and existing:
        last = latest_checkpoint(exp / "checkpoints")
        if last is not None:
            saved = load_checkpoint(last)
            if int(saved.get("step", 0)) >= tcfg.max_steps:
                print(f"vocoder train: {exp} is already trained to step {saved['step']} "
                      f"(max_steps {tcfg.max_steps}); nothing to do", file=sys.stderr)
                return 0
            cfg["model"] = saved["config"]["model"]  # the model must match the checkpoint
    device = resolve_device(args.device)
    torch.manual_seed(tcfg.seed)  # the model's initial weights follow train.seed
    model_cfg = {k: v for k, v in cfg["model"].items() if k != "name"}
    model = build_model(cfg["model"]["name"], **model_cfg)
    from .synth import check_feature_settings  # a mel model must read the mel it was built for
    check_feature_settings(model, cfg["features"], args.train_dump)
    stats = None
    if stats_path:
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
        model.set_statistics(stats)
    streams = list(get_model_class(cfg["model"]["name"]).input_streams)
    crop = crop_frames_for(tcfg.crop_seconds, sample_rate=model.sample_rate, hop_length=model.hop_length)
    speakers = cfg["model"].get("speakers") or []
    rank = int(os.environ.get("RANK", "0"))
    train_set = CropDataset(args.train_dump, streams=streams, crop_frames=crop, speakers=speakers, seed=tcfg.seed)
    valid_set = (CropDataset(args.valid_dump, streams=streams, crop_frames=crop, speakers=speakers, fixed=True)
                 if args.valid_dump else None)
    if rank == 0:
        write_atomic(exp / "config.yaml", yaml.safe_dump(cfg, sort_keys=False), what="the resolved config")
        n_params = sum(p.numel() for p in model.parameters())
        print(f"vocoder train: {cfg['model']['name']} with {n_params / 1e6:.2f} M parameters on {device}; "
              f"{len(train_set.utts)} training utterances ({train_set.total_frames * model.hop_length / model.sample_rate:.0f} s)",
              file=sys.stderr)
    # The checkpoints carry the statistics (config.yaml keeps only their path).
    ckpt_config = {**cfg, "stats": checkpoint_stats(stats)} if stats else cfg
    trainer = Trainer(model, train_set, valid_set, exp_dir=exp, config=tcfg, full_config=ckpt_config,
                      device=device, progress=not args.no_progress)
    if args.resume:
        trainer.resume()
    torch.set_float32_matmul_precision("high")
    summary = trainer.train()
    if rank == 0:
        summary["steps_per_s"] = summary["steps"] / max(summary["seconds"], 1e-9)
        summary["device"] = str(device)
        write_atomic(exp / "train_summary.json", json.dumps(summary, indent=1), what="the training summary")
        print(f"vocoder train: done at step {summary['steps']}; last loss {summary['last_loss']:.4f}, "
              f"valid loss {summary.get('valid_loss', float('nan')):.4f}", file=sys.stderr)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0
