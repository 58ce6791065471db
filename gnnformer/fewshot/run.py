"""The few-shot protocol end to end: load tasks, (pre-)train every method, evaluate, write results.

Methods, run side by side on the same support draws:

- ``fs-gnncvtr``: GIN + convolutional Transformer, meta-trained (MAML, ``meta.py``);
- ``fs-gin``: the same GIN with a linear head under the same meta-learning (the ablation);
- ``finetune``: no meta-learning; a GIN trained on the labels of every meta-training task at
  once, fine-tuned on each support set with a fresh head (``baseline.py``).

Each method runs once per entry of ``pretrain``: ``none`` (random initial GIN), ``attrmask``
(the GIN initialised by attribute-masking pre-training, ``pretrain.py``) and/or ``hu`` (the
encoder of ``pretrained_encoder``, a file of Hu et al.'s format, ``hu_weights.py``).

Settings live in ``settings.py``, the meta-test evaluation (support draws, ROC-AUC per draw) in
``evaluation.py``. No model selection looks at a test task: the meta-learned weights are those
of the outer step that scores best on a meta-training task held out for validation (``val_task``),
or, without one, those after the last step.
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
import yaml

from .. import __version__
from ..progress import Progress
from ..training.checkpoint import save_checkpoint
from ..training.runtime import seed_everything
from .baseline import multitask_train
from .evaluation import evaluate, scores_by_step, summarise
from .featurize import ATOM_EMBEDDINGS, BOND_EMBEDDINGS, NUM_BOND_DIRECTIONS, NUM_CHIRALITY
from .hu_weights import load_hu_encoder
from .meta import MetaSettings, Validation, meta_train
from .model import create_fewshot_model, fewshot_model_config
from .pretrain import cached_pretrained_encoder
from .settings import FewShotConfig, protocol, reductions, spec_for
from .tasks import FewShotData, check_task_fits, load_tasks

__all__ = ["run_fewshot", "results_table", "per_task_csv"]

CHECKPOINT_TASK = "fewshot_binary"


def schema_dict() -> Dict[str, Any]:
    return {"kind": "molecule-hu2020", "num_node_features": 2, "num_edge_features": 2,
            "description": "RDKit atom type + chirality and bond type + direction indices (Hu et al. 2020)",
            "details": {"atom_embeddings": ATOM_EMBEDDINGS, "chirality": NUM_CHIRALITY,
                        "bond_embeddings": BOND_EMBEDDINGS, "bond_directions": NUM_BOND_DIRECTIONS}}


#: Settings that change neither a trained model nor its scores / only the evaluation.
_IRRELEVANT = ("methods", "pretrain", "data_root", "eval_batch_size", "resume")
_EVAL_ONLY = ("draws", "inner_steps_test", "finetune_steps", "finetune_lr")


def _same(stored: Dict[str, Any], now: Dict[str, Any], ignore: tuple) -> bool:
    """``now``: the settings with the resolved model (``model_config``: a changed default changes the
    model too); a stored run that predates a setting is not the same."""
    return all(stored.get(k) == v for k, v in now.items() if k not in ignore)


def _reusable_results(res_path: Path, ckpt_path: Path, settings: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The stored results of a (method, pre-training) pair run with the same settings, if any."""
    if not (res_path.is_file() and ckpt_path.is_file()):
        return None
    try:
        stored = json.loads(res_path.read_text())
    except (OSError, ValueError):
        return None
    if not _same(stored.get("experiment", {}), settings, _IRRELEVANT):
        return None
    stored.pop("experiment", None)
    return stored


def _reusable_checkpoint(ckpt_path: Path, settings: Dict[str, Any]):
    """``(model, kind, losses, train_seconds, validation curve)`` from a checkpoint trained with the same
    settings, if any."""
    if not ckpt_path.is_file():
        return None
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if not _same(ckpt.get("experiment", {}), settings, _IRRELEVANT + _EVAL_ONLY):
            return None
        model = create_fewshot_model(ckpt["model"], **ckpt["model_config"])
        model.load_state_dict(ckpt["state_dict"])
    except Exception:  # unreadable or foreign: train again
        return None
    return model.eval(), ckpt["model"], ckpt.get("train_losses", []), ckpt.get("train_seconds"), ckpt.get("validation")


def _train(cfg: FewShotConfig, method: str, model_cfg: Dict[str, Any], data: FewShotData,
           encoder_state: Optional[dict], name: str, report: Callable):
    """Train one method; ``(model, model name, per-step losses, Validation or None)``."""
    if method == "finetune":
        model = multitask_train(
            model_cfg, data, cfg.baseline_steps, cfg.baseline_batch_size, cfg.baseline_lr, cfg.seed, encoder_state,
            on_step=lambda s, loss: report(f"{name}: multi-task training", s + 1, cfg.baseline_steps, loss))
        return model, "fs-gin", [], None
    model = create_fewshot_model(method, **model_cfg)
    if encoder_state is not None:
        model.encoder.load_state_dict(encoder_state)
    settings = MetaSettings(cfg.shots, cfg.episodes, cfg.tasks_per_episode, cfg.query_size, cfg.inner_steps,
                            cfg.inner_lr, cfg.first_order, cfg.adapt, cfg.outer_lr_gnn, cfg.outer_lr_head,
                            cfg.weight_decay, cfg.pos_weight, cfg.grad_clip)
    validation = None
    if data.val_tasks:
        spec = spec_for(cfg, method)
        validation = Validation(lambda m: summarise(evaluate(m, spec, data, cfg.val_draws, cfg.seed, cfg.eval_batch_size,
                                                             tasks=data.val_tasks))["mean"],
                                every=cfg.val_every, patience=cfg.patience,
                                watch=(lambda m: evaluate(m, spec, data, cfg.val_draws, cfg.seed, cfg.eval_batch_size))
                                if cfg.track_test else None)
    losses = meta_train(model, data, settings, cfg.seed,
                        on_step=lambda s, loss: report(f"{name}: meta-training", s + 1, cfg.episodes, loss),
                        validation=validation)
    return model, method, [round(v, 5) for v in losses], validation


def run_fewshot(cfg: FewShotConfig, out_dir: str | Path, progress: bool = True,
                data: Optional[FewShotData] = None) -> Dict[str, Any]:
    """Train and evaluate every (method, pre-training) pair; write metrics.json, per_task.csv,
    config.yaml, convergence.png (validation ROC-AUC against outer steps, with a validation task),
    one checkpoint per pair under ``checkpoints/`` and its results under ``results/``
    (as soon as the pair is done, so that an interrupted run resumes; see ``resume``)."""
    cfg.validate()
    data = data if data is not None else load_tasks(cfg.dataset, cfg.data_root, cfg.source, cfg.invalid)
    data = data.with_validation(cfg.val_task)
    for task in data.test_tasks:
        check_task_fits(task, cfg.shots)
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    model_cfg = fewshot_model_config(**cfg.model_args).to_dict()
    stored_settings = {**cfg.to_dict(), "model_config": model_cfg}  # kept with each pair: decides its reuse
    notes = list(data.notes)
    runs: List[Dict[str, Any]] = []
    with Progress(enabled=progress) as bar:
        bars: Dict[str, Any] = {}

        def report(label: str, done: int, total: int, loss: Optional[float] = None) -> None:
            """Progress of one stage (``label``): ``done`` of ``total`` steps, the latest loss."""
            task = bars.get(label) or bars.setdefault(label, bar.add(label, total))
            task.advance(done - task.completed, status="" if loss is None else f"loss {loss:.3f}")
            if done >= total:
                task.done()

        encoders: Dict[str, Optional[dict]] = {"none": None}
        pretrain_info: Dict[str, Any] = {}
        if "attrmask" in cfg.pretrain:
            state, info = cached_pretrained_encoder(
                fewshot_model_config(**cfg.model_args), cfg.pretrain_corpus, cfg.data_root, cfg.pretrain_epochs,
                cfg.pretrain_batch_size, cfg.pretrain_lr, cfg.mask_rate, cfg.seed, progress=report)
            encoders["attrmask"] = state
            pretrain_info = {k: v for k, v in info.items() if k != "notes"}
            notes += info["notes"] + ([f"pre-trained encoder {info['key']} reused from the cache"]
                                      if info["cached"] else [])
        if "hu" in cfg.pretrain:
            encoders["hu"], hu_notes = load_hu_encoder(cfg.pretrained_encoder, fewshot_model_config(**cfg.model_args))
            notes += hu_notes
        for variant in cfg.pretrain:
            for method in cfg.methods:
                name = f"{method}-{variant}"
                spec = spec_for(cfg, method)
                ckpt_path = out / "checkpoints" / f"{name}.pt"
                res_path = out / "results" / f"{name}.json"
                stored = _reusable_results(res_path, ckpt_path, stored_settings) if cfg.resume else None
                if stored is not None:
                    runs.append({**stored, "reused": "results"})
                    notes.append(f"{name}: results reused from {res_path} (same settings)")
                    continue
                previous = _reusable_checkpoint(ckpt_path, stored_settings) if cfg.resume else None
                t0 = time.perf_counter()
                if previous is not None:
                    model, kind, losses, t_train, curve = previous
                    notes.append(f"{name}: model reused from {ckpt_path} (same training settings), evaluated again")
                else:
                    seed_everything(cfg.seed)
                    model, kind, losses, validation = _train(cfg, method, model_cfg, data, encoders[variant], name,
                                                             report)
                    curve = None if validation is None else {
                        "task": data.val_tasks[0].name, "every": cfg.val_every, "draws": cfg.val_draws,
                        "steps": validation.steps, "roc_auc": validation.scores, "best_step": validation.best_step}
                    if validation is not None and validation.watched:
                        curve["test_by_step"] = scores_by_step(validation.watched)
                    t_train = round(time.perf_counter() - t0, 1)
                    t0 = time.perf_counter()
                total = cfg.draws * len(data.test_tasks)
                done = [0]

                def tick(n=name) -> None:
                    done[0] += 1
                    report(f"{n}: evaluation", done[0], total)

                results = evaluate(model, spec, data, cfg.draws, cfg.seed, cfg.eval_batch_size, tick)
                summary = summarise(results)
                run = {"method": method, "pretrain": variant, "model": kind, **summary,
                       "train_seconds": t_train, "eval_seconds": round(time.perf_counter() - t0, 1),
                       "train_losses": losses, "validation": curve, "checkpoint": f"checkpoints/{name}.pt",
                       "reused": "checkpoint" if previous is not None else None}
                runs.append(run)
                save_checkpoint(ckpt_path, {
                    "model": kind, "model_config": model_cfg, "state_dict": model.state_dict(),
                    "schema": schema_dict(), "task": CHECKPOINT_TASK, "dataset": data.name,
                    "experiment": stored_settings, "fewshot": {**spec.to_dict(), "name": method, "pretrain": variant,
                                                             "seed": cfg.seed},
                    "metrics": {"mean_roc_auc": summary["mean"],
                                "per_task": {k: v["mean"] for k, v in summary["per_task"].items()},
                                "mean_thresholded": summary["thresholded"]["mean"]},
                    "train_seconds": t_train, "train_losses": losses, "validation": curve, "version": __version__,
                })
                res_path.parent.mkdir(parents=True, exist_ok=True)
                res_path.write_text(json.dumps({**run, "experiment": stored_settings}, indent=2))
    metrics = {"dataset": data.name, "source": data.source, "shots": cfg.shots, "metric": "roc_auc",
               "protocol": protocol(cfg, data), "reduced": reductions(cfg), "notes": notes,
               "train_tasks": [t.name for t in data.train_tasks], "val_tasks": [t.name for t in data.val_tasks],
               "test_tasks": [t.name for t in data.test_tasks],
               "pretraining": pretrain_info, "config": cfg.to_dict(), "model_config": model_cfg, "runs": runs,
               "version": __version__}
    curves = {f"{r['method']} ({r['pretrain']})": r["validation"] for r in runs if r.get("validation")}
    if curves:
        from ..training.plots import plot_series

        first = next(iter(curves.values()))
        plot_series({k: (c["steps"], c["roc_auc"]) for k, c in curves.items()}, "outer step",
                    f"validation ROC-AUC ({first['task']}, {first['draws']} draws)", out / "convergence.png",
                    f"{data.name} {cfg.shots}-shot: meta-training against the held-out task (dot: selected step)",
                    marks={k: c["best_step"] for k, c in curves.items()})
        metrics["plots"] = ["convergence.png"]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    (out / "per_task.csv").write_text(per_task_csv(runs))
    return metrics


def per_task_csv(runs: List[Dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "pretrain", "task", "roc_auc_mean", "roc_auc_std", "thresholded_mean",
                     "thresholded_std", "draws"])
    for run in runs:
        thr = run.get("thresholded", {"per_task": {}, "mean": None})
        for task, s in run["per_task"].items():
            t = thr["per_task"].get(task)
            writer.writerow([run["method"], run["pretrain"], task, f"{s['mean']:.4f}", f"{s['std']:.4f}",
                             _num(t and t["mean"]), _num(t and t["std"]), s["draws"]])
        writer.writerow([run["method"], run["pretrain"], "mean", f"{run['mean']:.4f}", "", _num(thr["mean"]), "", ""])
    return buf.getvalue()


def _num(x: Optional[float]) -> str:
    return "" if x is None else f"{x:.4f}"


def results_table(metrics: Dict[str, Any]):
    """A rich table: meta-test tasks (and their mean) by run, ROC-AUC mean ± std over draws, and
    under it the mean of the thresholded score (the FS-GNNCvTR code's "ROC-AUC")."""
    from rich.table import Table

    table = Table(title=f"{metrics['dataset']} {metrics['shots']}-shot: ROC-AUC on the meta-test tasks")
    table.add_column("task")
    for run in metrics["runs"]:
        table.add_column(f"{run['method']} ({run['pretrain']})", justify="right")
    for task in metrics["test_tasks"]:
        table.add_row(task, *(f"{r['per_task'][task]['mean']:.4f} ± {r['per_task'][task]['std']:.4f}"
                              for r in metrics["runs"]))
    table.add_row("mean", *(f"{r['mean']:.4f}" for r in metrics["runs"]))
    table.add_row("mean, thresholded at 0.5", *(_num(r.get("thresholded", {}).get("mean")) for r in metrics["runs"]))
    return table
