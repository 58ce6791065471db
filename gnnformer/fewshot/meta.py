"""Meta-learning with ``torch.func``: a MAML inner loop (functional_call + grad) and the outer loop.

Inner loop: starting from the model's own parameters, ``steps`` plain gradient steps on the
support loss change the parameters named by ``adapt`` and give *adapted* copies (a dict of
tensors); the module itself is never modified. Outer loop: the query loss of the adapted copies
is back-propagated to the original parameters, through the inner steps (second order) or not
(``first_order``: the inner gradients are treated as constants, FOMAML), and Adam updates the
GIN and the head with their own learning rates.

``adapt`` says what the inner loop changes:

- ``head``: the head only (the convolutional Transformer of fs-gnncvtr, the linear layer of
  fs-gin); the GIN is learnt in the outer loop only. The GIN embeddings then do not depend on
  the task, so each molecule is embedded once per evaluation, not once per support draw.
- ``encoder``: the GIN only (the original FS-GNNCvTR code adapts the GNN and meta-updates the
  Transformer in the outer loop only).
- ``all``: every parameter.

The fine-tuning baseline adapts with Adam on a fresh linear head instead (``finetune_adapt``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad
from torch_geometric.data import Batch, Data

from ..errors import ConfigError
from .model import FewShotModel
from .tasks import FewShotData, episode_generator, sample_episode

ADAPT = ("head", "encoder", "all")
Features = Union[Tensor, Batch]


@dataclass
class AdaptSpec:
    """How a checkpoint adapts to a new task; stored in few-shot checkpoints."""

    method: str  # maml | finetune
    adapt: str  # head | encoder | all
    steps: int
    lr: float
    shots: int = 5

    def validate(self) -> None:
        if self.method not in ("maml", "finetune"):
            raise ConfigError(f"method must be maml or finetune, got {self.method!r}.")
        if self.adapt not in ADAPT:
            raise ConfigError(f"adapt must be one of {', '.join(ADAPT)}, got {self.adapt!r}.")
        if self.steps < 0 or self.lr <= 0:
            raise ConfigError("adaptation steps must be >= 0 and its learning rate positive.")

    def to_dict(self) -> dict:
        return asdict(self)


class Adapter:
    """The functional view of a model for one choice of adapted parameters.

    ``features(batch)``: what the adapted part reads (graph embeddings for ``head``, the batch
    otherwise); ``logits(params, features)``: the model's output with ``params`` in place of the
    adapted parameters (the others are the module's own).
    """

    def __init__(self, model: FewShotModel, adapt: str) -> None:
        if adapt not in ADAPT:
            raise ConfigError(f"adapt must be one of {', '.join(ADAPT)}, got {adapt!r}.")
        self.model, self.adapt = model, adapt
        self.module: nn.Module = model.head if adapt == "head" else model
        keep = {"head": lambda n: True, "encoder": lambda n: n.startswith("encoder."), "all": lambda n: True}[adapt]
        self.names = [n for n, _ in self.module.named_parameters() if keep(n)]

    def initial(self) -> Dict[str, Tensor]:
        own = dict(self.module.named_parameters())
        return {n: own[n] for n in self.names}

    def features(self, data: Batch) -> Features:
        return self.model.embed(data) if self.adapt == "head" else data

    def logits(self, params: Dict[str, Tensor], feats: Features, copy_buffers: bool = False) -> Tensor:
        """``copy_buffers``: run on copies of the module's buffers (BatchNorm's running statistics),
        as a call inside a ``torch.func`` transform must: it may not mutate a tensor it did not
        create. The copies' updates are dropped, so the inner loop's support batches normalise with
        their own statistics but leave the running ones to the outer loop's query batches."""
        if copy_buffers:
            params = {**{n: b.clone() for n, b in self.module.named_buffers()}, **params}
        return functional_call(self.module, params, (feats,)).view(-1)


def bce(logits: Tensor, labels: Tensor, pos_weight: Optional[float] = None) -> Tensor:
    weight = None if pos_weight is None else torch.tensor(float(pos_weight), dtype=logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weight)


def balanced_pos_weight(labels: Tensor) -> float:
    """negatives / positives of a batch (1 when one class is absent): both classes weigh the same."""
    pos = int(labels.sum())
    neg = int(labels.numel()) - pos
    return neg / pos if pos and neg else 1.0


def inner_loop(adapter: Adapter, feats: Features, labels: Tensor, steps: int, lr: float,
               first_order: bool = False, params: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
    """``steps`` SGD steps on the support loss, functionally; returns the adapted parameters.

    The support set is balanced (k positives, k negatives), so its loss is unweighted. With
    ``first_order`` the inner gradients are detached: the outer gradient is then the query-loss
    gradient at the adapted parameters (FOMAML), and no graph of the inner steps is kept.
    """
    params = adapter.initial() if params is None else params

    def support_loss(p: Dict[str, Tensor]) -> Tensor:
        return bce(adapter.logits(p, feats, copy_buffers=True), labels)

    for _ in range(steps):
        grads = grad(support_loss)(params)
        params = {n: p - lr * (grads[n].detach() if first_order else grads[n]) for n, p in params.items()}
    return params


# ----------------------------------------------------------------------------- meta-training


@dataclass
class MetaSettings:
    shots: int
    episodes: int  # outer steps
    tasks_per_episode: int  # 0 = every training task
    query_size: int
    inner_steps: int
    inner_lr: float
    first_order: bool
    adapt: str
    outer_lr_gnn: float
    outer_lr_head: float
    weight_decay: float = 0.0
    pos_weight: Optional[float] = None  # None: balance each query set (negatives / positives)
    grad_clip: float = 0.0


@dataclass
class Validation:
    """Model selection on a held-out meta-training task: ``score(model)`` every ``every`` outer
    steps (and before the first); the best-scoring weights are kept and restored at the end, and
    training stops after ``patience`` evaluations without a better score (0: never early).
    ``steps`` / ``scores`` are the curve; ``best_step`` the selected step."""

    score: Callable[[FewShotModel], float]
    every: int = 10
    patience: int = 0
    steps: List[int] = field(default_factory=list)
    scores: List[float] = field(default_factory=list)
    best_step: int = 0
    #: Called with the model at every check, its results kept in ``watched``; never used to select or stop.
    watch: Optional[Callable[[FewShotModel], Any]] = None
    watched: List[Any] = field(default_factory=list)

    def check(self, model: FewShotModel, step: int, best: Dict[str, Tensor]) -> bool:
        """Score the model after ``step`` outer steps, keep its weights in ``best`` if they are the
        best so far; True when training should stop."""
        value = float(self.score(model))
        if self.watch is not None:
            self.watched.append(self.watch(model))
        model.train()
        self.steps.append(step)
        self.scores.append(value)
        previous = [v for v in self.scores[:-1] if v == v]
        if value == value and (not previous or value > max(previous)):
            self.best_step = step
            best.clear()
            best.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        since = (len(self.steps) - 1 - self.steps.index(self.best_step))
        return self.patience > 0 and since >= self.patience


def outer_optimizer(model: FewShotModel, lr_gnn: float, lr_head: float, weight_decay: float = 0.0):
    return torch.optim.Adam([
        {"params": list(model.encoder.parameters()), "lr": lr_gnn},
        {"params": list(model.head.parameters()), "lr": lr_head},
    ], weight_decay=weight_decay)


def meta_train(model: FewShotModel, data: FewShotData, s: MetaSettings, seed: int,
               on_step: Optional[Callable[[int, float], None]] = None,
               validation: Optional[Validation] = None) -> List[float]:
    """MAML over the meta-training tasks only; returns the mean query loss of every outer step.
    With ``validation``, the weights of its best-scoring step are restored at the end."""
    tasks = data.train_tasks
    adapter = Adapter(model, s.adapt)
    opt = outer_optimizer(model, s.outer_lr_gnn, s.outer_lr_head, s.weight_decay)
    gen = episode_generator(seed, 7_919)
    per_step = len(tasks) if s.tasks_per_episode <= 0 else min(s.tasks_per_episode, len(tasks))
    losses = []
    best: Dict[str, Tensor] = {}
    model.train()
    stop = validation is not None and validation.check(model, 0, best)
    for step in range(s.episodes):
        if stop:
            break
        chosen = [tasks[i] for i in torch.randperm(len(tasks), generator=gen)[:per_step].tolist()]
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for task in chosen:
            ep = sample_episode(task, s.shots, s.query_size, gen)
            sup, qry = data.batch(ep.support_ids), data.batch(ep.query_ids)
            adapted = inner_loop(adapter, adapter.features(sup), ep.support_labels, s.inner_steps, s.inner_lr,
                                 s.first_order)
            yq = ep.query_labels
            weight = s.pos_weight if s.pos_weight is not None else balanced_pos_weight(yq)
            loss = bce(adapter.logits(adapted, adapter.features(qry)), yq, weight) / len(chosen)
            loss.backward()
            total += float(loss.detach())
        if s.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        opt.step()
        losses.append(total)
        if on_step is not None:
            on_step(step, total)
        done = step + 1
        if validation is not None and (done % validation.every == 0 or done == s.episodes):
            stop = validation.check(model, done, best)
    if best:
        model.load_state_dict(best)
    model.eval()
    return losses


# ----------------------------------------------------------------------------- test-time adaptation


def _fresh_linear(in_dim: int, gen: torch.Generator) -> Dict[str, Tensor]:
    """A new 1-output linear head, initialised like nn.Linear from ``gen``."""
    bound = 1.0 / in_dim ** 0.5
    return {"weight": (torch.rand(1, in_dim, generator=gen) * 2 - 1) * bound,
            "bias": (torch.rand(1, generator=gen) * 2 - 1) * bound}


class Adapted:
    """A model adapted to one support set: ``predict(batch)`` -> probabilities."""

    def __init__(self, adapter: Adapter, params: Dict[str, Tensor]) -> None:
        self.adapter, self.params = adapter, {n: p.detach() for n, p in params.items()}

    @torch.no_grad()
    def logits_from_features(self, feats: Features) -> Tensor:
        return self.adapter.logits(self.params, feats)

    @torch.no_grad()
    def predict(self, data: Batch) -> Tensor:
        return torch.sigmoid(self.logits_from_features(self.adapter.features(data)))


def adapt_to_support(model: FewShotModel, spec: AdaptSpec, support: Features, labels: Tensor,
                     gen: Optional[torch.Generator] = None) -> Adapted:
    """Adapt ``model`` (kept unchanged) to a labelled support set, as at meta-test.

    ``support`` is a ``Batch``, or for ``adapt='head'`` possibly precomputed graph embeddings.
    ``maml``: ``spec.steps`` SGD steps of the inner loop. ``finetune``: a fresh linear head
    (initialised from ``gen``) replaces the model's head, and Adam trains it, with the GIN too
    unless ``adapt='head'``, for ``spec.steps`` steps.
    """
    model.eval()
    adapter = Adapter(model, spec.adapt)
    if isinstance(support, Data) and spec.adapt == "head":
        with torch.no_grad():
            support = model.embed(support)
    if spec.method == "maml":
        with torch.no_grad():  # torch.func.grad still differentiates inside; no outer graph is kept
            params = inner_loop(adapter, support, labels, spec.steps, spec.lr, first_order=True)
        return Adapted(adapter, params)
    gen = gen if gen is not None else torch.Generator().manual_seed(0)
    head = {f"head.{k}" if spec.adapt != "head" else k: v for k, v in
            _fresh_linear(model.cfg.hidden, gen).items()}
    params = {**({} if spec.adapt == "head" else {n: p.detach().clone() for n, p in adapter.initial().items()
                                                    if not n.startswith("head.")}), **head}
    params = {n: p.requires_grad_(True) for n, p in params.items()}
    opt = torch.optim.Adam(list(params.values()), lr=spec.lr)
    for _ in range(spec.steps):
        opt.zero_grad(set_to_none=True)
        bce(adapter.logits(params, support), labels).backward()
        opt.step()
    return Adapted(adapter, params)


@torch.no_grad()
def embed_molecules(model: FewShotModel, molecules: Sequence[Data], batch_size: int = 256) -> Tensor:
    model.eval()
    out = [model.embed(Batch.from_data_list(molecules[i:i + batch_size]))
           for i in range(0, len(molecules), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.cfg.hidden)


@torch.no_grad()
def predict_molecules(adapted: Adapted, molecules: Sequence[Data], batch_size: int = 256) -> Tensor:
    return torch.cat([adapted.predict(Batch.from_data_list(molecules[i:i + batch_size]))
                      for i in range(0, len(molecules), batch_size)])
