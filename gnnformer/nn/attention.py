"""Multi-head scaled dot-product attention as a message-passing aggregator.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017. A Transformer's self-attention is the
special case of this module where the neighbourhood of every node is the complete graph.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax, to_dense_batch

from .dense_attention import grouped_attention, key_bias
from .dropout import fast_dropout

GRAPHS = ("complete", "edges")
#: Most size groups a random batch is padded in by default: fewer groups pad more cells, more groups
#: pay more per-group work; 6 was the fastest of 3, 4, 5, 6, 8, 10 and 12 on the NCI1 training epoch of
#: ``bench_graph_epoch`` (at one and at two threads).
SIZE_GROUPS = 6
#: A multiplicative attention factor: a dense tensor, or a function ``(graph ids, n)`` -> the dense
#: factor of those graphs padded to ``n`` nodes (see :class:`GraphMultiheadAttention`).
AttnScale = Union[Tensor, Callable[[Tensor, int], Tensor]]


class GraphMultiheadAttention(nn.Module):
    r"""Multi-head attention whose neighbourhood :math:`\mathcal{N}(i)` is given by a graph.

    For every head :math:`h` with :math:`d = C / H` channels,

    .. math::
        \alpha^h_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}
            \left( \frac{(W^h_Q x_i)^\top (W^h_K x_j)}{\sqrt{d}} + b^h_{ij} \right),
        \qquad
        x'_i = W_O \Big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i)} \alpha^h_{ij} W^h_V x_j .

    Two neighbourhoods are supported:

    * ``graph='complete'``: :math:`\mathcal{N}(i)` is every node of the graph that contains
      :math:`i` (given by ``batch``), i.e. the Transformer. It runs densely: nodes are packed with
      :func:`~torch_geometric.utils.to_dense_batch` into ``[B, Nmax]`` and a key-padding mask keeps
      queries from attending to padding or to other graphs. Dense positions follow
      :func:`to_dense_batch`: the ``k``-th node of graph ``b`` (in node order) sits at ``[b, k]``,
      which is also the layout of ``attn_bias``/``attn_mask`` and of the returned weights.
      ``attn_bias`` (``[B, Nmax, Nmax]`` or ``[B, H, Nmax, Nmax]``) is the additive :math:`b_{ij}`
      (e.g. shortest-path-distance biases); ``attn_mask`` (bool, same shapes) marks pairs that may
      **not** attend (``True`` = blocked, PyTorch's convention), which restricts the complete graph
      to a supplied subgraph. ``attn_scale`` (float, same shapes) is a multiplicative
      :math:`m_{ij}` on the scaled scores, applied before the bias and the masks:
      :math:`\alpha^h_{ij} = \operatorname{softmax}_j\big((q_i^\top k_j / \sqrt{d})\, m^h_{ij} + b^h_{ij}\big)`
      (e.g. Gradformer's decay, :class:`~gnnformer.nn.ShortestPathDecay`); it must be finite. It
      cannot go through PyTorch's fused kernel; without a bias or mask it runs through
      :func:`~gnnformer.nn.dense_attention.grouped_attention` (as does dropout in training on CPU).
      ``attn_scale`` may also be a function ``(graphs, n) -> [len(graphs), (H,) n, n]`` that
      builds the factor for some of the batch's graphs padded to ``n`` nodes: then no tensor the
      size of the whole padded batch is made (see size groups below), which matters when the
      factor itself is learnt and costly to build and to differentiate.
      Padding every graph to the batch's largest wastes most of the work when sizes spread (a
      random NCI1 batch of 128 graphs has about 7x the cells its graphs need), so unless the
      weights are asked for, the graphs are split by size into at most ``size_groups`` groups
      (cut points chosen to minimise :math:`\sum_g B_g N_g^2`, see :func:`plan_size_groups`) and
      each group is padded to its own largest graph. The result is the same as one dense
      batch; the batch itself stays as random as the sampler made it.
    * ``graph='edges'``: :math:`\mathcal{N}(i) = \{j : (j, i) \in E\}` from ``edge_index``; sparse,
      :math:`O(E)` memory. ``edge_bias`` (``[E, H]``) is the additive :math:`b_{ij}`;
      ``edge_scale`` (``[E]`` or ``[E, H]``) multiplies :math:`\alpha^h_{ij}` after the softmax, so
      the message :math:`\alpha^h_{ij} W^h_V x_j` is scaled by a weight of the edge without the
      neighbours' weights being renormalised (CLGT's weighted edges, :class:`~gnnformer.nn.CLGTConv`).

    A node with an empty neighbourhood (no incoming edge, or every key blocked by ``attn_mask``)
    aggregates nothing: its output is ``out_proj.bias`` (zeros before the output projection).
    On the complete graph's edge list with self loops, ``'edges'`` equals ``'complete'``.

    The parameters are named and shaped like :class:`torch.nn.MultiheadAttention`'s
    (``in_proj_weight`` ``[3C, C]``, ``in_proj_bias`` ``[3C]``, ``out_proj``), so state dicts are
    interchangeable. Dropout acts on the attention weights, in training only.

    Args:
        channels: Node feature size :math:`C`.
        heads: Number of heads :math:`H`; must divide ``channels``.
        dropout: Dropout probability on the attention weights.
        bias: Whether the input and output projections have biases.
        size_groups: Most size groups a ``'complete'`` batch is padded in (1 = one dense batch).
        init: ``'xavier'`` (torch.nn.MultiheadAttention's: Xavier-uniform input projections, zero
            biases) or ``'shared'``: one default-initialised ``nn.Linear(C, C)`` copied into the query,
            key, value and output projections, as the released Gradformer code builds its attention
            (``copy.deepcopy`` of one Linear); queries then start equal to keys.
    """

    INITS = ("xavier", "shared")

    def __init__(self, channels: int, heads: int, dropout: float = 0.0, bias: bool = True,
                 size_groups: int = SIZE_GROUPS, init: str = "xavier") -> None:
        super().__init__()
        if channels % heads != 0:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        if init not in self.INITS:
            raise ValueError(f"init must be one of {', '.join(self.INITS)}, got {init!r}")
        self.init = init
        self.channels = channels
        self.heads = heads
        self.head_dim = channels // heads
        self.dropout = dropout
        self.size_groups = size_groups
        self.in_proj_weight = nn.Parameter(torch.empty(3 * channels, channels))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * channels))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(channels, channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init == "shared":
            self.out_proj.reset_parameters()  # torch's Linear default, then copied to Q, K and V
            with torch.no_grad():
                self.in_proj_weight.copy_(self.out_proj.weight.repeat(3, 1))
                if self.in_proj_bias is not None:
                    self.in_proj_bias.copy_(self.out_proj.bias.repeat(3))
            return
        # Same initialisation as torch.nn.MultiheadAttention.
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.out_proj.reset_parameters()
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

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
        edge_scale: Tensor | None = None,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        r"""
        Args:
            x: Node features ``[N, C]``.
            batch: Graph index of every node ``[N]``; ``None`` means one graph.
            graph: ``'complete'`` or ``'edges'`` (see the class docstring).
            edge_index: ``[2, E]``, messages flow ``edge_index[0] -> edge_index[1]``
                (``'edges'`` only).
            attn_bias: Additive bias ``[B, Nmax, Nmax]`` or ``[B, H, Nmax, Nmax]``
                (``'complete'`` only).
            attn_mask: Bool ``[B, Nmax, Nmax]`` or ``[B, H, Nmax, Nmax]``, ``True`` = may not
                attend (``'complete'`` only).
            attn_scale: Multiplicative factor on the scaled scores, ``[B, Nmax, Nmax]`` or
                ``[B, H, Nmax, Nmax]``, finite (``'complete'`` only); or a function of
                ``(graph ids, n)`` returning it for those graphs padded to ``n`` nodes.
            edge_bias: Additive bias ``[E, H]`` (``'edges'`` only).
            edge_scale: Factor ``[E]`` or ``[E, H]`` on the weights after the softmax (``'edges'`` only).
            return_weights: Also return the attention weights after dropout and ``edge_scale``:
                ``[B, H, Nmax, Nmax]`` for ``'complete'`` (row = query, column = key), ``[E, H]`` for
                ``'edges'``.

        Returns:
            ``[N, C]`` in the input node order (and the weights if asked).
        """
        if graph == "complete":
            if edge_bias is not None or edge_scale is not None:
                raise ValueError("edge_bias/edge_scale are for graph='edges'; use attn_bias with graph='complete'")
            out, weights = self._complete(x, batch, attn_bias, attn_mask, return_weights, attn_scale)
        elif graph == "edges":
            if attn_bias is not None or attn_mask is not None or attn_scale is not None:
                raise ValueError(
                    "attn_bias/attn_mask/attn_scale are for graph='complete'; use edge_bias with graph='edges'"
                )
            if edge_index is None:
                raise ValueError("graph='edges' needs edge_index")
            out, weights = self._edges(x, edge_index, edge_bias, edge_scale)
        else:
            raise ValueError(f"Unknown attention graph {graph!r}; expected one of {', '.join(GRAPHS)}")
        out = self.out_proj(out)
        return (out, weights) if return_weights else out

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # Project at node level (N rows) rather than on the padded batch (B * Nmax rows).
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        return q, k, v

    def _complete(
        self, x: Tensor, batch: Tensor | None, attn_bias: Tensor | None, attn_mask: Tensor | None,
        return_weights: bool = True, attn_scale: AttnScale | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        H, D = self.heads, self.head_dim
        perm = None
        if batch is not None and batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
            # to_dense_batch needs graphs in contiguous blocks; a stable sort keeps each graph's
            # node order, so dense positions are still "k-th node of graph b".
            batch, perm = torch.sort(batch, stable=True)
            x = x[perm]
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # at node level, not on the padding

        layout = None
        if not return_weights and self.size_groups > 1 and batch is not None and batch.numel():
            layout = size_group_layout(batch, self.size_groups)
        if layout is not None and len(layout.groups) > 1:
            out, weights = self._complete_grouped(qkv, layout, attn_bias, attn_mask, attn_scale), None
        else:
            qkv, mask = to_dense_batch(qkv, batch)  # [B, Nmax, 3C], [B, Nmax]
            if callable(attn_scale):
                attn_scale = attn_scale(torch.arange(mask.size(0), device=x.device), mask.size(1))
            out, weights = self._attend(qkv, mask, attn_bias, attn_mask, attn_scale, return_weights)
            out = out[mask]  # back to [N, C]
        if perm is not None:
            out = out[torch.argsort(perm)]
        return out, weights

    def _complete_grouped(
        self, qkv: Tensor, layout: "SizeGroupLayout", attn_bias: Tensor | None, attn_mask: Tensor | None,
        attn_scale: AttnScale | None,
    ) -> Tensor:
        """Dense attention per size group. A group's graphs keep their order and their nodes'
        order, so its dense layout is the top-left ``[n_g, n_g]`` block of the whole batch's, and
        the ``[B, ..., Nmax, Nmax]`` tensors are sliced rather than rebuilt. All groups' padded
        rows live in one buffer, filled and read back with one index operation each."""
        padded = qkv.new_zeros(layout.rows, qkv.size(1)).index_copy(0, layout.slot, qkv)

        def block(t: Tensor | None, ids: Tensor, n: int) -> Tensor | None:
            return None if t is None else t[..., :n, :n][ids]

        scales = [attn_scale(ids, n) if callable(attn_scale) else block(attn_scale, ids, n)
                  for ids, n in zip(layout.groups, layout.sizes)]
        if self._use_kernel(attn_bias, attn_mask, attn_scale, qkv.device):
            factors = [None if s is None else _per_head(s, ids.numel(), n, "attn_scale")
                       for s, ids, n in zip(scales, layout.groups, layout.sizes)]
            out = grouped_attention(padded, layout.masks, self.heads, factors, self.dropout, self.training,
                                    biases=layout.biases)
            return out.index_select(0, layout.slot)
        # One split rather than a slice per group: a slice's backward writes its gradient into a
        # zeroed copy of the whole buffer, a split's concatenates the pieces once.
        pieces = padded.split([ids.numel() * n for ids, n in zip(layout.groups, layout.sizes)])
        outs = []
        for ids, n, mask, piece, scale in zip(layout.groups, layout.sizes, layout.masks, pieces, scales):
            out, _ = self._attend(piece.view(ids.numel(), n, -1), mask, block(attn_bias, ids, n),
                                  block(attn_mask, ids, n), scale, False)
            outs.append(out.reshape(ids.numel() * n, -1))
        return torch.cat(outs).index_select(0, layout.slot)

    def _use_kernel(self, attn_bias: Tensor | None, attn_mask: Tensor | None, attn_scale: AttnScale | None,
                    device: torch.device) -> bool:
        """Whether :func:`~gnnformer.nn.dense_attention.grouped_attention` runs the attention: for a
        multiplicative factor (which PyTorch's fused kernel has no slot for: its float mask is added)
        or for dropout in training on CPU (the fused kernel draws its mask with bernoulli_, several
        times slower there than the rest of the attention); not with biases or masks."""
        if attn_bias is not None or attn_mask is not None:
            return False
        return attn_scale is not None or (self.training and self.dropout > 0 and device.type == "cpu")

    def _attend(
        self, qkv: Tensor, mask: Tensor, attn_bias: Tensor | None, attn_mask: Tensor | None,
        attn_scale: Tensor | None, return_weights: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Attention on a dense batch: ``qkv`` ``[B, Nmax, 3C]`` and its node ``mask`` ``[B, Nmax]``
        -> ``[B, Nmax, C]`` (padded rows arbitrary) and the weights when built."""
        H, D = self.heads, self.head_dim
        B, Nmax = mask.shape
        q, k, v = qkv.view(B, Nmax, 3, H, D).permute(2, 0, 3, 1, 4)  # each [B, H, Nmax, D]

        if not return_weights and self._use_kernel(attn_bias, attn_mask, attn_scale, qkv.device) \
                and bool(mask.any(dim=-1).all()):  # (the kernel needs a node in every graph)
            factor = None if attn_scale is None else _per_head(attn_scale, B, Nmax, "attn_scale")
            out = grouped_attention(qkv.reshape(B * Nmax, -1), [mask], H, [factor], self.dropout, self.training)
            return out.view(B, Nmax, H * D), None

        if attn_scale is not None:
            weights = self._scaled_weights(q, k, mask, attn_scale, attn_bias, attn_mask)
            return (weights @ v).transpose(1, 2).reshape(B, Nmax, H * D), weights

        fused_ok = not (self.training and self.dropout > 0 and qkv.device.type == "cpu")
        if not return_weights and attn_mask is None and fused_ok:
            out = self._complete_fused(q, k, v, mask, attn_bias)
            if not bool(torch.isnan(out).any()):  # NaN only for a row whose keys a -inf bias all blocked
                return out.transpose(1, 2).reshape(B, Nmax, H * D), None

        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)  # [B, H, Nmax, Nmax]
        if attn_bias is not None:
            scores = scores + _per_head(attn_bias, B, Nmax, "attn_bias")
        blocked = ~mask[:, None, None, :]  # keys that are padding (other graphs are never in the row)
        if attn_mask is not None:
            if attn_mask.dtype != torch.bool:
                raise TypeError("attn_mask must be bool (True = may not attend); use attn_bias for floats")
            blocked = blocked | _per_head(attn_mask, B, Nmax, "attn_mask")
        scores = scores.masked_fill(blocked, float("-inf"))

        weights = _safe_softmax(scores, mask, may_block_rows=attn_mask is not None or attn_bias is not None)
        weights = fast_dropout(weights, self.dropout, self.training)
        return (weights @ v).transpose(1, 2).reshape(B, Nmax, H * D), weights

    def _scaled_weights(
        self, q: Tensor, k: Tensor, mask: Tensor, attn_scale: Tensor, attn_bias: Tensor | None,
        attn_mask: Tensor | None,
    ) -> Tensor:
        r"""Attention weights :math:`\operatorname{softmax}((q k^\top / \sqrt{d}) \odot m + b)` with
        blocked keys at :math:`-\infty`, built on one ``[B, H, Nmax, Nmax]`` buffer.

        The buffer comes out of the matmul and is scaled, biased and masked in place, so the only
        other dense tensor is the softmax output. In-place is safe for autograd: the matmul's
        backward needs ``q`` and ``k`` only, and autograd itself keeps the pre-scale scores when
        ``attn_scale`` needs a gradient (Gradformer's learnable hop).
        """
        B, Nmax = mask.shape
        scale = _per_head(attn_scale, B, Nmax, "attn_scale")
        if not scale.is_floating_point():
            raise TypeError("attn_scale must be a float tensor (a multiplicative factor on the scores)")
        # 1/sqrt(d) goes on q ([B, H, Nmax, D]), not on the larger score matrix.
        scores = torch.matmul(q * (1.0 / math.sqrt(self.head_dim)), k.transpose(-1, -2))
        scores.mul_(scale.to(scores.dtype))
        if attn_bias is not None:
            scores.add_(_per_head(attn_bias, B, Nmax, "attn_bias").to(scores.dtype))
        blocked = ~mask[:, None, None, :]  # padding keys: never attended (other graphs are never in the row)
        if attn_mask is not None:
            if attn_mask.dtype != torch.bool:
                raise TypeError("attn_mask must be bool (True = may not attend); use attn_bias for floats")
            blocked = blocked | _per_head(attn_mask, B, Nmax, "attn_mask")
        scores.masked_fill_(blocked, float("-inf"))
        weights = _safe_softmax(scores, mask, may_block_rows=attn_mask is not None or attn_bias is not None)
        return fast_dropout(weights, self.dropout, self.training)

    def _complete_fused(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, attn_bias: Tensor | None) -> Tensor:
        """The same softmax attention through PyTorch's fused kernel (no [B,H,N,N] weights kept)."""
        B, Nmax = mask.shape
        if attn_bias is None:
            keep = mask[:, None, None, :]  # SDPA's bool mask: True = may attend
        else:
            bias = _per_head(attn_bias, B, Nmax, "attn_bias").to(q.dtype)
            keep = bias.masked_fill(~mask[:, None, None, :], float("-inf"))  # a float mask is added
        return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=self.dropout if self.training else 0.0)

    def _edges(self, x: Tensor, edge_index: Tensor, edge_bias: Tensor | None,
               edge_scale: Tensor | None = None) -> tuple[Tensor, Tensor]:
        N, H, D = x.size(0), self.heads, self.head_dim
        q, k, v = (t.view(N, H, D) for t in self._qkv(x))
        src, dst = edge_index[0], edge_index[1]
        scores = (q[dst] * k[src]).sum(dim=-1) / math.sqrt(D)  # [E, H]
        if edge_bias is not None:
            if edge_bias.dim() == 1:
                edge_bias = edge_bias.unsqueeze(-1)
            scores = scores + edge_bias
        weights = softmax(scores, dst, num_nodes=N)  # normalised over each target's incoming edges
        weights = fast_dropout(weights, self.dropout, self.training)
        if edge_scale is not None:
            weights = weights * (edge_scale.unsqueeze(-1) if edge_scale.dim() == 1 else edge_scale)
        # Scatter-sum: a target without incoming edges gets a row of zeros.
        out = scatter(v[src] * weights.unsqueeze(-1), dst, dim=0, dim_size=N, reduce="sum")
        return out.view(N, H * D), weights

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, heads={self.heads}, dropout={self.dropout})"


def _safe_softmax(scores: Tensor, mask: Tensor, may_block_rows: bool) -> Tensor:
    """Softmax over keys where a row with no admissible key (every key blocked by a mask or a -inf
    bias, or an empty graph) gets zero weight instead of NaN, like an isolated node in 'edges'."""
    if may_block_rows:
        empty = torch.isneginf(scores).all(dim=-1, keepdim=True)
    else:
        empty = ~mask.any(dim=-1)[:, None, None, None]
    if not bool(empty.any()):
        return torch.softmax(scores, dim=-1)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1)
    return weights.masked_fill(empty, 0.0)  # not in place: softmax's backward needs its output


def plan_size_groups(counts: Tensor, max_groups: int) -> list[Tensor]:
    r"""Split graphs (node ``counts`` ``[B]``) into at most ``max_groups`` groups, each padded to its
    own largest graph, minimising the padded attention cells :math:`\sum_g |g| \max_{i \in g} n_i^2`.

    Sorted by size, an optimal grouping cuts the sorted order into runs, found by dynamic
    programming over cut points (``O(max_groups * B^2)`` array work on the host: the arrays are
    tiny, so NumPy beats launching tensor kernels). Graphs without nodes are left out. Returns
    the graph ids of each group, ascending, on ``counts``' device.
    """
    nonempty = (counts > 0).nonzero().view(-1)
    if max_groups <= 1 or nonempty.numel() <= 1:
        return [nonempty]
    sizes = counts[nonempty].cpu().numpy()
    order = np.argsort(sizes, kind="stable")
    sizes = sizes[order].astype(np.float64)
    n = sizes.size
    cut = np.arange(n + 1)
    # cost[i, j]: sorted graphs i..j-1 in one group, padded to the largest one, sizes[j - 1].
    with np.errstate(invalid="ignore"):
        cost = (cut[None, :] - cut[:, None]) * np.concatenate([[0.0], sizes ** 2])[None, :]
    cost[cut[:, None] >= cut[None, :]] = np.inf
    best = cost[0].copy()  # best[j]: cheapest grouping of the first j graphs so far
    choices = []
    for _ in range(min(max_groups, n) - 1):
        total = best[:, None] + cost  # one more group, i..j-1
        arg = total.argmin(axis=0)
        total = total[arg, cut]
        choices.append(np.where(total < best, arg, cut))  # cut == j: no better with another group
        best = np.minimum(best, total)
    bounds, j = [n], n
    for choice in reversed(choices):
        if choice[j] != j:
            j = int(choice[j])
            bounds.append(j)
    bounds = sorted(set(bounds) | {0})
    ids = nonempty[torch.as_tensor(order, device=counts.device)]
    return [ids[a:b].sort().values for a, b in zip(bounds[:-1], bounds[1:])]


class SizeGroupLayout(NamedTuple):
    """Where each node of a sorted batch sits when its graphs are padded per size group."""

    groups: list  # graph ids of each group (ascending)
    sizes: list  # n_g: the nodes each group is padded to
    masks: list  # [B_g, n_g] bool, True = real node
    slot: Tensor  # [N]: each node's row in the groups' padded rows, laid end to end
    rows: int  # sum of B_g * n_g
    biases: list  # [B_g, 1, 1, n_g] float: -inf for padded keys, else 0 (what every layer's attention adds)


_LAYOUT_CACHE: dict = {}


def size_group_layout(batch: Tensor, max_groups: int) -> SizeGroupLayout:
    """The :class:`SizeGroupLayout` of a sorted ``batch`` (groups from :func:`plan_size_groups`).

    Every attention layer of a model sees the same batch, so the last layout is kept and reused:
    it depends on the graphs' sizes only, which form the key.
    """
    counts = torch.bincount(batch)
    key = (batch.device, max_groups, tuple(counts.tolist()))
    if key in _LAYOUT_CACHE:
        return _LAYOUT_CACHE[key]
    groups = plan_size_groups(counts, max_groups)
    device = batch.device
    starts = torch.cumsum(counts, 0) - counts  # first node of every graph
    base = torch.zeros(counts.numel(), dtype=torch.long, device=device)  # first padded row of every graph
    sizes, masks, offset = [], [], 0
    for ids in groups:
        n = int(counts[ids].max()) if ids.numel() else 0
        base[ids] = offset + torch.arange(ids.numel(), device=device) * n
        sizes.append(n)
        masks.append(torch.arange(n, device=device)[None, :] < counts[ids][:, None])
        offset += ids.numel() * n
    slot = base[batch] + torch.arange(batch.numel(), device=device) - starts[batch]
    layout = SizeGroupLayout(groups, sizes, masks, slot, offset, [key_bias(m) for m in masks])
    _LAYOUT_CACHE.clear()
    _LAYOUT_CACHE[key] = layout
    return layout


def _per_head(t: Tensor, B: int, Nmax: int, name: str) -> Tensor:
    """Broadcast a ``[B, Nmax, Nmax]`` tensor over heads; ``[B, H, Nmax, Nmax]`` passes through."""
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4 or t.size(0) != B or t.shape[-2:] != (Nmax, Nmax):
        raise ValueError(
            f"{name} must have shape [B, Nmax, Nmax] or [B, H, Nmax, Nmax] with B={B}, Nmax={Nmax}; "
            f"got {list(t.shape)}"
        )
    return t
