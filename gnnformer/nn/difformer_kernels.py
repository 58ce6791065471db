r"""DIFFormer-s kernels with their backward written out: the same functions as the plain PyTorch
path of :mod:`gnnformer.nn.difformer`, computed with fewer passes over ``[N, C]`` memory.

Each is equal to its plain counterpart up to float rounding (tests/test_difformer_fast.py) and
is kept only because it pays; the gains are measured by ``benchmarks/bench_difformer_ablation.py``
(the ``bench_difformer_ablation`` section of BENCHMARKS.md):

* :func:`fused_simple_attention`: :class:`~gnnformer.nn.DIFFormerConv` on one graph (DIFFormer-s,
  node-normalised q/k) as one function with its backward.
* :func:`blocked_simple_step`: one whole step of the DIFFormer model (attention + propagation +
  residual) on one graph, block of rows by block of rows.
* :func:`chunked_attention`: the attention without autograd, chunk by chunk (inference).
* :func:`sparse_matmul`: :math:`\hat A x` with a prepared :math:`\hat A^\top` for the backward.

Notation: :math:`\tilde q = q / \lVert q\rVert` (per node and head), :math:`S = \sum_j \tilde k_j v_j^\top`,
:math:`s = \sum_j \tilde k_j`, per-head output :math:`o_i = (\tilde q_i S + \sum_j v_j) / d_i` with
:math:`d_i = \tilde q_i \cdot s + N`; with :math:`G` the gradient of :math:`o`:

.. math::
    \bar G_i = G_i / d_i,\quad g_i = \bar G_i \cdot o_i,\quad
    \partial \tilde q_i = \bar G_i S^\top - g_i s,\quad
    \partial S = \sum_i \tilde q_i^\top \bar G_i,\quad \partial s = -\sum_i g_i \tilde q_i,

:math:`\partial \tilde k_j = \partial S\, v_j + \partial s`,
:math:`\partial v_j = \partial S^\top \tilde k_j + \sum_i \bar G_i`, and through the
normalisation :math:`\partial q = (\partial \tilde q - \tilde q (\tilde q \cdot \partial \tilde q)) / \lVert q \rVert`.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional

import torch
from torch import Tensor

_NORM_EPS = 1e-12  # F.normalize's: z / max(|z|, eps)

#: Elements (rows x heads x channels) of one block of rows in the blocked functions here: a block's
#: temporaries (8-16 MB) stay in the last-level cache and below glibc's mmap threshold (so their
#: memory is reused, not page-faulted in afresh), and blocks are few enough (32 per million rows
#: of 64 channels) that the per-operation overheads stay small.
BLOCK_ELEMENTS = 1 << 21


def _normalized(t: Tensor) -> tuple[Tensor, Tensor]:
    """``t / max(|t|, eps)`` over the last dim, in place, and the clamped norms ``[..., 1]``."""
    r = torch.linalg.vector_norm(t, dim=-1, keepdim=True).clamp_min_(_NORM_EPS)
    return t.div_(r), r


def _normalized_backward(d: Tensor, u: Tensor, r: Tensor) -> Tensor:
    """Gradient through ``u = t / max(|t|, eps)`` (``d`` = dL/du, overwritten): ``(d - u (u . d)) / r``."""
    t = (u * d).sum(dim=-1, keepdim=True)
    t.masked_fill_(r <= _NORM_EPS, 0.0)  # a clamped norm is a constant
    return d.addcmul_(u, t, value=-1).div_(r)


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


class _FusedSimpleAttention(torch.autograd.Function):
    r"""DIFFormer-s on one graph with node-normalised queries and keys, the Q/K(/V) projections
    included, with the backward written out: ``(x, W_Q, b_Q, W_K, b_K, W_V, b_V, heads) ->
    (head-mean attention [N, C], head-mean values [N, C])``; without value weights
    (``W_V = b_V = None``: :math:`v = x`) only the attention is returned.

    Computed with fewer passes over ``[N, C]`` memory than autograd's graph of the plain path: one
    matmul for Q, K and V together, the normalisation and the division in place, plain 2-D
    matmuls for one head, and a backward that keeps only ``x``, the (normalised) projections,
    the per-head outputs and the ``[N, H]`` denominators (gradients: see the module docstring).
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
        q, rq = _normalized(q)  # in place, inside proj; norms [N, H, 1]
        k, rk = _normalized(k)
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
        dq = _normalized_backward(dq, q, rq).reshape(N, HC)
        dk = _normalized_backward(dk, k, rk).reshape(N, HC)
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


def fused_simple_attention(conv, x: Tensor, return_values: bool = False):
    """``conv(x, return_values=...)`` for one graph, ``conv`` a DIFFormer-s
    :class:`~gnnformer.nn.DIFFormerConv` with ``qk_norm='node'``, by :class:`_FusedSimpleAttention`."""
    if conv.v is None:
        out = _FusedSimpleAttention.apply(x, conv.q.weight, conv.q.bias, conv.k.weight, conv.k.bias, None, None,
                                          conv.heads)
        return (out, x) if return_values else out
    out, values = _FusedSimpleAttention.apply(x, conv.q.weight, conv.q.bias, conv.k.weight, conv.k.bias,
                                              conv.v.weight, conv.v.bias, conv.heads)
    return (out, values) if return_values else out


# --- One whole DIFFormer-s step on one graph, in blocks of rows ----------------------------------

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
    (keys, values, propagation) adds the rest (gradients: see the module docstring).
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


def blocked_simple_step(z: Tensor, conv, adjacency: Optional[tuple], attn_weight: float,
                        prop_weight: float, self_weight: float, block_rows: Optional[int] = None) -> Tensor:
    r""":math:`r_a \operatorname{Attn}(z) + r_p \hat A \bar V + r_z z` for one graph with ``conv``
    (DIFFormer-s, ``qk_norm='node'``), by :class:`_BlockedSimpleStep`; ``adjacency`` is
    ``(A_hat, A_hat^T)`` (:func:`~gnnformer.nn.difformer.cached_adjacency`) or ``None`` for no propagation.
    ``block_rows``: rows per block (default: :data:`BLOCK_ELEMENTS` elements per block)."""
    wv, bv = (conv.v.weight, conv.v.bias) if conv.v is not None else (None, None)
    rows = int(block_rows) if block_rows else max(1, BLOCK_ELEMENTS // (conv.heads * conv.channels))
    return _BlockedSimpleStep.apply(z, conv.q.weight, conv.q.bias, conv.k.weight, conv.k.bias, wv, bv, conv.heads,
                                    adjacency, (float(attn_weight), float(prop_weight), float(self_weight)), rows)


def row_blocks_of(n: int, rows: int) -> _RowBlocks:
    """Blocks ``[s, e)`` of ``rows`` rows of an ``n``-row matrix (and of CSR matrices, ``.csr(a)``)."""
    return _RowBlocks(n, rows)


@torch.no_grad()
def chunked_attention(conv, x: Tensor, rows: int) -> tuple[Tensor, Tensor]:
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


# --- Propagation with a prepared transpose ------------------------------------------------------

class _SparseMatmul(torch.autograd.Function):
    """``A @ x`` for a constant CSR ``A``, the backward on a prepared CSR ``A^T`` (``A`` itself when
    symmetric), where torch's own backward of CSR @ dense transposes ``A`` on every call."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        return None, None, ctx.a_t @ grad.contiguous()


def sparse_matmul(a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:
    """``a @ x`` (``x`` ``[N, C]``) with the gradient to ``x`` computed as ``a_t @ grad``."""
    return _SparseMatmul.apply(a, a_t, x)
