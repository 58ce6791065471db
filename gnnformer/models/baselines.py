"""Message-passing baselines on PyG's own convolutions: GCN, GIN, GAT and GraphSAGE; and a graph-free MLP.

Default (residual) stack, after a linear input encoder and before the MLP head:
h^{l+1} = h^l + Dropout(ReLU(BatchNorm(Conv(h^l, E))))  for l = 1..L.

``plain: true`` builds the stack of the original papers instead, as used for the citation graphs:
h^{l+1} = Dropout(ReLU(Conv(Dropout(h^l), E))), with h^0 = x, and the last convolution outputs the
classes directly (no encoder, norm, residual or MLP head). For GAT the hidden layers concatenate
``heads`` heads of ``hidden // heads`` channels and the output layer has one head; GraphSAGE uses
the mean aggregator, x'_i = W_1 x_i + W_2 mean_{j in N(i)} x_j. On Cora's
public split the plain GCN reaches the published ~81%; the residual stack, with BatchNorm over
140 labelled nodes, stays about six points lower.

Kipf & Welling, ICLR 2017 (GCN); Xu et al., ICLR 2019 (GIN); Velickovic et al., ICLR 2018 (GAT);
Hamilton, Ying & Leskovec, NeurIPS 2017 (GraphSAGE).
``rgcn`` (Schlichtkrull et al., "Modeling Relational Data with Graph Convolutional Networks", ESWC
2018) is the residual stack with PyG's RGCNConv, one weight matrix per edge type (``num_edge_types``):
x'_i = W_0 x_i + sum_r sum_{j in N_r(i)} W_r x_j / |N_r(i)|; edge weights are not used.
``mlp`` replaces Conv(h, E) by a per-node Linear(h), so it never looks at the edges.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, RGCNConv, SAGEConv

from ..errors import ConfigError
from ..nn.dropout import fast_dropout
from ..nn.local import build_local_conv
from ..registry import MODELS
from .base import GraphModel, ModelConfig, check_feature_norm, check_fixed_head, edge_types, normalise_features


@dataclass
class MPNNConfig(ModelConfig):
    plain: bool = False  # the papers' stack (see the module docstring); gcn, gat and sage
    heads: int = 8  # gat with plain: true; the residual stack uses build_local_conv's choice
    feature_norm: str = "none"  # 'row': divide each node's input features by their sum first

    def validate(self) -> None:
        super().validate()
        check_feature_norm(self.feature_norm)
        if int(self.heads) < 1:
            raise ConfigError(f"heads must be a positive integer, got {self.heads!r}.")
        if self.plain:
            check_fixed_head(self, (), "with plain: true the last convolution outputs the predictions")


class MPNNBaseline(GraphModel):
    Config = MPNNConfig
    conv_name = ""

    def __init__(self, cfg: MPNNConfig) -> None:
        super().__init__(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.plain:
            self._build_plain(cfg)
            return
        self.encoder = nn.Linear(cfg.in_channels, cfg.hidden)
        self.convs = nn.ModuleList(self._residual_conv(cfg.hidden) for _ in range(cfg.layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(cfg.hidden) for _ in range(cfg.layers))

    def _residual_conv(self, channels: int):
        return build_local_conv(self.conv_name, channels)

    def _build_plain(self, cfg: MPNNConfig) -> None:
        if self.conv_name not in ("gcn", "gat", "sage"):
            raise ConfigError(f"plain: true is available for gcn, gat and sage, not {self.conv_name!r}.")
        dims = [cfg.in_channels] + [cfg.hidden] * (cfg.layers - 1) + [cfg.out_channels]
        convs = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(dims) - 2
            if self.conv_name == "gcn":
                convs.append(GCNConv(d_in, d_out))
            elif self.conv_name == "sage":
                convs.append(SAGEConv(d_in, d_out, aggr="mean"))
            elif last:
                convs.append(GATConv(d_in, d_out, heads=1, dropout=cfg.dropout))
            else:
                if d_out % cfg.heads != 0:
                    raise ConfigError(f"gat with plain: true: hidden ({d_out}) must be divisible by heads ({cfg.heads}).")
                convs.append(GATConv(d_in, d_out // cfg.heads, heads=cfg.heads, dropout=cfg.dropout))
        self.convs = nn.ModuleList(convs)
        self.head = nn.Identity()  # the last convolution already outputs the classes

    def embed(self, data) -> Tensor:
        x = normalise_features(data.x, self.cfg.feature_norm)
        if self.cfg.plain:
            h = x
            for i, conv in enumerate(self.convs):
                h = conv(fast_dropout(h, self.cfg.dropout, self.training), data.edge_index)
                if i < len(self.convs) - 1:
                    h = h.relu()
            return h
        h = self.encoder(x)
        extra = self._edge_args(data)
        for conv, norm in zip(self.convs, self.norms):
            h = h + self.dropout(norm(conv(h, data.edge_index, *extra)).relu())
        return h

    def _edge_args(self, data) -> tuple:
        """What the residual stack's convolutions take after ``edge_index``."""
        return ()


@MODELS.register("gcn", "GCN baseline (Kipf & Welling 2017): PyG GCNConv layers with residuals")
class GCN(MPNNBaseline):
    conv_name = "gcn"


@MODELS.register("gin", "GIN baseline (Xu et al. 2019): PyG GINConv layers with residuals")
class GIN(MPNNBaseline):
    conv_name = "gin"


@MODELS.register("gat", "GAT baseline (Velickovic et al. 2018): PyG GATConv layers with residuals")
class GAT(MPNNBaseline):
    conv_name = "gat"


@MODELS.register("sage", "GraphSAGE baseline (Hamilton et al. 2017): PyG SAGEConv layers (mean aggregation) with residuals")
class GraphSAGE(MPNNBaseline):
    conv_name = "sage"

    def _residual_conv(self, channels: int):
        # Only this model uses SAGEConv, so it is built here rather than added to the hybrid layers' choices.
        return SAGEConv(channels, channels, aggr="mean")


@dataclass
class RGCNConfig(MPNNConfig):
    num_edge_types: int = 1  # relations; a graph without edge_type has one
    num_bases: int = 0  # basis decomposition of the per-type weights (0 = none, a full matrix per type)

    def validate(self) -> None:
        super().validate()
        if int(self.num_edge_types) < 1 or int(self.num_bases) < 0:
            raise ConfigError(f"rgcn needs num_edge_types >= 1 and num_bases >= 0, got "
                              f"{self.num_edge_types!r} and {self.num_bases!r}.")


@MODELS.register("rgcn", "R-GCN baseline (Schlichtkrull et al. 2018): PyG RGCNConv, one weight per edge type, with residuals")
class RGCN(MPNNBaseline):
    Config = RGCNConfig
    conv_name = "rgcn"  # plain: true is refused: the papers' stack is for gcn, gat and sage

    def _residual_conv(self, channels: int):
        return RGCNConv(channels, channels, self.cfg.num_edge_types, num_bases=self.cfg.num_bases or None)

    def _edge_args(self, data) -> tuple:
        return (edge_types(data, self.cfg.num_edge_types),)


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
