r"""The GCN and GraphSAGE layers for molecules of Hu et al., "Strategies for Pre-training Graph
Neural Networks" (ICLR 2020): the atom states are first mapped by a linear layer, then each
message adds the bond type and bond direction embeddings, over the bonds plus a self-loop with a
bond type of its own (as in :class:`~gnnformer.nn.MolGINConv`).

They exist so that the encoders pre-trained in that work (``gnns.{i}.linear``,
``gnns.{i}.edge_embedding1/2``) load into the few-shot models (``fewshot/hu_weights.py``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import scatter

from .mol_gin import glorot_embedding


class _MolLinearConv(MessagePassing):
    """Shared part: the linear map, the bond embeddings and the self-loops."""

    def __init__(self, channels: int, num_bond_types: int, num_directions: int, self_loop_type: int,
                 aggr: str) -> None:
        super().__init__(aggr=aggr)
        if not 0 <= self_loop_type < num_bond_types:
            raise ValueError(f"self_loop_type {self_loop_type} is not a row of the {num_bond_types}-row bond table")
        self.channels, self.self_loop_type = channels, self_loop_type
        self.linear = nn.Linear(channels, channels)
        self.bond = glorot_embedding(num_bond_types, channels)
        self.direction = glorot_embedding(num_directions, channels)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.linear.reset_parameters()
        nn.init.xavier_uniform_(self.bond.weight)
        nn.init.xavier_uniform_(self.direction.weight)

    def _with_loops(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> tuple[Tensor, Tensor]:
        loops = torch.arange(x.size(0), device=x.device)
        loop_attr = torch.zeros(x.size(0), 2, dtype=edge_attr.dtype, device=edge_attr.device)
        loop_attr[:, 0] = self.self_loop_type
        return torch.cat([edge_index, torch.stack([loops, loops])], 1), torch.cat([edge_attr, loop_attr])

    def _edge_embedding(self, edge_attr: Tensor) -> Tensor:
        return self.bond(edge_attr[:, 0]) + self.direction(edge_attr[:, 1])


class MolGCNConv(_MolLinearConv):
    r"""GCN convolution with bond embeddings (Hu et al., 2020).

    .. math::
        \mathbf{x}'_i = \sum_{j \in \mathcal{N}(i) \cup \{i\}} \frac{1}{\sqrt{d_i d_j}}
            \big(\mathbf{W}\mathbf{x}_j + \mathbf{b} + \mathbf{B}[b_{ji}] + \mathbf{D}[d_{ji}]\big)

    with :math:`d_i` the number of bonds of atom :math:`i` plus its self-loop.

    Shapes: ``x`` ``[N, C]``, ``edge_index`` long ``[2, E]`` (both directions of every bond),
    ``edge_attr`` long ``[E, 2]`` (bond type, direction) -> ``[N, C]``.
    """

    def __init__(self, channels: int, num_bond_types: int, num_directions: int, self_loop_type: int) -> None:
        super().__init__(channels, num_bond_types, num_directions, self_loop_type, aggr="add")

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        edge_index, edge_attr = self._with_loops(x, edge_index, edge_attr)
        deg = scatter(torch.ones(edge_index.size(1), dtype=x.dtype, device=x.device), edge_index[0], 0,
                      dim_size=x.size(0), reduce="sum")
        inv = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
        norm = inv[edge_index[0]] * inv[edge_index[1]]
        return self.propagate(edge_index, x=self.linear(x), edge_attr=self._edge_embedding(edge_attr), norm=norm)

    def message(self, x_j: Tensor, edge_attr: Tensor, norm: Tensor) -> Tensor:
        return norm.unsqueeze(-1) * (x_j + edge_attr)


class MolSAGEConv(_MolLinearConv):
    r"""GraphSAGE convolution with bond embeddings (Hu et al., 2020): the mean of the messages,
    scaled to unit length.

    .. math::
        \mathbf{x}'_i = \frac{\mathbf{m}_i}{\lVert \mathbf{m}_i \rVert_2},\qquad
        \mathbf{m}_i = \operatorname{mean}_{j \in \mathcal{N}(i) \cup \{i\}}
            \big(\mathbf{W}\mathbf{x}_j + \mathbf{b} + \mathbf{B}[b_{ji}] + \mathbf{D}[d_{ji}]\big)
    """

    def __init__(self, channels: int, num_bond_types: int, num_directions: int, self_loop_type: int) -> None:
        super().__init__(channels, num_bond_types, num_directions, self_loop_type, aggr="mean")

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        edge_index, edge_attr = self._with_loops(x, edge_index, edge_attr)
        out = self.propagate(edge_index, x=self.linear(x), edge_attr=self._edge_embedding(edge_attr))
        return F.normalize(out, p=2.0, dim=-1)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return x_j + edge_attr
