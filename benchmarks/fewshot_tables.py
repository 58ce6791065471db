"""Write the FS-GNNCvTR section of BENCHMARKS.md from `gnnformer fewshot` runs.

    gnnformer fewshot --config configs/fewshot/tox21_5shot.yaml --data-root ../shared/datasets --out runs/fewshot-tox21-5shot
    ... (tox21_10shot, sider_5shot, sider_10shot)
    python benchmarks/fewshot_tables.py runs/fewshot-tox21-5shot runs/fewshot-tox21-10shot \
        runs/fewshot-sider-5shot runs/fewshot-sider-10shot [--no-write]

Each run's metrics.json is copied to benchmarks/results/fewshot/<dataset>_<k>shot.json (without
the per-step losses); the tables are built from those copies, so `--from-results` rebuilds the
section without the runs.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import shutil
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_layers import findings_lines, write_section  # noqa: E402

MARK = "<!-- fewshot_gnncvtr -->"
RESULTS = ROOT / "benchmarks" / "results" / "fewshot"
LABELS = {"fs-gnncvtr": "FS-GNNCvTR (meta)", "fs-gin": "GIN (meta)", "finetune": "GIN fine-tuned"}
PRETRAIN = {"none": "", "attrmask": " + attr. masking", "hu": " + Hu et al. weights"}
#: Published FS-GNNCvTR ROC-AUC (%) per task, when known. The ESANN 2023 paper's tables could not be
#: retrieved here, so none are quoted.
PAPER: dict = {}
#: Mean over the test tasks (%) in the FS-GNNCvTR repository's result files: FS-GNNCvTR and its GIN
#: under the same MAML. Its "ROC-AUC" is roc_auc_score(y, sigmoid > 0.5), the thresholded score,
#: with the test tasks evaluated after every training epoch.
REPO_THRESHOLDED = {("tox21", 5): (77.1, 59.3), ("tox21", 10): (77.5, 63.7),
                    ("sider", 5): (71.9, 70.6), ("sider", 10): (71.7, 70.9)}
#: ROC-AUC on probabilities (%), PAR (Wang et al., NeurIPS 2021), Pre-PAR.
PAR = {("tox21", 10): 84.9}
#: What the tables show (kept with them; edit after a run).
FINDINGS: list = [
    "These tables ran with LayerNorm in the GIN, the default until the convergence study below found that it "
    "collapses the meta-learned embeddings; BatchNorm is the default now, and these rows are due a re-run "
    "with it (the convergence section has the rows that have been).",
    "Meta-learning helps: in all four settings a meta-learned model (FS-GNNCvTR or the GIN under the same "
    "meta-learning) beats the best fine-tuned multi-task GIN, by 1.4-5.3 points of mean ROC-AUC, and FS-GNNCvTR "
    "(with or without pre-training) has the best mean in every setting.",
    "The meta-learned models without pre-training barely depend on the support draw: their std over 30 draws "
    "is mostly below one point, against mostly 5-13 points for fine-tuning. Since the support set is all "
    "that changes between draws, the head adaptation (10 SGD steps) can only be moving their scores a "
    "little; the meta-learned initialisation does most of the work.",
    "Every mean is in the 50s and low 60s. Training length is not the main limit: meta-training FS-GNNCvTR on "
    "Tox21 10-shot for 150 instead of 30 outer steps (no pre-training, everything else equal: "
    "`gnnformer fewshot --config configs/fewshot/tox21_10shot.yaml --data-root ../shared/datasets "
    "methods=fs-gnncvtr pretrain=none episodes=150`) moved its mean from 61.90 to 62.27 (SR-HSE 56.83, SR-MMP 67.40, SR-p53 62.59). The "
    "likelier gap is the starting point: the paper begins from Hu et al.'s GIN pre-trained on 2M molecules, "
    "and our 5 epochs of attribute masking on 24k molecules is a small stand-in for it.",
]


def _portable(obj):
    """Paths of this checkout written relative to it (the shared data as ../shared, RDKit's files by package)."""
    if isinstance(obj, str):
        obj = re.sub(r"\S*/site-packages/", "", obj)
        return obj.replace(str(ROOT) + "/", "").replace(str(ROOT.parent) + "/", "../")
    if isinstance(obj, dict):
        return {k: _portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_portable(v) for v in obj]
    return obj


def store(run_dir: Path) -> Path:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for run in metrics["runs"]:
        run.pop("train_losses", None)
    if "config" not in metrics and (run_dir / "config.yaml").is_file():
        metrics["config"] = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics["date"] = dt.date.today().isoformat()
    RESULTS.mkdir(parents=True, exist_ok=True)
    dest = RESULTS / f"{metrics['dataset']}_{metrics['shots']}shot.json"
    dest.write_text(json.dumps(_portable(metrics), indent=2))
    return dest


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def table(metrics: dict) -> str:
    runs = metrics["runs"]
    head = ["task", *(LABELS[r["method"]] + PRETRAIN[r["pretrain"]] for r in runs), "paper FS-GNNCvTR"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    paper = PAPER.get((metrics["dataset"], metrics["shots"]), {})
    for task in metrics["test_tasks"]:
        cells = [f"{pct(r['per_task'][task]['mean'])} ± {pct(r['per_task'][task]['std'])}" for r in runs]
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {paper.get(task, 'not quoted')} |")
    best = max(r["mean"] for r in runs)
    cells = [(f"**{pct(r['mean'])}**" if r["mean"] == best else pct(r["mean"])) for r in runs]
    par = PAR.get((metrics["dataset"], metrics["shots"]))
    lines.append("| **mean** | " + " | ".join(cells) + f" | {paper.get('mean', 'not quoted')}"
                 + (f" (Pre-PAR {par})" if par else "") + " |")
    thr = [r.get("thresholded", {}).get("mean") for r in runs]
    repo = REPO_THRESHOLDED.get((metrics["dataset"], metrics["shots"]))
    lines.append("| mean, thresholded at 0.5 | " + " | ".join("not measured" if t is None else pct(t) for t in thr)
                 + (f" | FS-GNNCvTR {repo[0]}, its GIN (MAML) {repo[1]} (repository result files) |" if repo else " | |"))
    def minutes(sec) -> str:
        return "?" if sec is None else f"{sec / 60:.0f}"

    times = ", ".join(f"{LABELS[r['method']]}{PRETRAIN[r['pretrain']]} {minutes(r['train_seconds'])} + "
                      f"{minutes(r['eval_seconds'])}" for r in runs)
    unknown = any(r["train_seconds"] is None for r in runs)
    return ("\n".join(lines) + "\n\nWall-clock minutes, training + evaluation, on the shared machine (several "
            f"jobs per core, so CPU time is a fraction of these): {times}."
            + (" ? = trained by a run that was stopped before it wrote its results; its checkpoint was evaluated "
               "again by the resumed run (`resume`), which gives the same scores." if unknown else "") + "\n")


def steps(metrics: dict) -> str:
    cfg = metrics.get("config") or {}
    per = cfg.get("tasks_per_episode", "?")
    return (f"meta-training {cfg.get('episodes', '?')} outer steps x {per} tasks (query {cfg.get('query_size', '?')}), "
            f"the multi-task baseline {cfg.get('baseline_steps', '?')} batches of {cfg.get('baseline_batch_size', '?')}"
            + (f", attribute masking {cfg.get('pretrain_epochs', '?')} epochs" if "attrmask" in cfg.get("pretrain", [])
               else ""))


def section(all_metrics: list) -> str:
    first = all_metrics[0]
    pre = first.get("pretraining") or {}
    cfg_lines = []
    for m in all_metrics:
        cfg_lines.append(f"- {m['dataset']} {m['shots']}-shot: {m['protocol']}"
                         + (f" **Reduced**: {'; '.join(m['reduced'])}." if m["reduced"] else ""))
    parts = [
        MARK,
        "## FS-GNNCvTR: few-shot toxicity (Tox21) and side effects (SIDER)",
        "",
        f"- date of the runs: {', '.join(sorted({m.get('date', '?') for m in all_metrics}))}; machine: "
        f"{platform.machine()}, 2 shared cores, torch {torch.__version__}, one thread per run",
        "- commands: `gnnformer fewshot --config configs/fewshot/<dataset>_<k>shot.yaml --data-root ../shared/datasets "
        "--out runs/fewshot-<dataset>-<k>shot`, then `python benchmarks/fewshot_tables.py runs/fewshot-*`; "
        "results in `benchmarks/results/fewshot/`",
        "- metric: ROC-AUC (%) on every molecule of a meta-test task outside its support set; mean ± std over "
        "**all** support draws. The original FS-GNNCvTR code reports the best draws; here no draw is dropped, so "
        "the std is the spread a user meets with a random support set. The mean row is the mean of the task means. "
        "\"Thresholded\" is the score the FS-GNNCvTR code calls ROC-AUC: `roc_auc_score` of the predictions "
        "thresholded at 0.5, i.e. their balanced accuracy (`gnnformer.tasks.metrics.thresholded_roc_auc`), the "
        "metric of its repository's result files quoted in the last column; runs made before it was recorded say "
        "\"not measured\".",
        "- test tasks: Tox21 10-12 (SR-HSE, SR-MMP, SR-p53) after meta-training on 1-9; SIDER 22-27 after 1-21. "
        "Support draws are seeded per task and draw, identical for every column. No model selection on test tasks: "
        "the weights after the last training step are evaluated.",
        "- columns: FS-GNNCvTR = GIN (5 layers, 300 dims) + convolutional Transformer, meta-trained; GIN (meta) = "
        "the same GIN with a linear head under the same meta-learning (the paper's ablation); GIN fine-tuned = "
        "no meta-learning: the GIN trained on the labels of all meta-training tasks at once (multi-task), then a "
        "fresh linear head fine-tuned on each support set (Adam). \"+ attr. masking\" = the GIN starts from "
        "self-supervised attribute-masking pre-training"
        + (f" ({pre.get('epochs')} epochs over {pre.get('molecules')} unlabelled molecules: RDKit's NCI and WEHI "
           "SMILES files plus the Tox21 and SIDER CSV structures, no label read)" if pre else "")
        + ". The paper starts from Hu et al.'s pre-trained GIN (2M ZINC molecules), which is not available here. "
        "\"+ Hu et al. weights\" = the encoder starts from one of their GCN / GraphSAGE checkpoints in "
        "`../shared/pretrained/` (context prediction, then supervised multi-task training on ChEMBL; "
        "`pretrain=hu pretrained_encoder=... model_args.conv=gcn model_args.norm=batch`). ChEMBL's molecules overlap "
        "those of Tox21 and SIDER, and the supervised stage saw their bioactivity labels: these rows are not free "
        "of leakage and are not comparable with the others as evidence of few-shot learning.",
        "- adaptation (`adapt: head`): the inner loop adapts the head (the Transformer, or the linear layer) with "
        "5 SGD steps in meta-training and 10 at test; the GIN is learnt in the outer loop only, with its own "
        "learning rate. The original code adapts the GIN in the inner loop instead (`adapt: encoder`), which costs "
        "a GIN pass over every query molecule for every support draw: about 30x this evaluation on Tox21, out of "
        "reach on this machine for every column.",
        "- class imbalance: each query loss weighs positives by negatives/positives of its query set.",
        "- published numbers: not quoted. The FS-GNNCvTR paper (Torres et al., ESANN 2023) could not be retrieved "
        "here, and its repository's README carries no table.",
        "",
        "Protocol and reductions per run:",
        "",
        *cfg_lines,
        f"- Every run is **reduced** in training length: {steps(first)}, minutes of CPU per model, far shorter "
        "than a GPU schedule (the paper's length is not quoted here). These numbers say what this schedule "
        "reaches, not what a full one would.",
        "",
    ]
    for m in all_metrics:
        parts += [f"### {m['dataset'].upper() if m['dataset'] == 'sider' else 'Tox21'} {m['shots']}-shot", "", table(m)]
    parts += adaptation_table()
    parts += findings_lines(FINDINGS)
    return "\n".join(parts) + "\n"


def adaptation_table() -> list:
    """Mean ROC-AUC with and without the test-time adaptation (benchmarks/fewshot_adaptation.py)."""
    path = RESULTS / "adaptation.json"
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())
    order = {"tox21": 0, "sider": 1}
    rows.sort(key=lambda r: (order[r["dataset"]], r["shots"], r["method"] != "fs-gnncvtr", r["pretrain"]))
    out = ["### What the adaptation to the support set adds", "",
           "`python benchmarks/fewshot_adaptation.py runs/fewshot-*`: every meta-trained model scored on the same "
           "support draws' queries without adapting (0 inner steps) and as above (10 steps). Mean ROC-AUC (%) "
           "over the test tasks.", "",
           "| dataset | k | model | 0 steps | 10 steps | gain |", "|---|---:|---|---:|---:|---:|"]
    for r in rows:
        name = LABELS[r["method"]] + PRETRAIN[r["pretrain"]]
        gain = 100 * (r["adapted"] - r["not_adapted"])
        out.append(f"| {r['dataset']} | {r['shots']} | {name} | {pct(r['not_adapted'])} | {pct(r['adapted'])} | "
                   f"{gain:+.2f} |")
    return out + [""]


CONVERGENCE = RESULTS / "convergence"
NORM_LABELS = {"batch": "BatchNorm", "layer": "LayerNorm", "none": "no norm"}
CONVERGENCE_MARK = "<!-- fewshot_convergence -->"


def embedding_spread(run_dir: Path, run: dict, data_root: str, molecules: int = 1500) -> dict:
    """How much the graph embeddings of the first test task's first ``molecules`` molecules differ:
    the std across molecules, averaged over dimensions, for the run's trained weights and for the
    same model at its initial weights (seed 0), and the std of the head's logits."""
    from gnnformer.fewshot.meta import embed_molecules
    from gnnformer.fewshot.model import create_fewshot_model
    from gnnformer.fewshot.predict import model_from_fewshot_checkpoint
    from gnnformer.fewshot.tasks import load_tasks
    from gnnformer.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run_dir / run["checkpoint"])
    trained, _ = model_from_fewshot_checkpoint(ckpt)
    torch.manual_seed(0)
    initial = create_fewshot_model(ckpt["model"], **ckpt["model_config"]).eval()
    if run["pretrain"] == "hu":  # the starting point is the pre-trained file, not a random encoder
        from gnnformer.fewshot.hu_weights import load_hu_encoder
        from gnnformer.fewshot.model import fewshot_model_config

        state, _ = load_hu_encoder(ckpt["experiment"]["pretrained_encoder"], fewshot_model_config(**ckpt["model_config"]))
        initial.encoder.load_state_dict(state)
    data = load_tasks(ckpt["experiment"]["dataset"], data_root)
    ids = data.test_tasks[0].mol_ids[:molecules].tolist()
    out = {}
    for name, model in (("initial", initial), ("trained", trained)):
        emb = embed_molecules(model, [data.molecules[i] for i in ids])
        out[name] = {"embedding_std": float(emb.std(0).mean()),
                     "logit_std": float(model.head(emb).view(-1).std()) if ckpt["model"] == "fs-gin" else None}
    return out


def store_convergence(run_dir: Path, data_root: str) -> Path:
    """A run's metrics.json (without per-step losses, with ``embedding_spread``) and
    convergence.png, kept under benchmarks/results/fewshot/convergence/<run folder name>.*"""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for run in metrics["runs"]:
        run.pop("train_losses", None)
        with torch.no_grad():
            run["embedding_spread"] = embedding_spread(run_dir, run, data_root)
    metrics["date"] = dt.date.fromtimestamp((run_dir / "metrics.json").stat().st_mtime).isoformat()
    CONVERGENCE.mkdir(parents=True, exist_ok=True)
    dest = CONVERGENCE / f"{run_dir.name}.json"
    dest.write_text(json.dumps(_portable(metrics), indent=2))
    if (run_dir / "convergence.png").is_file():
        shutil.copyfile(run_dir / "convergence.png", CONVERGENCE / f"{run_dir.name}.png")
    return dest


def convergence_section() -> str:
    """Meta-training against the held-out validation task, from the stored convergence runs."""
    stored = [(p, json.loads(p.read_text())) for p in sorted(CONVERGENCE.glob("*.json"))]
    dates = ", ".join(sorted({m.get("date", "?") for _, m in stored}))
    lines = [CONVERGENCE_MARK, "## FS-GNNCvTR: meta-training to convergence, both metrics", "",
             f"- date of the runs: {dates}; machine: {platform.machine()}, 2 shared cores, torch {torch.__version__}, "
             "one thread per run",
             "- commands: `gnnformer fewshot --config configs/fewshot/<dataset>_<k>shot.yaml --data-root "
             "../shared/datasets episodes=300 val_every=25 patience=P methods=... pretrain=... --out runs/<name>` (P: the "
             "patience column, in validation checks without a better score), "
             "then `python benchmarks/fewshot_tables.py --convergence runs/<name> --data-root ../shared/datasets`; the last meta-training task is "
             "held out (never trained on, never a test task), scored on 10 support draws every 25 outer steps, and "
             "the best step's weights are tested (the draws column: support draws per test task, every draw counted)",
             "- test ROC-AUC: on the probabilities; thresholded: the FS-GNNCvTR code's metric (ROC-AUC of the "
             "predictions > 0.5, a balanced accuracy), the metric of its repository's numbers", "",
             "- embedding spread: the std across the first 1,500 molecules of the first test task of the graph "
             "embedding, averaged over its dimensions, at the starting weights (seed 0, or the pre-trained file) "
             "-> after training",
             "- adapts: what the inner loop (and test-time adaptation) changes: `head` (the head; the GIN is embedded "
             "once per support draw) or `encoder` (the GIN, as the FS-GNNCvTR code does); train + test: wall-clock "
             "seconds of meta-training and of the test evaluation on the shared machine (several jobs per core)",
             "",
             "- per-task best (runs with `track_test=true`): the test tasks scored on 10 draws at every validation "
             "step, each task's best step kept, then the mean over tasks (ROC-AUC / thresholded): how the "
             "repository's numbers were reported (its test tasks scored after every epoch, each task's maximum "
             "kept). It selects on the test tasks, so it is for that comparison only.",
             "",
             "| run | model | pre-training | adapts | patience | steps run | selected step | validation ROC-AUC (%) | "
             "test ROC-AUC (%) | test thresholded (%) | per-task best over steps (%) | repository, thresholded (%) | "
             "embedding spread | test draws per task | train + test (s) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for path, m in stored:
        repo = REPO_THRESHOLDED.get((m["dataset"], m["shots"]))
        for r in m["runs"]:
            v = r.get("validation") or {}
            best = v["roc_auc"][v["steps"].index(v["best_step"])] if v else None
            anchor = "—" if repo is None else (repo[0] if r["method"] == "fs-gnncvtr" else repo[1] if r["method"] == "fs-gin"
                                                else "—")
            config = m.get("config") or {}
            conv = config.get("model_args", {}).get("conv", "gin")
            label = LABELS[r["method"]].replace("GIN", conv.upper() if conv != "gin" else "GIN")
            # Runs stored before metrics.json named the resolved model were made with the then default, LayerNorm.
            norm = (m.get("model_config") or {}).get("norm") or config.get("model_args", {}).get("norm", "layer")
            label += f", {NORM_LABELS.get(norm, norm)}"
            patience, adapts, draws = config.get("patience", "—"), config.get("adapt", "head"), config.get("draws", "—")
            seconds = (f"{r['train_seconds']:.0f} + {r['eval_seconds']:.0f}" if r.get("train_seconds") is not None
                       else "—")
            lines.append(f"| {path.stem} ({m['dataset']} {m['shots']}-shot) | {label} | "
                         f"{r['pretrain']} | {adapts} | {patience} | {v['steps'][-1] if v else '—'} | "
                         f"{v.get('best_step', '—')} | "
                         f"{pct(best) if best is not None else '—'} | {pct(r['mean'])} | "
                         f"{pct(r['thresholded']['mean'])} | {best_over_steps(r)} | {anchor} | {spread(r)} | {draws} | {seconds} |")
    for path, _ in stored:  # the plots after the table, which they would split
        if (CONVERGENCE / f"{path.stem}.png").is_file():
            lines += ["", f"![validation ROC-AUC against outer steps, {path.stem}]"
                          f"(benchmarks/results/fewshot/convergence/{path.stem}.png)"]
    return "\n".join(lines + [""] + findings_lines(CONVERGENCE_FINDINGS)) + "\n"


def best_over_steps(run: dict) -> str:
    by_step = (run.get("validation") or {}).get("test_by_step")
    return "—" if not by_step else f"{pct(by_step['roc_auc']['best'])} / {pct(by_step['thresholded']['best'])}"


def spread(run: dict) -> str:
    e = run.get("embedding_spread")
    return "—" if not e else f"{e['initial']['embedding_std']:.3f} -> {e['trained']['embedding_std']:.3f}"


#: What the convergence runs show (kept with their table; edit after a run).
CONVERGENCE_FINDINGS: list = [
    "With LayerNorm the validation curve flattens early: GIN (meta) peaks at step 150 (+2.1 points over its start) and "
    "FS-GNNCvTR at step 50, after which both stay level or fall, and patience 4 (100 steps) stopped the runs "
    "at 250 and 150 of 300. Training length is not what keeps the test means near 62.",
    "Meta-training collapses the GIN's graph embeddings: their spread across molecules falls from 0.132 at "
    "the initial weights to 0.007 in both models, so the head sees nearly one point and the ranking rests on "
    "small differences. With the linear head every adapted probability then lies on one side of 0.5 and "
    "the thresholded score is exactly 50.00; the Transformer head reaches 58.2, against 77.5 in the "
    "repository's files, whose GIN under MAML (63.7) must straddle 0.5; the metric is not the gap.",
    "The collapse is LayerNorm's, the encoder's normalisation then. With BatchNorm, the original encoder's and "
    "now the default, and everything else equal (fewshot-tox21-10shot-batchnorm), the embeddings spread out "
    "instead (0.663 after training; the 0.016 at the start reflects BatchNorm's initial running statistics, "
    "not the features), the validation score climbs to 71.2 at step 250 (LayerNorm: 68.0 at its best), and the "
    "test means rise from 62.4 to 66.8 ROC-AUC and from 50.0 to 62.2 thresholded: 1.5 points under the "
    "repository's GIN under MAML (63.7), which starts from Hu et al.'s supervised GIN while this row starts "
    "from random weights. A larger inner learning rate is not the remedy: 0.4 on the head (the original code's "
    "rate, which it applies to the whole GIN) made the head diverge (validation at 50.0 at step 0 and 49.8 at "
    "step 75; 100 steps, LayerNorm: 57.9 ROC-AUC, 55.2 thresholded; `gnnformer fewshot --config "
    "configs/fewshot/tox21_10shot.yaml --data-root ../shared/datasets episodes=100 val_every=25 methods=fs-gin "
    "pretrain=none model.norm=layer adapt=head inner_lr=0.4 inner_steps=1`).",
    "Starting from Hu et al.'s GCN (context prediction, then supervised training on ChEMBL, whose molecules "
    "and bioactivities overlap Tox21's: not free of leakage), the same meta-learning does not collapse the "
    "embeddings and reaches, on Tox21, 80.1 ROC-AUC / 72.8 thresholded at 10 shots and 80.1 / 72.3 at 5, above "
    "the repository's GIN under MAML (63.7 and 59.3) and the same GCN fine-tuned on all training tasks at once "
    "(71.0 / 64.0 and 66.1 / 59.8); the validation score was still rising at the last steps, so 300 steps did "
    "not converge it.",
    "Tox21 5-shot from random weights (BatchNorm) kept its initial weights with patience 4: the validation "
    "score did not beat step 0 within 4 checks (100 steps), so patience stopped the run; the untrained head puts "
    "every probability on one side of 0.5 (thresholded 50.0, ROC-AUC 63.5). The curve dips after step 0 before "
    "it climbs (as at 10 shots, until step 50), so the same run with patience 8 (fewshot-tox21-5shot-batchnorm-p8, "
    "`... tox21_5shot.yaml ... patience=8 methods=fs-gin pretrain=none track_test=true`) went the full 300 steps: "
    "validation at its lowest at step 25 (60.3), best at step 250 (70.5), and the selected weights test at "
    "67.9 ROC-AUC / 62.5 thresholded, above the repository's GIN under MAML at 5 shots (59.3 thresholded) "
    "from random weights where that baseline starts from Hu et al.'s GIN. The few-shot configs now use patience 8.",
    "FS-GNNCvTR itself with BatchNorm, from random weights (fewshot-tox21-10shot-cvtr-batchnorm: `gnnformer "
    "fewshot --config configs/fewshot/tox21_10shot.yaml --data-root ../shared/datasets episodes=300 val_every=25 "
    "patience=8 methods=fs-gnncvtr pretrain=none track_test=true`): its embeddings spread out too (0.016 -> 0.813), "
    "validation peaks at step 125 (71.2) and the selected weights test at 67.0 ROC-AUC / 61.4 thresholded, up "
    "from 62.6 / 58.2 with LayerNorm and level with the GIN under the same meta-learning (66.8 / 62.2). Against the "
    "repository's 77.5 thresholded it stays 16 points short, and 11 points short (66.5) when each test task's best "
    "step is kept as the repository's numbers were; that code starts the GIN from Hu et al.'s pre-trained weights, "
    "these rows from random ones (here the same meta-learning reaches 80.1 / 72.8 from Hu et al.'s GCN, 66.8 / "
    "62.2 with the GIN from random weights).",
    "The inner loop's target at an equal budget (Tox21 10-shot from Hu et al.'s GCN, 100 outer steps, patience 8, "
    "5 validation and 10 test draws, everything else equal; `... tox21_10shot.yaml ... episodes=100 val_every=25 "
    "patience=8 draws=10 val_draws=5 methods=fs-gin pretrain=hu pretrained_encoder=../shared/pretrained/"
    "gcn_supervised_contextpred.pth model.conv=gcn model.norm=batch adapt=encoder`, and `adapt=head`): adapting the "
    "encoder, as the FS-GNNCvTR code does, tests at 75.0 ROC-AUC / 68.4 thresholded, adapting the head at 76.2 / "
    "68.5: level on the authors' metric, for 2.1x the meta-training time and 14x the test time (389 + 156 s "
    "against 183 + 11 s). Head adaptation stays the default. (Meta-training with `adapt: encoder` and BatchNorm "
    "failed inside torch.func until this run: BatchNorm updated its running statistics in place within the "
    "transform; the inner loop now works on copies of them.)",
    "SIDER stays short: from Hu et al.'s GCN 62.9 / 59.4 at 10 shots and 62.1 / 58.8 at 5, against the "
    "repository's GIN under MAML at 70.9 and 70.6 thresholded; from random weights 59.6 / 54.9 at 10 shots. "
    "The repository's way of reporting explains little of it: each test task's best over the validation steps "
    "adds 0.5 (Hu et al.'s GCN) and 1.4 (random weights) points thresholded. What still differs from that "
    "code: its backbone is Hu et al.'s GIN of the same pre-training (only their GCN and GraphSAGE files are "
    "obtainable here); it adapts the GIN in the inner loop (one step at 0.4) where these rows adapt the head; "
    "it weighs SIDER's positives 1 where these rows balance each query set; and it keeps each task's maximum "
    "over up to 10,000 epochs of one-draw scores, where the per-task best here is over 8-13 steps of 10-draw "
    "means, so its inflation is larger than measured here. The weighting is not the gap either: with positives "
    "weighed 1 as there (fewshot-sider-10shot-hu-posweight1: `... sider_10shot.yaml ... episodes=300 val_every=25 "
    "patience=8 methods=fs-gin pretrain=hu pretrained_encoder=../shared/pretrained/gcn_supervised_contextpred.pth "
    "model.conv=gcn model.norm=batch pos_weight=1`) the same model tests at 64.9 / 59.7 against 62.9 / 59.4 "
    "balanced, 0.3 points more on the authors' metric; its validation score rose at every check to step 300 "
    "(50.2 -> 67.0), so 300 steps do not converge it.",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", type=Path, help="run folders written by `gnnformer fewshot`")
    ap.add_argument("--from-results", action="store_true", help="use benchmarks/results/fewshot/*.json only")
    ap.add_argument("--no-write", action="store_true", help="print instead of writing BENCHMARKS.md")
    ap.add_argument("--convergence", nargs="*", type=Path, help="runs with a validation task: their own section")
    ap.add_argument("--data-root", default="../shared/datasets", help="for --convergence: the tasks' data root")
    args = ap.parse_args()
    if args.convergence is not None:
        for run in args.convergence:
            store_convergence(run, args.data_root)
        text = convergence_section()
        if args.no_write:
            print(text)
        else:
            write_section(ROOT / "BENCHMARKS.md", CONVERGENCE_MARK, text)
        return
    paths = [store(r) for r in args.runs] if args.runs else []
    if args.from_results or not paths:
        paths = sorted(RESULTS.glob("*.json"))
    order = {"tox21": 0, "sider": 1}
    metrics = sorted((json.loads(p.read_text()) for p in paths), key=lambda m: (order[m["dataset"]], m["shots"]))
    if not metrics:
        sys.exit("no results: pass run folders or keep benchmarks/results/fewshot/*.json")
    text = section(metrics)
    if args.no_write:
        print(text)
    else:
        write_section(ROOT / "BENCHMARKS.md", MARK, text)
        print(f"wrote the FS-GNNCvTR section of {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
