"""What the two DIFFormer reproduction scripts share: run one config (with overrides) through the
trainer, every seed of it, and keep the result as a JSON file so an interrupted script resumes."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gnnformer.training as T  # noqa: E402
from gnnformer.tasks.metrics import summarise  # noqa: E402

CONFIGS = ROOT / "configs" / "difformer"
RESULTS = ROOT / "benchmarks" / "results" / "difformer"


def _code_digest() -> str:
    """Short hash of the model and trainer sources this process imported (they may change between runs)."""
    import hashlib

    h = hashlib.sha256()
    for rel in ("gnnformer/models/difformer.py", "gnnformer/nn/difformer.py", "gnnformer/models/baselines.py",
                "gnnformer/training/loop.py"):
        path = ROOT / rel
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()[:12]


CODE = _code_digest()


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def run_config(path: Path, overrides: Optional[Dict[str, Any]] = None, max_runs: Optional[int] = None,
               partial: Optional[Path] = None) -> Dict[str, Any]:
    """Train every seed of ``path`` (settings in ``overrides`` replace the file's; a ``model_args`` or
    ``dataset_args`` mapping is merged into the file's one) and return what was measured.

    With ``partial``, every finished seed is saved there at once, and seeds found there (from an
    interrupted run of the same settings) are not trained again."""
    values = yaml.safe_load(path.read_text())
    for key, value in (overrides or {}).items():
        if key in ("model_args", "dataset_args"):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
    cfg = T.config_from_mapping(values)
    t0 = time.perf_counter()
    prep = T.prepare(cfg)
    splits = T.make_splits(cfg, prep)
    total = len(splits)
    splits = splits[:max_runs] if max_runs else splits
    per_run = []
    if partial is not None and partial.exists():
        saved = json.loads(partial.read_text())
        if saved.get("settings") == cfg.to_dict():
            per_run = saved["per_run"]
            print(f"  {path.stem}: {len(per_run)} seed(s) kept from {partial.name}", flush=True)
    done = {row["seed"] for row in per_run}
    for i, (seed, split) in enumerate(splits):
        if seed in done:
            continue
        _, hist, res = T.train_one(cfg, prep, split, seed)
        row = {"seed": seed, "epochs_run": len(hist), **T.nan_to_none(res)}
        per_run.append(row)
        if partial is not None:
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps({"settings": cfg.to_dict(), "per_run": per_run}, indent=1))
        test = {k: round(v, 4) for k, v in res["test"].items()}
        print(f"  {path.stem} {overrides or ''} run {i + 1}/{len(splits)}: val {res['val'][prep.task.monitor]:.4f} "
              f"test {test}", flush=True)
    per_run.sort(key=lambda row: row["seed"])
    return {
        "config": str(path.relative_to(ROOT)), "model": cfg.model, "dataset": prep.dataset.name,
        "overrides": overrides or {}, "settings": cfg.to_dict(), "protocol": T.describe_protocol(cfg, prep),
        "notes": list(prep.dataset.notes), "runs_done": len(per_run), "runs_in_protocol": total,
        "summary": T.nan_to_none(summarise(per_run)), "per_run": T.nan_to_none(per_run),
        "seconds": round(time.perf_counter() - t0, 1), "date": dt.date.today().isoformat(), "machine": machine(),
        "code": CODE,
        "command": "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT)) if Path(sys.argv[0]).is_absolute()
                                         else sys.argv[0]] + sys.argv[1:]),
    }


def partial_path(out: Path) -> Path:
    """Where the seeds of an unfinished result ``out`` are kept (outside the results folder's ``*.json``)."""
    return out.parent / "partial" / (out.stem + ".partial")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def cached(out: Path, make: Callable[[], Dict[str, Any]], runs: Optional[int] = None) -> Dict[str, Any]:
    """The result saved at ``out``, or ``make()`` saved there first.

    ``runs`` is how many seeds the caller wants now (None: the whole protocol). A saved result with
    fewer is continued rather than kept: its seeds go to ``partial_path(out)``, where ``run_config``
    (given that path) finds them and trains only the missing ones."""
    if out.exists():
        saved = json.loads(out.read_text())
        total = saved.get("runs_in_protocol")
        want = total if runs is None or total is None else min(runs, total)
        done = saved.get("runs_done")
        if want is None or done is None or done >= want or "settings" not in saved:
            print(f"{_shown(out)}: done before, kept", flush=True)
            return saved
        part = partial_path(out)
        if not part.exists():
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_text(json.dumps({"settings": saved["settings"], "per_run": saved["per_run"]}, indent=1))
        print(f"{_shown(out)}: {done} of {want} seeds saved, continuing", flush=True)
    res = make()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    partial_path(out).unlink(missing_ok=True)
    return res


def mean_std(summary: Dict[str, Any], key: str, scale: float = 1.0, digits: int = 2) -> str:
    s = summary.get(key)
    if not s or s["mean"] is None:
        return "n/a"
    return f"{scale * s['mean']:.{digits}f} ± {scale * s['std']:.{digits}f}"
