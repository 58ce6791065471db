"""The Bayesian network of a PGM-Explainer explanation, with pgmpy (Vu & Thai, NeurIPS 2020).

Variables: each explaining node's perturbation indicator (0/1) and the target's outcome
("target": 1 when the prediction changed). The structure among the nodes is learned by hill
climbing on BIC (pgmpy's ``HillClimbSearch`` with ``bic-d``); every node of the Markov blanket
is a parent of the target, as in the authors' code. Parameters are maximum-likelihood counts, so
P(target | its parents) is the frequency in the samples that match the parents' values.
"""
from __future__ import annotations

import logging
import warnings
from typing import Mapping, Sequence

import numpy as np

from ..errors import UserError

TARGET = "target"


def require_pgmpy() -> None:
    """A `UserError` naming the optional extra when pgmpy (the Bayesian network) is not installed."""
    import importlib.util

    if importlib.util.find_spec("pgmpy") is None or importlib.util.find_spec("pandas") is None:
        raise UserError("PGM-Explainer's Bayesian network needs pgmpy, an optional extra: "
                        "pip install -e '.[explain]' (or pass bayes_net=False for the node selection alone).")


def fit_bayes_net(perturbed: np.ndarray, outcome: np.ndarray, nodes: Sequence[int], blanket: Sequence[int]):
    """A fitted ``pgmpy`` ``DiscreteBayesianNetwork`` over ``nodes`` (columns of ``perturbed``) and the target."""
    require_pgmpy()
    import pandas as pd

    with warnings.catch_warnings():  # pgmpy 1.x warns about its own deprecated modules on import
        warnings.simplefilter("ignore", FutureWarning)
        from pgmpy.causal_discovery import HillClimbSearch
        from pgmpy.models import DiscreteBayesianNetwork
        from pgmpy.parameter_estimator import DiscreteMLE

    logging.getLogger("pgmpy").setLevel(logging.ERROR)  # pgmpy logs every fitted CPD at INFO
    names = [str(v) for v in nodes]
    frame = pd.DataFrame(np.asarray(perturbed, dtype=np.int64), columns=names)
    edges: list[tuple[str, str]] = []
    if len(names) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search = HillClimbSearch(scoring_method="bic-d", return_type="dag", show_progress=False)
            edges = [(str(a), str(b)) for a, b in search.fit(frame).causal_graph_.edges()]
    edges += [(str(v), TARGET) for v in blanket]
    frame[TARGET] = np.asarray(outcome, dtype=np.int64)
    net = DiscreteBayesianNetwork(edges)
    net.add_nodes_from(frame.columns)
    # both states declared: a state the samples never show still gets a (zero) probability
    net.fit(frame, estimator=DiscreteMLE(state_names={c: [0, 1] for c in frame.columns}))
    return net


def query_bayes_net(net, evidence: Mapping[int, int], outcome: int) -> float:
    """P(target = ``outcome`` | the nodes' perturbation indicators in ``evidence``), by variable elimination."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pgmpy.inference import VariableElimination

    result = VariableElimination(net).query([TARGET], evidence={str(k): int(v) for k, v in evidence.items()},
                                            show_progress=False)
    return float(result.get_value(**{TARGET: int(outcome)}))
