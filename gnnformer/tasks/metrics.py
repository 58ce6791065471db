"""The metrics module of the library: every score reported anywhere is computed here.

Scores come from scikit-learn on plain tensors; this module only adds what the protocols need
around it: undefined scores (one class present, no items) are NaN rather than an exception,
unknown labels (NaN) are left out, and :func:`summarise` turns per-run scores into the
``{'mean', 'std', 'values'}`` records written to metrics.json (std: population, ddof=0).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Fraction of rows whose arg-max class equals ``y``; NaN for no rows."""
    from sklearn.metrics import accuracy_score

    if y.numel() == 0:
        return float("nan")
    return float(accuracy_score(y.view(-1).cpu().numpy(), logits.argmax(dim=-1).view(-1).cpu().numpy()))


def macro_f1(logits: Tensor, y: Tensor) -> float:
    """F1 of every class present in ``y`` or predicted, averaged with equal weight (scikit-learn's
    ``average='macro'``); NaN for no rows."""
    from sklearn.metrics import f1_score

    if y.numel() == 0:
        return float("nan")
    return float(f1_score(y.view(-1).cpu().numpy(), logits.argmax(dim=-1).view(-1).cpu().numpy(), average="macro",
                          zero_division=0))


def roc_auc(scores: Tensor, y: Tensor) -> float:
    """Area under the ROC curve of ``scores`` for binary ``y``; NaN labels are left out, and the
    result is NaN when only one class remains (the AUC is undefined then)."""
    from sklearn.metrics import roc_auc_score

    scores, y = _np(scores.flatten()), _np(y.flatten())
    keep = ~np.isnan(y)
    scores, y = scores[keep], y[keep]
    if np.unique(y).size < 2:
        return float("nan")
    return float(roc_auc_score(y, scores))


def thresholded_roc_auc(probs: Tensor, y: Tensor, threshold: float = 0.5) -> float:
    """The ROC-AUC of the hard predictions ``probs > threshold``, as some few-shot codes report it
    (FS-GNNCvTR's ``roc_auc_score(y, sigmoid > 0.5)``). With one threshold the ROC curve has a
    single corner, so this is the balanced accuracy (TPR + TNR) / 2 of those predictions, not the
    ranking quality ``roc_auc`` measures; NaN labels are left out, NaN when one class remains."""
    return roc_auc((probs.flatten() > threshold).to(torch.float64), y)


def multitask_roc_auc(scores: Tensor, y: Tensor) -> float:
    """Mean ROC-AUC over the task columns that have both classes among their known labels."""
    aucs = [roc_auc(scores[:, t], y[:, t]) for t in range(y.size(1))]
    aucs = [a for a in aucs if not math.isnan(a)]
    return sum(aucs) / len(aucs) if aucs else float("nan")


def mae(pred: Tensor, y: Tensor) -> float:
    """Mean absolute error; NaN for no items."""
    from sklearn.metrics import mean_absolute_error

    if y.numel() == 0:
        return float("nan")
    return float(mean_absolute_error(_np(y.reshape(-1)), _np(pred.reshape(y.shape).reshape(-1))))


def mse(pred: Tensor, y: Tensor) -> float:
    """Mean squared error, ``mean((pred - y)^2)``; NaN for no items."""
    from sklearn.metrics import mean_squared_error

    if y.numel() == 0:
        return float("nan")
    return float(mean_squared_error(_np(y.reshape(-1)), _np(pred.reshape(y.shape).reshape(-1))))


def mean_std(values: Sequence[Optional[float]]) -> Dict[str, Any]:
    """``{'mean', 'std', 'values'}`` of ``values``; undefined ones (NaN, None) are left out of mean
    and std and written as null; mean and std are null when nothing is defined."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    defined = arr[~np.isnan(arr)]
    return {"mean": float(defined.mean()) if defined.size else None,
            "std": float(defined.std()) if defined.size else None,
            "values": [None if (v is None or math.isnan(v)) else float(v) for v in values]}


def summarise(per_run: List[Mapping[str, Mapping[str, float]]], splits: Iterable[str] = ("train", "val", "test")
              ) -> Dict[str, Any]:
    """``{'test_accuracy': {'mean', 'std', 'values'}, ...}`` over runs/folds: one record per split
    and metric of ``per_run[i][split][metric]``."""
    return {f"{split}_{metric}": mean_std([r[split][metric] for r in per_run])
            for split in splits for metric in per_run[0][split]}
