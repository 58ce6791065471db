"""The non-meta baseline: a GIN trained with the labels of every meta-training task at once
(multi-task, one output per task), then fine-tuned on each support set with a fresh head
(``meta.adapt_to_support`` with ``method='finetune'``). Test-task labels are never read."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

from .meta import outer_optimizer
from .model import FewShotModel, create_fewshot_model
from .tasks import FewShotData, episode_generator, pool_ids


def train_task_labels(data: FewShotData):
    """``(molecule ids, labels [molecules, train tasks])``, -1 where a molecule is not in a task."""
    ids = pool_ids(data.train_tasks)
    row = {int(m): i for i, m in enumerate(ids.tolist())}
    labels = torch.full((ids.numel(), len(data.train_tasks)), -1, dtype=torch.long)
    for t, task in enumerate(data.train_tasks):
        rows = torch.tensor([row[int(m)] for m in task.mol_ids.tolist()], dtype=torch.long)
        labels[rows, t] = task.labels
    return ids, labels


def multitask_train(model_cfg: Dict, data: FewShotData, steps: int, batch_size: int, lr: float, seed: int,
                    encoder_state: Optional[dict] = None,
                    on_step: Optional[Callable[[int, float], None]] = None) -> FewShotModel:
    """Train a GIN on the meta-training tasks' labels; returns an ``fs-gin`` (1 output) holding its encoder.

    The loss is the mean over labelled (molecule, task) pairs of a binary cross-entropy whose
    positive weight is each task's negatives/positives ratio (Tox21 tasks hold 3-14% positives).
    """
    ids, labels = train_task_labels(data)
    multi = create_fewshot_model("fs-gin", **{**model_cfg, "out_channels": labels.size(1)})
    if encoder_state is not None:
        multi.encoder.load_state_dict(encoder_state)
    pos = (labels == 1).sum(0).clamp(min=1).float()
    neg = (labels == 0).sum(0).float()
    pos_weight = (neg / pos).clamp(min=1e-3)
    opt = outer_optimizer(multi, lr, lr)
    gen = episode_generator(seed, 104_729)
    multi.train()
    for step in range(steps):
        pick = torch.randint(0, ids.numel(), (batch_size,), generator=gen)
        batch = data.batch(ids[pick])
        y = labels[pick]
        mask = y >= 0
        logits = multi(batch)
        per = F.binary_cross_entropy_with_logits(logits, y.clamp(min=0).float(), pos_weight=pos_weight,
                                                 reduction="none")
        loss = (per * mask).sum() / mask.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step, float(loss.detach()))
    single = create_fewshot_model("fs-gin", **{**model_cfg, "out_channels": 1})
    single.encoder.load_state_dict(multi.encoder.state_dict())
    return single.eval()
