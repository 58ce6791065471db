"""How much of a few-shot score comes from adapting to the support set?

Re-evaluates every meta-trained checkpoint of `gnnformer fewshot` runs on the same support draws
with 0 adaptation steps (the meta-learned initialisation scores the queries as it is) and stores
the result beside the run's own numbers (10 steps) in benchmarks/results/fewshot/adaptation.json;
benchmarks/fewshot_tables.py prints them under the few-shot tables. A row is kept per
(dataset, shots, method, pre-training): the run named last replaces an earlier one.

    python benchmarks/fewshot_adaptation.py runs/fewshot-tox21-5shot runs/fewshot-tox21-10shot ...
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gnnformer.fewshot.evaluation import evaluate, summarise  # noqa: E402
from gnnformer.fewshot.meta import AdaptSpec  # noqa: E402
from gnnformer.fewshot.predict import model_from_fewshot_checkpoint  # noqa: E402
from gnnformer.fewshot.settings import fewshot_config  # noqa: E402
from gnnformer.fewshot.tasks import load_tasks  # noqa: E402
from gnnformer.training.checkpoint import load_checkpoint  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "fewshot" / "adaptation.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    rows = json.loads(OUT.read_text()) if OUT.is_file() else []
    for run_dir in args.runs:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        cfg = fewshot_config({**metrics["config"], **({"data_root": args.data_root} if args.data_root else {})})
        data = load_tasks(cfg.dataset, cfg.data_root, cfg.source, cfg.invalid)
        for run in metrics["runs"]:
            ckpt = load_checkpoint(run_dir / run["checkpoint"])
            if ckpt["fewshot"]["method"] != "maml":
                continue
            model, spec = model_from_fewshot_checkpoint(ckpt)
            still = AdaptSpec(spec.method, spec.adapt, 0, spec.lr, spec.shots)
            summary = summarise(evaluate(model, still, data, cfg.draws, cfg.seed, cfg.eval_batch_size))
            key = (metrics["dataset"], metrics["shots"], run["method"], run["pretrain"])
            rows = [r for r in rows if (r["dataset"], r["shots"], r["method"], r["pretrain"]) != key]
            rows.append({"dataset": key[0], "shots": key[1], "method": key[2], "pretrain": key[3],
                         "run": run_dir.name, "steps": spec.steps,
                         "adapted": run["mean"], "adapted_thresholded": run["thresholded"]["mean"],
                         "not_adapted": summary["mean"], "not_adapted_thresholded": summary["thresholded"]["mean"],
                         "not_adapted_per_task": {k: v["mean"] for k, v in summary["per_task"].items()}})
            print(*key, f"adapted {run['mean']:.4f}  not adapted {summary['mean']:.4f}", flush=True)
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
