r"""The GIN layer for molecules of Hu et al., "Strategies for Pre-training Graph Neural Networks"
(ICLR 2020): bond type and bond direction embeddings added to every message, a self-loop with a
bond type of its own, sum aggregation and a two-layer MLP.

PyG's :class:`~torch_geometric.nn.conv.GINEConv` is close but not this layer: it passes
:math:`\mathrm{ReLU}(x_j + e_{ji})` and adds the atom's own state as :math:`(1 + \epsilon) x_i`,
where Hu et al. pass :math:`x_j + e_{ji}` unchanged and let the atom's state enter through its
self-loop message, which carries the self-loop bond embedding.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing


def glorot_embedding(num: int, dim: int) -> nn.Embedding:
    """An ``nn.Embedding`` whose table is Glorot-uniform initialised (as Hu et al. initialise theirs)."""
    emb = nn.Embedding(num, dim)
    nn.init.xavier_uniform_(emb.weight)
    return emb


class MolGINConv(MessagePassing):
    r"""GIN convolution with bond embeddings (Hu et al., 2020).

    For an atom :math:`i` with in-neighbours :math:`\mathcal{N}(i)` (messages flow
    ``edge_index[0] -> edge_index[1]``), each edge :math:`j \to i` labelled with bond type
    :math:`b_{ji}` and direction :math:`d_{ji}`:

    .. math::
        \mathbf{x}'_i = \mathrm{MLP}\Big(\sum_{j \in \mathcal{N}(i) \cup \{i\}}
            \mathbf{x}_j + \mathbf{B}[b_{ji}] + \mathbf{D}[d_{ji}]\Big),
        \qquad \mathrm{MLP} = \mathrm{Linear}(C, 2C) \to \mathrm{ReLU} \to \mathrm{Linear}(2C, C)

    where the self-loop :math:`i \to i`, added by the layer, has bond type ``self_loop_type`` and
    direction 0, and :math:`\mathbf{B}`, :math:`\mathbf{D}` are learnt embedding tables
    (``bond``, ``direction``; Glorot-initialised as in the reference implementation).

    Args:
        channels: Atom feature size :math:`C` (input and output).
        num_bond_types: Rows of the bond type table, the self-loop type included.
        num_directions: Rows of the bond direction table.
        self_loop_type: Bond type index of the self-loops.

    Shapes:
        ``x`` ``[N, C]``, ``edge_index`` long ``[2, E]``, ``edge_attr`` long ``[E, 2]`` (bond type,
        direction) -> ``[N, C]``.
    """

    def __init__(self, channels: int, num_bond_types: int, num_directions: int, self_loop_type: int) -> None:
        super().__init__(aggr="add")
        if not 0 <= self_loop_type < num_bond_types:
            raise ValueError(f"self_loop_type {self_loop_type} is not a row of the {num_bond_types}-row bond table")
        self.channels, self.self_loop_type = channels, self_loop_type
        # Built initialised (in this order), so that a seed gives the same weights as before the
        # layer became a MessagePassing module; reset_parameters() draws new ones the same way.
        self.mlp = nn.Sequential(nn.Linear(channels, 2 * channels), nn.ReLU(), nn.Linear(2 * channels, channels))
        self.bond = glorot_embedding(num_bond_types, channels)
        self.direction = glorot_embedding(num_directions, channels)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.mlp[0].reset_parameters()
        self.mlp[2].reset_parameters()
        nn.init.xavier_uniform_(self.bond.weight)
        nn.init.xavier_uniform_(self.direction.weight)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        n = x.size(0)
        loops = torch.arange(n, device=x.device)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        loop_attr = torch.zeros(n, 2, dtype=edge_attr.dtype, device=edge_attr.device)
        loop_attr[:, 0] = self.self_loop_type
        edge_attr = torch.cat([edge_attr, loop_attr])
        return self.mlp(self.propagate(edge_index, x=x, edge_attr=edge_attr))

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return x_j + self.bond(edge_attr[:, 0]) + self.direction(edge_attr[:, 1])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, self_loop_type={self.self_loop_type})"
