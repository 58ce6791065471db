"""Spatiotemporal series as next-step node regression: windows, chronological split without
leakage, training-period scaling, the files (built-in, shared, missing), the MSE task, end to end."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnformer import cli
from gnnformer.datasets import load_dataset
from gnnformer.datasets.temporal import build_series, chronological_split, training_scale, windows
from gnnformer.errors import ConfigError, DataError
from gnnformer.paths import EMBEDDED_ROOT
from gnnformer.tasks import get_task
from gnnformer.tasks import metrics as M

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("GNNFORMER_OFFLINE", "1")


def _series(T=20, N=3):
    """values[t, n] = 10 t + n: every entry says where it came from."""
    return np.array([[10.0 * t + n for n in range(N)] for t in range(T)])


def _graphs(T, N=3):
    """A different graph every step: step t joins node t % N to node (t + 1) % N."""
    return ([torch.tensor([[t % N], [(t + 1) % N]]) for t in range(T)],
            [torch.tensor([float(t)]) for t in range(T)])


# ----------------------------------------------------------------------------- windows


def test_windows_against_hand_indexed_values():
    v = _series(T=6, N=3)
    x, y, steps = windows(v, lags=2)
    assert steps.tolist() == [2, 3, 4, 5] and x.shape == (4, 3, 2) and y.shape == (4, 3)
    assert x[0].tolist() == [[0, 10], [1, 11], [2, 12]]  # node n: values at steps 0 and 1, oldest first
    assert y[0].tolist() == [20, 21, 22]
    assert x[3].tolist() == [[30, 40], [31, 41], [32, 42]] and y[3].tolist() == [50, 51, 52]
    with pytest.raises(ConfigError):
        windows(v, lags=6)


def test_chronological_split_counts_and_order():
    s = chronological_split(10)
    assert (s.train.tolist(), s.val.tolist(), s.test.tolist()) == (list(range(8)), [8], [9])
    assert chronological_split(517).sizes() == (413, 52, 52)
    with pytest.raises(DataError):
        chronological_split(2)


def test_series_graphs_windows_edges_and_split():
    T, lags = 20, 3
    v = _series(T)
    edges, weights = _graphs(T)
    ds = build_series("toy", v, edges, weights, lags, "toy.json", Path("."))
    assert len(ds.graphs) == T - lags and ds.task == "node_regression" and ds.num_features == lags
    split = ds.fixed_split
    assert split.sizes() == (13, 2, 2)  # 17 steps: 13.6 / 1.7 / 1.7, largest remainders round up
    mean, std = training_scale(v, lags + 12)
    for i, g in enumerate(ds.graphs):
        t = i + lags
        assert int(g.step) == t
        want_x = (v[t - lags:t] - mean) / std
        assert torch.allclose(g.x, torch.tensor(want_x.T, dtype=torch.float32))
        assert torch.allclose(g.y, torch.tensor((v[t] - mean) / std, dtype=torch.float32))
        assert torch.equal(g.edge_index, edges[t - 1]) and float(g.edge_weight) == t - 1  # last observed graph
        assert torch.allclose(g.x * g.scale_std[:, None] + g.scale_mean[:, None],
                              torch.tensor(v[t - lags:t].T, dtype=torch.float32))
    train_steps = [int(ds.graphs[i].step) for i in split.train]
    val_steps = [int(ds.graphs[i].step) for i in split.val]
    test_steps = [int(ds.graphs[i].step) for i in split.test]
    assert max(train_steps) < min(val_steps) and max(val_steps) < min(test_steps)


def test_no_future_leakage_into_training_graphs():
    """Changing every value after the last training target leaves the training graphs (their
    inputs, targets and scaling) exactly as they were."""
    T, lags = 30, 4
    v = _series(T)
    edges, weights = _graphs(T)
    a = build_series("toy", v, edges, weights, lags, "toy.json", Path("."))
    last_train_step = lags + int(a.fixed_split.train[-1])
    future = v.copy()
    future[last_train_step + 1:] = np.random.default_rng(0).normal(size=future[last_train_step + 1:].shape) * 1e3
    b = build_series("toy", future, edges, weights, lags, "toy.json", Path("."))
    for i in a.fixed_split.train.tolist():
        assert torch.equal(a.graphs[i].x, b.graphs[i].x) and torch.equal(a.graphs[i].y, b.graphs[i].y)
    assert torch.equal(a.graphs[0].scale_mean, b.graphs[0].scale_mean)
    first_val = a.fixed_split.val[0].item()
    assert not torch.equal(a.graphs[first_val].y, b.graphs[first_val].y)  # the future does differ


def test_training_scale_by_hand():
    v = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, -7.0]])
    mean, std = training_scale(v, 1)  # steps 0..1 only
    assert mean.tolist() == [2.0, 5.0] and std.tolist() == [1.0, 1.0]  # constant node: std 1, centred only


def test_lags_option():
    assert load_dataset("chickenpox", options={"lags": 8}).num_features == 8
    with pytest.raises(ConfigError, match="lags"):
        load_dataset("chickenpox", options={"lags": 0})
    with pytest.raises(ConfigError, match="integer"):
        load_dataset("chickenpox", options={"lags": "four"})
    with pytest.raises(ConfigError, match="Its options are: lags"):
        load_dataset("chickenpox", options={"window": 4})


# ----------------------------------------------------------------------------- files


def test_chickenpox_is_built_in_and_matches_the_file():
    ds = load_dataset("chickenpox")
    raw = json.loads((EMBEDDED_ROOT / "temporal" / "chickenpox.json").read_text())
    fx = np.array(raw["FX"])
    assert fx.shape == (521, 20) and len(ds.graphs) == 517 and ds.fixed_split.sizes() == (413, 52, 52)
    # Training targets are steps 4..416: statistics from steps 0..416.
    mean, std = fx[:417].mean(0), fx[:417].std(0)
    g = ds.graphs[100]  # predicts week 104 from weeks 100..103
    assert int(g.step) == 104
    assert torch.allclose(g.x, torch.tensor(((fx[100:104] - mean) / std).T, dtype=torch.float32), atol=1e-6)
    assert torch.allclose(g.y, torch.tensor((fx[104] - mean) / std, dtype=torch.float32), atol=1e-6)
    assert g.edge_index.tolist() == np.array(raw["edges"]).T.tolist() and g.edge_index.size(1) == 102


def test_england_covid_from_the_shared_root(shared_root):
    ds = load_dataset("england-covid", str(shared_root))
    raw = json.loads((shared_root / "temporal" / "england_covid.json").read_text())
    y = np.array(raw["y"], dtype=float)
    assert len(ds.graphs) == 61 - 8 and ds.num_features == 8 and ds.fixed_split.sizes() == (43, 5, 5)
    last_train_step = 8 + 42
    mean, std = y[:last_train_step + 1].mean(0), y[:last_train_step + 1].std(0)
    std = np.where(std > 1e-12, std, 1.0)
    g = ds.graphs[10]  # predicts day 18 from days 10..17, on the graph of day 17
    assert int(g.step) == 18
    assert torch.allclose(g.y, torch.tensor((y[18] - mean) / std, dtype=torch.float32), atol=1e-5)
    assert torch.allclose(g.x[:, -1], torch.tensor((y[17] - mean) / std, dtype=torch.float32), atol=1e-5)
    assert g.edge_index.tolist() == np.array(raw["edge_mapping"]["edge_index"]["17"]).T.tolist()
    assert g.edge_weight.tolist() == raw["edge_mapping"]["edge_weight"]["17"]
    assert len({ds.graphs[i].edge_index.size(1) for i in range(len(ds.graphs))}) > 1  # the graph changes


def test_missing_file_error_names_the_place_and_the_download(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("england-covid", str(tmp_path))
    text = str(err.value)
    assert "england_covid.json is missing" in text
    assert str(tmp_path / "temporal") in text
    assert "temporal/england_covid.json" in text
    assert "https://raw.githubusercontent.com/benedekrozemberczki/pytorch_geometric_temporal" in text
    assert "GNNFORMER_OFFLINE" in text
    with pytest.raises(DataError, match="built-in data holds only MUTAG, Cora and the chickenpox"):
        load_dataset("england-covid")


def test_unreadable_file(tmp_path):
    (tmp_path / "temporal").mkdir()
    (tmp_path / "temporal" / "chickenpox.json").write_text('{"edges": [[0, 1]]}')
    with pytest.raises(DataError, match="missing FX"):
        load_dataset("chickenpox", str(tmp_path))
    (tmp_path / "temporal" / "chickenpox.json").write_text("not json")
    with pytest.raises(DataError, match="not a readable JSON"):
        load_dataset("chickenpox", str(tmp_path))


# ----------------------------------------------------------------------------- task and metrics


def test_mse_and_mae_by_hand():
    pred, y = torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([0.0, 2.0, 5.0])
    assert M.mse(pred, y) == pytest.approx(5 / 3)
    assert M.mae(pred, y) == pytest.approx(1.0)
    task = get_task("node_regression")
    assert (task.level, task.monitor, task.mode) == ("node", "mse", "min")
    assert task.loss(pred, y).item() == pytest.approx(5 / 3)
    assert task.metrics(pred, y) == pytest.approx({"mse": 5 / 3, "mae": 1.0})
    assert task.better(0.1, 0.2) and not task.better(0.3, 0.2)


# ----------------------------------------------------------------------------- end to end


def test_chickenpox_config_trains_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "--config", str(REPO / "configs" / "difformer" / "chickenpox_mlp.yaml"), "--epochs", "2",
                     "--quiet", "--out", str(out), "runs=1", "dataset.lags=2"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "node_regression" and metrics["monitor"] == "mse"
    assert "519/" not in metrics["protocol"] and "the dataset's own 415/52/52 split over graphs" in metrics["protocol"]
    assert metrics["test_mse"]["mean"] > 0 and metrics["test_mae"]["mean"] > 0
    ckpt = torch.load(out / "best.pt", weights_only=False)
    assert ckpt["split"]["test"] == list(range(467, 519)) and ckpt["schema"]["details"]["lags"] == 2
    capsys.readouterr()
    assert cli.main(["eval", "--checkpoint", str(out / "best.pt")]) == 0
    line = next(li for li in capsys.readouterr().out.splitlines() if li.strip().startswith("test_mse"))
    now, stored = re.findall(r"[0-9]+\.[0-9]{4}", line)
    assert now == stored == f"{metrics['test_mse']['mean']:.4f}"
