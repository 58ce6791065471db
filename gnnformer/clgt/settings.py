"""Settings of a CLGT run (``gnnformer clgt train`` / ``report``), built from file + flags +
``key=value`` by ``config.build_config``.

The defaults fit a 2-core CPU: the collaboration windows are small graphs (tens of members), so
a model of 64 channels trains in seconds per epoch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..config import build_config
from ..errors import ConfigError

#: Models compared in one run besides ``model``: ``adaboost`` is scikit-learn's AdaBoostClassifier
#: on the node features alone; the others are registered graph models trained by the same trainer.
BASELINES = ("adaboost", "rgcn", "gat", "transformer")
#: Options every graph model gets on these windows (typed edges where the model has types).
TYPED = ("clgt", "rgcn")


@dataclass
class CLGTConfig:
    # data: one of the two
    repo: Optional[str] = None  # a local git repository
    activity: Optional[str] = None  # a folder of exported tables (commits.tsv.gz, files.tsv.gz)
    labels: Optional[str] = None  # CSV member,label; None = the proxy label (see data.py)
    window_days: int = 182  # one "semester" by default
    min_commits: int = 2  # proxy: fewer contributions than this in the next window = at risk
    min_members: int = 2
    val_windows: int = 1  # chronological split: the latest labelled windows test, the ones before validate
    test_windows: int = 2
    # models
    model: str = "clgt"
    model_args: Dict[str, Any] = field(default_factory=dict)  # model.<option>=value, for `model` only
    baselines: List[str] = field(default_factory=lambda: list(BASELINES))
    epochs: int = 100
    patience: int = 30  # stop after this many epochs without a better validation score (0 = never)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 8  # windows per batch
    seeds: List[int] = field(default_factory=lambda: [0])
    # report
    show_names: bool = False  # the repository's member ids instead of pseudonyms
    explain: int = 5  # explain the this many members most at risk
    explain_samples: int = 200  # PGM-Explainer perturbation samples per member
    checkpoint: Optional[str] = None  # report: reuse best.pt of `clgt train` instead of training again
    out: Optional[str] = None

    def validate(self) -> None:
        if (self.repo is None) == (self.activity is None):
            raise ConfigError("Give exactly one of --repo (a git repository) or --activity (a folder of activity tables).")
        at_least = {"window_days": 1, "min_commits": 1, "min_members": 2, "val_windows": 1, "test_windows": 1,
                    "epochs": 1, "batch_size": 1, "patience": 0, "explain": 0, "explain_samples": 2}
        for key, low in at_least.items():
            if getattr(self, key) < low:
                raise ConfigError(f"{key} must be at least {low}, got {getattr(self, key)}.")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(f"lr must be positive and weight_decay not negative, got {self.lr} and {self.weight_decay}.")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {self.seeds}.")
        unknown = [b for b in self.baselines if b != "adaboost" and not _registered(b)]
        if unknown:
            raise ConfigError(f"Unknown baseline(s) {', '.join(unknown)}; use adaboost or a model of `gnnformer list` "
                              f"(default: {', '.join(BASELINES)}).")
        if self.model == "adaboost" or not _registered(self.model):
            raise ConfigError(f"model {self.model!r} is not a graph model of `gnnformer list`.")
        for key in ("in_channels", "out_channels", "level"):
            if key in self.model_args:
                raise ConfigError(f"model.{key} is set from the data; drop it.")

    def models(self) -> List[str]:
        """The model, then the baselines, each once."""
        return list(dict.fromkeys([self.model, *self.baselines]))

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _registered(name: str) -> bool:
    from ..models import list_models

    return name in {n for n, _ in list_models()}


def clgt_config(values: Dict[str, Any]) -> CLGTConfig:
    """A checked `CLGTConfig`; ``seeds`` and ``baselines`` may be given as ``"0,1,2"`` / ``"rgcn,gat"``
    (``baselines=none``: the model alone)."""
    values = dict(values)
    for key in ("seeds", "baselines"):
        raw = values.get(key)
        if isinstance(raw, str):
            values[key] = [] if raw.strip().lower() in ("", "none") else [s.strip() for s in raw.split(",") if s.strip()]
        elif isinstance(raw, int):
            values[key] = [raw]
    return build_config(CLGTConfig, values, "CLGT")
