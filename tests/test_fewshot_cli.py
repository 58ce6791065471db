"""`gnnformer fewshot` end to end on a tiny synthetic root, and `predict --support`."""
import csv
import io
import json

import pytest
import torch

from fewshot_helpers import TINY, make_root
from gnnformer import cli
from gnnformer.fewshot.predict import model_from_fewshot_checkpoint
from gnnformer.training.checkpoint import load_checkpoint, save_checkpoint


def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fewshot_run(tmp_path_factory):
    root = make_root(tmp_path_factory.mktemp("root"), bad_smiles="C1CC")
    out = tmp_path_factory.mktemp("run")
    code = cli.main(["fewshot", "--dataset", "tox21", "--shots", "2", "--data-root", str(root), "--out", str(out),
                     "--quiet", "pretrain=none,attrmask", "pretrain_corpus=moleculenet", "pretrain_epochs=1",
                     "pretrain_batch_size=8", *TINY])
    assert code == 0
    return root, out


def test_fewshot_writes_metrics_per_task_results_and_checkpoints(fewshot_run):
    _, out = fewshot_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_tasks"] == ["SR-HSE", "SR-MMP", "SR-p53"] and metrics["shots"] == 2
    assert metrics["model_config"]["norm"] == "batch"  # the resolved model, defaults included
    assert {(r["method"], r["pretrain"]) for r in metrics["runs"]} == {
        (m, p) for m in ("fs-gnncvtr", "fs-gin", "finetune") for p in ("none", "attrmask")}
    for r in metrics["runs"]:
        assert set(r["per_task"]) == set(metrics["test_tasks"])
        assert all(len(s["values"]) == 2 and 0 <= s["mean"] <= 1 for s in r["per_task"].values())
        assert set(r["thresholded"]["per_task"]) == set(metrics["test_tasks"])
        assert all(len(s["values"]) == 2 for s in r["thresholded"]["per_task"].values())
        assert (out / r["checkpoint"]).is_file()
    assert metrics["reduced"] == ["2 of 30 support draws per test task"]
    # the last meta-training task is held out for model selection: neither trained on nor tested
    assert len(metrics["val_tasks"]) == 1 and len(metrics["train_tasks"]) == 8
    assert not set(metrics["val_tasks"]) & set(metrics["train_tasks"] + metrics["test_tasks"])
    for r in metrics["runs"]:
        v = r["validation"]
        assert (v is None) == (r["method"] == "finetune")
        if v is not None:  # scored before training and after the last of the 2 outer steps
            assert v["task"] == metrics["val_tasks"][0] and v["steps"] == [0, 2] and v["best_step"] in (0, 2)
    assert (out / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("C1CC" in n for n in metrics["notes"])
    rows = list(csv.DictReader(io.StringIO((out / "per_task.csv").read_text())))
    assert len(rows) == 6 * 4 and {r["task"] for r in rows} == {"SR-HSE", "SR-MMP", "SR-p53", "mean"}
    first = metrics["runs"][0]
    row = next(r for r in rows if (r["method"], r["pretrain"], r["task"]) == (first["method"], first["pretrain"], "SR-MMP"))
    assert float(row["thresholded_mean"]) == pytest.approx(first["thresholded"]["per_task"]["SR-MMP"]["mean"], abs=1e-4)
    assert "episodes: 2" in (out / "config.yaml").read_text()


def test_checkpoint_reloads_to_the_same_model(fewshot_run):
    _, out = fewshot_run
    ckpt = load_checkpoint(out / "checkpoints" / "fs-gnncvtr-attrmask.pt")
    model, spec = model_from_fewshot_checkpoint(ckpt)
    assert ckpt["model"] == "fs-gnncvtr" and spec.method == "maml" and spec.shots == 2
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, ckpt["state_dict"][k])


def _support(tmp_path, rows="CCO,1\nc1ccccc1,0\nCCN,1\nCCC,0\n"):
    path = tmp_path / "support.csv"
    path.write_text("smiles,label\n" + rows)
    return path


@pytest.mark.parametrize("name", ["fs-gnncvtr-none", "finetune-attrmask"])
def test_predict_adapts_to_support_and_scores(fewshot_run, tmp_path, capsys, name):
    _, out = fewshot_run
    query = tmp_path / "query.smi"
    query.write_text("CCOC\nc1ccncc1\nCC(=O)O\n")
    dest = tmp_path / "pred.csv"
    code, stdout, err = run(capsys, "predict", "--checkpoint", str(out / "checkpoints" / f"{name}.pt"),
                            "--support", str(_support(tmp_path)), "--input", str(query), "--output", str(dest))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(dest.read_text())))
    assert [r["smiles"] for r in rows] == ["CCOC", "c1ccncc1", "CC(=O)O"] and [r["line"] for r in rows] == ["1", "2", "3"]
    assert all(0 < float(r["probability"]) < 1 for r in rows)
    assert "note" not in err  # a 2 + 2 support set fits the 2-shot checkpoint
    code, again, _ = run(capsys, "predict", "--checkpoint", str(out / "checkpoints" / f"{name}.pt"),
                         "--support", str(_support(tmp_path)), "--input", str(query))
    assert code == 0 and again == dest.read_text()  # same support -> same scores
    code, _, err = run(capsys, "predict", "--checkpoint", str(out / "checkpoints" / f"{name}.pt"),
                       "--support", str(_support(tmp_path, "CCO,1\nCCN,0\nCCC,0\n")), "--input", str(query))
    assert code == 0 and "meta-trained for 2-shot" in err and "1 + 2" in err


def test_predict_invalid_input_skip_or_error(fewshot_run, tmp_path, capsys):
    _, out = fewshot_run
    query = tmp_path / "query.smi"
    query.write_text("CCOC\nC1CC\nCCN\n")
    ckpt = str(out / "checkpoints" / "fs-gin-none.pt")
    code, _, err = run(capsys, "predict", "--checkpoint", ckpt, "--support", str(_support(tmp_path)),
                       "--input", str(query))
    assert code == 2 and f"{query}:2:" in err and "--invalid skip" in err
    code, stdout, err = run(capsys, "predict", "--checkpoint", ckpt, "--support", str(_support(tmp_path)),
                            "--input", str(query), "--invalid", "skip")
    assert code == 0 and f"skipped {query}:2:" in err
    assert [r["line"] for r in csv.DictReader(io.StringIO(stdout))] == ["1", "3"]


def test_predict_needs_support_for_fewshot_and_refuses_it_otherwise(fewshot_run, tmp_path, capsys):
    _, out = fewshot_run
    query = tmp_path / "q.smi"
    query.write_text("CCO\n")
    code, _, err = run(capsys, "predict", "--checkpoint", str(out / "checkpoints" / "fs-gin-none.pt"),
                       "--input", str(query))
    assert code == 2 and "few-shot checkpoint" in err and "--support" in err
    normal = tmp_path / "best.pt"
    save_checkpoint(normal, {"model": "gin", "model_config": {}, "state_dict": {}, "schema": {},
                             "task": "graph_classification", "dataset": "MUTAG", "experiment": {}})
    code, _, err = run(capsys, "predict", "--checkpoint", str(normal), "--input", str(query),
                       "--support", str(_support(tmp_path)))
    assert code == 2 and "--support is for few-shot checkpoints" in err
    code, _, err = run(capsys, "predict", "--checkpoint", str(out / "checkpoints" / "fs-gin-none.pt"),
                       "--input", str(query), "--support", str(_support(tmp_path, "CCO,1\nCCN,1\n")))
    assert code == 2 and "at least one positive" in err
    code, _, err = run(capsys, "eval", "--checkpoint", str(out / "checkpoints" / "fs-gin-none.pt"))
    assert code == 2 and "few-shot checkpoint" in err


def test_fewshot_errors_are_user_errors(fewshot_run, tmp_path, capsys):
    root, _ = fewshot_run
    code, _, err = run(capsys, "fewshot", "--dataset", "tox21", "--data-root", str(root), "--out", str(tmp_path),
                       "--invalid", "error", "--quiet", *TINY)
    assert code == 2 and "tox21.json:6 (negatives #4): 'C1CC'" in err
    code, _, err = run(capsys, "fewshot", "--dataset", "tox21", "--data-root", str(root), "--out", str(tmp_path),
                       "methods=fs-gin,maml")
    assert code == 2 and "unknown maml" in err
    code, _, err = run(capsys, "fewshot", "--dataset", "sider", "--data-root", str(root), "--out", str(tmp_path / "s"))
    assert code == 2 and "sider" in err and "missing" in err
    code, _, err = run(capsys, "fewshot", "--dataset", "tox21", "--data-root", str(root), "--shots", "11", "--quiet",
                       "--out", str(tmp_path / "t"), *TINY)
    assert code == 2 and "needs at least 12" in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "t").exists()  # nothing written on failure


def test_interrupted_run_resumes_from_results_and_checkpoints(fewshot_run, tmp_path, capsys):
    root, _ = fewshot_run
    args = ["fewshot", "--dataset", "tox21", "--shots", "2", "--data-root", str(root), "--out", str(tmp_path),
            "--quiet", "methods=fs-gin,finetune", "pretrain=none", *TINY]
    assert run(capsys, *args)[0] == 0
    first = json.loads((tmp_path / "metrics.json").read_text())
    (tmp_path / "results" / "fs-gin-none.json").unlink()  # as if stopped after the checkpoint was written
    assert run(capsys, *args)[0] == 0
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["reused"] for r in again["runs"]] == ["checkpoint", "results"]
    assert [r["per_task"] for r in again["runs"]] == [r["per_task"] for r in first["runs"]]  # same scores
    assert run(capsys, *args, "draws=3")[0] == 0  # evaluation-only change: no retraining
    third = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["reused"] for r in third["runs"]] == ["checkpoint", "checkpoint"]
    assert run(capsys, *args, "draws=3", "episodes=3")[0] == 0  # training change: trained again
    assert [r["reused"] for r in json.loads((tmp_path / "metrics.json").read_text())["runs"]] == [None, None]


def test_pretrain_hu_starts_the_encoder_from_their_file(fewshot_run, tmp_path, capsys):
    from gnnformer.fewshot.hu_weights import hu_state_from_encoder
    from gnnformer.fewshot.model import MolEncoder, fewshot_model_config

    root, _ = fewshot_run
    torch.manual_seed(3)
    source = MolEncoder(fewshot_model_config(hidden=16, layers=2, conv="gcn", norm="batch", token_kernel=3))
    torch.save(hu_state_from_encoder(source), tmp_path / "gcn.pth")
    args = ["fewshot", "--dataset", "tox21", "--shots", "2", "--data-root", str(root), "--quiet",
            "methods=fs-gin", "pretrain=hu", "model.conv=gcn", "model.norm=batch", *TINY]
    code, _, err = run(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 2 and "pretrained_encoder=PATH" in err
    code, _, err = run(capsys, *args, "--out", str(tmp_path / "b"), f"pretrained_encoder={tmp_path / 'gcn.pth'}",
                       "episodes=0")
    assert code == 0, err
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert [(r["method"], r["pretrain"]) for r in metrics["runs"]] == [("fs-gin", "hu")]
    assert any("gcn.pth" in n for n in metrics["notes"])
    state = load_checkpoint(tmp_path / "b" / "checkpoints" / "fs-gin-hu.pt")["state_dict"]
    for key, value in source.state_dict().items():  # no meta-training step: the file's weights, as loaded
        if key != "chirality.weight":
            torch.testing.assert_close(state[f"encoder.{key}"], value)
    torch.testing.assert_close(state["encoder.chirality.weight"][:3], source.chirality.weight[:3])


def test_a_changed_model_default_is_not_reused(fewshot_run, tmp_path, capsys):
    """Results and checkpoints keep the resolved model they were made with: a run whose model differs (e.g.
    made when LayerNorm was the default) is trained again, not reused under the same user settings."""
    root, _ = fewshot_run
    args = ["fewshot", "--dataset", "tox21", "--shots", "2", "--data-root", str(root), "--out", str(tmp_path),
            "--quiet", "methods=fs-gin", "pretrain=none", *TINY]
    assert run(capsys, *args)[0] == 0
    for path in (tmp_path / "results" / "fs-gin-none.json",):
        stored = json.loads(path.read_text())
        assert stored["experiment"]["model_config"]["norm"] == "batch"
        stored["experiment"]["model_config"]["norm"] = "layer"
        path.write_text(json.dumps(stored))
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "fs-gin-none.pt")
    ckpt["experiment"]["model_config"]["norm"] = "layer"
    save_checkpoint(tmp_path / "checkpoints" / "fs-gin-none.pt", ckpt)
    assert run(capsys, *args)[0] == 0
    assert [r["reused"] for r in json.loads((tmp_path / "metrics.json").read_text())["runs"]] == [None]
    assert run(capsys, *args)[0] == 0  # and the run just made is reused as it should be
    assert [r["reused"] for r in json.loads((tmp_path / "metrics.json").read_text())["runs"]] == ["results"]


def test_track_test_records_the_test_tasks_per_step_without_touching_the_selection(fewshot_run, tmp_path, capsys):
    root, _ = fewshot_run
    args = ["fewshot", "--dataset", "tox21", "--shots", "2", "--data-root", str(root), "--quiet",
            "methods=fs-gin", "pretrain=none", *TINY, "episodes=4", "val_every=2"]
    assert run(capsys, *args, "--out", str(tmp_path / "plain"))[0] == 0
    assert run(capsys, *args, "--out", str(tmp_path / "tracked"), "track_test=true")[0] == 0
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())["runs"][0]
    tracked_metrics = json.loads((tmp_path / "tracked" / "metrics.json").read_text())
    tracked = tracked_metrics["runs"][0]
    assert "test_by_step" not in plain["validation"]
    # the same selection and the same test scores: tracking only looks
    assert tracked["validation"]["best_step"] == plain["validation"]["best_step"]
    assert tracked["per_task"] == plain["per_task"] and tracked["thresholded"] == plain["thresholded"]
    by_step = tracked["validation"]["test_by_step"]
    steps = tracked["validation"]["steps"]
    assert steps == [0, 2, 4]
    for metric in ("roc_auc", "thresholded"):
        per_task = by_step[metric]["per_task"]
        assert set(per_task) == set(tracked_metrics["test_tasks"])
        assert all(len(v) == len(steps) for v in per_task.values())
        # each task's best step, then the mean over tasks (the FS-GNNCvTR code's report)
        expected = sum(max(v) for v in per_task.values()) / len(per_task)
        assert by_step[metric]["best"] == pytest.approx(expected)
    assert "also scored at every validation step" in tracked_metrics["protocol"]
    code, _, err = run(capsys, *args, "--out", str(tmp_path / "bad"), "track_test=true", "val_task=null")
    assert code == 2 and "track_test" in err and "val_task" in err
