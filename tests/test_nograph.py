"""Classification without an input graph: the digits dataset, label-budget splits, the feature
kNN graph, the MLP baseline, and the DIFFormer no-graph configs end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from run_helpers import correct_on, load_run

from gnnformer import cli
from gnnformer.datasets import load_dataset, per_class_split
from gnnformer.datasets.instances import knn_graph
from gnnformer.errors import ConfigError, DataError
from gnnformer.models import create_model
from gnnformer.registry import MODELS
import gnnformer.training as T

REPO = Path(__file__).resolve().parents[1]
DIGITS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# ----------------------------------------------------------------------------- the dataset


def test_digits_is_one_edgeless_graph(digits):
    assert digits.task == "node_classification" and len(digits.graphs) == 1
    g = digits.graphs[0]
    assert g.num_nodes == 1797 and tuple(g.x.shape) == (1797, 64)
    assert tuple(g.edge_index.shape) == (2, 0) and g.edge_index.dtype == torch.long
    assert digits.num_features == 64 and digits.out_dim == 10
    assert torch.bincount(g.y).tolist() == DIGITS_COUNTS
    assert float(g.x.min()) == 0.0 and float(g.x.max()) == 1.0  # pixel intensities 0..16, divided by 16
    from sklearn.datasets import load_digits

    raw = load_digits()
    assert torch.equal(g.x[5] * 16, torch.tensor(raw.data[5], dtype=torch.float32))
    assert g.y[5].item() == raw.target[5]


def test_dataset_options_are_checked():
    with pytest.raises(ConfigError, match="takes no options"):
        load_dataset("digits", options={"k": 3})
    with pytest.raises(ConfigError, match="Its options are: k"):
        load_dataset("digits-knn", options={"neighbours": 3})
    with pytest.raises(ConfigError, match="integer"):
        load_dataset("digits-knn", options={"k": "many"})
    with pytest.raises(ConfigError, match="takes no options"):
        load_dataset("MUTAG", options={"k": 3})


# ----------------------------------------------------------------------------- kNN graph


def test_knn_graph_on_points_of_a_line():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    # nearest other point: 0 -> 1, 1 -> 0 (1 < 2), 3 -> 1 (2 < 4), 7 -> 3; edges run neighbour -> node
    directed = knn_graph(x, 1, symmetric=False)
    assert directed.tolist() == [[0, 1, 1, 2], [1, 0, 2, 3]]
    sym = knn_graph(x, 1)
    assert sym.tolist() == [[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]
    two = knn_graph(x, 2, symmetric=False)  # 0: {1, 2}; 1: {0, 2}; 2: {1, 0}; 3: {2, 1}
    assert sorted(zip(*two.tolist())) == sorted([(1, 0), (2, 0), (0, 1), (2, 1), (1, 2), (0, 2), (2, 3), (1, 3)])


def test_knn_graph_ties_go_to_the_lower_index():
    x = torch.tensor([[0.0], [1.0], [-1.0], [5.0]])  # 1 and 2 are both at distance 1 from node 0
    assert knn_graph(x, 1, symmetric=False).tolist() == [[0, 0, 1, 1], [1, 2, 0, 3]]


def test_knn_graph_matches_scikit_learn_and_chunking():
    from sklearn.neighbors import kneighbors_graph

    x = torch.randn(60, 5, generator=torch.Generator().manual_seed(1))
    ref = kneighbors_graph(x.numpy(), 4, mode="connectivity", include_self=False).tocoo()
    ours = knn_graph(x, 4, symmetric=False, chunk=7)  # several row blocks
    # scikit-learn's row i lists i's neighbours j; ours has the edge j -> i.
    assert set(zip(ref.col.tolist(), ref.row.tolist())) == set(zip(*ours.tolist()))
    with pytest.raises(ConfigError):
        knn_graph(x, 60)


def test_digits_knn_graph_is_symmetric_without_self_loops():
    ds = load_dataset("digits-knn", options={"k": 3})
    g = ds.graphs[0]
    src, dst = g.edge_index
    assert not bool((src == dst).any())
    pairs = set(zip(src.tolist(), dst.tolist()))
    assert all((d, s) in pairs for s, d in pairs) and len(pairs) == src.numel()
    assert int(torch.bincount(dst, minlength=1797).min()) >= 3
    assert torch.equal(g.x, load_dataset("digits").graphs[0].x)


# ----------------------------------------------------------------------------- label budgets


def test_per_class_split_counts_and_sizes(digits):
    y = digits.graphs[0].y
    for k in (10, 50, 100):
        s = per_class_split(y, k, seed=3, num_val=300, num_test=None)
        assert torch.bincount(y[s.train], minlength=10).tolist() == [k] * 10
        assert len(s.val) == 300 and len(s.test) == 1797 - 10 * k - 300
        everything = torch.cat([s.train, s.val, s.test])
        assert everything.unique().numel() == everything.numel() == 1797  # disjoint and complete
    s = per_class_split(y, 20, seed=0, num_val=500, num_test=1000)
    assert s.sizes() == (200, 500, 1000)


def test_per_class_split_is_seeded():
    y = torch.arange(40) % 4
    a, b, c = (per_class_split(y, 3, seed=s, num_val=5, num_test=5) for s in (7, 7, 8))
    assert all(torch.equal(getattr(a, p), getattr(b, p)) for p in ("train", "val", "test"))
    assert not torch.equal(a.train, c.train)
    assert a.train.tolist() == sorted(a.train.tolist())


def test_per_class_split_errors():
    y = torch.tensor([0] * 5 + [1] * 2)
    with pytest.raises(DataError, match="Class 1 has 2 nodes"):
        per_class_split(y, 3, seed=0, num_val=1, num_test=1)
    with pytest.raises(DataError, match="left"):
        per_class_split(y, 2, seed=0, num_val=2, num_test=2)
    with pytest.raises(ConfigError):
        per_class_split(y, 0, seed=0)


def test_unlabelled_nodes_are_never_drawn():
    y = torch.tensor([0, 0, 0, 1, 1, 1, -1, -1])
    s = per_class_split(y, 1, seed=0, num_val=2, num_test=None)
    assert not set(torch.cat([s.train, s.val, s.test]).tolist()) & {6, 7}


def test_per_class_is_refused_for_graph_datasets():
    cfg = T.config_from_mapping({"model": "gin", "dataset": "MUTAG", "split": "per_class", "epochs": 1})
    with pytest.raises(ConfigError, match="one graph"):
        T.make_splits(cfg, T.prepare(cfg))
    with pytest.raises(ConfigError, match="split must be"):
        T.config_from_mapping({"split": "per-class"})


# ----------------------------------------------------------------------------- MLP baseline


def test_mlp_ignores_edges(digits):
    model = create_model("mlp", in_channels=64, out_channels=10, level="node", layers=2).eval()
    g = digits.graphs[0]
    with_edges = g.clone()
    with_edges.edge_index = knn_graph(g.x, 5)
    assert torch.equal(model(g), model(with_edges))
    assert tuple(model(g).shape) == (1797, 10)


# ----------------------------------------------------------------------------- end to end


def _train_config(name: str, tmp_path: Path, *extra: str) -> tuple[dict, dict, torch.nn.Module]:
    out = tmp_path / name
    code = cli.main(["train", "--config", str(REPO / "configs" / "difformer" / f"{name}.yaml"), "--epochs", "2",
                     "--quiet", "--out", str(out), "runs=1", *extra])
    assert code == 0
    return load_run(out)


@pytest.mark.parametrize("name", ["digits_mlp", "digits_gcn_knn", "digits_difformer_s", "digits_difformer_a"])
def test_digits_configs_train_with_ten_labels_per_class(name, tmp_path, digits):
    values = yaml.safe_load((REPO / "configs" / "difformer" / f"{name}.yaml").read_text())
    if values["model"] not in MODELS:
        pytest.skip(f"model {values['model']} is not registered")
    metrics, ckpt, model = _train_config(name, tmp_path, "model.layers=1", "model.hidden=16")
    assert metrics["protocol"].startswith("10 training nodes per class, 300 validation, the rest test")
    split = {k: torch.tensor(v) for k, v in ckpt["split"].items()}
    y = digits.graphs[0].y
    assert torch.bincount(y[split["train"]], minlength=10).tolist() == [10] * 10
    assert len(split["val"]) == 300 and len(split["test"]) == 1797 - 100 - 300
    # One forward of the saved model over the whole graph, counted by hand on the stored test nodes.
    dataset = load_dataset(values["dataset"], options=values.get("dataset_args"))
    assert correct_on(model, dataset.graphs[0], split["test"]) == \
        round(metrics["test_accuracy"]["mean"] * len(split["test"]))
    # Same seed, same labelled nodes, whatever the model: the comparison is on equal terms.
    assert split["train"].tolist() == per_class_split(y, 10, seed=0, num_val=300, num_test=None).train.tolist()
    if values["model"].startswith("difformer"):
        assert values["model_args"]["use_graph"] is False


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "configs" / "difformer").glob("*.yaml")
                                        if p.stem.startswith(("digits_", "chickenpox_", "covid_"))),
                         ids=lambda p: p.stem)
def test_setting_configs_are_valid(path):
    """Every DIFFormer setting 3/4 config parses, and its model options fit its model."""
    from gnnformer.models import model_config

    values = yaml.safe_load(path.read_text())
    if values["model"] not in MODELS:
        pytest.skip(f"model {values['model']} is not registered")
    cfg = T.config_from_mapping(values)
    level_task = "node_classification" if path.stem.startswith("digits_") else "node_regression"
    assert cfg.runs == 5
    model_config(cfg.model, in_channels=4, out_channels=1, level="node", **cfg.model_args)
    if level_task == "node_classification":
        assert cfg.split == "per_class" and cfg.per_class == 10 and cfg.num_test is None
    else:
        assert cfg.split == "auto" and "lags" in cfg.dataset_args
