"""Dropout with a mask that is cheaper to draw than :func:`torch.nn.functional.dropout`'s, the one
dropout of the library for large tensors (attention weights ``[B, H, N, N]``, wide bag-of-words
inputs, DIFFormer's ``[N, C]`` states).

Same result in distribution as ``F.dropout`` (each entry zeroed with probability ``p``, the rest
scaled by ``1 / (1 - p)``): on CPU ``F.dropout`` draws one Bernoulli sample per entry, while here
every 64-bit random integer of ``torch.randint`` (torch's generator, so ``torch.manual_seed``
fixes the mask) gives four 16-bit slices, each compared with ``p * 2^16``: ``p`` is rounded to a
multiple of ``2^-16`` and the scale is exactly ``1 / (1 - that)``, so the expectation is exact.
When ``p`` is a multiple of ``2^-8`` (0.5, the attention default, among them) eight byte slices
give the same distribution from half the random numbers.
The mask is kept for the backward as booleans or, with ``pack=True``, eight entries to a byte (an
eighth of the memory for some extra time: DIFFormer-s packs with ``low_memory: true``, a quarter
of an ``[N, C]`` float tensor less per dropout; the graph-level models' many small attention
dropouts would only pay the time); a ReLU before the dropout and writing in place come free. Measured (``bench_difformer_ablation`` section of BENCHMARKS.md): forward + backward on
``[10^6, 64]`` 1.5x faster than ``F.dropout`` (1.7x after a ReLU; the ``uniform_`` float mask it
replaced: 1.1x), and DIFFormer-s's training step at 10^6 nodes with 1.4x less memory, its ReLU
fused and the masks written in place.
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
    (``p`` rounded to a multiple of ``2^-16``), and the scale ``1 / (1 - p)`` of that rounded ``p``.
    With a float ``out`` the mask is written there as 0 / 1 (the comparison writes floats directly,
    several times faster than a boolean mask converted by a later product)."""
    cut = min(int(round(p * _LEVELS)), _LEVELS - 1)
    n = like.numel()
    if cut % 256 == 0:
        # p a multiple of 2^-8 (0.5, 0.25, ...): one random byte per entry gives the same mask
        # distribution from half the random numbers, which torch draws on one thread.
        slices, dtype, threshold = 8, torch.uint8, cut // 256
    else:
        slices, dtype, threshold = 4, torch.int16, cut - _LEVELS // 2  # int16 is signed
    bits = torch.randint(-2**63, 2**63 - 1, ((n + slices - 1) // slices,), dtype=torch.int64, device=like.device)
    mask = torch.ge(bits.view(dtype)[:n].view(like.shape), threshold, out=out)
    return mask, _LEVELS / (_LEVELS - cut)


def _bit_values(device: torch.device) -> Tensor:
    return torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=device)


def pack_bits(mask: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """A boolean tensor as bytes, eight entries (in order, first in the lowest bit) per byte;
    the last byte padded with zeros."""
    flat = mask.reshape(-1)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    weighted = flat.view(-1, 8).view(torch.uint8) * _bit_values(mask.device)
    return torch.sum(weighted, dim=-1, dtype=torch.uint8, out=out)


def unpack_bits(packed: Tensor, n: int) -> Tensor:
    """The first ``n`` entries of :func:`pack_bits`'s input, flat."""
    return packed.unsqueeze(-1).bitwise_and(_bit_values(packed.device)).ne_(0).view(-1)[:n]


class _Dropout(torch.autograd.Function):
    """Inverted dropout (after a ReLU with ``relu``) of a contiguous tensor, block of rows by
    block of rows; in place with ``inplace``. Keeps the mask for the backward, bit-packed with
    ``pack`` (else as booleans)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float, inplace: bool, relu: bool,
                pack: bool) -> Tensor:  # type: ignore[override]
        x2 = x.view(-1, x.size(-1)) if x.dim() else x.view(1, 1)
        out = x if inplace else torch.empty_like(x)
        out2 = out.view(x2.shape)
        cols = x2.size(1)
        keep = torch.empty((x2.numel() + 7) // 8 if pack else x2.shape, dtype=torch.uint8 if pack else torch.bool,
                           device=x.device)
        rows = _block_rows(cols)
        scale = 1.0
        for s in range(0, x2.size(0), rows):
            xb = x2[s:s + rows]
            kb, scale = keep_mask(xb, p, out=None if pack else keep[s:s + rows])
            if relu:
                kb.logical_and_(xb > 0)
            # Bytes, not bools: a float-by-bool product converts the mask first, 3x slower.
            torch.mul(xb, kb.view(torch.uint8), out=out2[s:s + rows]).mul_(scale)
            if pack:
                pack_bits(kb, out=keep[s * cols // 8:(s * cols + kb.numel() + 7) // 8])
        ctx.save_for_backward(keep)
        ctx.scale, ctx.shape, ctx.pack = scale, x2.shape, pack
        if inplace:
            ctx.mark_dirty(x)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor):  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        g2 = grad.reshape(ctx.shape)
        out = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device)
        cols = ctx.shape[1]
        rows = _block_rows(cols)
        for s in range(0, ctx.shape[0], rows):
            gb = g2[s:s + rows]
            if ctx.pack:
                kb = unpack_bits(keep[s * cols // 8:(s * cols + gb.numel() + 7) // 8], gb.numel()).view(gb.shape)
            else:
                kb = keep[s:s + rows]
            torch.mul(gb, kb.view(torch.uint8), out=out[s:s + rows]).mul_(ctx.scale)
        return out.view(grad.shape), None, None, None, None


def _block_rows(cols: int) -> int:
    """Rows per block: a multiple of 8, so that every block's mask starts on a byte."""
    return max(8, BLOCK_ELEMENTS // max(1, cols) // 8 * 8)


def fast_dropout(x: Tensor, p: float, training: bool, inplace: bool = False, relu: bool = False,
                 pack: bool = False) -> Tensor:
    """``F.dropout(relu(x) if relu else x, p, training)``; ``x`` itself when not training (or
    ``p = 0``) and no ReLU is asked. ``inplace`` only where no backward needs ``x`` (the output
    of a norm or of a linear layer; autograd raises otherwise). ``pack``: keep the mask bit-packed
    (:func:`pack_bits`) rather than as booleans."""
    if not training or p <= 0.0:
        if relu:
            return torch.relu_(x) if inplace else torch.relu(x)
        return x
    if p >= 1.0:
        return x.mul_(0.0) if inplace else torch.zeros_like(x)
    if not x.is_contiguous():
        x, inplace = x.contiguous(), True
    return _Dropout.apply(x, float(p), bool(inplace), bool(relu), bool(pack))

