"""TU graph-classification datasets (MUTAG, PROTEINS, NCI1, IMDB-BINARY and any other by folder)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops

from ..errors import DataError
from ..registry import DATASETS
from .classes import check_classes
from .root import attempt_download, find_child, missing_error, process_with_pyg, stage_lock, stage_raw
from .schema import FeatureSchema, GraphDataset, graphs_of
from .validate import TU_SUFFIXES, TUTables, tu_files_in, validate_tu

#: Registered TU benchmarks: (number of classes, one-line summary). The class counts are the
#: published ones (and those of the files in shared/datasets: MUTAG -1/1, PROTEINS 1/2, NCI1 0/1);
#: a file with a different count loads with a note saying so.
KNOWN_TU = {
    "MUTAG": (2, "TU: 188 nitro compounds, mutagenic or not (graph classification, 2 classes)"),
    "PROTEINS": (2, "TU: 1113 protein structures, enzyme or not (graph classification, 2 classes)"),
    "NCI1": (2, "TU: 4110 compounds screened against lung cancer (graph classification, 2 classes)"),
    "IMDB-BINARY": (2, "TU: 1000 movie ego-networks, no node features: one-hot degree (2 classes)"),
}
#: Featureless TU graphs get one-hot degrees up to this value; higher degrees share the last slot.
DEGREE_CAP = 64
_META = "gnnformer-tu.json"


def tu_raw_dir(root: Path, name: str) -> Path:
    folder = find_child(root / "TU", name)
    return (folder if folder is not None else root / "TU" / name) / "raw"


def has_tu_folder(root: Path, name: str) -> Path | None:
    """The dataset folder ``<root>/TU/<name>`` (any case) if it holds a ``raw`` folder."""
    folder = find_child(root / "TU", name)
    return folder if folder is not None and (folder / "raw").is_dir() else None


def _prefix_in(raw_dir: Path, name: str) -> str:
    """The file prefix used in ``raw_dir``: ``name`` itself, or a different-case spelling of it."""
    if (raw_dir / f"{name}_A.txt").is_file() or not raw_dir.is_dir():
        return name
    for p in sorted(raw_dir.glob("*_A.txt")):
        if p.name[:-6].lower() == name.lower():
            return p.name[:-6]
    return name


def _make(stage: Path, name: str):
    from torch_geometric.datasets import TUDataset

    # Keep attributes and labels; `_to_graph_dataset` picks which columns become features.
    ds = TUDataset(str(stage), name, use_node_attr=True, use_edge_attr=True)
    # PyG counts edges per graph only up to the last graph that has one: give the graphs without
    # edges at the end their empty edge slices, else they are dropped (and the dataset is short).
    count = max(len(bounds) for bounds in ds.slices.values())
    for key in ("edge_index", "edge_attr"):
        bounds = ds.slices.get(key)
        if bounds is not None and len(bounds) < count:
            ds.slices[key] = torch.cat([bounds, bounds[-1:].expand(count - len(bounds))])
    return ds


def load_tu(name: str, root: Path, origin: str) -> GraphDataset:
    """Load ``<root>/TU/<name>/raw`` through PyG's TUDataset, staged in the cache."""
    raw_dir = tu_raw_dir(root, name)
    prefix = _prefix_in(raw_dir, name)
    sources = tu_files_in(raw_dir, prefix) if raw_dir.is_dir() else {}
    staged = {f"{name}_{s}.txt": p for s, p in sources.items()}
    stage = stage_raw(name, staged, f"{name}/raw", text_files=set(staged))
    stage_raw_dir = stage / name / "raw"
    required = [f"{name}_A.txt", f"{name}_graph_indicator.txt"]
    meta_path = stage / _META
    processed = stage / name / "processed" / "data.pt"

    with stage_lock(stage):  # another job may be processing the same files right now
        if not all((stage_raw_dir / f).exists() for f in required):
            ds, reason = attempt_download(lambda: _make(stage, name), stage, stage_raw_dir, required)
            if ds is None:
                expected = required + [f"{name}_graph_labels.txt"]
                missing = [f for f in required if f[len(name) + 1:-4] not in sources]
                raise missing_error(name, expected, missing, raw_dir, root, origin,
                                    f"TU/{name}/raw/{name}_A.txt (and the other {name}_*.txt files)", reason)
            sources = tu_files_in(stage_raw_dir, name)  # what was downloaded

        if not (processed.is_file() and meta_path.is_file()):
            if "A" not in sources:  # files came from an earlier download
                sources = tu_files_in(stage_raw_dir, name)
            meta = validate_tu(sources, require_labels=True).meta()
            ds = process_with_pyg(lambda: _make(stage, name), processed.parent, f"the TU files in {raw_dir}")
            meta_path.write_text(json.dumps(meta))
        else:
            meta = json.loads(meta_path.read_text())
            ds = _make(stage, name)
    return _to_graph_dataset(ds, name, raw_dir, meta, prefix)


def _modes(meta: dict) -> tuple[str, str]:
    """Node features: labels, else attributes, else degree; edges: labels, else attributes, else none.

    Labels win when both exist, matching PyG's TUDataset defaults (PROTEINS: 3 label features).
    """
    node = "labels" if meta["node_label_widths"] else "attributes" if meta["num_node_attributes"] else "degree"
    edge = "labels" if meta["edge_label_widths"] else "attributes" if meta["num_edge_attributes"] else "none"
    return node, edge


def degree_features(edge_index: Tensor, num_nodes: int, cap: int) -> Tensor:
    """One-hot of each node's degree (edges leaving it; TU lists both directions), capped at ``cap``."""
    deg = torch.bincount(edge_index[0], minlength=num_nodes).clamp(max=cap)
    return torch.nn.functional.one_hot(deg, cap + 1).to(torch.float32)


def _to_graph_dataset(ds, name: str, raw_dir: Path, meta: dict, prefix: str) -> GraphDataset:
    node_mode, edge_mode = _modes(meta)
    data = ds._data  # collated storage: choose columns once, before splitting into graphs
    n_attr, e_attr = meta["num_node_attributes"], meta["num_edge_attributes"]
    if node_mode == "labels":
        data.x = data.x[:, n_attr:].to(torch.float32)
    elif node_mode == "attributes":
        data.x = data.x[:, :n_attr].to(torch.float32)
    if edge_mode == "labels":
        data.edge_attr = data.edge_attr[:, e_attr:].to(torch.float32)
    elif edge_mode == "attributes":
        data.edge_attr = data.edge_attr[:, :e_attr].to(torch.float32)
    elif "edge_attr" in data:
        del data.edge_attr
    regression = meta["graph_label_values"] is None
    if regression:
        data.y = data.y.to(torch.float32).view(len(ds), -1)
    graphs = graphs_of(ds)

    notes: list[str] = []
    cap = None
    if node_mode == "degree":
        max_deg = max((int(torch.bincount(g.edge_index[0]).max()) for g in graphs if g.num_edges), default=0)
        cap = max(1, min(DEGREE_CAP, max_deg))
        for g in graphs:
            g.x = degree_features(g.edge_index, g.num_nodes, cap)
        notes.append(f"{name} has no node labels or attributes: node features are a one-hot of the node "
                     f"degree capped at {cap} ({cap + 1} features; largest degree seen {max_deg}).")
    if node_mode == "labels" and n_attr:
        notes.append(f"{name}: {prefix}_node_attributes.txt ({n_attr} columns) is not used; node features "
                     "are the one-hot node labels, as in PyG's TUDataset default.")
    if edge_mode == "labels" and e_attr:
        notes.append(f"{name}: {prefix}_edge_attributes.txt ({e_attr} columns) is not used; edge features "
                     "are the one-hot edge labels, as in PyG's TUDataset default.")

    schema = tu_schema(meta, cap)
    if regression:
        labels = torch.cat([g.y for g in graphs], dim=0)
        task, out_dim = "graph_regression", int(labels.size(1))
    else:
        labels = torch.cat([g.y.view(-1) for g in graphs]).long()
        task, out_dim = "graph_classification", len(meta["graph_label_values"])
        values = meta["graph_label_values"]
        notes += check_classes(name, values, torch.bincount(labels, minlength=len(values)).tolist(),
                               KNOWN_TU.get(name, (None,))[0], "graph", f"{prefix}_graph_labels.txt", out_dim)
    num_edge = schema.num_edge_features
    return GraphDataset(name=name, task=task, graphs=graphs, num_features=schema.num_node_features,
                        num_edge_features=num_edge, out_dim=out_dim, schema=schema, root=raw_dir,
                        notes=notes, labels=labels)


def tu_schema(meta: dict, degree_cap: int | None) -> FeatureSchema:
    node_mode, edge_mode = _modes(meta)
    widths, ewidths = meta["node_label_widths"], meta["edge_label_widths"]
    details = {
        "node_features": node_mode,
        "node_label_offsets": meta["node_label_offsets"] if node_mode == "labels" else [],
        "node_label_widths": widths if node_mode == "labels" else [],
        "num_node_attributes": meta["num_node_attributes"] if node_mode == "attributes" else 0,
        "degree_cap": degree_cap if node_mode == "degree" else None,
        "edge_features": edge_mode,
        "edge_label_offsets": meta["edge_label_offsets"] if edge_mode == "labels" else [],
        "edge_label_widths": ewidths if edge_mode == "labels" else [],
        "num_edge_attributes": meta["num_edge_attributes"] if edge_mode == "attributes" else 0,
        "graph_label_values": meta["graph_label_values"],
        "num_graph_attributes": meta["num_graph_attributes"],
    }
    if node_mode == "labels":
        nf = sum(widths)
        desc = (f"one-hot of {nf} TU node labels" if len(widths) == 1
                else f"one-hot of {len(widths)} TU node-label columns (widths {widths})")
    elif node_mode == "attributes":
        nf = meta["num_node_attributes"]
        desc = f"{nf} TU node attributes"
    else:
        nf = degree_cap + 1
        desc = f"one-hot degree capped at {degree_cap}"
    if edge_mode == "labels":
        ef = sum(ewidths)
        desc += f"; edges: one-hot of {ef} TU edge labels"
    elif edge_mode == "attributes":
        ef = meta["num_edge_attributes"]
        desc += f"; edges: {ef} TU edge attributes"
    else:
        ef = 0
    return FeatureSchema(kind="tu", num_node_features=nf, num_edge_features=ef, description=desc,
                         details=details)


# ----------------------------------------------------------------------------- prediction input


def read_tu_for_predict(schema: FeatureSchema, path: str | Path) -> list[Data]:
    """Read ``<PREFIX>_*.txt`` from a folder and encode it exactly as the training set was."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a folder holding <PREFIX>_A.txt and "
                        "<PREFIX>_graph_indicator.txt (TU format).")
    prefixes = sorted(p.name[:-6] for p in folder.glob("*_A.txt"))
    if len(prefixes) != 1:
        found = ", ".join(f"{p}_A.txt" for p in prefixes) or "none"
        raise DataError(f"{folder}: expected exactly one <PREFIX>_A.txt file (TU format), found {found}.")
    prefix = prefixes[0]
    paths = tu_files_in(folder, prefix)
    if "graph_indicator" not in paths:
        raise DataError(f"{folder}: {prefix}_graph_indicator.txt is missing (one graph id per node line).")
    return encode_tu(validate_tu(paths, require_labels=False), schema)


def _encode_labels(table: np.ndarray, offsets: list[int], widths: list[int], path: Path,
                   what: str, schema: FeatureSchema) -> Tensor:
    if table.shape[1] != len(offsets):
        raise DataError(f"{path}: has {table.shape[1]} label column(s); the model was trained on "
                        f"{len(offsets)} ({schema.description}).")
    off, wid = np.asarray(offsets), np.asarray(widths)
    rel = table - off
    bad = (rel < 0) | (rel >= wid)
    if bad.any():
        i = int(np.argmax(bad.any(axis=1)))
        c = int(np.argmax(bad[i]))
        raise DataError(f"{path}:{i + 1}: {what} label {table[i, c]} is outside the training range "
                        f"{off[c]}..{off[c] + wid[c] - 1}; the model ({schema.description}) cannot encode it.")
    rel_t = torch.from_numpy(rel)
    return torch.cat([torch.nn.functional.one_hot(rel_t[:, c], int(wid[c])) for c in range(len(offsets))],
                     dim=1).to(torch.float32)


def _attributes(tables: TUTables, key: str, width: int, schema: FeatureSchema) -> Tensor:
    table = tables.tables[key]
    if table.shape[1] != width:
        raise DataError(f"{tables.paths[key]}: has {table.shape[1]} columns; the model was trained on "
                        f"{width} ({schema.description}).")
    return torch.from_numpy(table).to(torch.float32)


def encode_tu(tables: TUTables, schema: FeatureSchema) -> list[Data]:
    """Checked TU tables -> one ``Data`` per graph, with the schema's encoding (not re-derived)."""
    if schema.kind != "tu":
        raise DataError(f"The model expects {schema.kind} input ({schema.description}), not TU files.")
    d = schema.details
    folder, prefix = tables.paths["A"].parent, tables.paths["A"].name[:-6]

    def need(key: str, why: str) -> None:
        if key not in tables.tables:
            raise DataError(f"{folder}: {prefix}_{key}.txt is missing; the model's {why} "
                            f"({schema.description}).")

    x = None
    if d["node_features"] == "labels":
        need("node_labels", "node features are one-hot node labels")
        x = _encode_labels(tables.tables["node_labels"], d["node_label_offsets"], d["node_label_widths"],
                           tables.paths["node_labels"], "node", schema)
    elif d["node_features"] == "attributes":
        need("node_attributes", "node features are node attributes")
        x = _attributes(tables, "node_attributes", d["num_node_attributes"], schema)
    edge_attr = None
    if d["edge_features"] == "labels":
        need("edge_labels", "edge features are one-hot edge labels")
        edge_attr = _encode_labels(tables.tables["edge_labels"], d["edge_label_offsets"],
                                   d["edge_label_widths"], tables.paths["edge_labels"], "edge", schema)
    elif d["edge_features"] == "attributes":
        need("edge_attributes", "edge features are edge attributes")
        edge_attr = _attributes(tables, "edge_attributes", d["num_edge_attributes"], schema)

    ys = None
    if "graph_labels" in tables.tables and d.get("graph_label_values") is not None:
        values = {v: i for i, v in enumerate(d["graph_label_values"])}
        raw = tables.tables["graph_labels"][:, 0]
        unknown = [i for i, v in enumerate(raw.tolist()) if v not in values]
        if unknown:
            i = unknown[0]
            raise DataError(f"{tables.paths['graph_labels']}:{i + 1}: graph label {raw[i]} was not a class "
                            f"at training time (classes {d['graph_label_values']}).")
        ys = torch.tensor([values[v] for v in raw.tolist()], dtype=torch.long).view(-1, 1)
    elif "graph_attributes" in tables.tables and d.get("num_graph_attributes"):
        table = tables.tables["graph_attributes"]
        if table.shape[1] != d["num_graph_attributes"]:
            raise DataError(f"{tables.paths['graph_attributes']}: has {table.shape[1]} target columns; the "
                            f"model was trained on {d['num_graph_attributes']}.")
        ys = torch.from_numpy(table).to(torch.float32).unsqueeze(1)

    # Same structural clean-up as PyG's read_tu_data: drop self loops, sort and merge duplicates.
    batch = torch.from_numpy(tables.graph_indicator - 1)
    num_nodes = int(batch.numel())
    edge_index = torch.from_numpy(tables.edges.T - 1).contiguous()
    edge_index, edge_attr = remove_self_loops(edge_index, edge_attr)
    edge_index, edge_attr = coalesce(edge_index, edge_attr, num_nodes)

    g_count = tables.num_graphs
    node_ptr = torch.zeros(g_count + 1, dtype=torch.long)
    node_ptr[1:] = torch.bincount(batch, minlength=g_count).cumsum(0)
    edge_ptr = torch.zeros(g_count + 1, dtype=torch.long)
    edge_ptr[1:] = torch.bincount(batch[edge_index[0]], minlength=g_count).cumsum(0)
    graphs = []
    for g in range(g_count):
        n0, n1, e0, e1 = int(node_ptr[g]), int(node_ptr[g + 1]), int(edge_ptr[g]), int(edge_ptr[g + 1])
        ei = edge_index[:, e0:e1] - n0
        data = Data(edge_index=ei, num_nodes=n1 - n0)
        data.x = degree_features(ei, n1 - n0, d["degree_cap"]) if x is None else x[n0:n1]
        if edge_attr is not None:
            data.edge_attr = edge_attr[e0:e1]
        if ys is not None:
            data.y = ys[g].view(1) if ys.dtype == torch.long else ys[g]
        graphs.append(data)
    return graphs


def _register() -> None:
    for tu_name, (_, summary) in KNOWN_TU.items():
        DATASETS.register(tu_name, summary)(functools.partial(load_tu, tu_name))


_register()

__all__ = [
    "DEGREE_CAP",
    "KNOWN_TU",
    "TU_SUFFIXES",
    "degree_features",
    "encode_tu",
    "has_tu_folder",
    "load_tu",
    "read_tu_for_predict",
    "tu_raw_dir",
    "tu_schema",
]
