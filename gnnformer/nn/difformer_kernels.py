r"""The DIFFormer kernels that pay for themselves on one large graph: each computes the same
function as the plain PyTorch path of :mod:`gnnformer.nn.difformer` (equal up to float rounding,
tests/test_difformer_fast.py) and is kept because ``benchmarks/bench_difformer_ablation.py``
measured it faster or leaner by at least 1.3x (figures: the ``bench_difformer_ablation`` section
of BENCHMARKS.md, difformer-s training step, 2 layers, 64 hidden, ~11 neighbours per node):

* :func:`blocked_simple_step`: one whole DIFFormer-s step of the model (attention + propagation +
  residual) on one graph, block of rows by block of rows, its backward written out. Against
  attention + propagation through autograd, at :math:`10^6` nodes: 2.3x faster, 3.1x less memory.
  With only the attention term it also serves :class:`~gnnformer.nn.DIFFormerConv` on one graph
  (1.6x faster, 2.6x less memory than the autograd attention).
* ``norm`` (the model's ``low_memory: true``): the LayerNorm after a step (and, by
  :func:`linear_layer_norm`, the encoder's) runs inside it and its input is not kept but
  recomputed block by block in the backward, so a training step keeps one ``[N, C]`` tensor per
  layer instead of two (at :math:`10^6` nodes and 2 layers, 3 such tensors instead of 6): a
  memory-for-time trade, one more propagation per layer in the backward.
* :func:`chunked_attention`: DIFFormer-a's attention without autograd, ``rows`` queries at a time
  (``rows x N`` scores instead of ``N x N``): 5.4x less memory for inference at :math:`10^4` nodes.
* :func:`scipy_adjacency`: :math:`\hat A` (and :math:`\hat A^\top`) by SciPy's counting sorts with
  32-bit indices, against PyG's ``gcn_norm`` + ``to_torch_csr_tensor`` (a sort, 64-bit indices):
  built 4x faster, 3.4x smaller, at :math:`10^6` nodes.

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


def _layer_norm_(h: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float,
                 mean: Tensor, rstd: Tensor) -> Tensor:
    """LayerNorm over the last dim of a block ``h`` [b, C], written into ``h``; its mean and 1/std
    go to ``mean``, ``rstd`` [b, 1] (ATen's LayerNorm kernel, so values equal ``nn.LayerNorm``'s)."""
    y, mu, r = torch.native_layer_norm(h, (h.size(-1),), weight, bias, eps)
    mean.copy_(mu.view(mean.shape))
    rstd.copy_(r.view(rstd.shape))
    return h.copy_(y)


def _layer_norm_backward_(dy: Tensor, h: Tensor, mean: Tensor, rstd: Tensor, weight: Optional[Tensor],
                          bias: Optional[Tensor], d_weight: Optional[Tensor], d_bias: Optional[Tensor]) -> Tensor:
    """dL/dh through LayerNorm for a block, from ``dy`` = dL/d(output) [b, C] and the norm's input
    ``h`` and statistics; the affine gradients are added to ``d_weight``, ``d_bias``."""
    dh, dw, db = torch.ops.aten.native_layer_norm_backward(
        dy, h, [h.size(-1)], mean, rstd, weight, bias, [True, d_weight is not None, d_bias is not None])
    if d_weight is not None:
        d_weight.add_(dw)
    if d_bias is not None:
        d_bias.add_(db)
    return dh


class _LinearLayerNorm(torch.autograd.Function):
    """``LayerNorm(x W^T + b)`` block of rows by block of rows, keeping only ``x``, the weights and
    the per-row statistics for the backward (the linear layer's output is recomputed there)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, b: Optional[Tensor], nw: Optional[Tensor], nb: Optional[Tensor],
                eps: float, rows: int):  # type: ignore[override]
        N = x.size(0)
        out = x.new_empty(N, w.size(0))
        mean, rstd = x.new_empty(N, 1), x.new_empty(N, 1)
        for s, e in _RowBlocks(N, rows):
            ob = out[s:e]
            torch.mm(x[s:e], w.t(), out=ob) if b is None else torch.addmm(b, x[s:e], w.t(), out=ob)
            _layer_norm_(ob, nw, nb, eps, mean[s:e], rstd[s:e])
        ctx.save_for_backward(x, w, b, nw, nb, mean, rstd)
        ctx.rows = rows
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        x, w, b, nw, nb, mean, rstd = ctx.saved_tensors
        grad = grad.contiguous()
        need_x = ctx.needs_input_grad[0]
        dx = torch.empty_like(x) if need_x else None
        dw = torch.zeros_like(w)
        db = torch.zeros_like(b) if b is not None else None
        dnw = torch.zeros_like(nw) if nw is not None else None
        dnb = torch.zeros_like(nb) if nb is not None else None
        for s, e in _RowBlocks(x.size(0), ctx.rows):
            xb = x[s:e]
            h = torch.mm(xb, w.t()) if b is None else torch.addmm(b, xb, w.t())
            dh = _layer_norm_backward_(grad[s:e], h, mean[s:e], rstd[s:e], nw, nb, dnw, dnb)
            dw.addmm_(dh.t(), xb)
            if db is not None:
                db.add_(dh.sum(dim=0))
            if dx is not None:
                torch.mm(dh, w, out=dx[s:e])
        return dx, dw, db, dnw, dnb, None, None


def linear_layer_norm(x: Tensor, linear, norm, block_rows: Optional[int] = None) -> Tensor:
    """``norm(linear(x))`` for a :class:`torch.nn.Linear` and a :class:`torch.nn.LayerNorm` over
    its output, by :class:`_LinearLayerNorm`: the linear layer's ``[N, C]`` output is not kept for
    the backward (see the module docstring)."""
    rows = int(block_rows) if block_rows else max(1, BLOCK_ELEMENTS // max(1, linear.out_features))
    return _LinearLayerNorm.apply(x, linear.weight, linear.bias, norm.weight, norm.bias, float(norm.eps), rows)


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
                rows: int, nw: Optional[Tensor], nb: Optional[Tensor],
                eps: Optional[float]):  # type: ignore[override]
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
        normed = eps is not None
        mean, rstd = (z.new_empty(N, 1), z.new_empty(N, 1)) if normed else (None, None)
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
            if normed:
                _layer_norm_(ob, nw, nb, eps, mean[s:e], rstd[s:e])
        live = den > 1e-12
        live = None if bool(live.all()) else live
        den.clamp_min_(1e-12)
        ctx.save_for_backward(z, wq, bq, wk, bk, wv, bv, kv, ks, vs, den, nw, nb, mean, rstd)
        ctx.heads, ctx.adj, ctx.coef, ctx.live, ctx.weighted, ctx.rows = H, adj, coef, live, weighted, rows
        ctx.normed = normed
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        z, wq, bq, wk, bk, wv, bv, kv, ks, vs, den, nw, nb, mean, rstd = ctx.saved_tensors
        H, adj, (r_a, r_p, r_z), live, weighted = ctx.heads, ctx.adj, ctx.coef, ctx.live, ctx.weighted
        N, C = z.shape
        grad = grad.contiguous()
        blocks = _RowBlocks(N, ctx.rows)
        if ctx.normed:  # the norm's input is recomputed per block; dL/d(input) goes to gp
            gp = torch.empty_like(grad)
            dnw = torch.zeros_like(nw) if nw is not None else None
            dnb = torch.zeros_like(nb) if nb is not None else None
            recompute = _StepInput(z, adj, blocks, H, wv, bv, r_a, r_p, r_z)
        else:
            gp, dnw, dnb = grad, None, None
        dz = torch.empty_like(z)
        dwq, dbq = torch.zeros_like(wq), torch.zeros_like(bq)
        d_kv, d_ks, d_vs = torch.zeros_like(kv), z.new_zeros(H, C), z.new_zeros(H, C)
        for i, (s, e) in enumerate(blocks):  # pass 1: queries
            zb, gb = z[s:e], grad[s:e]
            q, rq = _normalized(torch.addmm(bq, zb, wq.t()).view(-1, H, C))
            db = den[s:e]
            o = _head_outputs(q, kv, ks, vs, N)
            if ctx.normed:
                p = recompute(i, o)
                gb = _layer_norm_backward_(gb, p, mean[s:e], rstd[s:e], nw, nb, dnw, dnb)
                gp[s:e] = gb
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
            prop = at_rows[i] @ gp if at_rows is not None else None  # dL/d(vbar) / r_p for these rows
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
        return dz, dwq, dbq, dwk, dbk, dwv, dbv, None, None, None, None, dnw, dnb, None


class _StepInput:
    """The step's output before its norm, block by block, recomputed in the backward from ``z``
    and the block's per-head attention outputs: ``r_a mean_h(o) + r_p (A_hat V-bar) + r_z z``. With
    value weights, ``A_hat V-bar = (A_hat z) W-bar^T + (A_hat 1) b-bar`` (the head means of the
    value weights), so no ``[N, C]`` values are rebuilt."""

    def __init__(self, z: Tensor, adj: Optional[tuple], blocks: _RowBlocks, heads: int, wv: Optional[Tensor],
                 bv: Optional[Tensor], r_a: float, r_p: float, r_z: float) -> None:
        self.z, self.r_a, self.r_p, self.r_z = z, r_a, r_p, r_z
        self.bounds = blocks.bounds
        self.a_rows = blocks.csr(adj[0]) if adj is not None else None
        self.w = self.b = None
        if wv is not None and adj is not None:
            C = z.size(1)
            self.w = wv.view(heads, C, C).mean(dim=0).t()
            self.b = bv.view(heads, C).mean(dim=0)
            self.ones = z.new_ones(z.size(0), 1)

    def __call__(self, i: int, o: Tensor) -> Tensor:
        s, e = self.bounds[i]
        p = (o[:, 0] if o.size(1) == 1 else o.mean(dim=1)).mul(self.r_a)
        if self.a_rows is not None:
            a = self.a_rows[i]
            if self.w is None:
                p.add_(a @ self.z, alpha=self.r_p)
            else:
                p.addmm_(a @ self.z, self.w, alpha=self.r_p).addmm_(a @ self.ones, self.b.unsqueeze(0), alpha=self.r_p)
        if self.r_z:
            p.add_(self.z[s:e], alpha=self.r_z)
        return p


def blocked_simple_step(z: Tensor, conv, adjacency: Optional[tuple], attn_weight: float,
                        prop_weight: float, self_weight: float, block_rows: Optional[int] = None,
                        norm=None) -> Tensor:
    r""":math:`r_a \operatorname{Attn}(z) + r_p \hat A \bar V + r_z z` for one graph with ``conv``
    (DIFFormer-s, ``qk_norm='node'``), by :class:`_BlockedSimpleStep`; ``adjacency`` is
    ``(A_hat, A_hat^T)`` (:func:`~gnnformer.nn.difformer.cached_adjacency`) or ``None`` for no propagation.
    ``block_rows``: rows per block (default: :data:`BLOCK_ELEMENTS` elements per block). ``norm``: a
    :class:`torch.nn.LayerNorm` applied to the step's output inside it (its input then is not kept)."""
    wv, bv = (conv.v.weight, conv.v.bias) if conv.v is not None else (None, None)
    rows = int(block_rows) if block_rows else max(1, BLOCK_ELEMENTS // (conv.heads * conv.channels))
    nw, nb, eps = (norm.weight, norm.bias, float(norm.eps)) if norm is not None else (None, None, None)
    return _BlockedSimpleStep.apply(z, conv.q.weight, conv.q.bias, conv.k.weight, conv.k.bias, wv, bv, conv.heads,
                                    adjacency, (float(attn_weight), float(prop_weight), float(self_weight)), rows,
                                    nw, nb, eps)


@torch.no_grad()
def chunked_attention(conv, x: Tensor, rows: int) -> Tensor:
    """``conv(x)`` for one graph without autograd, ``conv`` a DIFFormer-a
    :class:`~gnnformer.nn.DIFFormerConv`: queries, keys and values of all nodes, then the attention
    of ``rows`` queries at a time through ``rows x N`` scores (never ``N x N``)."""
    N, H, C = x.size(0), conv.heads, conv.channels
    q, k, v = conv.q(x).view(N, H, C), conv.k(x).view(N, H, C), conv.values(x)
    if conv.qk_norm == "node":
        q, k = _normalized(q)[0], _normalized(k)[0]
    vh, kh = v.transpose(0, 1), k.transpose(0, 1)  # [H, N, C]
    out = x.new_empty(N, C)
    for s in range(0, N, rows):
        weights = torch.sigmoid(torch.einsum("nhc,hmc->hnm", q[s:s + rows], kh))  # [H, rows, N]
        o = (weights @ vh) / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)  # [H, rows, C]
        out[s:s + rows] = o.mean(dim=0)
    return out


# --- The normalised adjacency by counting sorts -------------------------------------------------

def scipy_adjacency(edge_index: Tensor, n: int, dtype: torch.dtype, transpose: bool) -> tuple[Tensor, Optional[Tensor]]:
    """:func:`~gnnformer.nn.difformer.normalized_adjacency` on the CPU: SciPy's COO -> CSR conversion
    sorts by row in O(E + N) (a counting sort), and the matrices carry 32-bit indices when they fit."""
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
