"""The few-shot tables of BENCHMARKS.md: both metrics per test task, a column per stored model, gaps named."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fewshot_tables  # noqa: E402


def _run(method: str, pretrain: str, roc: dict, thr: dict, best_step=None) -> dict:
    def block(scores):
        per_task = {t: {"mean": sum(v) / len(v), "std": 0.0 if len(v) == 1 else _std(v), "draws": len(v),
                        "values": v} for t, v in scores.items()}
        return per_task, sum(p["mean"] for p in per_task.values()) / len(per_task)

    per_task, mean = block(roc)
    thr_tasks, thr_mean = block(thr)
    validation = {"steps": [0, 25, 50], "roc_auc": [0.6, 0.7, 0.65], "best_step": best_step} if best_step is not None else None
    return {"method": method, "pretrain": pretrain, "per_task": per_task, "mean": mean,
            "thresholded": {"per_task": thr_tasks, "mean": thr_mean}, "validation": validation}


def _std(v):
    m = sum(v) / len(v)
    return (sum((x - m) ** 2 for x in v) / len(v)) ** 0.5


def _metrics(runs, conv="gin"):
    return {"dataset": "tox21", "shots": 5, "test_tasks": ["A", "B"], "runs": runs, "date": "2026-12-05",
            "config": {"model_args": {"conv": conv}}}


def test_table_cells_hold_both_metrics_and_name_missing_runs(monkeypatch):
    monkeypatch.setitem(fewshot_tables.TABLE_RUNS, ("tox21", 5), ["meta-run", "hu-run", "absent-run"])
    stored = {
        # task A: draws 0.6 and 0.8 -> 70.00 ± 10.00; thresholded 0.5 and 0.7 -> 60.00
        "meta-run": _metrics([_run("fs-gin", "none", {"A": [0.6, 0.8], "B": [0.9]}, {"A": [0.5, 0.7], "B": [0.75]},
                                   best_step=25)]),
        "hu-run": _metrics([_run("finetune", "hu", {"A": [0.5], "B": [0.6]}, {"A": [0.5], "B": [0.5]})], conv="gcn"),
    }
    lines = fewshot_tables.table("tox21", 5, stored)
    text = "\n".join(lines)
    assert "| task | GIN (meta) | GCN fine-tuned + Hu et al. weights |" in text
    assert "| A | 70.00 ± 10.00 / 60.00 | 50.00 ± 0.00 / 50.00 |" in text
    # means of the task means: (0.7 + 0.9) / 2 = 80.00 (the best, in bold), thresholded (0.6 + 0.75) / 2 = 67.50
    assert "| **mean** | **80.00** / 67.50 | 55.00 / 50.00 |" in text
    assert "`meta-run` (step 25 of 50)" in text
    assert "Not run yet: absent-run." in text
    assert "FS-GNNCvTR 77.1, its GIN under MAML 59.3" in text


def test_table_with_no_stored_run_says_so(monkeypatch):
    monkeypatch.setitem(fewshot_tables.TABLE_RUNS, ("tox21", 5), ["absent-run"])
    assert "Not run yet: absent-run." in fewshot_tables.table("tox21", 5, {})
