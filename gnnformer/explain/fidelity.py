"""Measuring explanations against planted ground truth, and PyG's explainers run the same way.

Every explainer's answer is reduced to a node set; precision and recall are against the planted
motif (or the named peers of ``synthetic.team_graph``); PyG's fidelity (Amara et al.,
"GraphFramEx", 2022: ``torch_geometric.explain.metric.fidelity``) is computed on the same hard
node mask for every explainer, so the numbers compare; stability is how often two seeds give
exactly the same set.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

#: Arguments a wrapped ``(x, edge_index, ...)`` model receives from the Data, when it has them.
MODEL_ARGS = ("edge_weight", "edge_type", "edge_attr")


class DataModel(nn.Module):
    """``model(x, edge_index, **extra)`` called as ``model(data)`` (PyG's explainers call the former,
    gnnformer's explainer the latter); ``extra`` are the Data's attributes named in ``args``."""

    def __init__(self, model: nn.Module, args: Sequence[str] = ()) -> None:
        super().__init__()
        self.model, self.args = model, tuple(args)

    def forward(self, data: Data) -> Tensor:
        return self.model(data.x, data.edge_index, **{k: data[k] for k in self.args})


def precision_recall(selected: Iterable[int], truth: Iterable[int]) -> tuple[float, float]:
    """|selected & truth| / |selected| and / |truth| (an empty selection has precision 0)."""
    selected, truth = set(selected), set(truth)
    hit = len(selected & truth)
    return (hit / len(selected) if selected else 0.0), (hit / len(truth) if truth else 0.0)


def same_set_rate(first: Sequence[Iterable[int]], second: Sequence[Iterable[int]]) -> float:
    """The fraction of positions where the two runs chose exactly the same node set."""
    pairs = list(zip(first, second))
    return sum(set(a) == set(b) for a, b in pairs) / max(len(pairs), 1)


def top_nodes(scores: Tensor, k: int) -> list[int]:
    """The ``k`` highest-scoring nodes (ties by index)."""
    scores = scores.detach().float().cpu()
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return sorted(order[:k])


def pyg_explainer(model: nn.Module, algorithm, *, level: str = "node", node_mask_type: str = "object"):
    """A ``torch_geometric.explain.Explainer`` over ``model(x, edge_index, ...)`` (model explanations
    of a multiclass classifier returning raw logits)."""
    from torch_geometric.explain import Explainer

    return Explainer(model=model, algorithm=algorithm, explanation_type="model", node_mask_type=node_mask_type,
                     model_config=dict(mode="multiclass_classification", task_level=level, return_type="raw"))


def pyg_fidelity(model: nn.Module, data: Data, nodes: Iterable[int], index: int | None = None,
                 args: Sequence[str] = ()) -> tuple[float, float]:
    """PyG's (fidelity+, fidelity-) of the hard node mask ``nodes`` for ``index`` (None: the graph)."""
    from torch_geometric.explain import Explanation
    from torch_geometric.explain.algorithm import DummyExplainer
    from torch_geometric.explain.metric import fidelity

    explainer = pyg_explainer(model, DummyExplainer(), level="node" if index is not None else "graph")
    kwargs = {k: data[k] for k in args}
    with torch.no_grad():
        target = explainer.get_target(explainer.get_prediction(data.x, data.edge_index, **kwargs))
    mask = torch.zeros(data.num_nodes, 1)
    mask[list(nodes)] = 1.0
    explanation = Explanation(x=data.x, edge_index=data.edge_index, node_mask=mask, target=target,
                              index=index, **kwargs)
    explanation._model_args = list(kwargs)
    return fidelity(explainer, explanation)


def run_pyg(model: nn.Module, data: Data, targets: Sequence[int | None], algorithm_factory: Callable, k: int,
            seed: int, args: Sequence[str] = (), hard: bool = False):
    """Node sets and seconds per explanation of a PyG algorithm: the top ``k`` of its node mask, or
    with ``hard`` (a 0/1 mask, PyG's PGMExplainer) the nodes it marks."""
    sets, seconds = [], []
    for target in targets:
        torch.manual_seed(seed)
        np.random.seed(seed)  # PyG's PGMExplainer draws from NumPy's global generator
        explainer = pyg_explainer(model, algorithm_factory(), level="node" if target is not None else "graph")
        start = time.perf_counter()
        out = explainer(data.x, data.edge_index, index=target, **{a: data[a] for a in args})
        seconds.append(time.perf_counter() - start)
        mask = out.node_mask.reshape(data.num_nodes, -1).sum(-1)
        sets.append(sorted(mask.nonzero().view(-1).tolist()) if hard else top_nodes(mask, k))
    return sets, seconds
