"""GLEM on citeseer-tag: does each model improve the other? One script, one run, BENCHMARKS.md.

For every (split, seed) cell of the plan, on the default GLEM settings (all-MiniLM-L6-v2, 128
tokens, top 2 of its 6 blocks trained; GCN), with one shared pre-training per cell:

- TF-IDF + GCN (scikit-learn's TfidfVectorizer on the texts, the GCN trained on gold labels);
- the LM alone (fine-tuned on the gold labels) and the GCN over its embeddings (EM iteration 0);
- a control: GLEM's schedule with no pseudo-labels (``pl_ratio=0``: each model just trains as
  many more times), which is what EM's gains have to be measured against;
- GLEM-LM and GLEM-GNN after EM iterations 1 and 2, pseudo-labels ``strict`` (never validation or
  test nodes) and ``transductive`` (every non-training node, the authors' setting), each model also
  at its best-validation iteration;
- GLEM with difformer-s as the GNN (transductive, one EM iteration);
- PyG's ``torch_geometric.llm.models.GLEM`` (``benchmarks/pyg_glem.py``) with the same LM, GNN,
  split, max length and pseudo-label count, in the cells the plan names ``pyg:<split>:<seed>``.

Every finished cell is appended to ``benchmarks/results/glem/cells.jsonl`` and the section is
rewritten, so the run can be stopped and resumed (``--resume``: cells already there are skipped).

    python benchmarks/bench_glem.py --data-root ../shared/datasets [--plan low-label:0,random:0,pyg:low-label:0]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_difformer_scaling import machine_line  # noqa: E402
from bench_graph_epoch import background_load  # noqa: E402
from bench_layers import findings_lines, write_section  # noqa: E402

MARK = "bench_glem"
RESULTS = ROOT / "benchmarks" / "results" / "glem" / "cells.jsonl"
DEFAULT_PLAN = ("low-label:0,random:0,pyg:low-label:0,low-label:1,random:1,low-label:2,low-label:3,low-label:4,"
                "random:2,random:3,random:4")
PUBLISHED = "ogbn-arxiv GLEM-GNN test accuracy: RevGAT 76.97 ± 0.19, GCN 75.93 ± 0.19 (Zhao et al. 2023, Table 2)"
DIFFORMER = dict(layers=2, hidden=64, heads=1, dropout=0.2, alpha=0.5, use_graph=True, use_weight=False,
                 qk_norm="graph")
EM_ITERATIONS = 2
#: The settings compared on one seed, each continuing from the seed's one pre-training. ``control``
#: is GLEM's schedule (as many LM and GNN trainings) with no pseudo-labels at all: what EM gains
#: over simply training each model more.
FORKS = (("strict", {}), ("transductive", {"pseudo": "transductive"}), ("control", {"pl_ratio": 0.0}),
         ("difformer-s", {"pseudo": "transductive", "gnn": "difformer-s", "em_iterations": 1, "model_args": DIFFORMER}))


def tfidf_gcn(graph, split, cfg, seed: int, progress) -> dict:
    """GCN over TF-IDF features of the texts (fitted on every text: no labels involved)."""
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer

    from gnnformer.glem.gnn_stage import GNNSettings, train_gnn
    from gnnformer.glem.pseudo import training_set
    from gnnformer.training.runtime import seed_everything

    start = time.perf_counter()
    x = torch.tensor(TfidfVectorizer(max_features=5000, sublinear_tf=True, stop_words="english")
                     .fit_transform(graph.texts).toarray(), dtype=torch.float32)
    seed_everything(seed)
    data = training_set(split.train, graph.y, graph.num_classes, split.train[:0], None, ratio=0.0, fraction=1.0,
                        temperature=cfg.temperature, generator=torch.Generator().manual_seed(seed))
    s = GNNSettings(cfg.gnn, dict(cfg.model_args), cfg.gnn_epochs, cfg.patience, cfg.gnn_lr, cfg.gnn_weight_decay,
                    cfg.pl_weight)
    logits, _ = train_gnn(x, graph.edge_index, graph.num_classes, data, s, val=split.val, y=graph.y,
                          progress=progress, label="TF-IDF")
    from gnnformer.tasks.metrics import accuracy

    return {"val": accuracy(logits[split.val], graph.y[split.val]),
            "test": accuracy(logits[split.test], graph.y[split.test]), "seconds": time.perf_counter() - start}


def _result(res) -> dict:
    return {"lm": res.lm, "gnn": res.gnn, "best_lm": res.best_lm, "best_gnn": res.best_gnn,
            "stages": [{"stage": s.name, "iteration": s.iteration, "seconds": s.seconds, **s.info}
                       for s in res.stages], "notes": res.notes}


def pretrained(cfg, graph, tokens, lm_path, split, seed: int, progress):
    """One seed's pre-training (LM, then GCN), from which every compared setting forks."""
    from gnnformer.glem.em import GLEMRun
    from gnnformer.glem.lm_stage import freeze_lower_layers
    from gnnformer.models.lm import TextClassifier
    from gnnformer.training.runtime import seed_everything

    seed_everything(seed)
    model = TextClassifier(lm_path, graph.num_classes, cfg.lm_dropout)
    freeze_lower_layers(model, cfg.lm_train_layers)
    return GLEMRun(cfg, model, tokens, graph.y, graph.edge_index, graph.num_classes, split, progress, seed).pretrain()


def ours(graph, tokens, lm_path, split_name: str, seed: int, data_root, progress) -> dict:
    from gnnformer.datasets.text_graph import text_graph_split
    from gnnformer.glem.settings import glem_config

    cfg = glem_config(dict(dataset="citeseer-tag", data_root=data_root, split=split_name, seeds=[seed],
                           em_iterations=EM_ITERATIONS, pseudo="strict"))
    split = text_graph_split(graph, split_name, seed)
    cell = {"split": split_name, "seed": seed, "sizes": list(split.sizes()), "tfidf": tfidf_gcn(graph, split, cfg, seed, progress)}
    base = pretrained(cfg, graph, tokens, lm_path, split, seed, progress)
    from gnnformer.glem.pseudo import candidates

    # With every node in a split the strict pool is empty: the strict run *is* the control, so it
    # runs once and is stored under both names (marked, so the report can tell).
    no_pool = len(candidates(graph.num_nodes, split.train, split.val, split.test, "strict")) == 0
    for name, changes in FORKS:
        if name == "control" and no_pool:
            cell[name] = dict(cell["strict"], same_run_as="strict")
            continue
        cell[name] = _result(base.fork(dataclasses.replace(cfg, **changes)).iterate())
    cell["settings"] = cfg.to_dict()
    return cell


def add_control(cell: dict, graph, tokens, lm_path, data_root, progress) -> dict:
    """The control of a stored cell that lacks it: the same pre-training (deterministic for the
    seed: its scores are checked against the stored ones), then the control fork."""
    from gnnformer.datasets.text_graph import text_graph_split
    from gnnformer.glem.settings import glem_config

    cfg = glem_config(cell["settings"])
    split = text_graph_split(graph, cell["split"], cell["seed"])
    base = pretrained(cfg, graph, tokens, lm_path, split, cell["seed"], progress)
    if base.lm_scores[0] != cell["strict"]["lm"][0] or base.gnn_scores[0] != cell["strict"]["gnn"][0]:
        raise SystemExit(f"pre-training of {cell['split']} seed {cell['seed']} did not repeat; rerun the cell")
    cell["control"] = _result(base.fork(dataclasses.replace(cfg, **dict(FORKS)["control"])).iterate())
    return cell


def peer(graph, lm_path, split_name: str, seed: int, pl_ratio: float) -> dict:
    from gnnformer.datasets.text_graph import text_graph_split
    from pyg_glem import run_pyg_glem

    split = text_graph_split(graph, split_name, seed)
    start = time.perf_counter()
    res = run_pyg_glem(graph, split, lm_path=lm_path, gnn="gcn", max_length=128, lm_epochs=1,
                       em_iterations=EM_ITERATIONS - 1, pseudo="transductive", seed=seed, pl_ratio=pl_ratio,
                       progress=False)
    return {"split": split_name, "seed": seed, "pyg": res, "wall": time.perf_counter() - start}


# --------------------------------------------------------------------------------------------
# report

def _ms(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.mean(values) * 100
    return f"{mean:.1f} ± {statistics.pstdev(values) * 100:.1f}" if len(values) > 1 else f"{mean:.1f}"


def _secs(values) -> str:
    return f"{statistics.mean(values):.0f}" if values else "-"


def _stage_seconds(run: dict, names, iterations) -> float:
    return sum(s["seconds"] for s in run["stages"] if s["stage"] in names and s["iteration"] in iterations)


LM, GNN = ("lm-pretrain", "lm-train", "lm-infer"), ("gnn-pretrain", "gnn-train")


def split_table(cells: list, pyg: list) -> list:
    n = len(cells)
    rows = []

    def row(name, picks, seconds):
        rows.append(f"| {name} | {_ms([p['val'] for p in picks])} | {_ms([p['test'] for p in picks])} | "
                    f"{_secs(seconds)} |")

    row("TF-IDF + GCN", [c["tfidf"] for c in cells], [c["tfidf"]["seconds"] for c in cells])
    s = [c["strict"] for c in cells]
    row("LM alone (fine-tuned on gold labels)", [r["lm"][0] for r in s], [_stage_seconds(r, LM, (0,)) for r in s])
    row("GCN on the LM's embeddings", [r["gnn"][0] for r in s], [_stage_seconds(r, GNN, (0,)) for r in s])
    for mode in ("strict", "transductive"):
        runs = [c[mode] for c in cells]
        for it in range(1, EM_ITERATIONS + 1):
            secs = [_stage_seconds(r, LM + GNN, tuple(range(it + 1))) for r in runs]
            row(f"GLEM-LM, {mode}, EM iteration {it}", [r["lm"][it] for r in runs], secs)
            row(f"GLEM-GNN (GCN), {mode}, EM iteration {it}", [r["gnn"][it] for r in runs], secs)
        secs = [_stage_seconds(r, LM + GNN, tuple(range(EM_ITERATIONS + 1))) for r in runs]
        row(f"**GLEM-LM, {mode}** (best validation iteration)", [r["lm"][r["best_lm"]] for r in runs], secs)
        row(f"**GLEM-GNN (GCN), {mode}** (best validation iteration)", [r["gnn"][r["best_gnn"]] for r in runs], secs)
    runs = [c["control"] for c in cells if "control" in c]
    if runs:
        secs = [_stage_seconds(r, LM + GNN, tuple(range(EM_ITERATIONS + 1))) for r in runs]
        row(f"control: the same schedule without pseudo-labels, LM after {EM_ITERATIONS} more epochs (best val.)",
            [r["lm"][r["best_lm"]] for r in runs], secs)
        row(f"control: the same schedule without pseudo-labels, GCN (best val.)",
            [r["gnn"][r["best_gnn"]] for r in runs], secs)
    d = [c["difformer-s"] for c in cells]
    row("difformer-s on the LM's embeddings", [r["gnn"][0] for r in d], [_stage_seconds(r, ("gnn-pretrain",), (0,)) for r in d])
    secs = [_stage_seconds(r, LM + GNN, (0, 1)) for r in d]
    row("GLEM-LM with difformer-s, transductive, EM iteration 1", [r["lm"][1] for r in d], secs)
    row("GLEM-GNN (difformer-s), transductive, EM iteration 1", [r["gnn"][1] for r in d], secs)
    for p in pyg:
        r = p["pyg"]
        pre = r["gnn"][0] if r["gnn"] and r["gnn"][0] else None
        rows.append(f"| PyG GLEM, seed {p['seed']}: LM / GNN after pre-training | "
                    f"{_ms([r['lm'][0]['val']]) if r['lm'][0] else '-'} / {_ms([pre['val']]) if pre else '-'} | "
                    f"{_ms([r['lm'][0]['test']]) if r['lm'][0] else '-'} / {_ms([pre['test']]) if pre else '-'} | |")
        rows.append(f"| PyG GLEM, seed {p['seed']}: GLEM-LM / GLEM-GNN (best validation iteration) | "
                    f"{_ms([r['best_lm']['val']])} / {_ms([r['best_gnn']['val']])} | "
                    f"{_ms([r['best_lm']['test']])} / {_ms([r['best_gnn']['test']])} | {p['wall']:.0f} |")
    head = [f"| model (seeds: {', '.join(str(c['seed']) for c in cells)}; {n} of 5) | val acc % | test acc % | "
            "seconds per seed |", "|---|---:|---:|---:|"]
    return head + rows


def peer_findings(by_split: dict, pyg_cells: list) -> list:
    """PyG's GLEM against ours (transductive, as PyG pseudo-labels) on the same split and seed."""
    out = []
    for p in pyg_cells:
        mine = next((c for c in by_split.get(p["split"], []) if c["seed"] == p["seed"]), None)
        if mine is None:
            continue
        r, t = p["pyg"], mine["transductive"]
        secs = _stage_seconds(t, LM + GNN, tuple(range(EM_ITERATIONS + 1)))
        out.append(f"PyG's GLEM, {p['split']} seed {p['seed']}, in this benchmark with the same LM, GCN, split and "
                   f"pl_ratio: GLEM-LM {r['best_lm']['test'] * 100:.1f} / GLEM-GNN {r['best_gnn']['test'] * 100:.1f} "
                   f"test against ours (transductive) {t['lm'][t['best_lm']]['test'] * 100:.1f} / "
                   f"{t['gnn'][t['best_gnn']]['test'] * 100:.1f}; {p['wall']:.0f} s against {secs:.0f} s (PyG: one EM "
                   f"iteration, ours {EM_ITERATIONS}; the two cells ran in different invocations, both beside other "
                   "work, so the seconds are rough). Its LM after "
                   f"pre-training scores {r['lm'][0]['test'] * 100:.1f} (one epoch of LoRA on the gold nodes, its "
                   "last-epoch weights, no selection), so its first pseudo-labels are mostly wrong and its GLEM-GNN "
                   "stays at its pre-training; the separate run below, with every non-training node pseudo-labelled, "
                   "gives its LM far more (pseudo-labelled) text to learn from.")
    return out


def findings(by_split: dict) -> list:
    out = []
    for split, cells in by_split.items():
        if not cells:
            continue
        lm0 = statistics.mean(c["strict"]["lm"][0]["test"] for c in cells)
        g0 = statistics.mean(c["strict"]["gnn"][0]["test"] for c in cells)
        ctl = [c["control"] for c in cells if "control" in c]
        if len(ctl) == len(cells):
            lm0 = statistics.mean(r["lm"][r["best_lm"]]["test"] for r in ctl)
            g0 = statistics.mean(r["gnn"][r["best_gnn"]]["test"] for r in ctl)
            out.append(f"{split}: the control (GLEM's schedule, no pseudo-labels) reaches LM {lm0 * 100:.1f}, GCN "
                       f"{g0 * 100:.1f}; the gains below are measured against it, not against the 1-epoch LM.")
            apart = [c for c in cells if split == "random" and "same_run_as" not in c["control"]]
            if apart:
                gaps = [abs(c["strict"]["lm"][c["strict"]["best_lm"]]["test"]
                            - c["control"]["lm"][c["control"]["best_lm"]]["test"]) for c in apart]
                out.append(f"random: `strict` and the control run the same schedule; where they ran separately "
                           f"(seed(s) {', '.join(str(c['seed']) for c in apart)}) their LMs differ by "
                           f"{statistics.mean(gaps) * 100:.1f} points from their random draws alone: the size of "
                           "one seed's noise. On the other seeds they are one run.")
        for mode in ("strict", "transductive"):
            lm = statistics.mean(c[mode]["lm"][c[mode]["best_lm"]]["test"] for c in cells)
            g = statistics.mean(c[mode]["gnn"][c[mode]["best_gnn"]]["test"] for c in cells)
            line = (f"{split}, {mode}: GLEM-LM {lm * 100:.1f} against {lm0 * 100:.1f} ({(lm - lm0) * 100:+.1f}); "
                    f"GLEM-GNN {g * 100:.1f} against {g0 * 100:.1f} ({(g - g0) * 100:+.1f}); mean test accuracy "
                    f"over {len(cells)} seed(s)")
            paired = [c for c in cells if "control" in c and (mode != "strict" or "same_run_as" not in c["control"])]
            if len(paired) > 1:
                def gain(c, part, key):
                    return (c[mode][part][c[mode][key]]["test"] - c["control"][part][c["control"][key]]["test"]) * 100

                words = []
                for part, key, name in (("lm", "best_lm", "GLEM-LM"), ("gnn", "best_gnn", "GLEM-GNN")):
                    d = [gain(c, part, key) for c in paired]
                    words.append(f"{name} {statistics.mean(d):+.1f} ± {statistics.pstdev(d):.1f}, better on "
                                 f"{sum(x > 0 for x in d)} of {len(d)}")
                line += "; per seed against the same seed's control: " + "; ".join(words)
            out.append(line + ".")
    return out


def report(records: list, load_before, load_after, minutes: float, plan: str) -> str:
    ours_cells = [r for r in records if "pyg" not in r]
    pyg_cells = [r for r in records if "pyg" in r]
    by_split = {s: sorted([c for c in ours_cells if c["split"] == s], key=lambda c: c["seed"])
                for s in ("random", "low-label")}
    done = ", ".join(f"{s}: {len(c)} seed(s)" for s, c in by_split.items())
    lines = [f"<!-- {MARK}:cpu -->", "## GLEM on citeseer-tag: LM and GNN, alone and trained in turn (cpu)", "",
             f"- date: {dt.date.today().isoformat()}; machine: {machine_line(load_before, load_after)}; "
             + (f"this invocation took {minutes:.0f} min" if minutes else "section rewritten from the stored cells"),
             f"- command: `python benchmarks/bench_glem.py --data-root ../shared/datasets --plan {plan}` "
             f"(resumable: cells in `{RESULTS.relative_to(ROOT)}`)",
             "- data: `citeseer-tag` (3186 CiteSeer papers, title + abstract, 6 classes, 4225 citation links); "
             "splits `random` (seeded 60/20/20) and `low-label` (20 per class / 500 / 1000), a new split per seed",
             "- settings: the defaults of `gnnformer glem` (all-MiniLM-L6-v2 from its wheel, 128 tokens, top 2 of 6 "
             "blocks + head trained, 1 LM epoch per stage, lr 1e-4, batch 16; GCN, 200 epochs, patience 50; "
             "pl_ratio 1, pl_weight 0.5, T 0.2; LM-first) with 2 EM iterations; every model selected on validation "
             "accuracy only; all settings of one seed share one pre-training (`GLEMRun.fork`)",
             (f"- **reduced**: {done} of the 5 planned per split, so that the run fits this session's machine time; "
              "re-running the command resumes with the missing seeds." if min(map(len, by_split.values())) < 5
              else f"- cells: {done}, run over several invocations of the command (`--resume`)"),
             "- seconds: wall time per seed; random seed 0 and low-label seed 0 ran while other benchmarks shared "
             "both cores (load 3-5 on 2 cores), so their times are upper bounds; on the random split the "
             "`strict` set is empty (every node is in a split), so `strict` and the control are the same schedule "
             "(run twice for seed 0, once and stored under both names since)",
             f"- published reference (different data, not available offline): {PUBLISHED}", ""]
    for split, cells in by_split.items():
        if not cells:
            continue
        lines += [f"### {split} split", ""] + split_table(cells, [p for p in pyg_cells if p["split"] == split]) + [""]
    for path in sorted(RESULTS.parent.glob("pyg-separate-*.json")):
        r = json.loads(path.read_text())
        lines += [f"PyG's GLEM in a **separate run** on the same machine and day (`{path.relative_to(ROOT)}`, "
                  "`python benchmarks/pyg_glem.py --split low-label --seed 0 --lm-epochs 1 --em-iterations 1`: "
                  "low-label split, seed 0, transductive, every non-training node pseudo-labelled, LoRA "
                  f"{'on' if r.get('lora') else 'off'}): LM after pre-training {r['lm'][0]['test'] * 100:.1f}, "
                  f"GNN after pre-training {r['gnn'][0]['test'] * 100:.1f}; GLEM-LM {r['best_lm']['test'] * 100:.1f}, "
                  f"GLEM-GNN {r['best_gnn']['test'] * 100:.1f} test accuracy (val {r['best_lm']['val'] * 100:.1f} / "
                  f"{r['best_gnn']['val'] * 100:.1f}); {r['wall_seconds']:.0f} s in all, of which the E-step "
                  f"{r['seconds']['em1_lm']:.0f} s.", ""]
    lines += ["PyG's GLEM runs as `benchmarks/pyg_glem.py` describes: its own class and losses, full-batch GNN "
              "(no pyg-lib here for its NeighborLoader), the LM fully trained with LoRA (peft), the GNN on the "
              "untouched LM's [CLS] vectors, last-epoch weights, one EM iteration, pseudo-labels on "
              "pl_ratio x |train| non-training nodes (transductive).", ""]
    lines += findings_lines(findings(by_split) + peer_findings(by_split, pyg_cells))
    return "\n".join(lines) + "\n"


def prepared_tokens(graph, lm_path, cfg, bar):
    """Tokens of every text and the frozen blocks' states: once for every cell."""
    from gnnformer.glem.lm_stage import freeze_lower_layers, frozen_states, tokenize
    from gnnformer.models.lm import TextClassifier, load_tokenizer

    tokens = tokenize(load_tokenizer(lm_path), graph.texts, cfg.max_length)
    probe = TextClassifier(lm_path, graph.num_classes)
    tokens, _ = frozen_states(probe, tokens, freeze_lower_layers(probe, cfg.lm_train_layers), cfg.infer_batch_size,
                              cfg.lm_state_cache_mb, bar)
    return tokens


def load_records() -> list:
    if not RESULTS.exists():
        return []
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--plan", default=DEFAULT_PLAN, help="comma-separated split:seed cells; pyg:split:seed for PyG's GLEM")
    ap.add_argument("--resume", action="store_true", help="skip the cells already stored")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--rewrite", action="store_true", help="only rewrite the section from the stored cells")
    args = ap.parse_args()

    from gnnformer.datasets.text_graph import load_text_dataset
    from gnnformer.glem.settings import glem_config
    from gnnformer.models.lm import default_lm_path
    from gnnformer.progress import Progress

    load_before, started = background_load(), time.perf_counter()
    if args.rewrite:
        write_section(ROOT / "BENCHMARKS.md", f"<!-- {MARK}:cpu -->",
                      report(load_records(), None, None, 0.0, args.plan))
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    records = load_records() if args.resume else []
    if not args.resume and RESULTS.exists() and not args.no_write:
        RESULTS.unlink()
    done = {(("pyg" if "pyg" in r else "ours"), r["split"], r["seed"]) for r in records}
    graph = load_text_dataset("citeseer-tag", data_root=args.data_root)
    lm_path = default_lm_path()
    cfg = glem_config(dict(dataset="citeseer-tag"))
    tokens = None
    with Progress() as bar:
        for cell in args.plan.split(","):
            parts = cell.split(":")
            kind, split, seed = ("pyg", parts[1], int(parts[2])) if parts[0] == "pyg" else ("ours", parts[0], int(parts[1]))
            if (kind, split, seed) in done:
                stored = next(r for r in records if "pyg" not in r and (r["split"], r["seed"]) == (split, seed)) \
                    if kind == "ours" else None
                if stored is None or "control" in stored:
                    continue
                tokens = tokens or prepared_tokens(graph, lm_path, cfg, bar)
                add_control(stored, graph, tokens, lm_path, args.data_root, bar)
                if not args.no_write:
                    RESULTS.write_text("".join(json.dumps(r) + "\n" for r in records))
                continue
            if kind == "pyg":
                record = peer(graph, lm_path, split, seed, pl_ratio=cfg.pl_ratio)
            else:
                tokens = tokens or prepared_tokens(graph, lm_path, cfg, bar)
                record = ours(graph, tokens, lm_path, split, seed, args.data_root, bar)
            records.append(record)
            print(f"[{kind} {split} seed {seed}] done after {(time.perf_counter() - started) / 60:.1f} min", flush=True)
            if not args.no_write:
                with RESULTS.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                text = report(records, load_before, background_load(0.5), (time.perf_counter() - started) / 60,
                              args.plan)
                write_section(ROOT / "BENCHMARKS.md", f"<!-- {MARK}:cpu -->", text)


if __name__ == "__main__":
    main()
