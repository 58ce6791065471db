"""GPS: a local MPNN and global attention side by side in one layer."""
from __future__ import annotations

from torch import Tensor, nn

from ..errors import ConfigError
from .attention import AttnScale, GraphMultiheadAttention
from .droppath import DropPath
from .local import LOCAL_CONVS, build_local_conv, updates_edge_attr, uses_edge_attr
from .transformer_layer import make_norm

ATTENTION_GRAPHS = ("complete", "edges", "none")


class GPSLayer(nn.Module):
    r"""One layer of the GPS graph transformer.

    Rampasek et al., "Recipe for a General, Powerful, Scalable Graph Transformer", NeurIPS 2022.
    A local message-passing branch and a global attention branch read the same input; their
    outputs are summed and passed through a per-node FFN:

    .. math::
        h_L &= \mathrm{Norm}_L(x + \mathrm{Dropout}(\mathrm{MPNN}(x, E))) \\
        h_A &= \mathrm{Norm}_A(x + \mathrm{DropPath}(\mathrm{Dropout}(\mathrm{Attn}(x, G)))) \\
        h &= h_L + h_A \\
        x' &= \mathrm{Norm}_F(h + \mathrm{FFN}(h)), \quad
        \mathrm{FFN}(h) = \mathrm{Dropout}(W_2\,\mathrm{Dropout}(\mathrm{ReLU}(W_1 h)))

    All three norms are applied. :class:`~gnnformer.nn.droppath.DropPath` (stochastic depth per
    graph, ``drop_path``; identity by default and in eval) acts on the attention branch only, before
    its residual, as in Gradformer (Liu et al., IJCAI 2024); GPS itself has none.

    ``'gatedgcn'`` also updates the edge features: it is built without its own residual, so the
    node update follows the formula above, and the edges get the same treatment,
    :math:`e' = e + \mathrm{Dropout}(\mathrm{ReLU}(\mathrm{BN}(\hat e)))` (GraphGPS's GatedGCN
    branch). ``forward(..., return_edge_attr=True)`` returns them for the next layer.

    With ``local='none'`` the layer is a post-norm
    :class:`~gnnformer.nn.GraphTransformerLayer` (``h = h_A``); with ``attention_graph='none'`` it
    is a pure MPNN layer with a residual FFN (``h = h_L``).

    Args:
        channels: Node feature size.
        heads: Attention heads.
        local: Local MPNN, one of ``'gin'``, ``'gine'``, ``'gcn'``, ``'gat'``, ``'gatedgcn'``, ``'none'``
            (see :func:`~gnnformer.nn.build_local_conv`).
        attention_graph: ``'complete'`` (every node attends to its whole graph), ``'edges'``
            (attention over ``edge_index`` only) or ``'none'``.
        dropout: Dropout after each branch and in the FFN (GPS default: 0).
        attn_dropout: Dropout on the attention weights (GPS default: 0.5).
        norm: ``'batch'`` (GPS default), ``'layer'`` or ``'none'``.
        ffn_ratio: FFN hidden size = ``ffn_ratio * channels``.
        edge_dim: Edge feature size for ``'gine'``/``'gat'``/``'gatedgcn'`` (``'gatedgcn'`` needs
            ``edge_dim == channels`` for its edge residual).
        drop_path: Probability of dropping the attention branch for a whole graph (training only).
        attn_init: Initialisation of the attention's projections, ``'xavier'`` or ``'shared'`` (see
            :class:`~gnnformer.nn.GraphMultiheadAttention`).
    """

    def __init__(
        self,
        channels: int,
        heads: int = 4,
        local: str = "gin",
        attention_graph: str = "complete",
        dropout: float = 0.0,
        attn_dropout: float = 0.5,
        norm: str = "batch",
        ffn_ratio: int = 2,
        edge_dim: int | None = None,
        drop_path: float = 0.0,
        attn_init: str = "xavier",
    ) -> None:
        super().__init__()
        local, attention_graph = local.lower(), attention_graph.lower()
        if local not in LOCAL_CONVS:
            raise ConfigError(f"Unknown local conv {local!r}. Known local convs: {', '.join(LOCAL_CONVS)}.")
        if attention_graph not in ATTENTION_GRAPHS:
            raise ConfigError(
                f"Unknown attention graph {attention_graph!r}. Known: {', '.join(ATTENTION_GRAPHS)}."
            )
        if local == "none" and attention_graph == "none":
            raise ConfigError("GPSLayer needs at least one branch: local and attention_graph are both 'none'")
        self.channels, self.heads = channels, heads
        self.local, self.attention_graph = local, attention_graph
        self.local_edge_attr = uses_edge_attr(local, edge_dim)
        local_updates_edges = updates_edge_attr(local) and edge_dim is not None
        if local_updates_edges and edge_dim != channels:
            raise ConfigError(
                f"local conv {local!r} updates edge features with a residual: edge_dim ({edge_dim}) must equal "
                f"channels ({channels}); encode the edge features to {channels} first."
            )

        # 'gatedgcn' leaves the residual to this layer, so every conv fits Norm(x + Dropout(MPNN(x))).
        self.conv = build_local_conv(local, channels, edge_dim, residual=False)
        self.attn = (None if attention_graph == "none"
                     else GraphMultiheadAttention(channels, heads, dropout=attn_dropout, init=attn_init))
        self.norm_local = make_norm(norm, channels) if self.conv is not None else None
        self.norm_attn = make_norm(norm, channels) if self.attn is not None else None
        self.norm_ffn = make_norm(norm, channels)
        self.dropout_local = nn.Dropout(dropout)
        self.dropout_attn = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path)
        self.ffn = nn.Sequential(
            nn.Linear(channels, ffn_ratio * channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_ratio * channels, channels),
            nn.Dropout(dropout),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Direct children only: recursing would re-initialise e.g. the attention's out_proj
        # with nn.Linear's default instead of the attention's own scheme.
        for module in [self.conv, self.attn, self.norm_local, self.norm_attn, self.norm_ffn, *self.ffn]:
            if module is not None and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None = None,
        *,
        edge_attr: Tensor | None = None,
        attn_bias: Tensor | None = None,
        attn_mask: Tensor | None = None,
        attn_scale: AttnScale | None = None,
        return_edge_attr: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """``x`` ``[N, C]``, ``edge_index`` ``[2, E]``, ``batch`` ``[N]`` -> ``[N, C]``.

        ``edge_attr`` ``[E, edge_dim]`` feeds ``'gine'``/``'gat'``/``'gatedgcn'`` (ignored by the other
        convs); ``attn_bias``/``attn_mask``/``attn_scale`` are the dense ``[B(, H), Nmax, Nmax]``
        tensors of :class:`GraphMultiheadAttention` (``attention_graph='complete'`` only). With
        ``return_edge_attr`` the result is ``(x', edge_attr')``: the updated edge features for
        ``'gatedgcn'``, the input ``edge_attr`` unchanged for every other conv.
        """
        h = 0
        if self.conv is not None:
            if self.local_edge_attr:
                if edge_attr is None and self.local in ("gine", "gatedgcn"):
                    raise ValueError(f"local conv {self.local!r} was built with edge_dim: it needs edge_attr")
                h_local = self.conv(x, edge_index, edge_attr=edge_attr)
            else:
                h_local = self.conv(x, edge_index)
            if isinstance(h_local, tuple):  # convs that update the edges too: (x, edge_attr)
                h_local, e_local = h_local
                if e_local is not None:
                    edge_attr = edge_attr + self.dropout_local(e_local)
            h = h + self.norm_local(x + self.dropout_local(h_local))
        if self.attn is not None:
            h_attn = self.attn(
                x, batch, graph=self.attention_graph, edge_index=edge_index, attn_bias=attn_bias,
                attn_mask=attn_mask, attn_scale=attn_scale,
            )
            h = h + self.norm_attn(x + self.drop_path(self.dropout_attn(h_attn), batch))
        out = self.norm_ffn(h + self.ffn(h))
        return (out, edge_attr) if return_edge_attr else out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, heads={self.heads}, local={self.local!r}, "
            f"attention_graph={self.attention_graph!r}, drop_path={self.drop_path.p})"
        )
