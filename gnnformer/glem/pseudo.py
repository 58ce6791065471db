"""Pseudo-labels of GLEM (Zhao et al., ICLR 2023): which nodes get them, what they are, how they
weigh in the loss.

- Candidates: ``strict`` = nodes in none of train/validation/test (validation and test nodes
  never receive a pseudo-label, so they never enter training); ``transductive`` = every
  non-training node, validation and test included (the authors' setting).
- ``pl_filter`` keeps the most confident fraction of the candidates (confidence: the largest
  class probability of the other model's prediction, as in the authors' code).
- Each step trains on the gold training nodes plus ``ceil(pl_ratio * |train|)`` candidates drawn
  at random (all of them when there are fewer).
- Targets are soft: ``softmax(logits / T)``; the loss is
  ``pl_weight * CE(pseudo) + (1 - pl_weight) * CE(gold)``, each a mean over its own nodes in the
  batch; a part with no node in the batch contributes 0 (a batch of gold nodes only is plain CE).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MODES = ("strict", "transductive")


def candidates(num_nodes: int, train: Tensor, val: Tensor, test: Tensor, mode: str) -> Tensor:
    """Sorted indices of the nodes that may receive a pseudo-label under ``mode``."""
    if mode not in MODES:
        raise ValueError(f"pseudo must be one of {MODES}, got {mode!r}")
    excluded = torch.zeros(num_nodes, dtype=torch.bool)
    excluded[train] = True
    if mode == "strict":
        excluded[val] = True
        excluded[test] = True
    return torch.nonzero(~excluded).view(-1)


def soft_labels(logits: Tensor, temperature: float) -> Tensor:
    """``softmax(logits / T)``: the pseudo-label distribution of every row."""
    return torch.softmax(logits.float() / temperature, dim=-1)


def confident(nodes: Tensor, logits: Tensor, fraction: float) -> Tensor:
    """The ``int(fraction * len(nodes))`` nodes whose prediction is most confident, sorted by index."""
    if fraction >= 1.0 or nodes.numel() == 0:
        return nodes
    keep = int(fraction * nodes.numel())
    confidence = torch.softmax(logits[nodes].float(), dim=-1).max(dim=-1).values
    order = torch.argsort(confidence, descending=True, stable=True)[:keep]
    return nodes[order].sort().values


def sample(nodes: Tensor, n_train: int, ratio: float, generator: torch.Generator) -> Tensor:
    """``ceil(ratio * n_train)`` of ``nodes`` drawn without replacement (all when fewer), sorted."""
    want = min(nodes.numel(), math.ceil(ratio * n_train))
    pick = torch.randperm(nodes.numel(), generator=generator)[:want]
    return nodes[pick].sort().values


@dataclass
class TrainingSet:
    """The nodes a step trains on and their targets: ``targets`` rows are distributions (one-hot
    for gold nodes, soft pseudo-labels otherwise); ``is_gold`` marks the gold rows."""

    nodes: Tensor
    targets: Tensor
    is_gold: Tensor

    @property
    def num_pseudo(self) -> int:
        return int((~self.is_gold).sum())


def training_set(train: Tensor, y: Tensor, num_classes: int, pool: Tensor, teacher_logits: Tensor | None,
                 *, ratio: float, fraction: float, temperature: float, generator: torch.Generator) -> TrainingSet:
    """Gold ``train`` nodes plus a sample of the confident ``pool`` nodes labelled by ``teacher_logits``
    (no pseudo-labelled node without a teacher, as in pre-training)."""
    gold = F.one_hot(y[train], num_classes).float()
    if teacher_logits is None or ratio <= 0 or pool.numel() == 0:
        return TrainingSet(train, gold, torch.ones(train.numel(), dtype=torch.bool))
    chosen = sample(confident(pool, teacher_logits, fraction), train.numel(), ratio, generator)
    soft = soft_labels(teacher_logits[chosen], temperature)
    is_gold = torch.cat([torch.ones(train.numel(), dtype=torch.bool), torch.zeros(chosen.numel(), dtype=torch.bool)])
    return TrainingSet(torch.cat([train, chosen]), torch.cat([gold, soft]), is_gold)


def mixed_loss(logits: Tensor, targets: Tensor, is_gold: Tensor, pl_weight: float) -> Tensor:
    """``pl_weight * CE(pseudo) + (1 - pl_weight) * CE(gold)`` with soft-target cross-entropy; a
    batch of gold rows only (pre-training) is plain cross-entropy, as in the authors' code."""
    per_row = -(targets * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    if bool(is_gold.all()):
        return per_row.mean()
    loss = pl_weight * per_row[~is_gold].mean()
    if bool(is_gold.any()):
        loss = loss + (1.0 - pl_weight) * per_row[is_gold].mean()
    return loss
