"""Reproduce DIFFormer's semi-supervised node classification (Cora, CiteSeer) with difformer-s,
difformer-a, gcn, gat and sgformer, under two protocols, in one script.

Each experiment is a config under configs/difformer/ (<dataset>_<model>_<protocol>.yaml):

- ``random``: a new split per seed with 20 training nodes per class, 500 validation and 1000 test
  nodes (``split: per_class``);
- ``public``: the Planetoid public split (also 20 per class / 500 / 1000, but one fixed split);
- ``authors``: the one split the authors' script trains all five runs on (``split: file``, from
  ``../shared/splits/``): the protocol behind the paper's table.

Both run 5 seeds and keep the epoch that scores best on validation: 500 epochs for DIFFormer, at
most 500 with patience 100 for the baselines.

    python benchmarks/reproduce_difformer.py --data-root ../shared/datasets          # everything
    python benchmarks/reproduce_difformer.py --only cora_difformer-s_random --max-runs 2 --epochs 200
    python benchmarks/reproduce_difformer.py --render-only

Every finished experiment is saved under benchmarks/results/difformer/citation/<config>.json (an
interrupted run resumes), and the table is rewritten into BENCHMARKS.md from all saved results.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from authors_code import authors_code_cells, authors_code_line  # noqa: E402
from bench_layers import findings_lines, write_section  # noqa: E402
from difformer_runs import CONFIGS, RESULTS, ROOT, cached, partial_path, run_config  # noqa: E402

OUT = RESULTS / "citation"
MARK = "<!-- reproduce_difformer -->"
MODELS = ("difformer-s", "difformer-a", "sgformer", "gat", "gcn")
DATASETS = ("Cora", "CiteSeer")

# Published test accuracy (%) under the random 20-per-class protocol: Wu et al., ICLR 2023, Table 1.
PAPER = {("difformer-s", "Cora"): "85.9 ± 0.4", ("difformer-a", "Cora"): "84.1 ± 0.6",
         ("gcn", "Cora"): "81.5", ("gat", "Cora"): "83.0"}

# The authors' code (node classification/main.py, run.sh settings) on their one split, run on this
# machine (5 runs, 500 epochs, test at the best validation epoch): its per-run test accuracies, the
# command and the environment, in benchmarks/results/difformer/authors_code.json. A row without
# an entry there says "not run here".
AUTHORS_CODE_FILE = RESULTS / "authors_code.json"


# What we found where our numbers and the paper's differ (kept with the table; edit after a run).
FINDINGS: list[str] = [
    "Baselines. An earlier run trained gcn and gat as this library's residual stack (input encoder, "
    "BatchNorm, residual connections, MLP head) and scored about 6 points below the published 81.5 / 83.0 on "
    "Cora (gcn 73.4 random / 75.6 public, gat 74.6 / 76.2). The stack was the cause: BatchNorm statistics "
    "over 140 labelled nodes and a raw-feature residual overfit. The configs now build the papers' own "
    "stacks (`plain: true`: two convolutions, dropout on every layer's input, row-normalised features, "
    "Kipf & Welling's and Velickovic et al.'s hyper-parameters). With them gcn scores 81.4 on the public "
    "split and 79.9 on random splits against the published 81.5, and gat 81.7 / 81.3 against 83.0.",
    "DIFFormer-s on Cora: 83.2 ± 1.0 on our random splits (a new split per seed) against the published "
    "85.9 ± 0.4, which the authors' script draws as five initialisations on ONE split. On that split "
    "(`cora_difformer-s_authors.yaml`) it scores 85.5 ± 0.6 against the paper's 85.9 ± 0.4, within "
    "one standard deviation, and the authors' own code, run here on the same split, scores the same 85.5 "
    "(runs 84.5-86.3; CiteSeer 75.1 against our 75.2): parity. The 2.7-point gap of the random row is the protocol (that one split is an "
    "easy one: gcn and gat also score 0.5-2.2 points more on it than on ours), not the model. On CiteSeer "
    "one seed of five collapsed under our protocol (seed 1: 61.5% test, also the lowest validation score, "
    "68.0%); the other four score 71.6-73.6%. On the authors' split the same five seeds all land at "
    "74.5-76.2% (75.2 ± 0.6): the collapse came with seed 1's split, not with its initialisation.",
    "DIFFormer-a on Cora, full protocol (random splits, 5 seeds, 500 epochs): 83.1 ± 1.3 against the "
    "published 84.1 ± 0.6, level with DIFFormer-s here as in the paper. Its best validation epochs fall at "
    "255-497, so the public-split row, reduced to 200 epochs while the machine was shared, is under-trained "
    "(two of its three runs peaked at epochs 196-197 of 200) and says little. On the authors' split, all five "
    "seeds: 84.3 ± 0.6 (83.5-85.1, best validation epochs 331-497; `--only cora_difformer-a_authors`, "
    "2026-12-04), beside the authors' code's 84.7 on the same split (2 of its 5 runs) and the paper's 84.1: "
    "parity, as for DIFFormer-s.",
    "PyG's SGFormer is run as PyG ships it, with the SGFormer authors' Cora hyper-parameters, and "
    "scores far below the other models. Its GCN branch hard-codes BatchNorm after every layer, the "
    "same construction that cost our old baselines six points on 140 labelled nodes (first finding). The "
    "table keeps PyG's implementation unmodified: it is the peer as a user would get it.",
]


def citeseer_a_findings(results: dict) -> list:
    """DIFFormer-a on CiteSeer's authors' split, seed by seed, written from the saved row."""
    a, s = results.get("citeseer_difformer-a_authors"), results.get("citeseer_difformer-s_authors")
    if not a:
        return []
    tests = [100 * r["test"]["accuracy"] for r in a["per_run"]]
    done = f"all {len(tests)} seeds" if a["runs_done"] == a["runs_in_protocol"] else (
        f"{a['runs_done']} of {a['runs_in_protocol']} seeds (15-30 minutes a run here; the row continues where it "
        "stopped: `--only citeseer_difformer-a_authors`)")
    beside = f", beside difformer-s's {100 * s['summary']['test_accuracy']['mean']:.1f} there" if s else ""
    return [f"DIFFormer-a on CiteSeer's authors' split, {done}: " + ", ".join(f"{t:.1f}" for t in tests)
            + f", mean {100 * a['summary']['test_accuracy']['mean']:.1f}{beside}."]


def pct(summary: dict, key: str = "test_accuracy") -> str:
    s = summary.get(key)
    if not s or s["mean"] is None:
        return "n/a"
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def cell(r: dict | None) -> str:
    if r is None:
        return "not run"
    epochs, full_epochs = r["settings"]["epochs"], yaml.safe_load((ROOT / r["config"]).read_text())["epochs"]
    full = r["runs_done"] == r["runs_in_protocol"] and epochs >= full_epochs
    tag = "" if full else f" (**reduced**: {r['runs_done']}/{r['runs_in_protocol']} runs, {epochs} epochs)"
    return pct(r["summary"]) + tag


def render() -> str:
    results = {p.stem: json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))}
    if not results:
        return ""
    any_r = next(iter(results.values()))
    dates = sorted({r["date"] for r in results.values()})
    lines = [MARK, "## DIFFormer setting 1: semi-supervised node classification (Cora, CiteSeer)", "",
             "- command: `python benchmarks/reproduce_difformer.py --data-root ../shared/datasets` "
             "(configs in `configs/difformer/`); "
             f"machine: {any_r['machine']}; date: {', '.join(dates)}",
             "- metric: test accuracy (%) of the epoch that scored best on validation, mean ± std "
             "(population) over 5 seeds; difformer-s/-a 500 epochs, gcn/gat/sgformer at most 500 epochs "
             "with patience 100 (they peak within ~150)",
             "- **random**: a new split per seed, 20 training nodes per class, 500 validation and 1000 "
             "test nodes drawn from the rest (`split: per_class`); "
             "**public**: the Planetoid split (20 per class / 500 / 1000, the same for every seed); "
             "**authors' split**: the one split the authors' `main.py` trains every run on (`--rand_split_class "
             "--seed 123`: five 20-per-class splits drawn, the first used by all five runs; "
             "`../shared/splits/<Dataset>_difformer_seed123.json`, configs `*_authors.yaml`, `split: file`): "
             "the protocol behind the paper's table, five initialisations on one split",
             authors_code_line(AUTHORS_CODE_FILE, "Mean ± std computed here as for our rows (population std) from "
                               "their printed per-run `Final Test`."),
             "- paper: Wu et al., ICLR 2023, Table 1 (random protocol). The CiteSeer numbers are not "
             "quoted: no copy of the table could be checked here", "",
             "| dataset | model | random split (%) | public split (%) | authors' split (%) | authors' code, "
             "authors' split (%) | paper (%) | s / run |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    code_cells = authors_code_cells(AUTHORS_CODE_FILE)
    for ds in DATASETS:
        for model in MODELS:
            rand = results.get(f"{ds.lower()}_{model}_random")
            pub = results.get(f"{ds.lower()}_{model}_public")
            theirs = results.get(f"{ds.lower()}_{model}_authors")
            if rand is None and pub is None and theirs is None:
                continue
            secs = [r["seconds"] / max(r["runs_done"], 1) for r in (rand, pub, theirs) if r is not None]
            paper = PAPER.get((model, ds), "not quoted" if ds == "CiteSeer" else "—")
            code = code_cells.get((model, ds), "not run here")
            authors = cell(theirs) if (ds.lower(), model) in AUTHORS_CONFIGS else "—"
            lines.append(f"| {ds} | {model} | {cell(rand)} | {cell(pub)} | {authors} | {code} | {paper} | "
                         f"{sum(secs) / len(secs):.0f} |")
            for stem, (vds, label) in VARIANTS.items():
                r = results.get(stem)
                if vds == ds and r is not None and r["model"] == model:
                    lines.append(f"| {ds} | {label} | {cell(r)} | — | — | — | — | "
                                 f"{r['seconds'] / max(r['runs_done'], 1):.0f} |")
    lines.append("")
    lines += findings_lines(FINDINGS + citeseer_a_findings(results))
    return "\n".join(lines) + "\n"


AUTHORS_CONFIGS = {tuple(p.stem.split("_")[:2]) for p in CONFIGS.glob("*_authors.yaml")}
RUN_ORDER = ("gcn", "gat", "sgformer", "difformer-s", "difformer-a")  # cheap first; -a is quadratic
#: Extra rows: config stem -> (dataset, row label); random protocol only.
VARIANTS = {"cora_difformer-s_random_l2": ("Cora", "difformer-s, per-node L2 (qk_norm: node), raw features")}


def configs() -> list[Path]:
    def key(p: Path):
        ds, model, rest = p.stem.split("_", 2)
        return RUN_ORDER.index(model), DATASETS.index(next(d for d in DATASETS if d.lower() == ds)), rest
    return sorted((p for ds in DATASETS for p in CONFIGS.glob(f"{ds.lower()}_*.yaml")), key=key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=os.environ.get("GNNFORMER_DATA"))
    ap.add_argument("--only", nargs="*", help="config stems to run (default: all)")
    ap.add_argument("--models", nargs="*", choices=MODELS, help="run only these models")
    ap.add_argument("--epochs", type=int, help="reduce: at most this many epochs")
    ap.add_argument("--max-runs", type=int, help="reduce: only the first K seeds")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    if not args.render_only:
        for path in configs():
            values = yaml.safe_load(path.read_text())
            if (args.only and path.stem not in args.only) or (args.models and values["model"] not in args.models):
                continue
            overrides = {}
            if args.data_root:
                overrides["data_root"] = args.data_root
            if args.epochs:
                overrides["epochs"] = min(args.epochs, values["epochs"])
            out = OUT / f"{path.stem}.json"
            cached(out, lambda path=path, o=overrides, out=out: run_config(path, o, args.max_runs, partial_path(out)),
                   args.max_runs)
            write_section(ROOT / "BENCHMARKS.md", MARK, render())
    write_section(ROOT / "BENCHMARKS.md", MARK, render())
    print(render())


if __name__ == "__main__":
    main()
