"""Reproduce the Gradformer paper's graph-level tables with gradformer, gps and gin, in one script.

Each experiment is a config under configs/gradformer/ holding the paper's full protocol (100 epochs,
10 seeds or 10 folds). A CPU run of all of it takes many hours, so this script can run a stated
reduction (fewer epochs, the first K seeds/folds); the tables say which.

    python benchmarks/reproduce_gradformer.py --data-root ../shared/datasets --tables accuracy \
        --epochs 30 --max-runs 3            # reduced
    python benchmarks/reproduce_gradformer.py --data-root ../shared/datasets   # the full protocol

Every run is saved under benchmarks/results/gradformer/<config>.json as it finishes (so an
interrupted or reduced row resumes at its next run), and the tables are rewritten into BENCHMARKS.md from all saved results.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from authors_code import authors_code_cells, authors_code_line, authors_code_notes  # noqa: E402
from bench_layers import findings_lines, write_section  # noqa: E402
import gnnformer.training as T  # noqa: E402
from gnnformer.training.experiment import run_key  # noqa: E402
from gnnformer.tasks.metrics import summarise  # noqa: E402

CONFIGS = ROOT / "configs" / "gradformer"
RESULTS = ROOT / "benchmarks" / "results" / "gradformer"
MARK = "<!-- reproduce_gradformer -->"
# The released Gradformer code (main.py with its NCI1 script's settings) on the authors' split, run on
# this machine: the command, what had to be supplied around it, and its per-run test accuracy. An
# authors'-split row without an entry there says "not run here".
AUTHORS_CODE_FILE = RESULTS / "authors_code.json"

# Published numbers (accuracy %), Liu et al., IJCAI 2024.
PAPER = {("gradformer", "NCI1"): 86.01, ("gradformer", "PROTEINS"): 77.50, ("gradformer", "MUTAG"): 88.00}
PAPER_DEPTH = {("gradformer", 12): 84.31, ("gradformer", 24): 84.25}
PAPER_LOWRES = {("gradformer", 5): 71.20, ("gradformer", 10): 76.38, ("gps", 5): 69.54}

# What we found when our numbers and the paper's differ (kept with the tables).
FINDINGS = [
    "The published training script seeds Python, NumPy and torch with one fixed seed (12344) for "
    "every run and draws its 80/10/10 split with torch's global generator, so its repeated runs "
    "share one split; our seeds protocol draws a new split per seed. On MUTAG the test split has "
    "19 graphs (one graph = 5.3 points), so the split is the dominant source of variance: the "
    "standard error of a 10-seed mean is about 3 points.",
    "Under stratified 10-fold CV, where every graph is tested once, our MUTAG numbers sit at the "
    "published one (gradformer 88.3 against 88.0); over 10 seeds gradformer reaches 86.3 ± 7.5, "
    "within one standard error of it.",
    "Batching. An earlier version trained the attention models on size-bucketed batches, and on "
    "NCI1 that cost 5-6 points. With the same epochs, seeds and folds, moving from bucketed to "
    "random batches took gps from 72.3 to 78.3 (CV) and from 76.0 to 79.1 (seeds), and gradformer "
    "from 71.8 to 77.1 (CV) and, on seed 0, from 77.9 to 82.7. MUTAG's full protocol, re-run the "
    "same way, moved gradformer from 81.6 to 86.3 and gps from 79.5 to 84.7 over seeds (CV within "
    "a point either way). NCI1's graph size alone predicts "
    "its label with 63% accuracy (class means 25.7 and 34.1 nodes). A batch of same-size graphs "
    "therefore has a skewed label mix, and its BatchNorm statistics change from batch to batch. "
    "Random batches are now the default. To keep the padding low, attention splits each random "
    "batch into at most 6 size groups, which needs 1.23x the attention cells of the graphs themselves "
    "(1.15x with at most 8, the setting of the rows run before 2026-12-05: the grouping changes the "
    "time, not the result), against 1.24x for size-bucketed batches and 6.9x for padding the whole "
    "batch (`bench_graph_epoch` section). Rows not re-run "
    "since then are marked as size-bucketed.",
    "The NCI1 rows are still reduced to 30 of 100 epochs and 2 of 10 runs, and they remain short "
    "of the paper's 86.01. After 30 epochs the selected gradformer models fit 84-88% of their own "
    "training graphs, which suggested under-training, so seed 0 was run for the full 100 epochs "
    "(`gnnformer train --config configs/gradformer/nci1_gradformer_seeds.yaml runs=1`): it fits "
    "98.7% of its training graphs (best validation epoch 82) and tests at 82.7%, exactly what the "
    "30-epoch run of the same seed reached. Epochs are not what is missing on this split. What is "
    "left differs from the authors' setup in the split itself (their runs share one split drawn "
    "under seed 12344, ours draws one per seed; NCI1's test split is 411 graphs, so a split moves "
    "the mean by a few points) and possibly in details not in the paper; we do not claim 86.",
    "PROTEINS on the authors' split sits under the paper (gradformer 73.7 ± 3.1 over 10 seeds against 77.5; "
    "gps 73.0, gin 74.6 on the same split; at 2 seeds it read 72.8), so our "
    "model was read against the released code line by line (model/Gradformer.py, model/grad_conv.py, "
    "model/Attention.py, utils/process.py, data_utils/load_data.py, config.py, main.py). The layer matches "
    "term by term; on TU datasets their input is Linear(x) + Linear(RWSE) at full width with no BatchNorm on "
    "the walk probabilities, and their head one Linear layer (here `pe_combine=sum head=linear`, tested "
    "against a hand computation). With that input and head alone, same settings, seeds 0-1 (`gnnformer train "
    "--config configs/gradformer/proteins_gradformer_authors.yaml --data-root ../shared/datasets runs=2 "
    "model.pe_combine=sum model.head=linear`): 74.1 and 74.1 (before 73.2 and 72.3). The code has no PROTEINS script, so a PROTEINS run uses its defaults: 10 "
    "layers and gamma 0.5, not the 4 layers and 0.6 of its NCI1 script that our preset carried. With those "
    "(`gnnformer train --config configs/gradformer/proteins_gradformer_authors.yaml --data-root "
    "../shared/datasets runs=2 model.pe_combine=sum model.head=linear model.layers=10 model.gamma=0.5`): "
    "75.9 and 83.0, mean 79.5 on 2 seeds against the paper's 77.5. That is the likeliest source of the "
    "gap; `configs/gradformer/proteins_gradformer_authors_code.yaml` holds these settings for the full "
    "10-seed row (`--only proteins_gradformer_authors_code`; its seeds below).",
]

TABLES = {
    "accuracy": lambda stem: stem.split("_")[0] in ("mutag", "proteins", "nci1"),
    "depth": lambda stem: stem.startswith("depth_"),
    "lowres": lambda stem: stem.startswith("lowres_"),
    "cluster": lambda stem: stem.startswith("cluster_"),
}


def run_config(path: Path, data_root: str | None, epochs: int | None, max_runs: int | None,
               dataset_override: str | None = None, out: Path | None = None) -> dict:
    """Run the config's seeds/folds, saving to ``out`` after every run; runs already saved there
    (same epochs) are kept, so an interrupted or reduced row is continued, not restarted."""
    values = yaml.safe_load(path.read_text())
    if data_root:
        values["data_root"] = data_root
    if epochs:
        values["epochs"] = min(epochs, values["epochs"])
    if dataset_override:
        values["dataset"] = dataset_override
    cfg = T.config_from_mapping(values)
    before = json.loads(out.read_text()) if out is not None and out.exists() else None
    if before is not None and before["epochs"] != cfg.epochs:
        raise SystemExit(f"{out} holds {before['epochs']}-epoch runs, this asks for {cfg.epochs}: "
                         "move it aside to start the row again")
    per_run = list(before["per_run"]) if before else []
    t0 = time.perf_counter()
    prep = T.prepare(cfg)
    prep_s = time.perf_counter() - t0
    splits = T.make_splits(cfg, prep)
    total = len(splits)
    wanted = splits[:max_runs] if max_runs else splits
    train_s = before["train_s"] if before else 0.0
    result = {}
    for i, (seed, split) in enumerate(wanted):
        if i < len(per_run):
            continue
        t_run = time.perf_counter()
        # A run of a deep row takes an hour here: its state is saved every epoch, so a run stopped
        # mid-way continues from its last epoch when the row is run again.
        state = None if out is None else out.parent / "partial" / f"{out.stem}.run{i}.state.pt"
        if state is not None:
            state.parent.mkdir(parents=True, exist_ok=True)
        _, hist, res = T.train_one(cfg, prep, split, seed, state_path=state,
                                   state_key=run_key(cfg.to_dict(), seed, split))
        if state is not None:
            state.unlink(missing_ok=True)
        train_s += time.perf_counter() - t_run
        per_run.append({"seed": seed, "epochs_run": len(hist), **res})
        print(f"  {path.stem} run {i + 1}/{len(wanted)}: test {res['test']}", flush=True)
        result = {
            "config": str(path.relative_to(ROOT)), "model": cfg.model, "dataset": prep.dataset.name,
            "protocol": T.describe_protocol(cfg, prep), "epochs": cfg.epochs, "runs_done": len(per_run),
            "runs_in_protocol": total, "train_fraction": values.get("train_fraction", 1.0),
            "layers": cfg.model_args.get("layers"), "bucket": cfg.bucket,
            "summary": T.nan_to_none(summarise(per_run)), "per_run": T.nan_to_none(per_run),
            "prepare_s": prep_s, "train_s": train_s, "date": dt.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        }
        if out is not None:
            out.write_text(json.dumps(result, indent=1))
    return result or before


def proteins_code_findings(results: dict) -> list:
    """The PROTEINS row with the released code's defaults, seed by seed, against the preset's row."""
    code, preset = results.get("proteins_gradformer_authors_code"), results.get("proteins_gradformer_authors")
    if not code:
        return []
    tests = [100 * r["test"]["accuracy"] for r in code["per_run"]]
    mean = code["summary"]["test_accuracy"]["mean"] * 100
    done = f"all {len(tests)} seeds" if code["runs_done"] == code["runs_in_protocol"] else \
        f"{code['runs_done']} of {code['runs_in_protocol']} seeds so far (the row continues where it stopped)"
    ours = (f" (our preset's settings on the same split: {100 * preset['summary']['test_accuracy']['mean']:.1f})"
            if preset else "")
    runs = code["per_run"]
    vals = [100 * r["val"]["accuracy"] for r in runs]
    low = sorted(runs, key=lambda r: r["test"]["accuracy"])[:3]
    spread = (f" The selected epochs score {min(vals):.1f}-{max(vals):.1f} on the validation graphs (10% of the "
              f"split) and {min(tests):.1f}-{max(tests):.1f} on the test graphs. The three lowest test scores ("
              + "; ".join(f"seed {r['seed']}: {100 * r['test']['accuracy']:.1f} at epoch {r['best_epoch']}, "
                          f"fitting {100 * r['train']['accuracy']:.0f}% of its training graphs" for r in low)
              + f") are not failed runs: the validation set, on which the {len(runs)} runs differ by "
              f"{max(vals) - min(vals):.1f} points, does not separate them from the others."
              if len(runs) >= 5 else "")
    return [f"PROTEINS with the released code's defaults, {done}: "
            + ", ".join(f"{t:.1f}" for t in tests) + f", mean {mean:.1f} against the paper's "
            f"{PAPER[('gradformer', 'PROTEINS')]}{ours}. These are the settings `gnnformer train --model "
            "gradformer --dataset PROTEINS` applies by default (its preset)." + spread]


def authors_split_findings(results: dict) -> list:
    """What the rows on the authors' one split say, written from the saved results."""
    rows = {(r["dataset"], r["model"]): r for s, r in results.items() if s.endswith("_authors")}
    nci1 = [(m, rows[("NCI1", m)]) for m in ("gradformer", "gps", "gin") if ("NCI1", m) in rows]
    if not nci1:
        return []
    parts = [f"{m} {100 * r['summary']['test_accuracy']['mean']:.1f} ({r['runs_done']} of {r['runs_in_protocol']} "
             "seeds)" for m, r in nci1]
    theirs = authors_code_cells(AUTHORS_CODE_FILE).get(("gradformer", "NCI1"))
    note = authors_code_notes(AUTHORS_CODE_FILE).get(("gradformer", "NCI1"))
    code = (f"; the released code itself, run here on the same split with its NCI1 script's settings, {theirs}"
            if theirs else "")
    return ["On the authors' one NCI1 split at the full 100 epochs with random batches: " + ", ".join(parts)
            + f"{code}, against the paper's gradformer {PAPER[('gradformer', 'NCI1')]}. Our per-seed-split rows above "
            "were drawn on other splits (and some are reduced), so these are the rows to set beside the paper; "
            "rows with fewer than 10 seeds are what ran here so far, not the protocol's mean."
            + (f" How the released code's number was picked: {note}." if theirs and note else "")]


def layout(r: dict) -> str:
    """The input layer and head a saved row ran with, read from its config."""
    return config_layout(r["config"])


@functools.lru_cache(maxsize=None)
def config_values(config: str) -> dict:
    """A saved row's config file, read once (asked for every row in sorting, the tables and each finding)."""
    return yaml.safe_load((ROOT / config).read_text())


@functools.lru_cache(maxsize=None)
def config_layout(config: str) -> str:
    values = config_values(config)
    args = values.get("model_args", {})
    authors = args.get("pe_combine") == "sum" and args.get("head") == "linear"
    name = AUTHORS_LAYOUT if authors else "GraphGPS's input and head"
    # Attention init: ours (Xavier) unless the row takes the released code's. Training: the authors'
    # NCI1 script's (Adam at a constant 1e-3) unless the row says otherwise.
    changes = ["their attention init"] if args.get("attn_init") == "shared" else []
    changes += [f"lr {values['lr']:g}"] if values.get("lr", 1e-3) != 1e-3 else []
    if values.get("scheduler", "constant") != "constant":
        changes.append(f"{values['scheduler']} lr after {values.get('warmup_epochs', 0)} warm-up epochs")
    return name + (f"; {', '.join(changes)}" if changes else "")


AUTHORS_LAYOUT = "authors' input and head"


def setup_note(r: dict) -> str:
    """For an accuracy-table row run with the released code's input and head (its defaults rather
    than our preset), what it ran with; empty for the others."""
    if not layout(r).startswith(AUTHORS_LAYOUT):
        return ""
    values = config_values(r["config"])
    args = values.get("model_args", {})
    return (f"; the released code's defaults: {AUTHORS_LAYOUT}, {args.get('layers')} layers, gamma "
            f"{args.get('gamma')}, batch {values.get('batch_size')}")


def depth_findings(results: dict) -> list:
    """The paper's depth claim (gradformer stays near 84 at 12 and 24 layers while gps falls) against
    the rows run here, with the 4-layer rows on the same split as the reference."""
    def acc(r):
        return f"{100 * r['summary']['test_accuracy']['mean']:.1f}" + (
            "" if r["runs_done"] >= r["runs_in_protocol"] else f" ({r['runs_done']} of {r['runs_in_protocol']} seeds)")

    def span(lo, hi, fmt):
        return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"

    def fit(r):
        train = [100 * p["train"]["accuracy"] for p in r["per_run"]]
        best = [p["best_epoch"] for p in r["per_run"]]
        return (f"fits {span(min(train), max(train), '{:.0f}')}% of its training graphs "
                f"(epoch{'s' if len(best) > 1 else ''} {span(min(best), max(best), '{}')})")

    parts = []
    names = sorted({layout(r) for s, r in results.items() if TABLES["depth"](s)}, key=lambda n: (n.startswith("authors'"), n))
    for name in names:
        for model in ("gradformer", "gps"):
            rows = sorted((r for s, r in results.items() if TABLES["depth"](s) and r["model"] == model
                           and layout(r) == name), key=lambda r: r["layers"])
            if rows:
                parts.append(f"{model} with {name}: " + ", ".join(
                    f"{r['layers']} layers {acc(r)}, {fit(r)}" for r in rows))
    if not parts:
        return []
    four = [f"{m} {acc(results[f'nci1_{m}_authors'])}, {fit(results[f'nci1_{m}_authors'])}"
            for m in ("gradformer", "gps") if f"nci1_{m}_authors" in results]
    return ["Depth on the authors' NCI1 split, 100 epochs, the test score at the best validation epoch. Reference, "
            "4 layers with GraphGPS's input and head (the accuracy table's rows on the same split): "
            + "; ".join(four) + ". " + "; ".join(parts) + f". The paper: gradformer {PAPER_DEPTH[('gradformer', 12)]} "
            f"at 12 and {PAPER_DEPTH[('gradformer', 24)]} at 24 layers, and gps falling with depth. Single-seed rows "
            "say how one initialisation went, not a mean; a difference under about 2 points (8 of the 411 test "
            "graphs) is within what seeds alone move on this split.",
            "Input and head. The layer follows the authors' GPSConv term by term (post-norm BatchNorm after the GIN "
            "and the decayed-attention residuals, their sum, an FFN with its own residual and BatchNorm). GraphGPS's "
            "input (node features and BatchNorm'd random-walk probabilities, each projected and concatenated) and "
            "MLP head are our default; the released Gradformer code adds Linear(x) and Linear(RWSE) at full width "
            "and reads out with one Linear layer (`pe_combine=sum head=linear`), and the depth configs "
            "(`configs/gradformer/depth_nci1_*layers.yaml`) carry it; the *_graphgps_layout configs keep the "
            "GraphGPS rows beside them. " + under_trained(results)] + DEPTH_NOTES


# Measured by hand beside the saved rows (commands named), kept with the depth findings.
DEPTH_NOTES = [
    "One more difference to the released code: its attention builds the query, key, value and output "
    "projections as copies of one Linear layer (`copy.deepcopy`), so queries start equal to keys; here they are "
    "drawn independently (Xavier), and `model.attn_init=shared` gives theirs (tested). At the script's lr of 1e-3 it does not make the "
    "24-layer gradformer train: in a 10-epoch probe on seed 0 (`gnnformer train --config "
    "configs/gradformer/depth_nci1_gradformer_24layers.yaml --data-root ../shared/datasets runs=1 epochs=10 "
    "model.attn_init=shared`, and the same without the last key; one thread, 2026-12-04) both fit 60-62% of their "
    "training graphs (shared 60.2, Xavier 61.6) with training losses of 0.72-0.73 in epoch 10 (above the 0.69 of a "
    "constant guess).",
    "The released model fails the same way at 24 layers. Its TU path (model/Gradformer.py, model/grad_conv.py, "
    "model/Attention.py and utils/process.py at commit d5354d9, kept outside this package) was trained on the "
    "same split with main.py's loop and the NCI1 script's settings (Adam at 1e-3, batch 128, gamma 0.6, RWSE of "
    "20 steps and Floyd-Warshall distances as data_utils/load_data.py builds them, one thread, 2026-12-04): from "
    "epoch 2 to 10 its training loss stayed at 0.69-0.74 and, in eval mode, it fit 47-59% of the training graphs "
    "(validation at most 63.3%); ours in the probe above: a training loss of 0.65-0.88 from epoch 2 on, its selected "
    "weights fitting 60-62% (validation at most 64.7%). So the "
    "24-layer rows are not a difference between the two implementations: with the script's learning rate neither "
    "trains, and the paper's 84.25 at 24 layers is not what its released NCI1 settings give here.",
    "At a lower learning rate the attention init is what decides. With Adam at a constant 3e-4, the same 24-layer "
    "set-up and one thread (2026-12-04): the released model trains steadily, training loss 1.34 -> 0.42 over 12 "
    "epochs, fitting 74-83% of the training graphs in eval mode from epoch 7, validation up to 77.1%. Ours with "
    "the released code's attention init (`model.attn_init=shared`: query, key, value and output projections start "
    "as copies of one Linear layer; `python benchmarks/reproduce_gradformer.py --data-root ../shared/datasets "
    "--threads 1 --only depth_nci1_gradformer_24layers_lr3e-4 --max-runs 1`, its first 12 epochs, seed 0) follows "
    "it: 1.48 -> 0.40, validation up to 78.8%. Ours with its default init (Xavier, independent projections; the "
    "same command before that config took `attn_init`, stopped after 60 epochs) peaks at epoch 8 "
    "(validation 73.2%, training loss 0.54) and then degrades, with a training loss of 0.58-0.76 for the next 52 "
    "epochs and no better validation epoch. GraphGPS's warm-up (5 epochs, then cosine from 1e-3; "
    "`depth_nci1_gradformer_24layers_warmup.yaml`, 26 epochs so far) shows the learning rate's side: validation "
    "71.5% at epoch 4 (lr 6e-4), then a training loss of 0.70-0.98 once the lr reached 1e-3. A likely reason, not "
    "tested further: queries that start equal to keys score every node positively against itself and the nodes "
    "like it, where independent projections start from random preferences. These are single runs. `depth_nci1_gradformer_24layers_lr3e-4.yaml` "
    "carries the released code's init, and its full run (seed 0, 100 epochs, the row 'their attention init, lr "
    "0.0003' above) tests at 84.7 at its best validation epoch (36, validation 82.2%), where its selected weights fit "
    "91% of the training graphs: on this set-up (not the paper's protocol: its NCI1 script trains at lr 1e-3) "
    "one gradformer initialisation reaches the paper's 84.25 at 24 layers. Its gps counterpart (`depth_nci1_gps_24layers_lr3e-4.yaml`: the same input, head, attention init, "
    "learning rate, split and seed) does not train: its best validation epoch is 11 (validation 73.2%), its "
    "selected weights fit 73% of the training graphs, and it tests at 75.2. One seed each, so not yet the paper's "
    "mean over 10, but the direction of its claim: at 24 layers gps falls where gradformer holds. The 12- and 24-layer rows with the authors' input and head at lr 1e-3 ran with Xavier and are due a "
    "re-run with it.",
    "How much one run says: the 12-layer rows with the authors' layout, run through this script (one thread), "
    "test at gradformer 81.5 and gps 86.6; the same configs and seed through `gnnformer train --config "
    "configs/gradformer/depth_nci1_<model>_12layers.yaml --data-root ../shared/datasets runs=1` (torch's default "
    "two threads, 2026-12-04) tested at 84.2 and 81.8. The thread count changes the order of floating-point sums, "
    "and with it the trajectory, by up to 5 points here: single-seed depth rows cannot rank gradformer against gps, "
    "and the paper's gap between them needs the full 10 seeds."]


def under_trained(results: dict) -> str:
    """Which depth rows are under-trained in 100 epochs: their selected weights fit the training graphs
    little better than the test graphs (under 80%), chosen in the last tenth of the epochs."""
    slow, fine = [], []
    for r in sorted((r for s, r in results.items() if TABLES["depth"](s)), key=lambda r: (r["model"], r["layers"])):
        fits = [p["train"]["accuracy"] for p in r["per_run"]]
        late = [p["best_epoch"] >= 0.9 * r["epochs"] for p in r["per_run"]]
        (slow if max(fits) < 0.8 and all(late) else fine).append(f"{r['model']} {r['layers']} ({layout(r)})")
    text = ""
    if slow:
        text += ("Under-trained in 100 epochs (the selected weights fit under 80% of their training graphs and were "
                 "chosen in the last tenth of the epochs: an optimisation failure, not over-smoothing or "
                 "over-fitting): " + ", ".join(slow) + ". ")
    if fine:
        text += "Trained (fit 80% or more, or selected earlier): " + ", ".join(fine) + "."
    return text.strip()


def pct(summary: dict, key: str) -> str:
    s = summary.get(key)
    if not s or s["mean"] is None:
        return "n/a"
    return f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f}"


def render() -> str:
    results = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if p != AUTHORS_CODE_FILE}
    if not results:
        return ""
    any_r = next(iter(results.values()))
    lines = [MARK, "## Gradformer paper tables (graph level)", "",
             f"- command: `python benchmarks/reproduce_gradformer.py` (options per row below); machine: {any_r['machine']}",
             "- metric: test accuracy (%) of the weights selected on validation, mean ± std over the runs done",
             "- a row whose runs or epochs are fewer than the paper's protocol is marked **reduced**: it is "
             "what ran on this 2-core CPU machine, not an estimate of the full protocol",
             "- batches are drawn at random (the default, `bucket: false`; attention pads per size group inside "
             "the batch) unless a row says *size-bucketed batches* (`bucket: true`, the default of an earlier "
             "version, kept where it was not re-run: it costs accuracy on NCI1, see the findings)", ""]

    def reduced(r):
        full = r["runs_done"] == r["runs_in_protocol"] and r["epochs"] >= 100
        text = "full" if full else f"**reduced**: {r['runs_done']}/{r['runs_in_protocol']} runs, {r['epochs']} epochs"
        # Results saved before random batches became the default carry no "bucket" key: bucketed.
        return text + ("; size-bucketed batches" if r.get("bucket", True) else "")

    acc = [r for s, r in results.items() if TABLES["accuracy"](s)]
    if acc:
        lines += ["### Accuracy: random 80/10/10 per seed, the authors' one split (`*_authors.yaml`: `split: file` "
                  "with `../shared/splits/<NAME>_gradformer_seed12344.json`, the split every run of their script "
                  "uses; their repeated runs all reuse seed 12344, here seeds 0-9 vary the initialisation on it), and "
                  "stratified 10-fold CV", "",
                  authors_code_line(AUTHORS_CODE_FILE, "Its number is the test accuracy it reports: that of the "
                                    "first epoch of best validation accuracy (main.py saves a checkpoint only on "
                                    "a strictly better validation score, reloads it and tests it), set beside our "
                                    "row with the same "
                                    "script settings (layers, gamma, batch size, epochs, optimiser) on the same "
                                    "split; that row's input and head are GraphGPS's, the script's are "
                                    "Linear(x) + Linear(RWSE) and one Linear layer."), "",
                  "| dataset | model | protocol | test accuracy (%) | authors' code, same split (%) | paper (%) | runs | date |",
                  "|---|---|---|---:|---:|---:|---|---|"]
        code = authors_code_cells(AUTHORS_CODE_FILE)
        for r in sorted(acc, key=lambda r: (r["dataset"], r["model"], r["protocol"])):
            paper = PAPER.get((r["model"], r["dataset"]))
            theirs = (code.get((r["model"], r["dataset"]), "not run here") if config_values(r["config"]).get("split")
                      == "file" and not setup_note(r) else "—")
            lines.append(f"| {r['dataset']} | {r['model']} | {r['protocol']}{setup_note(r)} | "
                         f"{pct(r['summary'], 'test_accuracy')} | {theirs} | {paper if paper else '—'} | {reduced(r)} | "
                         f"{r['date']} |")
        lines += [""] + findings_lines(FINDINGS + proteins_code_findings(results) + authors_split_findings(results))
    depth = [r for s, r in results.items() if TABLES["depth"](s)]
    if depth:
        lines += ["### Depth: NCI1 with 12 and 24 layers", "",
                  "| model | layers | set-up (attention init and training where not the defaults) | protocol | test accuracy (%) "
                  "| paper (%) | runs | date |",
                  "|---|---:|---|---|---:|---:|---|---|"]
        for r in sorted(depth, key=lambda r: (r["model"], r["layers"], layout(r))):
            paper = PAPER_DEPTH.get((r["model"], r["layers"])) if layout(r) == AUTHORS_LAYOUT else None
            lines.append(f"| {r['model']} | {r['layers']} | {layout(r)} | {r['protocol']} | "
                         f"{pct(r['summary'], 'test_accuracy')} | "
                         f"{paper if paper else '—'} | {reduced(r)} | {r['date']} |")
        lines.append("")
        lines += findings_lines(depth_findings(results))
    low = [r for s, r in results.items() if TABLES["lowres"](s)]
    if low:
        lines += ["### Low resource: NCI1 trained on 5% / 10% of the training split", "",
                  "| model | training data | protocol | test accuracy (%) | paper (%) | runs | date |",
                  "|---|---:|---|---:|---:|---|---|"]
        gaps = []  # paper - ours, for the rows with a published number
        for r in sorted(low, key=lambda r: (r["model"], r["train_fraction"])):
            p = int(round(100 * r["train_fraction"]))
            paper = PAPER_LOWRES.get((r["model"], p))
            if paper:
                gaps.append(paper - 100 * r["summary"]["test_accuracy"]["mean"])
            lines.append(f"| {r['model']} | {p}% | {r['protocol']} | {pct(r['summary'], 'test_accuracy')} | "
                         f"{paper if paper else '—'} | "
                         f"{reduced(r)} | {r['date']} |")
        lines.append("")
        sit = (f"The rows with a published number sit {min(gaps):.1f}-{max(gaps):.1f} points under it"
               if gaps and min(gaps) > 0 else "The rows sit around the published numbers")
        lines += findings_lines([
            "The released Gradformer code (main.py, data_utils/load_data.py) has no low-resource option, so the "
            "paper's 5% / 10% protocol cannot be read from it. Here: a seeded, class-stratified 5% / 10% of the "
            "training part of the authors' split (about 164 / 329 graphs), validation and test whole, 100 epochs, the "
            f"test score at the best validation epoch. {sit}; with the protocol unknown, the cause is not settled "
            "(a share of the whole dataset would be 206 / 411 graphs)."])
    clu = [r for s, r in results.items() if TABLES["cluster"](s)]
    if clu:
        lines += ["### CLUSTER (regenerated from the published SBM recipe; not the published set)", "",
                  "| model | dataset | test accuracy (%) | runs | date |", "|---|---|---:|---|---|"]
        for r in sorted(clu, key=lambda r: r["model"]):
            lines.append(f"| {r['model']} | {r['dataset']} | {pct(r['summary'], 'test_accuracy')} | {reduced(r)} | {r['date']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=os.environ.get("GNNFORMER_DATA"))
    ap.add_argument("--tables", nargs="*", default=list(TABLES), choices=list(TABLES))
    ap.add_argument("--only", nargs="*", help="config stems to run (default: all of the chosen tables)")
    ap.add_argument("--epochs", type=int, help="reduce: at most this many epochs")
    ap.add_argument("--max-runs", type=int, help="reduce: only the first K seeds/folds")
    ap.add_argument("--cluster-dataset", default=None, help="e.g. CLUSTER-mini for a reduced CLUSTER run")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        for path in sorted(CONFIGS.glob("*.yaml")):
            if not any(TABLES[t](path.stem) for t in args.tables) or (args.only and path.stem not in args.only):
                continue
            out = RESULTS / f"{path.stem}.json"
            if out.exists():
                saved = json.loads(out.read_text())
                wanted = min(args.max_runs or saved["runs_in_protocol"], saved["runs_in_protocol"])
                if saved["runs_done"] >= wanted:
                    print(f"{path.stem}: done before, kept ({out.relative_to(ROOT)})")
                    continue
                print(f"{path.stem}: continuing after run {saved['runs_done']}", flush=True)
            else:
                print(f"{path.stem}: running", flush=True)
            ds = args.cluster_dataset if path.stem.startswith("cluster_") else None
            res = run_config(path, args.data_root, args.epochs, args.max_runs, ds, out)
            res["command"] = " ".join(sys.argv[1:])
            out.write_text(json.dumps(res, indent=1))
            write_section(ROOT / "BENCHMARKS.md", MARK, render())
    write_section(ROOT / "BENCHMARKS.md", MARK, render())
    print(render())


if __name__ == "__main__":
    main()
