"""`split: file`: a split given as JSON indices, checked, and used for every run of an experiment."""
import json
from pathlib import Path

import pytest
import torch

from gnnformer import cli
from gnnformer.datasets.splits import SplitPlan, plan_splits, read_split_file
from gnnformer.errors import ConfigError, DataError
from gnnformer.training import config_from_mapping
from gnnformer.training.checkpoint import load_checkpoint

SHARED_SPLITS = Path(__file__).resolve().parents[1].parent / "shared" / "splits"


def write(tmp_path, content, name="split.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_split_file_is_read_sorted_and_val_is_taken_for_valid(tmp_path):
    s = read_split_file(write(tmp_path, {"train": [5, 0, 3], "val": [2], "test": [4, 1]}), 6)
    assert s.train.tolist() == [0, 3, 5] and s.val.tolist() == [2] and s.test.tolist() == [1, 4]
    assert s.train.dtype == torch.long


@pytest.mark.parametrize("content, message", [
    ({"train": [0], "valid": [1], "test": [2], "extra": [3]}, "unknown key(s) 'extra'"),
    ({"train": [0], "test": [2]}, "missing 'valid'"),
    ({"train": [0], "valid": [1], "test": [9]}, "'test' holds index 9, out of range for 6 items (0 to 5)"),
    ({"train": [-1], "valid": [1], "test": [2]}, "'train' holds index -1, out of range"),
    ({"train": [0, 1], "valid": [1], "test": [2]}, "index 1 is in both 'train' and 'valid'"),
    ({"train": [0, 0], "valid": [1], "test": [2]}, "index 0 is twice in 'train'"),
    ({"train": [0], "valid": [], "test": [2]}, "'valid' must be a non-empty list"),
    ({"train": [0, 1.5], "valid": [1], "test": [2]}, "'train' holds 1.5; indices are whole numbers"),
    ({"train": [0, True], "valid": [1], "test": [2]}, "'train' holds True"),
    ({"train": [0], "val": [1], "valid": [1], "test": [2]}, "not both"),
    ([0, 1, 2], "expected a JSON object"),
    ("{'train': [0]}", "not a JSON file"),
])
def test_a_bad_split_file_is_refused_naming_the_file(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(DataError) as err:
        read_split_file(path, 6)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_missing_split_file_is_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_split_file(tmp_path / "nope.json", 6)
    with pytest.raises(DataError, match="is a folder; give the JSON file in it"):
        read_split_file(tmp_path, 6)


def test_every_run_uses_the_file_split_and_train_fraction_subsets_it(tmp_path):
    from gnnformer.datasets import load_dataset

    ds = load_dataset("MUTAG")
    graphs = list(ds.graphs)
    path = write(tmp_path, {"train": list(range(0, 150)), "valid": list(range(150, 170)), "test": list(range(170, 188))})
    runs = plan_splits(SplitPlan(split="file", runs=3, seed=7, split_file=str(path)), ds, graphs, False)
    assert [seed for seed, _ in runs] == [7, 8, 9]
    assert all(s.train.tolist() == list(range(150)) and s.test.tolist() == list(range(170, 188)) for _, s in runs)
    low = plan_splits(SplitPlan(split="file", runs=2, split_file=str(path), train_fraction=0.1), ds, graphs, False)
    for _, s in low:
        assert 13 <= len(s.train) <= 17 and set(s.train.tolist()) <= set(range(150))
        assert s.val.tolist() == list(range(150, 170))
    with pytest.raises(ConfigError, match="drop folds"):
        plan_splits(SplitPlan(split="file", folds=5, split_file=str(path)), ds, graphs, False)
    with pytest.raises(DataError, match="out of range for 188 graphs of MUTAG"):
        plan_splits(SplitPlan(split="file", split_file=str(write(tmp_path, {"train": [188], "valid": [1], "test": [2]},
                                                                     "big.json"))), ds, graphs, False)


def test_split_and_split_file_go_together():
    with pytest.raises(ConfigError, match="split=file needs split_file"):
        config_from_mapping({"model": "gin", "dataset": "MUTAG", "split": "file"})
    with pytest.raises(ConfigError, match="split_file is given but split is 'random'"):
        config_from_mapping({"model": "gin", "dataset": "MUTAG", "split": "random", "split_file": "x.json"})


def test_train_with_a_split_file_trains_and_tests_on_its_graphs(tmp_path, capsys):
    test = [3, 40, 77, 120, 150, 187]
    path = write(tmp_path, {"train": [i for i in range(188) if i not in test and i % 10], "valid":
                            [i for i in range(188) if i not in test and not i % 10], "test": test})
    out = tmp_path / "run"
    code = cli.main(["train", "--model", "gin", "--dataset", "MUTAG", "--epochs", "1", "--split-file", str(path),
                     "--out", str(out), "--quiet", "runs=2", "model.hidden=16"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"].startswith("the split of split.json (the same graphs for every run), 2 seed(s)")
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["split"]["test"] == test
    assert ckpt["experiment"]["split_file"] == str(path.resolve())


def test_train_with_a_bad_split_file_exits_2_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, {"train": [0, 1], "valid": [1], "test": [2]})
    out = tmp_path / "run"
    code = cli.main(["train", "--model", "gin", "--dataset", "MUTAG", "--epochs", "1", "--split-file", str(path),
                     "--out", str(out), "--quiet"])
    _, err = capsys.readouterr()
    assert code == 2 and "index 1 is in both 'train' and 'valid'" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="needs ../shared/splits")
@pytest.mark.parametrize("name, sizes, per_class", [("Cora_difformer_seed123.json", (140, 500, 1000), 20),
                                                    ("NCI1_gradformer_seed12344.json", (3288, 411, 411), None)])
def test_the_authors_splits_read_with_their_sizes(name, sizes, per_class):
    n = 2708 if name.startswith("Cora") else 4110
    s = read_split_file(SHARED_SPLITS / name, n)
    assert s.sizes() == sizes
    if per_class:
        from gnnformer.datasets import load_dataset

        root = SHARED_SPLITS.parent / "datasets"
        y = load_dataset("Cora", data_root=str(root)).graphs[0].y
        assert torch.bincount(y[s.train], minlength=7).tolist() == [per_class] * 7
