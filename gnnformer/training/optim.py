"""Optimizers and learning-rate schedules by name, as the experiment settings choose them.

``cosine`` is GraphGPS's schedule (Rampasek et al. 2022, ``cosine_with_warmup``), stepped once per
epoch: the factor on ``lr`` is ``e / w`` during the ``w`` warm-up epochs, then
``0.5 * (1 + cos(pi * (e - w) / (E - w)))``, reaching 0 after the last of ``E`` epochs.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import torch

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
SCHEDULERS = ("constant", "cosine")


def build_optimizer(name: str, params: Iterable, lr: float, weight_decay: float,
                    grad_clip: Optional[float] = None) -> torch.optim.Optimizer:
    """``name``'s optimizer; with ``grad_clip``, every ``step()`` first scales the gradients so that
    their global L2 norm is at most ``grad_clip`` (as ``clip_grad_norm_``). Clipping in a step
    pre-hook reaches every training path (mini-batches, full graph, partitions, DDP, whose
    gradients are already averaged over the processes there)."""
    params = list(params)
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    # The fused step (one kernel over all parameters) where PyTorch has it: on NCI1's small models
    # the per-parameter loop of the default step is 3x its time.
    fused = bool(tensors) and all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors)
    opt = OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, fused=fused or None)
    if grad_clip is not None:
        def clip(optimizer, args, kwargs):
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)

        opt.register_step_pre_hook(clip)
    return opt


def lr_factor(name: str, epoch: int, epochs: int, warmup: int = 0) -> float:
    """The multiple of the base learning rate used in (0-based) ``epoch`` of ``epochs``."""
    if name == "constant":
        return 1.0
    if epoch < warmup:
        return epoch / warmup
    progress = (epoch - warmup) / max(1, epochs - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, epochs: int, warmup: int = 0):
    """A ``LambdaLR`` following :func:`lr_factor`; call ``step()`` once after every epoch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(name, e, epochs, warmup))
