"""Reloading a checkpoint to evaluate it or to predict on new graphs."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
from torch_geometric.loader import DataLoader

from ..datasets import FeatureSchema, Split, load_dataset, read_graphs_for_predict
from ..datasets.encodings import precompute_encodings
from ..errors import CheckpointError
from ..models import create_model
from ..tasks import get_task
from .checkpoint import load_checkpoint
from .trainer import Evaluator, ExperimentConfig, Prepared, config_from_mapping


def model_from_checkpoint(ckpt: Dict[str, Any]) -> torch.nn.Module:
    model = create_model(ckpt["model"], **ckpt["model_config"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"The checkpoint's weights do not fit model {ckpt['model']!r}: {str(err).splitlines()[0]}") from None
    return model.eval()


def evaluate_checkpoint(path: str, data_root: Optional[str] = None) -> Dict[str, Any]:
    """Re-run the checkpoint on the test split it was selected with; returns new and stored metrics."""
    ckpt = load_checkpoint(path)
    cfg: ExperimentConfig = config_from_mapping(ckpt["experiment"])
    ds = load_dataset(ckpt["dataset"], data_root if data_root is not None else cfg.data_root, cfg.dataset_args)
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
            "stored_test": ckpt.get("metrics", {}).get("test", {})}


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
    return {"task": task.name, "outputs": out, "predictions": task.predict(out), "count": out.size(0)}
