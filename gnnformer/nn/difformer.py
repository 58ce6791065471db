r"""DIFFormer's diffusion attention and the GCN propagation it is combined with.

Wu et al., "DIFFormer: Scalable (Graph) Transformers Induced by Energy Constrained Diffusion",
ICLR 2023. One layer of DIFFormer is one explicit step of a diffusion process over all pairs of
nodes of a graph, whose diffusivity :math:`f(\tilde q_i, \tilde k_j)` is the closed-form minimiser
of a regularised energy; the two kernels give DIFFormer-s (linear, :math:`O(N)`) and DIFFormer-a
(quadratic, :math:`O(N^2)`).

* :class:`DIFFormerConv`: the all-pair diffusion step (attention) within each graph of a batch.
* :func:`gcn_propagate`: :math:`\hat A x` with :math:`\hat A = \hat D^{-1/2}(A + I)\hat D^{-1/2}`,
  on a cached sparse CSR matrix (never a dense :math:`N \times N` one).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

from ..errors import ConfigError

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

    #: Whether one graph under DIFFormer-s with node-normalised q/k (and value weights) takes
    #: :class:`_FusedSimpleAttention`; ``False`` forces the generic autograd path (same values).
    fused: bool = True

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
        if self.fused and N > 0 and self.kernel == "simple" and self.qk_norm == "node" \
                and (batch is None or bool((batch == batch[0]).all())):
            # one graph, DIFFormer-s, node-normalised q/k: the fused path (same result, less memory)
            if self.v is None:
                out = _FusedSimpleAttention.apply(x, self.q.weight, self.q.bias, self.k.weight, self.k.bias,
                                                  None, None, H)
                return (out, x) if return_values else out
            out, values = _FusedSimpleAttention.apply(x, self.q.weight, self.q.bias, self.k.weight, self.k.bias,
                                                      self.v.weight, self.v.bias, H)
            return (out, values) if return_values else out
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


_NORM_EPS = 1e-12  # F.normalize's: z / max(|z|, eps)


class _FusedSimpleAttention(torch.autograd.Function):
    r"""DIFFormer-s on one graph with node-normalised queries and keys, the Q/K(/V) projections
    included, with the backward written out: ``(x, W_Q, b_Q, W_K, b_K, W_V, b_V, heads) ->
    (head-mean attention [N, C], head-mean values [N, C])``; without value weights
    (``W_V = b_V = None``: :math:`v = x`) only the attention is returned.

    The same function as the generic path (``F.normalize`` then :func:`_simple`), computed with
    fewer passes over ``[N, C]`` memory: one matmul for Q, K and V together, the normalisation
    and the division done in place, plain 2-D matmuls for one head, and a backward that keeps
    only ``x``, the (normalised) projections, the per-head outputs and the ``[N, H]``
    denominators, where autograd's generic graph keeps about three times as many ``[N, C]``
    tensors and runs several times as many element-wise kernels. With
    :math:`\tilde q = q/\lVert q\rVert`, :math:`S = \sum_j \tilde k_j v_j^\top`,
    :math:`s = \sum_j \tilde k_j`, :math:`o_i = (\tilde q_i S + \sum_j v_j) / d_i`,
    :math:`d_i = \tilde q_i \cdot s + N` and :math:`G` the gradient of :math:`o`:

    .. math::
        \bar G_i = G_i / d_i,\quad g_i = \bar G_i \cdot o_i,\quad
        \partial \tilde q_i = \bar G_i S^\top - g_i s,\quad
        \partial S = \sum_i \tilde q_i^\top \bar G_i,\quad \partial s = -\sum_i g_i \tilde q_i,

    :math:`\partial \tilde k_j = \partial S\, v_j + \partial s`,
    :math:`\partial v_j = \partial S^\top \tilde k_j + \sum_i \bar G_i`, and through the
    normalisation :math:`\partial q = (\partial \tilde q - \tilde q (\tilde q \cdot \partial \tilde q)) / \lVert q \rVert`.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, wq: Tensor, bq: Tensor, wk: Tensor, bk: Tensor, wv: Optional[Tensor],
                bv: Optional[Tensor], heads: int):  # type: ignore[override]
        N, C = x.shape
        H = int(heads)
        HC = H * C
        weighted = wv is not None
        ws, bs = [wq, wk] + ([wv] if weighted else []), [bq, bk] + ([bv] if weighted else [])
        proj = torch.addmm(torch.cat(bs), x, torch.cat(ws).t())  # [N, 2HC or 3HC]: one pass over x
        q, k = proj[:, :HC].view(N, H, C), proj[:, HC:2 * HC].view(N, H, C)
        v = proj[:, 2 * HC:].view(N, H, C) if weighted else x.unsqueeze(1).expand(N, H, C)
        rq = torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min_(_NORM_EPS)  # [N, H, 1]
        rk = torch.linalg.vector_norm(k, dim=-1, keepdim=True).clamp_min_(_NORM_EPS)
        q.div_(rq)  # in place, inside proj
        k.div_(rk)
        if H == 1:  # plain matmuls on the strided [N, C] views, no head dimension to permute
            q2, k2, v2 = q[:, 0], k[:, 0], v[:, 0]
            kv = torch.mm(k2.t(), v2).unsqueeze(0)  # sum_j k_j v_j^T   [1, C, C]
            ks = k2.sum(dim=0, keepdim=True)  # [1, C]
            out = torch.addmm(v2.sum(dim=0), q2, kv[0]).unsqueeze(1)  # numerators [N, 1, C]
            den = torch.mv(q2, ks[0]).add_(N).unsqueeze(1)  # [N, 1]
        else:
            kv = torch.einsum("nhm,nhd->hmd", k, v)  # [H, C, C]
            ks = k.sum(dim=0)  # [H, C]
            out = torch.einsum("nhm,hmd->nhd", q, kv).add_(v.sum(dim=0))  # [N, H, C]
            den = torch.einsum("nhm,hm->nh", q, ks).add_(N)  # [N, H]
        # den >= 0 since |q . k| <= 1; clamped (as the generic path does) only in degenerate cases
        live = den > 1e-12
        live = None if bool(live.all()) else live
        den.clamp_min_(1e-12)
        out.div_(den.unsqueeze(-1))
        mean = out.view(N, C) if H == 1 else out.mean(dim=1)
        ctx.save_for_backward(x, wq, wk, wv, proj, rq, rk, kv, ks, den, out)
        ctx.heads, ctx.live, ctx.weighted = H, live, weighted
        if not weighted:
            return mean
        values = v2.contiguous() if H == 1 else v.mean(dim=1)
        return mean, values

    @staticmethod
    def backward(ctx: Any, g_mean: Optional[Tensor], g_values: Optional[Tensor] = None):  # type: ignore[override]
        x, wq, wk, wv, proj, rq, rk, kv, ks, den, out = ctx.saved_tensors
        H, weighted = ctx.heads, ctx.weighted
        N, C = x.shape
        HC = H * C
        q, k = proj[:, :HC].view(N, H, C), proj[:, HC:2 * HC].view(N, H, C)
        v = proj[:, 2 * HC:].view(N, H, C) if weighted else x.unsqueeze(1).expand(N, H, C)
        if g_mean is None:
            g_mean = x.new_zeros(N, C)
        gd = g_mean.unsqueeze(1) / (den * H).unsqueeze(-1)  # dL/d(numerator) per head   [N, H, C]
        g = (gd * out).sum(dim=-1)  # -dL/d(denominator)   [N, H]
        if ctx.live is not None:
            g.mul_(ctx.live)  # a clamped denominator passes no gradient
        if H == 1:
            q2, k2, v2, gd2, g1 = q[:, 0], k[:, 0], v[:, 0], gd[:, 0], g[:, 0]
            dq = torch.mm(gd2, kv[0].t()).addr_(g1, ks[0], alpha=-1).unsqueeze(1)
            d_kv = torch.mm(q2.t(), gd2)
            dk = torch.addmm(torch.mv(q2.t(), g1).neg_(), v2, d_kv.t()).unsqueeze(1)
            dv = torch.addmm(gd2.sum(dim=0), k2, d_kv).unsqueeze(1)
        else:
            dq = torch.einsum("nhd,hmd->nhm", gd, kv).addcmul_(g.unsqueeze(-1), ks.unsqueeze(0), value=-1)
            d_kv = torch.einsum("nhm,nhd->hmd", q, gd)
            dk = torch.einsum("nhd,hmd->nhm", v, d_kv).sub_(torch.einsum("nhm,nh->hm", q, g))
            dv = torch.einsum("nhm,hmd->nhd", k, d_kv).add_(gd.sum(dim=0))
        if g_values is not None:
            dv.add_(g_values.unsqueeze(1), alpha=1.0 / H)
        for d, u, r in ((dq, q, rq), (dk, k, rk)):  # through z / max(|z|, eps), in place
            t = (u * d).sum(dim=-1, keepdim=True)
            t.masked_fill_(r <= _NORM_EPS, 0.0)  # a clamped norm is a constant
            d.addcmul_(u, t, value=-1).div_(r)
        dq, dk = dq.reshape(N, HC), dk.reshape(N, HC)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.mm(dq, wq).addmm_(dk, wk)
            if weighted:
                dx.addmm_(dv.reshape(N, HC), wv)
            else:
                dx.add_(dv.sum(dim=1))  # v = x for every head
        grads = [dx]
        for i, d in enumerate((dq, dk, dv.reshape(N, HC) if weighted else None)):
            grads.append(torch.mm(d.t(), x) if d is not None and ctx.needs_input_grad[1 + 2 * i] else None)
            grads.append(d.sum(dim=0) if d is not None and ctx.needs_input_grad[2 + 2 * i] else None)
        return (*grads, None)


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


# --- Dropout with a cheaper mask --------------------------------------------------------------

class _Dropout(torch.autograd.Function):
    """Inverted dropout (optionally after a ReLU) of a ``[N, C]`` tensor, block of rows by block
    of rows. The mask comes from 16-bit slices of 64-bit random integers (``torch.randint`` on
    torch's generator, so ``torch.manual_seed`` fixes it): four entries per draw, where
    ``F.dropout``'s Bernoulli sampler draws one per entry. It is kept as booleans (one byte per
    entry); the forward writes in place when the caller allows it. About a quarter of the time of
    ``F.dropout`` on CPU, and the ReLU comes free. The drop probability is ``p`` rounded to a
    multiple of 1/65536 and the scale exactly 1 / (1 - that), so the expectation is exact."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float, inplace: bool, relu: bool) -> Tensor:  # type: ignore[override]
        cut = int(round(p * 65536))
        scale = 65536.0 / (65536 - cut)
        x2 = x.view(-1, x.size(-1)) if x.dim() else x.view(1, 1)
        out = x if inplace else torch.empty_like(x)
        out2 = out.view(x2.shape)
        keep = torch.empty(x2.shape, dtype=torch.bool, device=x.device)
        rows = max(1, _BLOCK_ELEMENTS // max(1, x2.size(1)))
        for s in range(0, x2.size(0), rows):
            xb, kb, ob = x2[s:s + rows], keep[s:s + rows], out2[s:s + rows]
            n = xb.numel()
            bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
            torch.ge(bits.view(torch.int16)[:n].view(xb.shape), cut - 32768, out=kb)  # P(keep) = 1 - cut / 65536
            if relu:
                kb.logical_and_(xb > 0)
            torch.mul(xb, kb, out=ob).mul_(scale)  # (multiplying is faster than masked_fill_ here)
        ctx.save_for_backward(keep)
        ctx.scale, ctx.rows = scale, rows
        if inplace:
            ctx.mark_dirty(x)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        g2 = grad.reshape(keep.shape)
        dx = torch.empty(keep.shape, dtype=grad.dtype, device=grad.device)
        for s in range(0, keep.size(0), ctx.rows):
            torch.mul(g2[s:s + ctx.rows], keep[s:s + ctx.rows], out=dx[s:s + ctx.rows]).mul_(ctx.scale)
        return dx.view(grad.shape), None, None, None


def dropout(x: Tensor, p: float, training: bool, inplace: bool = False, relu: bool = False) -> Tensor:
    """``F.dropout(x, p, training, inplace)`` (after ``relu`` when asked) for DIFFormer's ``[N, C]``
    states, about three times as fast on CPU (see :class:`_Dropout`). ``inplace`` only where no
    backward needs ``x`` (a norm's or a linear layer's output; autograd raises otherwise)."""
    if not training or p <= 0.0:
        if relu:
            return torch.relu_(x) if inplace else torch.relu(x)
        return x
    if p >= 1.0:
        return x.mul_(0.0) if inplace else x * 0.0
    if not x.is_contiguous():
        x, inplace = x.contiguous(), True
    return _Dropout.apply(x, float(p), bool(inplace), bool(relu))


class _BlockedLayerNormDropout(torch.autograd.Function):
    """``dropout(relu?(layer_norm(x)))`` of a ``[N, C]`` tensor block of rows by block of rows, so that
    the norm's and the mask's passes run on cached blocks (torch's LayerNorm kernels are about
    twice as fast on a block that fits in cache as on a large tensor). Keeps ``x``, the per-row
    mean and 1/std and the boolean mask; the mask as in :class:`_Dropout` (``p = 0``: none)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float, p: float,
                relu: bool) -> Tensor:  # type: ignore[override]
        N, C = x.shape
        rows = max(1, _BLOCK_ELEMENTS // max(1, C))
        out = torch.empty_like(x)
        mean, rstd = x.new_empty(N, 1), x.new_empty(N, 1)
        masked = p > 0.0 or relu
        keep = torch.empty(N, C, dtype=torch.bool, device=x.device) if masked else None
        cut = int(round(p * 65536))
        scale = 65536.0 / (65536 - cut)
        for s in range(0, N, rows):
            ob = out[s:s + rows]
            y, m, r = torch.ops.aten.native_layer_norm(x[s:s + rows], [C], weight, bias, eps)
            mean[s:s + rows], rstd[s:s + rows] = m, r
            if not masked:
                ob.copy_(y)
                continue
            kb = keep[s:s + rows]
            if p > 0.0:
                n = y.numel()
                bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
                torch.ge(bits.view(torch.int16)[:n].view(y.shape), cut - 32768, out=kb)
                if relu:
                    kb.logical_and_(y > 0)
            else:
                torch.gt(y, 0, out=kb)
            torch.mul(y, kb, out=ob)
            if p > 0.0:
                ob.mul_(scale)
        ctx.save_for_backward(x, weight, bias, mean, rstd, keep)
        ctx.eps, ctx.scale, ctx.rows = eps, (scale if p > 0.0 else 1.0), rows
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        x, weight, bias, mean, rstd, keep = ctx.saved_tensors
        N, C = x.shape
        grad = grad.contiguous()
        dx = torch.empty_like(x)
        want_w = weight is not None and ctx.needs_input_grad[1]
        want_b = bias is not None and ctx.needs_input_grad[2]
        dw = torch.zeros_like(weight) if want_w else None
        db = torch.zeros_like(bias) if want_b else None
        for s in range(0, N, ctx.rows):
            gb = grad[s:s + ctx.rows]
            if keep is not None:
                gb = torch.mul(gb, keep[s:s + ctx.rows])
                if ctx.scale != 1.0:
                    gb.mul_(ctx.scale)
            d, dwb, dbb = torch.ops.aten.native_layer_norm_backward(
                gb, x[s:s + ctx.rows], [C], mean[s:s + ctx.rows], rstd[s:s + ctx.rows], weight, bias,
                [True, want_w, want_b])
            dx[s:s + ctx.rows] = d
            if want_w:
                dw.add_(dwb)
            if want_b:
                db.add_(dbb)
        return dx, dw, db, None, None, None


def norm_dropout(x: Tensor, norm: nn.Module, p: float, training: bool, relu: bool = False,
                 inplace: bool = False) -> Tensor:
    """``dropout(relu?(norm(x)), p, training)`` for ``[N, C]`` states: block by block of rows for
    a LayerNorm (:class:`_BlockedLayerNormDropout`), else ``norm`` then :func:`dropout` (in place
    on the norm's output with ``inplace``, which the caller allows when no backward needs it)."""
    if isinstance(norm, nn.LayerNorm) and x.dim() == 2 and len(norm.normalized_shape) == 1 \
            and x.size(-1) == norm.normalized_shape[0] and x.size(0) > 0:
        return _BlockedLayerNormDropout.apply(x.contiguous(), norm.weight, norm.bias, float(norm.eps),
                                              float(p) if training else 0.0, bool(relu))
    return dropout(norm(x), p, training, inplace=inplace, relu=relu)


# --- GCN propagation on the input graph -------------------------------------------------------

class _SparseMatmul(torch.autograd.Function):
    """``A @ x`` for a CSR ``A`` (constant), with the backward on a prepared CSR ``A^T``.

    torch's own backward for CSR @ dense transposes ``A`` on every call; with ``A^T`` built once
    (or ``A`` itself when symmetric) a forward + backward is about 2.5x faster on CPU.
    """

    @staticmethod
    def forward(ctx: Any, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        return None, None, ctx.a_t @ grad.contiguous()


def normalized_adjacency(edge_index: Tensor, num_nodes: int, dtype: torch.dtype = torch.float32,
                         device: Optional[torch.device] = None, transpose: bool = True) -> tuple[Tensor, Optional[Tensor]]:
    r"""``(A_hat, A_hat^T)`` as sparse CSR ``[N, N]`` matrices: :math:`\hat A = \hat D^{-1/2}(A + I)\hat D^{-1/2}`.

    Messages flow ``edge_index[0] -> edge_index[1]`` (row = target), as in PyG's ``GCNConv``:
    existing self loops are dropped and one per node added, :math:`\hat D` counts incoming
    edges (self loop included, so it is never 0), and a duplicated edge counts twice.
    ``A_hat^T`` is the same object as ``A_hat`` when the edge set is symmetric, and ``None``
    with ``transpose=False``. On the CPU the matrices are built by counting sorts (SciPy's
    COO -> CSR conversion, O(E + N)) and carry 32-bit indices when they fit.
    """
    device = device if device is not None else edge_index.device
    if device.type == "cpu":
        return _normalized_adjacency_cpu(edge_index, num_nodes, dtype, transpose)
    edge_index = edge_index.to(device=device, dtype=torch.long)
    src, dst = edge_index[0], edge_index[1]
    keep = src != dst
    loop = torch.arange(num_nodes, device=device)
    src, dst = torch.cat([src[keep], loop]), torch.cat([dst[keep], loop])
    deg = torch.bincount(dst, minlength=num_nodes).to(dtype)
    dinv = deg.pow(-0.5)
    weight = dinv[src] * dinv[dst]
    a = _csr(dst, src, weight, num_nodes)
    if not transpose:
        return a, None
    a_t = _csr(src, dst, weight, num_nodes)
    if torch.equal(a.crow_indices(), a_t.crow_indices()) and torch.equal(a.col_indices(), a_t.col_indices()) \
            and torch.equal(a.values(), a_t.values()):
        a_t = a
    return a, a_t


def _normalized_adjacency_cpu(edge_index: Tensor, n: int, dtype: torch.dtype,
                              transpose: bool) -> tuple[Tensor, Optional[Tensor]]:
    import numpy as np
    import scipy.sparse as sp

    ei = edge_index.detach().cpu().numpy()
    src, dst = ei[0], ei[1]
    keep = src != dst
    if not keep.all():
        src, dst = src[keep], dst[keep]
    loop = np.arange(n, dtype=src.dtype)
    row, col = np.concatenate([dst, loop]), np.concatenate([src, loop])
    del src, dst, keep
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    dinv = np.bincount(row, minlength=n).astype(np_dtype) ** np_dtype.type(-0.5)
    weight = dinv[row] * dinv[col]
    m = sp.csr_matrix((weight, (row, col)), shape=(n, n))  # counting sort by row; duplicates summed
    del row, col, weight
    m.sum_duplicates()  # sorted column indices, no repeats
    a = _torch_csr(m)
    if not transpose:
        return a, None
    mt = m.transpose().tocsr()  # counting sort by column
    mt.sort_indices()
    if np.array_equal(m.indptr, mt.indptr) and np.array_equal(m.indices, mt.indices) and np.array_equal(m.data, mt.data):
        return a, a
    return a, _torch_csr(mt)


def _torch_csr(m) -> Tensor:
    """A SciPy CSR matrix as a torch sparse CSR tensor (its arrays, 32-bit indices when they fit)."""
    index = torch.int32 if max(m.nnz, m.shape[0]) < 2**31 - 1 else torch.long
    crow = torch.from_numpy(m.indptr).to(index)
    col = torch.from_numpy(m.indices).to(index)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on first use
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(crow, col, torch.from_numpy(m.data), m.shape)


def _csr(row: Tensor, col: Tensor, value: Tensor, n: int) -> Tensor:
    """Sparse CSR ``[n, n]`` from COO entries, duplicates summed (one sort, no dense matrix)."""
    key, order = torch.sort(row * n + col)
    key, inverse = torch.unique_consecutive(key, return_inverse=True)
    value = value.new_zeros(key.numel()).index_add(0, inverse, value[order])
    row, col = key // n, key % n
    crow = torch.zeros(n + 1, dtype=torch.long, device=row.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=n), 0)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on first use
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(crow, col, value, (n, n))


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
    a, a_t = cached_adjacency(edge_index, num_nodes, x.dtype, x.device, cache)
    if x.dim() == 1:
        return _SparseMatmul.apply(a, a_t, x.unsqueeze(-1)).squeeze(-1)
    if x.dim() == 2:  # the result itself, not a view of it: callers may add into it in place
        return _SparseMatmul.apply(a, a_t, x)
    shape = x.shape
    out = _SparseMatmul.apply(a, a_t, x.reshape(num_nodes, -1))
    return out.view(shape)


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


# --- One whole DIFFormer-s step on one graph, in blocks of rows ----------------------------------

#: Elements (rows x heads x channels) of one block of rows in the blocked functions here: a block's
#: temporaries (8-16 MB) stay in the last-level cache and below glibc's mmap threshold (so their
#: memory is reused, not page-faulted in afresh), and blocks are few enough (32 per million rows
#: of 64 channels) that the per-operation and thread-synchronisation overheads stay small.
_BLOCK_ELEMENTS = 1 << 21


class _RowBlocks:
    """Consecutive blocks of rows ``[s, e)`` of an ``N``-row matrix, and the matching row blocks of
    CSR matrices (views of their column and value arrays)."""

    def __init__(self, n: int, rows: int) -> None:
        self.n = n
        self.bounds = [(s, min(n, s + rows)) for s in range(0, n, rows)]

    def __iter__(self):
        return iter(self.bounds)

    def csr(self, a: Tensor) -> list:
        crow, col, val = a.crow_indices(), a.col_indices(), a.values()
        ptr = crow[[s for s, _ in self.bounds] + [self.n]].tolist()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
            return [torch.sparse_csr_tensor(crow[s:e + 1] - ptr[i], col[ptr[i]:ptr[i + 1]], val[ptr[i]:ptr[i + 1]],
                                            (e - s, a.size(1)))
                    for i, (s, e) in enumerate(self.bounds)]


def _normalized(t: Tensor) -> tuple[Tensor, Tensor]:
    """``t / max(|t|, eps)`` over the last dim, in place, and the clamped norms ``[..., 1]``."""
    r = torch.linalg.vector_norm(t, dim=-1, keepdim=True).clamp_min_(_NORM_EPS)
    return t.div_(r), r


def _normalized_backward(d: Tensor, u: Tensor, r: Tensor) -> Tensor:
    """Gradient through ``u = t / max(|t|, eps)`` (``d`` = dL/du, overwritten): ``(d - u (u . d)) / r``."""
    t = (u * d).sum(dim=-1, keepdim=True)
    t.masked_fill_(r <= _NORM_EPS, 0.0)  # a clamped norm is a constant
    return d.addcmul_(u, t, value=-1).div_(r)


class _BlockedSimpleStep(torch.autograd.Function):
    r"""One DIFFormer-s step of the model on one graph, node-normalised q/k, computed block of rows
    by block of rows, forward and backward written out:

    .. math::
        p = r_a \operatorname{Attn}(z) + r_p \hat A \bar V + r_z z

    (``r_a, r_p, r_z`` from the model's ``alpha``, ``graph_weight``, ``use_residual`` and
    ``use_graph``; :math:`\bar V` the head-mean values, :math:`v = W_V z + b_V` or :math:`v = z`).

    Every ``[N, C]`` intermediate (projections, normalised q/k, per-head outputs, gradients) lives
    only for one block of rows, so it stays in cache and in memory the allocator reuses; the
    backward recomputes the projections of a block from ``z`` (two small matmuls per block)
    instead of keeping them. What the step keeps for its backward is ``z``, the ``[H, C, C]``
    sums and the ``[N, H]`` denominators; it allocates one ``[N, C]`` output forward (plus
    :math:`\bar V` while the forward runs, with value weights) and one ``[N, C]`` gradient
    backward. The propagation runs on row blocks of the CSR matrices. Forward: pass 1 over the
    blocks sums :math:`S = \sum_j \tilde k_j v_j^\top`, :math:`s = \sum_j \tilde k_j` and
    :math:`\sum_j v_j`; pass 2 writes the output. Backward: pass 1 (queries) accumulates the
    gradients of :math:`S`, :math:`s`, :math:`\sum v` and writes the query part of ``dz``; pass 2
    (keys, values, propagation) adds the rest. Gradients as in :class:`_FusedSimpleAttention`.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor, wq: Tensor, bq: Tensor, wk: Tensor, bk: Tensor, wv: Optional[Tensor],
                bv: Optional[Tensor], heads: int, adj: Optional[tuple], coef: tuple,
                rows: int):  # type: ignore[override]
        N, C = z.shape
        H = int(heads)
        r_a, r_p, r_z = coef
        weighted = wv is not None
        blocks = _RowBlocks(N, rows)
        wkv = torch.cat([wk, wv]).t() if weighted else wk.t()
        bkv = torch.cat([bk, bv]) if weighted else bk
        kv = z.new_zeros(H, C, C)
        ks = z.new_zeros(H, C)
        vs = z.new_zeros(H, C)
        vbar = torch.empty_like(z) if weighted and adj is not None else None
        for s, e in blocks:  # pass 1: k, v -> sums
            zb = z[s:e]
            proj = torch.addmm(bkv, zb, wkv)
            k, _ = _normalized(proj[:, :H * C].view(-1, H, C))
            v = proj[:, H * C:].view(-1, H, C) if weighted else zb.unsqueeze(1)
            if H == 1:
                kv[0].addmm_(k[:, 0].t(), v[:, 0])
            else:
                kv.add_(torch.einsum("nhm,nhd->hmd", k, v.expand(-1, H, C)))
            ks.add_(k.sum(dim=0))
            vs.add_(v.sum(dim=0))
            if vbar is not None:
                vbar[s:e] = v[:, 0] if H == 1 else v.mean(dim=1)
        a_rows = blocks.csr(adj[0]) if adj is not None else None
        source = (vbar if weighted else z) if adj is not None else None
        out = torch.empty_like(z)
        den = z.new_empty(N, H)
        for i, (s, e) in enumerate(blocks):  # pass 2: q -> output
            zb = z[s:e]
            q, _ = _normalized(torch.addmm(bq, zb, wq.t()).view(-1, H, C))
            o = _head_outputs(q, kv, ks, vs, N, den[s:e])
            ob = out[s:e]
            if H == 1:
                torch.mul(o[:, 0], r_a, out=ob)
            else:
                torch.mul(o.mean(dim=1), r_a, out=ob)
            if a_rows is not None:
                ob.add_(a_rows[i] @ source, alpha=r_p)
            if r_z:
                ob.add_(zb, alpha=r_z)
        live = den > 1e-12
        live = None if bool(live.all()) else live
        den.clamp_min_(1e-12)
        ctx.save_for_backward(z, wq, bq, wk, bk, wv, bv, kv, ks, vs, den)
        ctx.heads, ctx.adj, ctx.coef, ctx.live, ctx.weighted, ctx.rows = H, adj, coef, live, weighted, rows
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        z, wq, bq, wk, bk, wv, bv, kv, ks, vs, den = ctx.saved_tensors
        H, adj, (r_a, r_p, r_z), live, weighted = ctx.heads, ctx.adj, ctx.coef, ctx.live, ctx.weighted
        N, C = z.shape
        grad = grad.contiguous()
        blocks = _RowBlocks(N, ctx.rows)
        dz = torch.empty_like(z)
        dwq, dbq = torch.zeros_like(wq), torch.zeros_like(bq)
        d_kv, d_ks, d_vs = torch.zeros_like(kv), z.new_zeros(H, C), z.new_zeros(H, C)
        for s, e in blocks:  # pass 1: queries
            zb, gb = z[s:e], grad[s:e]
            q, rq = _normalized(torch.addmm(bq, zb, wq.t()).view(-1, H, C))
            db = den[s:e]
            o = _head_outputs(q, kv, ks, vs, N)
            gd = gb.unsqueeze(1) * (r_a / H) / db.unsqueeze(-1)  # dL/d(numerator)   [n, H, C]
            g = (gd * o).sum(dim=-1)  # -dL/d(denominator)   [n, H]
            if live is not None:
                g.mul_(live[s:e])
            if H == 1:
                dq = torch.mm(gd[:, 0], kv[0].t()).addr_(g[:, 0], ks[0], alpha=-1).unsqueeze(1)
                d_kv[0].addmm_(q[:, 0].t(), gd[:, 0])
                d_ks[0].addmv_(q[:, 0].t(), g[:, 0], alpha=-1)
            else:
                dq = torch.einsum("nhd,hmd->nhm", gd, kv).addcmul_(g.unsqueeze(-1), ks.unsqueeze(0), value=-1)
                d_kv.add_(torch.einsum("nhm,nhd->hmd", q, gd))
                d_ks.sub_(torch.einsum("nhm,nh->hm", q, g))
            d_vs.add_(gd.sum(dim=0))
            dq = _normalized_backward(dq, q, rq).reshape(-1, H * C)
            dzb = dz[s:e]
            torch.mm(dq, wq, out=dzb)
            if r_z:
                dzb.add_(gb, alpha=r_z)
            dwq.addmm_(dq.t(), zb)
            dbq.add_(dq.sum(dim=0))
        at_rows = blocks.csr(adj[1]) if adj is not None else None
        wkv = torch.cat([wk, wv]).t() if weighted else wk.t()
        bkv = torch.cat([bk, bv]) if weighted else bk
        dwk, dbk = torch.zeros_like(wk), torch.zeros_like(bk)
        dwv = torch.zeros_like(wv) if weighted else None
        dbv = torch.zeros_like(bv) if weighted else None
        for i, (s, e) in enumerate(blocks):  # pass 2: keys, values, propagation
            zb, dzb = z[s:e], dz[s:e]
            proj = torch.addmm(bkv, zb, wkv)
            k, rk = _normalized(proj[:, :H * C].view(-1, H, C))
            v = proj[:, H * C:].view(-1, H, C) if weighted else zb.unsqueeze(1).expand(-1, H, C)
            if H == 1:
                dk = torch.addmm(d_ks[0], v[:, 0], d_kv[0].t()).unsqueeze(1)
                dv = torch.addmm(d_vs[0], k[:, 0], d_kv[0]).unsqueeze(1)
            else:
                dk = torch.einsum("nhd,hmd->nhm", v, d_kv).add_(d_ks)
                dv = torch.einsum("nhm,hmd->nhd", k, d_kv).add_(d_vs)
            dk = _normalized_backward(dk, k, rk).reshape(-1, H * C)
            dzb.addmm_(dk, wk)
            dwk.addmm_(dk.t(), zb)
            dbk.add_(dk.sum(dim=0))
            prop = at_rows[i] @ grad if at_rows is not None else None  # dL/d(vbar) / r_p for these rows
            if weighted:
                if prop is not None:
                    dv.add_(prop.unsqueeze(1), alpha=r_p / H)
                dv = dv.reshape(-1, H * C)
                dzb.addmm_(dv, wv)
                dwv.addmm_(dv.t(), zb)
                dbv.add_(dv.sum(dim=0))
            else:
                dzb.add_(dv.sum(dim=1))
                if prop is not None:
                    dzb.add_(prop, alpha=r_p)
        return dz, dwq, dbq, dwk, dbk, dwv, dbv, None, None, None, None


def _head_outputs(q: Tensor, kv: Tensor, ks: Tensor, vs: Tensor, n: int, den: Optional[Tensor] = None) -> Tensor:
    """Per-head outputs of a block of normalised queries ``q`` [b, H, C]: ``(q S + sum v) / d`` with
    ``d = q . s + n`` clamped at 1e-12; the unclamped ``d`` is also written into ``den`` [b, H]."""
    if q.size(1) == 1:
        num = torch.addmm(vs[0], q[:, 0], kv[0]).unsqueeze(1)
        d = torch.mv(q[:, 0], ks[0]).unsqueeze(1)
    else:
        num = torch.einsum("nhm,hmd->nhd", q, kv).add_(vs)
        d = torch.einsum("nhm,hm->nh", q, ks)
    d.add_(n)
    if den is not None:
        den.copy_(d)
    return num.div_(d.clamp_min_(1e-12).unsqueeze(-1))


def blocked_simple_step(z: Tensor, conv: "DIFFormerConv", adjacency: Optional[tuple], attn_weight: float,
                        prop_weight: float, self_weight: float, block_rows: Optional[int] = None) -> Tensor:
    r""":math:`r_a \operatorname{Attn}(z) + r_p \hat A \bar V + r_z z` for one graph with ``conv``
    (DIFFormer-s, ``qk_norm='node'``), by :class:`_BlockedSimpleStep`; ``adjacency`` is
    ``(A_hat, A_hat^T)`` (:func:`cached_adjacency`) or ``None`` for no propagation.
    ``block_rows``: rows per block (default: about half a million elements per block)."""
    wv, bv = (conv.v.weight, conv.v.bias) if conv.v is not None else (None, None)
    rows = int(block_rows) if block_rows else max(1, _BLOCK_ELEMENTS // (conv.heads * conv.channels))
    return _BlockedSimpleStep.apply(z, conv.q.weight, conv.q.bias, conv.k.weight, conv.k.bias, wv, bv, conv.heads,
                                    adjacency, (float(attn_weight), float(prop_weight), float(self_weight)), rows)


def row_blocks_of(n: int, rows: int) -> "_RowBlocks":
    """Blocks ``[s, e)`` of ``rows`` rows of an ``n``-row matrix (and of CSR matrices, ``.csr(a)``)."""
    return _RowBlocks(n, rows)


@torch.no_grad()
def chunked_attention(conv: "DIFFormerConv", x: Tensor, rows: int) -> tuple[Tensor, Tensor]:
    """``conv(x, return_values=True)`` for one graph without autograd, ``rows`` nodes at a time:
    queries, keys and values of all nodes (normalised as ``conv.qk_norm`` says), then the
    attention of each block of queries -- through the global sums for ``'simple'``, through
    ``rows x N`` scores for ``'sigmoid'``. Returns new ``[N, C]`` tensors (attention, values)."""
    N, H, C = x.size(0), conv.heads, conv.channels
    q, k = x.new_empty(N, H, C), x.new_empty(N, H, C)
    v = x.new_empty(N, H, C) if conv.v is not None else x.unsqueeze(1).expand(N, H, C)
    for s in range(0, N, rows):
        xb = x[s:s + rows]
        q[s:s + rows] = conv.q(xb).view(-1, H, C)
        k[s:s + rows] = conv.k(xb).view(-1, H, C)
        if conv.v is not None:
            v[s:s + rows] = conv.v(xb).view(-1, H, C)
    if conv.qk_norm == "node":
        for s in range(0, N, rows):
            _normalized(q[s:s + rows])
            _normalized(k[s:s + rows])
    elif conv.qk_norm == "graph":  # one graph: the Frobenius norm over all its nodes and heads
        for t in (q, k):
            sq = sum(float(t[s:s + rows].pow(2).sum()) for s in range(0, N, rows))
            t.div_(max(sq ** 0.5, 1e-12))
    out = x.new_empty(N, C)
    if conv.kernel == "simple":
        kv, ks, vs = x.new_zeros(H, C, C), x.new_zeros(H, C), x.new_zeros(H, C)
        for s in range(0, N, rows):
            kv.add_(torch.einsum("nhm,nhd->hmd", k[s:s + rows], v[s:s + rows]))
            ks.add_(k[s:s + rows].sum(dim=0))
            vs.add_(v[s:s + rows].sum(dim=0))
        for s in range(0, N, rows):
            out[s:s + rows] = _head_outputs(q[s:s + rows], kv, ks, vs, N).mean(dim=1)
    else:
        vh, kh = v.transpose(0, 1), k.transpose(0, 1)  # [H, N, C]
        for s in range(0, N, rows):
            weights = torch.sigmoid(torch.einsum("nhc,hmc->hnm", q[s:s + rows], kh))  # [H, rows, N]
            o = (weights @ vh) / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)  # [H, rows, C]
            out[s:s + rows] = o.mean(dim=0)
    values = v[:, 0].clone() if H == 1 or conv.v is None else v.mean(dim=1)
    return out, values
