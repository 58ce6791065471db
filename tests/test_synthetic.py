"""The regenerated CLUSTER set follows the published SBM recipe; the large SBM generator."""
import numpy as np
import pytest
import torch

from gnnformer.datasets import list_datasets
from gnnformer.datasets.synthetic import load_cluster, sbm_cluster_graph


def test_cluster_recipe_statistics():
    ds = load_cluster("CLUSTER-test", (40, 5, 5), seed=3)
    assert ds.task == "node_classification" and ds.num_features == 7 and ds.out_dim == 6
    assert [len(s) for s in (ds.fixed_split.train, ds.fixed_split.val, ds.fixed_split.test)] == [40, 5, 5]
    intra_pairs = intra_edges = inter_pairs = inter_edges = 0
    for g in ds.graphs:
        sizes = torch.bincount(g.y, minlength=6)
        assert sizes.min() >= 5 and sizes.max() <= 35  # 6 communities of 5..35 nodes
        seeds = g.x.argmax(-1)
        # exactly one seed node per community, carrying that community's label (1..6)
        assert sorted(seeds[seeds > 0].tolist()) == [1, 2, 3, 4, 5, 6]
        assert torch.equal(seeds[seeds > 0] - 1, g.y[seeds > 0])
        # undirected, no self loops
        a = torch.zeros(g.num_nodes, g.num_nodes, dtype=torch.bool)
        a[g.edge_index[0], g.edge_index[1]] = True
        assert torch.equal(a, a.t()) and not a.diagonal().any()
        same = g.y[:, None] == g.y[None, :]
        off_diag = ~torch.eye(g.num_nodes, dtype=torch.bool)
        intra_pairs += int((same & off_diag).sum()); intra_edges += int((a & same).sum())
        inter_pairs += int((~same).sum()); inter_edges += int((a & ~same).sum())
    assert abs(intra_edges / intra_pairs - 0.55) < 0.01
    assert abs(inter_edges / inter_pairs - 0.25) < 0.01


def test_cluster_is_seeded():
    g1 = sbm_cluster_graph(np.random.default_rng(7))
    g2 = sbm_cluster_graph(np.random.default_rng(7))
    g3 = sbm_cluster_graph(np.random.default_rng(8))
    assert torch.equal(g1.edge_index, g2.edge_index) and torch.equal(g1.y, g2.y)
    assert g1.num_nodes != g3.num_nodes or not torch.equal(g1.y, g3.y)


def test_cluster_registered_and_says_it_is_regenerated():
    names = dict(list_datasets())
    assert "10000/1000/1000" in names["CLUSTER"] and "regenerated" in names["CLUSTER"]
    ds = load_cluster("CLUSTER-test", (2, 1, 1))
    assert "not the published dataset" in ds.notes[0]


def test_large_sbm_degree_homophily_and_seed():
    from gnnformer.datasets.synthetic import edge_homophily, large_sbm

    g = large_sbm(20000, avg_degree=11, num_features=16, num_classes=5, seed=0, homophily=0.6)
    n, ei = g.num_nodes, g.edge_index
    assert g.x.shape == (n, 16) and g.x.dtype == torch.float32 and g.y.shape == (n,)
    assert abs(ei.size(1) / n - 11) < 0.3  # mean degree close to the target
    assert abs(edge_homophily(ei, g.y) - 0.6) < 0.02 and edge_homophily(ei, g.y) > 1 / 5 + 0.2  # well above chance
    # undirected (both directions of every edge), no self loops, no repeated edges, sorted by (source, target)
    key = ei[0] * n + ei[1]
    assert bool((key[1:] > key[:-1]).all()) and not bool((ei[0] == ei[1]).any())
    assert torch.equal(key, (ei[1] * n + ei[0]).sort().values)
    # features: class mean + noise (the class means differ, the noise is unit)
    means = torch.stack([g.x[g.y == c].mean(0) for c in range(5)])
    assert (means[0] - means[1]).norm() > 0.3 and abs(float((g.x - means[g.y]).std()) - 1.0) < 0.02
    h = large_sbm(20000, avg_degree=11, num_features=16, num_classes=5, seed=0, homophily=0.6)
    assert torch.equal(g.edge_index, h.edge_index) and torch.equal(g.x, h.x) and torch.equal(g.y, h.y)
    k = large_sbm(20000, avg_degree=11, num_features=16, num_classes=5, seed=1, homophily=0.6)
    assert not torch.equal(g.y, k.y)


def test_sbm_large_registered_with_size_option():
    from gnnformer.datasets import load_dataset
    from gnnformer.errors import ConfigError

    assert "SBM-large" in dict(list_datasets())
    ds = load_dataset("SBM-large", options={"num_nodes": 3000, "seed": 2})
    assert ds.graphs[0].num_nodes == 3000 and ds.num_features == 128 and ds.out_dim == 10
    assert ds.schema.details["num_nodes"] == 3000 and "synthetic SBM" in ds.notes[0]
    with pytest.raises(ConfigError, match="num_nodes"):
        load_dataset("SBM-large", options={"nodes": 10})
