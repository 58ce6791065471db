"""Mini-batch training of one large graph over random node partitions, and memory-bounded
full-graph inference.

Training (``node_batch_size > 0`` in the experiment config): every epoch the nodes are shuffled
and cut into ``ceil(N / node_batch_size)`` batches of (nearly) equal size; each batch is the
subgraph *induced* by its nodes (the edges with both ends in the batch, renumbered), and the
loss is taken on the batch's training nodes only. All edges are assigned to their batch at
once per epoch: every node gets its position in the shuffled order, an edge is kept when both
positions fall in the same batch, and the kept edges are grouped by batch with one sort. No
Python loop runs over edges or over batches x edges, so an epoch's bookkeeping is a few
vectorised passes over ``edge_index`` (in chunks, so its temporaries stay bounded).

Random partitions keep only about ``1 / num_batches`` of the edges in any epoch (those whose
two ends land in the same batch); the graph term of a model sees a sparser, random graph each
epoch, while global attention sees every node of the batch.

Inference runs over the full graph: a model with an ``inference(data, chunk_size)`` method (the
DIFFormer models) computes it layer by layer, chunking the per-node work so that memory grows
with ``N * hidden`` rather than with the activations of every layer (see
:func:`full_graph_outputs`); any other model runs one full forward pass.
"""
from __future__ import annotations

import itertools
import math
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from .distributed import SINGLE, Context, gather, loss_weight

EDGE_CHUNK = 1 << 24  # edges scanned at a time when assigning edges to batches


def batch_bounds(num_nodes: int, batch_size: int) -> Tensor:
    """Start of every batch in the shuffled order, plus ``num_nodes`` (long ``[B + 1]``).

    ``B = ceil(num_nodes / batch_size)`` batches whose sizes differ by at most one, none larger
    than ``batch_size`` (so no tiny last batch, which batch norm would not survive).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    b = max(1, math.ceil(num_nodes / batch_size))
    return torch.arange(b + 1, dtype=torch.long) * num_nodes // b


def _batch_of(pos: Tensor, num_nodes: int, num_batches: int) -> Tensor:
    """Batch of each shuffled position, for the bounds ``floor(b * N / B)`` of :func:`batch_bounds`:
    the largest b with ``floor(b N / B) <= p``, i.e. ``floor(((p + 1) B - 1) / N)``."""
    return torch.div((pos.long() + 1) * num_batches - 1, num_nodes, rounding_mode="floor")


def partition_edges(edge_index: Tensor, perm: Tensor, batch_size: int,
                    need_ids: bool = False) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """The induced edges of every batch of one random node partition.

    ``perm`` is the shuffled node order: batch ``b`` holds the nodes ``perm[bounds[b]:bounds[b+1]]``
    (``bounds = batch_bounds(N, batch_size)``) and node ``perm[bounds[b] + i]`` is its local node
    ``i``. Returns ``(bounds, local_edge_index [2, K], counts [B], edge_ids [K] or None)``: the
    edges with both ends in one batch, grouped by batch in batch order (``counts[b]`` of them for
    batch ``b``; within a batch sorted by local source), in local numbering; ``edge_ids`` (with
    ``need_ids``) are their columns in ``edge_index``, to carry edge attributes along.
    """
    n = perm.numel()
    bounds = batch_bounds(n, batch_size)
    num_batches = bounds.numel() - 1
    index_dtype = torch.int32 if n < 2**31 else torch.long
    pos = torch.empty(n, dtype=index_dtype)  # position of every node in the shuffled order
    pos[perm] = torch.arange(n, dtype=index_dtype)
    node_batch = _batch_of(pos, n, num_batches).to(index_dtype)
    kept_src, kept_dst, kept_ids = [], [], []
    for s in range(0, edge_index.size(1), EDGE_CHUNK):
        src, dst = edge_index[0, s:s + EDGE_CHUNK], edge_index[1, s:s + EDGE_CHUNK]
        same = node_batch[src] == node_batch[dst]
        kept_src.append(src[same])
        kept_dst.append(dst[same])
        if need_ids:
            kept_ids.append(same.nonzero().view(-1) + s)
        del same
    del node_batch
    ps = pos[torch.cat(kept_src)] if kept_src else torch.zeros(0, dtype=index_dtype)
    pd = pos[torch.cat(kept_dst)] if kept_dst else torch.zeros(0, dtype=index_dtype)
    del kept_src, kept_dst, pos
    ps, order = torch.sort(ps, stable=True)  # the one sort: by batch, then by local source
    pd = pd[order]
    ids = torch.cat(kept_ids)[order] if need_ids and kept_ids else (torch.zeros(0, dtype=torch.long) if need_ids else None)
    batch = _batch_of(ps, n, num_batches)
    counts = torch.bincount(batch, minlength=num_batches)
    start = bounds[batch]
    local = torch.stack([ps.long() - start, pd.long() - start])
    return bounds, local, counts, ids


class NodePartitionLoader:
    """Batches of one graph over a random node partition, re-drawn every epoch (every ``iter``).

    Each batch is a ``Data`` with the node and edge attributes of the induced subgraph (``x``,
    ``y``, ``edge_index`` renumbered, ``edge_attr`` ...), ``n_id`` (its nodes' ids in the full
    graph) and ``target_mask`` (which of its nodes are in ``train_idx``, where the loss is
    taken). Same ``generator`` state, same batches.
    """

    def __init__(self, data: Data, batch_size: int, train_idx: Optional[Tensor] = None,
                 generator: Optional[torch.Generator] = None, shuffle: bool = True) -> None:
        self.data, self.batch_size, self.generator, self.shuffle = data, int(batch_size), generator, shuffle
        self.num_nodes = int(data.num_nodes)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        self.target = torch.ones(self.num_nodes, dtype=torch.bool)
        if train_idx is not None:
            self.target = torch.zeros(self.num_nodes, dtype=torch.bool)
            self.target[torch.as_tensor(train_idx, dtype=torch.long)] = True

    def __len__(self) -> int:
        return max(1, math.ceil(self.num_nodes / self.batch_size))

    def __iter__(self) -> Iterator[Data]:
        data, n = self.data, self.num_nodes
        perm = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        node_keys, edge_keys = [], []
        for key, value in data.items():
            if key in ("edge_index", "num_nodes") or not isinstance(value, Tensor):
                continue
            if data.is_edge_attr(key):
                edge_keys.append(key)
            elif data.is_node_attr(key):
                node_keys.append(key)
        bounds, local, counts, ids = partition_edges(data.edge_index, perm, self.batch_size, need_ids=bool(edge_keys))
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).tolist()
        bounds = bounds.tolist()
        for b in range(len(bounds) - 1):
            nodes = perm[bounds[b]:bounds[b + 1]]
            lo, hi = offsets[b], offsets[b + 1]
            batch = Data(edge_index=local[:, lo:hi].contiguous(), num_nodes=nodes.numel(), n_id=nodes,
                         target_mask=self.target[nodes])
            for key in node_keys:
                batch[key] = data[key][nodes]
            for key in edge_keys:
                batch[key] = data[key][ids[lo:hi]]
            yield batch


def train_partition_epoch(model, opt, task, loader: NodePartitionLoader, device: torch.device,
                          ctx: Context = SINGLE) -> float:
    """One epoch over ``loader``'s batches: forward on each induced subgraph, loss on its training
    nodes, backward, step. Returns the mean training loss over the training nodes seen.

    On several processes (``ctx``) a step takes one partition per process, each loss weighted by
    its share of the step's training nodes (``distributed.loss_weight``); a process left without a
    partition in the last step runs the first one with weight 0, so that every process steps."""
    model.train()
    total, count = 0.0, 0
    batches = (b for b in loader if int(b.target_mask.sum()))  # lazily: one partition in memory at a time
    while step := list(itertools.islice(batches, ctx.world)):
        mine = step[ctx.rank] if ctx.rank < len(step) else step[0]
        k = int(mine.target_mask.sum()) if ctx.rank < len(step) else 0
        batch = mine.to(device)
        opt.zero_grad()
        mask = batch.target_mask
        loss = task.loss(model(batch)[mask], batch.y[mask])
        (loss * loss_weight(k, sum(int(b.target_mask.sum()) for b in step), ctx) if ctx.active else loss).backward()
        opt.step()
        total += loss.item() * k
        count += k
    sums = gather((total, count), ctx)
    return sum(t for t, _ in sums) / max(sum(c for _, c in sums), 1)


@torch.no_grad()
def full_graph_outputs(model, data: Data, chunk_size: int = 0, device: Optional[torch.device] = None) -> Tensor:
    """The model's outputs for every node of one graph (eval mode), on the CPU.

    With ``chunk_size > 0`` and a model that has ``inference(data, chunk_size)``, that method
    runs: it computes the full-graph forward pass layer by layer, ``chunk_size`` nodes at a time
    (the DIFFormer models; equal to ``model(data)`` up to float rounding). Otherwise the whole
    graph goes through ``model(data)`` at once.
    """
    model.eval()
    if chunk_size and hasattr(model, "inference"):
        return model.inference(data, chunk_size=chunk_size).cpu()
    if device is not None:
        data = data.to(device)
    return model(data).cpu()
