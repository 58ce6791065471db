r"""DIFFormer (Wu et al., ICLR 2023): a Transformer derived as an energy-constrained diffusion.

Wu et al., "DIFFormer: Scalable (Graph) Transformers Induced by Energy Constrained Diffusion",
ICLR 2023. Node states evolve by explicit diffusion steps over all pairs of nodes of a graph,
whose pairwise diffusivity is the closed-form minimiser of a regularised energy; the input graph,
when there is one, adds a GCN propagation term to each step. With step size :math:`\alpha` (the
paper's :math:`\tau`), per layer :math:`k = 0 .. L-1`:

.. math::
    z^{(0)} &= \mathrm{Dropout}(\mathrm{ReLU}(\mathrm{Norm}(W_{in} x))) \\
    P^{(k)} &= \mathrm{Attn}(z^{(k)}) + w\, \hat A\, \bar V^{(k)} \qquad
        \text{or, with graph\_weight } w \text{ set, } (1 - w)\,\mathrm{Attn} + w\, \hat A \bar V \\
    z^{(k+1)} &= \mathrm{Dropout}\big(\mathrm{Norm}\big((1 - \alpha)\, z^{(k)} + \alpha\, P^{(k)}\big)\big)

* :math:`\mathrm{Attn}` is :class:`~gnnformer.nn.DIFFormerConv`:
  :math:`\frac1H \sum_h \sum_{j} S^h_{ij} v^h_j` with
  :math:`S_{ij} = f(\tilde q_i, \tilde k_j) / \sum_l f(\tilde q_i, \tilde k_l)` over the nodes of
  :math:`i`'s graph; ``difformer-s``: :math:`f = 1 + \tilde q_i^\top \tilde k_j` (linear in
  :math:`N`), ``difformer-a``: :math:`f = \sigma(q_i^\top k_j)` (quadratic). Rows of :math:`S`
  sum to 1, so :math:`(1-\alpha) z_i + \alpha \sum_j S_{ij} v_j` is the paper's explicit step
  :math:`z_i + \tau \sum_j S_{ij}(v_j - z_i)`, read with values :math:`v = W_V z`.
* :math:`\hat A = \hat D^{-1/2}(A + I)\hat D^{-1/2}` acts on the head-averaged values
  :math:`\bar V` (:func:`~gnnformer.nn.difformer.gcn_propagate`, sparse CSR); with ``graph_weight``
  unset the two terms are added (:math:`w = 1`), as in the authors' node-classification code;
  a number :math:`w \in [0, 1]` mixes them convexly, as their later batched code does.
* Without ``use_residual`` the step is :math:`z^{(k+1)} = \mathrm{Dropout}(\mathrm{Norm}(P^{(k)}))`.
  Norm is LayerNorm by default (the authors' ``use_bn`` is a LayerNorm too).
* Node-level outputs come from one ``Linear`` on :math:`z^{(L)}`, as in the paper; graph-level
  outputs pool :math:`z^{(L)}` and use the shared MLP head.

Defaults are the authors' Cora configuration (8 layers, 64 channels, 1 head, alpha 0.5, input
graph on, LayerNorm, **no value projection** -- ``use_weight`` is off, so a layer's only weights
are :math:`W_Q, W_K` and it diffuses the states themselves; dropout 0.2 for -s and 0 for -a; lr
1e-3 with weight decay 0.01 / 0.1 in the trainer). Without an input graph (``use_graph: false``)
the model needs no ``edge_index`` at all. Two switches give the authors' exact computation on
citation graphs, used by ``configs/difformer/{cora,citeseer}_*``: ``feature_norm='row'`` divides
each node's (non-negative, bag-of-words) features by their sum, as their data loading does, and
``qk_norm='graph'`` scales queries and keys by their Frobenius norm (see
:class:`~gnnformer.nn.DIFFormerConv`; the default, per-node L2, is the paper's formula). On
Cora's random splits the two together score about 3 points higher than the defaults.

``sgformer`` wraps PyG's :class:`torch_geometric.nn.models.SGFormer` (Wu et al., "SGFormer:
Simplifying and Empowering Transformers for Large-Graph Representations", NeurIPS 2023), the
authors' follow-up, as the peer to compare with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn.difformer import QK_NORMS, DIFFormerConv, cached_adjacency, gcn_propagate
from ..nn.difformer_kernels import blocked_simple_step, chunked_attention, linear_layer_norm
from ..nn.dropout import fast_dropout
from ..nn.transformer_layer import NORMS, make_norm
from ..registry import MODELS
from .base import GraphModel, ModelConfig, check_feature_norm, check_fixed_head, make_head, normalise_features


@dataclass
class DIFFormerConfig(ModelConfig):
    level: str = "node"  # DIFFormer is mostly used for node classification
    hidden: int = 64
    layers: int = 8  # diffusion steps
    dropout: float = 0.2
    heads: int = 1
    alpha: float = 0.5  # step size tau: weight of the diffusion term against the current state
    use_graph: bool = True  # add GCN propagation over the input edges to every step
    graph_weight: Optional[float] = None  # None: attention + propagation; w: (1 - w) attention + w propagation
    norm: str = "layer"  # layer | batch | none, after every step (and on the input encoding)
    use_residual: bool = True  # False: z <- Norm(P), no (1 - alpha) z term
    use_weight: bool = False  # project the values (W_V); False (authors' Cora/CiteSeer setting): diffuse the states
    qk_norm: Optional[str] = None  # None = the kernel's default ('node' for -s, 'none' for -a); see DIFFormerConv
    feature_norm: str = "none"  # 'row': divide each node's input features by their sum first (PyG's NormalizeFeatures)
    # DIFFormer-s on one graph: recompute each LayerNorm's input in the backward instead of keeping
    # it, and keep dropout masks as bits: at 10^6 nodes 1.49x less memory over the graph for 0.90x the
    # speed (the bench_difformer_ablation section of BENCHMARKS.md).
    low_memory: bool = False

    kernel = "simple"  # set per registered model, not an option

    def validate(self) -> None:
        super().validate()
        if int(self.heads) < 1:
            raise ConfigError(f"heads must be a positive integer, got {self.heads!r}.")
        check_feature_norm(self.feature_norm)
        if not 0.0 < float(self.alpha) <= 1.0:
            raise ConfigError(f"alpha (the diffusion step size) must be in (0, 1], got {self.alpha!r}.")
        if self.graph_weight is not None and not 0.0 <= float(self.graph_weight) <= 1.0:
            raise ConfigError(f"graph_weight must be in [0, 1] or null (attention + propagation), got {self.graph_weight!r}.")
        if self.norm not in NORMS:
            raise ConfigError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}.")
        if self.qk_norm is not None and self.qk_norm not in QK_NORMS[self.kernel]:
            raise ConfigError(f"qk_norm for this model must be one of {', '.join(QK_NORMS[self.kernel])} "
                              f"(or null for the default), got {self.qk_norm!r}.")
        if self.low_memory and (self.kernel != "simple" or self.qk_norm not in (None, "node")):
            raise ConfigError("low_memory applies to difformer-s with node-normalised queries and keys (qk_norm: "
                              f"node), whose steps run block by block; this model has kernel {self.kernel!r} and "
                              f"qk_norm {self.qk_norm!r}.")
        if self.level == "node":
            check_fixed_head(self, ("linear",), "DIFFormer reads nodes out with one Linear layer (the paper's)")


@dataclass
class DIFFormerSConfig(DIFFormerConfig):
    kernel = "simple"


@dataclass
class DIFFormerAConfig(DIFFormerConfig):
    dropout: float = 0.0  # the authors' Cora setting for DIFFormer-a
    kernel = "sigmoid"


class DIFFormer(GraphModel):
    Config = DIFFormerConfig

    #: Whether DIFFormer-s steps on one graph (node-normalised q/k) run as
    #: :func:`~gnnformer.nn.difformer_kernels.blocked_simple_step`; ``False`` forces attention +
    #: :func:`~gnnformer.nn.difformer.gcn_propagate` + residual through autograd (same values).
    blocked: bool = True

    def __init__(self, cfg: DIFFormerConfig) -> None:
        super().__init__(cfg)
        self.encoder = nn.Linear(cfg.in_channels, cfg.hidden)
        self.in_norm = make_norm(cfg.norm, cfg.hidden)
        self.convs = nn.ModuleList(
            DIFFormerConv(cfg.hidden, cfg.heads, kernel=cfg.kernel, use_weight=cfg.use_weight, qk_norm=cfg.qk_norm)
            for _ in range(cfg.layers)
        )
        self.norms = nn.ModuleList(make_norm(cfg.norm, cfg.hidden) for _ in range(cfg.layers))
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.level == "node":
            self.head = nn.Linear(cfg.hidden, cfg.out_channels)  # the paper's output layer
        self._adjacency: Dict[str, Any] = {}  # gcn_propagate's cache (not state: rebuilt on demand)
        self._full_adjacency: Dict[str, Any] = {}  # inference()'s, kept apart from mini-batch training's

    def embed(self, data) -> Tensor:
        return self._embed(data.x, getattr(data, "edge_index", None), getattr(data, "batch", None), self._adjacency)

    def _embed(self, x: Tensor, edge_index: Optional[Tensor], batch: Optional[Tensor], cache: Dict[str, Any],
               rows: int = 0) -> Tensor:
        """The node states after the last step; ``cache`` keeps the normalised adjacency, ``rows``
        (inference, one graph) makes DIFFormer-a attend that many query nodes at a time."""
        cfg = self.cfg
        if cfg.use_graph and edge_index is None:
            raise ConfigError("DIFFormer with use_graph=true propagates over the input edges, but the data has "
                              "no edge_index; set model.use_graph=false for data without a graph.")
        x = normalise_features(x, cfg.feature_norm)  # the authors' preprocessing of bag-of-words features
        p_drop, training = self.dropout.p, self.training
        # In-place steps write only into tensors no backward needs (the output of the encoder's
        # norm or linear layer, of a propagation, of a fresh sum): one [N, C] pass and buffer less each.
        blocked = self._blocked(x, batch)
        # low_memory: each LayerNorm runs inside the op before it, whose backward recomputes the
        # norm's input rather than keeping it (one [N, C] tensor less per layer), and masks are bits.
        pack = blocked and cfg.low_memory
        fused = pack and isinstance(self.in_norm, nn.LayerNorm)
        z = linear_layer_norm(x, self.encoder, self.in_norm) if fused else self.in_norm(self.encoder(x))
        z = fast_dropout(z, p_drop, training, relu=True, inplace=True, pack=pack)
        adjacency = None
        if blocked and cfg.use_graph:  # A_hat^T only when a backward may need it
            adjacency = cached_adjacency(edge_index, z.size(0), z.dtype, z.device, cache,
                                         transpose=torch.is_grad_enabled())
        for conv, norm in zip(self.convs, self.norms):
            if blocked:
                p = blocked_simple_step(z, conv, adjacency, *self._step_weights(), norm=norm if fused else None)
            elif cfg.use_graph:
                attn, values = self._attention(conv, z, batch, rows)
                p = gcn_propagate(values, edge_index, z.size(0), cache=cache)
                w = cfg.graph_weight
                p = p.add_(attn) if w is None else p.mul_(w).add_(attn, alpha=1.0 - w)
            else:
                p = self._attention(conv, z, batch, rows)[0]  # may be kept by its backward: not written to
            if cfg.use_residual and not blocked:
                p = (p.mul_(cfg.alpha) if cfg.use_graph else p * cfg.alpha).add_(z, alpha=1.0 - cfg.alpha)
            z = fast_dropout(p if fused else norm(p), p_drop, training, inplace=blocked or cfg.norm != "none",
                             pack=pack)
        return z

    @staticmethod
    def _attention(conv: DIFFormerConv, z: Tensor, batch: Optional[Tensor], rows: int) -> tuple[Tensor, Tensor]:
        """``conv(z, batch, return_values=True)``; DIFFormer-a ``rows`` queries at a time when ``rows > 0``."""
        if rows and conv.kernel == "sigmoid":
            return chunked_attention(conv, z, rows), conv.mean_values(z)
        return conv(z, batch, return_values=True)

    def _blocked(self, x: Tensor, batch: Optional[Tensor]) -> bool:
        """Whether every step runs as :func:`~gnnformer.nn.difformer_kernels.blocked_simple_step`: one
        graph, DIFFormer-s with node-normalised queries and keys (the large-graph path)."""
        if not self.blocked or x.size(0) == 0 or self.cfg.kernel != "simple":
            return False
        if batch is not None and batch.numel() and not bool((batch == batch[0]).all()):
            return False
        return all(conv.qk_norm == "node" for conv in self.convs)

    def _step_weights(self) -> tuple:
        """``(r_a, r_p, r_z)``: a step is ``r_a Attn(z) + r_p A_hat V + r_z z``."""
        cfg = self.cfg
        w = cfg.graph_weight
        r_a, r_p = (1.0, 1.0) if w is None else (1.0 - w, w)
        if not cfg.use_graph:
            r_a, r_p = 1.0, 0.0
        if cfg.use_residual:
            return cfg.alpha * r_a, cfg.alpha * r_p, 1.0 - cfg.alpha
        return r_a, r_p, 0.0

    @torch.no_grad()
    def inference(self, data, chunk_size: int = 65536) -> Tensor:
        r"""Node outputs of one whole graph in eval mode, equal to ``self.eval()(data)`` up to float rounding.

        DIFFormer-a attends ``chunk_size`` query nodes at a time (``chunk_size x N`` scores, never
        the ``N x N`` matrix: 5.4x less memory at :math:`10^4` nodes, BENCHMARKS.md). DIFFormer-s
        runs its usual forward pass: without autograd it holds a few ``[N, hidden]`` tensors, and
        chunking it measured no gain. The full graph's normalised adjacency is cached apart from
        the one mini-batch training builds; ``data`` may stay on the CPU while the model is on a
        GPU. Graph-level models, or batches of several graphs, run ``self(data)``.
        """
        was_training = self.training
        self.eval()
        try:
            batch = getattr(data, "batch", None)
            if self.cfg.level != "node" or (batch is not None and batch.numel() and not bool((batch == batch[0]).all())):
                return self(data)
            x = data.x.to(next(self.parameters()).device)
            return self.head(self._embed(x, getattr(data, "edge_index", None), None, self._full_adjacency,
                                         rows=max(1, int(chunk_size))))
        finally:
            self.train(was_training)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self._adjacency.clear()
        self._full_adjacency.clear()


@MODELS.register("difformer-s", "DIFFormer-s (Wu et al. 2023): linear all-pair diffusion attention + GCN propagation")
class DIFFormerS(DIFFormer):
    Config = DIFFormerSConfig


@MODELS.register("difformer-a", "DIFFormer-a (Wu et al. 2023): sigmoid all-pair diffusion attention (quadratic) + GCN propagation")
class DIFFormerA(DIFFormer):
    Config = DIFFormerAConfig


# --- SGFormer, PyG's implementation, as the peer --------------------------------------------

@dataclass
class SGFormerConfig(ModelConfig):
    level: str = "node"
    hidden: int = 64
    layers: int = 1  # all-pair attention layers (SGFormer's point: one is enough)
    dropout: float = 0.5  # GNN branch dropout (and the graph-level head's)
    heads: int = 1
    attn_dropout: float = 0.2  # attention branch dropout
    gnn_layers: int = 3  # GCN layers of the graph branch
    graph_weight: float = 0.8  # out = w * GNN + (1 - w) * attention (authors' Cora value)
    aggregate: str = "add"  # add (weighted sum, above) | cat

    def validate(self) -> None:
        super().validate()
        if int(self.heads) < 1 or int(self.gnn_layers) < 1:
            raise ConfigError(f"heads and gnn_layers must be positive integers, got {self.heads!r} and {self.gnn_layers!r}.")
        if not 0.0 <= float(self.attn_dropout) < 1.0:
            raise ConfigError(f"attn_dropout must be in [0, 1), got {self.attn_dropout!r}.")
        if not 0.0 <= float(self.graph_weight) <= 1.0:
            raise ConfigError(f"graph_weight must be in [0, 1], got {self.graph_weight!r}.")
        if self.aggregate not in ("add", "cat"):
            raise ConfigError(f"aggregate must be 'add' or 'cat', got {self.aggregate!r}.")
        if self.level == "node":
            check_fixed_head(self, ("linear",), "SGFormer reads nodes out with PyG's own Linear layer")


@MODELS.register("sgformer", "SGFormer (Wu et al. 2023), PyG's implementation: one linear attention layer + a GCN branch")
class SGFormer(GraphModel):
    """PyG's ``SGFormer`` with its two branches and output layer; its final ``log_softmax`` is left
    out so that the outputs are logits for any task (for classification the loss is the same).
    Graph-level outputs pool the branches' combination and use the shared MLP head instead.

    PyG's attention pads a batch to its largest graph and does not mask padded keys (they count in
    its sums and in :math:`N`), so with graphs of different sizes in one batch a graph's output
    depends on the batch; on one graph (node classification) there is no padding."""

    Config = SGFormerConfig

    def __init__(self, cfg: SGFormerConfig) -> None:
        super().__init__(cfg)
        from torch_geometric.nn.models import SGFormer as PyGSGFormer

        node = cfg.level == "node"
        self.sgformer = PyGSGFormer(
            cfg.in_channels, cfg.hidden, cfg.out_channels if node else cfg.hidden,
            trans_num_layers=cfg.layers, trans_num_heads=cfg.heads, trans_dropout=cfg.attn_dropout,
            gnn_num_layers=cfg.gnn_layers, gnn_dropout=cfg.dropout, graph_weight=cfg.graph_weight,
            aggregate=cfg.aggregate,
        )
        if node:
            self.head = nn.Identity()  # PyG's own output layer (sgformer.fc) gives the logits
        else:
            self.sgformer.fc = nn.Identity()
            if cfg.aggregate == "cat":  # the readout is twice as wide
                self.head = make_head(cfg, 2 * cfg.hidden)

    def embed(self, data) -> Tensor:
        m = self.sgformer
        x = data.x
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        x1 = m.trans_conv(x, batch)
        x2 = m.graph_conv(x, data.edge_index)
        h = m.graph_weight * x2 + (1 - m.graph_weight) * x1 if m.aggregate == "add" else torch.cat([x1, x2], dim=1)
        return m.fc(h)
