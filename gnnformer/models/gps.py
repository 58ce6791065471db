"""GraphGPS: local message passing + global attention + FFN in every layer.

Rampasek et al., 'Recipe for a General, Powerful, Scalable Graph Transformer', NeurIPS 2022.
x^0 = [Linear(x) || LapPE || RWSE];  x^{l+1} = GPSLayer(x^l, E, G)  (see ``gnnformer.nn.fusion``).
With ``local='gine'``/``'gatedgcn'`` edge features are encoded to ``hidden``; GatedGCN updates them
and every layer passes its edge state to the next (as GraphGPS does).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Tuple

from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import GPSLayer, GraphMultiheadAttention
from ..registry import MODELS
from .base import GraphModel
from .transformer import NodeEncoder, TransformerConfig


@dataclass
class GPSConfig(TransformerConfig):
    local: str = "gin"  # message-passing branch: gin | gine | gcn | gat | gatedgcn | none
    attention_graph: str = "complete"  # 'complete' | 'edges' | 'none'
    norm: str = "batch"
    attn_dropout: float = 0.5
    rwse: int = 16
    drop_path: float = 0.0  # stochastic depth on the attention branch, per graph (0 = off)
    attn_init: str = "xavier"  # 'xavier' | 'shared' (Q, K, V and output start as one Linear, as Gradformer's code)

    ATTENTION_GRAPHS: ClassVar[Tuple[str, ...]] = ("complete", "edges", "none")

    def validate(self) -> None:
        if self.attention_graph == "none" and self.local == "none":
            raise ConfigError("GPS needs a local branch, an attention branch, or both.")
        super().validate()
        if self.local == "gine" and not self.edge_dim:
            raise ConfigError("local='gine' needs edge features, and this dataset has none (edge_dim=0).")
        if not 0.0 <= float(self.drop_path) < 1.0:
            raise ConfigError(f"drop_path must be in [0, 1), got {self.drop_path!r}.")
        if self.attn_init not in GraphMultiheadAttention.INITS:
            raise ConfigError(f"attn_init must be one of {', '.join(GraphMultiheadAttention.INITS)}, "
                              f"got {self.attn_init!r}.")


@MODELS.register("gps", "GraphGPS fused layers: MPNN + attention + FFN, LapPE/RWSE (Rampasek et al. 2022)")
class GPS(GraphModel):
    Config = GPSConfig

    def __init__(self, cfg: GPSConfig) -> None:
        super().__init__(cfg)
        self.encoder = NodeEncoder(cfg.in_channels, cfg.hidden, cfg.lap_pe, cfg.rwse, cfg.pe_dim, cfg.pe_combine)
        # GatedGCN can run without edge features (gates from the endpoints only); GINE cannot.
        uses_edges = cfg.local == "gine" or (cfg.local == "gatedgcn" and bool(cfg.edge_dim))
        self.edge_encoder = nn.Linear(cfg.edge_dim, cfg.hidden) if uses_edges else None
        self.layers = nn.ModuleList(
            GPSLayer(cfg.hidden, cfg.heads, local=cfg.local, attention_graph=cfg.attention_graph,
                     dropout=cfg.dropout, attn_dropout=cfg.attn_dropout, norm=cfg.norm,
                     edge_dim=cfg.hidden if uses_edges else None, drop_path=cfg.drop_path,
                     attn_init=cfg.attn_init)
            for _ in range(cfg.layers)
        )

    def embed(self, data) -> Tensor:
        h = self.encoder(data)
        edge_attr = self.edge_encoder(data.edge_attr) if self.edge_encoder is not None else None
        batch = getattr(data, "batch", None)
        for layer in self.layers:
            h, edge_attr = layer(h, data.edge_index, batch, edge_attr=edge_attr, return_edge_attr=True)
        return h
