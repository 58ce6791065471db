"""The experiment runner: dataset -> encodings -> splits -> (train, select on validation, test) per run.

Model selection and early stopping look only at the validation split; the test split is
evaluated once per run, with the weights that scored best on validation.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import yaml
from torch_geometric.loader import DataLoader

from .. import __version__
from ..datasets import (GraphDataset, Split, load_dataset, per_class_split, planetoid_public_split, random_split,
                        stratified_kfold)
from ..config import coerce_fields, parse_scalar
from ..errors import ConfigError
from ..models import create_model, model_config
from ..datasets.encodings import precompute_encodings
from ..registry import MODELS
from ..tasks import Task, get_task
from .checkpoint import save_checkpoint
from .plots import plot_curves
from .minibatch import NodePartitionLoader, full_graph_outputs, train_partition_epoch
from .sampler import SizeBucketSampler


@dataclass
class ExperimentConfig:
    model: str = "gps"
    dataset: str = "MUTAG"
    data_root: Optional[str] = None
    epochs: int = 100
    seed: int = 0
    folds: int = 0  # k > 1: stratified k-fold cross-validation (classification of graphs)
    runs: int = 1  # without folds: independent runs with seeds seed, seed+1, ...
    split: str = "auto"  # auto | random (80/10/10) | public (Planetoid masks, or the dataset's fixed split) | per_class
    per_class: int = 20  # split=per_class (one graph): training nodes per class, drawn per run seed
    num_val: int = 500  # split=per_class: validation nodes, drawn from the rest
    num_test: Optional[int] = 1000  # split=per_class: test nodes, drawn from the rest after validation (null: all of it)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    patience: int = 0  # stop after this many epochs without validation improvement (0 = never)
    device: str = "cpu"  # cpu | cuda | auto
    # Batch graphs of similar size together (dense attention only). Off by default: attention already
    # pads per size group inside a random batch, and same-size batches cost accuracy where size
    # predicts the label (NCI1).
    bucket: bool = False
    train_fraction: float = 1.0  # train on a seeded, class-stratified subset of the training split
    # One large graph (node task): train on random node partitions of this size (induced subgraphs),
    # evaluate the full graph in chunks of this many nodes; 0 = the whole graph every step.
    node_batch_size: int = 0
    model_args: Dict[str, Any] = field(default_factory=dict)
    dataset_args: Dict[str, Any] = field(default_factory=dict)  # the dataset's own options, e.g. lags, k

    @classmethod
    def field_names(cls) -> List[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}.")
        if self.folds == 1 or self.folds < 0:
            raise ConfigError(f"folds must be 0 (no cross-validation) or at least 2, got {self.folds}.")
        if self.runs < 1:
            raise ConfigError(f"runs must be at least 1, got {self.runs}.")
        if self.split not in ("auto", "random", "public", "per_class"):
            raise ConfigError(f"split must be auto, random, public or per_class, got {self.split!r}.")
        if self.per_class < 1 or self.num_val < 1 or (self.num_test is not None and self.num_test < 1):
            raise ConfigError("per_class and num_val must be at least 1, and num_test at least 1 or null (the rest).")
        if self.lr <= 0 or self.batch_size < 1 or self.patience < 0:
            raise ConfigError("lr must be positive, batch_size at least 1 and patience not negative.")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"device must be cpu, cuda or auto, got {self.device!r}.")
        if self.node_batch_size < 0:
            raise ConfigError(f"node_batch_size must be 0 (full graph) or positive, got {self.node_batch_size}.")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ConfigError(f"train_fraction must be in (0, 1], got {self.train_fraction}.")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device=cuda was asked for, but torch sees no CUDA device here.")
        MODELS.get(self.model)  # unknown model -> ConfigError listing the known ones

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_mapping(values: Dict[str, Any]) -> ExperimentConfig:
    """Build a config from a YAML mapping, refusing unknown keys and wrongly typed values."""
    known = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"Unknown setting(s) {', '.join(unknown)}. Known settings: {', '.join(known)}.")
    if "model_args" in values and not isinstance(values["model_args"], dict):
        raise ConfigError(f"model_args must be a mapping of model options, got {values['model_args']!r}.")
    if "dataset_args" in values and not isinstance(values["dataset_args"], dict):
        raise ConfigError(f"dataset_args must be a mapping of dataset options, got {values['dataset_args']!r}.")
    cleaned = coerce_fields(ExperimentConfig, values, "experiment")
    cfg = ExperimentConfig(**cleaned)
    cfg.validate()
    return cfg


def apply_overrides(values: Dict[str, Any], overrides: List[str]) -> Dict[str, Any]:
    """``key=value`` settings on the command line; ``model.<option>=value`` sets a model option and
    ``dataset.<option>=value`` a dataset option.

    Values are parsed as YAML scalars, so ``lr=1e-3`` is a number and ``model.local=gine`` a string.
    """
    values = copy.deepcopy(values)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Override {item!r} is not of the form key=value (e.g. lr=0.001 or model.hidden=64).")
        value = parse_scalar(raw)
        if key.startswith("model."):
            values.setdefault("model_args", {})[key[len("model."):]] = value
        elif key.startswith("dataset."):
            values.setdefault("dataset_args", {})[key[len("dataset."):]] = value
        else:
            values[key] = value
    return values


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Prepared:
    """A dataset with its encodings computed, ready for a given model config."""

    dataset: GraphDataset
    task: Task
    graphs: list
    model_cfg: Dict[str, Any]
    encodings: Dict[str, Any]

    @property
    def single_graph(self) -> bool:
        """Node classification on one graph (Planetoid): splits are node masks, no batching.

        Node tasks over many graphs (e.g. CLUSTER) are split over graphs and batched like graph
        tasks, with one output, loss term and metric entry per node.
        """
        return self.task.level == "node" and len(self.graphs) == 1

    @property
    def dense_attention(self) -> bool:
        """Whether the model pads every batch to its largest graph (complete-graph attention), so
        that batching graphs of similar size saves compute. Message-passing models do not."""
        return self.model_cfg.get("attention_graph") == "complete"

    @cached_property
    def sizes(self) -> torch.Tensor:
        """Number of nodes of every graph (long ``[len(graphs)]``)."""
        return torch.tensor([int(g.num_nodes) for g in self.graphs], dtype=torch.long)


def prepare(cfg: ExperimentConfig, dataset: Optional[GraphDataset] = None, progress: bool = False) -> Prepared:
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_root, cfg.dataset_args)
    task = get_task(ds.task)
    mcfg = model_config(
        cfg.model,
        **{"in_channels": ds.num_features, "out_channels": ds.out_dim, "level": task.level,
           "edge_dim": ds.num_edge_features, **cfg.model_args},
    )
    enc = {k: v for k, v in MODELS.get(cfg.model).encodings(mcfg).items() if v}
    graphs = precompute_encodings(ds.graphs, progress=progress, **enc) if enc else list(ds.graphs)
    return Prepared(ds, task, graphs, mcfg.to_dict(), enc)


def make_splits(cfg: ExperimentConfig, prep: Prepared) -> List[Tuple[int, Split]]:
    """(seed, split) for every run: k folds, or ``runs`` seeded splits.

    With ``train_fraction < 1`` each run trains on a subset of its training split (see
    :func:`train_subset`); validation and test stay as they are.
    """
    splits = _full_splits(cfg, prep)
    if cfg.train_fraction < 1.0:
        splits = [(seed, Split(train_subset(split.train, cfg.train_fraction, seed, _class_labels(prep, split.train)),
                               split.val, split.test)) for seed, split in splits]
    return splits


def _full_splits(cfg: ExperimentConfig, prep: Prepared) -> List[Tuple[int, Split]]:
    ds, task = prep.dataset, prep.task
    if prep.single_graph:
        data = prep.graphs[0]
        if cfg.folds:
            raise ConfigError("folds (cross-validation) is for graph datasets; node tasks use split=public or random.")
        if cfg.split == "per_class":
            if ds.task != "node_classification":
                raise ConfigError(f"split=per_class needs class labels; {ds.name} is {ds.task}.")
            return [(cfg.seed + r, per_class_split(data.y, cfg.per_class, cfg.seed + r, cfg.num_val, cfg.num_test))
                    for r in range(cfg.runs)]
        use_public = cfg.split in ("auto", "public") and hasattr(data, "train_mask")
        if cfg.split == "public" and not hasattr(data, "train_mask"):
            raise ConfigError(f"{ds.name} has no public split; use split=random.")
        return [(cfg.seed + r, planetoid_public_split(data) if use_public else random_split(data.num_nodes, cfg.seed + r))
                for r in range(cfg.runs)]
    # A dataset that prescribes its split over graphs (``fixed_split``, e.g. CLUSTER's
    # 10000/1000/1000) is trained on it with split=auto or split=public.
    public = ds.fixed_split
    if cfg.node_batch_size:
        raise ConfigError("node_batch_size is for node tasks on one large graph; batches of graphs use batch_size.")
    if cfg.split == "per_class":
        raise ConfigError("split=per_class is for node classification on one graph (e.g. Cora, digits).")
    if cfg.split == "public" and public is None:
        raise ConfigError(f"{ds.name} has no public split; use split=random or folds=K.")
    if cfg.folds:
        if ds.task != "graph_classification":
            raise ConfigError("Stratified folds need class labels; use runs=N for regression, multi-task or node data.")
        return [(cfg.seed + i, s) for i, s in enumerate(stratified_kfold(ds.labels, cfg.folds, cfg.seed))]
    if public is not None and cfg.split in ("auto", "public"):
        return [(cfg.seed + r, public) for r in range(cfg.runs)]
    return [(cfg.seed + r, random_split(len(prep.graphs), cfg.seed + r)) for r in range(cfg.runs)]


def _class_labels(prep: Prepared, idx: torch.Tensor) -> Optional[torch.Tensor]:
    """Class label of every item in ``idx`` (graphs, or nodes of a single graph); ``None`` when
    the task has no single class per item (regression, multi-task, nodes spread over many graphs)."""
    if prep.single_graph:
        return prep.graphs[0].y.view(-1)[idx]
    if prep.dataset.task != "graph_classification":
        return None
    labels = prep.dataset.labels
    if labels.numel() != len(prep.graphs):
        labels = torch.cat([g.y.view(-1)[:1] for g in prep.graphs])
    return labels.view(-1)[idx]


def train_subset(train: torch.Tensor, fraction: float, seed: int, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A seeded subset of about ``fraction`` of ``train`` (sorted), for low-resource training.

    With ``labels`` (one class per item of ``train``) the subset is stratified: each class keeps
    ``round(fraction * count)`` of its items, at least one. Without, ``round(fraction * len)``
    items (at least one) are drawn at random. Same ``seed``, same subset.
    """
    train = train.to(torch.long)
    if fraction >= 1.0 or train.numel() == 0:
        return train
    gen = torch.Generator().manual_seed(int(seed))

    def take(members: torch.Tensor) -> torch.Tensor:
        k = max(1, int(fraction * members.numel() + 0.5))
        return members[torch.randperm(members.numel(), generator=gen)[:k]]

    if labels is None:
        chosen = take(train)
    else:
        labels = labels.view(-1)
        chosen = torch.cat([take(train[labels == c]) for c in torch.unique(labels)])
    return chosen.sort().values


class Evaluator:
    """Runs a model over one split and returns (metrics incl. loss, raw outputs).

    Outputs (and targets) always come back in the order of the given indices -- per graph, or per
    node of those graphs in turn -- whatever order the batches ran in. With ``bucket`` the
    graphs are batched sorted by size (less padding); without, in the given order.
    """

    def __init__(self, prep: Prepared, batch_size: int, device: torch.device, bucket: bool = True,
                 node_chunk: int = 0) -> None:
        self.prep, self.batch_size, self.device, self.bucket = prep, batch_size, device, bucket
        self.node_chunk = node_chunk  # one graph: full-graph inference in chunks of this many nodes (0: at once)

    def loader(self, idx: torch.Tensor, shuffle: bool = False, generator=None):
        """Batches of the graphs ``idx``: for training (``shuffle``: size-bucketed with ``bucket``,
        else shuffled at random), or in ``batch_order(idx)`` order."""
        graphs = [self.prep.graphs[i] for i in idx.tolist()]
        if shuffle and self.bucket:
            sampler = SizeBucketSampler(self.prep.sizes[idx], self.batch_size, generator=generator)
            return DataLoader(graphs, batch_sampler=sampler)
        if shuffle:
            return DataLoader(graphs, batch_size=self.batch_size, shuffle=True, generator=generator)
        return DataLoader(graphs, batch_sampler=[b.tolist() for b in self.batch_order(idx)])

    def batch_order(self, idx: torch.Tensor) -> List[torch.Tensor]:
        """Evaluation batches as positions into ``idx``: sorted by size with ``bucket``, else in order."""
        if self.bucket:
            return SizeBucketSampler(self.prep.sizes[idx], self.batch_size, shuffle=False).batches()
        return list(torch.arange(len(idx)).split(self.batch_size))

    @torch.no_grad()
    def outputs(self, model, idx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        model.eval()
        if self.prep.single_graph and self.node_chunk:
            data = self.prep.graphs[0]
            return full_graph_outputs(model, data, self.node_chunk, self.device)[idx], data.y[idx].cpu()
        if self.prep.single_graph:
            data = self.prep.graphs[0].to(self.device)
            return model(data)[idx].cpu(), data.y[idx].cpu()
        idx = torch.as_tensor(idx, dtype=torch.long)
        order = self.batch_order(idx)
        outs, ys = [], []
        graphs = [self.prep.graphs[i] for i in idx.tolist()]
        for batch in DataLoader(graphs, batch_sampler=[b.tolist() for b in order]):
            batch = batch.to(self.device)
            outs.append(model(batch).cpu())
            ys.append(batch.y.cpu())
        if not outs:
            raise ValueError("Cannot evaluate on an empty split.")
        out, y = torch.cat(outs), torch.cat(ys)
        ran = torch.cat(order)  # ran[r] = position (in idx) of the r-th graph evaluated
        rows = _restore_order(ran, self.prep.sizes[idx][ran] if self.prep.task.level == "node" else None)
        return (out, y) if rows is None else (out[rows], y[rows])

    def evaluate(self, model, idx: torch.Tensor) -> Dict[str, float]:
        out, y = self.outputs(model, idx)
        res = self.prep.task.metrics(out, y)
        res["loss"] = self.prep.task.loss(out, y).item()
        return res


def _restore_order(ran: torch.Tensor, sizes: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
    """Row permutation putting outputs of graphs evaluated in order ``ran`` back in position order.

    ``sizes`` (nodes of each evaluated graph, in evaluation order): node-level outputs, whose rows
    come in blocks of ``sizes[r]`` per graph. ``None`` when the order is already right.
    """
    if bool((ran == torch.arange(ran.numel())).all()):
        return None
    inv = torch.argsort(ran)  # inv[p] = when position p was evaluated
    if sizes is None:
        return inv
    start = torch.cumsum(sizes, 0) - sizes  # first row of every evaluated graph
    counts = sizes[inv]
    first_out = torch.cumsum(counts, 0) - counts
    within = torch.arange(int(counts.sum())) - torch.repeat_interleave(first_out, counts)
    return torch.repeat_interleave(start[inv], counts) + within


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


def train_one(cfg: ExperimentConfig, prep: Prepared, split: Split, seed: int,
              on_epoch: Optional[Callable[[Dict[str, float]], None]] = None):
    """Train one model; returns (best model, history, {split: metrics}) with best chosen on validation."""
    seed_everything(seed)
    device = resolve_device(cfg.device)
    task = prep.task
    model = create_model(cfg.model, **prep.model_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Size buckets only where they save compute: they also make batches less random.
    ev = Evaluator(prep, cfg.batch_size, device, bucket=cfg.bucket and prep.dense_attention,
                   node_chunk=cfg.node_batch_size if prep.single_graph else 0)
    gen = torch.Generator().manual_seed(seed)
    partitions = NodePartitionLoader(prep.graphs[0], cfg.node_batch_size, split.train, generator=gen) \
        if prep.single_graph and cfg.node_batch_size else None

    best_state, best_key, best_epoch, history = None, None, 0, []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        if partitions is not None:
            train_loss = train_partition_epoch(model, opt, task, partitions, device)
        elif prep.single_graph:
            data = prep.graphs[0].to(device)
            opt.zero_grad()
            loss = task.loss(model(data)[split.train.to(device)], data.y[split.train.to(device)])
            loss.backward()
            opt.step()
            train_loss = loss.item()
        else:
            train_loss = train_epoch(model, opt, task, ev.loader(split.train, shuffle=True, generator=gen), device)
        val = ev.evaluate(model, split.val)
        score = val[task.monitor]
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"], f"val_{task.monitor}": score}
        history.append(record)
        # Select on the monitored validation metric; equal scores go to the lower validation loss.
        key = (score if task.mode == "max" else -score, -val["loss"])
        if best_key is None or (not math.isnan(key[0]) and (math.isnan(best_key[0]) or key > best_key)):
            best_key, best_epoch = key, epoch
            best_state = copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(record)
        if cfg.patience and epoch - best_epoch >= cfg.patience:
            break
    model.load_state_dict(best_state)
    results = {name: ev.evaluate(model, idx) for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))}
    results["best_epoch"] = best_epoch
    return model, history, results


def summarise(per_run: List[Dict[str, Any]]) -> Dict[str, Any]:
    """{'test_accuracy': {'mean', 'std', 'values'}, ...} over runs/folds (std: population, ddof=0).

    Undefined values (NaN) are left out of mean/std and written as null.
    """
    summary: Dict[str, Any] = {}
    for split in ("train", "val", "test"):
        for metric in per_run[0][split]:
            vals = [r[split][metric] for r in per_run]
            arr = np.array(vals, dtype=float)
            defined = arr[~np.isnan(arr)]  # e.g. ROC-AUC of a split holding one class only
            summary[f"{split}_{metric}"] = {
                "mean": float(defined.mean()) if defined.size else None,
                "std": float(defined.std()) if defined.size else None,
                "values": [None if math.isnan(v) else v for v in vals],
            }
    return summary


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path, progress: bool = True,
                   dataset: Optional[GraphDataset] = None) -> Dict[str, Any]:
    """Train every run/fold, write metrics.json, config.yaml, best.pt and curves.png into ``out_dir``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prep = prepare(cfg, dataset, progress=progress)
    splits = make_splits(cfg, prep)
    monitor = prep.task.monitor

    per_run, histories, best = [], [], None
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        for run, (seed, split) in enumerate(splits):
            label = f"{cfg.model} on {prep.dataset.name} " + (f"fold {run + 1}/{len(splits)}" if cfg.folds else f"run {run + 1}/{len(splits)}")
            tid = bar.add_task(label, total=cfg.epochs, status="")

            def tick(rec, tid=tid):
                bar.update(tid, advance=1, status=f"loss {rec['train_loss']:.3f}  val {monitor} {rec[f'val_{monitor}']:.3f}")

            model, hist, res = train_one(cfg, prep, split, seed, on_epoch=tick)
            bar.update(tid, completed=cfg.epochs)
            per_run.append(res)
            histories.append(hist)
            score = res["val"][monitor]
            if best is None or prep.task.better(score, best[0]):
                best = (score, run, model, split, seed)

    summary = summarise(per_run)
    _, best_run, best_model, best_split, best_seed = best
    metrics = {"model": cfg.model, "dataset": prep.dataset.name, "task": prep.task.name, "monitor": monitor,
               "protocol": _protocol(cfg, prep), "runs": len(per_run), "best_run": best_run,
               "notes": list(prep.dataset.notes), **summary,
               "per_run": [{"seed": s, **r} for (s, _), r in zip(splits, per_run)]}
    (out / "metrics.json").write_text(json.dumps(_nan_to_none(metrics), indent=2, default=_json_default))
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    save_checkpoint(out / "best.pt", {
        "model": cfg.model, "model_config": prep.model_cfg, "state_dict": best_model.cpu().state_dict(),
        "schema": prep.dataset.schema.to_dict(), "task": prep.task.name, "dataset": prep.dataset.name,
        "encodings": prep.encodings, "experiment": cfg.to_dict(),
        "split": {k: getattr(best_split, k).tolist() for k in ("train", "val", "test")},
        "metrics": per_run[best_run], "seed": best_seed, "version": __version__,
    })
    plot_curves(histories, monitor, out / "curves.png", title=f"{cfg.model} on {prep.dataset.name}")
    return metrics


def _protocol(cfg: ExperimentConfig, prep: Prepared) -> str:
    low = (f"; training on a seeded {cfg.train_fraction:g} of each training split (class-stratified for "
           "classification)") if cfg.train_fraction < 1 else ""
    if prep.single_graph and cfg.split == "per_class":
        test = "the rest" if cfg.num_test is None else str(cfg.num_test)
        return (f"{cfg.per_class} training nodes per class, {cfg.num_val} validation, {test} test nodes, "
                f"drawn per seed; {cfg.runs} seed(s) from {cfg.seed}" + low)
    if prep.single_graph:
        public = cfg.split != "random" and hasattr(prep.graphs[0], "train_mask")
        batches = (f"; mini-batches of {cfg.node_batch_size} random nodes (induced subgraphs), full-graph "
                   "evaluation") if cfg.node_batch_size else ""
        return ("Planetoid public split" if public else "random 80/10/10 node split") + f", {cfg.runs} seed(s)" + low + batches
    if cfg.folds:
        return f"stratified {cfg.folds}-fold CV (test = fold i, validation = fold i+1, train = rest), seed {cfg.seed}" + low
    over = " over graphs" if prep.task.level == "node" else ""
    if prep.dataset.fixed_split is not None and cfg.split in ("auto", "public"):
        sizes = "/".join(str(n) for n in prep.dataset.fixed_split.sizes())
        return f"the dataset's own {sizes} split{over}, {cfg.runs} seed(s) from {cfg.seed}" + low
    return f"random 80/10/10 split{over}, {cfg.runs} seed(s) from {cfg.seed}" + low


def _nan_to_none(obj):
    """metrics.json stays strict JSON: an undefined metric (NaN) is written as null."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    raise TypeError(type(obj).__name__)
