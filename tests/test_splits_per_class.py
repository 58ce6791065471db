"""The per-class label-budget split (20 per class / 500 / 1000, the semi-supervised protocol of
GCN, GAT and DIFFormer's random splits): balance, disjointness, determinism, and the trainer."""
import pytest
import torch

from gnnformer.datasets import load_dataset, per_class_split
from gnnformer.errors import ConfigError, DataError
import gnnformer.training as T


@pytest.fixture(scope="module")
def cora_labels() -> torch.Tensor:
    return load_dataset("Cora").graphs[0].y  # 7 classes, 180..818 nodes each


def test_per_class_split_is_class_balanced_disjoint_and_sized(cora_labels):
    split = per_class_split(cora_labels, 20, seed=0)
    assert split.sizes() == (140, 500, 1000)
    assert torch.equal(torch.bincount(cora_labels[split.train], minlength=7), torch.full((7,), 20))
    joined = torch.cat([split.train, split.val, split.test])
    assert joined.unique().numel() == joined.numel()  # disjoint
    for part in (split.train, split.val, split.test):
        assert part.dtype == torch.long and torch.equal(part, part.sort().values)
    # Validation and test are drawn at random from the rest, not per class.
    assert torch.bincount(cora_labels[split.test], minlength=7).max() > 2 * torch.bincount(
        cora_labels[split.test], minlength=7).min()


def test_per_class_split_is_deterministic_and_seeded(cora_labels):
    a, b, c = (per_class_split(cora_labels, 20, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(x, y) for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test)))
    assert not torch.equal(a.train, c.train) and not torch.equal(a.test, c.test)
    before = torch.get_rng_state()
    per_class_split(cora_labels, 20, seed=5)
    assert torch.equal(before, torch.get_rng_state())  # the global RNG is left alone


def test_per_class_split_rest_as_test_and_unlabelled_nodes():
    labels = torch.tensor([0] * 10 + [1] * 10 + [-1] * 5)
    split = per_class_split(labels, 3, seed=0, num_val=4, num_test=None)
    assert split.sizes() == (6, 4, 10)
    assert (labels[torch.cat([split.train, split.val, split.test])] >= 0).all()  # -1 never chosen


def test_per_class_split_errors():
    labels = torch.tensor([0] * 10 + [1] * 3)
    with pytest.raises(DataError, match="fewer than per_class"):
        per_class_split(labels, 5, seed=0, num_val=1, num_test=1)
    with pytest.raises(DataError, match="need"):
        per_class_split(labels, 2, seed=0, num_val=5, num_test=5)
    with pytest.raises(ConfigError):
        per_class_split(labels, 0, seed=0)


def test_trainer_draws_one_per_class_split_per_seed():
    cfg = T.config_from_mapping({"model": "difformer-s", "dataset": "Cora", "split": "per_class", "runs": 2,
                                 "seed": 7})
    prep = T.prepare(cfg)
    (s0, a), (s1, b) = T.make_splits(cfg, prep)
    assert (s0, s1) == (7, 8) and a.sizes() == b.sizes() == (140, 500, 1000)
    assert not torch.equal(a.train, b.train)
    assert "20 training nodes per class" in T.describe_protocol(cfg, prep)
    public = T.config_from_mapping({"model": "difformer-s", "dataset": "Cora"})
    assert T.make_splits(public, prep)[0][1].sizes() == (140, 500, 1000)  # Planetoid's own split
