"""Planetoid citation graphs (Cora, CiteSeer, PubMed): one graph, node classification, public split."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch
from torch_geometric.data import Data

from ..errors import DataError
from ..registry import DATASETS
from .classes import check_classes
from .root import (attempt_download, find_child, missing_error, normalised_text, process_with_pyg, stage_lock,
                   stage_raw)
from .schema import FeatureSchema, GraphDataset
from .validate import PLANETOID_SUFFIXES, parse_table, validate_planetoid

#: Registered Planetoid graphs: (number of classes, one-line summary).
KNOWN_PLANETOID = {
    "Cora": (7, "Planetoid: 2708 papers, 1433 bag-of-words features, 7 topics (node classification)"),
    "CiteSeer": (6, "Planetoid: 3327 papers, 3703 bag-of-words features, 6 topics (node classification)"),
    "PubMed": (3, "Planetoid: 19717 diabetes papers, 500 TF-IDF features, 3 classes (node classification)"),
}


def _files(folder: Path, prefix: str) -> dict[str, Path]:
    """The ``ind.<prefix>.<suffix>`` files present in ``folder`` (file names matched in any case)."""
    out = {}
    for s in PLANETOID_SUFFIXES:
        p = find_child(folder, f"ind.{prefix}.{s}", want_dir=False) if folder.is_dir() else None
        if p is not None:
            out[s] = p
    return out


def _make(stage: Path, name: str):
    from torch_geometric.datasets import Planetoid

    return Planetoid(str(stage), name)


def load_planetoid(name: str, root: Path, origin: str) -> GraphDataset:
    """Load ``<root>/Planetoid/<name>/raw/ind.<name>.*`` through PyG's Planetoid, staged in the cache."""
    prefix = name.lower()
    folder = find_child(root / "Planetoid", name)
    raw_dir = (folder if folder is not None else root / "Planetoid" / name) / "raw"
    sources = _files(raw_dir, prefix)
    staged = {f"ind.{prefix}.{s}": p for s, p in sources.items()}
    stage = stage_raw(name, staged, f"{name}/raw", text_files={f"ind.{prefix}.test.index"})
    stage_raw_dir = stage / name / "raw"
    required = [f"ind.{prefix}.{s}" for s in PLANETOID_SUFFIXES]
    processed = stage / name / "processed" / "data.pt"

    with stage_lock(stage):  # another job may be processing the same files right now
        if not all((stage_raw_dir / f).exists() for f in required):
            ds, reason = attempt_download(lambda: _make(stage, name), stage, stage_raw_dir, required)
            if ds is None:
                missing = [f"ind.{prefix}.{s}" for s in PLANETOID_SUFFIXES if s not in sources]
                raise missing_error(name, required, missing, raw_dir, root, origin,
                                    f"Planetoid/{name}/raw/ind.{prefix}.{{{','.join(PLANETOID_SUFFIXES)}}}",
                                    reason)
            sources = _files(stage_raw_dir, prefix)
        elif not processed.is_file():
            if len(sources) < len(PLANETOID_SUFFIXES):  # files came from an earlier download
                sources = _files(stage_raw_dir, prefix)
            validate_planetoid(sources, prefix)
            ds = process_with_pyg(lambda: _make(stage, name), processed.parent,
                                  f"the Planetoid files in {raw_dir}")
        else:
            ds = _make(stage, name)

    data = ds[0]
    data.x = data.x.to(torch.float32)
    notes = _notes(name, sources, prefix, data)
    out_dim = int(data.y.max()) + 1
    values, counts = torch.unique(data.y, return_counts=True)
    notes += check_classes(name, values.tolist(), counts.tolist(), KNOWN_PLANETOID[name][0], "node",
                           f"ind.{prefix}.ally and .ty (class = the one-hot column)", out_dim)
    schema = planetoid_schema(data, prefix)
    return GraphDataset(name=name, task="node_classification", graphs=[data],
                        num_features=int(data.x.size(1)), num_edge_features=0,
                        out_dim=out_dim, schema=schema, root=raw_dir, notes=notes, labels=data.y)


def _notes(name: str, sources: dict[str, Path], prefix: str, data: Data) -> list[str]:
    notes = []
    if prefix == "citeseer" and "test.index" in sources:
        # PyG pads the gap in CiteSeer's test ids with all-zero rows; say so rather than hide it.
        idx = parse_table(sources["test.index"], True, 1, "node id")[:, 0]
        gap = int(idx.max() - idx.min() + 1) - len(set(idx.tolist()))
        if gap:
            notes.append(f"{name}: {gap} nodes absent from ind.{prefix}.test.index get all-zero features "
                         "and label 0 (PyG's convention); they are in no split.")
    return notes


def planetoid_schema(data: Data, prefix: str) -> FeatureSchema:
    width = int(data.x.size(1))
    return FeatureSchema(kind="planetoid", num_node_features=width, num_edge_features=0,
                         description=f"{width} Planetoid bag-of-words columns (ind.{prefix}.allx/tx)",
                         details={})


def read_planetoid_for_predict(schema: FeatureSchema, path: str | Path) -> list[Data]:
    """A folder of ``ind.<name>.*`` files -> ``[Data]``, checked against the training feature width."""
    from torch_geometric.io import read_planetoid_data

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a folder holding the Planetoid files ind.<name>.x, .tx, "
                        ".allx, .y, .ty, .ally, .graph and .test.index.")
    prefixes = sorted({p.name[4:-2] for p in folder.glob("ind.*.x")})
    if len(prefixes) != 1:
        raise DataError(f"{folder}: expected exactly one ind.<name>.x file, found "
                        f"{', '.join(f'ind.{p}.x' for p in prefixes) or 'none'}.")
    prefix = prefixes[0]
    sources = _files(folder, prefix)
    missing = [f"ind.{prefix}.{s}" for s in PLANETOID_SUFFIXES if s not in sources]
    if missing:
        raise DataError(f"{folder}: {', '.join(missing)} missing; a Planetoid graph needs all of "
                        f"ind.{prefix}.{{{','.join(PLANETOID_SUFFIXES)}}}.")
    info = validate_planetoid(sources, prefix)
    if info["num_features"] != schema.num_node_features:
        raise DataError(f"{sources['x']}: has {info['num_features']} feature columns; the model was trained "
                        f"on {schema.num_node_features} ({schema.description}).")
    # Read through a normalised staging copy so PyG's text reader cannot drop a last unterminated line.
    with tempfile.TemporaryDirectory(prefix="gnnformer-planetoid-") as tmp:
        staged = {f"ind.{prefix}.{s}": p for s, p in sources.items()}
        for name, src in staged.items():
            data = src.read_bytes()
            if name.endswith("test.index"):
                data = normalised_text(data) or data
            (Path(tmp) / name).write_bytes(data)
        try:
            data = read_planetoid_data(tmp, prefix)
        except Exception as exc:  # validated already; anything left is reported, not raised raw
            raise DataError(f"{folder}: PyG could not read the Planetoid files: {type(exc).__name__}: {exc}") from exc
    data.x = data.x.to(torch.float32)
    return [data]


def _register() -> None:
    for pname, (_, summary) in KNOWN_PLANETOID.items():
        DATASETS.register(pname, summary)(functools.partial(load_planetoid, pname))


_register()
