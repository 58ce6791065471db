r"""Exponential decay of attention with shortest-path distance (the Gradformer mask).

Liu et al., "Gradformer: Graph Transformer with Exponential Decay", IJCAI 2024.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError


class ShortestPathDecay(nn.Module):
    r"""Per-head multiplicative attention mask that decays exponentially with hop distance.

    For head :math:`h` with learnable hop threshold :math:`h_k` (initialised to ``n_hop``),

    .. math::
        M^h_{ij} = \gamma^{\,\mathrm{LeakyReLU}_{s}(\mathrm{spd}(i, j) - h_k)},

    so pairs within :math:`h_k` hops keep (about) their full score -- exactly 1 with ``slope``
    :math:`s = 0`, slightly more than 1 with :math:`s > 0` -- and farther pairs decay by
    :math:`\gamma` per extra hop. Gradformer multiplies the *pre-softmax* scores by it:
    :math:`\alpha^h_{ij} = \operatorname{softmax}_j\big((q_i^\top k_j / \sqrt{d})\, M^h_{ij}\big)`
    (pass it as ``attn_scale`` to :class:`~gnnformer.nn.GraphMultiheadAttention`).

    Special entries of the dense SPD (``-1``, see :func:`~gnnformer.nn.spd_to_dense`):

    * **Unreachable pairs** (both nodes real, different connected components) are infinitely far:
      :math:`M = \lim_{d \to \infty} \gamma^{\mathrm{LeakyReLU}(d - h_k)}`, i.e. ``0`` for
      :math:`\gamma < 1` and ``1`` for :math:`\gamma = 1` (no decay at all). Their score becomes the
      logit 0: the pair still takes part in the softmax -- as the farthest reachable pairs do in
      the limit -- rather than being cut off. This is the continuous extension of the decay and
      matches the authors' code, whose Floyd-Warshall marks unreachable pairs with a huge distance
      (510), giving :math:`\gamma^{510 - h_k} \approx 0`. No gradient reaches :math:`h_k` there.
    * **Padding** (either node is padding, ``node_mask`` False) gets ``0``. The value is
      irrelevant: attention blocks padded keys with :math:`-\infty` and discards padded queries.

    Args:
        heads: Number of attention heads :math:`H` (one :math:`h_k` each).
        gamma: Decay base :math:`\gamma \in (0, 1]`; ``1`` disables the decay.
        n_hop: Initial value of every :math:`h_k` (the authors use 5).
        slope: Negative slope :math:`s \ge 0` of the LeakyReLU (the authors use 0 or 0.1).
    """

    def __init__(self, heads: int, gamma: float = 0.6, n_hop: float = 5.0, slope: float = 0.0) -> None:
        super().__init__()
        if int(heads) < 1:
            raise ConfigError(f"ShortestPathDecay needs heads >= 1, got {heads!r}.")
        gamma, n_hop, slope = float(gamma), float(n_hop), float(slope)
        if not 0.0 < gamma <= 1.0:
            raise ConfigError(f"gamma (the decay base) must be in (0, 1], got {gamma!r}; 1 means no decay.")
        if not math.isfinite(n_hop) or n_hop < 0:
            raise ConfigError(f"n_hop (the initial hop threshold) must be a finite number >= 0, got {n_hop!r}.")
        if not 0.0 <= slope <= 1.0:
            raise ConfigError(f"slope (the LeakyReLU negative slope) must be in [0, 1], got {slope!r}.")
        self.heads, self.gamma, self.n_hop, self.slope = int(heads), gamma, n_hop, slope
        self.hop = nn.Parameter(torch.empty(self.heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.hop, self.n_hop)

    def forward(self, spd_dense: Tensor, node_mask: Tensor) -> Tensor:
        """``spd_dense`` long ``[B, N, N]`` (``-1``: unreachable or padding), ``node_mask`` bool
        ``[B, N]`` (``True`` = real node, the mask of :func:`to_dense_batch`) -> ``[B, H, N, N]``."""
        if spd_dense.dim() != 3 or node_mask.shape != spd_dense.shape[:2] or spd_dense.size(1) != spd_dense.size(2):
            raise ValueError(
                f"spd_dense must be [B, N, N] and node_mask [B, N]; got {list(spd_dense.shape)} and "
                f"{list(node_mask.shape)}"
            )
        real = node_mask[:, :, None] & node_mask[:, None, :]  # [B, N, N]
        dist = spd_dense.to(self.hop.dtype).masked_fill(spd_dense < 0, float("inf"))  # unreachable, or padding
        return self.from_distances(dist).masked_fill(~real[:, None], 0.0)

    def from_distances(self, dist: Tensor) -> Tensor:
        r"""The mask ``[B, H, N, N]`` from float hop distances ``[B, N, N]``, ``inf`` for pairs that
        are unreachable (what padding becomes is left to the caller: the limit, 0 for
        :math:`\gamma < 1`)."""
        exponent = F.leaky_relu(dist[:, None] - self.hop.view(1, -1, 1, 1), negative_slope=self.slope)
        if self.gamma == 1.0:
            return torch.pow(self.gamma, exponent)  # all ones, the hop thresholds kept in the graph
        # gamma^e as exp(e ln gamma): 2.5x faster than pow with a scalar base on CPU; e = inf gives
        # exp(-inf) = 0, the limit, with a zero gradient.
        return torch.exp(exponent * math.log(self.gamma))

    def extra_repr(self) -> str:
        return f"heads={self.heads}, gamma={self.gamma}, n_hop={self.n_hop}, slope={self.slope}"
