"""PGM-Explainer on hand-made graphs and models whose answer is known."""
import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency
from torch_geometric.data import Data
from torch_geometric.utils import scatter

pytest.importorskip("pgmpy")

from gnnformer.errors import UserError  # noqa: E402
from gnnformer.explain.bayes import fit_bayes_net, query_bayes_net  # noqa: E402
from gnnformer.explain.fidelity import precision_recall, same_set_rate  # noqa: E402
from gnnformer.explain.pgm import PGMExplainer  # noqa: E402
from gnnformer.explain.stats import chi_square  # noqa: E402
from gnnformer.explain.synthetic import team_graph  # noqa: E402


class OneNeighbour(torch.nn.Module):
    """Node i's logits: [0.5, sum of w_e * x[src_e, 0] over its in-edges]; only edge 2 -> 1 has a
    weight, so node 1's prediction depends on node 2's first feature and on nothing else."""

    def forward(self, data):
        src, dst = data.edge_index
        s = scatter(data.edge_weight * data.x[src, 0], dst, dim=0, dim_size=data.num_nodes, reduce="sum")
        return torch.stack([torch.full_like(s, 0.5), s], -1)


class KeyNode(torch.nn.Module):
    """A graph's logits: [0.5, the first feature of its node marked ``key``] (one row per graph)."""

    def forward(self, data):
        batch = data.batch if data.get("batch") is not None else torch.zeros(data.num_nodes, dtype=torch.long)
        s = scatter(data.key * data.x[:, 0], batch, dim=0, reduce="sum")
        return torch.stack([torch.full_like(s, 0.5), s], -1)


def path_graph():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    weight = torch.zeros(8)
    weight[3] = 1.0  # the edge 2 -> 1
    return Data(x=torch.ones(5, 3), edge_index=edge_index, edge_weight=weight)


def test_node_explainer_selects_exactly_the_neighbour_the_prediction_depends_on():
    e = PGMExplainer(OneNeighbour(), hops=1, num_samples=400, min_samples=400, seed=0).explain_node(path_graph(), 1)
    assert e.prediction == 1 and e.num_samples == 400
    assert e.nodes == [1, 2]  # the target itself (p = 0, as in the authors' code) and node 2
    assert set(e.p_values) == {0, 1, 2}  # node 1's one-hop neighbourhood
    assert e.p_values[2] < 1e-10 and e.p_values[0] > 0.05
    assert e.blanket == [2] and e.bayes_net == [("2", "target")]


def test_sampling_stops_once_the_selection_is_settled_and_not_before():
    # node 2 decides everything: after the first round of 100 its evidence is far past node 0's
    e = PGMExplainer(OneNeighbour(), hops=1, num_samples=400, seed=0).explain_node(path_graph(), 1)
    assert e.num_samples == 100 and e.nodes == [1, 2]
    assert -np.log(e.p_values[2]) + np.log(e.p_values[0]) >= 10
    # a margin no evidence reaches: rounds of 100, 100, 200 up to all 400 samples
    e = PGMExplainer(OneNeighbour(), hops=1, num_samples=400, stop_margin=1e9, seed=0).explain_node(path_graph(), 1)
    assert e.num_samples == 400 and e.nodes == [1, 2]
    assert PGMExplainer(OneNeighbour(), hops=1, num_samples=1000, min_samples=300)._rounds() == [300, 300, 400]


class Recording(OneNeighbour):
    """OneNeighbour that records how many nodes each graph it is given has."""

    def __init__(self):
        super().__init__()
        self.sizes = set()

    def forward(self, data):
        self.sizes.add(data.num_nodes // int(data.get("num_graphs") or 1))
        return super().forward(data)


def test_default_tests_what_the_target_depends_on_not_what_it_drives():
    data = path_graph()
    data.edge_weight[1] = 1.0  # the edge 1 -> 0: node 0's prediction now depends on the target's features
    model = Recording()
    e = PGMExplainer(model, hops=1, num_samples=400, seed=0).explain_node(data, 1)
    assert e.nodes == [1, 2] and e.p_values[0] > 0.05
    assert model.sizes == {5, 3}  # the whole graph once, then the target's 1-hop graph (nodes 0-2)
    # the authors' coding: node 0's own outcome follows the target's perturbation, so it is kept
    model = Recording()
    e = PGMExplainer(model, hops=1, num_samples=400, min_samples=400, neighbour_outcomes=True,
                     seed=0).explain_node(data, 1)
    assert e.nodes == [0, 1, 2] and e.p_values[0] < 1e-10
    assert model.sizes == {5}  # the 3-hop graph is the whole path


class GCN(torch.nn.Module):
    """One GCNConv: a node's output depends on its neighbours' degrees, so the n-hop graph alone is
    not enough; records (nodes, edges) of each copy it is given."""

    def __init__(self):
        super().__init__()
        from torch_geometric.nn import GCNConv

        torch.manual_seed(0)
        self.conv, self.seen = GCNConv(3, 2), []

    def forward(self, data):
        copies = int(data.get("num_graphs") or 1)
        self.seen.append((data.num_nodes // copies, data.edge_index.size(1) // copies))
        return self.conv(data.x, data.edge_index)


def test_samples_run_on_the_smallest_graph_that_gives_the_same_prediction():
    # path 0-...-6 plus the chord 1-5; target 3, one hop: its 1-hop graph {2, 3, 4} changes the
    # neighbours' degrees, so the samples run on {1, ..., 5} without the chord 1-5 (8 directed edges)
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (1, 5)]
    edge_index = torch.tensor(pairs + [(b, a) for a, b in pairs]).t()
    data = Data(x=torch.randn(7, 3, generator=torch.Generator().manual_seed(1)), edge_index=edge_index)
    model = GCN()
    e = PGMExplainer(model, hops=1, num_samples=64, bayes_net=False, seed=0).explain_node(data, 3)
    assert model.seen[:3] == [(7, 14), (3, 4), (5, 8)]  # whole graph, the 1-hop graph (refused), the one kept
    assert set(model.seen[3:]) == {(5, 8)} and set(e.p_values) == {2, 3, 4}


def test_bayes_net_query_is_the_probability_by_hand():
    # zero perturbation: node 1's prediction changes exactly when node 2 is perturbed
    e = PGMExplainer(OneNeighbour(), hops=1, num_samples=200, perturbation="zero", seed=3).explain_node(path_graph(), 1)
    assert e.query({2: True}, changed=True) == pytest.approx(1.0)
    assert e.query({2: False}) == pytest.approx(1.0)
    with pytest.raises(UserError, match="not in the explanation"):
        e.query({0: True})
    # MLE: P(target | parents) is the frequency among the samples with those parents' values
    perturbed = np.array([[1, 0], [1, 0], [1, 1], [0, 1], [0, 0], [1, 1], [1, 0], [0, 0]])
    outcome = np.array([1, 0, 1, 1, 0, 1, 1, 0])
    net = fit_bayes_net(perturbed, outcome, [7, 9], blanket=[7, 9])
    assert query_bayes_net(net, {7: 1, 9: 0}, 1) == pytest.approx(2 / 3)
    assert query_bayes_net(net, {7: 0, 9: 1}, 1) == pytest.approx(1.0)
    # BIC keeps the two perturbations independent here, so with no evidence the answer is
    # sum over configurations of P(7) P(9) P(target | 7, 9): 5/8 5/8 2/3 + 5/8 3/8 1 + 3/8 3/8 1 + 3/8 5/8 0
    assert sorted(net.edges()) == [("7", "target"), ("9", "target")]
    assert query_bayes_net(net, {}, 1) == pytest.approx(5 / 8 * 5 / 8 * 2 / 3 + 5 / 8 * 3 / 8 + 3 / 8 * 3 / 8)


def test_chi_square_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (300, 3))
    y = (x[:, 0] > 1).astype(int) * rng.integers(0, 2, 300) + rng.integers(0, 2, 300)
    stat, dof, p = chi_square(x, y)
    for j in range(3):
        table = np.array([[np.sum((x[:, j] == a) & (y == b)) for b in range(3)] for a in range(4)])
        ref = chi2_contingency(table, correction=False)
        assert (stat[j], dof[j], p[j]) == pytest.approx((ref.statistic, ref.dof, ref.pvalue))
    # conditional: statistics and degrees of freedom add up over the strata of z
    z = rng.integers(0, 2, 300)
    stat, dof, _ = chi_square(x[:, 0], y, z[:, None])
    refs = [chi2_contingency(np.array([[np.sum((x[z == s, 0] == a) & (y[z == s] == b)) for b in range(3)]
                                       for a in range(4)]), correction=False) for s in (0, 1)]
    assert stat == pytest.approx(sum(r.statistic for r in refs)) and dof == sum(r.dof for r in refs)
    # a constant variable carries no evidence
    assert chi_square(np.zeros(50, dtype=int), rng.integers(0, 2, 50))[2] == 1.0


def test_graph_explainer_finds_the_key_node_and_both_rounds_test_the_outcome():
    n = 30
    key = torch.zeros(n)
    key[17] = 1.0
    edge_index = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    data = Data(x=torch.ones(n, 2), edge_index=torch.cat([edge_index, edge_index.flip(0)], 1), key=key)
    e = PGMExplainer(KeyNode(), hops=1, num_samples=400, perturbation="zero", top_k=1, seed=0).explain_graph(data)
    assert e.target is None and e.prediction == 1
    assert e.nodes == [17]
    assert len(e.p_values) == 4  # round two tests the 4 * top_k candidates of round one
    assert e.query({17: True}, changed=True) > 0.2 and e.query({17: False}, changed=True) == 0.0


def test_same_seed_same_explanation_other_seed_other_samples():
    data = path_graph()
    a, b, c = (PGMExplainer(OneNeighbour(), hops=1, num_samples=100, seed=s).explain_node(data, 1) for s in (5, 5, 6))
    assert a.p_values == b.p_values and a.nodes == b.nodes
    assert a.p_values != c.p_values


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="perturbation"):
        PGMExplainer(OneNeighbour(), hops=1, perturbation="noise")
    with pytest.raises(UserError, match="hops"):
        PGMExplainer(OneNeighbour())
    with pytest.raises(UserError, match="not in the graph"):
        PGMExplainer(OneNeighbour(), hops=1).explain_node(path_graph(), 9)


def test_team_graph_outcome_is_driven_by_the_named_peers():
    data, truth = team_graph(num_teams=3, team_size=5, seed=1)
    assert data.num_nodes == 15 and len(truth) == 15
    drive = data.edge_type == 0
    for m in range(15):
        drivers = data.edge_index[0, drive & (data.edge_index[1] == m)].tolist()
        assert sorted([m] + drivers) == truth[m] and m // 5 == drivers[0] // 5
        assert int(data.y[m]) == int(data.x[drivers, 0].mean() < 0.5)
    again, _ = team_graph(num_teams=3, team_size=5, seed=1)
    assert torch.equal(again.edge_index, data.edge_index)


def test_precision_recall_and_stability():
    assert precision_recall([1, 2, 3, 4], [2, 3, 9]) == (0.5, 2 / 3)
    assert same_set_rate([[1, 2], [3]], [[2, 1], [4]]) == 0.5


def test_missing_pgmpy_is_a_user_error_naming_the_extra(monkeypatch):
    import importlib.util

    from gnnformer.errors import UserError
    from gnnformer.explain import bayes

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pgmpy" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install -e '\.\[explain\]'"):
        bayes.fit_bayes_net(np.zeros((4, 1)), np.zeros(4), [0], [0])


def test_evidence_ranks_tests_whose_p_values_both_round_to_zero():
    from gnnformer.explain.stats import evidence

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    strong, weaker = y.copy(), np.where(rng.random(4000) < 0.05, 1 - y, y)  # identical; 5% flipped
    stat, dof, p = chi_square(np.stack([weaker, strong], 1), y)
    assert p[0] == p[1] == 0.0  # p alone cannot tell them apart
    e = evidence(stat, dof)
    assert np.isfinite(e).all() and e[1] > e[0] > 1000  # -log p: finite and ordered
    # exact for 1 degree of freedom: p = erfc(sqrt(stat / 2)) = 2 Phi(-sqrt(stat))
    from scipy.special import log_ndtr

    exact = lambda s: -(np.log(2) + log_ndtr(-np.sqrt(s)))  # noqa: E731
    assert e == pytest.approx(exact(stat), rel=1e-9)
    far = np.array([50.0, 1400.0, 3000.0, 20000.0])  # scipy's logsf is finite, finite, -inf, -inf
    assert evidence(far, np.ones(4, dtype=int)) == pytest.approx(exact(far), rel=1e-9)
    assert evidence(np.array([3.0]), np.array([0]))[0] == 0.0  # no degree of freedom: p = 1


def test_largest_eighth_codes_each_columns_largest_drops_ties_included():
    from gnnformer.explain.pgm import largest_eighth

    drop = np.array([[0.5, 0.0], [0.1, 0.3], [0.9, 0.3], [0.2, 0.3], [0.0, 0.2], [0.3, 0.0], [0.4, 0.0],
                     [0.8, 0.0], [0.7, 0.0], [0.6, 0.0], [0.05, 0.0], [0.02, 0.0], [0.01, 0.0], [0.03, 0.0],
                     [0.04, 0.0], [0.06, 0.0]])  # 16 samples: the top 2 of each column
    coded = largest_eighth(drop)
    assert coded[:, 0].tolist() == [0, 0, 1, 0, 0, 0, 0, 1] + [0] * 8  # 0.9 and 0.8
    assert coded[:, 1].tolist() == [0, 1, 1, 1] + [0] * 12  # three drops of 0.3 tie for the top 2
    assert largest_eighth(np.array([3.0, 1.0, 2.0])).tolist() == [1, 0, 0]  # at least one
    assert largest_eighth(np.zeros(16)).tolist() == [0] * 16  # no drop, no change


def test_an_unknown_outcome_coding_is_refused():
    with pytest.raises(UserError, match="outcome must be one of quantile, threshold"):
        PGMExplainer(torch.nn.Linear(2, 2), hops=1, outcome="median")


def test_motif_graphs_are_the_same_for_the_same_seed_and_leave_numpys_state_alone():
    from gnnformer.explain.synthetic import motif_graph

    np.random.seed(7)
    expected_next = np.random.rand()
    np.random.seed(7)
    first, truth = motif_graph("ba-shapes", seed=0)
    assert np.random.rand() == expected_next  # numpy's global state given back
    again, _ = motif_graph("ba-shapes", seed=0)
    other, _ = motif_graph("ba-shapes", seed=1)
    assert torch.equal(first.edge_index, again.edge_index)
    assert not torch.equal(first.edge_index, other.edge_index)
    assert first.num_nodes == 300 + 80 * 5 and truth[300] == [300, 301, 302, 303, 304]
