r"""CLGT: a graph transformer over a team's typed, weighted interaction graph.

Peng et al., "CLGT: A Graph Transformer for Student Performance Prediction in Collaborative
Learning", AAAI 2023 (arXiv:2308.02038).

.. math::
    x^0 = \mathrm{Linear}(x), \quad e^0 = \mathrm{Linear}(\text{edge\_attr}) \ (\text{or } 0), \quad
    \bar w_{ij} = w_{ij} / \max_{(k,l) \in G} w_{kl}, \qquad
    (x^{l+1}, e^{l+1}) = \mathrm{CLGTConv}(x^l, e^l, \bar w, \tau)

then the shared MLP head (per node with ``level='node'``, the members' predictions). The weights
are rescaled per graph so that raw counts (lines, commits) and unit weights train alike; the
largest interaction of a window gets weight 1. A graph without ``edge_attr`` / ``edge_weight`` /
``edge_type`` gets zeros / ones / type 0, so the model runs on any dataset of the registry.
The layer and its update rule: :class:`gnnformer.nn.clgt.CLGTConv`.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch_geometric.utils import scatter

from ..errors import ConfigError, DataError
from ..nn.clgt import CLGTConv
from ..nn.transformer_layer import NORMS
from ..registry import MODELS
from .base import GraphModel, ModelConfig, edge_types


@dataclass
class CLGTConfig(ModelConfig):
    heads: int = 4
    num_edge_types: int = 1  # 1 = homogeneous; the collaboration windows have 4 (co-edit, integrate, co-author, sign-off)
    attn_dropout: float = 0.0
    norm: str = "layer"
    use_edge_pipeline: bool = True  # ablation: False = no edge state, types or attention bias
    use_weight_pipeline: bool = True  # ablation: False = edge weights ignored

    def validate(self) -> None:
        super().validate()
        if int(self.heads) < 1 or self.hidden % self.heads:
            raise ConfigError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads}).")
        if int(self.num_edge_types) < 1:
            raise ConfigError(f"num_edge_types must be a positive integer, got {self.num_edge_types!r}.")
        if int(self.edge_dim) < 0:
            raise ConfigError(f"edge_dim must be 0 (no edge features) or positive, got {self.edge_dim!r}.")
        if not 0.0 <= float(self.attn_dropout) < 1.0:
            raise ConfigError(f"attn_dropout must be in [0, 1), got {self.attn_dropout!r}.")
        if self.norm not in NORMS:
            raise ConfigError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}.")


@MODELS.register("clgt", "CLGT (Peng et al. 2023): graph transformer over typed, weighted edges with an edge-feature pipeline")
class CLGT(GraphModel):
    Config = CLGTConfig

    def __init__(self, cfg: CLGTConfig) -> None:
        super().__init__(cfg)
        self.encoder = nn.Linear(cfg.in_channels, cfg.hidden)
        self.edge_encoder = nn.Linear(cfg.edge_dim, cfg.hidden) if cfg.edge_dim and cfg.use_edge_pipeline else None
        self.layers = nn.ModuleList(
            CLGTConv(cfg.hidden, cfg.heads, num_edge_types=cfg.num_edge_types, dropout=cfg.dropout,
                     attn_dropout=cfg.attn_dropout, norm=cfg.norm, use_edge_pipeline=cfg.use_edge_pipeline,
                     use_weight_pipeline=cfg.use_weight_pipeline)
            for _ in range(cfg.layers)
        )

    def embed(self, data) -> Tensor:
        edge_index = data.edge_index
        h = self.encoder(data.x)
        edge_type = edge_types(data, self.cfg.num_edge_types) if self.cfg.use_edge_pipeline else None
        e = self._edge_state(data)
        w = self._edge_weight(data) if self.cfg.use_weight_pipeline else None
        for layer in self.layers:
            h, e = layer(h, edge_index, edge_attr=e, edge_weight=w, edge_type=edge_type)
        return h

    def _edge_state(self, data) -> Tensor | None:
        if self.edge_encoder is None:
            return None  # the layer starts from zeros (plus the type embedding)
        edge_attr = getattr(data, "edge_attr", None)
        num_edges = data.edge_index.size(1)
        if edge_attr is None:
            edge_attr = data.x.new_zeros(num_edges, self.cfg.edge_dim)
        if edge_attr.dim() == 1:  # one feature per edge, stored flat
            edge_attr = edge_attr.unsqueeze(-1)
        edge_attr = edge_attr.to(data.x.dtype)
        if edge_attr.size(1) != self.cfg.edge_dim:
            raise ConfigError(f"edge_attr has {edge_attr.size(1)} columns, but the model was built with "
                              f"edge_dim={self.cfg.edge_dim}.")
        return self.edge_encoder(edge_attr)

    @staticmethod
    def _edge_weight(data) -> Tensor | None:
        w = getattr(data, "edge_weight", None)
        if w is None or w.numel() == 0:
            return None  # every weight 1
        w = w.view(-1).to(data.x.dtype)
        if bool((w < 0).any()):
            raise DataError("edge_weight has negative values; CLGT's edge weights are interaction strengths (>= 0).")
        batch = getattr(data, "batch", None)
        graph = batch[data.edge_index[0]] if batch is not None else w.new_zeros(w.numel(), dtype=data.edge_index.dtype)
        top = scatter(w, graph, dim=0, reduce="max")  # one maximum per graph
        return w / top[graph].clamp(min=1e-12)
