"""Reloading a checkpoint to evaluate it or to predict on new graphs."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch_geometric.loader import DataLoader

from ..datasets import FeatureSchema, Split, load_dataset, read_graphs_for_predict
from ..datasets.encodings import precompute_encodings
from ..datasets.molecules import TASK_NAMES
from ..errors import CheckpointError, ConfigError, DataError
from ..models import create_model
from ..tasks import get_task
from .checkpoint import load_checkpoint
from .evaluation import Evaluator, Prepared
from .settings import ExperimentConfig, config_from_mapping


def model_from_checkpoint(ckpt: Dict[str, Any]) -> torch.nn.Module:
    config = dict(ckpt["model_config"])
    try:
        model = create_model(ckpt["model"], **config)
    except ConfigError:
        # Checkpoints written while `head` defaulted to "mlp" store it even for models with a fixed
        # output layer, which ignored it then: it meant "the model's own", as no head key means now.
        if config.get("head") != "mlp":
            raise
        model = create_model(ckpt["model"], **{**config, "head": None})
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"The checkpoint's weights do not fit model {ckpt['model']!r}: {str(err).splitlines()[0]}") from None
    return model.eval()


def evaluate_checkpoint(path: str, data_root: Optional[str] = None) -> Dict[str, Any]:
    """Re-run the checkpoint on the test split it was selected with; returns new and stored metrics.

    ``data_root`` overrides the data root stored in the checkpoint (see `stored_data_root`).
    """
    ckpt = load_checkpoint(path)
    cfg: ExperimentConfig = config_from_mapping(ckpt["experiment"])
    notes: List[str] = []
    if data_root is None:
        data_root, note = stored_data_root(path, cfg.data_root, ckpt["dataset"])
        notes += [note] if note else []
    ds = load_dataset(ckpt["dataset"], data_root, cfg.dataset_args)
    FeatureSchema.from_dict(ckpt["schema"]).check_compatible(ds.schema)
    graphs = precompute_encodings(ds.graphs, **ckpt["encodings"]) if ckpt["encodings"] else list(ds.graphs)
    prep = Prepared(ds, get_task(ckpt["task"]), graphs, ckpt["model_config"], ckpt["encodings"])
    split = Split(**{k: torch.tensor(v, dtype=torch.long) for k, v in ckpt["split"].items()})
    n_items = graphs[0].num_nodes if prep.single_graph else len(graphs)
    if split.test.numel() and int(split.test.max()) >= n_items:
        raise CheckpointError(f"The checkpoint's test split does not fit {ds.name} as loaded now ({n_items} items).")
    model = model_from_checkpoint(ckpt)
    ev = Evaluator(prep, cfg.batch_size, torch.device("cpu"), node_chunk=cfg.node_batch_size if prep.single_graph else 0)
    return {"dataset": ds.name, "model": ckpt["model"], "test": ev.evaluate(model, split.test),
            "stored_test": ckpt.get("metrics", {}).get("test", {}), "notes": notes}


def stored_data_root(path: str, stored: Optional[str], dataset: str) -> Tuple[Optional[str], Optional[str]]:
    """``(data root, note)`` for reloading a checkpoint's dataset when the user names no data root.

    Older checkpoints store the data root as given to `gnnformer train`, possibly relative to the
    folder training ran in. Such a path is tried from the current folder, then from the checkpoint's
    folder and the two above it (the default output ``runs/<model>-<dataset>/`` sits two levels
    below where training ran). The note says where a relative root was found, if not here.
    """
    if stored is None or str(stored) == "":
        return None, None  # trained on $GNNFORMER_DATA or the embedded data: resolved as then
    given = Path(stored).expanduser()
    if given.is_absolute():
        tried = [given]
    else:
        here = Path(path).resolve().parent
        tried = list(dict.fromkeys([Path.cwd() / given, here / given, here.parent / given, here.parent.parent / given]))
    for candidate in tried:
        if candidate.is_dir():
            note = None if candidate == tried[0] else (
                f"the checkpoint's data root {stored!r} is relative and not found here; using {candidate.resolve()} "
                "(looked up from the checkpoint's folder).")
            return str(candidate), note
    where = "\n".join(f"  {c}" for c in tried)
    raise DataError(f"The checkpoint's data root {stored!r} (stored at training time, where {dataset} was read) "
                    f"is not found; looked in:\n{where}\nPass --data-root to point to the folder that holds "
                    f"{dataset}'s data now.")


@torch.no_grad()
def predict_file(path: str, input_path: str, batch_size: int = 64) -> Dict[str, Any]:
    """Predictions for the graphs in ``input_path`` (the dataset's own format; SMILES for molecules)."""
    ckpt = load_checkpoint(path)
    schema = FeatureSchema.from_dict(ckpt["schema"])
    graphs: List = read_graphs_for_predict(schema, input_path)
    if ckpt["encodings"]:
        graphs = precompute_encodings(graphs, cache=False, **ckpt["encodings"])
    task = get_task(ckpt["task"])
    model = model_from_checkpoint(ckpt)
    # Node tasks: one row per node of every graph, graph after graph; graph tasks: one per graph.
    outs = [model(b) for b in DataLoader(graphs, batch_size=batch_size)]
    out = torch.cat(outs)
    # SMILES input: each row names its molecule by file line and SMILES (blank lines are skipped).
    rows = [(g.line, g.smiles) for g in graphs] if schema.kind == "molecule" and task.level == "graph" else None
    names = TASK_NAMES.get(ckpt["dataset"]) if schema.kind == "molecule" else None
    return {"task": task.name, "outputs": out, "predictions": task.predict(out), "count": out.size(0),
            "rows": rows, "task_names": list(names) if names and len(names) == out.size(1) else None}


def prediction_table(res: Dict[str, Any]) -> Tuple[List[str], List[list]]:
    """``(header, rows)`` of the CSV for `predict_file`'s result.

    Rows start with ``line, smiles`` for SMILES input, else with the 0-based ``index`` of the graph
    (or node) in the input. Classification adds the class and its probabilities; other tasks one
    value per output, under the dataset's task names when known (``task0``, ``task1``... else).
    """
    outputs, preds = res["outputs"], res["predictions"]
    ids = [list(r) for r in res["rows"]] if res.get("rows") is not None else [[i] for i in range(preds.size(0))]
    id_cols = ["line", "smiles"] if res.get("rows") is not None else ["index"]
    if res["task"] in ("graph_classification", "node_classification"):
        probs = outputs.softmax(-1)
        header = [*id_cols, "prediction", *[f"p_class{c}" for c in range(probs.size(1))]]
        values = [[int(preds[i]), *[f"{p:.6f}" for p in probs[i].tolist()]] for i in range(probs.size(0))]
    else:
        header = [*id_cols, *(res.get("task_names") or [f"task{t}" for t in range(preds.size(1))])]
        values = [[f"{v:.6f}" for v in preds[i].tolist()] for i in range(preds.size(0))]
    return header, [key + row for key, row in zip(ids, values)]
