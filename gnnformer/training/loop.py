"""The training loop: epochs, the learning-rate schedule, selection on validation, early stopping.

One call of :func:`train_one` trains one model on one split. The weights kept are those of the
epoch with the best validation score (ties: the lower validation loss); the test split is
evaluated once, with those weights.

With a ``state_path``, everything the next epoch depends on (weights, optimizer and schedule,
every random generator, the best weights so far, the history) is written there atomically after
every epoch, and a later call with the same ``state_key`` continues from it: a run killed at any
point and started again ends with the same numbers as one never interrupted.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch

from ..datasets import Split
from ..models import create_model
from ..tasks import Task
from .checkpoint import atomic_save
from .distributed import Context, context, device_for, gather, loss_weight, share, wrap
from .evaluation import Evaluator, Prepared
from .minibatch import NodePartitionLoader, train_partition_epoch
from .optim import build_optimizer, build_scheduler
from .runtime import resolve_device, restore_rng_state, rng_state, seed_everything
from .settings import ExperimentConfig


def train_epoch(model, opt, task: Task, loader, device: torch.device) -> float:
    """One pass of forward, backward and optimizer step over ``loader``'s batches; returns the
    mean training loss (over graphs, or over nodes for node tasks)."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        batch = batch.to(device)
        opt.zero_grad()
        loss = task.loss(model(batch), batch.y)
        loss.backward()
        opt.step()
        items = batch.num_nodes if task.level == "node" else batch.num_graphs
        total += loss.item() * items
        count += items
    return total / max(count, 1)


def train_shared_epoch(model, opt, task: Task, ev: Evaluator, idx: torch.Tensor, generator, ctx: Context,
                       device: torch.device) -> float:
    """``train_epoch`` on several processes: the epoch's global batches are drawn as one process
    would draw them; each process trains on its share of every batch, its loss weighted so that
    DDP's averaged gradient is that of the whole batch (``distributed.loss_weight``). A batch
    smaller than the number of processes is skipped by all. Returns the mean loss over all processes."""
    model.train()
    sizes = ev.prep.sizes[idx]
    total, count = 0.0, 0
    for positions in ev.train_batches(idx, generator):
        if len(positions) < ctx.world:
            continue
        mine = share(positions, ctx)
        per = (lambda ps: len(ps)) if task.level != "node" else (lambda ps: int(sizes[ps].sum()))
        batch = ev.collate(idx[mine]).to(device)
        opt.zero_grad()
        loss = task.loss(model(batch), batch.y)
        (loss * loss_weight(per(mine), per(positions), ctx)).backward()
        opt.step()
        total += loss.item() * per(mine)
        count += per(mine)
    sums = gather((total, count), ctx)
    return sum(t for t, _ in sums) / max(sum(c for _, c in sums), 1)


def _full_graph_step(model, opt, task: Task, data, train_idx: torch.Tensor) -> float:
    model.train()
    opt.zero_grad()
    loss = task.loss(model(data)[train_idx], data.y[train_idx])
    loss.backward()
    opt.step()
    return loss.item()


def read_state(path: Optional[Path], key: str) -> Optional[Dict[str, Any]]:
    """The saved state at ``path`` if it belongs to ``key`` (same settings, seed and split), else None."""
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a foreign or damaged file: the run starts afresh and overwrites it
        return None
    return state if isinstance(state, dict) and state.get("key") == key else None


def train_one(cfg: ExperimentConfig, prep: Prepared, split: Split, seed: int,
              on_epoch: Optional[Callable[[Dict[str, float]], None]] = None,
              state_path: Optional[Path] = None, state_key: str = ""):
    """Train one model; returns (best model, history, {split: metrics}) with best chosen on
    validation. ``state_path``: resume from / save to it after every epoch (module docstring)."""
    seed_everything(seed)
    device = device_for(resolve_device(cfg.device))
    ctx = context(device)
    task = prep.task
    model = create_model(cfg.model, **prep.model_cfg).to(device)
    trained = wrap(model, ctx, device)  # DistributedDataParallel under torchrun (distributed.py)
    opt = build_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay, cfg.grad_clip)
    schedule = build_scheduler(cfg.scheduler, opt, cfg.epochs, cfg.warmup_epochs)
    # Size buckets only where they save compute: they also make batches less random.
    ev = Evaluator(prep, cfg.batch_size, device, bucket=cfg.bucket and prep.dense_attention,
                   node_chunk=cfg.node_batch_size if prep.single_graph else 0, ctx=ctx)
    gen = torch.Generator().manual_seed(seed)
    partitions = NodePartitionLoader(prep.graphs[0], cfg.node_batch_size, split.train, generator=gen) \
        if prep.single_graph and cfg.node_batch_size else None
    whole = prep.graphs[0].to(device) if prep.single_graph and partitions is None else None

    best_state, best_key, best_epoch, history, first, finished = None, None, 0, [], 1, False
    saved = read_state(state_path, state_key)
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        gen.set_state(saved["generator"])
        restore_rng_state(saved["rng"])
        best_state, best_epoch, history = saved["best_state"], saved["best_epoch"], saved["history"]
        best_key, first, finished = tuple(saved["best_key"]), saved["epoch"] + 1, saved["finished"]
        for record in history:
            if on_epoch is not None:
                on_epoch(record)
    for epoch in range(first, cfg.epochs + 1):
        if finished:
            break
        lr = opt.param_groups[0]["lr"]
        if partitions is not None:
            model.train()
            train_loss = train_partition_epoch(trained, opt, task, partitions, device, ctx)
        elif whole is not None:
            train_loss = _full_graph_step(trained, opt, task, whole, split.train.to(device))
        elif ctx.active:
            train_loss = train_shared_epoch(trained, opt, task, ev, split.train, gen, ctx, device)
        else:
            train_loss = train_epoch(model, opt, task, ev.loader(split.train, shuffle=True, generator=gen), device)
        schedule.step()
        val = ev.evaluate(model, split.val)
        score = val[task.monitor]
        record = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "val_loss": val["loss"],
                  f"val_{task.monitor}": score}
        history.append(record)
        # Select on the monitored validation metric; equal scores go to the lower validation loss.
        key = (score if task.mode == "max" else -score, -val["loss"])
        if best_key is None or (not math.isnan(key[0]) and (math.isnan(best_key[0]) or key > best_key)):
            best_key, best_epoch = key, epoch
            best_state = copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(record)
        finished = bool(cfg.patience and epoch - best_epoch >= cfg.patience) or epoch == cfg.epochs
        if state_path is not None and ctx.main:
            atomic_save(state_path, {
                "key": state_key, "epoch": epoch, "finished": finished, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "schedule": schedule.state_dict(), "generator": gen.get_state(),
                "rng": rng_state(), "best_state": best_state, "best_key": list(best_key), "best_epoch": best_epoch,
                "history": history})
    model.load_state_dict(best_state)
    results = {name: ev.evaluate(model, idx) for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))}
    results["best_epoch"] = best_epoch
    return model, history, results
