r"""Gradformer: GPS layers whose global attention decays exponentially with hop distance.

Liu et al., "Gradformer: Graph Transformer with Exponential Decay", IJCAI 2024. Every layer is a
:class:`~gnnformer.nn.GPSLayer` (local MPNN + complete-graph attention + FFN, drop-path on the
attention branch); the attention's pre-softmax scores are multiplied, per head :math:`h`, by

.. math::
    M^h_{ij} = \gamma^{\,\mathrm{LeakyReLU}_s(\mathrm{spd}(i, j) - h_k)}, \qquad
    \alpha^h_{ij} = \operatorname{softmax}_j\big((q_i^\top k_j / \sqrt{d})\, M^h_{ij}\big),

with :math:`h_k` a learnable per-head hop threshold (:class:`~gnnformer.nn.ShortestPathDecay`;
unreachable pairs are infinitely far, so :math:`M = 0` there for :math:`\gamma < 1`). As in the
authors' model, **one** set of :math:`h_k` serves all layers: the mask is computed once per forward
from the batch's shortest-path distances and handed to every layer.

x^0 = [Linear(x) || LapPE || RWSE];  M = Decay(SPD);  x^{l+1} = GPSLayer(x^l, E, attn_scale=M).
Defaults follow the authors' TU set-up (NCI1: gamma 0.6/0.7, n_hop 5, slope 0, 4 layers, sum
pooling, a GIN local branch, attention dropout 0.5) with RWSE as the structural encoding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError
from ..nn import ShortestPathDecay
from ..nn.encodings import spd_entry_positions, spd_graph_sizes
from ..registry import MODELS
from .gps import GPS, GPSConfig

GRADFORMER_LOCALS = ("gin", "gine", "gatedgcn", "gcn", "gat")


@dataclass
class GradformerConfig(GPSConfig):
    layers: int = 4
    pool: str = "sum"  # mean | sum (alias: add) | max; the authors sum on TU datasets and ZINC
    lap_pe: int = 0  # Laplacian eigenvectors (0 = none)
    rwse: int = 16  # random-walk steps of the structural encoding, the usual choice for molecules
    gamma: float = 0.6  # decay base in (0, 1]; 1 = plain GPS attention
    n_hop: float = 5.0  # initial per-head hop threshold h_k (learnable)
    slope: float = 0.0  # LeakyReLU negative slope: how much pairs within h_k hops are boosted

    def validate(self) -> None:
        if self.local not in GRADFORMER_LOCALS:
            raise ConfigError(
                f"Gradformer's local branch must be one of {', '.join(GRADFORMER_LOCALS)}, got {self.local!r}."
            )
        if self.attention_graph != "complete":
            raise ConfigError(
                "Gradformer's decay mask is over all pairs of a graph: attention_graph must be 'complete', "
                f"got {self.attention_graph!r}."
            )
        super().validate()
        # The decay validates gamma, n_hop and slope with the messages users should see.
        ShortestPathDecay(self.heads, self.gamma, self.n_hop, self.slope)


@MODELS.register("gradformer", "Gradformer: GPS with attention decaying by hop distance (Liu et al. 2024)")
class Gradformer(GPS):
    """GPS layers sharing one learnable per-head shortest-path decay (see the module docstring)."""

    Config = GradformerConfig

    def __init__(self, cfg: GradformerConfig) -> None:
        super().__init__(cfg)
        # Model-level, not per layer: the authors share one set of hop thresholds across layers.
        self.decay = ShortestPathDecay(cfg.heads, gamma=cfg.gamma, n_hop=cfg.n_hop, slope=cfg.slope)

    @classmethod
    def encodings(cls, cfg: GradformerConfig):
        return {**super().encodings(cfg), "spd": True}

    def decay_mask(self, data) -> Tensor:
        """``[B, H, Nmax, Nmax]`` multiplicative mask in :func:`to_dense_batch` layout (0 on padding)."""
        scale = self.decay_scale(data)
        graphs = torch.arange(scale.sizes.numel(), device=scale.sizes.device)
        mask = scale(graphs, scale.n_max)
        real = torch.arange(scale.n_max, device=mask.device)[None, :] < scale.sizes[:, None]
        return mask.masked_fill(~(real[:, :, None] & real[:, None, :])[:, None], 0.0)

    def decay_scale(self, data) -> "SubsetDecay":
        """The decay mask as a function of (graph ids, n): what the attention asks for per size group."""
        spd = getattr(data, "spd", None)
        if spd is None:
            raise ValueError(
                "Gradformer needs shortest-path distances in data.spd: "
                "precompute_encodings(graphs, spd=True) (the trainer does this)"
            )
        batch = getattr(data, "batch", None)
        if batch is None:
            sizes = torch.tensor([int(data.num_nodes)], device=spd.device)
        else:
            sizes = torch.bincount(batch, minlength=int(getattr(data, "num_graphs", 0) or 0))
        return SubsetDecay(self.decay, spd, spd_graph_sizes(spd, sizes))

    def embed(self, data) -> Tensor:
        h = self.encoder(data)
        edge_attr = self.edge_encoder(data.edge_attr) if self.edge_encoder is not None else None
        batch = getattr(data, "batch", None)
        scale = self.decay_scale(data)  # built once per forward and size group, shared by every layer
        for layer in self.layers:
            h, edge_attr = layer(
                h, data.edge_index, batch, edge_attr=edge_attr, attn_scale=scale, return_edge_attr=True
            )
        return h


class SubsetDecay:
    """Gradformer's decay mask for any subset of a batch's graphs, padded to ``n`` nodes.

    The attention pads each size group of a batch on its own; building the mask for the whole
    batch padded to its largest graph (7x the cells on NCI1) and slicing it per group would cost
    more than the attention itself, forward and backward. So each group's distances are scattered
    straight from the batch's flat ``spd`` (graph by graph, ``n_i^2`` entries each) into a
    ``[b, n, n]`` block, ``inf`` for unreachable pairs and for padding (where the mask is then 0
    for ``gamma < 1``; the attention never reads it). Each (graphs, n) is built once per forward
    and reused by every layer, so gradients of the shared hop thresholds add up.
    """

    def __init__(self, decay: ShortestPathDecay, spd: Tensor, sizes: Tensor) -> None:
        self.decay, self.sizes = decay, sizes
        self.dist = spd.to(decay.hop.dtype).masked_fill(spd < 0, float("inf"))
        squares = sizes * sizes
        self.starts = torch.cumsum(squares, 0) - squares  # first entry of every graph in spd
        self.n_max = int(sizes.max()) if sizes.numel() else 0
        self._built: dict = {}

    def __call__(self, graphs: Tensor, n: int) -> Tensor:
        key = (n, tuple(graphs.tolist()))
        if key not in self._built:
            self._built[key] = self.decay.from_distances(self._distances(graphs, n))
        return self._built[key]

    def _distances(self, graphs: Tensor, n: int) -> Tensor:
        sizes = self.sizes[graphs]
        owner, i, j = spd_entry_positions(sizes)
        out = torch.full((graphs.numel(), n, n), float("inf"), dtype=self.dist.dtype, device=self.dist.device)
        out.view(-1)[owner * (n * n) + i * n + j] = self.dist[self.starts[graphs][owner] + i * sizes[owner] + j]
        return out
