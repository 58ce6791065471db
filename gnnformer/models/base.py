"""What every model shares: a config, the input encoder, the readout and the prediction head.

encode(x, encodings) -> [layers] -> readout (graph tasks) -> head.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Dict, Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from ..errors import ConfigError

#: Readouts by name; 'add' is PyG's (and the Gradformer authors') name for 'sum'.
POOLS = {"mean": global_mean_pool, "sum": global_add_pool, "add": global_add_pool, "max": global_max_pool}
#: Input feature preprocessing a model may apply (``feature_norm``): 'row' divides each node's
#: features by their sum (PyG's NormalizeFeatures; the usual preprocessing of bag-of-words features).
FEATURE_NORMS = ("none", "row")
#: Prediction heads after the readout: 'mlp' = Linear-ReLU-Dropout-Linear; 'linear' = one Linear layer
#: (the Gradformer code's head on TU datasets, its ``projection='lin'``).
HEADS = ("mlp", "linear")


def normalise_features(x: Tensor, how: str) -> Tensor:
    """``x`` preprocessed as ``feature_norm=how`` asks (see :data:`FEATURE_NORMS`)."""
    if how == "row":
        return x / x.sum(dim=-1, keepdim=True).clamp(min=1.0)
    return x


def check_feature_norm(how: str) -> None:
    if how not in FEATURE_NORMS:
        raise ConfigError(f"feature_norm must be one of {', '.join(FEATURE_NORMS)}, got {how!r}.")


@dataclass
class ModelConfig:
    in_channels: int
    out_channels: int
    level: str = "graph"  # 'graph': one output per graph (pooled); 'node': one per node
    hidden: int = 64
    layers: int = 3
    dropout: float = 0.0
    pool: str = "mean"
    edge_dim: int = 0  # width of edge_attr, 0 = no edge features used
    head: Optional[str] = None  # see HEADS; None = the model's own (the MLP after a graph readout)

    def validate(self) -> None:
        if self.level not in ("graph", "node"):
            raise ConfigError(f"level must be 'graph' or 'node', got {self.level!r}.")
        if self.pool not in POOLS:
            raise ConfigError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}.")
        if self.head is not None and self.head not in HEADS:
            raise ConfigError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}.")
        for key in ("in_channels", "out_channels", "hidden", "layers"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key} must be a positive integer, got {getattr(self, key)!r}.")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}.")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def make_head(cfg: ModelConfig, width: int) -> nn.Module:
    """The ``cfg.head`` prediction head from ``width`` readout features to ``cfg.out_channels``."""
    if cfg.head == "linear":
        return nn.Linear(width, cfg.out_channels)
    return nn.Sequential(nn.Linear(width, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
                         nn.Linear(cfg.hidden, cfg.out_channels))


def check_fixed_head(cfg: ModelConfig, allowed: tuple, what: str) -> None:
    """For a model whose output layer is fixed (``what`` says which): refuse a ``head`` it would
    otherwise ignore, so a config never silently means something else."""
    if cfg.head is not None and cfg.head not in allowed:
        offered = f"only head: {' or '.join(allowed)} (or no head key)" if allowed else "no head key"
        raise ConfigError(f"{what}, so head: {cfg.head} cannot apply; use {offered}.")


class GraphModel(nn.Module):
    """Base class: subclasses set ``Config`` and implement ``embed(data) -> node embeddings``."""

    Config: ClassVar[type] = ModelConfig

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.head = make_head(cfg, cfg.hidden)

    @classmethod
    def encodings(cls, cfg: ModelConfig) -> Dict[str, Any]:
        """Positional/structural encodings the data needs (see ``gnnformer.nn.encodings``): the
        config's ``lap_pe`` eigenvectors and ``rwse`` random-walk steps, where it has them."""
        return {"lap_pe": getattr(cfg, "lap_pe", 0), "rwse": getattr(cfg, "rwse", 0)}

    def embed(self, data) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, data) -> Tensor:
        h = self.embed(data)
        if self.cfg.level == "graph":
            batch = data.batch if getattr(data, "batch", None) is not None else \
                torch.zeros(h.size(0), dtype=torch.long, device=h.device)
            h = POOLS[self.cfg.pool](h, batch, size=getattr(data, "num_graphs", None))
        return self.head(h)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()


def edge_types(data, num_edge_types: int) -> Tensor:
    """``data.edge_type`` (``[E]`` long), or type 0 for every edge where the graph has none.

    A type the model has no parameters for is a settings error, not an index error deep inside.
    """
    num_edges = data.edge_index.size(1)
    edge_type = getattr(data, "edge_type", None)
    if edge_type is None:
        return torch.zeros(num_edges, dtype=torch.long, device=data.edge_index.device)
    if edge_type.numel() != num_edges:
        raise ConfigError(f"edge_type has {edge_type.numel()} entries for {num_edges} edges.")
    if edge_type.numel() and (int(edge_type.min()) < 0 or int(edge_type.max()) >= num_edge_types):
        raise ConfigError(
            f"edge_type holds types {int(edge_type.min())}..{int(edge_type.max())}, but the model was built with "
            f"num_edge_types={num_edge_types}; set num_edge_types={max(int(edge_type.max()) + 1, 1)}."
        )
    return edge_type.long()
