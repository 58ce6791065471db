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

from gnnformer.training import trainer as T  # noqa: E402

CONFIGS = ROOT / "configs" / "difformer"
RESULTS = ROOT / "benchmarks" / "results" / "difformer"


def _code_digest() -> str:
    """Short hash of the model and trainer sources this process imported (they may change between runs)."""
    import hashlib

    h = hashlib.sha256()
    for rel in ("gnnformer/models/difformer.py", "gnnformer/nn/difformer.py", "gnnformer/models/baselines.py",
                "gnnformer/training/trainer.py"):
        path = ROOT / rel
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()[:12]


CODE = _code_digest()


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def run_config(path: Path, overrides: Optional[Dict[str, Any]] = None, max_runs: Optional[int] = None,
               extra: Optional[Callable[[T.Prepared, Any], Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Train every seed of ``path`` (settings in ``overrides`` replace the file's; a ``model_args`` or
    ``dataset_args`` mapping is merged into the file's one) and return what was measured."""
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
    for i, (seed, split) in enumerate(splits):
        _, hist, res = T.train_one(cfg, prep, split, seed)
        row = {"seed": seed, "epochs_run": len(hist), **res}
        if extra is not None:
            row.update(extra(prep, split))
        per_run.append(row)
        test = {k: round(v, 4) for k, v in res["test"].items()}
        print(f"  {path.stem} {overrides or ''} run {i + 1}/{len(splits)}: val {res['val'][prep.task.monitor]:.4f} "
              f"test {test}", flush=True)
    return {
        "config": str(path.relative_to(ROOT)), "model": cfg.model, "dataset": prep.dataset.name,
        "overrides": overrides or {}, "settings": cfg.to_dict(), "protocol": T._protocol(cfg, prep),
        "notes": list(prep.dataset.notes), "runs_done": len(per_run), "runs_in_protocol": total,
        "summary": T._nan_to_none(T.summarise(per_run)), "per_run": T._nan_to_none(per_run),
        "seconds": round(time.perf_counter() - t0, 1), "date": dt.date.today().isoformat(), "machine": machine(),
        "code": CODE,
        "command": "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT)) if Path(sys.argv[0]).is_absolute()
                                         else sys.argv[0]] + sys.argv[1:]),
    }


def cached(out: Path, make: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    """The result saved at ``out``, or ``make()`` saved there first."""
    if out.exists():
        print(f"{out.relative_to(ROOT)}: done before, kept", flush=True)
        return json.loads(out.read_text())
    res = make()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return res


def mean_std(summary: Dict[str, Any], key: str, scale: float = 1.0, digits: int = 2) -> str:
    s = summary.get(key)
    if not s or s["mean"] is None:
        return "n/a"
    return f"{scale * s['mean']:.{digits}f} ± {scale * s['std']:.{digits}f}"
