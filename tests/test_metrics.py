import math

import pytest
import torch

from gnnformer.tasks import get_task
from gnnformer.tasks.metrics import accuracy, mae, multitask_roc_auc, roc_auc, thresholded_roc_auc


def test_roc_auc_hand_computed():
    # Positives score 0.9 and 0.4, negatives 0.5 and 0.1: of the 4 (pos, neg) pairs, 3 are ranked
    # correctly (0.9>0.5, 0.9>0.1, 0.4>0.1) and one is not (0.4<0.5) -> AUC = 3/4.
    scores = torch.tensor([0.9, 0.5, 0.4, 0.1])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert roc_auc(scores, y) == pytest.approx(0.75)


def test_thresholded_roc_auc_is_the_balanced_accuracy_of_the_hard_predictions():
    # 3 positives (0.9, 0.6, 0.2) and 4 negatives (0.7, 0.4, 0.3, 0.1). Above 0.5: 2 of 3 positives
    # (TPR 2/3) and 1 of 4 negatives (TNR 3/4): (2/3 + 3/4) / 2 = 17/24. The same probabilities
    # rank 8 of the 12 (pos, neg) pairs correctly: ROC-AUC 8/12, a different number.
    p = torch.tensor([0.9, 0.6, 0.2, 0.7, 0.4, 0.3, 0.1])
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    assert thresholded_roc_auc(p, y) == pytest.approx(17 / 24)
    assert roc_auc(p, y) == pytest.approx(8 / 12)
    # every probability on one side of 0.5: one class predicted for all, 1/2 whatever the ranking
    assert thresholded_roc_auc(p * 0.5, y) == pytest.approx(0.5)
    assert math.isnan(thresholded_roc_auc(p, torch.ones(7)))


def test_roc_auc_ties_count_half():
    # One positive and one negative with the same score: the pair counts 1/2.
    assert roc_auc(torch.tensor([0.3, 0.3]), torch.tensor([1.0, 0.0])) == pytest.approx(0.5)
    # pos {0.8, 0.3}, neg {0.3, 0.1}: pairs 1 + 1 + 0.5 + 1 = 3.5 of 4
    s = torch.tensor([0.8, 0.3, 0.3, 0.1])
    assert roc_auc(s, torch.tensor([1.0, 1.0, 0.0, 0.0])) == pytest.approx(3.5 / 4)


def test_roc_auc_single_class_and_nan_labels():
    assert math.isnan(roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1.0, 1.0])))
    # NaN labels are ignored, leaving the hand case above
    s = torch.tensor([0.9, 0.5, 0.7, 0.4, 0.1])
    y = torch.tensor([1.0, 0.0, float("nan"), 1.0, 0.0])
    assert roc_auc(s, y) == pytest.approx(0.75)


def test_multitask_roc_auc_skips_undefined_tasks():
    s = torch.tensor([[0.9, 0.2], [0.5, 0.3], [0.4, 0.1], [0.1, 0.6]])
    y = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, float("nan")], [0.0, 1.0]])
    # task 0: 0.75 (as above); task 1 has only positives: undefined, skipped
    assert multitask_roc_auc(s, y) == pytest.approx(0.75)


def test_accuracy_and_mae():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert mae(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 3.0])) == pytest.approx(0.5)


def test_multitask_loss_ignores_missing_labels():
    task = get_task("multitask_binary")
    out = torch.tensor([[0.0, 5.0]])
    y_missing = torch.tensor([[1.0, float("nan")]])
    # Only the first entry counts: BCE(logit 0, label 1) = log 2
    assert task.loss(out, y_missing).item() == pytest.approx(math.log(2))


def test_task_selection_direction():
    assert get_task("graph_classification").better(0.8, 0.7)
    assert get_task("graph_regression").better(0.3, 0.4)
    assert not get_task("graph_regression").better(0.5, 0.4)


def _pairwise_auc(scores, y):
    """The AUC by its definition: the share of (positive, negative) pairs ranked right, ties 1/2."""
    pos = [s for s, t in zip(scores, y) if t == 1]
    neg = [s for s, t in zip(scores, y) if t == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_roc_auc_cross_checked_against_the_pairwise_definition():
    gen = torch.Generator().manual_seed(7)
    for _ in range(25):
        n = int(torch.randint(4, 40, (1,), generator=gen))
        scores = torch.randint(0, 6, (n,), generator=gen).float() / 5  # coarse: many ties
        y = torch.randint(0, 2, (n,), generator=gen).float()
        y[0], y[1] = 0.0, 1.0
        assert roc_auc(scores, y) == pytest.approx(_pairwise_auc(scores.tolist(), y.tolist()))


def test_mse_mae_and_summaries_by_hand():
    from gnnformer.tasks.metrics import mean_std, mse, summarise

    assert mse(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 3.0])) == pytest.approx((0.25 + 0 + 1) / 3)
    assert math.isnan(mse(torch.tensor([]), torch.tensor([])))
    rec = mean_std([0.5, float("nan"), 1.0])
    assert rec == {"mean": 0.75, "std": 0.25, "values": [0.5, None, 1.0]}
    assert mean_std([float("nan")]) == {"mean": None, "std": None, "values": [None]}
    runs = [{"test": {"accuracy": 0.5}}, {"test": {"accuracy": 0.7}}]
    out = summarise(runs, splits=("test",))
    assert out["test_accuracy"]["mean"] == pytest.approx(0.6) and out["test_accuracy"]["std"] == pytest.approx(0.1)
