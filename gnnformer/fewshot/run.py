"""The few-shot protocol end to end: load tasks, (pre-)train every method, evaluate, write results.

Methods, run side by side on the same support draws:

- ``fs-gnncvtr``: GIN + convolutional Transformer, meta-trained (MAML, ``meta.py``);
- ``fs-gin``: the same GIN with a linear head under the same meta-learning (the ablation);
- ``finetune``: no meta-learning; a GIN trained on the labels of every meta-training task at
  once, fine-tuned on each support set with a fresh head (``baseline.py``).

Each method runs once per entry of ``pretrain``: ``none`` (random initial GIN) and/or
``attrmask`` (the GIN initialised by attribute-masking pre-training, ``pretrain.py``).

Evaluation: for each meta-test task and each of ``draws`` support sets (k positives + k
negatives, drawn independently with a fixed seed per task and draw, identical for every
method), the model is adapted to the support set and every other molecule of the task is
scored; ROC-AUC per draw. Every draw counts: a task's result is the mean and standard deviation
over all draws, and the mean over tasks is the mean of the task means. No model selection
looks at a test task: the weights after the last meta-training step are evaluated.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
import yaml

from .. import __version__
from ..config import build_config
from ..errors import ConfigError
from ..training.checkpoint import save_checkpoint
from .baseline import multitask_train
from .featurize import ATOM_EMBEDDINGS, BOND_EMBEDDINGS, NUM_BOND_DIRECTIONS, NUM_CHIRALITY, check_policy
from .meta import ADAPT, AdaptSpec, MetaSettings, adapt_to_support, embed_molecules, meta_train, predict_molecules
from .model import collate, create_fewshot_model, fewshot_model_config
from .pretrain import CORPORA, cached_pretrained_encoder
from .tasks import DATASETS, SOURCES, FewShotData, check_task_fits, episode_generator, load_tasks, pool_ids, \
    sample_episode

METHODS = ("fs-gnncvtr", "fs-gin", "finetune")
PRETRAIN = ("none", "attrmask")
#: The protocol's number of support draws per test task; fewer is reported as reduced.
FULL_DRAWS = 30
CHECKPOINT_TASK = "fewshot_binary"


@dataclass
class FewShotConfig:
    dataset: str = "tox21"  # tox21 | sider
    shots: int = 5  # k: k positives + k negatives in every support set
    source: str = "fewshotmol"  # fewshotmol | moleculenet (the same tasks)
    data_root: Optional[str] = None
    seed: int = 0
    methods: List[str] = field(default_factory=lambda: list(METHODS))
    pretrain: List[str] = field(default_factory=lambda: ["none", "attrmask"])
    invalid: str = "skip"  # skip | error: SMILES RDKit cannot read (Tox21 has 8)
    # meta-training (fs-gnncvtr, fs-gin)
    episodes: int = 30  # outer steps
    tasks_per_episode: int = 3  # training tasks per outer step (0 = all)
    query_size: int = 128
    inner_steps: int = 5  # inner-loop steps in meta-training
    inner_steps_test: int = 10  # ... and when adapting to a test support set
    inner_lr: float = 0.05
    first_order: bool = True
    adapt: str = "head"  # head | encoder | all: what the inner loop (and fine-tuning) changes
    outer_lr_gnn: float = 1e-3
    outer_lr_head: float = 1e-3  # the Transformer (fs-gnncvtr) or linear head (fs-gin)
    weight_decay: float = 0.0
    pos_weight: Optional[float] = None  # query-loss positive weight; null = negatives/positives of each query set
    grad_clip: float = 1.0  # outer gradient norm clip (0 = off)
    # non-meta baseline (finetune)
    baseline_steps: int = 75  # multi-task training steps on the meta-training tasks (batches of 128)
    baseline_batch_size: int = 128
    baseline_lr: float = 1e-3
    finetune_steps: int = 10  # Adam steps on each support set
    finetune_lr: float = 1e-2
    # evaluation
    draws: int = FULL_DRAWS  # support sets per test task
    eval_batch_size: int = 256
    # self-supervised pre-training (pretrain: attrmask)
    pretrain_corpus: List[str] = field(default_factory=lambda: list(CORPORA))
    pretrain_epochs: int = 5
    pretrain_batch_size: int = 128
    pretrain_lr: float = 1e-3
    mask_rate: float = 0.15
    model_args: Dict[str, Any] = field(default_factory=dict)  # GIN / Transformer options (FewShotModelConfig)
    # reuse what the output folder already holds for the same settings: a (method, pre-training) pair's
    # results, or its checkpoint (then only evaluated again); an interrupted run continues where it stopped
    resume: bool = True

    def validate(self) -> None:
        if self.dataset.lower() not in DATASETS:
            raise ConfigError(f"dataset must be tox21 or sider, got {self.dataset!r}.")
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}.")
        for key, allowed in (("methods", METHODS), ("pretrain", PRETRAIN), ("pretrain_corpus", CORPORA)):
            value = getattr(self, key)
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{key} must be a non-empty list, e.g. [{', '.join(allowed)}].")
            bad = [v for v in value if v not in allowed]
            if bad:
                raise ConfigError(f"{key}: unknown {', '.join(map(str, bad))}; choose from {', '.join(allowed)}.")
            if len(set(value)) != len(value):
                raise ConfigError(f"{key} lists an entry twice: {value}.")
        if self.adapt not in ADAPT:
            raise ConfigError(f"adapt must be one of {', '.join(ADAPT)}, got {self.adapt!r}.")
        check_policy(self.invalid)
        positive = ("shots", "query_size", "draws", "eval_batch_size", "baseline_batch_size", "pretrain_batch_size")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}.")
        for key in ("episodes", "tasks_per_episode", "inner_steps", "inner_steps_test", "baseline_steps",
                    "finetune_steps", "pretrain_epochs"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must not be negative, got {getattr(self, key)}.")
        for key in ("inner_lr", "outer_lr_gnn", "outer_lr_head", "baseline_lr", "finetune_lr", "pretrain_lr"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}.")
        if self.pos_weight is not None and not self.pos_weight > 0:
            raise ConfigError(f"pos_weight must be positive or null (balance each query set), got {self.pos_weight}.")
        if not 0.0 < self.mask_rate < 1.0:
            raise ConfigError(f"mask_rate must be in (0, 1), got {self.mask_rate}.")
        if not isinstance(self.model_args, dict):
            raise ConfigError(f"model_args must be a mapping of model options, got {self.model_args!r}.")
        fewshot_model_config(**self.model_args)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


#: ``gnnformer fewshot --quick``: a smoke-scale run of the whole protocol in a few minutes.
QUICK = {"episodes": 10, "tasks_per_episode": 3, "baseline_steps": 20, "draws": 5, "pretrain": ["none"]}


def fewshot_config(values: Dict[str, Any]) -> FewShotConfig:
    values = dict(values)
    for key in ("methods", "pretrain", "pretrain_corpus"):  # "a,b" on the command line
        if isinstance(values.get(key), str):
            values[key] = [v.strip() for v in values[key].split(",") if v.strip()]
    if isinstance(values.get("dataset"), str):
        values["dataset"] = values["dataset"].lower()
    return build_config(FewShotConfig, values, "few-shot")


def reductions(cfg: FewShotConfig) -> List[str]:
    out = []
    if cfg.draws < FULL_DRAWS:
        out.append(f"{cfg.draws} of {FULL_DRAWS} support draws per test task")
    return out


def protocol(cfg: FewShotConfig, data: FewShotData) -> str:
    train = ", ".join(str(t.index) for t in data.train_tasks)
    test = ", ".join(f"{t.index} {t.name}" for t in data.test_tasks)
    order = "first-order" if cfg.first_order else "second-order"
    per = "all" if cfg.tasks_per_episode <= 0 else str(min(cfg.tasks_per_episode, len(data.train_tasks)))
    return (f"2-way {cfg.shots}-shot on {data.name} ({cfg.source}); meta-train tasks {train}; meta-test tasks {test}. "
            f"Meta-training: {cfg.episodes} outer steps x {per} tasks, support {cfg.shots}+{cfg.shots}, query "
            f"{cfg.query_size}, {cfg.inner_steps} inner SGD steps (lr {cfg.inner_lr:g}, {order}, adapt {cfg.adapt}). "
            f"Meta-test: {cfg.draws} independent support draws per task, every other molecule of the task as query, "
            f"{cfg.inner_steps_test} adaptation steps; ROC-AUC per draw, mean ± std over all draws (none dropped).")


# ----------------------------------------------------------------------------- evaluation


def evaluate(model, spec: AdaptSpec, data: FewShotData, draws: int, seed: int, batch_size: int = 256,
             on_draw: Optional[Callable[[], None]] = None) -> Dict[str, List[float]]:
    """ROC-AUC of every (test task, support draw); the draws depend on the seed only, not the model."""
    from sklearn.metrics import roc_auc_score

    model.eval()
    tasks = data.test_tasks
    for task in tasks:
        check_task_fits(task, spec.shots)
    emb, row = None, {}
    if spec.adapt == "head":  # the GIN is not adapted: embed each molecule once
        ids = pool_ids(tasks)
        emb = embed_molecules(model, [data.molecules[i] for i in ids.tolist()], batch_size)
        row = {int(m): r for r, m in enumerate(ids.tolist())}
    results: Dict[str, List[float]] = {}
    for task in tasks:
        scores = []
        for draw in range(draws):
            gen = episode_generator(seed, 1_000 + task.index, draw)
            ep = sample_episode(task, spec.shots, None, gen)
            yq = ep.query_labels.numpy()
            if emb is not None:
                sup = emb[torch.tensor([row[int(m)] for m in ep.support_ids.tolist()])]
                adapted = adapt_to_support(model, spec, sup, ep.support_labels, gen)
                qry = emb[torch.tensor([row[int(m)] for m in ep.query_ids.tolist()])]
                probs = torch.sigmoid(torch.cat([adapted.logits_from_features(qry[i:i + batch_size])
                                                 for i in range(0, qry.size(0), batch_size)]))
            else:
                sup = collate([data.molecules[i] for i in ep.support_ids.tolist()])
                adapted = adapt_to_support(model, spec, sup, ep.support_labels, gen)
                probs = predict_molecules(adapted, [data.molecules[i] for i in ep.query_ids.tolist()], batch_size)
            scores.append(float(roc_auc_score(yq, probs.numpy())))
            if on_draw is not None:
                on_draw()
        results[task.name] = scores
    return results


def summarise(results: Dict[str, List[float]]) -> Dict[str, Any]:
    per_task = {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "draws": len(v), "values": v}
                for name, v in results.items()}
    return {"per_task": per_task, "mean": float(np.mean([s["mean"] for s in per_task.values()]))}


# ----------------------------------------------------------------------------- the run


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def spec_for(cfg: FewShotConfig, method: str) -> AdaptSpec:
    if method == "finetune":
        spec = AdaptSpec("finetune", cfg.adapt, cfg.finetune_steps, cfg.finetune_lr, cfg.shots)
    else:
        spec = AdaptSpec("maml", cfg.adapt, cfg.inner_steps_test, cfg.inner_lr, cfg.shots)
    spec.validate()
    return spec


def schema_dict() -> Dict[str, Any]:
    return {"kind": "molecule-hu2020", "num_node_features": 2, "num_edge_features": 2,
            "description": "RDKit atom type + chirality and bond type + direction indices (Hu et al. 2020)",
            "details": {"atom_embeddings": ATOM_EMBEDDINGS, "chirality": NUM_CHIRALITY,
                        "bond_embeddings": BOND_EMBEDDINGS, "bond_directions": NUM_BOND_DIRECTIONS}}


#: Settings that change neither a trained model nor its scores / only the evaluation.
_IRRELEVANT = ("methods", "pretrain", "data_root", "eval_batch_size", "resume")
_EVAL_ONLY = ("draws", "inner_steps_test", "finetune_steps", "finetune_lr")


def _same(stored: Dict[str, Any], cfg: FewShotConfig, ignore: tuple) -> bool:
    now = cfg.to_dict()
    return all(stored.get(k) == v for k, v in now.items() if k not in ignore)


def _reusable_results(res_path: Path, ckpt_path: Path, cfg: FewShotConfig) -> Optional[Dict[str, Any]]:
    """The stored results of a (method, pre-training) pair run with the same settings, if any."""
    if not (res_path.is_file() and ckpt_path.is_file()):
        return None
    try:
        stored = json.loads(res_path.read_text())
    except (OSError, ValueError):
        return None
    if not _same(stored.get("experiment", {}), cfg, _IRRELEVANT):
        return None
    stored.pop("experiment", None)
    return stored


def _reusable_checkpoint(ckpt_path: Path, cfg: FewShotConfig):
    """``(model, kind, losses, train_seconds)`` from a checkpoint trained with the same settings, if any."""
    if not ckpt_path.is_file():
        return None
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if not _same(ckpt.get("experiment", {}), cfg, _IRRELEVANT + _EVAL_ONLY):
            return None
        model = create_fewshot_model(ckpt["model"], **ckpt["model_config"])
        model.load_state_dict(ckpt["state_dict"])
    except Exception:  # unreadable or foreign: train again
        return None
    return model.eval(), ckpt["model"], ckpt.get("train_losses", []), ckpt.get("train_seconds")


def _train(cfg: FewShotConfig, method: str, model_cfg: Dict[str, Any], data: FewShotData,
           encoder_state: Optional[dict], name: str, report: Callable):
    """Train one method; ``(model, model name, per-step losses)``."""
    if method == "finetune":
        model = multitask_train(
            model_cfg, data, cfg.baseline_steps, cfg.baseline_batch_size, cfg.baseline_lr, cfg.seed, encoder_state,
            on_step=lambda s, loss: report(f"{name}: multi-task training", s + 1, cfg.baseline_steps, loss))
        return model, "fs-gin", []
    model = create_fewshot_model(method, **model_cfg)
    if encoder_state is not None:
        model.encoder.load_state_dict(encoder_state)
    settings = MetaSettings(cfg.shots, cfg.episodes, cfg.tasks_per_episode, cfg.query_size, cfg.inner_steps,
                            cfg.inner_lr, cfg.first_order, cfg.adapt, cfg.outer_lr_gnn, cfg.outer_lr_head,
                            cfg.weight_decay, cfg.pos_weight, cfg.grad_clip)
    losses = meta_train(model, data, settings, cfg.seed,
                        on_step=lambda s, loss: report(f"{name}: meta-training", s + 1, cfg.episodes, loss))
    return model, method, [round(v, 5) for v in losses]


def run_fewshot(cfg: FewShotConfig, out_dir: str | Path, progress: bool = True,
                data: Optional[FewShotData] = None) -> Dict[str, Any]:
    """Train and evaluate every (method, pre-training) pair; write metrics.json, per_task.csv,
    config.yaml, one checkpoint per pair under ``checkpoints/`` and its results under ``results/``
    (as soon as the pair is done, so that an interrupted run resumes; see ``resume``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cfg.validate()
    data = data if data is not None else load_tasks(cfg.dataset, cfg.data_root, cfg.source, cfg.invalid)
    for task in data.test_tasks:
        check_task_fits(task, cfg.shots)
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    model_cfg = fewshot_model_config(**cfg.model_args).to_dict()
    notes = list(data.notes)
    runs: List[Dict[str, Any]] = []
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        bars: Dict[str, Any] = {}

        def report(label: str, done: int, total: int, loss: Optional[float] = None) -> None:
            if label not in bars:
                bars[label] = bar.add_task(label, total=total, status="")
            bar.update(bars[label], completed=done, status="" if loss is None else f"loss {loss:.3f}")

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
        for variant in cfg.pretrain:
            for method in cfg.methods:
                name = f"{method}-{variant}"
                spec = spec_for(cfg, method)
                ckpt_path = out / "checkpoints" / f"{name}.pt"
                res_path = out / "results" / f"{name}.json"
                stored = _reusable_results(res_path, ckpt_path, cfg) if cfg.resume else None
                if stored is not None:
                    runs.append({**stored, "reused": "results"})
                    notes.append(f"{name}: results reused from {res_path} (same settings)")
                    continue
                previous = _reusable_checkpoint(ckpt_path, cfg) if cfg.resume else None
                t0 = time.perf_counter()
                if previous is not None:
                    model, kind, losses, t_train = previous
                    notes.append(f"{name}: model reused from {ckpt_path} (same training settings), evaluated again")
                else:
                    _seed_everything(cfg.seed)
                    model, kind, losses = _train(cfg, method, model_cfg, data, encoders[variant], name, report)
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
                       "train_losses": losses, "checkpoint": f"checkpoints/{name}.pt",
                       "reused": "checkpoint" if previous is not None else None}
                runs.append(run)
                save_checkpoint(ckpt_path, {
                    "model": kind, "model_config": model_cfg, "state_dict": model.state_dict(),
                    "schema": schema_dict(), "task": CHECKPOINT_TASK, "dataset": data.name,
                    "experiment": cfg.to_dict(), "fewshot": {**spec.to_dict(), "name": method, "pretrain": variant,
                                                             "seed": cfg.seed},
                    "metrics": {"mean_roc_auc": summary["mean"],
                                "per_task": {k: v["mean"] for k, v in summary["per_task"].items()}},
                    "train_seconds": t_train, "train_losses": losses, "version": __version__,
                })
                res_path.parent.mkdir(parents=True, exist_ok=True)
                res_path.write_text(json.dumps({**run, "experiment": cfg.to_dict()}, indent=2))
    metrics = {"dataset": data.name, "source": data.source, "shots": cfg.shots, "metric": "roc_auc",
               "protocol": protocol(cfg, data), "reduced": reductions(cfg), "notes": notes,
               "train_tasks": [t.name for t in data.train_tasks], "test_tasks": [t.name for t in data.test_tasks],
               "pretraining": pretrain_info, "config": cfg.to_dict(), "runs": runs, "version": __version__}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    (out / "per_task.csv").write_text(per_task_csv(runs))
    return metrics


def per_task_csv(runs: List[Dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "pretrain", "task", "roc_auc_mean", "roc_auc_std", "draws"])
    for run in runs:
        for task, s in run["per_task"].items():
            writer.writerow([run["method"], run["pretrain"], task, f"{s['mean']:.4f}", f"{s['std']:.4f}", s["draws"]])
        writer.writerow([run["method"], run["pretrain"], "mean", f"{run['mean']:.4f}", "", ""])
    return buf.getvalue()


def results_table(metrics: Dict[str, Any]):
    """A rich table: meta-test tasks (and their mean) by run, ROC-AUC mean ± std over draws."""
    from rich.table import Table

    table = Table(title=f"{metrics['dataset']} {metrics['shots']}-shot: ROC-AUC on the meta-test tasks")
    table.add_column("task")
    for run in metrics["runs"]:
        table.add_column(f"{run['method']} ({run['pretrain']})", justify="right")
    for task in metrics["test_tasks"]:
        table.add_row(task, *(f"{r['per_task'][task]['mean']:.4f} ± {r['per_task'][task]['std']:.4f}"
                              for r in metrics["runs"]))
    table.add_row("mean", *(f"{r['mean']:.4f}" for r in metrics["runs"]))
    return table
