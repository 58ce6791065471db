"""The written-out dense attention kernel against the same formula under autograd (float64)."""
import math

import pytest
import torch

from gnnformer.nn import GraphMultiheadAttention
from gnnformer.nn.dense_attention import grouped_attention
from gnnformer.nn.dropout import keep_mask


def _inputs(B=3, H=2, n=5, d=4, factor_heads=2, seed=0):
    """One group: ``qkv`` ``[B * n, 3 H d]`` (a leaf) and its q, k, v ``[B, H, n, d]`` views."""
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(B * n, 3 * H * d, generator=g, dtype=torch.float64, requires_grad=True)
    q, k, v = qkv.view(B, n, 3, H, d).permute(2, 0, 3, 1, 4)
    key_mask = torch.ones(B, n, dtype=torch.bool)
    key_mask[1, 3:] = False  # graph 1 has 3 nodes, graph 2 has 1
    key_mask[2, 1:] = False
    factor = None
    if factor_heads:
        factor = torch.rand(B, factor_heads, n, n, generator=g, dtype=torch.float64).requires_grad_()
    return qkv, (q, k, v), key_mask, factor


def _kernel(qkv, key_mask, factor, **kw):
    B, n = key_mask.shape
    out = grouped_attention(qkv, [key_mask], 2, [factor], **kw)  # [B * n, H d]
    return out.view(B, n, 2, -1).transpose(1, 2)  # as [B, H, n, d]


def _reference(q, k, v, key_mask, factor, keep=None, scale=1.0):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))
    if factor is not None:
        scores = scores * factor
    scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if keep is not None:
        weights = weights * keep * scale
    return weights @ v


def _grads(out, tensors, seed=1):
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad(out, tensors, upstream)


@pytest.mark.parametrize("factor_heads", [0, 1, 2])
def test_matches_autograd_without_dropout(factor_heads):
    qkv, (q, k, v), key_mask, factor = _inputs(factor_heads=factor_heads)
    leaves = [t for t in (qkv, factor) if t is not None]
    out = _kernel(qkv, key_mask, factor)
    ref = _reference(q, k, v, key_mask, factor)
    real = key_mask[:, None, :, None]  # padded query rows are discarded by the callers
    torch.testing.assert_close(out * real, ref * real)
    for mine, theirs in zip(_grads(out * real, leaves), _grads(ref * real, leaves)):
        torch.testing.assert_close(mine, theirs)


def test_dropout_uses_keep_mask_and_scales_the_kept_weights():
    qkv, (q, k, v), key_mask, factor = _inputs()
    torch.manual_seed(7)
    out = _kernel(qkv, key_mask, factor, dropout=0.3, training=True)
    torch.manual_seed(7)  # the same draw, on a tensor of the weights' shape
    keep, scale = keep_mask(torch.empty(q.shape[:-1] + (k.size(2),)), 0.3)
    assert 0.0 < keep.double().mean() < 1.0 and scale == pytest.approx(1 / 0.7, rel=1e-4)
    ref = _reference(q, k, v, key_mask, factor, keep, scale)
    real = key_mask[:, None, :, None]
    torch.testing.assert_close(out * real, ref * real)
    leaves = [qkv, factor]
    for mine, theirs in zip(_grads(out * real, leaves), _grads(ref * real, leaves)):
        torch.testing.assert_close(mine, theirs)


def test_several_groups_equal_each_group_alone():
    """Two groups in one buffer give each group's own result, values and gradients."""
    a_qkv, _, a_mask, a_factor = _inputs(B=3, n=5, seed=1)
    b_qkv, _, b_mask, _ = _inputs(B=3, n=4, factor_heads=0, seed=2)
    both = torch.cat([a_qkv, b_qkv]).detach().requires_grad_()
    out = grouped_attention(both, [a_mask, b_mask], 2, [a_factor, None])
    alone = torch.cat([grouped_attention(a_qkv, [a_mask], 2, [a_factor]),
                       grouped_attention(b_qkv, [b_mask], 2, [None])])
    torch.testing.assert_close(out, alone)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(4), dtype=out.dtype)
    grad_both, grad_factor = torch.autograd.grad(out, [both, a_factor], g)
    grad_a, grad_b, grad_factor_alone = torch.autograd.grad(alone, [a_qkv, b_qkv, a_factor], g)
    torch.testing.assert_close(grad_both, torch.cat([grad_a, grad_b]))
    torch.testing.assert_close(grad_factor, grad_factor_alone)


def test_eval_ignores_dropout_and_bad_input_is_refused():
    qkv, _, key_mask, factor = _inputs()
    torch.testing.assert_close(_kernel(qkv, key_mask, factor, dropout=0.5, training=False),
                               _kernel(qkv, key_mask, factor))
    with pytest.raises(ValueError, match="needs a factor"):
        grouped_attention(qkv, [key_mask], 2, [factor[:, :, :2]])
    with pytest.raises(TypeError, match="float tensor"):
        grouped_attention(qkv, [key_mask], 2, [factor.long()])
    with pytest.raises(ValueError, match="dropout must be"):
        grouped_attention(qkv, [key_mask], 2, None, dropout=1.0, training=True)
    with pytest.raises(ValueError, match="cover 10 rows"):
        grouped_attention(qkv, [key_mask[:2]], 2, None)


@pytest.mark.parametrize("with_scale", [True, False])
def test_module_in_training_matches_the_weights_path(with_scale):
    """The module's training path (the kernel, per size group) against its weights path (autograd
    on one dense batch). Without a factor the kernel runs only with dropout in training: p = 1e-9
    rounds to a keep-everything mask, so both paths are deterministic."""
    torch.manual_seed(0)
    attn = GraphMultiheadAttention(8, 2, dropout=0.0 if with_scale else 1e-9).double().train()
    sizes = [2, 7, 3, 7, 1, 4]
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    x = torch.randn(batch.numel(), 8, dtype=torch.float64, requires_grad=True)
    B, n = len(sizes), max(sizes)
    scale = torch.rand(B, 2, n, n, dtype=torch.float64, requires_grad=True) if with_scale else None
    out = attn(x, batch, attn_scale=scale)
    ref, _ = attn(x, batch, attn_scale=scale, return_weights=True)
    torch.testing.assert_close(out, ref)
    leaves = [x, attn.in_proj_weight] + ([scale] if with_scale else [])
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=out.dtype)
    for mine, theirs in zip(torch.autograd.grad(out, leaves, g), torch.autograd.grad(ref, leaves, g)):
        torch.testing.assert_close(mine, theirs)
