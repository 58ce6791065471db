"""Instances with no input graph: one graph whose nodes are the instances and whose edge set is empty.

The model has to work out which instances depend on which (all-pair attention does this), or a
graph has to be built from the features. ``digits`` is the first such set:

* ``digits``: scikit-learn's handwritten digits (the UCI optical-recognition test set shipped
  inside scikit-learn, so it loads offline): 1797 images of 8x8 pixels, 10 classes. One graph of
  1797 nodes, ``x`` = the 64 pixel intensities divided by 16 (so in [0, 1]), ``y`` = the digit,
  ``edge_index`` of shape ``[2, 0]``.
* ``digits-knn``: the same nodes with a k-nearest-neighbour graph built on ``x`` (Euclidean
  distance, each node linked to its ``k`` nearest other nodes, made symmetric by taking the union
  of both directions; option ``k``, default :data:`DIGITS_KNN_K`). This is the input graph of the
  kNN-GCN baseline: a GNN needs edges, so it gets them from the features.

Label budgets (10 / 50 / 100 training labels per class) are a split setting, not part of the
data: ``split: per_class`` with ``per_class: K`` in an experiment config.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..errors import ConfigError, DataError
from ..paths import EMBEDDED_ROOT
from ..registry import DATASETS
from .schema import FeatureSchema, GraphDataset

#: Default neighbours per node of ``digits-knn`` (best mean validation accuracy of a 2-layer GCN
#: at 10 and 50 labels per class among k in {3, 5, 10, 15, 20}, 3 seeds; see BENCHMARKS.md).
DIGITS_KNN_K = 10
DIGITS_SCALE = 16.0  # pixel intensities are integers 0..16


def knn_graph(x: Tensor, k: int, symmetric: bool = True, chunk: int = 2048) -> Tensor:
    """Edges ``j -> i`` from each of node ``i``'s ``k`` nearest other nodes ``j`` (Euclidean on ``x``).

    Ties in distance go to the lower node index, so the graph is deterministic. With
    ``symmetric`` the reverse of every edge is added (union; an edge present both ways is kept
    once), so the graph is undirected. No self-loops. Returns a ``[2, E]`` long tensor sorted by
    (source, target). Computed in row blocks of ``chunk`` nodes, so memory stays ``O(chunk * N)``.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() != 2:
        raise DataError(f"knn_graph needs a [num_nodes, num_features] matrix, got shape {tuple(x.shape)}.")
    n = x.size(0)
    if not 1 <= k < n:
        raise ConfigError(f"k must be between 1 and num_nodes - 1 = {n - 1}, got k={k}.")
    sq = (x * x).sum(1)
    neighbours = []
    for start in range(0, n, chunk):
        rows = x[start:start + chunk]
        # Squared distances; exact for the integer-valued features here, and ties broken by index.
        d = sq[start:start + chunk, None] - 2.0 * rows @ x.T + sq[None, :]
        d[torch.arange(rows.size(0)), torch.arange(start, start + rows.size(0))] = float("inf")
        neighbours.append(torch.sort(d, dim=1, stable=True).indices[:, :k])
    nbr = torch.cat(neighbours)  # nbr[i] = the k nearest nodes of i
    src = nbr.reshape(-1)
    dst = torch.arange(n).repeat_interleave(k)
    if symmetric:
        src, dst = torch.cat([src, dst]), torch.cat([dst, src])
    key = torch.unique(src * n + dst)  # sorted, duplicates dropped
    return torch.stack([key // n, key % n])


def load_digits_graph(name: str, k: int | None = None) -> GraphDataset:
    """``digits`` (``k=None``: no edges) or ``digits-knn`` (a ``k``-nearest-neighbour graph)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise DataError("The digits dataset needs scikit-learn (pip install scikit-learn).") from exc
    raw = load_digits()
    x = torch.tensor(raw.data, dtype=torch.float32) / DIGITS_SCALE
    y = torch.tensor(raw.target, dtype=torch.long)
    if k is None:
        edge_index = torch.empty(2, 0, dtype=torch.long)
        graph = "none"
        note = (f"{name}: 1797 instances and no input graph (edge_index is empty); models that need "
                "edges see isolated nodes. Use digits-knn for a feature kNN graph.")
    else:
        edge_index = knn_graph(x, int(k))
        graph = f"knn k={int(k)}, Euclidean, symmetrised"
        note = (f"{name}: input graph built from the features: each node linked to its {int(k)} nearest "
                f"nodes (Euclidean on the pixel features), made symmetric ({edge_index.size(1)} directed edges).")
    data = Data(x=x, edge_index=edge_index, y=y, num_nodes=x.size(0))
    schema = FeatureSchema(kind="instances", num_node_features=64, num_edge_features=0,
                           description="8x8 digit pixel intensities / 16",
                           details={"source": "sklearn.datasets.load_digits", "scale": DIGITS_SCALE, "graph": graph})
    return GraphDataset(name=name, task="node_classification", graphs=[data], num_features=64,
                        num_edge_features=0, out_dim=10, schema=schema, root=EMBEDDED_ROOT, notes=[note], labels=y)


def _register() -> None:
    def digits(root, origin):  # data root unused: scikit-learn ships the data
        return load_digits_graph("digits")

    def digits_knn(root, origin, *, k: int = DIGITS_KNN_K):
        if isinstance(k, bool) or not isinstance(k, int):
            raise ConfigError(f"digits-knn option k must be an integer, got {k!r}.")
        return load_digits_graph("digits-knn", k)

    DATASETS.register("digits", "scikit-learn digits: 1797 8x8 images, 10 classes, one graph with no edges "
                      "(node classification without an input graph)")(digits)
    DATASETS.register("digits-knn", f"digits with a symmetric feature kNN graph (option k, default "
                      f"{DIGITS_KNN_K}) for GNN baselines")(digits_knn)


_register()
