"""The language-model side of GLEM: tokenise the node texts, train the classifier (gold labels, or
gold + pseudo-labels in an E-step), and infer logits and [CLS] embeddings for every node.

Inference results are cached on disk by content: the key is a SHA-256 of the model's weights,
the token ids (so the texts, the tokenizer and ``max_length``) and ``max_length``. A re-run with
the same weights and texts reads them back instead of running the LM again; any change to a
weight or a text is a new key.
"""
from __future__ import annotations

import copy
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
    """Token ids and attention masks of every node, padded to ``max_length``."""

    input_ids: Tensor
    attention_mask: Tensor
    max_length: int
    device: torch.device = torch.device("cpu")  # where batches go; the tensors stay on the CPU

    def on(self, device: torch.device) -> "Tokens":
        return Tokens(self.input_ids, self.attention_mask, self.max_length, torch.device(device))

    def batch(self, rows: Tensor) -> Tuple[Tensor, Tensor]:
        """The rows, trimmed to the longest text among them (padding costs time, not accuracy)."""
        mask = self.attention_mask[rows]
        width = max(1, int(mask.sum(dim=1).max()))
        return self.input_ids[rows, :width].to(self.device), mask[:, :width].to(self.device)


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> Tokens:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding="max_length", return_tensors="pt")
    return Tokens(enc["input_ids"].long(), enc["attention_mask"].long(), max_length)


def freeze_lower_layers(model, train_layers: int) -> None:
    """Train only the top ``train_layers`` encoder layers and the head (0 = everything).

    Frozen layers run forward without building an autograd graph, so a step costs little more
    than inference below the first trained layer.
    """
    if train_layers <= 0:
        for p in model.parameters():
            p.requires_grad_(True)
        return
    layers = _encoder_layers(model.encoder)
    trained = {id(p) for layer in layers[-train_layers:] for p in layer.parameters()}
    trained |= {id(p) for p in model.head.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)


def _encoder_layers(encoder) -> List[torch.nn.Module]:
    """The transformer blocks of a Hugging Face encoder (BERT-like ``encoder.layer`` or ``transformer.layer``)."""
    for path in ("encoder.layer", "transformer.layer", "layers", "layer"):
        obj = encoder
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.nn.ModuleList):
            return list(obj)
    raise ValueError(f"cannot find the layers of {type(encoder).__name__}; set lm_train_layers=0 to train all")


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
            ids, mask = tokens.batch(data.nodes[rows])
            logits, _ = model(ids, mask)
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
        ids, mask = tokens.batch(rows[order[start:start + batch_size]])
        logits, emb = model(ids, mask)
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

