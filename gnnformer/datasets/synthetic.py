"""Seeded synthetic datasets, generated on load (nothing to download).

CLUSTER: the stochastic-block-model recipe of the benchmarking-gnns CLUSTER set (Dwivedi et al.,
"Benchmarking Graph Neural Networks", JMLR 2023): each graph has 6 communities of 5-35 nodes,
an edge joins two nodes with probability p = 0.55 inside a community and q = 0.25 across;
every node carries label 0 except one random node per community, labelled with its community
(1..6); the task is to predict every node's community. Splits: 10000 / 1000 / 1000 graphs.

This is a *regenerated* set from the published recipe and seed of our own, not the published
files: numbers on it are comparable in kind, not digit for digit.

SBM-large: one large stochastic-block-model graph for node classification at scale (mini-batch
training, ``node_batch_size``), 100,000 nodes unless ``dataset.num_nodes`` says otherwise: 10
classes, about 11 neighbours per node (60% of them in the node's own class) and 128 features =
class mean + noise; see :func:`large_sbm`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Data

from ..paths import EMBEDDED_ROOT
from ..registry import DATASETS
from .schema import FeatureSchema, GraphDataset
from .splits import Split

CLUSTER_RECIPE = {"communities": 6, "size_min": 5, "size_max": 35, "p": 0.55, "q": 0.25}


def sbm_cluster_graph(rng: np.random.Generator, communities: int = 6, size_min: int = 5, size_max: int = 35,
                      p: float = 0.55, q: float = 0.25) -> Data:
    """One CLUSTER graph: SBM edges, one seed node per community, community targets."""
    sizes = rng.integers(size_min, size_max + 1, size=communities)
    y = rng.permutation(np.repeat(np.arange(communities), sizes))  # node order carries no signal
    n = y.size
    prob = np.where(y[:, None] == y[None, :], p, q)
    upper = np.triu(rng.random((n, n)) < prob, k=1)
    src, dst = np.nonzero(upper | upper.T)
    seed_label = np.zeros(n, dtype=np.int64)
    for c in range(communities):
        seed_label[rng.choice(np.flatnonzero(y == c))] = c + 1
    x = torch.nn.functional.one_hot(torch.from_numpy(seed_label), communities + 1).float()
    edge_index = torch.from_numpy(np.stack([src, dst])).long()
    return Data(x=x, edge_index=edge_index, y=torch.from_numpy(y).long(), num_nodes=n)


def load_cluster(name: str, sizes: tuple[int, int, int], seed: int = 0) -> GraphDataset:
    rng = np.random.default_rng(seed)
    total = sum(sizes)
    graphs = [sbm_cluster_graph(rng, **CLUSTER_RECIPE) for _ in range(total)]
    n_train, n_val, _ = sizes
    idx = torch.arange(total)
    split = Split(train=idx[:n_train], val=idx[n_train:n_train + n_val], test=idx[n_train + n_val:])
    k = CLUSTER_RECIPE["communities"]
    schema = FeatureSchema(kind="synthetic", num_node_features=k + 1, num_edge_features=0,
                           description=f"one-hot seed label (0 = unknown, 1..{k} = community)",
                           details={"generator": "sbm_cluster", **CLUSTER_RECIPE})
    note = (f"{name} is regenerated from the published CLUSTER SBM recipe (seed {seed}, "
            f"{n_train}/{n_val}/{sizes[2]} graphs); it is not the published dataset.")
    return GraphDataset(name=name, task="node_classification", graphs=graphs, num_features=k + 1,
                        num_edge_features=0, out_dim=k, schema=schema, root=EMBEDDED_ROOT, notes=[note],
                        labels=torch.cat([g.y for g in graphs]), fixed_split=split)


def _register() -> None:
    for name, sizes, what in (("CLUSTER", (10000, 1000, 1000), "published sizes"),
                              ("CLUSTER-mini", (1000, 200, 200), "reduced sizes for CPU runs")):
        summary = f"SBM node classification regenerated from the CLUSTER recipe, {sizes[0]}/{sizes[1]}/{sizes[2]} graphs ({what})"

        def loader(root, origin, _name=name, _sizes=sizes):  # data root unused: generated
            return load_cluster(_name, _sizes)

        DATASETS.register(name, summary)(loader)
    r = SBM_LARGE_RECIPE
    summary = (f"one synthetic SBM graph (default {SBM_LARGE_NODES:,} nodes, option num_nodes), {r['num_classes']} "
               f"classes, ~{r['avg_degree']:g} neighbours per node, {r['num_features']} features (large-graph node tasks)")

    def sbm_loader(root, origin, *, num_nodes: int = SBM_LARGE_NODES, seed: int = 0, avg_degree: float = r["avg_degree"],
                   num_classes: int = r["num_classes"], num_features: int = r["num_features"],
                   homophily: float = r["homophily"]):  # data root unused: generated
        return load_large_sbm("SBM-large", num_nodes, seed, avg_degree=avg_degree, num_classes=num_classes,
                              num_features=num_features, homophily=homophily)

    DATASETS.register("SBM-large", summary)(sbm_loader)


# --------------------------------------------------------------------------------------------
# Large single-graph SBM (node classification at 10^4 .. 10^7 nodes)

SBM_LARGE_RECIPE = {"num_classes": 10, "avg_degree": 11.0, "num_features": 128, "homophily": 0.6,
                    "feature_signal": 0.15}
SBM_LARGE_NODES = 100_000


def large_sbm(num_nodes: int, avg_degree: float = 11.0, num_features: int = 128, num_classes: int = 10,
              seed: int = 0, homophily: float = 0.6, feature_signal: float = 0.15,
              chunk: int = 1 << 20) -> Data:
    """One large undirected SBM graph with class-correlated features, generated without dense matrices.

    Every node gets a class uniformly at random (the class is its block). An edge joins two
    nodes of the same class with probability ``p_in`` and of different classes with
    ``p_out``, chosen so that a node has ``avg_degree`` neighbours on average, a share
    ``homophily`` of them in its own class (chance level is about ``1 / num_classes``).
    Per block pair the number of edges is drawn from its binomial and the end points uniformly
    inside the two blocks; self loops and repeated pairs are dropped (rare at these densities,
    so the mean degree comes out a hair under ``avg_degree``). Features are the class mean
    (``feature_signal`` times a standard normal vector per class) plus standard normal noise,
    float32, written in chunks of ``chunk`` rows.

    Returns ``Data(x [N, F] float32, edge_index [2, E] long, y [N] long)``: ``edge_index`` holds
    both directions of every edge, sorted by (source, target). Same arguments, same graph.
    Memory is about ``4 N F`` bytes for ``x`` plus ``16 E`` for ``edge_index`` and a few
    ``8 E`` temporaries while edges are sorted (E = N * avg_degree).
    """
    n, c = int(num_nodes), int(num_classes)
    if n < 2 or c < 1 or avg_degree <= 0 or num_features < 1 or not 0.0 <= homophily <= 1.0:
        raise ValueError("large_sbm needs num_nodes >= 2, num_classes >= 1, avg_degree > 0, num_features >= 1 "
                         "and homophily in [0, 1].")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n).astype(np.int64)
    order = np.argsort(y, kind="stable")  # the members of class k: order[start[k]:start[k + 1]]
    sizes = np.bincount(y, minlength=c)
    start = np.concatenate([[0], np.cumsum(sizes)])
    # Expected neighbours of a node: p_in * (n / c) inside its class, p_out * n (c - 1) / c outside.
    p_in = homophily * avg_degree * c / n
    p_out = (1.0 - homophily) * avg_degree * c / (n * (c - 1)) if c > 1 else 0.0
    keys = []
    for a in range(c):
        for b in range(a, c):
            na, nb = int(sizes[a]), int(sizes[b])
            pairs = na * (na - 1) // 2 if a == b else na * nb
            p = min(p_in if a == b else p_out, 1.0)
            if pairs == 0 or p <= 0:
                continue
            m = int(rng.binomial(pairs, p))
            u = order[start[a] + rng.integers(0, na, size=m)]
            v = order[start[b] + rng.integers(0, nb, size=m)]
            lo, hi = np.minimum(u, v), np.maximum(u, v)
            keep = lo != hi
            keys.append(lo[keep] * n + hi[keep])
            del u, v, lo, hi, keep
    und = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    del keys
    und.sort()
    if und.size:
        und = und[np.concatenate([[True], und[1:] != und[:-1]])]  # sorted, no repeats
    lo, hi = np.divmod(und, n)
    both = np.concatenate([und, hi * n + lo])  # both directions, as source * n + target
    del und, lo, hi
    both.sort()
    ei = np.empty((2, both.size), dtype=np.int64)
    np.floor_divide(both, n, out=ei[0])
    np.multiply(ei[0], n, out=ei[1])
    np.subtract(both, ei[1], out=ei[1])
    del both
    edge_index = torch.from_numpy(ei)

    means = torch.from_numpy((feature_signal * rng.standard_normal((c, num_features))).astype(np.float32))
    labels = torch.from_numpy(y)
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))  # torch's normal sampler is the faster
    x = torch.empty(n, num_features)
    for s in range(0, n, chunk):
        part = x[s:s + chunk]
        torch.randn(part.shape, generator=gen, out=part)
        part += means[labels[s:s + chunk]]
    return Data(x=x, edge_index=edge_index, y=labels, num_nodes=n)


def edge_homophily(edge_index: torch.Tensor, y: torch.Tensor) -> float:
    """Share of edges whose two ends have the same label."""
    if edge_index.size(1) == 0:
        return float("nan")
    return float((y[edge_index[0]] == y[edge_index[1]]).double().mean())


def load_large_sbm(name: str, num_nodes: int, seed: int = 0, **recipe) -> GraphDataset:
    """``large_sbm`` as a dataset; ``recipe`` overrides entries of ``SBM_LARGE_RECIPE``."""
    from ..errors import ConfigError

    r = {**SBM_LARGE_RECIPE, **recipe}
    try:
        g = large_sbm(int(num_nodes), float(r["avg_degree"]), int(r["num_features"]), int(r["num_classes"]),
                      seed=int(seed), homophily=float(r["homophily"]), feature_signal=float(r["feature_signal"]))
    except ValueError as err:
        raise ConfigError(f"{name}: {err}") from None
    schema = FeatureSchema(kind="synthetic", num_node_features=int(r["num_features"]), num_edge_features=0,
                           description="class mean + standard normal noise",
                           details={"generator": "large_sbm", "num_nodes": int(num_nodes), "seed": int(seed), **r})
    note = (f"{name} is a synthetic SBM generated on load (seed {seed}): {int(num_nodes):,} nodes, "
            f"{r['num_classes']} classes, ~{r['avg_degree']:g} neighbours per node, homophily {r['homophily']:g}.")
    return GraphDataset(name=name, task="node_classification", graphs=[g], num_features=int(r["num_features"]),
                        num_edge_features=0, out_dim=int(r["num_classes"]), schema=schema, root=EMBEDDED_ROOT,
                        notes=[note], labels=g.y)


_register()
