"""Dropout with a mask that is cheaper to draw than :func:`torch.nn.functional.dropout`'s, the one
dropout of the library for large tensors (attention weights ``[B, H, N, N]``, wide bag-of-words
inputs, DIFFormer's ``[N, C]`` states).

Same result in distribution as ``F.dropout`` (each entry zeroed with probability ``p``, the rest
scaled by ``1 / (1 - p)``): on CPU ``F.dropout`` draws one Bernoulli sample per entry, while here
every 64-bit random integer of ``torch.randint`` (torch's generator, so ``torch.manual_seed``
fixes the mask) gives four 16-bit slices, each compared with ``p * 2^16``: ``p`` is rounded to a
multiple of ``2^-16`` and the scale is exactly ``1 / (1 - that)``, so the expectation is exact.
The mask is kept as booleans for the backward; a ReLU before the dropout and writing in place
come free.
Speed against ``F.dropout``: see the ``bench_difformer_ablation`` section of BENCHMARKS.md.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

#: Elements per block of rows: a block's mask and output stay in cache.
BLOCK_ELEMENTS = 1 << 21
_LEVELS = 1 << 16


def keep_mask(like: Tensor, p: float, out: Optional[Tensor] = None) -> tuple[Tensor, float]:
    """A boolean mask shaped like ``like``, each entry ``True`` with probability ``1 - p``
    (``p`` rounded to a multiple of ``2^-16``), and the scale ``1 / (1 - p)`` of that rounded ``p``."""
    cut = min(int(round(p * _LEVELS)), _LEVELS - 1)
    n = like.numel()
    bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=like.device)
    mask = torch.ge(bits.view(torch.int16)[:n].view(like.shape), cut - _LEVELS // 2, out=out)
    return mask, _LEVELS / (_LEVELS - cut)


class _Dropout(torch.autograd.Function):
    """Inverted dropout (after a ReLU with ``relu``) of a contiguous tensor, block of rows by
    block of rows; in place with ``inplace``. Keeps the boolean mask for the backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float, inplace: bool, relu: bool) -> Tensor:  # type: ignore[override]
        x2 = x.view(-1, x.size(-1)) if x.dim() else x.view(1, 1)
        out = x if inplace else torch.empty_like(x)
        out2 = out.view(x2.shape)
        keep = torch.empty(x2.shape, dtype=torch.bool, device=x.device)
        rows = max(1, BLOCK_ELEMENTS // max(1, x2.size(1)))
        scale = 1.0
        for s in range(0, x2.size(0), rows):
            xb, kb = x2[s:s + rows], keep[s:s + rows]
            _, scale = keep_mask(xb, p, out=kb)
            if relu:
                kb.logical_and_(xb > 0)
            torch.mul(xb, kb, out=out2[s:s + rows]).mul_(scale)  # (faster than masked_fill_ here)
        ctx.save_for_backward(keep)
        ctx.scale = scale
        if inplace:
            ctx.mark_dirty(x)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        return (grad.reshape(keep.shape) * keep).mul_(ctx.scale).view(grad.shape), None, None, None


def fast_dropout(x: Tensor, p: float, training: bool, inplace: bool = False, relu: bool = False) -> Tensor:
    """``F.dropout(relu(x) if relu else x, p, training)``; ``x`` itself when not training (or
    ``p = 0``) and no ReLU is asked. ``inplace`` only where no backward needs ``x`` (the output
    of a norm or of a linear layer; autograd raises otherwise)."""
    if not training or p <= 0.0:
        if relu:
            return torch.relu_(x) if inplace else torch.relu(x)
        return x
    if p >= 1.0:
        return x.mul_(0.0) if inplace else torch.zeros_like(x)
    if not x.is_contiguous():
        x, inplace = x.contiguous(), True
    return _Dropout.apply(x, float(p), bool(inplace), bool(relu))


class _BlockedLayerNormDropout(torch.autograd.Function):
    """``dropout(relu?(layer_norm(x)))`` of a ``[N, C]`` tensor block of rows by block of rows, so
    that the norm and the mask run on blocks in cache. Keeps ``x``, the per-row mean and 1/std
    and the boolean mask (none when ``p = 0`` and no ReLU)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float, p: float,
                relu: bool) -> Tensor:  # type: ignore[override]
        N, C = x.shape
        rows = max(1, BLOCK_ELEMENTS // max(1, C))
        out = torch.empty_like(x)
        mean, rstd = x.new_empty(N, 1), x.new_empty(N, 1)
        keep = torch.empty(N, C, dtype=torch.bool, device=x.device) if p > 0.0 or relu else None
        scale = 1.0
        for s in range(0, N, rows):
            ob = out[s:s + rows]
            y, mean[s:s + rows], rstd[s:s + rows] = torch.ops.aten.native_layer_norm(x[s:s + rows], [C], weight,
                                                                                    bias, eps)
            if keep is None:
                ob.copy_(y)
                continue
            kb = keep[s:s + rows]
            if p > 0.0:
                _, scale = keep_mask(y, p, out=kb)
                if relu:
                    kb.logical_and_(y > 0)
            else:
                torch.gt(y, 0, out=kb)
            torch.mul(y, kb, out=ob).mul_(scale)
        ctx.save_for_backward(x, weight, bias, mean, rstd, keep)
        ctx.eps, ctx.scale, ctx.rows = eps, scale, rows
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
                gb = torch.mul(gb, keep[s:s + ctx.rows]).mul_(ctx.scale)
            dx[s:s + ctx.rows], dwb, dbb = torch.ops.aten.native_layer_norm_backward(
                gb, x[s:s + ctx.rows], [C], mean[s:s + ctx.rows], rstd[s:s + ctx.rows], weight, bias,
                [True, want_w, want_b])
            if want_w:
                dw.add_(dwb)
            if want_b:
                db.add_(dbb)
        return dx, dw, db, None, None, None


def norm_dropout(x: Tensor, norm: torch.nn.Module, p: float, training: bool, relu: bool = False,
                 inplace: bool = False) -> Tensor:
    """``fast_dropout(relu?(norm(x)), p, training)`` for ``[N, C]`` states: block by block of rows
    for a LayerNorm (:class:`_BlockedLayerNormDropout`), else ``norm`` then :func:`fast_dropout`
    (in place on the norm's output with ``inplace``, which the caller allows when no backward needs it)."""
    if isinstance(norm, torch.nn.LayerNorm) and x.dim() == 2 and len(norm.normalized_shape) == 1 \
            and x.size(-1) == norm.normalized_shape[0] and x.size(0) > 0:
        return _BlockedLayerNormDropout.apply(x.contiguous(), norm.weight, norm.bias, float(norm.eps),
                                              float(p) if training else 0.0, bool(relu))
    return fast_dropout(norm(x), p, training, inplace=inplace, relu=relu)
