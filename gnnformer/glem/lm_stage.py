"""The language-model side of GLEM: tokenise the node texts, train the classifier (gold labels, or
gold + pseudo-labels in an E-step), and infer logits and [CLS] embeddings for every node.

Inference results are cached on disk by content: the key is a SHA-256 of the model's weights,
the token ids (so the texts, the tokenizer and ``max_length``) and ``max_length``. A re-run with
the same weights and texts reads them back instead of running the LM again; any change to a
weight or a text is a new key.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..paths import cache_dir
from ..progress import Progress
from ..tasks.metrics import accuracy
from ..training.checkpoint import save_checkpoint
from ..training.optim import build_optimizer
from .pseudo import TrainingSet, mixed_loss

#: Bump when the cached content changes meaning.
CACHE_VERSION = 1


@dataclass
class Tokens:
    """Token ids and attention masks of every node, padded to ``max_length``; with ``hidden``,
    also the token states after the first ``start`` (frozen) encoder blocks."""

    input_ids: Tensor
    attention_mask: Tensor
    max_length: int
    device: torch.device = torch.device("cpu")  # where batches go; the tensors stay on the CPU
    hidden: Optional[Tensor] = None  # [N, max_length, H] (see frozen_states)
    start: int = 0

    def on(self, device: torch.device) -> "Tokens":
        return dataclasses.replace(self, device=torch.device(device))

    def batch(self, rows: Tensor) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """The rows, trimmed to the longest text among them (padding costs time, not accuracy)."""
        mask = self.attention_mask[rows]
        width = max(1, int(mask.sum(dim=1).max()))
        hidden = None if self.hidden is None else self.hidden[rows, :width].to(self.device)
        return self.input_ids[rows, :width].to(self.device), mask[:, :width].to(self.device), hidden

    def forward(self, model, rows: Tensor) -> Tuple[Tensor, Tensor]:
        """``model``'s logits and [CLS] embeddings of ``rows``, from the stored states when there are some."""
        ids, mask, hidden = self.batch(rows)
        return model(ids, mask, hidden=hidden, start=self.start)


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> Tokens:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding="max_length", return_tensors="pt")
    return Tokens(enc["input_ids"].long(), enc["attention_mask"].long(), max_length)


def freeze_lower_layers(model, train_layers: int) -> int:
    """Train only the top ``train_layers`` encoder blocks and the head (0 = everything); returns
    the number of frozen blocks (whose output :func:`frozen_states` can compute once)."""
    if train_layers <= 0:
        for p in model.parameters():
            p.requires_grad_(True)
        return 0
    layers = model.layers()
    trained = {id(p) for layer in layers[-train_layers:] for p in layer.parameters()}
    trained |= {id(p) for p in model.head.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    return max(0, len(layers) - train_layers)


def frozen_states(model, tokens: Tokens, blocks: int, batch_size: int, budget_mb: float,
                  progress: Optional[Progress] = None) -> Tuple[Tokens, str]:
    """``tokens`` with the states after the ``blocks`` frozen blocks of every node, computed once:
    every later LM step then runs only the trained blocks (on CiteSeer-TAG with 2 of MiniLM's 6
    blocks trained, an E-step costs about 0.6x and an inference pass about 0.35x of the full pass).

    The frozen blocks then run without dropout (their output is a fixed feature), which is the
    one difference from running them in every step. Skipped, with the reason returned, when the
    states would take more than ``budget_mb`` or when the split pass does not reproduce the full
    one on a few nodes (an encoder whose forward does more than embeddings -> blocks)."""
    n, length = tokens.input_ids.shape
    if blocks <= 0 or n == 0:
        return tokens, ""
    mb = n * length * model.hidden_size * 4 / 2**20
    if mb > budget_mb:
        return tokens, (f"the frozen blocks' states would take {mb:.0f} MB (> lm_state_cache_mb = {budget_mb:g}): "
                        "every LM step runs the whole encoder")
    was_training = model.training
    model.eval()
    try:
        probe = torch.arange(min(n, 4))
        ids, mask, _ = tokens.batch(probe)
        with torch.no_grad():
            full = model(ids, mask)[0]
            split = model(ids, mask, hidden=model.hidden_after(ids, mask, blocks), start=blocks)[0]
        if not torch.allclose(full, split, rtol=1e-4, atol=1e-4):
            return tokens, "the encoder cannot be run block by block: every LM step runs the whole encoder"
        hidden = torch.zeros(n, length, model.hidden_size)
        task = progress.add(f"LM frozen blocks (1-{blocks}) on {n} nodes", (n + batch_size - 1) // batch_size) \
            if progress is not None else None
        for s in range(0, n, batch_size):
            rows = torch.arange(s, min(n, s + batch_size))
            ids, mask, _ = tokens.batch(rows)
            hidden[rows, :ids.size(1)] = model.hidden_after(ids, mask, blocks).float().cpu()
            if task is not None:
                task.advance()
        if task is not None:
            task.done()
    finally:
        model.train(was_training)
    return dataclasses.replace(tokens, hidden=hidden, start=blocks), ""


@dataclass
class LMTrainSettings:
    epochs: int
    batch_size: int
    grad_accum: int
    lr: float
    weight_decay: float
    pl_weight: float
    infer_batch_size: int


def train_lm(model, tokens: Tokens, data: TrainingSet, s: LMTrainSettings, *, val: Tensor, y: Tensor,
             generator: torch.Generator, progress: Progress, label: str) -> Dict[str, float]:
    """Train on ``data`` for ``s.epochs`` epochs; after each, score validation accuracy and keep
    the best weights (reloaded at the end). Returns the best validation accuracy and its epoch."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer("adamw", params, s.lr, s.weight_decay)
    n = data.nodes.numel()
    steps = (n + s.batch_size - 1) // s.batch_size
    best = {"val_accuracy": -1.0, "epoch": 0}
    best_state = None
    task = progress.add(f"{label}: LM training on {n} nodes ({data.num_pseudo} pseudo-labelled)", s.epochs * steps)
    for epoch in range(s.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        optimizer.zero_grad()
        for step in range(steps):
            rows = order[step * s.batch_size:(step + 1) * s.batch_size]
            logits, _ = tokens.forward(model, data.nodes[rows])
            targets, is_gold = data.targets[rows].to(logits.device), data.is_gold[rows].to(logits.device)
            loss = mixed_loss(logits, targets, is_gold, s.pl_weight) / s.grad_accum
            loss.backward()
            if (step + 1) % s.grad_accum == 0 or step == steps - 1:
                optimizer.step()
                optimizer.zero_grad()
            task.advance(status=f"epoch {epoch + 1} loss {loss.item() * s.grad_accum:.3f}")
        if s.epochs > 1:  # with one epoch there is nothing to choose between
            logits, _ = infer_lm(model, tokens, s.infer_batch_size, rows=val)
            acc = accuracy(logits, y[val])
            if acc > best["val_accuracy"]:
                best, best_state = {"val_accuracy": acc, "epoch": epoch + 1}, copy.deepcopy(model.state_dict())
    task.done()
    if best_state is not None:
        model.load_state_dict(best_state)
    return best


@torch.no_grad()
def infer_lm(model, tokens: Tokens, batch_size: int, rows: Optional[Tensor] = None,
             progress: Optional[Progress] = None, label: str = "") -> Tuple[Tensor, Tensor]:
    """``(logits, cls_embeddings)`` of ``rows`` (all nodes by default), in eval mode."""
    model.eval()
    rows = torch.arange(tokens.input_ids.size(0)) if rows is None else rows
    # Sorted by length so each batch pads little; results go back to the rows' order.
    lengths = tokens.attention_mask[rows].sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    task = progress.add(f"{label}: LM inference on {rows.numel()} nodes", (rows.numel() + batch_size - 1) // batch_size) \
        if progress is not None else None
    logits_out, emb_out = [], []
    for start in range(0, rows.numel(), batch_size):
        logits, emb = tokens.forward(model, rows[order[start:start + batch_size]])
        logits_out.append(logits.float().cpu())
        emb_out.append(emb.float().cpu())
        if task is not None:
            task.advance()
    if task is not None:
        task.done()
    logits, emb = torch.cat(logits_out), torch.cat(emb_out)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel())
    return logits[inverse], emb[inverse]


def content_key(model, tokens: Tokens) -> str:
    """SHA-256 of the weights (names, shapes, values), the token ids and masks, and max_length."""
    h = hashlib.sha256(f"glem-lm-cache/{CACHE_VERSION}/max_length={tokens.max_length}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    h.update(tokens.input_ids.numpy().tobytes())
    h.update(tokens.attention_mask.numpy().tobytes())
    return h.hexdigest()


def cache_path(key: str):
    return cache_dir() / "glem" / f"lm-{key[:32]}.pt"


def cached_infer(model, tokens: Tokens, batch_size: int, *, use_cache: bool, progress: Optional[Progress] = None,
                 label: str = "") -> Tuple[Tensor, Tensor, bool]:
    """``(logits, embeddings, hit)``: from the cache when this content was inferred before."""
    if not use_cache:
        return (*infer_lm(model, tokens, batch_size, progress=progress, label=label), False)
    key = content_key(model, tokens)
    path = cache_path(key)
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored.get("key") == key:
                return stored["logits"], stored["embeddings"], True
        except Exception:  # a truncated or foreign file is recomputed, then overwritten
            pass
    logits, emb = infer_lm(model, tokens, batch_size, progress=progress, label=label)
    save_checkpoint(path, {"key": key, "logits": logits, "embeddings": emb})  # atomic: a kill leaves no half file
    return logits, emb, False

