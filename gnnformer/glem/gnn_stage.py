"""The GNN side of GLEM: any node-level model of the registry, trained full-batch over the LM's
node embeddings (with ``label_input``, also the LM's soft predictions), on gold labels alone
(pre-training) or gold + the LM's pseudo-labels (an M-step). Early stopping and model selection
on validation accuracy only; the best weights are reloaded before predicting.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..datasets.encodings import precompute_encodings
from ..models import create_model
from ..progress import Progress
from ..tasks.metrics import accuracy
from ..training.optim import build_optimizer
from .pseudo import TrainingSet, mixed_loss, soft_labels


@dataclass
class GNNSettings:
    name: str
    model_args: Dict[str, Any]
    epochs: int
    patience: int
    lr: float
    weight_decay: float
    pl_weight: float


def gnn_input(embeddings: Tensor, lm_logits: Tensor | None, train: Tensor, y: Tensor, temperature: float) -> Tensor:
    """The GNN's node features: the embeddings, followed (``label_input``) by the LM's soft
    predictions ``softmax(logits / T)`` with the gold one-hot on training nodes (the authors' input)."""
    if lm_logits is None:
        return embeddings
    labels = soft_labels(lm_logits, temperature)
    labels[train] = F.one_hot(y[train], labels.size(1)).float()
    return torch.cat([embeddings, labels], dim=1)


def train_gnn(x: Tensor, edge_index: Tensor, num_classes: int, data: TrainingSet, s: GNNSettings, *,
              val: Tensor, y: Tensor, progress: Progress, label: str) -> Tuple[Tensor, Dict[str, float]]:
    """A fresh model trained on ``data``; returns the selected model's logits for every node and
    ``{'val_accuracy', 'epoch'}`` of the selection."""
    from torch_geometric.data import Data

    model = create_model(s.name, in_channels=x.size(1), out_channels=num_classes, level="node", **s.model_args)
    # Positional/structural encodings the model asks for (GPS: LapPE, RWSE), cached by graph structure.
    graph = precompute_encodings([Data(x=x, edge_index=edge_index, num_nodes=x.size(0))],
                                 **model.encodings(model.cfg))[0]
    optimizer = build_optimizer("adam", model.parameters(), s.lr, s.weight_decay)
    best = {"val_accuracy": -1.0, "epoch": 0}
    best_state, waited = copy.deepcopy(model.state_dict()), 0
    task = progress.add(f"{label}: {s.name} on {data.nodes.numel()} nodes ({data.num_pseudo} pseudo-labelled)", s.epochs)
    for epoch in range(s.epochs):
        model.train()
        optimizer.zero_grad()
        logits = model(graph)
        loss = mixed_loss(logits[data.nodes], data.targets, data.is_gold, s.pl_weight)
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            acc = accuracy(model(graph)[val], y[val])
        if acc > best["val_accuracy"]:
            best, best_state, waited = {"val_accuracy": acc, "epoch": epoch + 1}, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
        task.advance(status=f"loss {loss.item():.3f} val {acc:.3f}")
        if waited >= s.patience:
            break
    task.done()
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        return model(graph), best
