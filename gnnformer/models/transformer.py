"""The plain Transformer, read as a GNN on the complete graph of each input graph.

h^{l+1} = TransformerLayer(h^l, G) with G the complete graph of each graph in the batch (no
message passing over the input edges at all). With ``attention_graph='edges'`` the same layer
attends only over the input edges, i.e. it becomes a graph attention network.
Vaswani et al., 'Attention Is All You Need', NeurIPS 2017.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Tuple

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import GraphTransformerLayer, LapPEEncoder, RWSEEncoder
from ..registry import MODELS
from .base import GraphModel, ModelConfig


@dataclass
class TransformerConfig(ModelConfig):
    heads: int = 4
    attention_graph: str = "complete"  # 'complete' | 'edges'
    attn_dropout: float = 0.0
    norm: str = "layer"
    norm_first: bool = False
    lap_pe: int = 8  # Laplacian eigenvectors fed in (0 = none): without any PE attention sees a set, not a graph
    rwse: int = 0  # random-walk steps for the structural encoding (0 = none)
    pe_dim: int = 8  # width each encoding takes out of `hidden` (pe_combine='concat')
    pe_combine: str = "concat"  # see NodeEncoder

    #: The graphs attention may run over; subclasses widen or narrow the choice.
    ATTENTION_GRAPHS: ClassVar[Tuple[str, ...]] = ("complete", "edges")

    def validate(self) -> None:
        super().validate()
        if self.attention_graph not in self.ATTENTION_GRAPHS:
            choices = " or ".join(repr(g) for g in self.ATTENTION_GRAPHS)
            raise ConfigError(f"attention_graph must be {choices}, got {self.attention_graph!r}.")
        if self.hidden % self.heads:
            raise ConfigError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads}).")
        if self.pe_combine not in PE_COMBINES:
            raise ConfigError(f"pe_combine must be one of {', '.join(PE_COMBINES)}, got {self.pe_combine!r}.")
        n_pe = bool(self.lap_pe) + bool(self.rwse)
        if self.pe_combine == "concat" and n_pe and self.pe_dim * n_pe >= self.hidden:
            raise ConfigError(f"pe_dim ({self.pe_dim}) leaves no room for node features in hidden ({self.hidden}).")


#: How NodeEncoder joins the node features with the positional/structural encodings.
PE_COMBINES = ("concat", "sum")


class NodeEncoder(nn.Module):
    """The input layer, ``combine='concat'``: x -> [Linear(x) || LapPE || RWSE], each encoding taking
    ``pe_dim`` of the ``hidden`` channels (GraphGPS); ``combine='sum'``: x -> Linear(x) + LapPE + W rwse,
    every term ``hidden`` wide and the random-walk probabilities used as they are, not batch-normalised
    (the Gradformer code's TU input, its ``node_method='add'``)."""

    def __init__(self, in_channels: int, hidden: int, lap_pe: int, rwse: int, pe_dim: int,
                 combine: str = "concat") -> None:
        super().__init__()
        self.combine = combine
        n_pe = bool(lap_pe) + bool(rwse)
        summed = combine == "sum"
        self.feature = nn.Linear(in_channels, hidden if summed else hidden - n_pe * pe_dim)
        self.lap = LapPEEncoder(lap_pe, hidden if summed else pe_dim) if lap_pe else None
        self.rw = RWSEEncoder(rwse, hidden if summed else pe_dim, norm=not summed) if rwse else None

    def forward(self, data) -> Tensor:
        parts = [self.feature(data.x)]
        if self.lap is not None:
            parts.append(self.lap(data.lap_pe, getattr(data, "batch", None)))
        if self.rw is not None:
            parts.append(self.rw(data.rwse))
        if self.combine == "sum":
            return torch.stack(parts).sum(dim=0)
        return torch.cat(parts, dim=-1)


@MODELS.register("transformer", "Plain Transformer = attention GNN on the complete graph (Vaswani et al. 2017)")
class Transformer(GraphModel):
    Config = TransformerConfig

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__(cfg)
        self.encoder = NodeEncoder(cfg.in_channels, cfg.hidden, cfg.lap_pe, cfg.rwse, cfg.pe_dim, cfg.pe_combine)
        self.layers = nn.ModuleList(
            GraphTransformerLayer(cfg.hidden, cfg.heads, dropout=cfg.dropout, attn_dropout=cfg.attn_dropout,
                                  norm=cfg.norm, norm_first=cfg.norm_first)
            for _ in range(cfg.layers)
        )

    def embed(self, data) -> Tensor:
        h = self.encoder(data)
        batch = getattr(data, "batch", None)
        for layer in self.layers:
            h = layer(h, batch, graph=self.cfg.attention_graph, edge_index=data.edge_index)
        return h
