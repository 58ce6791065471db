"""PGM-Explainer (Vu & Thai, "PGM-Explainer: Probabilistic Graphical Model Explanations for Graph
Neural Networks", NeurIPS 2020), the whole method, for node and graph predictions.

Node task (the authors' node explainer): every sample perturbs each node of the target's n-hop
neighbourhood (n = the model's layers) with probability 1/2 and records whether the target's
prediction changed; the target's variable codes (perturbed, changed). "Changed" is, by default
(``outcome="quantile"``), the largest eighth of the drops of the predicted class's probability over
the samples, as the authors' graph explainer codes it: it adapts to how much one node moves the
model, where the authors' node coding, a drop of more than ``pred_threshold``
(``outcome="threshold"``), rarely fires on a model that no single node moves much (BA-Shapes: lower
precision and stability than the default; Tree-Cycles: the same precision) and fits a model that
flips hard (synthetic teams: higher precision; the CLGT report uses it). Measured in BENCHMARKS.md.
Another node's variable codes its perturbation only (the default), or with
``neighbour_outcomes=True`` (the authors' code) also whether its own prediction changed. The default
tests what the target's prediction depends on, not what the target drives (synthetic teams: far
higher precision; BENCHMARKS.md), so the model runs on the smallest graph that gives the target's
prediction: its n-hop graph, or that plus the next hop's edges into it (a GCN's degree
normalisation), checked against the whole graph (BA-Shapes, 3-layer GCN, 20 house nodes: 136 nodes
and 502 edges on average instead of 700 and 3972). A chi-square test of each node's variable against
the target's keeps the dependent nodes (p < ``p_threshold``, or the ``top_k`` most dependent, ranked
by -log p, which unlike p does not round to a tie at 0; the target itself has p = 0, as in the
authors' code). Conditional tests reduce them to the target's Markov blanket, and a Bayesian network
over the nodes' perturbations and the target's outcome answers P(prediction | evidence)
(``Explanation.query``).

Graph task (their graph explainer): the outcome of a sample is the drop of the predicted class's
probability, the top eighth of drops coded 1; round one perturbs every node and tests each
node's perturbation against that outcome, round two perturbs only the ``4 * top_k`` best
candidates and selects from them. (PyG's contrib version tests the predicted label's column
instead of the outcome's in round one; here both rounds test the outcome.)

The samples are drawn with a seeded generator and evaluated in batches (``sampling.py``), for a
node in rounds that stop once the selection is settled: the same seed gives the same explanation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import k_hop_subgraph

from ..errors import UserError
from .bayes import TARGET, fit_bayes_net, query_bayes_net, require_pgmpy
from .sampling import check_perturbation, perturbed_features, predict_copies
from .stats import chi_square, evidence, markov_blanket


@dataclass
class Explanation:
    """One explained prediction. ``target``: the node (None for a graph); ``prediction``: its class;
    ``nodes``: the selected nodes, sorted; ``p_values``: node -> p-value for every tested node;
    ``blanket``: the Markov blanket (parents of the target in the Bayesian network); ``seconds``:
    wall time of the sampling and the selection; ``num_samples``: the samples drawn.

    The Bayesian network (``network``, its edges ``bayes_net``, ``query``) is fitted from the kept
    samples on first use, so an explanation that only needs its nodes does not pay for it."""

    target: Optional[int]
    prediction: int
    nodes: list[int]
    p_values: dict[int, float]
    blanket: list[int]
    seconds: float
    num_samples: int
    samples: Optional[tuple] = field(default=None, repr=False)  # (perturbed, outcome, names) for the network
    _network: Any = field(default=None, repr=False)

    @property
    def network(self):
        """The fitted pgmpy ``DiscreteBayesianNetwork`` over the explaining nodes' perturbations and
        the outcome ``"target"`` (None when built with ``bayes_net=False``)."""
        if self._network is None and self.samples is not None:
            perturbed, outcome, names = self.samples
            self._network = fit_bayes_net(perturbed, outcome, names, self.blanket)
        return self._network

    @property
    def bayes_net(self) -> list[tuple[str, str]]:
        """The network's edges, nodes named by their index as text and the outcome ``"target"``."""
        return sorted(self.network.edges()) if self.network is not None else []

    def query(self, evidence: Mapping[int, bool], changed: bool = False) -> float:
        """P(the prediction holds | evidence), or P(it changes) with ``changed=True``; ``evidence``
        maps explaining nodes to whether their features are perturbed."""
        if self.network is None:
            raise UserError("This explanation has no Bayesian network (it was built with bayes_net=False).")
        known = {int(n) for n in self.network.nodes() if n != TARGET}
        unknown = sorted(set(int(k) for k in evidence) - known)
        if unknown:
            raise UserError(f"Nodes {unknown} are not in the explanation's Bayesian network "
                            f"(its nodes: {sorted(known)}).")
        return query_bayes_net(self.network, {k: int(bool(v)) for k, v in evidence.items()}, int(changed))


def count_hops(model: Any) -> int:
    """The model's receptive field in hops: ``cfg.layers`` for gnnformer models, else the number of
    PyG message-passing modules."""
    from torch_geometric.nn import MessagePassing

    layers = getattr(getattr(model, "cfg", None), "layers", None)
    if layers:
        return int(layers)
    hops = sum(isinstance(m, MessagePassing) for m in model.modules()) if isinstance(model, torch.nn.Module) else 0
    if hops == 0:
        raise UserError("Cannot tell how many hops the model sees: give PGMExplainer(model, hops=...).")
    return hops


OUTCOMES = ("quantile", "threshold")


def largest_eighth(drop: np.ndarray) -> np.ndarray:
    """1 where a drop is positive and at least the ``max(1, S // 8)``-th largest of its column's
    ``S`` drops (ties to it included: a change every perturbation of one node causes alike is
    coded alike), else 0."""
    drop = np.asarray(drop, dtype=float)
    k = max(1, len(drop) // 8)
    cut = np.sort(drop, axis=0)[len(drop) - k]
    return ((drop >= cut) & (drop > 0)).astype(np.int64)


class PGMExplainer:
    """``PGMExplainer(model).explain_node(data, node)`` / ``.explain_graph(data)``.

    ``model(data) -> logits`` ([N, C] for node tasks, [G, C] for graph tasks; see
    ``fidelity.DataModel`` for a model that takes ``(x, edge_index)``). ``num_samples``
    perturbations (the authors use 100 for nodes, 1000 for graphs), each node perturbed with
    probability ``percentage``/100 as ``perturbation`` says (``sampling.PERTURBATIONS``). Node
    explanations draw them in rounds, ``min_samples`` (default a quarter) and then doubling, and stop
    once the weakest selected node's evidence (-log p) is ``stop_margin`` nats above the strongest
    one left out. ``max_nodes`` bounds the nodes of one forward pass (on CPU, passes of about ten
    thousand nodes keep the scatter operations in cache; one pass of all copies was slower).
    """

    def __init__(self, model: Callable[[Data], Tensor], *, hops: Optional[int] = None, num_samples: int = 1000,
                 perturbation: str = "randint", percentage: float = 50.0, p_threshold: float = 0.05,
                 pred_threshold: float = 0.1, top_k: Optional[int] = None, bayes_net: bool = True,
                 neighbour_outcomes: bool = False, outcome: str = "quantile", seed: int = 0,
                 max_nodes: int = 10_000, min_samples: Optional[int] = None, stop_margin: float = 10.0) -> None:
        check_perturbation(perturbation)
        if bayes_net:
            require_pgmpy()
        if outcome not in OUTCOMES:
            raise UserError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}.")
        if num_samples < 2:
            raise UserError(f"num_samples must be at least 2, got {num_samples}.")
        if not 0 < percentage < 100:
            raise UserError(f"percentage must be in (0, 100), got {percentage}.")
        if top_k is not None and top_k < 1:
            raise UserError(f"top_k must be a positive integer or None, got {top_k}.")
        if min_samples is not None and not 2 <= min_samples:
            raise UserError(f"min_samples must be at least 2 (or None), got {min_samples}.")
        self.model, self.hops = model, hops if hops is not None else count_hops(model)
        self.num_samples, self.perturbation, self.percentage = num_samples, perturbation, percentage
        self.p_threshold, self.pred_threshold, self.top_k = p_threshold, pred_threshold, top_k
        self.bayes_net, self.seed, self.max_nodes = bayes_net, seed, max_nodes
        self.neighbour_outcomes, self.outcome = neighbour_outcomes, outcome
        self.min_samples = min(num_samples, min_samples if min_samples is not None else max(2, num_samples // 4))
        self.stop_margin = stop_margin

    # -- sampling -------------------------------------------------------------------------------
    def _probabilities(self, data: Data, x: Tensor, mask: Tensor, generator, graph_level: bool) -> Tensor:
        xs = perturbed_features(x, mask.to(x.device), self.perturbation, generator)
        return predict_copies(self.model, data, xs, graph_level=graph_level, max_nodes=self.max_nodes).cpu()

    def _mask(self, rows: int, nodes: int, candidates: Tensor, generator) -> Tensor:
        mask = torch.zeros(rows, nodes, dtype=torch.bool)
        mask[:, candidates] = torch.rand(rows, len(candidates), generator=generator) < self.percentage / 100
        return mask

    def _rounds(self) -> list[int]:
        """Sample counts of the sampling rounds: ``min_samples``, then doubling up to ``num_samples``."""
        sizes, total = [], 0
        while total < self.num_samples:
            step = min(max(self.min_samples, total), self.num_samples - total)
            sizes.append(step)
            total += step
        return sizes

    def _settled(self, p: np.ndarray, strength: np.ndarray, me: int) -> bool:
        """Whether more samples could still change the selection: the weakest selected node (the
        target aside) is ``stop_margin`` nats of evidence (-log p) above the strongest left out."""
        others = np.delete(np.arange(len(p)), me)
        if len(others) == 0:
            return True
        chosen = self._choose(p, strength, np.arange(len(p)))
        inside = [j for j in others if j in chosen]
        outside = [j for j in others if j not in chosen]
        if not inside:
            return False
        weakest = strength[inside].min()
        return not outside or weakest - strength[outside].max() >= self.stop_margin

    def _choose(self, p: np.ndarray, strength: np.ndarray, names) -> list[int]:
        order = np.lexsort((np.asarray(names), -strength))  # strongest dependence first (p ties at 0)
        if self.top_k is None:
            return [int(j) for j in order if p[j] < self.p_threshold]
        return [int(j) for j in order[: self.top_k]]

    def _computation_graph(self, data: Data, node: int, tracked: Tensor):
        """The smallest part of the graph that decides the tracked nodes' predictions, tried in this
        order: the nodes within their n hops (n = the model's hops); those plus the next hop with
        only the edges that touch the inner nodes (a GCN's degree normalisation counts them); the
        whole next hop. Each is checked against the full graph's predictions; a model that looks
        further (global attention) runs on the whole graph."""
        depth = self.hops + (self.hops if self.neighbour_outcomes else 0)
        inner, _, _, _ = k_hop_subgraph(node, depth, data.edge_index, num_nodes=data.num_nodes)
        outer, _, _, _ = k_hop_subgraph(node, depth + 1, data.edge_index, num_nodes=data.num_nodes)
        with torch.no_grad():
            self.model.eval() if hasattr(self.model, "eval") else None
            full = torch.softmax(self.model(data).float(), -1).cpu()
            if len(outer) < data.num_nodes:
                position = torch.full((data.num_nodes,), -1, dtype=torch.long)
                position[outer] = torch.arange(len(outer))
                around = data.subgraph(outer)
                is_inner = torch.zeros(len(outer), dtype=torch.bool)
                is_inner[position[inner]] = True
                src, dst = around.edge_index
                touching = around.edge_subgraph(is_inner[src] | is_inner[dst])
                for sub, subset in ((data.subgraph(inner), inner), (touching, outer), (around, outer)):
                    at = torch.full((data.num_nodes,), -1, dtype=torch.long)
                    at[subset] = torch.arange(len(subset))
                    local = torch.softmax(self.model(sub).float(), -1).cpu()
                    if torch.allclose(local[at[tracked]], full[tracked], atol=1e-5):
                        return sub, at, full
        return data, torch.arange(data.num_nodes), full

    # -- explanations ---------------------------------------------------------------------------
    def explain_node(self, data: Data, node: int) -> Explanation:
        """Why the model predicts what it does for ``node`` of ``data`` (a node-level model).

        Samples are drawn in rounds (``min_samples``, then doubling to ``num_samples``); sampling
        stops early once the selection is settled (see ``_settled``)."""
        start = time.perf_counter()
        if not 0 <= int(node) < data.num_nodes:
            raise UserError(f"node {node} is not in the graph (it has {data.num_nodes} nodes).")
        node = int(node)
        generator = torch.Generator().manual_seed(self.seed)
        neighbours, _, _, _ = k_hop_subgraph(node, self.hops, data.edge_index, num_nodes=data.num_nodes)
        neighbours = torch.unique(torch.cat([neighbours.cpu(), torch.tensor([node])]))
        me = int((neighbours == node).nonzero()[0, 0])
        tracked = neighbours if self.neighbour_outcomes else neighbours[me:me + 1]
        graph, position, full = self._computation_graph(data, node, tracked)
        local = position[neighbours]
        original = full[tracked]                                                                   # [T, C]
        label = original.argmax(-1)
        masks, kept = [], []
        for size in self._rounds():
            mask = self._mask(size, graph.num_nodes, local, generator)
            probs = self._probabilities(graph, graph.x, mask, generator, graph_level=False)[:, position[tracked]]
            masks.append(mask[:, local])
            kept.append(probs.gather(2, label.view(1, -1, 1).expand(probs.size(0), -1, 1)).squeeze(-1))
            variables, perturbed, changed, p, strength = self._node_tests(torch.cat(masks), torch.cat(kept),
                                                                          original, me, len(neighbours))
            if self._settled(p, strength, me):
                break
        labels = label if self.neighbour_outcomes else label.expand(len(neighbours))
        return self._finish(node, int(labels[me]), neighbours.tolist(), p, strength, variables[:, me], variables,
                            perturbed, changed[:, me], start)

    def _node_tests(self, mask: Tensor, kept: Tensor, original: Tensor, me: int, count: int):
        """Each neighbour's variable, (perturbed, changed) as one code 0..3, tested against the
        target's: (variables, perturbed, changed, p, evidence)."""
        if self.outcome == "quantile":  # the largest eighth of each tracked node's drops (and a drop at all)
            changed = largest_eighth((original.max(-1).values - kept).numpy())
        else:
            changed = (kept + self.pred_threshold < original.max(-1).values).numpy().astype(np.int64)
        perturbed = mask.numpy().astype(np.int64)
        if not self.neighbour_outcomes:  # only the target's outcome: the others' count as unchanged
            changed = np.zeros_like(perturbed) + changed * (np.arange(count) == me)
        variables = perturbed * 2 + changed
        stat, dof, p = chi_square(variables, variables[:, me])
        strength = evidence(stat, dof)
        p[me], strength[me] = 0.0, np.inf                    # the target explains itself (authors' code)
        return variables, perturbed, changed, p, strength

    def explain_graph(self, data: Data) -> Explanation:
        """Why the model predicts what it does for the graph ``data`` (a graph-level model)."""
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            self.model.eval() if hasattr(self.model, "eval") else None
            original = torch.softmax(self.model(data).float(), -1).cpu().reshape(-1)
        label = int(original.argmax())
        n = data.num_nodes
        candidates = torch.arange(n)
        if self.top_k is not None and 4 * self.top_k < n:
            outcome, perturbed = self._graph_round(data, candidates, label, original, generator)
            stat, dof, _ = chi_square(perturbed, outcome)
            best = np.lexsort((np.arange(n), -evidence(stat, dof)))[:4 * self.top_k]
            candidates = torch.from_numpy(best).sort().values
        outcome, perturbed = self._graph_round(data, candidates, label, original, generator)
        tested = perturbed[:, candidates.numpy()]
        stat, dof, p = chi_square(tested, outcome)
        return self._finish(None, label, candidates.tolist(), p, evidence(stat, dof), outcome, tested, tested,
                            outcome, start)

    def _graph_round(self, data, candidates, label, original, generator):
        mask = self._mask(self.num_samples, data.num_nodes, candidates, generator)
        probs = self._probabilities(data, data.x, mask, generator, graph_level=True)
        drop = (original[label] - probs[:, label]).numpy()
        outcome = np.zeros(self.num_samples, dtype=np.int64)
        outcome[np.argsort(drop, kind="stable")[-max(1, self.num_samples // 8):]] = 1  # the top eighth of drops
        return outcome, mask.numpy().astype(np.int64)

    def _finish(self, target, label, names, p, strength, target_var, variables, perturbed, outcome,
                start) -> Explanation:
        chosen = self._choose(p, strength, names)
        nodes = sorted(names[j] for j in chosen)
        others = sorted((j for j in chosen if names[j] != target), key=lambda j: names[j])
        blanket = markov_blanket(target_var, variables[:, others], perturbed[:, others],
                                 [names[j] for j in others], self.p_threshold)
        samples = (perturbed[:, others], outcome, [names[j] for j in others]) if self.bayes_net else None
        return Explanation(target, label, nodes, {names[j]: float(p[j]) for j in range(len(names))}, sorted(blanket),
                           time.perf_counter() - start, len(outcome), samples)
