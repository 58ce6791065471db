import json
from pathlib import Path

import pytest
import torch

from gnnformer.errors import ConfigError
import gnnformer.training as T
from gnnformer.datasets import train_subset
from gnnformer.config import apply_overrides
from gnnformer.models import create_model
from gnnformer.training import config_from_mapping, run_experiment


def test_overrides_and_config_validation():
    values = apply_overrides({"model": "gin"}, ["lr=1e-2", "model.hidden=32", "model.local=gine", "epochs=3"])
    assert values == {"model": "gin", "lr": 0.01, "epochs": 3, "model_args": {"hidden": 32, "local": "gine"}}
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["lr"])
    with pytest.raises(ConfigError, match="Unknown setting.*colour"):
        config_from_mapping({"colour": 1})
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        config_from_mapping({"epochs": "many"})
    with pytest.raises(ConfigError, match="folds"):
        config_from_mapping({"folds": 1})
    with pytest.raises(ConfigError, match="Unknown model"):
        config_from_mapping({"model": "bogus"})


def test_train_writes_outputs_and_is_deterministic(tmp_path):
    cfg = config_from_mapping({"model": "gin", "dataset": "MUTAG", "epochs": 3, "runs": 2})
    m1 = run_experiment(cfg, tmp_path / "a", progress=False)
    m2 = run_experiment(cfg, tmp_path / "b", progress=False)
    for key in ("test_accuracy", "val_accuracy", "test_roc_auc"):
        assert m1[key]["values"] == m2[key]["values"]
        assert len(m1[key]["values"]) == 2
    written = json.loads((tmp_path / "a" / "metrics.json").read_text())
    acc = written["test_accuracy"]
    assert acc["mean"] == pytest.approx(sum(acc["values"]) / 2)
    assert acc["std"] == pytest.approx(abs(acc["values"][0] - acc["values"][1]) / 2)
    assert (tmp_path / "a" / "config.yaml").read_text().startswith("model: gin")
    assert (tmp_path / "a" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "a" / "best.pt").stat().st_size > 1000


def test_selection_never_looks_at_test(tmp_path, monkeypatch):
    seen = []
    real = T.Evaluator.evaluate

    def spy(self, model, idx):
        seen.append(idx.clone())
        return real(self, model, idx)

    monkeypatch.setattr(T.Evaluator, "evaluate", spy)
    cfg = config_from_mapping({"model": "gin", "dataset": "MUTAG", "epochs": 4})
    run_experiment(cfg, tmp_path, progress=False)
    # 4 validation evaluations during training, then train/val/test once with the selected weights.
    assert len(seen) == 4 + 3
    val, test = seen[0], seen[-1]
    assert all(torch.equal(s, val) for s in seen[:4])
    assert not set(test.tolist()) & set(val.tolist())


def test_kfold_runs_cover_dataset(tmp_path):
    cfg = config_from_mapping({"model": "gin", "dataset": "MUTAG", "epochs": 1, "folds": 3})
    m = run_experiment(cfg, tmp_path, progress=False)
    assert m["runs"] == 3 and "3-fold" in m["protocol"]
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert len(ckpt["split"]["test"]) in (62, 63)


@pytest.mark.parametrize("model", ["gcn", "sage"])
def test_node_classification_public_split(tmp_path, model):
    cfg = config_from_mapping({"model": model, "dataset": "Cora", "epochs": 2})
    m = run_experiment(cfg, tmp_path, progress=False)
    assert m["protocol"].startswith("Planetoid public split")
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert [len(ckpt["split"][k]) for k in ("train", "val", "test")] == [140, 500, 1000]
    assert 0.0 <= m["test_accuracy"]["mean"] <= 1.0


def test_early_stopping_after_patience(monkeypatch):
    with pytest.raises(ConfigError):
        config_from_mapping({"lr": 0.0})
    cfg = config_from_mapping({"model": "gin", "dataset": "MUTAG", "epochs": 50, "patience": 3})
    prep = T.prepare(cfg)
    split = T.make_splits(cfg, prep)[0][1]
    # A validation score that never improves: training must stop 3 epochs after the first.
    monkeypatch.setattr(T.Evaluator, "evaluate", lambda self, model, idx: {"accuracy": 0.5, "loss": 1.0})
    _, history, results = T.train_one(cfg, prep, split, seed=0)
    assert len(history) == 4
    assert results["best_epoch"] == 1


def test_typed_settings_from_text():
    # YAML 1.1 reads "1e-3" as text; settings still take it as the number it is.
    cfg = config_from_mapping({"lr": "1e-3", "epochs": "7", "model_args": {"hidden": "32", "dropout": "0.5"}})
    assert cfg.lr == 0.001 and cfg.epochs == 7
    from gnnformer.models import model_config

    mcfg = model_config("gin", in_channels=3, out_channels=2, **cfg.model_args)
    assert mcfg.hidden == 32 and mcfg.dropout == 0.5
    with pytest.raises(ConfigError, match="hidden must be an integer, got 'wide'"):
        model_config("gin", in_channels=3, out_channels=2, hidden="wide")
    with pytest.raises(ConfigError, match="epochs must be an integer, got 2.5"):
        config_from_mapping({"epochs": 2.5})
    with pytest.raises(ConfigError, match="model_args must be a mapping"):
        config_from_mapping({"model_args": [1, 2]})


# --------------------------------------------------------------------------------------------
# Size-bucketed batches, low-resource training, node classification over many graphs


def _small_gps(**extra):
    return {"model": "gps", "dataset": "MUTAG", "batch_size": 16,
            "model_args": {"hidden": 16, "layers": 2, "heads": 2, "lap_pe": 0, "rwse": 0}, **extra}


def test_bucketed_evaluation_returns_outputs_in_index_order():
    from torch_geometric.data import Batch

    from gnnformer.models import create_model

    cfg = config_from_mapping(_small_gps())
    prep = T.prepare(cfg)
    torch.manual_seed(0)
    model = create_model(cfg.model, **prep.model_cfg).eval()
    idx = torch.randperm(len(prep.graphs), generator=torch.Generator().manual_seed(0))[:100]
    bucketed = T.Evaluator(prep, 16, torch.device("cpu"), bucket=True)
    plain = T.Evaluator(prep, 16, torch.device("cpu"), bucket=False)
    assert [len(b) for b in bucketed.batch_order(idx)] != [] and not torch.equal(
        torch.cat(bucketed.batch_order(idx)), torch.arange(100))  # really ran in another order
    out_b, y_b = bucketed.outputs(model, idx)
    out_p, y_p = plain.outputs(model, idx)
    assert torch.equal(y_b, prep.dataset.labels[idx]) and torch.equal(y_p, y_b)
    torch.testing.assert_close(out_b, out_p, rtol=1e-5, atol=1e-5)
    for row in (0, 37, 99):  # and each row is that graph's own output
        alone = model(Batch.from_data_list([prep.graphs[int(idx[row])]]))
        torch.testing.assert_close(out_b[row:row + 1], alone, rtol=1e-5, atol=1e-5)
    assert bucketed.evaluate(model, idx) == pytest.approx(plain.evaluate(model, idx), abs=1e-6)


def test_training_loader_buckets_by_size_unless_disabled(monkeypatch):
    from gnnformer.training.sampler import SizeBucketSampler, attention_cells

    cfg = config_from_mapping(_small_gps())
    prep = T.prepare(cfg)
    split = T.make_splits(cfg, prep)[0][1]
    gen = torch.Generator().manual_seed(0)
    loader = T.Evaluator(prep, 16, torch.device("cpu"), bucket=True).loader(split.train, shuffle=True, generator=gen)
    assert isinstance(loader.batch_sampler, SizeBucketSampler)
    sizes = prep.sizes[split.train]
    batches = loader.batch_sampler.batches()
    assert sorted(torch.cat(batches).tolist()) == list(range(len(split.train)))
    bucketed, needed = attention_cells(sizes, batches)
    random_batches, _ = attention_cells(sizes, torch.randperm(len(sizes), generator=gen).split(16))
    assert bucketed < random_batches and bucketed < 1.3 * needed
    assert sum(b.num_graphs for b in loader) == len(split.train)
    plain = T.Evaluator(prep, 16, torch.device("cpu"), bucket=False).loader(split.train, shuffle=True, generator=gen)
    assert not isinstance(plain.batch_sampler, SizeBucketSampler)
    assert config_from_mapping({}).bucket is False and config_from_mapping({"bucket": True}).bucket is True
    # Only models that pad batches for dense attention get size buckets in training.
    assert prep.dense_attention and not T.prepare(config_from_mapping({"model": "gin"})).dense_attention
    made = []
    real_init = T.Evaluator.__init__

    def spy(self, prep, batch_size, device, bucket=True, **kwargs):
        made.append(bucket)
        real_init(self, prep, batch_size, device, bucket, **kwargs)

    monkeypatch.setattr(T.Evaluator, "__init__", spy)
    for model, args in (("gin", {"hidden": 16}), ("gps", _small_gps()["model_args"])):
        for bucket in (False, True):
            cfg_m = config_from_mapping({**_small_gps(epochs=1), "model": model, "model_args": args, "bucket": bucket})
            T.train_one(cfg_m, T.prepare(cfg_m), split, seed=0)
    assert made == [False, False, False, True]
    with pytest.raises(ConfigError, match="bucket must be true or false"):
        config_from_mapping({"bucket": "yes please"})


def test_train_fraction_is_a_seeded_stratified_subset(tmp_path):
    with pytest.raises(ConfigError, match="train_fraction"):
        config_from_mapping({"train_fraction": 0.0})
    with pytest.raises(ConfigError, match="train_fraction"):
        config_from_mapping({"train_fraction": 1.5})
    full_cfg = config_from_mapping({"model": "gin", "dataset": "MUTAG", "runs": 2})
    cfg = config_from_mapping({"model": "gin", "dataset": "MUTAG", "runs": 2, "train_fraction": 0.1})
    prep = T.prepare(cfg)
    labels = prep.dataset.labels
    full, low = T.make_splits(full_cfg, prep), T.make_splits(cfg, prep)
    assert all(torch.equal(a[1].train, b[1].train) for a, b in zip(low, T.make_splits(cfg, prep)))  # deterministic
    for (seed, f), (seed_low, s) in zip(full, low):
        assert seed == seed_low
        assert torch.equal(s.val, f.val) and torch.equal(s.test, f.test)  # only training shrinks
        assert set(s.train.tolist()) <= set(f.train.tolist()) and torch.equal(s.train, s.train.sort().values)
        for c in (0, 1):  # each class keeps about 10% of its training graphs
            assert int((labels[s.train] == c).sum()) == max(1, round(0.1 * int((labels[f.train] == c).sum())))
    assert not torch.equal(low[0][1].train, low[1][1].train)  # another seed, another subset
    # Without class labels (regression, multi-task): a plain seeded random subset.
    idx = torch.arange(100, 300)
    sub = train_subset(idx, 0.05, seed=3)
    assert sub.numel() == 10 and torch.equal(sub, train_subset(idx, 0.05, seed=3))
    assert torch.equal(train_subset(idx, 1.0, seed=3), idx)

    m = run_experiment(config_from_mapping({"model": "gin", "dataset": "MUTAG", "epochs": 1, "train_fraction": 0.1}),
                       tmp_path, progress=False)
    assert "0.1 of each training split" in m["protocol"]
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert len(ckpt["split"]["train"]) == len(low[0][1].train) == 15


def test_train_fraction_on_a_single_graph_stratifies_nodes():
    cfg = config_from_mapping({"model": "gcn", "dataset": "Cora", "train_fraction": 0.5})
    prep = T.prepare(cfg)
    split = T.make_splits(cfg, prep)[0][1]
    assert split.sizes() == (70, 500, 1000)
    assert torch.equal(torch.bincount(prep.graphs[0].y[split.train]), torch.full((7,), 10))


def _multi_graph_node_dataset(num_graphs=40, fixed_split=None):
    from torch_geometric.data import Data

    from gnnformer.datasets import FeatureSchema, GraphDataset

    gen = torch.Generator().manual_seed(0)
    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(4, 13, (1,), generator=gen))
        y = torch.randint(0, 3, (n,), generator=gen)
        x = torch.nn.functional.one_hot(y, 3).float() + 0.3 * torch.randn(n, 3, generator=gen)
        src = torch.arange(n)
        ei = torch.stack([torch.cat([src, (src + 1) % n]), torch.cat([(src + 1) % n, src])])  # a ring
        graphs.append(Data(x=x, edge_index=ei, y=y, num_nodes=n))
    schema = FeatureSchema(kind="synthetic", num_node_features=3, num_edge_features=0, description="noisy one-hot label")
    return GraphDataset(name="rings", task="node_classification", graphs=graphs, num_features=3, num_edge_features=0,
                        out_dim=3, schema=schema, root=Path("."), fixed_split=fixed_split)


def test_node_classification_over_many_graphs(tmp_path):
    from gnnformer.datasets import Split

    ds = _multi_graph_node_dataset()
    cfg = config_from_mapping({"model": "gps", "dataset": "rings", "epochs": 8, "lr": 0.01, "batch_size": 8,
                               "model_args": {"hidden": 16, "layers": 2, "heads": 2, "lap_pe": 0, "rwse": 0}})
    m = run_experiment(cfg, tmp_path, progress=False, dataset=ds)
    assert "split over graphs" in m["protocol"]
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    split = {k: torch.tensor(v) for k, v in ckpt["split"].items()}
    assert [len(split[k]) for k in ("train", "val", "test")] == [32, 4, 4]  # graphs, not nodes
    assert m["train_accuracy"]["mean"] > 0.8  # one output per node, learnt from its features

    # Outputs: one row per node of the given graphs, in the given order, whatever the batching.
    prep = T.prepare(cfg, ds)
    model = create_model(cfg.model, **prep.model_cfg)
    model.load_state_dict(ckpt["state_dict"])
    idx = torch.tensor([7, 2, 30, 11, 5, 19, 0])
    out, y = T.Evaluator(prep, 3, torch.device("cpu"), bucket=True).outputs(model, idx)
    out_plain, _ = T.Evaluator(prep, 3, torch.device("cpu"), bucket=False).outputs(model, idx)
    assert torch.equal(y, torch.cat([ds.graphs[i].y for i in idx.tolist()]))
    torch.testing.assert_close(out, out_plain, rtol=1e-5, atol=1e-5)
    assert out.shape == (y.numel(), 3)

    # A split the dataset prescribes is used (split=auto/public); split=random overrides it.
    fixed = Split(train=torch.arange(0, 30), val=torch.arange(30, 35), test=torch.arange(35, 40))
    prep_fixed = T.prepare(cfg, _multi_graph_node_dataset(fixed_split=fixed))
    assert T.make_splits(cfg, prep_fixed)[0][1] is fixed
    random_cfg = config_from_mapping({**cfg.to_dict(), "split": "random"})
    assert T.make_splits(random_cfg, prep_fixed)[0][1].sizes() == (32, 4, 4)
    with pytest.raises(ConfigError, match="Stratified folds"):
        T.make_splits(config_from_mapping({**cfg.to_dict(), "folds": 3}), prep)
