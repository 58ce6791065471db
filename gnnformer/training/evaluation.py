"""Evaluation: a model's outputs and metrics over one split, in the split's own order.

A :class:`Prepared` experiment is the dataset with its encodings computed, its task and the
model config those fix; the evaluator batches its graphs (or runs its one graph, in chunks when
asked), and returns outputs in the order of the indices it was given.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from ..datasets import GraphDataset
from ..tasks import Task
from .collate import GraphStore
from .distributed import SINGLE, Context, gather
from .minibatch import full_graph_outputs
from .sampler import SizeBucketSampler


@dataclass
class Prepared:
    """A dataset with its encodings computed, ready for a given model config."""

    dataset: GraphDataset
    task: Task
    graphs: list
    model_cfg: Dict[str, Any]
    encodings: Dict[str, Any]

    @property
    def single_graph(self) -> bool:
        """Node classification on one graph (Planetoid): splits are node masks, no batching.

        Node tasks over many graphs (e.g. CLUSTER) are split over graphs and batched like graph
        tasks, with one output, loss term and metric entry per node.
        """
        return self.task.level == "node" and len(self.graphs) == 1

    @property
    def dense_attention(self) -> bool:
        """Whether the model pads every batch to its largest graph (complete-graph attention), so
        that batching graphs of similar size saves compute. Message-passing models do not."""
        return self.model_cfg.get("attention_graph") == "complete"

    @cached_property
    def sizes(self) -> torch.Tensor:
        """Number of nodes of every graph (long ``[len(graphs)]``)."""
        return torch.tensor([int(g.num_nodes) for g in self.graphs], dtype=torch.long)


class Evaluator:
    """Runs a model over one split and returns (metrics incl. loss, raw outputs).

    Outputs (and targets) always come back in the order of the given indices -- per graph, or per
    node of those graphs in turn -- whatever order the batches ran in. With ``bucket`` the
    graphs are batched sorted by size (less padding); without, in the given order.
    """

    def __init__(self, prep: Prepared, batch_size: int, device: torch.device, bucket: bool = True,
                 node_chunk: int = 0, ctx: Context = SINGLE) -> None:
        self.prep, self.batch_size, self.device, self.bucket = prep, batch_size, device, bucket
        self.node_chunk = node_chunk  # one graph: full-graph inference in chunks of this many nodes (0: at once)
        self.ctx = ctx  # several processes: each evaluates every world-th batch, the outputs are gathered

    def loader(self, idx: torch.Tensor, shuffle: bool = False, generator=None, positions: bool = False):
        """Batches of the graphs ``idx``: for training (``shuffle``: size-bucketed with ``bucket``,
        else shuffled at random), or in ``batch_order(idx)`` order. ``positions``: batches of
        positions into ``idx`` instead of graphs, drawn with the same random calls."""
        # The sampler draws over positions; a batch of positions becomes the graphs' Batch here.
        collate = torch.tensor if positions else (lambda pos: self.collate(idx[pos]))
        items = range(len(idx))
        if shuffle and self.bucket:
            sampler = SizeBucketSampler(self.prep.sizes[idx], self.batch_size, generator=generator)
            return DataLoader(items, batch_sampler=sampler, collate_fn=collate)
        if shuffle:
            return DataLoader(items, batch_size=self.batch_size, shuffle=True, generator=generator, collate_fn=collate)
        return DataLoader(items, batch_sampler=[b.tolist() for b in self.batch_order(idx)], collate_fn=collate)

    def collate(self, graphs: torch.Tensor) -> Batch:
        """The graphs ``graphs`` (ids into ``prep.graphs``, in that order) as one Batch: gathered
        from the :class:`GraphStore` where it holds them, else by ``Batch.from_data_list``."""
        if self.store is not None:
            return self.store.batch(graphs)
        return Batch.from_data_list([self.prep.graphs[i] for i in graphs.tolist()])

    @cached_property
    def store(self) -> Optional[GraphStore]:
        """The graphs concatenated once, for batches without per-graph Python work (several graphs
        only; ``None`` where :class:`GraphStore` cannot hold them)."""
        if len(self.prep.graphs) < 2:
            return None
        try:
            return GraphStore(self.prep.graphs)
        except TypeError:
            return None

    def train_batches(self, idx: torch.Tensor, generator=None) -> List[List[int]]:
        """One epoch's training batches as positions into ``idx``, drawn exactly as ``loader(idx,
        shuffle=True, generator=generator)`` draws them: the same loader, over positions."""
        return [b.tolist() for b in self.loader(idx, shuffle=True, generator=generator, positions=True)]

    def batch_order(self, idx: torch.Tensor) -> List[torch.Tensor]:
        """Evaluation batches as positions into ``idx``: sorted by size with ``bucket``, else in order."""
        if self.bucket:
            return SizeBucketSampler(self.prep.sizes[idx], self.batch_size, shuffle=False).batches()
        return list(torch.arange(len(idx)).split(self.batch_size))

    @torch.no_grad()
    def outputs(self, model, idx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        model.eval()
        if self.prep.single_graph and self.node_chunk:
            data = self.prep.graphs[0]
            return full_graph_outputs(model, data, self.node_chunk, self.device)[idx], data.y[idx].cpu()
        if self.prep.single_graph:
            data = self.prep.graphs[0].to(self.device)
            return model(data)[idx].cpu(), data.y[idx].cpu()
        idx = torch.as_tensor(idx, dtype=torch.long)
        order = self.batch_order(idx)
        if not order:
            raise ValueError("Cannot evaluate on an empty split.")
        mine = order[self.ctx.rank::self.ctx.world]
        outs, ys = [], []
        for positions in mine:
            batch = self.collate(idx[positions]).to(self.device)
            outs.append(model(batch).cpu())
            ys.append(batch.y.cpu())
        if self.ctx.active:  # batch i ran on rank i % world: put them back in batch order
            shares = gather((outs, ys), self.ctx)
            outs = [shares[i % self.ctx.world][0][i // self.ctx.world] for i in range(len(order))]
            ys = [shares[i % self.ctx.world][1][i // self.ctx.world] for i in range(len(order))]
        out, y = torch.cat(outs), torch.cat(ys)
        ran = torch.cat(order)  # ran[r] = position (in idx) of the r-th graph evaluated
        rows = _restore_order(ran, self.prep.sizes[idx][ran] if self.prep.task.level == "node" else None)
        return (out, y) if rows is None else (out[rows], y[rows])

    def evaluate(self, model, idx: torch.Tensor) -> Dict[str, float]:
        out, y = self.outputs(model, idx)
        res = self.prep.task.metrics(out, y)
        res["loss"] = self.prep.task.loss(out, y).item()
        return res


def _restore_order(ran: torch.Tensor, sizes: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
    """Row permutation putting outputs of graphs evaluated in order ``ran`` back in position order.

    ``sizes`` (nodes of each evaluated graph, in evaluation order): node-level outputs, whose rows
    come in blocks of ``sizes[r]`` per graph. ``None`` when the order is already right.
    """
    if bool((ran == torch.arange(ran.numel())).all()):
        return None
    inv = torch.argsort(ran)  # inv[p] = when position p was evaluated
    if sizes is None:
        return inv
    start = torch.cumsum(sizes, 0) - sizes  # first row of every evaluated graph
    counts = sizes[inv]
    first_out = torch.cumsum(counts, 0) - counts
    within = torch.arange(int(counts.sum())) - torch.repeat_interleave(first_out, counts)
    return torch.repeat_interleave(start[inv], counts) + within


