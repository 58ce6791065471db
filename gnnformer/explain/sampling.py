"""Perturbation samples for PGM-Explainer, many perturbed copies of a graph in one forward pass.

The authors' code runs the model once per sample; here the copies are stacked as one disjoint
union (every node- and edge-level attribute repeated, ``batch`` naming the copy), so a thousand
samples cost a few forward passes. The model sees each copy as its own graph: message passing
never crosses copies and graph readouts or global attention follow ``batch``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..errors import UserError

#: How a perturbed node's features are redrawn. ``randint``: each feature 0 or 1 at random (the
#: authors' mode 0); ``scale``: each feature times U(0, 2) (their mode 1); ``zero``: all zero;
#: ``mean``: the mean feature vector of the graph.
PERTURBATIONS = ("randint", "scale", "zero", "mean")


def check_perturbation(mode: str) -> None:
    if mode not in PERTURBATIONS:
        raise UserError(f"perturbation must be one of {', '.join(PERTURBATIONS)}, got {mode!r}.")


def replicate(data: Data, copies: int) -> Data:
    """``copies`` disjoint copies of ``data`` as one graph, with ``batch`` and ``num_graphs`` set."""
    n = data.num_nodes
    out = Data()
    for key, value in data.items():
        if key in ("batch", "ptr", "num_graphs"):
            continue
        if key == "edge_index":
            offsets = torch.arange(copies, device=value.device).repeat_interleave(value.size(1)) * n
            out[key] = value.repeat(1, copies) + offsets
        elif isinstance(value, Tensor) and value.dim() > 0 and (data.is_node_attr(key) or data.is_edge_attr(key)):
            out[key] = value.repeat(copies, *([1] * (value.dim() - 1)))
        else:
            out[key] = value
    out.num_nodes = n * copies
    out.batch = torch.arange(copies, device=data.x.device).repeat_interleave(n)
    out.num_graphs = copies
    return out


def perturbed_features(x: Tensor, mask: Tensor, mode: str, generator: torch.Generator) -> Tensor:
    """[B, N, F] features: copy b has the rows where ``mask[b]`` is true redrawn as ``mode`` says."""
    base = x.unsqueeze(0).expand(mask.size(0), *x.shape)
    if mode == "randint":
        new = torch.randint(0, 2, base.shape, generator=generator).to(x.dtype)
    elif mode == "scale":
        new = base * torch.rand(base.shape, generator=generator, dtype=x.dtype) * 2
    elif mode == "zero":
        new = torch.zeros_like(base)
    else:
        new = x.mean(0).expand_as(base)
    return torch.where(mask.unsqueeze(-1), new.to(x.device), base)


@torch.no_grad()
def predict_copies(model: Callable[[Data], Tensor], data: Data, xs: Tensor, *, graph_level: bool,
                   max_nodes: int = 10_000) -> Tensor:
    """Class probabilities of the model on each feature matrix in ``xs`` [B, N, F] over ``data``'s
    structure: [B, N, C] for node tasks, [B, C] for graph tasks; ``max_nodes`` bounds one pass."""
    per_pass = max(1, max_nodes // max(data.num_nodes, 1))
    outs = []
    for start in range(0, xs.size(0), per_pass):
        chunk = xs[start:start + per_pass]
        batch = replicate(data, chunk.size(0))
        batch.x = chunk.reshape(-1, chunk.size(-1))
        out = torch.softmax(model(batch).float(), dim=-1)
        outs.append(out.reshape(chunk.size(0), -1, out.size(-1)) if not graph_level else out)
    return torch.cat(outs)
