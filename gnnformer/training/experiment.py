"""An experiment: dataset -> encodings -> splits -> (train, select on validation, test) per run,
and its outputs: metrics.json, config.yaml, best.pt and curves.png, each written atomically.

Model selection and early stopping look only at the validation split; the test split is
evaluated once per run, with the weights that scored best on validation.

Nothing is lost when a run dies: ``<out>/resume/`` holds the state of the run in progress after
every epoch (``loop.train_one``) and the result of every finished run. The same command into the
same folder continues where it stopped (``continue_info`` says from where); the folder is removed
once the outputs are written. States of other settings are ignored and overwritten.
"""
from __future__ import annotations

import hashlib
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
from .checkpoint import atomic_save, atomic_write_text, save_checkpoint
from .distributed import context, device_for
from .evaluation import Prepared
from .loop import read_state, train_one
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
    check_attention_memory(cfg, prep)
    return plan_splits(cfg.split_plan(), prep.dataset, prep.graphs, prep.single_graph)


def attention_bytes(cfg: ExperimentConfig, prep: Prepared) -> int:
    """What complete-graph attention holds for one training step: heads x block x (2 x layers + 1)
    float32 cells, where a block is N x N for one graph of N nodes (or a mini-batch of N nodes)
    and batch_size x N_max x N_max for batches of graphs (autograd keeps every layer's scores and
    probabilities). 0 for models without complete-graph attention."""
    if not prep.dense_attention:
        return 0
    heads, layers = int(prep.model_cfg.get("heads", 1)), int(prep.model_cfg.get("layers", 1))
    if prep.single_graph:
        n = cfg.node_batch_size or prep.graphs[0].num_nodes
        block = n * n
    else:
        block = int(prep.sizes.max()) ** 2 * min(cfg.batch_size, len(prep.graphs))
    return 4 * heads * block * (2 * layers + 1)


def available_memory(device: torch.device) -> Optional[int]:
    """Bytes free for tensors: the GPU's free memory, or the system's available memory (Linux's
    /proc/meminfo); None where it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_attention_memory(cfg: ExperimentConfig, prep: Prepared) -> None:
    """Refuse, before any work, an attention that cannot fit, instead of dying inside the kernel."""
    from .runtime import resolve_device

    need = attention_bytes(cfg, prep)
    free = available_memory(resolve_device(cfg.device)) if need else None
    if need and free is not None and need > free:
        what = (f"all {cfg.node_batch_size or prep.graphs[0].num_nodes:,} nodes at once" if prep.single_graph
                else f"batches of {cfg.batch_size} graphs of up to {int(prep.sizes.max())} nodes")
        raise UserError(f"{cfg.model} attends over {what}: about {need / 2**30:.1f} GiB of attention per training "
                        f"step, more than the {free / 2**30:.1f} GiB free. Use the linear-attention model "
                        "(--model difformer-s), fewer nodes per step (node_batch_size=...) or a smaller batch_size, "
                        "or a model that attends over edges only (model.attention_graph=edges).")


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


RESUME = "resume"


def run_key(settings: Dict[str, Any], seed: int, split: Split) -> str:
    """What a saved state must match to be continued: the settings, the seed and the split."""
    h = hashlib.sha256(settings_text(settings).encode())
    h.update(str(seed).encode())
    for part in (split.train, split.val, split.test):
        h.update(part.numpy().tobytes())
    return h.hexdigest()[:16]


def settings_text(settings: Dict[str, Any]) -> str:
    """The settings as ``resume/settings.json`` holds them (and compares them)."""
    return json.dumps(settings, sort_keys=True, default=str)


def continue_info(cfg: ExperimentConfig, out: Path) -> Optional[str]:
    """A line saying what an earlier, interrupted run of these settings left in ``out``, or None."""
    folder = out / RESUME
    saved = folder / "settings.json"
    if not saved.is_file() or saved.read_text() != settings_text(stored_settings(cfg)):
        return None
    done = len(list(folder.glob("run*.done.pt")))
    states = sorted(folder.glob("run*.state.pt"))  # one at a time: removed when its run finishes
    at = ""
    if states:
        try:
            epoch = torch.load(states[-1], map_location="cpu", weights_only=True)["epoch"]
            at = f", {states[-1].name.split('.')[0]} after epoch {epoch}"
        except Exception:  # a foreign or damaged file: the run starts that run afresh
            at = ""
    return f"{done} run(s) finished{at}"


def earlier_results(out: Path) -> List[str]:
    """The outputs of an earlier run that a run into ``out`` replaces."""
    return [name for name in OUTPUTS if (out / name).exists()]


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path, progress: bool = True,
                   dataset: Optional[GraphDataset] = None) -> Dict[str, Any]:
    """Train every run/fold, write metrics.json, config.yaml, best.pt and curves.png into ``out_dir``.

    The folder is checked for writing first. A run that fails or is interrupted keeps the epochs
    it finished in ``<out>/resume/`` (the same call continues from them); one that finished none
    leaves nothing behind, and removes the folder if it made it.
    """
    cfg.validate()
    out = Path(out_dir)
    created = check_output_folder(out)
    try:
        return _run(cfg, out, progress, dataset)
    except BaseException:
        resume = out / RESUME
        if resume.is_dir() and not any(resume.glob("run*.pt")):
            shutil.rmtree(resume, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run(cfg: ExperimentConfig, out: Path, progress: bool, dataset: Optional[GraphDataset]) -> Dict[str, Any]:
    from .runtime import resolve_device

    ctx = context(device_for(resolve_device(cfg.device)))  # under torchrun: join the other processes
    progress = progress and ctx.main
    prep = prepare(cfg, dataset, progress=progress)
    splits = make_splits(cfg, prep)
    monitor = prep.task.monitor
    settings = stored_settings(cfg)
    resume = out / RESUME
    if ctx.main:
        for stale in [*out.glob(".*.tmp"), *resume.glob(".*.tmp")]:  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        atomic_write_text(resume / "settings.json", settings_text(settings))
    per_run, histories, best = [], [], None
    with Progress(enabled=progress) as bar:
        for run, (seed, split) in enumerate(splits):
            unit = "fold" if cfg.folds else "run"
            task = bar.add(f"{cfg.model} on {prep.dataset.name} {unit} {run + 1}/{len(splits)}", total=cfg.epochs)

            def tick(rec, task=task):
                task.advance(status=f"loss {rec['train_loss']:.3f}  val {monitor} {rec[f'val_{monitor}']:.3f}")

            key = run_key(settings, seed, split)
            done = read_state(resume / f"run{run}.done.pt", key)
            if done is not None:  # finished before an interruption: its result, not a retrain
                model = create_model_from(cfg, prep, done["model"])
                hist, res = done["history"], done["results"]
            else:
                model, hist, res = train_one(cfg, prep, split, seed, on_epoch=tick,
                                             state_path=resume / f"run{run}.state.pt", state_key=key)
                if ctx.main:
                    atomic_save(resume / f"run{run}.done.pt", {"key": key, "model": model.state_dict(),
                                                               "history": hist, "results": res})
                    (resume / f"run{run}.state.pt").unlink(missing_ok=True)
            task.done()
            per_run.append(res)
            histories.append(hist)
            score = res["val"][monitor]
            if best is None or prep.task.better(score, best[0]):
                best = (score, run, model, split, seed)

    _, best_run, best_model, best_split, best_seed = best
    metrics = {"model": cfg.model, "dataset": prep.dataset.name, "task": prep.task.name, "monitor": monitor,
               "protocol": describe_protocol(cfg, prep), "runs": len(per_run), "best_run": best_run,
               "notes": list(prep.dataset.notes), "world_size": ctx.world, **summarise(per_run),
               "per_run": [{"seed": s, **r} for (s, _), r in zip(splits, per_run)]}
    if not ctx.main:  # one process writes
        return metrics
    import yaml

    atomic_write_text(out / "metrics.json", json.dumps(nan_to_none(metrics), indent=2, default=_json_default))
    atomic_write_text(out / "config.yaml", yaml.safe_dump({**settings, "world_size": ctx.world}, sort_keys=False))
    save_checkpoint(out / "best.pt", {
        "model": cfg.model, "model_config": prep.model_cfg, "state_dict": best_model.cpu().state_dict(),
        "schema": prep.dataset.schema.to_dict(), "task": prep.task.name, "dataset": prep.dataset.name,
        "encodings": prep.encodings, "experiment": settings,
        "split": {k: getattr(best_split, k).tolist() for k in ("train", "val", "test")},
        "metrics": per_run[best_run], "seed": best_seed, "version": __version__,
    })
    curves = out / f".curves.{os.getpid()}.png"
    plot_curves(histories, monitor, curves, title=f"{cfg.model} on {prep.dataset.name}")
    os.replace(curves, out / "curves.png")
    shutil.rmtree(resume, ignore_errors=True)
    return metrics


def create_model_from(cfg: ExperimentConfig, prep: Prepared, state: Dict[str, Any]):
    from ..models import create_model
    from .runtime import resolve_device

    model = create_model(cfg.model, **prep.model_cfg).to(resolve_device(cfg.device))
    model.load_state_dict(state)
    return model.eval()


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
