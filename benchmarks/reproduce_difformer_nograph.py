"""DIFFormer setting 3, classification without an input graph: digits at 10 / 50 / 100 labels per class.

One run trains every model of the comparison on the same label draws (seed s draws the same
labelled, validation and test nodes for every model):

* ``mlp``: per-node MLP, no graph (configs/difformer/digits_mlp.yaml)
* ``gcn`` on a feature kNN graph (dataset digits-knn; configs/difformer/digits_gcn_knn.yaml)
* ``difformer-s`` and ``difformer-a`` with ``use_graph: false`` on the edgeless graph
  (configs/difformer/digits_difformer_{s,a}.yaml)

    python benchmarks/reproduce_difformer_nograph.py                 # 5 seeds x 3 budgets x 4 models
    python benchmarks/reproduce_difformer_nograph.py --stage knn     # how k of the kNN graph was chosen
    python benchmarks/reproduce_difformer_nograph.py --stage tune    # how the hyper-parameters were chosen

Each config holds the 10-labels-per-class protocol; the script sets ``per_class`` to 50 and 100
for the other columns. Finished runs are kept under benchmarks/results/difformer/nograph/ (an
interrupted run resumes) and the table is rewritten into BENCHMARKS.md from all saved results.
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_layers import findings_lines, write_section  # noqa: E402
from difformer_runs import CONFIGS, RESULTS, ROOT, cached, mean_std, partial_path, run_config  # noqa: E402

OUT = RESULTS / "nograph"
MARK = "<!-- reproduce_difformer_nograph -->"
BUDGETS = (10, 50, 100)
MODELS = {  # config stem -> row label
    "digits_mlp": "MLP (no graph)",
    "digits_gcn_knn": "GCN on kNN graph",
    "digits_difformer_s": "DIFFormer-s (use_graph: false)",
    "digits_difformer_a": "DIFFormer-a (use_graph: false)",
}
KNN_K = (3, 5, 10, 15, 20)
KNN_BUDGETS = (10, 50)
KNN_SEEDS = 3
#: Hyper-parameter grid, searched per model at 10 labels per class on validation accuracy.
GRID = {"lr": (0.01, 0.001), "layers": (2, 4), "dropout": (0.2, 0.5)}
#: DIFFormer-a (quadratic attention, the slowest by far on CPU) is searched at lr 0.01 only: lr 0.001
#: was worse on validation for each of the other three models.
GRID_OF = {"digits_difformer_a": {**GRID, "lr": (0.01,)}}
TUNE_SEEDS = 2


def stage_main(max_runs: int | None, only: list[str] | None) -> None:
    for stem in MODELS:
        if only and stem not in only:
            continue
        for k in BUDGETS:
            out = OUT / f"{stem}_{k}pc.json"
            cached(out, lambda stem=stem, k=k, out=out: run_config(CONFIGS / f"{stem}.yaml", {"per_class": k}, max_runs,
                                                                   partial=partial_path(out)), max_runs)
            write_section(ROOT / "BENCHMARKS.md", MARK, render())


def stage_knn() -> None:
    for k, budget in itertools.product(KNN_K, KNN_BUDGETS):
        cached(OUT / "knn" / f"k{k}_{budget}pc.json",
               lambda k=k, b=budget: run_config(CONFIGS / "digits_gcn_knn.yaml",
                                                {"per_class": b, "runs": KNN_SEEDS, "dataset_args": {"k": k}}))


def stage_tune(only: list[str] | None) -> None:
    for stem in MODELS:
        if only and stem not in only:
            continue
        for lr, layers, dropout in itertools.product(*GRID_OF.get(stem, GRID).values()):
            cached(OUT / "tune" / f"{stem}_lr{lr}_l{layers}_d{dropout}.json",
                   lambda stem=stem, lr=lr, layers=layers, dropout=dropout: run_config(
                       CONFIGS / f"{stem}.yaml", {"per_class": 10, "runs": TUNE_SEEDS, "lr": lr,
                                                  "model_args": {"layers": layers, "dropout": dropout}}))


def _load(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


#: What the table shows, and where it departs from the paper (kept with the table; edit after a run).
FINDINGS: list[str] = [
    "Without a graph, neither DIFFormer variant learns structure that helps here: both are level "
    "with the MLP at every label budget (10 per class: -s 89.5, -a 89.2, MLP 88.8), while a GCN on "
    "a 10-nearest-neighbour graph of the same features leads by 6-7 points at 10 labels per class. "
    "The paper reports DIFFormer ahead of its baselines on its image/text sets; we do not reproduce "
    "that on digits, with a small hyper-parameter search (lr x layers x dropout, 2 seeds) and the "
    "models' default diffusion settings.",
    "DIFFormer-a at 50 and 100 labels per class is reduced to the first 3 of 5 seeds (CPU time).",
]


def render() -> str:
    main = {(Path(r["config"]).stem, r["settings"]["per_class"]): r for r in _load(OUT)}
    knn, tune = _load(OUT / "knn"), _load(OUT / "tune")
    if not (main or knn or tune):
        return ""
    everything = list(main.values()) + knn + tune
    any_r = next(iter(main.values()), everything[0])
    lines = [MARK, "## DIFFormer setting 3: classification without an input graph (digits)", "",
             "- data: scikit-learn's digits (1797 8x8 images, 10 classes, pixels / 16) as one graph of 1797 "
             "nodes with **no edges**; the kNN-GCN baseline gets a graph built from the features instead "
             f"(dataset `digits-knn`: each node linked to its k nearest nodes, Euclidean, symmetrised)",
             f"- protocol: {re.sub(r'^[0-9]+ training nodes', 'K training nodes', any_r['protocol'])} "
             "(K = 10 / 50 / 100; seed s draws the same nodes for every model); test accuracy (%) of the "
             "weights with the best validation accuracy, mean ± std (population) over the seeds",
             f"- command: `python benchmarks/reproduce_difformer_nograph.py`; configs: `configs/difformer/digits_*.yaml` "
             f"(each runs alone as `gnnformer train --config configs/difformer/digits_mlp.yaml`); "
             f"machine: {any_r['machine']}; date: {max(r['date'] for r in everything)}", "",
             "| model | " + " | ".join(f"{k} labels / class" for k in BUDGETS) + " | seeds |",
             "|---|" + "---:|" * len(BUDGETS) + "---|"]
    for stem, label in MODELS.items():
        cells = [mean_std(main[(stem, k)]["summary"], "test_accuracy", 100) if (stem, k) in main else "—"
                 for k in BUDGETS]
        runs = {f"{main[(stem, k)]['runs_done']}/{main[(stem, k)]['runs_in_protocol']}"
                for k in BUDGETS if (stem, k) in main}
        if len(runs) > 1:  # some budgets reduced: say which, per cell
            cells = [c if (stem, k) not in main or main[(stem, k)]["runs_done"] == main[(stem, k)]["runs_in_protocol"]
                     else f"{c} (**reduced**: {main[(stem, k)]['runs_done']}/{main[(stem, k)]['runs_in_protocol']})"
                     for c, k in zip(cells, BUDGETS)]
            runs = {"see cells"}
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {', '.join(sorted(runs)) or '—'} |")
    lines.append("")

    if knn:
        by = {(r["settings"]["dataset_args"]["k"], r["settings"]["per_class"]): r for r in knn}
        lines += [f"Choice of k for the kNN graph (`--stage knn`): GCN validation accuracy (%), mean over "
                  f"{KNN_SEEDS} seeds; test accuracy in brackets for reference only.", "",
                  "| k | " + " | ".join(f"{b} labels / class" for b in KNN_BUDGETS) + " | mean validation |",
                  "|---:|" + "---:|" * len(KNN_BUDGETS) + "---:|"]
        for k in KNN_K:
            rs = [by.get((k, b)) for b in KNN_BUDGETS]
            if not all(rs):
                continue
            cells = [f"{100 * r['summary']['val_accuracy']['mean']:.2f} ({100 * r['summary']['test_accuracy']['mean']:.2f})"
                     for r in rs]
            mean = sum(100 * r["summary"]["val_accuracy"]["mean"] for r in rs) / len(rs)
            lines.append(f"| {k} | " + " | ".join(cells) + f" | {mean:.2f} |")
        lines.append("")

    if tune:
        lines += [f"Hyper-parameters (`--stage tune`): for every model, lr x layers x dropout in "
                  f"{' x '.join(str(list(v)) for v in GRID.values())} at 10 labels per class, {TUNE_SEEDS} seeds "
                  "(DIFFormer-a, the slowest on CPU: lr 0.01 only, as lr 0.001 was worse for each other model); "
                  "best mean validation accuracy, ties to the lower validation loss (the configs hold these values; hidden 64, weight decay 5e-4, "
                  "300 epochs with patience 100 for all):", "",
                  "| model | lr | layers | dropout | validation accuracy (%) | settings tried |", "|---|---:|---:|---:|---:|---:|"]
        for stem, label in MODELS.items():
            grid = GRID_OF.get(stem, GRID)
            rs = [r for r in tune if Path(r["config"]).stem == stem and r["settings"]["lr"] in grid["lr"]]
            if not rs:
                continue
            best = max(rs, key=lambda r: (r["summary"]["val_accuracy"]["mean"], -r["summary"]["val_loss"]["mean"]))
            s = best["settings"]
            lines.append(f"| {label} | {s['lr']:g} | {s['model_args']['layers']} | {s['model_args']['dropout']:g} | "
                         f"{mean_std(best['summary'], 'val_accuracy', 100)} | {len(rs)} |")
        lines.append("")
    lines += findings_lines(FINDINGS)
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=("main", "knn", "tune"), default="main")
    ap.add_argument("--only", nargs="*", help="config stems to run (default: all four)")
    ap.add_argument("--max-runs", type=int, help="reduce: only the first K seeds")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    if not args.render_only:
        if args.stage == "main":
            stage_main(args.max_runs, args.only)
        elif args.stage == "knn":
            stage_knn()
        else:
            stage_tune(args.only)
    text = render()
    if text:
        write_section(ROOT / "BENCHMARKS.md", MARK, text)
    print(text)


if __name__ == "__main__":
    main()
