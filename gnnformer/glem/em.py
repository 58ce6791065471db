"""GLEM's schedule (Zhao et al., "Learning on Large-scale Text-attributed Graphs via Variational
Inference", ICLR 2023): pre-train both models, then alternate.

1. LM pre-training on the gold training labels; LM inference: logits and [CLS] embeddings of
   every node (iteration 0 of GLEM-LM: the LM alone).
2. GNN pre-training on the gold labels over those embeddings (iteration 0 of GLEM-GNN: the GNN
   on frozen LM embeddings).
3. ``em_iterations`` times, LM-first (default) or GNN-first:
   E-step: the LM trains on gold + the GNN's pseudo-labels, then infers every node again;
   M-step: a fresh GNN trains on the latest embeddings with gold + the LM's pseudo-labels.

Each model is scored after every iteration; GLEM-LM and GLEM-GNN are each reported at the
iteration with the best validation accuracy (iteration >= 1), separately, with no ensemble.
Test accuracy never chooses anything.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from ..progress import Progress
from ..tasks.metrics import accuracy
from .gnn_stage import GNNSettings, gnn_input, train_gnn
from .lm_stage import LMTrainSettings, Tokens, cached_infer, train_lm
from .pseudo import candidates, training_set
from .settings import GLEMConfig


@dataclass
class Stage:
    name: str  # lm-pretrain, lm-infer, gnn-pretrain, lm-train, gnn-train
    iteration: int  # 0 = pre-training
    seconds: float
    info: Dict[str, Any] = field(default_factory=dict)


@dataclass
class EMResult:
    stages: List[Stage]
    lm: List[Dict[str, float]]  # per iteration (0 = the LM alone): val/test accuracy
    gnn: List[Dict[str, float]]  # per iteration (0 = the GNN on frozen LM embeddings)
    best_lm: int  # iteration of GLEM-LM (best validation among iterations >= 1; 0 without EM)
    best_gnn: int
    lm_state: Dict[str, Tensor]  # GLEM-LM's weights at best_lm
    notes: List[str]


def best_iteration(scores: List[Dict[str, float]]) -> int:
    """The EM iteration (>= 1) with the highest validation accuracy, the earliest on ties; 0 without EM."""
    if len(scores) <= 1:
        return 0
    return max(range(1, len(scores)), key=lambda i: (scores[i]["val"], -i))


class GLEMRun:
    """One seed of GLEM on one split; ``run()`` performs the schedule and returns an `EMResult`."""

    def __init__(self, cfg: GLEMConfig, model, tokens: Tokens, y: Tensor, edge_index: Tensor, num_classes: int,
                 split, progress: Progress, seed: int = 0) -> None:
        self.cfg, self.model, self.tokens, self.y = cfg, model, tokens, y
        self.edge_index, self.num_classes, self.split, self.progress = edge_index, num_classes, split, progress
        self.generator = torch.Generator().manual_seed(seed)
        self.pool = candidates(y.numel(), split.train, split.val, split.test, cfg.pseudo)
        self.stages: List[Stage] = []
        self.lm_scores: List[Dict[str, float]] = []
        self.gnn_scores: List[Dict[str, float]] = []
        self.lm_states: List[Dict[str, Tensor]] = []
        self.lm_logits = self.embeddings = self.gnn_logits = None
        self.notes: List[str] = []
        if cfg.em_iterations and self.pool.numel() == 0:
            self.notes.append(_no_pool_note(cfg.pseudo))

    # -- stages -----------------------------------------------------------------------------------
    def _timed(self, name: str, iteration: int, fn, **info) -> Any:
        start = time.perf_counter()
        out = fn()
        self.stages.append(Stage(name, iteration, time.perf_counter() - start, info))
        return out

    def _score(self, logits: Tensor) -> Dict[str, float]:
        return {"val": accuracy(logits[self.split.val], self.y[self.split.val]),
                "test": accuracy(logits[self.split.test], self.y[self.split.test])}

    def _lm_settings(self, epochs: int) -> LMTrainSettings:
        c = self.cfg
        return LMTrainSettings(epochs, c.lm_batch_size, c.grad_accum, c.lm_lr, c.lm_weight_decay, c.pl_weight,
                               c.infer_batch_size)

    def _training_set(self, teacher: Optional[Tensor]):
        c = self.cfg
        return training_set(self.split.train, self.y, self.num_classes, self.pool, teacher, ratio=c.pl_ratio,
                            fraction=c.pl_filter, temperature=c.temperature, generator=self.generator)

    def lm_step(self, iteration: int) -> None:
        """Train the LM (gold only at iteration 0, else gold + the GNN's pseudo-labels), then infer every node."""
        teacher = self.gnn_logits if iteration else None
        data = self._training_set(teacher)
        epochs = self.cfg.lm_em_epochs if iteration else self.cfg.lm_epochs
        label = f"iteration {iteration}" if iteration else "pre-training"
        name = "lm-train" if iteration else "lm-pretrain"
        if epochs:
            self._timed(name, iteration, lambda: train_lm(
                self.model, self.tokens, data, self._lm_settings(epochs), val=self.split.val, y=self.y,
                generator=self.generator, progress=self.progress, label=label),
                nodes=data.nodes.numel(), pseudo=data.num_pseudo)
        hit = {}

        def infer():
            logits, emb, hit["cache"] = cached_infer(self.model, self.tokens, self.cfg.infer_batch_size,
                                                     use_cache=self.cfg.cache, progress=self.progress, label=label)
            return logits, emb

        self.lm_logits, self.embeddings = self._timed("lm-infer", iteration, infer)
        self.stages[-1].info["cache_hit"] = hit["cache"]
        self.lm_scores.append(self._score(self.lm_logits))
        self.lm_states.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        if len(self.lm_states) > 1:  # keep only iteration 0's and the best so far: MiniLM weights are 90 MB
            best = best_iteration(self.lm_scores)
            self.lm_states = [s if i in (0, best) else None for i, s in enumerate(self.lm_states)]

    def gnn_step(self, iteration: int) -> None:
        """Train a fresh GNN (gold only at iteration 0, else gold + the LM's pseudo-labels)."""
        c = self.cfg
        teacher = self.lm_logits if iteration else None
        data = self._training_set(teacher)
        lm_input = self.lm_logits if (c.label_input and iteration) else None
        x = gnn_input(self.embeddings, lm_input, self.split.train, self.y, c.temperature)
        s = GNNSettings(c.gnn, dict(c.model_args), c.gnn_epochs, c.patience, c.gnn_lr, c.gnn_weight_decay, c.pl_weight)
        label = f"iteration {iteration}" if iteration else "pre-training"
        logits, best = self._timed("gnn-train" if iteration else "gnn-pretrain", iteration, lambda: train_gnn(
            x, self.edge_index, self.num_classes, data, s, val=self.split.val, y=self.y, progress=self.progress,
            label=label), nodes=data.nodes.numel(), pseudo=data.num_pseudo)
        self.stages[-1].info["best_epoch"] = best["epoch"]
        self.gnn_logits = logits
        self.gnn_scores.append(self._score(logits))

    # -- schedule ---------------------------------------------------------------------------------
    def pretrain(self) -> "GLEMRun":
        """Iteration 0: the LM on the gold labels, then the GNN over its embeddings."""
        self.lm_step(0)
        self.gnn_step(0)
        return self

    def iterate(self) -> EMResult:
        """The EM iterations after :meth:`pretrain`, and the result."""
        for iteration in range(1, self.cfg.em_iterations + 1):
            if self.cfg.order == "gnn-first":
                self.gnn_step(iteration)
                self.lm_step(iteration)
            else:
                self.lm_step(iteration)
                self.gnn_step(iteration)
        best_lm = best_iteration(self.lm_scores)
        return EMResult(self.stages, self.lm_scores, self.gnn_scores, best_lm, best_iteration(self.gnn_scores),
                        copy.copy(self.lm_states[best_lm]), self.notes)

    def run(self) -> EMResult:
        return self.pretrain().iterate()

    def fork(self, cfg: GLEMConfig) -> "GLEMRun":
        """A run that continues from this one's pre-training under ``cfg`` (other pseudo-labels,
        iterations or GNN), so that settings compared on one seed share their starting point.
        The LM is copied; with another GNN, the GNN's pre-training is redone on the same embeddings."""
        other = copy.copy(self)
        other.cfg, other.model = cfg, copy.deepcopy(self.model)
        other.generator = torch.Generator().manual_seed(0)
        other.generator.set_state(self.generator.get_state())
        other.pool = candidates(self.y.numel(), self.split.train, self.split.val, self.split.test, cfg.pseudo)
        other.stages, other.lm_scores, other.lm_states = list(self.stages), list(self.lm_scores), list(self.lm_states)
        other.gnn_scores, other.notes = list(self.gnn_scores), []
        if cfg.em_iterations and other.pool.numel() == 0:
            other.notes.append(_no_pool_note(cfg.pseudo))
        if (cfg.gnn, cfg.model_args, cfg.label_input) != (self.cfg.gnn, self.cfg.model_args, self.cfg.label_input):
            other.stages = [st for st in other.stages if st.name != "gnn-pretrain"]
            other.gnn_scores = []
            other.gnn_step(0)
        return other


def _no_pool_note(pseudo: str) -> str:
    return (f"pseudo={pseudo}: no node is outside the training{'' if pseudo == 'transductive' else ', validation and test'} "
            "sets, so every E- and M-step trains on the gold labels alone.")
