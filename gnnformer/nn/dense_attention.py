r"""Softmax attention over padded groups of graphs, with an optional multiplicative factor on the
scores and dropout on the weights, as one autograd node with a written-out backward.

A group is ``b`` graphs padded to ``n`` nodes. For its queries, keys and values ``[b, H, n, d]``
(read from rows of one ``[rows, 3 C]`` buffer), its key mask and a factor :math:`M`
(``[b, H, n, n]`` or ``[b, 1, n, n]``, e.g. Gradformer's decay),

.. math::
    S = \frac{q k^\top}{\sqrt{d}}, \quad Z = S \odot M + \beta, \quad P = \operatorname{softmax}(Z),
    \quad O = (P \odot K)\, \frac{v}{1 - p},

with :math:`\beta = -\infty` on padded keys (0 elsewhere) and :math:`K` dropout's keep mask
(:func:`~gnnformer.nn.dropout.keep_mask`). The backward is

.. math::
    \bar P = \bar O\, \Big(\frac{v}{1 - p}\Big)^{\!\top} \odot K, \quad
    \bar Z = P \odot \bar P - P \odot \textstyle\sum_j (P \odot \bar P)_{:, j}, \quad
    \bar M = \bar Z \odot S, \quad \bar S = \bar Z \odot M,

and :math:`P \odot \bar P = (P \odot K) \odot (\bar O\, (v / (1 - p))^\top)`, so the keep mask
itself is not kept. Autograd on the same expression records a node per step and per group
(slicing, head split, scale, mask, softmax, dropout, head merge, concatenation), keeps a copy of the
scores for the in-place scaling and walks the ``[b, H, n, n]`` tensors about twice as often; the
graph-level models run this on many small batches per epoch, where those passes and nodes are most
of the attention's time. ``bench_graph_epoch`` measures the models it runs in.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from .dropout import keep_mask


def _heads(rows: Tensor, b: int, n: int, slot: int, heads: int) -> Tensor:
    """``[b * n, 3 C]`` rows -> the ``slot``-th (0 = q, 1 = k, 2 = v) ``[b, H, n, d]`` view."""
    return rows.view(b, n, 3, heads, -1)[:, :, slot].transpose(1, 2)


class _GroupedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, qkv: Tensor, masks: Sequence[Tensor], heads: int, p: float,
                biases: Sequence[Tensor], *factors: Optional[Tensor]) -> Tensor:  # type: ignore[override]
        C = qkv.size(1) // 3
        inv_sqrt = 1.0 / math.sqrt(C // heads)
        out = qkv.new_empty(qkv.size(0), C)
        saved, start, cell, scale = [], 0, 0, 1.0
        if p > 0.0:  # every group's keep mask in one draw (0 / 1 floats: cheaper to apply than bools)
            keep_all = qkv.new_empty(sum(heads * m.numel() * m.size(1) for m in masks))
            keep_all, scale = keep_mask(keep_all, p, out=keep_all)
        for mask, pad, factor in zip(masks, biases, factors):
            b, n = mask.shape
            rows = qkv[start:start + b * n]
            q, k, v = (_heads(rows, b, n, slot, heads) for slot in range(3))
            # Contiguous once here, or every product forward and backward copies them again.
            q = torch.mul(q, inv_sqrt, out=q.new_empty(q.shape))  # scaled on [b, H, n, d], not on the scores
            k = k.contiguous()
            scores = torch.matmul(q, k.transpose(-1, -2))
            if factor is not None:
                logits = torch.addcmul(pad, scores, factor)  # scores kept: the factor's gradient needs them
            else:
                logits, scores = scores.add_(pad), None
            probs = torch.softmax(logits, dim=-1)
            del logits
            if p > 0.0:
                dropped = keep_all[cell:cell + probs.numel()].view(probs.shape).mul_(probs)
                cell += probs.numel()
                v = torch.mul(v, scale, out=v.new_empty(v.shape))  # dropout's 1 / (1 - p) on v, not on the weights
            else:
                dropped, v = probs, v.contiguous()
            out[start:start + b * n].view(b, n, heads, -1).copy_(torch.matmul(dropped, v).transpose(1, 2))
            saved.append((start, b, n, q, k, v, factor, scores, probs, dropped))
            start += b * n
        if start != qkv.size(0):
            raise ValueError(f"the groups cover {start} rows of qkv's {qkv.size(0)}")
        # Intermediates (not inputs or outputs) may live on ctx; the factors are inputs.
        ctx.groups, ctx.heads, ctx.inv_sqrt, ctx.scale = saved, heads, inv_sqrt, scale
        ctx.save_for_backward(*(f for f in factors if f is not None))
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor):  # type: ignore[override]
        heads, grad_out = ctx.heads, grad_out.contiguous()
        grad_qkv = grad_out.new_empty(grad_out.size(0), 3 * grad_out.size(1))
        grad_factors = []
        for i, (start, b, n, q_scaled, k, v_scaled, factor, scores, probs, dropped) in enumerate(ctx.groups):
            g = grad_out[start:start + b * n].view(b, n, heads, -1).transpose(1, 2)
            grad = grad_qkv[start:start + b * n]
            _heads(grad, b, n, 2, heads).copy_(torch.matmul(dropped.transpose(-1, -2), g).mul_(ctx.scale))
            grad_logits = torch.matmul(g, v_scaled.transpose(-1, -2)).mul_(dropped)  # P * dP
            grad_logits.addcmul_(probs, grad_logits.sum(dim=-1, keepdim=True), value=-1.0)
            grad_factor = None
            if factor is not None:
                if ctx.needs_input_grad[5 + i]:
                    grad_factor = grad_logits * scores
                    if factor.size(1) == 1 and grad_factor.size(1) != 1:  # one factor for every head
                        grad_factor = grad_factor.sum(dim=1, keepdim=True)
                grad_logits.mul_(factor)  # now the scores' gradient
                grad_factors.append(grad_factor)
            else:
                grad_factors.append(None)
            _heads(grad, b, n, 0, heads).copy_(torch.matmul(grad_logits, k).mul_(ctx.inv_sqrt))
            _heads(grad, b, n, 1, heads).copy_(torch.matmul(grad_logits.transpose(-1, -2), q_scaled))
        ctx.groups = None
        return (grad_qkv, None, None, None, None, *grad_factors)


@torch.compiler.disable  # its loop over groups has data-dependent shapes: torch.compile runs it as is
def grouped_attention(qkv: Tensor, masks: Sequence[Tensor], heads: int,
                      factors: Optional[Sequence[Optional[Tensor]]] = None, dropout: float = 0.0,
                      training: bool = False, biases: Optional[Sequence[Tensor]] = None) -> Tensor:
    """Attention of every group of padded graphs (see the module docstring).

    Args:
        qkv: ``[rows, 3 C]``: the groups' padded nodes one after the other, group ``g`` taking
            ``b_g * n_g`` rows (graph by graph, ``n_g`` rows each); columns are queries, keys and
            values, heads in order within each (``torch.nn.MultiheadAttention``'s layout).
        masks: Bool ``[b_g, n_g]`` per group, ``True`` = real node; every graph needs one.
        heads: Number of heads :math:`H`; must divide ``C``.
        factors: Per group ``None`` or a finite ``[b_g, H, n_g, n_g]`` / ``[b_g, 1, n_g, n_g]``
            factor on the scaled scores.
        dropout: Dropout on the weights, in ``training`` only.
        biases: Per group its :func:`key_bias` (built here when not given; every layer of a model
            sees the same groups, so callers may build them once per batch).

    Returns:
        ``[rows, C]`` (rows of padded nodes arbitrary).
    """
    if qkv.dim() != 2 or qkv.size(1) % (3 * heads):
        raise ValueError(f"qkv must be [rows, 3 C] with C divisible by heads={heads}; got {list(qkv.shape)}")
    factors = list(factors) if factors is not None else [None] * len(masks)
    if len(factors) != len(masks):
        raise ValueError(f"{len(masks)} groups but {len(factors)} factors")
    for mask, factor in zip(masks, factors):
        if factor is None:
            continue
        b, n = mask.shape
        if not factor.is_floating_point():
            raise TypeError("attn_scale must be a float tensor (a multiplicative factor on the scores)")
        if factor.dim() != 4 or factor.size(0) != b or factor.size(1) not in (1, heads) or factor.shape[-2:] != (n, n):
            raise ValueError(f"a group of {b} graphs padded to {n} needs a factor [{b}, {heads} or 1, {n}, {n}]; "
                             f"got {list(factor.shape)}")
    factors = [None if f is None else f.to(qkv.dtype) for f in factors]
    p = float(dropout) if training else 0.0
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    biases = [key_bias(m) for m in masks] if biases is None else biases
    return _GroupedAttention.apply(qkv, list(masks), int(heads), p, [b.to(qkv.dtype) for b in biases], *factors)


def key_bias(mask: Tensor) -> Tensor:
    """A group's additive key mask ``[b, 1, 1, n]`` from its node mask ``[b, n]``: ``-inf`` where
    the key is padding, else 0."""
    return torch.zeros(mask.shape, device=mask.device).masked_fill_(~mask, float("-inf"))[:, None, None, :]
