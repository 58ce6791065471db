"""FS-GNNCvTR and its GIN ablation: a GIN graph encoder read by a convolutional Transformer.

- ``MolEncoder``: the GIN of Hu et al. (2020) over the index features of ``featurize`` (atom type
  + chirality embeddings; per layer a ``gnnformer.nn.MolGINConv``: bond type + direction
  embeddings added to each message, a self-loop of its own bond type, sum aggregation, a 2-layer
  MLP), ``layers`` = 5 and ``hidden`` = 300 as in the pre-training literature; ``conv: gcn`` or
  ``graphsage`` swaps in that work's other layers (``MolGCNConv``, ``MolSAGEConv``), so that its
  pre-trained encoders load (``hu_weights.py``). The graph embedding is the mean of the last
  layer's atom embeddings (PyG's ``global_mean_pool`` over a ``Batch``). Normalisation is
  BatchNorm, as in the original encoder and its pre-trained weights; in evaluation it uses its
  running statistics, so a molecule's score does not depend on the rest of its batch. ``norm:
  layer`` is offered but not the default: under meta-learning (Tox21 10-shot, head adapted in the
  inner loop) it let the graph embeddings collapse to nearly one point (their spread across
  molecules 0.13 -> 0.007; BENCHMARKS.md, "meta-training to convergence").
- ``ConvTransformerHead``: reads the graph embedding (a vector of ``hidden`` numbers) as a
  1-channel sequence. A strided 1-D convolution turns it into overlapping patches (convolutional
  token embedding); Transformer blocks whose queries, keys and values come from depthwise
  convolutions over the tokens (convolutional projection, as in CvT) mix them; the mean token
  gives the logit.
- ``FewShotModel``: encoder + head. ``fs-gnncvtr`` uses the convolutional Transformer head,
  ``fs-gin`` a linear head on the same encoder (the paper's ablation).

Parameters are named ``encoder.*`` and ``head.*``, which is how the meta-learner tells the GNN
from the Transformer (separate outer learning rates, and which part the inner loop adapts).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import global_mean_pool

from ..config import build_config
from ..errors import ConfigError
from ..nn.mol_gcn import MolGCNConv, MolSAGEConv
from ..nn.mol_gin import MolGINConv, glorot_embedding
from ..registry import Registry
from .featurize import ATOM_EMBEDDINGS, BOND_EMBEDDINGS, NUM_BOND_DIRECTIONS, NUM_CHIRALITY, SELF_LOOP

FEWSHOT_MODELS: Registry[Any] = Registry("few-shot model")
CONVS = {"gin": MolGINConv, "gcn": MolGCNConv, "graphsage": MolSAGEConv}
NORMS = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d, "none": lambda hidden: nn.Identity()}


# ----------------------------------------------------------------------------- config


@dataclass
class FewShotModelConfig:
    hidden: int = 300  # GIN width (300 in Hu et al.)
    layers: int = 5  # GIN layers (5 in Hu et al.)
    dropout: float = 0.1  # GIN dropout
    norm: str = "batch"  # batch | layer | none
    conv: str = "gin"  # gin | gcn | graphsage: the layers of Hu et al.'s encoders
    out_channels: int = 1
    # convolutional Transformer head (fs-gnncvtr)
    tr_dim: int = 32  # token width
    tr_depth: int = 2  # Transformer blocks
    tr_heads: int = 4
    tr_mlp_ratio: float = 2.0
    token_kernel: int = 15  # convolutional token embedding: kernel and stride over the embedding
    token_stride: int = 10  # (300 dims -> 30 overlapping patches)
    attn_kernel: int = 3  # depthwise convolution of the q/k/v projections
    tr_dropout: float = 0.0

    def validate(self) -> None:
        for key in ("hidden", "layers", "out_channels", "tr_dim", "tr_depth", "tr_heads", "token_kernel",
                    "token_stride", "attn_kernel"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"model option {key} must be a positive integer, got {getattr(self, key)!r}.")
        if self.norm not in NORMS:
            raise ConfigError(f"model option norm must be one of {', '.join(NORMS)}, got {self.norm!r}.")
        if self.conv not in CONVS:
            raise ConfigError(f"model option conv must be one of {', '.join(CONVS)}, got {self.conv!r}.")
        if self.tr_dim % self.tr_heads:
            raise ConfigError(f"tr_dim ({self.tr_dim}) must be divisible by tr_heads ({self.tr_heads}).")
        if self.attn_kernel % 2 == 0:
            raise ConfigError(f"attn_kernel must be odd (same-length convolution), got {self.attn_kernel}.")
        if self.token_kernel > self.hidden:
            raise ConfigError(f"token_kernel ({self.token_kernel}) cannot exceed hidden ({self.hidden}).")
        for key in ("dropout", "tr_dropout"):
            if not 0.0 <= float(getattr(self, key)) < 1.0:
                raise ConfigError(f"model option {key} must be in [0, 1), got {getattr(self, key)!r}.")
        if float(self.tr_mlp_ratio) <= 0:
            raise ConfigError(f"tr_mlp_ratio must be positive, got {self.tr_mlp_ratio!r}.")

    @property
    def num_tokens(self) -> int:
        pad = self.token_kernel // 2
        return (self.hidden + 2 * pad - self.token_kernel) // self.token_stride + 1

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- GIN


class MolEncoder(nn.Module):
    """Atom type + chirality embeddings, then ``layers`` times: the convolution (``MolGINConv`` by
    default), the norm, a ReLU (not after the last layer) and dropout."""

    def __init__(self, cfg: FewShotModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.atom = glorot_embedding(ATOM_EMBEDDINGS, cfg.hidden)
        self.chirality = glorot_embedding(NUM_CHIRALITY, cfg.hidden)
        conv = CONVS[cfg.conv]
        self.layers = nn.ModuleList(conv(cfg.hidden, BOND_EMBEDDINGS, NUM_BOND_DIRECTIONS, SELF_LOOP)
                                    for _ in range(cfg.layers))
        self.norms = nn.ModuleList(NORMS[cfg.norm](cfg.hidden) for _ in range(cfg.layers))
        self.dropout = cfg.dropout

    def forward(self, data: Data) -> Tensor:
        """Atom embeddings ``[atoms, hidden]`` of the last layer."""
        h = self.atom(data.x[:, 0]) + self.chirality(data.x[:, 1])
        last = len(self.layers) - 1
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            h = norm(layer(h, data.edge_index, data.edge_attr))
            if i < last:
                h = F.relu(h)
            h = F.dropout(h, self.dropout, self.training)
        return h


# ----------------------------------------------------------------------------- convolutional Transformer


class ConvAttention(nn.Module):
    """Multi-head self-attention over tokens; q, k and v are each a depthwise convolution over the
    token sequence followed by a linear map (CvT's convolutional projection)."""

    def __init__(self, dim: int, heads: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dw = nn.ModuleList(nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=False)
                                for _ in range(3))
        self.proj = nn.ModuleList(nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:  # [B, T, D]
        b, t, d = x.shape
        xt = x.transpose(1, 2)
        q, k, v = (proj(dw(xt).transpose(1, 2)).view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for dw, proj in zip(self.dw, self.proj))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        att = F.dropout(att, self.dropout, self.training)
        out = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.out(out)


class ConvTransformerBlock(nn.Module):
    def __init__(self, cfg: FewShotModelConfig) -> None:
        super().__init__()
        dim = cfg.tr_dim
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ConvAttention(dim, cfg.tr_heads, cfg.attn_kernel, cfg.tr_dropout)
        self.norm2 = nn.LayerNorm(dim)
        inner = max(1, int(round(dim * cfg.tr_mlp_ratio)))
        self.mlp = nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Dropout(cfg.tr_dropout), nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ConvTransformerHead(nn.Module):
    """Graph embedding ``[B, hidden]`` -> logits ``[B, out]`` through convolutional tokens."""

    def __init__(self, cfg: FewShotModelConfig) -> None:
        super().__init__()
        self.tokens = nn.Conv1d(1, cfg.tr_dim, cfg.token_kernel, stride=cfg.token_stride,
                                padding=cfg.token_kernel // 2)
        self.token_norm = nn.LayerNorm(cfg.tr_dim)
        self.blocks = nn.ModuleList(ConvTransformerBlock(cfg) for _ in range(cfg.tr_depth))
        self.norm = nn.LayerNorm(cfg.tr_dim)
        self.out = nn.Linear(cfg.tr_dim, cfg.out_channels)

    def forward(self, emb: Tensor) -> Tensor:
        x = self.token_norm(self.tokens(emb.unsqueeze(1)).transpose(1, 2))  # [B, T, D]
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x.mean(dim=1)))


# ----------------------------------------------------------------------------- models


class FewShotModel(nn.Module):
    """GIN encoder + head; ``forward(batch)`` -> logits ``[molecules, out_channels]``."""

    kind: str = ""

    def __init__(self, cfg: FewShotModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = MolEncoder(cfg)
        self.head = self.make_head(cfg)

    def make_head(self, cfg: FewShotModelConfig) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed(self, data: Data) -> Tensor:
        """Graph embeddings ``[molecules, hidden]`` of a ``Batch`` (a plain ``Data``: one molecule)."""
        return global_mean_pool(self.encoder(data), data.batch, getattr(data, "num_graphs", None))

    def forward(self, data: Data) -> Tensor:
        return self.head(self.embed(data))


@FEWSHOT_MODELS.register("fs-gnncvtr", "FS-GNNCvTR: GIN graph embedding read by a convolutional Transformer")
class GNNCvTR(FewShotModel):
    kind = "fs-gnncvtr"

    def make_head(self, cfg: FewShotModelConfig) -> nn.Module:
        return ConvTransformerHead(cfg)


@FEWSHOT_MODELS.register("fs-gin", "The same GIN encoder with a linear head (FS-GNNCvTR's ablation)")
class FewShotGIN(FewShotModel):
    kind = "fs-gin"

    def make_head(self, cfg: FewShotModelConfig) -> nn.Module:
        return nn.Linear(cfg.hidden, cfg.out_channels)


def fewshot_model_config(**cfg: Any) -> FewShotModelConfig:
    return build_config(FewShotModelConfig, cfg, "few-shot models", noun="option")


def create_fewshot_model(name: str, **cfg: Any) -> FewShotModel:
    """Build ``fs-gnncvtr`` or ``fs-gin`` from keyword options (see ``FewShotModelConfig``)."""
    return FEWSHOT_MODELS.get(name)(fewshot_model_config(**cfg))


def list_fewshot_models() -> List[tuple]:
    return [(e.name, e.summary) for e in FEWSHOT_MODELS]
