"""What a loaded dataset looks like to the rest of gnnformer: `GraphDataset` and its `FeatureSchema`."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch_geometric.data import Data

from ..errors import CheckpointError

TASKS = ("graph_classification", "graph_regression", "multitask_binary", "node_classification",
         "node_regression")
KINDS = ("tu", "planetoid", "molecule")


@dataclass
class FeatureSchema:
    """How raw input becomes ``x``/``edge_attr``; a checkpoint is only usable on data with an equal schema.

    ``details`` holds only what the encoding depends on (label offsets, widths, degree cap, vocab
    sizes), so two schemas compare equal exactly when the same raw input would encode identically.
    """

    kind: str
    num_node_features: int
    num_edge_features: int
    description: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSchema:
        try:
            return cls(
                kind=str(d["kind"]),
                num_node_features=int(d["num_node_features"]),
                num_edge_features=int(d["num_edge_features"]),
                description=str(d.get("description", "")),
                details=dict(d.get("details") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"The stored feature schema is unreadable ({exc!r}): {d!r}") from exc

    def summary(self) -> str:
        """One line for messages: kind, widths and the human description."""
        return (f"{self.kind}: {self.num_node_features} node / {self.num_edge_features} edge features "
                f"({self.description})")

    def check_compatible(self, other: FeatureSchema) -> None:
        """Raise `CheckpointError` unless ``other`` (the data) encodes features exactly as ``self`` (the checkpoint)."""
        diffs = []
        if self.kind != other.kind:
            diffs.append(f"kind {self.kind!r} vs {other.kind!r}")
        if self.num_node_features != other.num_node_features:
            diffs.append(f"node features {self.num_node_features} vs {other.num_node_features}")
        if self.num_edge_features != other.num_edge_features:
            diffs.append(f"edge features {self.num_edge_features} vs {other.num_edge_features}")
        # JSON round trip so tuples/lists and int/float keys compare as they would after a save/load.
        mine, theirs = _jsonable(self.details), _jsonable(other.details)
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                diffs.append(f"{key} {_short(mine.get(key))} vs {_short(theirs.get(key))}")
        if diffs:
            raise CheckpointError(
                "The checkpoint's input features do not match this data.\n"
                f"  checkpoint: {self.summary()}\n"
                f"  data:       {other.summary()}\n"
                f"  differences (checkpoint vs data): {'; '.join(diffs)}.\n"
                "Use data encoded like the training set (same dataset family and label set), "
                "or train a new model on this data.")


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, sort_keys=True))


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class GraphDataset:
    """A loaded dataset: PyG ``Data`` objects plus what a trainer needs to know about them."""

    name: str
    task: str
    graphs: list[Data]
    num_features: int
    num_edge_features: int
    out_dim: int
    schema: FeatureSchema
    root: Path
    notes: list[str] = field(default_factory=list)
    labels: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    fixed_split: object = None  # a Split the dataset prescribes (e.g. CLUSTER's graph split), if any

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, idx: int) -> Data:
        return self.graphs[idx]

    def __repr__(self) -> str:
        return (f"GraphDataset({self.name!r}, task={self.task!r}, graphs={len(self.graphs)}, "
                f"num_features={self.num_features}, num_edge_features={self.num_edge_features}, "
                f"out_dim={self.out_dim})")


def graphs_of(ds) -> list[Data]:
    """All graphs of a PyG InMemoryDataset as separate ``Data`` (views into its storage).

    Same result as ``[ds[i] for i in range(len(ds))]`` but about ten times faster, because it
    splits each collated tensor once instead of running PyG's generic ``separate`` per graph.
    Falls back to indexing for anything unusual (heterogeneous data, index subsets).
    """
    data, slices, n = ds._data, ds.slices, len(ds)
    if slices is None or type(data) is not Data or getattr(ds, "_indices", None) is not None:
        return [ds[i] for i in range(n)]
    store = data._store
    columns: dict[str, list] = {}
    for key, bounds in slices.items():
        if key not in store:
            continue
        value, b = store[key], bounds.tolist()
        if isinstance(value, torch.Tensor):
            dim = data.__cat_dim__(key, value, store)
            parts = list(torch.split(value, [e - s for s, e in zip(b[:-1], b[1:])], dim=dim or 0))
            columns[key] = [p.squeeze(0) for p in parts] if dim is None else parts
        elif isinstance(value, list) and len(value) == n and b == list(range(n + 1)):
            columns[key] = value
        else:
            return [ds[i] for i in range(n)]
    num_nodes = getattr(store, "_num_nodes", None)
    graphs = []
    for i in range(n):
        g = Data(**{k: v[i] for k, v in columns.items()})
        if num_nodes is not None:
            g.num_nodes = num_nodes[i]
        graphs.append(g)
    return graphs
