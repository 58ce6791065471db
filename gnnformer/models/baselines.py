"""Message-passing baselines on PyG's own convolutions: GCN, GIN and GAT; and a graph-free MLP.

h^{l+1} = h^l + Dropout(ReLU(BatchNorm(Conv(h^l, E))))  for l = 1..L, after a linear input encoder.
Kipf & Welling, ICLR 2017 (GCN); Xu et al., ICLR 2019 (GIN); Velickovic et al., ICLR 2018 (GAT).
``mlp`` replaces Conv(h, E) by a per-node Linear(h), so it never looks at the edges.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..nn.local import build_local_conv
from ..registry import MODELS
from .base import GraphModel, ModelConfig


class MPNNBaseline(GraphModel):
    conv_name = ""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.encoder = nn.Linear(cfg.in_channels, cfg.hidden)
        self.convs = nn.ModuleList(build_local_conv(self.conv_name, cfg.hidden) for _ in range(cfg.layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(cfg.hidden) for _ in range(cfg.layers))
        self.dropout = nn.Dropout(cfg.dropout)

    def embed(self, data) -> Tensor:
        h = self.encoder(data.x)
        for conv, norm in zip(self.convs, self.norms):
            h = h + self.dropout(norm(conv(h, data.edge_index)).relu())
        return h


@MODELS.register("gcn", "GCN baseline (Kipf & Welling 2017): PyG GCNConv layers with residuals")
class GCN(MPNNBaseline):
    conv_name = "gcn"


@MODELS.register("gin", "GIN baseline (Xu et al. 2019): PyG GINConv layers with residuals")
class GIN(MPNNBaseline):
    conv_name = "gin"


@MODELS.register("gat", "GAT baseline (Velickovic et al. 2018): PyG GATConv layers with residuals")
class GAT(MPNNBaseline):
    conv_name = "gat"


@MODELS.register("mlp", "MLP baseline: the same residual stack with a per-node Linear instead of a convolution (ignores edges)")
class MLP(GraphModel):
    """h^{l+1} = h^l + Dropout(ReLU(BatchNorm(Linear(h^l)))): every node on its own, edges unused.

    The graph-free control for the message-passing and attention models: same encoder, depth,
    normalisation, residuals and head, so a gap to it is what the edges (or attention) add.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.encoder = nn.Linear(cfg.in_channels, cfg.hidden)
        self.linears = nn.ModuleList(nn.Linear(cfg.hidden, cfg.hidden) for _ in range(cfg.layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(cfg.hidden) for _ in range(cfg.layers))
        self.dropout = nn.Dropout(cfg.dropout)

    def embed(self, data) -> Tensor:
        h = self.encoder(data.x)
        for lin, norm in zip(self.linears, self.norms):
            h = h + self.dropout(norm(lin(h)).relu())
        return h
