"""An experiment: dataset -> encodings -> splits -> (train, select on validation, test) per run,
and its outputs: metrics.json, config.yaml, best.pt and curves.png.

Model selection and early stopping look only at the validation split; the test split is
evaluated once per run, with the weights that scored best on validation.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from .. import __version__
from ..datasets import GraphDataset, Split, load_dataset, plan_splits
from ..datasets.encodings import precompute_encodings
from ..errors import ConfigError, UserError
from ..models import model_config
from ..progress import Progress
from ..registry import MODELS
from ..tasks import get_task
from ..tasks.metrics import summarise
from .checkpoint import save_checkpoint
from .evaluation import Prepared
from .loop import train_one
from .plots import plot_curves
from .settings import ExperimentConfig, stored_settings

#: What a finished run writes into its output folder.
OUTPUTS = ("metrics.json", "config.yaml", "best.pt", "curves.png")


def prepare(cfg: ExperimentConfig, dataset: Optional[GraphDataset] = None, progress: bool = False) -> Prepared:
    """Load the dataset, check the model's options against it and compute the encodings it needs."""
    ds = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_root, cfg.dataset_args)
    task = get_task(ds.task)
    mcfg = model_config(cfg.model, **{"in_channels": ds.num_features, "out_channels": ds.out_dim,
                                      "level": task.level, "edge_dim": ds.num_edge_features, **cfg.model_args})
    enc = {k: v for k, v in MODELS.get(cfg.model).encodings(mcfg).items() if v}
    graphs = precompute_encodings(ds.graphs, progress=progress, **enc) if enc else list(ds.graphs)
    return Prepared(ds, task, graphs, mcfg.to_dict(), enc)


def make_splits(cfg: ExperimentConfig, prep: Prepared) -> List[Tuple[int, Split]]:
    """(seed, split) for every run (see :func:`gnnformer.datasets.splits.plan_splits`)."""
    if cfg.node_batch_size and not prep.single_graph:
        raise ConfigError("node_batch_size is for node tasks on one large graph; batches of graphs use batch_size.")
    return plan_splits(cfg.split_plan(), prep.dataset, prep.graphs, prep.single_graph)


def check_output_folder(out: Path) -> bool:
    """Make sure ``out`` can be written before any training starts; returns whether it was created
    (so that a run that fails can remove the empty folder it made)."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".gnnformer-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(f"Cannot write into the output folder {out} ({err.strerror or err}); "
                        "choose another with --out.") from None
    return created


def earlier_results(out: Path) -> List[str]:
    """The outputs of an earlier run that a run into ``out`` replaces."""
    return [name for name in OUTPUTS if (out / name).exists()]


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path, progress: bool = True,
                   dataset: Optional[GraphDataset] = None) -> Dict[str, Any]:
    """Train every run/fold, write metrics.json, config.yaml, best.pt and curves.png into ``out_dir``.

    The folder is checked for writing first; a run that fails or is interrupted removes the folder
    if it made it and left it empty.
    """
    cfg.validate()
    out = Path(out_dir)
    created = check_output_folder(out)
    try:
        return _run(cfg, out, progress, dataset)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run(cfg: ExperimentConfig, out: Path, progress: bool, dataset: Optional[GraphDataset]) -> Dict[str, Any]:
    prep = prepare(cfg, dataset, progress=progress)
    splits = make_splits(cfg, prep)
    monitor = prep.task.monitor
    per_run, histories, best = [], [], None
    with Progress(enabled=progress) as bar:
        for run, (seed, split) in enumerate(splits):
            unit = "fold" if cfg.folds else "run"
            task = bar.add(f"{cfg.model} on {prep.dataset.name} {unit} {run + 1}/{len(splits)}", total=cfg.epochs)

            def tick(rec, task=task):
                task.advance(status=f"loss {rec['train_loss']:.3f}  val {monitor} {rec[f'val_{monitor}']:.3f}")

            model, hist, res = train_one(cfg, prep, split, seed, on_epoch=tick)
            task.done()
            per_run.append(res)
            histories.append(hist)
            score = res["val"][monitor]
            if best is None or prep.task.better(score, best[0]):
                best = (score, run, model, split, seed)

    _, best_run, best_model, best_split, best_seed = best
    settings = stored_settings(cfg)
    metrics = {"model": cfg.model, "dataset": prep.dataset.name, "task": prep.task.name, "monitor": monitor,
               "protocol": describe_protocol(cfg, prep), "runs": len(per_run), "best_run": best_run,
               "notes": list(prep.dataset.notes), **summarise(per_run),
               "per_run": [{"seed": s, **r} for (s, _), r in zip(splits, per_run)]}
    import yaml

    (out / "metrics.json").write_text(json.dumps(nan_to_none(metrics), indent=2, default=_json_default))
    (out / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    save_checkpoint(out / "best.pt", {
        "model": cfg.model, "model_config": prep.model_cfg, "state_dict": best_model.cpu().state_dict(),
        "schema": prep.dataset.schema.to_dict(), "task": prep.task.name, "dataset": prep.dataset.name,
        "encodings": prep.encodings, "experiment": settings,
        "split": {k: getattr(best_split, k).tolist() for k in ("train", "val", "test")},
        "metrics": per_run[best_run], "seed": best_seed, "version": __version__,
    })
    plot_curves(histories, monitor, out / "curves.png", title=f"{cfg.model} on {prep.dataset.name}")
    return metrics


def describe_protocol(cfg: ExperimentConfig, prep: Prepared) -> str:
    """One line for metrics.json and the console: how the data was split, how often, with what."""
    low = (f"; training on a seeded {cfg.train_fraction:g} of each training split (class-stratified for "
           "classification)") if cfg.train_fraction < 1 else ""
    if cfg.split == "file":
        return (f"the split of {Path(cfg.split_file).name} (the same {'nodes' if prep.single_graph else 'graphs'} "
                f"for every run), {cfg.runs} seed(s) from {cfg.seed}" + low)
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


def nan_to_none(obj):
    """metrics.json stays strict JSON: an undefined metric (NaN) is written as null."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_to_none(v) for v in obj]
    return obj


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    raise TypeError(type(obj).__name__)
