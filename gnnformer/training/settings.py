"""The settings of one experiment (``gnnformer train``), typed and checked before any work starts."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..config import build_config
from ..datasets.splits import SplitPlan
from ..errors import ConfigError
from ..registry import MODELS
from .optim import OPTIMIZERS, SCHEDULERS

SPLITS = ("auto", "random", "public", "per_class", "file")


@dataclass
class ExperimentConfig:
    model: str = "gps"
    dataset: str = "MUTAG"
    data_root: Optional[str] = None
    epochs: int = 100
    seed: int = 0
    folds: int = 0  # k > 1: stratified k-fold cross-validation (classification of graphs)
    runs: int = 1  # without folds: independent runs with seeds seed, seed+1, ...
    split: str = "auto"  # auto | random (80/10/10) | public (Planetoid masks, or the dataset's fixed split) | per_class
    per_class: int = 20  # split=per_class (one graph): training nodes per class, drawn per run seed
    num_val: int = 500  # split=per_class: validation nodes, drawn from the rest
    num_test: Optional[int] = 1000  # split=per_class: test nodes, drawn from the rest after validation (null: all of it)
    split_file: Optional[str] = None  # split=file: JSON {"train": [...], "valid": [...], "test": [...]} of indices
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "constant"  # constant | cosine (per epoch, after `warmup_epochs` of linear warm-up)
    warmup_epochs: int = 0
    grad_clip: Optional[float] = None  # scale gradients to this global L2 norm at most before each step (null: never)
    batch_size: int = 32
    patience: int = 0  # stop after this many epochs without validation improvement (0 = never)
    device: str = "cpu"  # cpu | cuda | auto
    # Batch graphs of similar size together (dense attention only). Off by default: attention already
    # pads per size group inside a random batch, and same-size batches cost accuracy where size
    # predicts the label (NCI1).
    bucket: bool = False
    train_fraction: float = 1.0  # train on a seeded, class-stratified subset of the training split
    # One large graph (node task): train on random node partitions of this size (induced subgraphs),
    # evaluate the full graph in chunks of this many nodes; 0 = the whole graph every step.
    node_batch_size: int = 0
    model_args: Dict[str, Any] = field(default_factory=dict)
    dataset_args: Dict[str, Any] = field(default_factory=dict)  # the dataset's own options, e.g. lags, k

    def validate(self) -> None:
        at_least = {"epochs": 1, "runs": 1, "batch_size": 1, "per_class": 1, "num_val": 1,
                    "patience": 0, "warmup_epochs": 0, "node_batch_size": 0}
        for key, low in at_least.items():
            if getattr(self, key) < low:
                what = "not be negative" if low == 0 else f"be at least {low}"
                raise ConfigError(f"{key} must {what}, got {getattr(self, key)}.")
        if self.num_test is not None and self.num_test < 1:
            raise ConfigError(f"num_test must be at least 1, or null (all the rest), got {self.num_test}.")
        if self.folds in (1, 2) or self.folds < 0:
            raise ConfigError(f"folds must be 0 (no cross-validation) or at least 3 (one fold tests, one validates, "
                              f"the rest train), got {self.folds}.")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}.")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must not be negative, got {self.weight_decay}.")
        for key, allowed in (("split", SPLITS), ("optimizer", tuple(OPTIMIZERS)), ("scheduler", SCHEDULERS),
                             ("device", ("cpu", "cuda", "auto"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}.")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"grad_clip must be a positive gradient norm, or null (no clipping), got {self.grad_clip}.")
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs}).")
        if (self.split == "file") != (self.split_file is not None):
            raise ConfigError("split=file needs split_file=PATH (a JSON of train/valid/test indices)"
                              if self.split == "file" else
                              f"split_file is given but split is {self.split!r}; set split=file to use it.")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(f"train_fraction must be in (0, 1], got {self.train_fraction}.")
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("device=cuda was asked for, but torch sees no CUDA device here.")
        MODELS.get(self.model)  # unknown model -> ConfigError listing the known ones

    def split_plan(self) -> SplitPlan:
        return SplitPlan(self.split, self.folds, self.runs, self.seed, self.per_class, self.num_val, self.num_test,
                         self.train_fraction, self.split_file)

    def to_dict(self) -> Dict[str, Any]:
        values = dataclasses.asdict(self)
        # Keys added after runs were saved are left out while off, so that those runs' settings
        # (resume keys, saved benchmark rows) still match the same experiment.
        for key in ADDED_KEYS:
            if values[key] is None:
                del values[key]
        return values


#: Settings that appeared after experiments had been saved; off (None), they are not in ``to_dict()``.
ADDED_KEYS = ("grad_clip",)


def config_from_mapping(values: Mapping[str, Any]) -> ExperimentConfig:
    """A checked :class:`ExperimentConfig` from settings (file + flags + ``key=value``, merged by
    :func:`gnnformer.config.merge_settings`); unknown keys and wrong types are refused."""
    _ensure_models_registered()
    return build_config(ExperimentConfig, values, "the experiment")


def stored_settings(cfg: ExperimentConfig) -> Dict[str, Any]:
    """The settings as written to config.yaml and checkpoints: ``data_root`` resolved (absolute),
    so that they still find the data from another directory."""
    values = cfg.to_dict()
    for key in ("data_root", "split_file"):
        if values[key]:
            values[key] = str(Path(values[key]).expanduser().resolve())
    return values


def _ensure_models_registered() -> None:
    from .. import models  # noqa: F401  (importing registers every model)
