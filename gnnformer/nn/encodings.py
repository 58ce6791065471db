r"""Positional and structural encodings: what a graph transformer knows about structure.

Attention on the complete graph is permutation-equivariant and blind to the edges; these
encodings put the graph back in:

* :class:`LapPE` -- Laplacian eigenvectors (Dwivedi et al., "Benchmarking Graph Neural Networks",
  2020): node coordinates in the spectral basis, added to node features via :class:`LapPEEncoder`.
* :class:`RWSE` -- random-walk return probabilities :math:`(P^t)_{ii}` (Dwivedi et al.,
  "Graph Neural Networks with Learnable Structural and Positional Representations", ICLR 2022),
  via :class:`RWSEEncoder`.
* :class:`ShortestPathDistance` -- :math:`\mathrm{spd}(i, j)` for all pairs (Ying et al., "Do
  Transformers Really Perform Badly for Graph Representation?", NeurIPS 2021): densified with
  :func:`spd_to_dense`, it indexes a learnable attention bias :math:`b_{ij} = \beta_{\mathrm{spd}(i,j)}`.

:func:`gnnformer.datasets.encodings.precompute_encodings` computes them once per dataset and
caches them on disk; this module only computes, in memory.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.transforms import AddLaplacianEigenvectorPE, AddRandomWalkPE, BaseTransform
from torch_geometric.utils import is_undirected

from ..errors import ConfigError

#: Above this many nodes in one graph, the dense n x n SPD matrix is refused (memory).
SPD_MAX_NODES = 10_000
#: Graphs up to this many nodes get their SPD from batched matrix products (Seidel's algorithm,
#: O(n^3 log diameter), many graphs per call); larger ones from scipy's BFS, one graph per call
#: (O(n m): cheaper for large sparse graphs -- on long sparse graphs the two meet near 170 nodes,
#: while dense ones such as CLUSTER's favour the matrix products well beyond).
SPD_DENSE_MAX_NODES = 192
_SPD_CHUNK_ENTRIES = 1 << 22  # graphs per batched product: at most this many adjacency entries


# --------------------------------------------------------------------------------------------
# Computation, one graph at a time (public: the data layer caches what these return).


def _structure(data: Data, weights: bool = False) -> Data:
    """A bare copy with only what the encodings read, so PyG's transforms see nothing else."""
    out = Data(edge_index=data.edge_index.cpu(), num_nodes=data.num_nodes)
    if weights and getattr(data, "edge_weight", None) is not None:
        out.edge_weight = data.edge_weight.cpu()
    return out


def compute_lap_pe(data: Data, k: int) -> Tensor:
    """``[N, k]`` float: the values :class:`LapPE` adds as ``data.lap_pe``."""
    num_nodes = int(data.num_nodes)
    pe = torch.zeros(num_nodes, k)
    graph = _structure(data, weights=True)
    # An isolated node is a component of one node: a zero row, as for a one-node graph. Left in,
    # its row and column of PyG's Laplacian are those of the identity, so it would add an
    # eigenvector e_i (eigenvalue 1) that takes a column in an order fixed by node numbering.
    active = _linked_nodes(graph)
    if not bool(active.all()):
        graph = graph.subgraph(active)
    size = int(graph.num_nodes)
    # A graph on N nodes has only N - 1 non-trivial eigenvectors; PyG's transform needs k < N.
    k_eff = min(k, size - 1)
    if k_eff <= 0:
        return pe
    undirected = is_undirected(graph.edge_index, graph.edge_weight, num_nodes=size)
    # Over 100 nodes PyG calls ARPACK, which starts from a random vector unless given one: a fixed
    # start makes the eigenvectors the same bits on every run.
    start = np.random.default_rng(0).uniform(-1.0, 1.0, size)
    transform = AddLaplacianEigenvectorPE(k_eff, attr_name="lap_pe", is_undirected=undirected, v0=start)
    if k_eff + 1 >= size:
        transform.SPARSE_THRESHOLD = size + 1  # ARPACK needs k + 1 < N: use the dense solver
    # PyG flips signs at random from the global RNG; fork it so that computing (rather than
    # loading from cache) does not shift the seeded stream that model init and training use.
    with torch.random.fork_rng(devices=[]):
        vecs = transform(graph).lap_pe.to(torch.float64)
    # Canonical sign (largest-magnitude entry positive): the result is deterministic, so cached
    # and recomputed encodings agree; LapPEEncoder re-randomises signs during training.
    idx = vecs.abs().argmax(dim=0)
    sign = torch.sign(vecs[idx, torch.arange(vecs.size(1))])
    sign[sign == 0] = 1
    pe[active, :k_eff] = (vecs * sign).float()
    return pe


def _linked_nodes(graph: Data) -> Tensor:
    """``[N]`` bool: nodes with an edge (not a self loop, weight not 0) to another node -- the
    nodes with a non-zero degree in PyG's normalised Laplacian."""
    row, col = graph.edge_index
    keep = row != col
    if graph.edge_weight is not None:
        keep &= graph.edge_weight != 0
    active = torch.zeros(int(graph.num_nodes), dtype=torch.bool)
    active[row[keep]] = True
    return active


def compute_rwse(data: Data, steps: int) -> Tensor:
    """``[N, steps]`` float: the values :class:`RWSE` adds as ``data.rwse``."""
    num_nodes = int(data.num_nodes)
    if num_nodes == 0:
        return torch.zeros(0, steps)
    graph = _structure(data, weights=True)
    return AddRandomWalkPE(steps, attr_name="rwse")(graph).rwse.float()


def compute_spd(data: Data | Sequence[Data]) -> Tensor | list[Tensor]:
    """SPD of one graph (``[N * N]`` long), or of many graphs (a list of those, in input order).

    Many graphs are computed together: those of up to :data:`SPD_DENSE_MAX_NODES` nodes grouped by
    size, with Seidel's algorithm on batched dense adjacency matrices (:func:`_spd_dense`); larger
    ones with scipy's BFS one at a time (:func:`_spd_scipy`). Both give the same distances.
    """
    if isinstance(data, Data):
        return compute_spd([data])[0]
    graphs = list(data)
    sizes = [int(g.num_nodes) for g in graphs]
    if sizes and max(sizes) > SPD_MAX_NODES:
        raise ConfigError(
            f"Shortest-path distances need an n x n matrix per graph; a graph has {max(sizes)} nodes "
            f"(limit {SPD_MAX_NODES}). Use an encoding other than SPD for this dataset."
        )
    out: list = [None] * len(graphs)
    small = [i for i, n in enumerate(sizes) if n <= SPD_DENSE_MAX_NODES]
    for i, n in enumerate(sizes):
        if n > SPD_DENSE_MAX_NODES:
            out[i] = _spd_scipy(graphs[i])
    if small:
        for i, v in zip(small, _spd_dense([graphs[i] for i in small], [sizes[i] for i in small])):
            out[i] = v
    return out


def _spd_scipy(data: Data) -> Tensor:
    """One graph's SPD with :func:`scipy.sparse.csgraph.shortest_path` (BFS from every node)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    n = int(data.num_nodes)
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    ei = data.edge_index.cpu().numpy()
    adj = csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(n, n))
    # Undirected, as in Graphormer: spd(i, j) = spd(j, i) even if only one direction is stored.
    dist = shortest_path(adj, method="D", directed=False, unweighted=True)
    dist[np.isinf(dist)] = -1
    return torch.from_numpy(dist.astype(np.int64)).reshape(-1)


def _spd_dense(graphs: list[Data], sizes: list[int]) -> list[Tensor]:
    """SPD of many small graphs at once: graphs of equal size are stacked into ``[G, n, n]``
    adjacency matrices and solved together by :func:`_seidel` (a few batched matrix products).

    All graphs' matrices live in one flat buffer (graphs sorted by size, so that each size group
    is a contiguous block), filled from the concatenated edge lists in one indexing operation.
    """
    num = len(graphs)
    sizes_t = torch.tensor(sizes, dtype=torch.long)
    counts = torch.tensor([int(g.edge_index.size(1)) for g in graphs], dtype=torch.long)
    order = torch.argsort(sizes_t, stable=True)
    squares = sizes_t[order] ** 2
    offset = torch.empty_like(sizes_t)
    offset[order] = torch.cumsum(squares, 0) - squares
    total = int(squares.sum())

    # Reflexive adjacency A + I, undirected: both directions of every edge.
    adj = torch.zeros(total, dtype=torch.float32)
    owner = torch.repeat_interleave(torch.arange(num), sizes_t)  # graph of every node
    local = torch.arange(owner.numel()) - (torch.cumsum(sizes_t, 0) - sizes_t)[owner]
    adj[offset[owner] + local * (sizes_t[owner] + 1)] = 1.0
    if int(counts.sum()):
        src, dst = torch.cat([g.edge_index.cpu() for g in graphs], dim=1).to(torch.long)
        owner = torch.repeat_interleave(torch.arange(num), counts)
        n, base = sizes_t[owner], offset[owner]
        adj[base + src * n + dst] = 1.0
        adj[base + dst * n + src] = 1.0

    dist = torch.empty(total, dtype=torch.long)
    group_sizes, group_counts = torch.unique_consecutive(sizes_t[order], return_counts=True)
    start = 0
    for n, count in zip(group_sizes.tolist(), group_counts.tolist()):
        step = max(1, _SPD_CHUNK_ENTRIES // max(n * n, 1))  # bounds the memory of one product
        for first in range(0, count, step):
            k = min(step, count - first)
            lo, hi = start + first * n * n, start + (first + k) * n * n
            if n:
                dist[lo:hi] = _seidel(adj[lo:hi].view(k, n, n)).view(-1)
        start += count * n * n
    by_rank = torch.split(dist, squares.tolist())
    out: list = [None] * num
    for rank, i in enumerate(order.tolist()):
        out[i] = by_rank[rank]
    return out


def _seidel(reach: Tensor) -> Tensor:
    r"""All-pairs hop distances of a batch of undirected graphs: ``reach`` ``[G, n, n]`` float,
    the symmetric 0/1 adjacency matrix plus the identity -> ``[G, n, n]`` float distances,
    ``-1`` where unreachable.

    Seidel, "On the All-Pairs-Shortest-Path Problem in Unweighted Undirected Graphs" (1995),
    unrolled, with reflexive matrices :math:`B = A + I`: going up, :math:`B_{l+1} = [B_l^2 > 0]`
    joins the pairs within distance :math:`2^{l+1}`, until nothing changes; then :math:`B_L - I`
    is the distance matrix of the top level (1 between the distinct nodes of a component).
    Going down, with :math:`D'` the distances in the graph of :math:`B_{l+1}` (distance
    :math:`\lceil d/2 \rceil` for distance :math:`d` in that of :math:`B_l`),
    :math:`D_{ij} = 2 D'_{ij} - [(B_l D')_{ij} < D'_{ij} \sum_k (B_l)_{ik}]` -- Seidel's parity
    test, the self loop adding :math:`D'_{ij}` to both sides. Unreachable pairs have
    :math:`D' = 0` at every level (none of :math:`i`'s neighbours reaches :math:`j` either) and
    become ``-1`` at the end. Exact in float32: every entry is an integer below
    :math:`n^2 \ll 2^{24}` (``n <= SPD_DENSE_MAX_NODES``).
    """
    levels = [reach]
    while True:
        wider = torch.bmm(levels[-1], levels[-1]).clamp_(max=1.0)  # path counts -> 0/1
        if torch.equal(wider, levels[-1]):
            break
        levels.append(wider)
    top = levels[-1]
    dist = top - torch.eye(top.size(-1))
    for b in reversed(levels[:-1]):
        odd = torch.bmm(b, dist).lt_(dist * b.sum(-1, keepdim=True))
        dist = dist.mul_(2).sub_(odd)
    return dist.sub_(1.0 - top)  # unreachable: 0 - 1


# --------------------------------------------------------------------------------------------
# Transforms


class LapPE(BaseTransform):
    r"""Adds ``data.lap_pe`` ``[N, k]`` float: the eigenvectors of the normalised Laplacian
    :math:`L = I - D^{-1/2} A D^{-1/2}` for the ``k`` smallest eigenvalues after the first
    (trivial) one, :math:`L v = \lambda v`, computed with PyG's
    :class:`~torch_geometric.transforms.AddLaplacianEigenvectorPE`.

    Differences from PyG's transform: graphs with ``N <= k`` get their ``N - 1`` eigenvectors
    followed by zero columns (PyG cannot do ``k >= N``); the sign of each eigenvector is made
    canonical (largest-magnitude entry positive) instead of random, so results are reproducible and
    cacheable -- :class:`LapPEEncoder` applies the random sign flips during training. For a
    disconnected graph only the first zero eigenvalue is dropped. Isolated nodes (no edge to
    another node) get zero rows and the eigenvectors are those of the graph without them, so a
    graph without edges, like a one-node graph, is all zeros.
    """

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"LapPE needs k >= 1, got {k}")
        self.k = k

    def forward(self, data: Data) -> Data:
        data.lap_pe = compute_lap_pe(data, self.k)
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k})"


class RWSE(BaseTransform):
    r"""Adds ``data.rwse`` ``[N, steps]`` float: :math:`\mathrm{rwse}_{i,t} = (P^t)_{ii}`,
    :math:`t = 1..\text{steps}`, with :math:`P = D^{-1} A` the random-walk matrix -- the
    probability that a walk from :math:`i` is back at :math:`i` after :math:`t` steps (PyG's
    :class:`~torch_geometric.transforms.AddRandomWalkPE`). An isolated node has a zero row of
    :math:`P` (no step to take), so its encoding is all zeros."""

    def __init__(self, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"RWSE needs steps >= 1, got {steps}")
        self.steps = steps

    def forward(self, data: Data) -> Data:
        data.rwse = compute_rwse(data, self.steps)
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(steps={self.steps})"


class ShortestPathDistance(BaseTransform):
    r"""Adds ``data.spd`` long ``[N * N]``: hop distances :math:`\mathrm{spd}(i, j)` flattened
    row-major (entry ``i * N + j``), ``-1`` where :math:`j` is unreachable from :math:`i`.

    Edges count as undirected and unweighted; computed by :func:`scipy.sparse.csgraph.shortest_path`.
    Flattened so that PyG's batching concatenates graphs; :func:`spd_to_dense` restores
    ``[B, Nmax, Nmax]``.
    """

    def forward(self, data: Data) -> Data:
        data.spd = compute_spd(data)
        return data


def spd_graph_sizes(spd: Tensor, sizes: Tensor) -> Tensor:
    r"""``sizes`` (nodes per graph), checked against a batch's concatenated ``spd``: it must hold
    :math:`\sum n^2` entries."""
    needed = int((sizes * sizes).sum())
    if needed != spd.numel():
        raise ValueError(
            f"spd has {spd.numel()} entries but the graphs' sizes need {needed} "
            "(sum of n^2); was it batched with a different batch vector?"
        )
    return sizes


def spd_entry_positions(sizes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For the concatenated SPD of graphs with ``sizes`` nodes (graph by graph, each ``n x n``
    row-major): every entry's graph (its position in ``sizes``), row and column."""
    squares = sizes * sizes
    graph = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), squares)
    local = torch.arange(graph.numel(), device=sizes.device) - (torch.cumsum(squares, 0) - squares)[graph]
    n = sizes[graph]
    i = torch.div(local, n, rounding_mode="floor")
    return graph, i, local - i * n


def spd_to_dense(spd: Tensor, batch: Tensor | None, max_nodes: int | None = None) -> Tensor:
    """Unflatten a batch's concatenated ``spd`` into ``[B, Nmax, Nmax]`` long, padding ``-1``.

    Position ``[b, i, j]`` holds the distance between the ``i``-th and ``j``-th node of graph
    ``b``, the layout of :func:`~torch_geometric.utils.to_dense_batch` (and so of
    ``GraphMultiheadAttention``'s ``attn_bias``). With ``max_nodes``, ``Nmax = max_nodes`` and
    nodes past it are dropped, as ``to_dense_batch(..., max_num_nodes=max_nodes)`` does.
    """
    device = spd.device
    if batch is None:
        sizes = torch.tensor([int(round(spd.numel() ** 0.5))], device=device)
    else:
        sizes = spd_graph_sizes(spd, torch.bincount(batch))
    num_graphs = sizes.numel()
    n_max = int(sizes.max()) if num_graphs else 0
    size = n_max if max_nodes is None else max_nodes
    out = torch.full((num_graphs, size, size), -1, dtype=torch.long, device=device)
    if spd.numel() == 0:
        return out
    graph, i, j = spd_entry_positions(sizes)
    if size < n_max:
        keep = (i < size) & (j < size)
        graph, i, j, spd = graph[keep], i[keep], j[keep], spd[keep]
    out[graph, i, j] = spd.long()
    return out


# --------------------------------------------------------------------------------------------
# Encoders (learnable maps from an encoding to node features)


class LapPEEncoder(nn.Module):
    r"""Linear map of Laplacian eigenvectors to ``dim`` features: :math:`h_i = W\,(s \odot \mathrm{pe}_i) + b`.

    An eigenvector is only defined up to sign, so in training :math:`s \in \{\pm 1\}^k` is drawn
    at random per graph and per eigenvector (Dwivedi et al., 2020); in eval :math:`s = 1`.
    Zero-padded columns (graphs with fewer than ``k + 1`` nodes) stay zero.
    """

    def __init__(self, k: int, dim: int) -> None:
        super().__init__()
        self.k, self.dim = k, dim
        self.lin = nn.Linear(k, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, pe: Tensor, batch: Tensor | None) -> Tensor:
        """``pe`` ``[N, k]``, ``batch`` ``[N]`` (``None``: one graph) -> ``[N, dim]``."""
        if self.training:
            num_graphs = int(batch.max()) + 1 if batch is not None and batch.numel() > 0 else 1
            sign = torch.randint(0, 2, (num_graphs, self.k), device=pe.device).to(pe.dtype) * 2 - 1
            pe = pe * (sign[batch] if batch is not None else sign)
        return self.lin(pe)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k}, dim={self.dim})"


class RWSEEncoder(nn.Module):
    r"""Random-walk structural encoding to ``dim`` features: :math:`h_i = W\,\mathrm{BN}(\mathrm{rwse}_i) + b`
    (BatchNorm first: return probabilities are small and shrink with the step count); ``norm=False``
    drops the BatchNorm."""

    def __init__(self, steps: int, dim: int, norm: bool = True) -> None:
        super().__init__()
        self.steps, self.dim = steps, dim
        self.norm = nn.BatchNorm1d(steps) if norm else nn.Identity()
        self.lin = nn.Linear(steps, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if isinstance(self.norm, nn.BatchNorm1d):
            self.norm.reset_parameters()
        self.lin.reset_parameters()

    def forward(self, se: Tensor) -> Tensor:
        """``se`` ``[N, steps]`` -> ``[N, dim]``."""
        return self.lin(self.norm(se))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(steps={self.steps}, dim={self.dim})"
