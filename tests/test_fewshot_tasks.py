"""Few-shot tasks and episodes: loading, class balance, no support/query overlap, no test-task leakage."""
import copy

import pytest
import torch

from fewshot_helpers import POOL, make_root, task_labels
from gnnformer.errors import ConfigError, DataError
from gnnformer.fewshot import meta as meta_mod
from gnnformer.fewshot.baseline import multitask_train, train_task_labels
from gnnformer.fewshot.meta import MetaSettings, meta_train
from gnnformer.fewshot.model import create_fewshot_model
from gnnformer.fewshot.tasks import FewShotTask, episode_generator, load_tasks, sample_episode

TINY_MODEL = {"hidden": 16, "layers": 2, "tr_dim": 8, "tr_heads": 2, "token_kernel": 3, "token_stride": 2}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("fsroot"), bad_smiles="C1CC")


@pytest.fixture(scope="module")
def data(root):
    return load_tasks("tox21", str(root), "fewshotmol", invalid="skip")


def test_load_splits_tasks_nine_and_three(data):
    assert len(data.tasks) == 12
    assert [t.index for t in data.train_tasks] == list(range(1, 10))
    assert [t.name for t in data.test_tasks] == ["SR-HSE", "SR-MMP", "SR-p53"]
    assert len(data.molecules) == len(POOL)
    task = data.tasks[4]
    by_smiles = {data.molecules[int(m)].smiles: int(y) for m, y in zip(task.mol_ids, task.labels)}
    assert by_smiles == dict(zip(POOL, task_labels(5)))


def test_invalid_smiles_skipped_with_file_and_line_or_refused(root, data):
    assert "C1CC" in data.notes[0] and "tox21.json:6 (negatives #4)" in data.notes[0]
    with pytest.raises(DataError, match=r"new/1/raw/tox21.json:6 \(negatives #4\): 'C1CC'"):
        load_tasks("tox21", str(root), "fewshotmol", invalid="error")


def test_moleculenet_source_gives_the_same_tasks(root, data):
    csv_data = load_tasks("tox21", str(root), "moleculenet", invalid="skip")
    assert "tox21.csv:32" in csv_data.notes[0]  # the bad row, with its CSV line
    for a, b in zip(data.tasks, csv_data.tasks):
        la = {data.molecules[int(m)].smiles: int(y) for m, y in zip(a.mol_ids, a.labels)}
        lb = {csv_data.molecules[int(m)].smiles: int(y) for m, y in zip(b.mol_ids, b.labels)}
        assert la == lb


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="FewShotMol/sider/new/<i>/raw/sider.json"):
        load_tasks("sider", str(tmp_path))


def _task(n_pos=12, n_neg=30):
    labels = torch.tensor([1] * n_pos + [0] * n_neg)
    return FewShotTask(1, "t", torch.arange(100, 100 + labels.numel()), labels[torch.randperm(labels.numel())])


@pytest.mark.parametrize("shots", [1, 5, 10])
def test_episode_balance_and_no_overlap(shots):
    task = _task()
    ep = sample_episode(task, shots, 16, episode_generator(0, 1, 2))
    assert int(ep.support_labels.sum()) == shots and ep.support.numel() == 2 * shots
    assert ep.query.numel() == 16
    assert not set(ep.support.tolist()) & set(ep.query.tolist())
    assert not set(ep.support_ids.tolist()) & set(ep.query_ids.tolist())
    test = sample_episode(task, shots, None, episode_generator(0, 1, 2))  # meta-test: every other molecule
    assert sorted(test.support.tolist() + test.query.tolist()) == list(range(task.labels.numel()))


def test_episodes_are_reproducible_and_draws_differ():
    task = _task()
    a = sample_episode(task, 5, None, episode_generator(3, 10, 0))
    b = sample_episode(task, 5, None, episode_generator(3, 10, 0))
    c = sample_episode(task, 5, None, episode_generator(3, 10, 1))
    assert torch.equal(a.support, b.support) and not torch.equal(a.support, c.support)


def test_too_few_positives_is_refused():
    with pytest.raises(DataError, match="needs at least 6"):
        sample_episode(_task(n_pos=5), 5, None, episode_generator(0))


def _flip_test_labels(data):
    flipped = copy.copy(data)
    flipped.tasks = [t if i < data.num_train else FewShotTask(t.index, t.name, t.mol_ids, 1 - t.labels)
                     for i, t in enumerate(data.tasks)]
    return flipped


def test_meta_training_never_sees_test_tasks(data, monkeypatch):
    seen = []
    real = meta_mod.sample_episode
    monkeypatch.setattr(meta_mod, "sample_episode", lambda task, *a: seen.append(task.index) or real(task, *a))
    settings = MetaSettings(2, 4, 0, 8, 1, 0.1, True, "head", 1e-3, 1e-3)
    weights = []
    for d in (data, _flip_test_labels(data)):
        torch.manual_seed(0)
        model = create_fewshot_model("fs-gnncvtr", **TINY_MODEL)
        meta_train(model, d, settings, seed=0)
        weights.append(model.state_dict())
    assert set(seen) <= set(range(1, 10)) and len(seen) == 2 * 4 * 9
    for k in weights[0]:  # flipping every test-task label changes nothing
        torch.testing.assert_close(weights[0][k], weights[1][k])


def test_multitask_baseline_never_sees_test_tasks(data):
    ids, labels = train_task_labels(data)
    assert labels.size(1) == 9
    models = []
    for d in (data, _flip_test_labels(data)):
        torch.manual_seed(0)
        models.append(multitask_train(TINY_MODEL, d, steps=3, batch_size=8, lr=1e-3, seed=0).state_dict())
    for k in models[0]:
        torch.testing.assert_close(models[0][k], models[1][k])


def test_real_tox21_and_sider_tasks(shared_root):
    tox = load_tasks("tox21", str(shared_root))
    assert [t.name for t in tox.test_tasks] == ["SR-HSE", "SR-MMP", "SR-p53"] and tox.num_train == 9
    assert tox.tasks[0].num_positives + tox.tasks[0].num_negatives <= 7265
    assert "8 distinct SMILES" in tox.notes[0] and "tox21.json:1 (" in tox.notes[0]
    sider = load_tasks("sider", str(shared_root), "moleculenet")
    assert len(sider.train_tasks) == 21 and len(sider.test_tasks) == 6
    assert sider.test_tasks[0].name == "Renal and urinary disorders"
    assert (sider.tasks[0].num_negatives, sider.tasks[0].num_positives) == (684, 743)


def test_evaluation_draws_are_shared_by_methods_and_query_every_other_molecule(data, monkeypatch):
    from gnnformer.fewshot import evaluation
    from gnnformer.fewshot.meta import AdaptSpec

    drawn = []
    real = evaluation.sample_episode

    def spy(task, shots, query_size, gen):
        ep = real(task, shots, query_size, gen)
        assert query_size is None and ep.support.numel() + ep.query.numel() == task.labels.numel()
        drawn.append((task.index, tuple(ep.support_ids.tolist())))
        return ep

    monkeypatch.setattr(evaluation, "sample_episode", spy)
    cvtr = create_fewshot_model("fs-gnncvtr", **TINY_MODEL)
    gin = create_fewshot_model("fs-gin", **TINY_MODEL)
    a = evaluation.evaluate(cvtr, AdaptSpec("maml", "head", 2, 0.1, 3), data, draws=3, seed=5)
    first = list(drawn)
    b = evaluation.evaluate(gin, AdaptSpec("finetune", "all", 2, 1e-2, 3), data, draws=3, seed=5)
    assert drawn[len(first):] == first and len(first) == 3 * 3
    assert {i for i, _ in first} == {10, 11, 12} and len(set(first)) == 9
    assert set(a) == set(b) == {"roc_auc", "thresholded"}
    assert set(a["roc_auc"]) == set(b["thresholded"]) == {"SR-HSE", "SR-MMP", "SR-p53"}
    assert all(len(v) == 3 for v in a["roc_auc"].values())


def test_the_validation_task_is_held_out_of_meta_training_and_is_never_a_test_task(data, monkeypatch):
    held = data.with_validation(-1)
    assert [t.index for t in held.val_tasks] == [9] and [t.index for t in held.train_tasks] == list(range(1, 9))
    assert [t.index for t in held.test_tasks] == [10, 11, 12]
    assert [t.index for t in data.with_validation(0).val_tasks] == [1]
    assert data.with_validation(None).val_tasks == [] and len(data.with_validation(None).train_tasks) == 9
    for bad in (9, -10):
        with pytest.raises(ConfigError, match="val_task"):
            data.with_validation(bad)
    seen = []
    real = meta_mod.sample_episode
    monkeypatch.setattr(meta_mod, "sample_episode", lambda task, *a: seen.append(task.index) or real(task, *a))
    torch.manual_seed(0)
    meta_train(create_fewshot_model("fs-gin", **TINY_MODEL), held, MetaSettings(2, 3, 0, 8, 1, 0.1, True, "head",
                                                                                   1e-3, 1e-3), seed=0)
    assert set(seen) == set(range(1, 9))


def test_validation_keeps_the_best_scoring_step_and_stops_on_patience(data):
    settings = MetaSettings(2, 10, 2, 8, 1, 0.5, True, "head", 1e-2, 1e-2)
    scores = iter([0.5, 0.6, 0.8, 0.7, 0.75, 0.9])  # scored after steps 0, 2, 4, 6, 8, 10
    snapshots = {}

    def score(model):
        snapshots[len(snapshots) * 2] = {k: v.clone() for k, v in model.state_dict().items()}
        return next(scores)

    torch.manual_seed(0)
    model = create_fewshot_model("fs-gin", **TINY_MODEL)
    check = meta_mod.Validation(score, every=2, patience=2)
    losses = meta_train(model, data, settings, seed=0, validation=check)
    # best at step 4; steps 6 and 8 do not beat it: stopped after 8 outer steps, step 4's weights back
    assert check.steps == [0, 2, 4, 6, 8] and check.scores == [0.5, 0.6, 0.8, 0.7, 0.75]
    assert check.best_step == 4 and len(losses) == 8
    assert not torch.equal(snapshots[4]["head.weight"], snapshots[8]["head.weight"])
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, snapshots[4][k])
