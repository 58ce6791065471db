"""Planted ground truth for explainers: BA-Shapes / Tree-Cycles (PyG's ``ExplainerDataset``, as in
Ying et al., "GNNExplainer", NeurIPS 2019) and a seeded team generator in which each member's
outcome is driven by named peers.
"""
from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Data

#: Edge types of ``team_graph``: a driver's work reaches the member (0), plain co-editing (1).
TEAM_EDGE_TYPES = ("drives", "co-edit")


def motif_graph(kind: str = "ba-shapes", seed: int = 0) -> tuple[Data, list[list[int]]]:
    """BA-Shapes (``BAGraph(300, 5)`` + 80 houses) or Tree-Cycles (``TreeGraph(8)`` + 80 six-cycles),
    constant features (10 ones), labels = position in the motif (0 = base graph). Returns the graph
    and, per node, the nodes of its motif (empty for base nodes). Same seed, same graph."""
    # PyG's generators draw from torch's global generator and (BAGraph) numpy's; seed both, and
    # give numpy's state back so that a caller's own draws are not disturbed.
    torch.manual_seed(seed)
    numpy_state = np.random.get_state()
    np.random.seed(seed)
    try:
        return _motif_graph(kind)
    finally:
        np.random.set_state(numpy_state)


def _motif_graph(kind: str) -> tuple[Data, list[list[int]]]:
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph, TreeGraph
    from torch_geometric.datasets.motif_generator import CycleMotif, HouseMotif

    if kind == "ba-shapes":
        base, motif, size = BAGraph(num_nodes=300, num_edges=5), HouseMotif(), 5
    elif kind == "tree-cycles":
        base, motif, size = TreeGraph(depth=8, undirected=True), CycleMotif(6), 6
    else:
        raise ValueError(f"unknown motif graph {kind!r}")
    graph = ExplainerDataset(graph_generator=base, motif_generator=motif, num_motifs=80)[0]
    data = Data(x=torch.ones(graph.num_nodes, 10), edge_index=graph.edge_index, y=graph.y)
    start = graph.num_nodes - 80 * size  # motifs are appended after the base graph, in order
    truth = [[] for _ in range(start)]
    for m in range(80):
        truth += [list(range(start + m * size, start + (m + 1) * size))] * size
    return data, truth


def team_graph(num_teams: int = 40, team_size: int = 6, drivers: int = 2, seed: int = 0,
               threshold: float = 0.5) -> tuple[Data, list[list[int]]]:
    """Teams whose members' outcome is driven by named peers.

    Every member has an activity level a in [0, 1] (feature 0) and three noise features. Within a
    team, each member has ``drivers`` named peers whose work reaches them (``drives`` edges, peer ->
    member) and co-edits with two other teammates (``co-edit`` edges, both ways). A member is at
    risk (y = 1) when the mean activity of their drivers is below ``threshold``: the outcome
    depends on those peers and on no one else. Returns the graph (``edge_type`` as in
    :data:`TEAM_EDGE_TYPES`) and, per member, the ground truth: the member and their drivers.
    """
    g = torch.Generator().manual_seed(seed)
    n = num_teams * team_size
    x = torch.rand(n, 4, generator=g)
    src, dst, kind, truth = [], [], [], []
    for t in range(num_teams):
        members = list(range(t * team_size, (t + 1) * team_size))
        for i, m in enumerate(members):
            # everyone in the team but the member, in a random order
            others = [members[(i + 1 + j) % team_size] for j in torch.randperm(team_size - 1, generator=g).tolist()]
            named, coedit = others[:drivers], others[drivers:drivers + 2]
            src += named
            dst += [m] * len(named)
            kind += [0] * len(named)
            for c in coedit:
                src += [c, m]
                dst += [m, c]
                kind += [1, 1]
            truth.append(sorted([m] + named))
    edge_index = torch.tensor([src, dst])
    edge_type = torch.tensor(kind)
    drive = edge_type == 0
    mean = torch.zeros(n).index_add_(0, edge_index[1, drive], x[edge_index[0, drive], 0]) / drivers
    return Data(x=x, edge_index=edge_index, edge_type=edge_type, y=(mean < threshold).long()), truth
