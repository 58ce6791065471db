r"""DIFFormer's diffusion attention and the GCN propagation it is combined with, in plain PyTorch.

Wu et al., "DIFFormer: Scalable (Graph) Transformers Induced by Energy Constrained Diffusion",
ICLR 2023. One layer of DIFFormer is one explicit step of a diffusion process over all pairs of
nodes of a graph, whose diffusivity :math:`f(\tilde q_i, \tilde k_j)` is the closed-form minimiser
of a regularised energy; the two kernels give DIFFormer-s (linear, :math:`O(N)`) and DIFFormer-a
(quadratic, :math:`O(N^2)`).

* :class:`DIFFormerConv`: the all-pair diffusion step (attention) within each graph of a batch.
* :func:`gcn_propagate`: :math:`\hat A x` with :math:`\hat A = \hat D^{-1/2}(A + I)\hat D^{-1/2}`,
  on a cached sparse CSR matrix (never a dense :math:`N \times N` one).

On one graph, DIFFormer-s (node-normalised q/k) takes a blocked kernel with its backward written
out, and the adjacency is built by counting sorts on the CPU: the same values, faster and leaner
(:mod:`gnnformer.nn.difformer_kernels`, measured in BENCHMARKS.md).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_batch, to_torch_csr_tensor

from ..errors import ConfigError
from .difformer_kernels import blocked_simple_step, scipy_adjacency

KERNELS = ("simple", "sigmoid")
QK_NORMS = {"simple": ("node", "graph"), "sigmoid": ("none", "node")}

#: Elements (heads x channels x channels) per node chunk when batched DIFFormer-s forms the per-node
#: outer products k_j v_j^T: bounds the transient memory to a few MB whatever the batch size.
_CHUNK_ELEMENTS = 1 << 21


class DIFFormerConv(nn.Module):
    r"""One step of DIFFormer's all-pair diffusion within each graph of a batch.

    With :math:`H` heads, each with its own projections of width :math:`C` (as in the paper, a head
    is not a slice of the channels), :math:`q^h_i = W^h_Q x_i`, :math:`k^h_j = W^h_K x_j`,
    :math:`v^h_j = W^h_V x_j` (:math:`v^h_j = x_j` with ``use_weight=False``), and
    :math:`\mathcal G(i)` the nodes of the graph that holds :math:`i` (given by ``batch``):

    .. math::
        x'_i = \frac{1}{H} \sum_{h=1}^{H} \sum_{j \in \mathcal G(i)}
               \frac{f(q^h_i, k^h_j)}{\sum_{l \in \mathcal G(i)} f(q^h_i, k^h_l)}\, v^h_j .

    * ``kernel='simple'`` (DIFFormer-s): :math:`f = 1 + \tilde q_i^\top \tilde k_j`. Because
      :math:`f` is linear in :math:`\tilde k_j`, the sums factor through per-graph sums:

      .. math::
          x'_i = \frac{\sum_j v_j + \tilde q_i^\top \sum_j \tilde k_j v_j^\top}
                      {n_g + \tilde q_i^\top \sum_j \tilde k_j},

      computed with ``index_add`` over ``batch`` in :math:`O(N C^2)` time and :math:`O(N C)`
      memory; no :math:`N \times N` matrix is ever formed.
    * ``kernel='sigmoid'`` (DIFFormer-a): :math:`f = \sigma(\tilde q_i^\top \tilde k_j)`, row-normalised.
      It runs densely per graph (:func:`~torch_geometric.utils.to_dense_batch`, padded keys
      masked out): :math:`O(B\,N_{\max}^2)` time and memory.

    **Normalisation of queries and keys** (``qk_norm``), :math:`\tilde q, \tilde k`:

    * ``'node'`` (default for ``'simple'``): every :math:`q^h_i` and :math:`k^h_j` divided by its own
      L2 norm. This is the paper's definition (:math:`\tilde z_i = z_i / \lVert z_i \rVert`); it
      keeps :math:`f \in [0, 2]`, so the weights are a proper non-negative diffusion, and a
      node's output depends only on its own graph -- not on :math:`N`, nor on what else is in
      the batch.
    * ``'graph'`` (``'simple'`` only): :math:`Q` and :math:`K` of each graph divided by their
      Frobenius norm over the graph's nodes and all heads. The authors' code divides by the
      Frobenius norm of the whole batch's matrix, which shrinks :math:`\tilde q_i^\top \tilde k_j`
      like :math:`1/N` (attention close to a uniform mean) and makes a node's output depend on
      the batch it is in; per graph, it equals the authors' computation when the batch is one
      graph (node classification) and stays independent of the other graphs otherwise.
    * ``'none'`` (default for ``'sigmoid'``): the raw projections, as the authors' DIFFormer-a does
      (normalised vectors would confine :math:`\sigma` to :math:`[0.27, 0.73]`).

    The denominator is non-negative with either normalisation and is clamped at ``1e-12``, so a
    degenerate row (every :math:`\tilde k_j = -\tilde q_i`) gives zeros rather than NaN.

    Args:
        channels: Node feature size :math:`C` (in and out).
        heads: Number of heads :math:`H`, averaged.
        kernel: ``'simple'`` (DIFFormer-s) or ``'sigmoid'`` (DIFFormer-a).
        use_weight: Whether values are projected (:math:`W_V`) or the input itself.
        qk_norm: ``'node'``, ``'graph'`` or ``'none'`` (see above); ``None`` = the kernel's default.
    """

    #: Whether one graph under DIFFormer-s with node-normalised q/k runs through
    #: :func:`~gnnformer.nn.difformer_kernels.blocked_simple_step` (its attention term only);
    #: ``False`` forces the plain autograd path below (same values).
    blocked: bool = True

    def __init__(self, channels: int, heads: int = 1, kernel: str = "simple", use_weight: bool = True,
                 qk_norm: Optional[str] = None) -> None:
        super().__init__()
        if kernel not in KERNELS:
            raise ConfigError(f"Unknown DIFFormer kernel {kernel!r}; expected one of {', '.join(KERNELS)}.")
        qk_norm = qk_norm if qk_norm is not None else QK_NORMS[kernel][0]
        if qk_norm not in QK_NORMS[kernel]:
            raise ConfigError(f"qk_norm {qk_norm!r} does not fit kernel {kernel!r}; "
                              f"choose {' or '.join(repr(n) for n in QK_NORMS[kernel])}.")
        if int(channels) < 1 or int(heads) < 1:
            raise ConfigError(f"DIFFormerConv needs channels >= 1 and heads >= 1, got {channels} and {heads}.")
        self.channels, self.heads, self.kernel = int(channels), int(heads), kernel
        self.use_weight, self.qk_norm = bool(use_weight), qk_norm
        self.q = nn.Linear(channels, heads * channels)
        self.k = nn.Linear(channels, heads * channels)
        self.v = nn.Linear(channels, heads * channels) if use_weight else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.q, self.k, self.v):
            if lin is not None:
                lin.reset_parameters()

    def values(self, x: Tensor) -> Tensor:
        """The values :math:`v^h_j`, ``[N, H, C]``."""
        if self.v is None:
            return x.unsqueeze(1).expand(-1, self.heads, -1)
        return self.v(x).view(-1, self.heads, self.channels)

    def mean_values(self, x: Tensor) -> Tensor:
        r"""The head-averaged values :math:`\frac1H\sum_h v^h`, ``[N, C]`` (``x`` itself without ``W_V``)."""
        return x if self.v is None else self.values(x).mean(dim=1)

    def forward(self, x: Tensor, batch: Optional[Tensor] = None, *, return_values: bool = False):
        r"""
        Args:
            x: Node features ``[N, C]``.
            batch: Graph index of every node ``[N]`` (any order); ``None`` means one graph.
            return_values: Also return the head-averaged values :math:`\frac1H\sum_h v^h`
                ``[N, C]`` (what DIFFormer propagates over the input graph).

        Returns:
            ``[N, C]`` (and the averaged values if asked).
        """
        N, H, C = x.size(0), self.heads, self.channels
        if self.blocked and N > 0 and self.kernel == "simple" and self.qk_norm == "node" \
                and (batch is None or bool((batch == batch[0]).all())):
            out = blocked_simple_step(x, self, None, 1.0, 0.0, 0.0)
            return (out, self.mean_values(x)) if return_values else out
        q = self.q(x).view(N, H, C)
        k = self.k(x).view(N, H, C)
        v = self.values(x)
        if N == 0:
            out = x.new_zeros(0, C)
        else:
            if batch is not None and (batch.numel() == 0 or bool((batch == batch[0]).all())):
                batch = None  # one graph: the plain (unbatched) path
            num_graphs = int(batch.max()) + 1 if batch is not None else 1
            if self.qk_norm == "node":
                q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
            elif self.qk_norm == "graph":
                q, k = _graph_frobenius(q, batch, num_graphs), _graph_frobenius(k, batch, num_graphs)
            if self.kernel == "simple":
                out = _simple(q, k, v, batch, num_graphs)
            else:
                out = _sigmoid(q, k, v, batch)
            out = out.mean(dim=1)
        return (out, v.mean(dim=1)) if return_values else out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, heads={self.heads}, kernel={self.kernel!r}, "
                f"qk_norm={self.qk_norm!r})")


def _graph_frobenius(t: Tensor, batch: Optional[Tensor], num_graphs: int) -> Tensor:
    """``t`` [N, H, C] divided, graph by graph, by its Frobenius norm over the graph's nodes and heads."""
    sq = t.pow(2).sum(dim=(1, 2))  # [N]
    if batch is None:
        return t / sq.sum().sqrt().clamp_min(1e-12)
    per_graph = sq.new_zeros(num_graphs).index_add(0, batch, sq)
    return t / per_graph.sqrt().clamp_min(1e-12)[batch].view(-1, 1, 1)


def _simple(q: Tensor, k: Tensor, v: Tensor, batch: Optional[Tensor], num_graphs: int) -> Tensor:
    """DIFFormer-s through per-graph sums: [N, H, C] x3 -> [N, H, C], linear in N."""
    if batch is None:
        kv = torch.einsum("nhm,nhd->hmd", k, v)  # sum_j k_j v_j^T        [H, C, C]
        num = torch.einsum("nhm,hmd->nhd", q, kv) + v.sum(dim=0)
        den = torch.einsum("nhm,hm->nh", q, k.sum(dim=0)) + q.size(0)
    else:
        H, M, D = k.size(1), k.size(2), v.size(2)
        v_sum = v.new_zeros(num_graphs, H, D).index_add(0, batch, v)
        k_sum = k.new_zeros(num_graphs, H, M).index_add(0, batch, k)
        n_g = torch.bincount(batch, minlength=num_graphs).to(q.dtype)
        # sum_{j in g} k_j v_j^T, over node chunks so that no [N, H, C, C] tensor is ever held.
        chunk = max(1, _CHUNK_ELEMENTS // (H * M * D))
        kv = v.new_zeros(num_graphs, H, M, D)
        for s in range(0, k.size(0), chunk):
            kv = kv.index_add(0, batch[s:s + chunk], torch.einsum("nhm,nhd->nhmd", k[s:s + chunk], v[s:s + chunk]))
        num = torch.cat([torch.einsum("nhm,nhmd->nhd", q[s:s + chunk], kv.index_select(0, batch[s:s + chunk]))
                         for s in range(0, q.size(0), chunk)]) + v_sum[batch]
        den = (q * k_sum[batch]).sum(dim=-1) + n_g[batch].unsqueeze(-1)
    return num / den.clamp_min(1e-12).unsqueeze(-1)



def _sigmoid(q: Tensor, k: Tensor, v: Tensor, batch: Optional[Tensor]) -> Tensor:
    """DIFFormer-a, dense per graph: [N, H, C] x3 -> [N, H, C]."""
    N, H, C = q.shape
    if batch is None:  # one graph: no padding, no mask
        qd, kd, vd = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))  # [1, H, N, C]
        mask = None
    else:
        perm = None
        if bool((batch[1:] < batch[:-1]).any()):
            batch, perm = torch.sort(batch, stable=True)  # to_dense_batch needs contiguous graphs
            q, k, v = q[perm], k[perm], v[perm]
        qkv, mask = to_dense_batch(torch.cat([q, k, v], dim=-1).view(N, -1), batch)  # [B, Nmax, 3HC]
        B, Nmax = mask.shape
        qd, kd, vd = qkv.view(B, Nmax, H, 3 * C).permute(0, 2, 1, 3).split(C, dim=-1)  # [B, H, Nmax, C]
    scores = qd @ kd.transpose(-1, -2)  # [B, H, Nmax, Nmax]
    if mask is not None:  # padded keys: sigmoid(-inf) = 0, they carry no weight
        scores.masked_fill_(~mask[:, None, None, :], float("-inf"))
    weights = torch.sigmoid(scores)  # the only [Nmax, Nmax] tensor autograd keeps
    # Normalise after aggregating: divides [Nmax, C] rather than [Nmax, Nmax].
    out = (weights @ vd) / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)  # [B, H, Nmax, C]
    out = out.transpose(1, 2)  # [B, Nmax, H, C]
    if mask is None:
        return out[0]
    out = out[mask]  # back to [N, H, C]
    return out[torch.argsort(perm)] if perm is not None else out



# --- GCN propagation on the input graph -------------------------------------------------------

#: Whether the CPU builds the adjacency by counting sorts
#: (:func:`~gnnformer.nn.difformer_kernels.scipy_adjacency`) rather than PyG's sort (same matrix).
SCIPY_ADJACENCY = True


def normalized_adjacency(edge_index: Tensor, num_nodes: int, dtype: torch.dtype = torch.float32,
                         device: Optional[torch.device] = None, transpose: bool = True) -> tuple[Tensor, Optional[Tensor]]:
    r"""``(A_hat, A_hat^T)`` as sparse CSR ``[N, N]`` matrices: :math:`\hat A = \hat D^{-1/2}(A + I)\hat D^{-1/2}`,
    as PyG's :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm` (what ``GCNConv`` uses) gives it.

    Messages flow ``edge_index[0] -> edge_index[1]`` (row = target): existing self loops are
    replaced by one per node, :math:`\hat D` counts incoming edges (self loop included, so it is
    never 0), and a duplicated edge counts twice. ``A_hat^T`` is the same object as ``A_hat``
    when the edge set is symmetric, and ``None`` with ``transpose=False``.
    """
    device = device if device is not None else edge_index.device
    if device.type == "cpu" and SCIPY_ADJACENCY:
        return scipy_adjacency(edge_index, num_nodes, dtype, transpose)
    edge_index, weight = gcn_norm(edge_index.to(device=device, dtype=torch.long), None, num_nodes,
                                  add_self_loops=True, dtype=dtype)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on first use
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        a = to_torch_csr_tensor(edge_index.flip(0), weight, size=num_nodes)
        if not transpose:
            return a, None
        a_t = to_torch_csr_tensor(edge_index, weight, size=num_nodes)
    if torch.equal(a.crow_indices(), a_t.crow_indices()) and torch.equal(a.col_indices(), a_t.col_indices()) \
            and torch.equal(a.values(), a_t.values()):
        a_t = a
    return a, a_t


def gcn_propagate(x: Tensor, edge_index: Tensor, num_nodes: int,
                  cache: Optional[Dict[str, Any]] = None) -> Tensor:
    r""":math:`\hat A x` with :math:`\hat A = \hat D^{-1/2}(A + I)\hat D^{-1/2}` (see
    :func:`normalized_adjacency`), as one sparse CSR matmul: :math:`O(E\,C)` time, no dense
    :math:`N \times N` matrix. Gradients flow to ``x``.

    ``cache`` (a dict the caller keeps, e.g. on its module) holds the last adjacency built and
    is reused while the same ``edge_index`` tensor (same object, unmodified), ``num_nodes``,
    dtype and device come back -- every epoch of full-graph node classification builds it once.
    A new tensor (each batch of a graph loader) rebuilds it.
    """
    if x.size(0) != num_nodes:
        raise ValueError(f"x has {x.size(0)} rows but num_nodes is {num_nodes}")
    a, _ = cached_adjacency(edge_index, num_nodes, x.dtype, x.device, cache, transpose=False)
    if x.dim() == 2:  # the result itself, not a view of it: callers may add into it in place
        return a @ x
    return (a @ x.reshape(num_nodes, -1)).view(x.shape)


def cached_adjacency(edge_index: Tensor, num_nodes: int, dtype: torch.dtype, device: torch.device,
                     cache: Optional[Dict[str, Any]] = None, transpose: bool = True) -> tuple[Tensor, Optional[Tensor]]:
    """:func:`normalized_adjacency`, reused from ``cache`` (a dict the caller keeps) while the same
    ``edge_index`` tensor (same object, unmodified), ``num_nodes``, dtype and device come back."""
    key = (num_nodes, dtype, device, edge_index._version)
    if cache is not None and cache.get("edge_index") is edge_index and cache.get("key") == key \
            and (cache["adj"][1] is not None or not transpose):
        return cache["adj"]
    a, a_t = normalized_adjacency(edge_index, num_nodes, dtype=dtype, device=device, transpose=transpose)
    if cache is not None:
        cache.clear()
        cache.update(edge_index=edge_index, key=key, adj=(a, a_t))
    return a, a_t

