"""Batches of graphs gathered from tensors concatenated once.

:meth:`torch_geometric.data.Batch.from_data_list` walks every graph of every batch in Python; a
training epoch repeats that for the whole training split. :class:`GraphStore` concatenates each
attribute of all graphs once (along the attribute's own ``__cat_dim__``), and a batch of graph
ids is then a few index operations per attribute, with the ``__inc__`` offsets (node numbers in
``edge_index``) added as :meth:`Batch.from_data_list` adds them. On NCI1 (batches of 128) that is
about 80 ms of an epoch's 2 s (``bench_graph_epoch``).
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch


class _Stored(NamedTuple):
    values: Tensor  # every graph's values, concatenated along dim
    dim: int
    starts: Tensor  # [graphs]: where each graph's values begin along dim
    lengths: Tensor  # [graphs]: how many it has
    inc: Optional[Tensor]  # [graphs]: the offset the attribute takes per graph before it (None: none)


class GraphStore:
    """All graphs' tensors, concatenated once; :meth:`batch` equals ``Batch.from_data_list`` of
    the chosen graphs (test: ``tests/test_collate.py``).

    Raises ``TypeError`` for graphs it cannot store (an attribute that is not a tensor, or graphs
    with different attributes): callers fall back to ``Batch.from_data_list`` then.
    """

    def __init__(self, graphs: Sequence) -> None:
        if not graphs:
            raise TypeError("no graphs to store")
        keys = sorted(graphs[0].keys())
        self.parts: Dict[str, _Stored] = {}
        for key in keys:
            values = []
            for g in graphs:
                value = g[key] if key in g else None
                if not isinstance(value, Tensor) or value.dim() == 0:
                    raise TypeError(f"attribute {key!r} is not a tensor with a dimension in every graph")
                values.append(value)
            dim = graphs[0].__cat_dim__(key, values[0])
            dim = dim + values[0].dim() if dim < 0 else dim
            incs = [g.__inc__(key, v) for g, v in zip(graphs, values)]
            if not all(isinstance(i, int) for i in incs):
                raise TypeError(f"attribute {key!r} has a tensor increment")
            lengths = torch.tensor([v.size(dim) for v in values], dtype=torch.long)
            self.parts[key] = _Stored(torch.cat(values, dim), dim, torch.cumsum(lengths, 0) - lengths, lengths,
                                      torch.tensor(incs, dtype=torch.long) if any(incs) else None)
        if any(len(g.keys()) != len(keys) for g in graphs):
            raise TypeError("the graphs do not all have the same attributes")
        self.num_nodes = torch.tensor([int(g.num_nodes) for g in graphs], dtype=torch.long)

    def __len__(self) -> int:
        return self.num_nodes.numel()

    def batch(self, ids: Tensor) -> Batch:
        """The graphs ``ids`` (long ``[B]``, in that order) as one :class:`Batch`."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        fields = {}
        for key, part in self.parts.items():
            lengths = part.lengths[ids]
            total = int(lengths.sum())
            first = torch.cumsum(lengths, 0) - lengths  # where each graph's values go in the batch
            index = torch.repeat_interleave(part.starts[ids] - first, lengths, output_size=total)
            value = part.values.index_select(part.dim, index + torch.arange(total))
            if part.inc is not None:
                inc = part.inc[ids]
                offset = torch.repeat_interleave(torch.cumsum(inc, 0) - inc, lengths, output_size=total)
                shape = [1] * value.dim()
                shape[part.dim] = total
                value = value + offset.view(shape).to(value.dtype)
            fields[key] = value
        nodes = self.num_nodes[ids]
        out = Batch(batch=torch.repeat_interleave(torch.arange(ids.numel()), nodes),
                    ptr=torch.cat([nodes.new_zeros(1), torch.cumsum(nodes, 0)]), **fields)
        out._num_graphs = ids.numel()
        return out
