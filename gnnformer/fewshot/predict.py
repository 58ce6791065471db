"""Applying a few-shot checkpoint to a new task: adapt to a labelled support set, score molecules."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch_geometric.data import Batch

from ..errors import CheckpointError, DataError
from ..training.checkpoint import load_checkpoint
from .featurize import featurize_entries, read_labelled_csv, read_smiles_file
from .meta import AdaptSpec, adapt_to_support, predict_molecules
from .model import create_fewshot_model


def is_fewshot(ckpt: Dict[str, Any]) -> bool:
    return isinstance(ckpt.get("fewshot"), dict)


def model_from_fewshot_checkpoint(ckpt: Dict[str, Any]):
    try:
        model = create_fewshot_model(ckpt["model"], **ckpt["model_config"])
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"The checkpoint's weights do not fit model {ckpt['model']!r}: "
                              f"{str(err).splitlines()[0]}") from None
    info = ckpt["fewshot"]
    spec = AdaptSpec(info["method"], info["adapt"], int(info["steps"]), float(info["lr"]), int(info.get("shots", 5)))
    spec.validate()
    return model.eval(), spec


def predict_fewshot(checkpoint: str | Path, support: str | Path, input_path: str | Path,
                    invalid: str = "error", ckpt: Optional[Dict[str, Any]] = None,
                    batch_size: int = 256) -> Dict[str, Any]:
    """Adapt the checkpoint to ``support`` (CSV: smiles,label) and score every SMILES of ``input_path``.

    Returns ``rows`` [(line, smiles, probability)], ``skipped`` (invalid SMILES when
    ``invalid='skip'``) and ``notes``.
    """
    ckpt = ckpt if ckpt is not None else load_checkpoint(checkpoint)
    if not is_fewshot(ckpt):
        raise CheckpointError(f"{checkpoint} is not a few-shot checkpoint (written by `gnnformer fewshot`).")
    model, spec = model_from_fewshot_checkpoint(ckpt)
    sup_good, sup_bad = featurize_entries(read_labelled_csv(support), invalid)
    labels = torch.tensor([e.label for e, _ in sup_good], dtype=torch.long)
    pos, neg = int(labels.sum()), int(labels.numel() - labels.sum())
    if pos == 0 or neg == 0:
        raise DataError(f"{support}: the support set needs at least one positive (label 1) and one negative "
                        f"(label 0) molecule; it has {pos} positive and {neg} negative usable rows.")
    notes = []
    if pos != spec.shots or neg != spec.shots:
        notes.append(f"the checkpoint was meta-trained for {spec.shots}-shot support sets ({spec.shots} positives + "
                     f"{spec.shots} negatives); this support set has {pos} + {neg}.")
    qry_good, qry_bad = featurize_entries(read_smiles_file(input_path), invalid)
    if not qry_good:
        raise DataError(f"{input_path}: no SMILES left to score.")
    seed = int(ckpt["fewshot"].get("seed", 0))
    adapted = adapt_to_support(model, spec, Batch.from_data_list([g for _, g in sup_good]), labels,
                               torch.Generator().manual_seed(seed))
    probs = predict_molecules(adapted, [g for _, g in qry_good], batch_size)
    rows = [(e.line, e.smiles, float(p)) for (e, _), p in zip(qry_good, probs.tolist())]
    return {"rows": rows, "skipped": sup_bad + qry_bad, "notes": notes, "model": ckpt["model"],
            "method": ckpt["fewshot"].get("name", spec.method), "dataset": ckpt.get("dataset")}
