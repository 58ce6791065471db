"""What is optimised and measured, one class per kind of target.

A task knows its loss, how to turn model outputs into predictions, its metrics, and which
validation metric selects the model (``monitor``, maximised or minimised).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from . import metrics as M


@dataclass(frozen=True)
class Task:
    name: str
    level: str  # 'graph' or 'node'
    monitor: str  # metric used for early stopping / model selection on validation
    mode: str  # 'max' or 'min'

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def metrics(self, out: Tensor, y: Tensor) -> Dict[str, float]:
        raise NotImplementedError

    def predict(self, out: Tensor) -> Tensor:
        """Human-facing predictions: class ids, probabilities or values."""
        raise NotImplementedError

    def better(self, a: float, b: float) -> bool:
        """Is validation score ``a`` an improvement on ``b``?"""
        if b != b:  # NaN: anything is better than nothing
            return a == a
        return a > b if self.mode == "max" else a < b


def known_labels(out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """The rows of ``out`` and ``y`` whose class is known: a negative class (-1) is unknown (a member
    whose outcome was not observed) and counts in no loss and no metric."""
    y = y.view(-1)
    known = y >= 0
    return (out, y) if bool(known.all()) else (out[known], y[known])


class Classification(Task):
    def loss(self, out, y):
        out, y = known_labels(out, y)
        if y.numel() == 0:  # nothing known in this batch: no gradient, not NaN
            return out.sum() * 0.0
        return F.cross_entropy(out, y)

    def metrics(self, out, y):
        out, y = known_labels(out, y)
        res = {"accuracy": M.accuracy(out, y)}
        if out.size(-1) == 2:
            res["roc_auc"] = M.roc_auc(out.softmax(-1)[:, 1], y.float())
        return res

    def predict(self, out):
        return out.argmax(-1)


class Regression(Task):
    def loss(self, out, y):
        return F.l1_loss(out, y.view_as(out))

    def metrics(self, out, y):
        return {"mae": M.mae(out, y.view_as(out))}

    def predict(self, out):
        return out


class SquaredErrorRegression(Regression):
    """Real-valued targets trained with mean squared error; reports MSE (monitored) and MAE."""

    def loss(self, out, y):
        return F.mse_loss(out, y.view_as(out))

    def metrics(self, out, y):
        y = y.view_as(out)
        return {"mse": M.mse(out, y), "mae": M.mae(out, y)}


class MultitaskBinary(Task):
    """Several binary targets per graph, some unknown (NaN): unknown labels add nothing to the loss."""

    def loss(self, out, y):
        y = y.view_as(out)
        known = ~torch.isnan(y)
        return F.binary_cross_entropy_with_logits(out[known], y[known])

    def metrics(self, out, y):
        return {"roc_auc": M.multitask_roc_auc(out.sigmoid(), y.view_as(out))}

    def predict(self, out):
        return out.sigmoid()


TASKS = {
    "graph_classification": Classification("graph_classification", "graph", "accuracy", "max"),
    "graph_regression": Regression("graph_regression", "graph", "mae", "min"),
    "multitask_binary": MultitaskBinary("multitask_binary", "graph", "roc_auc", "max"),
    "node_classification": Classification("node_classification", "node", "accuracy", "max"),
    "node_regression": SquaredErrorRegression("node_regression", "node", "mse", "min"),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"Unknown task {name!r}; known tasks: {', '.join(TASKS)}.")
    return TASKS[name]
