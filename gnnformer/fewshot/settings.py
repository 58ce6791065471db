"""Settings of a few-shot run (``gnnformer fewshot``): what is trained, how, and how it is evaluated.

``FewShotConfig`` holds every setting with the protocol's defaults; ``fewshot_config`` builds it
from a mapping (file + flags + ``key=value``, where lists may be given as ``"a,b"``) through the
library's ``build_config``, and ``spec_for`` says how each method adapts to a test support set.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..config import build_config
from ..errors import ConfigError
from .featurize import check_policy
from .meta import ADAPT, AdaptSpec
from .model import fewshot_model_config
from .pretrain import CORPORA
from .tasks import DATASETS, SOURCES, FewShotData

METHODS = ("fs-gnncvtr", "fs-gin", "finetune")
PRETRAIN = ("none", "attrmask", "hu")
#: The protocol's number of support draws per test task; fewer is reported as reduced.
FULL_DRAWS = 30


@dataclass
class FewShotConfig:
    dataset: str = "tox21"  # tox21 | sider
    shots: int = 5  # k: k positives + k negatives in every support set
    source: str = "fewshotmol"  # fewshotmol | moleculenet (the same tasks)
    data_root: Optional[str] = None
    seed: int = 0
    methods: List[str] = field(default_factory=lambda: list(METHODS))
    pretrain: List[str] = field(default_factory=lambda: ["none", "attrmask"])
    invalid: str = "skip"  # skip | error: SMILES RDKit cannot read (Tox21 has 8)
    # meta-training (fs-gnncvtr, fs-gin)
    episodes: int = 30  # outer steps
    tasks_per_episode: int = 3  # training tasks per outer step (0 = all)
    query_size: int = 128
    inner_steps: int = 5  # inner-loop steps in meta-training
    inner_steps_test: int = 10  # ... and when adapting to a test support set
    inner_lr: float = 0.05
    first_order: bool = True
    adapt: str = "head"  # head | encoder | all: what the inner loop (and fine-tuning) changes
    outer_lr_gnn: float = 1e-3
    outer_lr_head: float = 1e-3  # the Transformer (fs-gnncvtr) or linear head (fs-gin)
    weight_decay: float = 0.0
    pos_weight: Optional[float] = None  # query-loss positive weight; null = negatives/positives of each query set
    grad_clip: float = 1.0  # outer gradient norm clip (0 = off)
    # model selection on a held-out meta-training task (never a test task): ``val_task`` is its position
    # among the meta-training tasks (-1: the last; null: none, the weights after the last step are kept)
    val_task: Optional[int] = -1
    val_every: int = 10  # outer steps between two validation scores
    val_draws: int = 10  # support draws of the validation task per score
    patience: int = 0  # stop after this many scores without a better one (0: run every outer step)
    # also score the test tasks (val_draws draws) at every validation step: the per-task best over training
    # that the FS-GNNCvTR code reports, kept apart ("test_by_step"); never used to select weights or stop
    track_test: bool = False
    # non-meta baseline (finetune)
    baseline_steps: int = 75  # multi-task training steps on the meta-training tasks (batches of 128)
    baseline_batch_size: int = 128
    baseline_lr: float = 1e-3
    finetune_steps: int = 10  # Adam steps on each support set
    finetune_lr: float = 1e-2
    # evaluation
    draws: int = FULL_DRAWS  # support sets per test task
    eval_batch_size: int = 256
    # self-supervised pre-training (pretrain: attrmask)
    pretrain_corpus: List[str] = field(default_factory=lambda: list(CORPORA))
    pretrain_epochs: int = 5
    pretrain_batch_size: int = 128
    pretrain_lr: float = 1e-3
    mask_rate: float = 0.15
    # pretrain: hu = an encoder pre-trained by Hu et al. (2020), their .pth format (hu_weights.py); the
    # model options must match it (conv gcn / graphsage / gin, norm batch, 5 layers, 300 wide)
    pretrained_encoder: Optional[str] = None
    model_args: Dict[str, Any] = field(default_factory=dict)  # GIN / Transformer options (FewShotModelConfig)
    # reuse what the output folder already holds for the same settings: a (method, pre-training) pair's
    # results, or its checkpoint (then only evaluated again); an interrupted run continues where it stopped
    resume: bool = True

    def validate(self) -> None:
        if self.dataset.lower() not in DATASETS:
            raise ConfigError(f"dataset must be tox21 or sider, got {self.dataset!r}.")
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}.")
        for key, allowed in (("methods", METHODS), ("pretrain", PRETRAIN), ("pretrain_corpus", CORPORA)):
            value = getattr(self, key)
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{key} must be a non-empty list, e.g. [{', '.join(allowed)}].")
            bad = [v for v in value if v not in allowed]
            if bad:
                raise ConfigError(f"{key}: unknown {', '.join(map(str, bad))}; choose from {', '.join(allowed)}.")
            if len(set(value)) != len(value):
                raise ConfigError(f"{key} lists an entry twice: {value}.")
        if self.adapt not in ADAPT:
            raise ConfigError(f"adapt must be one of {', '.join(ADAPT)}, got {self.adapt!r}.")
        check_policy(self.invalid)
        positive = ("shots", "query_size", "draws", "eval_batch_size", "baseline_batch_size", "pretrain_batch_size",
                    "val_every", "val_draws")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}.")
        for key in ("episodes", "tasks_per_episode", "inner_steps", "inner_steps_test", "baseline_steps",
                    "finetune_steps", "pretrain_epochs", "patience"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must not be negative, got {getattr(self, key)}.")
        for key in ("inner_lr", "outer_lr_gnn", "outer_lr_head", "baseline_lr", "finetune_lr", "pretrain_lr"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}.")
        if self.pos_weight is not None and not self.pos_weight > 0:
            raise ConfigError(f"pos_weight must be positive or null (balance each query set), got {self.pos_weight}.")
        if self.track_test and self.val_task is None:
            raise ConfigError("track_test scores the test tasks at every validation step: it needs a validation "
                              "task (val_task), not null.")
        if "hu" in self.pretrain and not self.pretrained_encoder:
            raise ConfigError("pretrain=hu needs pretrained_encoder=PATH (a .pth of Hu et al.'s format, e.g. "
                              "../shared/pretrained/gcn_supervised_contextpred.pth with model_args.conv=gcn "
                              "model_args.norm=batch).")
        if not 0.0 < self.mask_rate < 1.0:
            raise ConfigError(f"mask_rate must be in (0, 1), got {self.mask_rate}.")
        if not isinstance(self.model_args, dict):
            raise ConfigError(f"model_args must be a mapping of model options, got {self.model_args!r}.")
        fewshot_model_config(**self.model_args)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


#: ``gnnformer fewshot --quick``: a smoke-scale run of the whole protocol in a few minutes.
QUICK = {"episodes": 10, "tasks_per_episode": 3, "baseline_steps": 20, "draws": 5, "pretrain": ["none"]}


def fewshot_config(values: Dict[str, Any]) -> FewShotConfig:
    values = dict(values)
    for key in ("methods", "pretrain", "pretrain_corpus"):  # "a,b" on the command line
        if isinstance(values.get(key), str):
            values[key] = [v.strip() for v in values[key].split(",") if v.strip()]
    if isinstance(values.get("dataset"), str):
        values["dataset"] = values["dataset"].lower()
    return build_config(FewShotConfig, values, "few-shot")


def reductions(cfg: FewShotConfig) -> List[str]:
    out = []
    if cfg.draws < FULL_DRAWS:
        out.append(f"{cfg.draws} of {FULL_DRAWS} support draws per test task")
    return out


def protocol(cfg: FewShotConfig, data: FewShotData) -> str:
    train = ", ".join(str(t.index) for t in data.train_tasks)
    val = (f"; validation task {data.val_tasks[0].index} {data.val_tasks[0].name} (held out of meta-training; the "
           f"meta-learned weights are selected on it, {cfg.val_draws} draws every {cfg.val_every} outer steps"
           + (f", patience {cfg.patience}" if cfg.patience else "")
           + ("; the test tasks are also scored at every validation step, on the same draws, for the per-task best "
              "over training only" if cfg.track_test else "") + ")") if data.val_tasks else ""
    test = ", ".join(f"{t.index} {t.name}" for t in data.test_tasks)
    order = "first-order" if cfg.first_order else "second-order"
    per = "all" if cfg.tasks_per_episode <= 0 else str(min(cfg.tasks_per_episode, len(data.train_tasks)))
    return (f"2-way {cfg.shots}-shot on {data.name} ({cfg.source}); meta-train tasks {train}{val}; meta-test tasks {test}. "
            f"Meta-training: {cfg.episodes} outer steps x {per} tasks, support {cfg.shots}+{cfg.shots}, query "
            f"{cfg.query_size}, {cfg.inner_steps} inner SGD steps (lr {cfg.inner_lr:g}, {order}, adapt {cfg.adapt}). "
            f"Meta-test: {cfg.draws} independent support draws per task, every other molecule of the task as query, "
            f"{cfg.inner_steps_test} adaptation steps; ROC-AUC per draw, mean ± std over all draws (none dropped).")


def spec_for(cfg: FewShotConfig, method: str) -> AdaptSpec:
    if method == "finetune":
        spec = AdaptSpec("finetune", cfg.adapt, cfg.finetune_steps, cfg.finetune_lr, cfg.shots)
    else:
        spec = AdaptSpec("maml", cfg.adapt, cfg.inner_steps_test, cfg.inner_lr, cfg.shots)
    spec.validate()
    return spec

