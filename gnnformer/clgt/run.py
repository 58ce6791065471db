"""CLGT runs: ``train`` (CLGT and its baselines on the same chronological split, Peng et al.,
AAAI 2023) and ``report`` (the latest window predicted, the members most at risk explained with
PGM-Explainer, Vu & Thai, NeurIPS 2020, rendered as one offline HTML page).

Every graph model goes through the library's trainer (``training.loop.train_one``: selection and
early stopping on the validation windows only); AdaBoost (scikit-learn, the paper's non-graph
baseline) sees each member's node features alone, from the same training windows. Scores on the
test windows: accuracy, macro-F1 and ROC-AUC over the members with a known label. Nothing is
sent anywhere: the data, the models and the outputs stay in the output folder.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

from .. import __version__
from ..datasets.vcs import EDGE_TYPES
from ..errors import UserError
from ..progress import Progress
from ..tasks import known_labels
from ..tasks.metrics import accuracy, macro_f1, mean_std, roc_auc
from ..training import config_from_mapping
from ..training.checkpoint import load_checkpoint, save_checkpoint
from ..training.evaluation import Evaluator
from ..training.experiment import check_output_folder, prepare
from ..training.loop import train_one
from .data import Windows, load_windows, span, strip
from .settings import TYPED, CLGTConfig

__all__ = ["run_train", "run_report", "train_models", "scores"]
METRICS = ("accuracy", "macro_f1", "roc_auc")


def scores(logits: torch.Tensor, y: torch.Tensor) -> Dict[str, float]:
    """Accuracy, macro-F1 and (two classes) ROC-AUC of ``logits`` over the rows with a known label."""
    logits, y = known_labels(logits, y)
    auc = roc_auc(logits.softmax(-1)[:, 1], y.float()) if logits.size(-1) == 2 else float("nan")
    return {"accuracy": accuracy(logits, y), "macro_f1": macro_f1(logits, y), "roc_auc": auc}


def in_new_folder(out: Path, work: Callable[[], Any]) -> Any:
    """``work()`` writing into ``out``; if it fails, a folder it created is removed whole."""
    created = check_output_folder(out)
    try:
        return work()
    except BaseException:
        if created and out.is_dir():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _experiment(name: str, cfg: CLGTConfig, windows: Windows, seed: int):
    args = {"num_edge_types": len(EDGE_TYPES)} if name in TYPED else {}
    if name == cfg.model:
        args.update(cfg.model_args)
    return config_from_mapping({"model": name, "dataset": windows.dataset.name, "epochs": cfg.epochs, "seed": seed,
                                "split": "public", "lr": cfg.lr, "weight_decay": cfg.weight_decay,
                                "batch_size": cfg.batch_size, "patience": cfg.patience, "model_args": args})


def _adaboost(windows: Windows, seed: int) -> Dict[str, Dict[str, float]]:
    """AdaBoost on each member's node features, trained on the training windows' known labels."""
    from sklearn.ensemble import AdaBoostClassifier

    def rows(part: str):
        graphs = [windows.dataset.graphs[i] for i in getattr(windows.split, part).tolist()]
        return torch.cat([g.x for g in graphs]), torch.cat([g.y for g in graphs])

    x, y = rows("train")
    known = y >= 0
    clf = AdaBoostClassifier(n_estimators=100, random_state=seed).fit(x[known].numpy(), y[known].numpy())
    res = {}
    for part in ("val", "test"):
        xp, yp = rows(part)
        proba = torch.zeros(len(yp), windows.dataset.out_dim, dtype=torch.float64)
        proba[:, torch.as_tensor(clf.classes_)] = torch.as_tensor(clf.predict_proba(xp.numpy()))
        res[part] = scores(proba.clamp(min=1e-12).log(), yp)
    return res


def train_models(cfg: CLGTConfig, windows: Windows, models: List[str], progress: bool = True):
    """Every model of ``models`` on every seed. Returns (rows, per_seed, best) with ``best[name]`` =
    (model, prepared data, seed) of the seed with the best validation accuracy, for graph models."""
    per_seed, best = [], {}
    with Progress(enabled=progress) as bar:
        for name in models:
            prep = None
            for seed in cfg.seeds:
                start = time.perf_counter()
                if name == "adaboost":
                    res, epoch = _adaboost(windows, seed), None
                else:
                    ecfg = _experiment(name, cfg, windows, seed)
                    prep = prep or prepare(ecfg, windows.dataset)
                    task = bar.add(f"{name} on {windows.dataset.name}, seed {seed}", total=cfg.epochs)
                    model, _, trained = train_one(ecfg, prep, windows.split, seed, on_epoch=lambda r, t=task: t.advance())
                    task.done()
                    ev = Evaluator(prep, cfg.batch_size, torch.device("cpu"), bucket=False)
                    res = {part: scores(*ev.outputs(model, getattr(windows.split, part))) for part in ("val", "test")}
                    epoch = trained["best_epoch"]
                    if name not in best or res["val"]["accuracy"] > best[name][3]:
                        best[name] = (model, prep, seed, res["val"]["accuracy"])
                per_seed.append({"model": name, "seed": seed, "best_epoch": epoch,
                                 "seconds": time.perf_counter() - start, **res})
    rows = []
    for name in models:
        mine = [r for r in per_seed if r["model"] == name]
        rows.append({"model": name, **{f"{part}_{m}": mean_std([r[part][m] for r in mine])
                                       for part in ("test", "val") for m in METRICS},
                     "seconds": mean_std([r["seconds"] for r in mine])})
    return rows, per_seed, {k: v[:3] for k, v in best.items()}


def protocol(cfg: CLGTConfig, windows: Windows) -> str:
    sizes = {part: sum(int((g.y >= 0).sum()) for g in windows.windows_of(part)) for part in ("train", "val", "test")}
    return (f"{len(windows.graphs)} windows of {cfg.window_days} days, {len(windows.labelled)} labelled; chronological "
            f"split: train {span(windows.windows_of('train'))} ({sizes['train']} labelled members), validation "
            f"{span(windows.windows_of('val'))} ({sizes['val']}), test {span(windows.windows_of('test'))} "
            f"({sizes['test']}); selection on validation accuracy; {cfg.epochs} epochs at most (patience "
            f"{cfg.patience}); mean ± std over seeds {', '.join(map(str, cfg.seeds))}")


def _save(path: Path, cfg: CLGTConfig, windows: Windows, trained, evaluated: Dict[str, Any]) -> Path:
    model, prep, seed = trained
    return save_checkpoint(path, {
        "model": cfg.model, "model_config": prep.model_cfg, "state_dict": model.cpu().state_dict(),
        "schema": windows.dataset.schema.to_dict(), "task": "node_classification", "dataset": windows.dataset.name,
        "experiment": cfg.to_dict(), "split": {k: getattr(windows.split, k).tolist() for k in ("train", "val", "test")},
        "clgt": {"seed": seed, "label_rule": windows.label_rule, "window_days": cfg.window_days,
                 "min_commits": cfg.min_commits, "labels": cfg.labels is not None, "evaluated": evaluated},
        "version": __version__})


def run_train(cfg: CLGTConfig, out: str | Path, progress: bool = True, activity=None) -> Dict[str, Any]:
    """Train ``cfg.model`` and the baselines; write metrics.json, config.yaml and best.pt (the model's
    best-validation seed) into ``out``. The data is read and checked before the folder is touched."""
    windows = load_windows(cfg, activity)
    out = Path(out)

    def work():
        rows, per_seed, best = train_models(cfg, windows, cfg.models(), progress)
        metrics = {"source": _shown_source(cfg, windows), "label_rule": windows.label_rule,
                   "protocol": protocol(cfg, windows), "rows": rows, "per_seed": per_seed, "notes": windows.notes,
                   "version": __version__}
        _write(out, metrics, cfg)
        from .reasons import evaluation

        _save(out / "best.pt", cfg, windows, best[cfg.model], evaluation(cfg, windows, rows[0]))
        return metrics

    return in_new_folder(out, work)


def _shown_source(cfg: CLGTConfig, windows: Windows) -> str:
    return Path(windows.source).name


def _write(out: Path, metrics: Dict[str, Any], cfg: CLGTConfig, name: str = "metrics.json") -> None:
    import yaml

    from ..training.experiment import nan_to_none

    (out / name).write_text(json.dumps(nan_to_none(metrics), indent=2))
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def trained_model(path: str, cfg: CLGTConfig, windows: Windows):
    """The model of a ``clgt train`` checkpoint and its stored test scores, after checking that it
    was trained on windows like ``windows`` (same features, length, label rule and classes)."""
    from ..training.inference import model_from_checkpoint

    ckpt = load_checkpoint(path)
    info = ckpt.get("clgt")
    if not isinstance(info, dict) or "evaluated" not in info:
        raise UserError(f"{path} was not written by `gnnformer clgt train` (it has no CLGT run in it); "
                        "train one with `gnnformer clgt train --out DIR` and pass DIR/best.pt.")

    def source(labels) -> str:
        return "a labels file" if labels else "the proxy label"

    # (what, in the checkpoint, here): each must agree for the weights to mean the same thing here
    checks = [("window length (days)", info["window_days"], cfg.window_days),
              ("labels", source(info["labels"]), source(cfg.labels)),
              ("classes", ckpt["model_config"].get("out_channels"), windows.dataset.out_dim)]
    if not info["labels"] and not cfg.labels:
        checks.append(("proxy threshold min_commits", info["min_commits"], cfg.min_commits))
    differ = [f"{what}: {theirs} in the checkpoint, {ours} here" for what, theirs, ours in checks if theirs != ours]
    if ckpt["schema"] != windows.dataset.schema.to_dict():
        differ.append("the node and edge features differ")
    if differ:
        raise UserError(f"{path} was trained on other windows than these ({'; '.join(differ)}); give the settings "
                        "it was trained with, or train again.")
    return model_from_checkpoint(ckpt), info["evaluated"]


def run_report(cfg: CLGTConfig, out: str | Path, progress: bool = True, activity=None,
               render: Optional[Callable] = None) -> Dict[str, Any]:
    """Predict the latest window with ``cfg.checkpoint`` (a ``clgt train`` best.pt) or, without one,
    a ``cfg.model`` trained here (no baselines); explain the ``cfg.explain`` members most at risk and
    write report.html (and the same data as report.json) into ``out``."""
    windows = load_windows(cfg, activity, require_last=True)
    if windows.dataset.out_dim != 2:
        raise UserError(f"{cfg.labels}: the report needs two classes (pass / at-risk); these labels have "
                        f"{windows.dataset.out_dim}. `gnnformer clgt train` takes class numbers.")
    reused = trained_model(cfg.checkpoint, cfg, windows) if cfg.checkpoint else None
    out = Path(out)

    def work():
        from .reasons import build_report, evaluation

        if reused is None:
            rows, _, best = train_models(cfg, windows, [cfg.model], progress)
            model, evaluated = best[cfg.model][0], evaluation(cfg, windows, rows[0])
        else:
            (model, evaluated), rows = reused, None
        report = build_report(cfg, windows, model, evaluated)
        (out / "report.json").write_text(json.dumps(report, indent=2))
        _write(out, {"source": report["source"], "label_rule": windows.label_rule,
                     "protocol": protocol(cfg, windows), "rows": rows, "checkpoint": cfg.checkpoint}, cfg)
        renderer = render or _renderer()
        if renderer is not None:
            renderer(report, out / "report.html")
        return report

    return in_new_folder(out, work)


def _renderer():
    try:
        from .report import render_report
    except ImportError:  # the HTML page is rendered by report.py; without it report.json stays the output
        return None
    return render_report
