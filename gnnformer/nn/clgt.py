r"""CLGT's graph-transformer layer: attention over typed, weighted interaction edges with an edge state.

Peng et al., "CLGT: A Graph Transformer for Student Performance Prediction in Collaborative
Learning", AAAI 2023 (arXiv:2308.02038). CLGT extends the graph transformer with edge features of
Dwivedi & Bresson ("A Generalization of Transformer Networks to Graphs", AAAI-DLG 2021) by an
edge-feature pipeline and a weighted-edge pipeline over a heterogeneous interaction graph. The
paper gives no code; the equations below are this implementation's reading of it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter

from ..errors import ConfigError
from .attention import GraphMultiheadAttention
from .transformer_layer import make_norm


class CLGTConv(nn.Module):
    r"""One CLGT layer: node and edge states updated together, attention biased by the edges.

    For an edge :math:`j \to i` (messages flow ``edge_index[0] -> edge_index[1]``) with state
    :math:`e_{ij} \in \mathbb{R}^C`, weight :math:`w_{ij} \ge 0` and type :math:`\tau_{ij}`, and
    heads :math:`h = 1..H` of :math:`d = C / H` channels:

    .. math::
        \tilde e_{ij} &= e_{ij} + T_{\tau_{ij}}
            && \text{(a learned embedding per edge type)} \\
        \alpha^h_{ij} &= \operatorname{softmax}_{j \in \mathcal{N}(i)}\Big(
            \frac{(W^h_Q x_i)^\top (W^h_K x_j)}{\sqrt d} + (W_B \tilde e_{ij})_h\Big)
            && \text{(edge-feature pipeline: a bias per head)} \\
        a_i &= W_O \Big\Vert_{h} \sum_{j \in \mathcal{N}(i)} w_{ij}\, \alpha^h_{ij}
            \big(W^h_V x_j + W^h_U \tilde e_{ij}\big) + b_O
            && \text{(weighted-edge pipeline; the edge in the message)} \\
        x'_i &= \mathrm{Norm}(x_i + a_i), \qquad
        x''_i = \mathrm{Norm}(x'_i + \mathrm{FFN}(x'_i)) \\
        e'_{ij} &= \mathrm{Norm}_e\big(\tilde e_{ij} + \mathrm{ReLU}(W_E [x_i \Vert x_j \Vert \tilde e_{ij}])\big)
            && \text{(the edge state passed to the next layer)}

    (dropout after :math:`a_i`, inside and after the FFN and on the edge update; the FFN is
    :math:`W_2\,\mathrm{ReLU}(W_1 x)` with :math:`2C` hidden channels.) The attention is
    :class:`~gnnformer.nn.GraphMultiheadAttention` on ``graph='edges'`` with ``edge_bias`` and
    ``edge_scale``. The bias alone cannot tell a member with one interaction what kind it was (a
    softmax over one edge is 1 whatever its logit), so the edge state also enters the message,
    :math:`W_U \tilde e_{ij}`, as in the value of Shi et al.'s TransformerConv (IJCAI 2021).

    Edge weights scale the messages *after* the softmax: a weight of 1 on every edge is the plain
    attention; a weight of 0 drops that neighbour's message without handing its share of the
    attention to the others, so a node whose incoming weights are all 0 receives nothing (only its
    residual); doubling every weight doubles :math:`a_i - b_O`. Weights are used as given: the model
    (:class:`~gnnformer.models.clgt.CLGT`) rescales them to at most 1 per graph.

    Ablations: ``use_edge_pipeline=False`` drops the edge state, the type embedding, the bias and
    :math:`W_U` (plain dot-product attention; the returned edge state is ``None``);
    ``use_weight_pipeline=False`` ignores ``edge_weight`` (every :math:`w_{ij} = 1`).

    Args:
        channels: Node and edge state size :math:`C`.
        heads: Attention heads :math:`H`; must divide ``channels``.
        num_edge_types: Edge types (1 = homogeneous: no type embedding).
        dropout: Dropout on the updates and inside the FFN.
        attn_dropout: Dropout on the attention weights.
        norm: ``'layer'``, ``'batch'`` or ``'none'`` (for nodes and edges).
        use_edge_pipeline: Edge state, types and attention bias (see above).
        use_weight_pipeline: Scale the messages by ``edge_weight``.
    """

    def __init__(
        self, channels: int, heads: int = 4, num_edge_types: int = 1, dropout: float = 0.0,
        attn_dropout: float = 0.0, norm: str = "layer", use_edge_pipeline: bool = True,
        use_weight_pipeline: bool = True,
    ) -> None:
        super().__init__()
        if channels % heads:
            raise ConfigError(f"CLGT: channels ({channels}) must be divisible by heads ({heads}).")
        if num_edge_types < 1:
            raise ConfigError(f"CLGT: num_edge_types must be at least 1, got {num_edge_types}.")
        self.channels, self.heads, self.num_edge_types = channels, heads, num_edge_types
        self.dropout = dropout
        self.use_edge_pipeline, self.use_weight_pipeline = use_edge_pipeline, use_weight_pipeline
        self.attn = GraphMultiheadAttention(channels, heads, dropout=attn_dropout)
        self.ffn1, self.ffn2 = nn.Linear(channels, 2 * channels), nn.Linear(2 * channels, channels)
        self.norm1, self.norm2 = make_norm(norm, channels), make_norm(norm, channels)
        if use_edge_pipeline:
            self.type_emb = nn.Embedding(num_edge_types, channels) if num_edge_types > 1 else None
            self.bias = nn.Linear(channels, heads)  # W_B
            self.edge_value = nn.Linear(channels, channels, bias=False)  # W_U
            self.edge_lin = nn.Linear(3 * channels, channels)  # W_E
            self.norm_e = make_norm(norm, channels)
        else:
            self.type_emb = self.bias = self.edge_value = self.edge_lin = self.norm_e = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.attn, self.ffn1, self.ffn2, self.norm1, self.norm2, self.type_emb, self.bias,
                       self.edge_value, self.edge_lin, self.norm_e):
            if module is not None and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None, edge_weight: Tensor | None = None,
        edge_type: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``x`` ``[N, C]``, ``edge_index`` ``[2, E]``, ``edge_attr`` ``[E, C]`` (the edge state;
        ``None`` = zeros), ``edge_weight`` ``[E]`` (``None`` = ones), ``edge_type`` ``[E]`` long
        (``None`` = type 0) -> (``[N, C]``, the new edge state ``[E, C]`` or ``None`` without the
        edge pipeline)."""
        src, dst = edge_index[0], edge_index[1]
        scale = edge_weight.to(x.dtype) if self.use_weight_pipeline and edge_weight is not None else None
        bias = e = None
        if self.use_edge_pipeline:
            e = edge_attr if edge_attr is not None else x.new_zeros(edge_index.size(1), self.channels)
            if self.type_emb is not None:
                e = e + self.type_emb(self._types(edge_type, edge_index.size(1), x.device))
            bias = self.bias(e)
        if e is None:
            a = self.attn(x, graph="edges", edge_index=edge_index, edge_scale=scale)
        else:
            a, alpha = self.attn(x, graph="edges", edge_index=edge_index, edge_bias=bias, edge_scale=scale,
                                 return_weights=True)  # alpha: [E, H], dropout and weights applied
            msg = alpha.unsqueeze(-1) * self.edge_value(e).view(-1, self.heads, self.channels // self.heads)
            a = a + F.linear(scatter(msg, dst, dim=0, dim_size=x.size(0)).flatten(1), self.attn.out_proj.weight)
        h = self.norm1(x + F.dropout(a, self.dropout, self.training))
        ffn = self.ffn2(F.dropout(F.relu(self.ffn1(h)), self.dropout, self.training))
        h = self.norm2(h + F.dropout(ffn, self.dropout, self.training))
        if e is None:
            return h, None
        update = F.relu(self.edge_lin(torch.cat([x[dst], x[src], e], dim=-1)))
        return h, self.norm_e(e + F.dropout(update, self.dropout, self.training))

    def _types(self, edge_type: Tensor | None, num_edges: int, device: torch.device) -> Tensor:
        # Range checks belong to the model (once per batch, not once per layer): see models.base.edge_types.
        if edge_type is None:
            return torch.zeros(num_edges, dtype=torch.long, device=device)
        return edge_type.long()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, heads={self.heads}, num_edge_types={self.num_edge_types}, "
                f"edge_pipeline={self.use_edge_pipeline}, weight_pipeline={self.use_weight_pipeline})")
