"""The Transformer encoder layer written as a GNN layer on node features."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .attention import AttnScale, GraphMultiheadAttention

NORMS = ("layer", "batch", "none")
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def make_norm(norm: str, channels: int, eps: float = 1e-5, bias: bool = True) -> nn.Module:
    """``'layer'`` (LayerNorm per node), ``'batch'`` (BatchNorm1d over all nodes of the batch) or
    ``'none'`` (identity)."""
    key = norm.lower()
    if key == "layer":
        return nn.LayerNorm(channels, eps=eps, bias=bias)
    if key == "batch":
        return nn.BatchNorm1d(channels, eps=eps)
    if key == "none":
        return nn.Identity()
    raise ConfigError(f"Unknown norm {norm!r}. Known norms: {', '.join(NORMS)}.")


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    try:
        return ACTIVATIONS[name.lower()]
    except KeyError:
        raise ConfigError(f"Unknown activation {name!r}. Known activations: {', '.join(ACTIVATIONS)}.") from None


class GraphTransformerLayer(nn.Module):
    r"""A Transformer encoder layer is a GNN layer whose aggregator is multi-head attention.

    Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (post-norm); Xiong et al., "On Layer
    Normalization in the Transformer Architecture", ICML 2020 (pre-norm). With
    :math:`\mathrm{Attn}(x, G)` = :class:`GraphMultiheadAttention` over the neighbourhoods of
    :math:`G` (by default the complete graph of each input graph) and
    :math:`\mathrm{FFN}(x) = W_2\,\mathrm{Dropout}(\sigma(W_1 x + b_1)) + b_2` applied per node:

    .. math::
        x' &= \mathrm{Norm}_1(x + \mathrm{Dropout}(\mathrm{Attn}(x, G))) \\
        x'' &= \mathrm{Norm}_2(x' + \mathrm{Dropout}(\mathrm{FFN}(x')))

    or, with ``norm_first=True``,
    :math:`x' = x + \mathrm{Dropout}(\mathrm{Attn}(\mathrm{Norm}_1(x), G))`,
    :math:`x'' = x' + \mathrm{Dropout}(\mathrm{FFN}(\mathrm{Norm}_2(x')))`.

    Submodules carry the names of :class:`torch.nn.TransformerEncoderLayer`'s (``self_attn``,
    ``linear1``, ``linear2``, ``norm1``, ``norm2``, ``dropout``, ``dropout1``, ``dropout2``), so with
    ``norm='layer'`` the two layers load each other's ``state_dict`` with ``strict=True``, and on
    ``graph='complete'`` they compute the same function: the Transformer is the special case of this
    GNN layer where every graph is complete.

    Args:
        channels: Node feature size.
        heads: Attention heads.
        ffn_channels: Hidden size of the FFN (default ``2 * channels``).
        dropout: Dropout after attention, inside and after the FFN.
        attn_dropout: Dropout on the attention weights.
        activation: ``'relu'`` or ``'gelu'``.
        norm: ``'layer'``, ``'batch'`` (BatchNorm over nodes, for graph-level tasks) or ``'none'``.
        norm_first: Pre-norm instead of post-norm.
        layer_norm_eps: Epsilon of the norms.
        bias: Biases in the linear layers and LayerNorms (as ``TransformerEncoderLayer(bias=)``).
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        ffn_channels: int | None = None,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        activation: str = "relu",
        norm: str = "layer",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        ffn_channels = 2 * channels if ffn_channels is None else ffn_channels
        self.channels, self.heads, self.ffn_channels = channels, heads, ffn_channels
        self.activation_name = activation.lower()
        self.activation = get_activation(activation)
        self.norm_name = norm.lower()
        self.norm_first = norm_first

        self.self_attn = GraphMultiheadAttention(channels, heads, dropout=attn_dropout, bias=bias)
        self.linear1 = nn.Linear(channels, ffn_channels, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn_channels, channels, bias=bias)
        self.norm1 = make_norm(norm, channels, layer_norm_eps, bias)
        self.norm2 = make_norm(norm, channels, layer_norm_eps, bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        self.self_attn.reset_parameters()
        for module in (self.linear1, self.linear2, self.norm1, self.norm2):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        for module in (self.norm1, self.norm2):
            if isinstance(module, nn.BatchNorm1d):
                module.reset_running_stats()

    def forward(
        self,
        x: Tensor,
        batch: Tensor | None = None,
        *,
        graph: str = "complete",
        edge_index: Tensor | None = None,
        attn_bias: Tensor | None = None,
        attn_mask: Tensor | None = None,
        attn_scale: AttnScale | None = None,
        edge_bias: Tensor | None = None,
    ) -> Tensor:
        """``x`` ``[N, C]`` -> ``[N, C]``; the graph arguments are those of
        :meth:`GraphMultiheadAttention.forward`."""
        kwargs = dict(
            graph=graph, edge_index=edge_index, attn_bias=attn_bias, attn_mask=attn_mask, attn_scale=attn_scale,
            edge_bias=edge_bias,
        )
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), batch, **kwargs))
            x = x + self.dropout2(self._ffn(self.norm2(x)))
        else:
            x = self.norm1(x + self.dropout1(self.self_attn(x, batch, **kwargs)))
            x = self.norm2(x + self.dropout2(self._ffn(x)))
        return x

    def _ffn(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> "GraphTransformerLayer":
        """A layer with ``layer``'s hyperparameters and a copy of its weights (same names)."""
        attn = layer.self_attn
        if not attn._qkv_same_embed_dim:
            raise ValueError("from_torch needs self_attn with kdim == vdim == embed_dim")
        act = layer.activation
        if act is F.relu or isinstance(act, nn.ReLU):
            activation = "relu"
        elif act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
            activation = "gelu"
        else:
            raise ValueError(f"Unsupported activation {act!r}; from_torch supports relu and gelu")
        new = cls(
            channels=attn.embed_dim,
            heads=attn.num_heads,
            ffn_channels=layer.linear1.out_features,
            dropout=layer.dropout.p,
            attn_dropout=attn.dropout,
            activation=activation,
            norm="layer",
            norm_first=layer.norm_first,
            layer_norm_eps=layer.norm1.eps,
            bias=layer.linear1.bias is not None,
        )
        # Move first so that load_state_dict copies without a round trip through float32.
        new = new.to(device=layer.linear1.weight.device, dtype=layer.linear1.weight.dtype)
        with torch.no_grad():
            new.load_state_dict(layer.state_dict(), strict=True)
        return new.train(layer.training)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, heads={self.heads}, ffn_channels={self.ffn_channels}, "
            f"norm={self.norm_name!r}, norm_first={self.norm_first})"
        )
