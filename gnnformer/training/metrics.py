"""Metrics on plain tensors: accuracy, ROC-AUC (rank statistic, ties averaged), mean absolute and squared error."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Fraction of rows whose arg-max class equals ``y``."""
    if y.numel() == 0:
        return float("nan")
    return (logits.argmax(dim=-1) == y).float().mean().item()


def _average_ranks(values: Tensor) -> Tensor:
    """1-based ranks, tied values sharing the mean of their ranks (as in the Mann-Whitney U)."""
    order = torch.argsort(values, stable=True)
    sorted_vals = values[order]
    ranks = torch.empty_like(values, dtype=torch.float64)
    n = values.numel()
    i = 0
    # Walk runs of equal values; n is small (one entry per graph), so a Python loop is fine.
    boundaries = torch.nonzero(sorted_vals[1:] != sorted_vals[:-1]).flatten().tolist() + [n - 1]
    for end in boundaries:
        ranks[order[i : end + 1]] = (i + end) / 2.0 + 1.0
        i = end + 1
    return ranks


def roc_auc(scores: Tensor, y: Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``y`` (NaN labels ignored).

    AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg), with R_pos the sum of the positives'
    ranks. Returns NaN when only one class is present, since the AUC is then undefined.
    """
    scores, y = scores.flatten().double(), y.flatten().double()
    keep = ~torch.isnan(y)
    scores, y = scores[keep], y[keep]
    n_pos = int((y == 1).sum())
    n_neg = int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    r_pos = ranks[y == 1].sum().item()
    return (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def multitask_roc_auc(scores: Tensor, y: Tensor) -> float:
    """Mean ROC-AUC over the task columns that have both classes among their known labels."""
    aucs = [roc_auc(scores[:, t], y[:, t]) for t in range(y.size(1))]
    aucs = [a for a in aucs if not math.isnan(a)]
    return sum(aucs) / len(aucs) if aucs else float("nan")


def mae(pred: Tensor, y: Tensor) -> float:
    return (pred.reshape(y.shape) - y).abs().mean().item() if y.numel() else float("nan")


def mse(pred: Tensor, y: Tensor) -> float:
    """Mean squared error, ``mean((pred - y)^2)``; NaN for no items."""
    return (pred.reshape(y.shape) - y).pow(2).mean().item() if y.numel() else float("nan")
