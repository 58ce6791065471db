"""GLEM end to end (``gnnformer glem``): load a text-attributed graph, run the EM schedule
(``em.py``) for every seed, write metrics.json, config.yaml and one GLEM-LM checkpoint per seed.

Reported per seed, each with its wall time: the LM alone (fine-tuned on the gold training
labels), the GNN on the frozen LM's embeddings, GLEM-LM and GLEM-GNN after every EM iteration,
and GLEM-LM / GLEM-GNN at their best-validation iteration (Zhao et al., ICLR 2023). A row's
``seconds`` is the wall time of every stage its result depends on (pre-training included); each
stage's own time is in ``per_seed[i]['stages']``.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from .. import __version__
from ..models.lm import TextClassifier, default_lm_path, load_tokenizer
from ..progress import Progress
from ..tasks.metrics import mean_std
from ..training.checkpoint import save_checkpoint
from ..training.experiment import check_output_folder
from ..training.runtime import resolve_device, seed_everything
from .em import EMResult, GLEMRun
from .lm_stage import freeze_lower_layers, frozen_states, tokenize
from .predict import CHECKPOINT_MODEL
from .settings import GLEMConfig

__all__ = ["run_glem", "load_graph"]


def load_graph(cfg: GLEMConfig):
    from ..datasets.text_graph import load_text_dataset

    if cfg.nodes is not None:
        return load_text_dataset(cfg.nodes, cfg.edges, data_root=cfg.data_root)
    return load_text_dataset(cfg.dataset, data_root=cfg.data_root)


def _split(graph, cfg: GLEMConfig, seed: int):
    from ..datasets.text_graph import text_graph_split

    return text_graph_split(graph, cfg.split, seed, cfg.split_file)


def run_glem(cfg: GLEMConfig, out: str | Path, progress: bool = True, graph=None) -> Dict[str, Any]:
    """Every seed of ``cfg``; metrics.json, config.yaml and checkpoints/ in ``out``. The data and the
    output folder are checked before any training; a run that fails removes the folder it made."""
    out = Path(out)
    graph = graph if graph is not None else load_graph(cfg)
    lm_path = str(cfg.lm_path or default_lm_path())
    if cfg.split == "file":
        _split(graph, cfg, cfg.seeds[0])  # a bad split file or column is refused before anything is written
    created = check_output_folder(out)  # fails now, not after an hour of training
    try:
        return _run(cfg, out, progress, graph, lm_path)
    except BaseException:
        if created and out.is_dir():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run(cfg: GLEMConfig, out: Path, progress: bool, graph, lm_path: str) -> Dict[str, Any]:
    device = resolve_device(cfg.device)
    started = time.perf_counter()
    tokens = tokenize(load_tokenizer(lm_path), graph.texts, cfg.max_length)
    tokenize_seconds = time.perf_counter() - started
    per_seed: List[Dict[str, Any]] = []
    notes: List[str] = []
    notes_states: List[str] = []
    with Progress(enabled=progress) as bar:
        for seed in cfg.seeds:
            seed_everything(seed)
            split = _split(graph, cfg, seed)
            model = TextClassifier(lm_path, graph.num_classes, cfg.lm_dropout).to(device)
            frozen = freeze_lower_layers(model, cfg.lm_train_layers)
            if frozen and tokens.hidden is None and not notes_states:  # the same frozen weights for every seed
                tokens, why = frozen_states(model, tokens.on(device), frozen, cfg.infer_batch_size,
                                            cfg.lm_state_cache_mb, bar)
                notes_states.append(why or f"states after the {frozen} frozen LM blocks computed once "
                                           f"({time.perf_counter() - started:.0f} s with tokenising)")
            start = time.perf_counter()
            res = GLEMRun(cfg, model, tokens.on(device), graph.y, graph.edge_index, graph.num_classes, split, bar,
                          seed).run()
            ckpt = _save(out / "checkpoints" / f"glem-lm-seed{seed}.pt", res, cfg, graph, lm_path, seed)
            per_seed.append(_seed_record(seed, split, res, time.perf_counter() - start, ckpt))
            notes += [n for n in res.notes if n not in notes]
    metrics = _summary(cfg, graph, per_seed, notes_states + notes, tokenize_seconds)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return metrics


def _save(path: Path, res: EMResult, cfg: GLEMConfig, graph, lm_path: str, seed: int) -> Path:
    """GLEM-LM at its best-validation iteration, with what text-only prediction needs."""
    score = res.lm[res.best_lm]
    return save_checkpoint(path, {
        "model": CHECKPOINT_MODEL,
        "model_config": {"lm_path": lm_path, "default_lm": cfg.lm_path is None, "num_classes": graph.num_classes,
                         "dropout": cfg.lm_dropout, "max_length": cfg.max_length},
        "state_dict": {k: v.cpu() for k, v in res.lm_state.items()},
        "schema": {"kind": "text", "class_names": list(graph.class_names)},
        "task": "node_classification",
        "dataset": graph.name,
        "experiment": cfg.to_dict(),
        "glem": {"seed": seed, "iteration": res.best_lm, "val_accuracy": score["val"], "test_accuracy": score["test"],
                 "version": __version__},
    })


def _seed_record(seed: int, split, res: EMResult, seconds: float, ckpt: Path) -> Dict[str, Any]:
    return {"seed": seed, "split_sizes": list(split.sizes()), "lm": res.lm, "gnn": res.gnn,
            "best_lm_iteration": res.best_lm, "best_gnn_iteration": res.best_gnn, "seconds": seconds,
            "stages": [{"stage": s.name, "iteration": s.iteration, "seconds": s.seconds, **s.info} for s in res.stages],
            "checkpoint": str(ckpt)}


def _seconds(record: Dict[str, Any], names: tuple, iterations: Optional[tuple] = None) -> float:
    return sum(s["seconds"] for s in record["stages"]
               if s["stage"] in names and (iterations is None or s["iteration"] in iterations))


def _row(model: str, records: List[Dict[str, Any]], pick, seconds) -> Dict[str, Any]:
    """One table row: val/test accuracy over seeds (``pick(record) -> {'val', 'test'}``) and seconds."""
    chosen = [pick(r) for r in records]
    return {"model": model, "val_accuracy": mean_std([c["val"] for c in chosen]),
            "test_accuracy": mean_std([c["test"] for c in chosen]),
            "seconds": mean_std([seconds(r) for r in records])}


def _summary(cfg: GLEMConfig, graph, records: List[Dict[str, Any]], notes: List[str], tokenize_seconds: float):
    lm_stages, gnn_stages = ("lm-pretrain", "lm-train", "lm-infer"), ("gnn-pretrain", "gnn-train")
    rows = [_row("LM alone", records, lambda r: r["lm"][0], lambda r: _seconds(r, lm_stages, (0,))),
            _row(f"{cfg.gnn} on LM embeddings", records, lambda r: r["gnn"][0],
                 lambda r: _seconds(r, gnn_stages, (0,)))]
    for it in range(1, cfg.em_iterations + 1):
        upto = tuple(range(it + 1))
        rows.append(_row(f"GLEM-LM, EM iteration {it}", records, lambda r, i=it: r["lm"][i],
                         lambda r, u=upto: _seconds(r, lm_stages + gnn_stages, u)))
        rows.append(_row(f"GLEM-GNN ({cfg.gnn}), EM iteration {it}", records, lambda r, i=it: r["gnn"][i],
                         lambda r, u=upto: _seconds(r, lm_stages + gnn_stages, u)))
    if cfg.em_iterations:
        rows.append(_row("GLEM-LM (best validation iteration)", records, lambda r: r["lm"][r["best_lm_iteration"]],
                         lambda r: r["seconds"]))
        rows.append(_row(f"GLEM-GNN ({cfg.gnn}, best validation iteration)", records,
                         lambda r: r["gnn"][r["best_gnn_iteration"]], lambda r: r["seconds"]))
    return {"dataset": graph.name, "split": cfg.split, "gnn": cfg.gnn, "pseudo": cfg.pseudo, "order": cfg.order,
            "seeds": list(cfg.seeds), "rows": rows, "per_seed": records, "tokenize_seconds": tokenize_seconds,
            "notes": notes, "protocol": protocol(cfg, graph), "version": __version__}


def protocol(cfg: GLEMConfig, graph) -> str:
    return (f"GLEM on {graph.name} ({graph.num_nodes} nodes, {graph.num_classes} classes), split {cfg.split}; "
            f"LM max_length {cfg.max_length}, top {cfg.lm_train_layers or 'all'} layers trained, "
            f"{cfg.lm_epochs} pre-training + {cfg.lm_em_epochs} E-step epoch(s); GNN {cfg.gnn}; "
            f"{cfg.em_iterations} EM iteration(s), {cfg.order}, pseudo-labels {cfg.pseudo} (pl_ratio {cfg.pl_ratio:g}, "
            f"pl_weight {cfg.pl_weight:g}, T {cfg.temperature:g}, pl_filter {cfg.pl_filter:g}); selection on "
            f"validation accuracy only; mean ± std over seeds {', '.join(map(str, cfg.seeds))}.")

