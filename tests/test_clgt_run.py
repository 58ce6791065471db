"""`gnnformer clgt train` / `report` end to end on a small git repository made here: the
chronological split, unknown labels left out of loss and metrics, the report's data, bad input.

The team (30-day windows 0..7, the last ending with the last commit): alice commits twice in
every window; bob twice in 0..5, then never (bob's first patch is committed by carol); carol
twice, except once in window 2; dave once in windows 0, 2, 4, 6; erin once, in window 7 only.
Proxy (at risk = fewer than 2 contributions in the next window): windows 0..6 are labelled,
window 7 (the latest) is not; bob is at risk in window 5, carol in window 1, dave wherever he
appears."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gnnformer import cli
from gnnformer.clgt.data import load_windows
from gnnformer.clgt.settings import clgt_config
from gnnformer.tasks import get_task
from test_vcs import DAY, Repo

FAST = ["epochs=2", "model.hidden=8", "model.layers=1", "batch_size=8"]
PLAN = {"alice": [2] * 8, "bob": [2] * 6 + [0, 0], "carol": [2, 2, 1, 2, 2, 2, 2, 2],
        "dave": [1, 0, 1, 0, 1, 0, 1, 0], "erin": [0] * 7 + [1]}


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> Path:
    r = Repo(tmp_path_factory.mktemp("course"))
    for k in range(8):
        for j, (who, counts) in enumerate(PLAN.items()):
            for c in range(counts[k]):
                committer = "carol" if (who, k, c) == ("bob", 0, 0) else None
                r.commit({"shared.py": f"{who} {k} {c}\n", f"{who}/notes.md": f"{k} {c}\n"}, f"{who} {k} {c}",
                         who=who, committer=committer, day=30 * k + 1 + 4 * j + 2 * c)
    return r.path


def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def labels_of(g) -> dict:
    return {m.split("@")[0]: int(y) for m, y in zip(g.members, g.y)}


def test_windows_are_labelled_by_the_proxy_and_split_in_time_order(team):
    w = load_windows(clgt_config({"repo": str(team), "window_days": 30}))
    assert len(w.graphs) == 8 and w.labelled == list(range(7))
    assert w.split.sizes() == (4, 1, 2)
    train, val, test = (w.windows_of(p) for p in ("train", "val", "test"))
    assert max(g.window[1] for g in train) <= min(g.window[0] for g in val)
    assert max(g.window[1] for g in val) <= min(g.window[0] for g in test)
    assert labels_of(w.graphs[5]) == {"alice": 0, "bob": 1, "carol": 0}
    assert labels_of(w.graphs[6]) == {"alice": 0, "carol": 0, "dave": 1}
    assert labels_of(w.graphs[1]) == {"alice": 0, "bob": 0, "carol": 1}
    assert labels_of(w.latest) == {"alice": -1, "carol": -1, "erin": -1}
    assert w.graphs[-1].window[1] == w.graphs[0].window[0] + 8 * 30 * DAY
    assert "fewer than 2 contributions" in w.label_rule
    assert [g.num_nodes for g in w.dataset.graphs] == [len(w.graphs[i].members) for i in w.labelled]


def test_unknown_labels_count_in_no_loss_and_no_metric():
    task = get_task("node_classification")
    out = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0], [1.0, 3.0]], requires_grad=True)
    y = torch.tensor([0, -1, 1, -1])
    expected = F.cross_entropy(out[[0, 2]], torch.tensor([0, 1]))
    assert torch.allclose(task.loss(out, y), expected)
    m = task.metrics(out, y)
    assert m["accuracy"] == 0.5 and m["roc_auc"] == 0.0  # row 2 (class 1) scores below row 0 (class 0)
    none = task.loss(out, torch.full((4,), -1))
    none.backward()
    assert none.item() == 0.0 and torch.count_nonzero(out.grad) == 0


def test_train_writes_metrics_of_every_model_on_the_test_windows(team, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "clgt", "train", "--repo", str(team), "--window-days", "30", "--out", str(out),
                            "--quiet", *FAST, "baselines=adaboost,rgcn")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["model"] for r in metrics["rows"]] == ["clgt", "adaboost", "rgcn"]
    assert "test" in metrics["protocol"] and "(6)" in metrics["protocol"]  # 6 labelled test members, 2 at risk
    for r in metrics["rows"]:
        for key in ("test_accuracy", "test_macro_f1", "test_roc_auc"):
            assert 0.0 <= r[key]["mean"] <= 1.0
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "config.yaml", "metrics.json"]
    again = tmp_path / "again"
    assert run(capsys, "clgt", "train", "--repo", str(team), "--window-days", "30", "--out", str(again), "--quiet",
               *FAST, "baselines=adaboost")[0] == 0
    first = json.loads((out / "metrics.json").read_text())["per_seed"]
    second = json.loads((again / "metrics.json").read_text())["per_seed"]
    assert first[:2] == [{**s, "seconds": f["seconds"]} for s, f in zip(second, first[:2])]  # deterministic


def test_report_ranks_the_latest_window_and_names_members_by_pseudonym(team, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, err = run(capsys, "clgt", "report", "--repo", str(team), "--window-days", "30", "--out", str(out),
                            "--quiet", *FAST, "explain=2", "explain_samples=20")
    assert code == 0, err
    assert (out / "report.html").read_text().count("<svg") >= 1  # rendered by gnnformer.clgt.report
    text = (out / "report.json").read_text()
    report = json.loads(text)
    assert "@" not in text  # no e-mail address anywhere
    assert len(report["members"]) == 3 and report["members"][0]["explanation"]["sentence"]
    p = [m["p_at_risk"] for m in report["members"]]
    assert p == sorted(p, reverse=True)
    assert all(m["label"] is None and len(m["name"]) == 12 for m in report["members"])
    erin = [m for m in report["members"] if m["activity"]["commits"] == 1]
    assert len(erin) == 1 and erin[0]["activity"]["active_days"] == 1
    assert {e["type"] for e in report["graph"]["edges"]} == {"co-edit"}
    assert len(report["graph"]["edges"]) == 3  # each pair of the three co-edits shared.py, counted once
    assert report["window"][1].startswith("2021")
    named = tmp_path / "named"
    assert run(capsys, "clgt", "report", "--repo", str(team), "--window-days", "30", "--out", str(named), "--quiet",
               "--show-names", *FAST, "explain=0")[0] == 0
    assert {m["name"] for m in json.loads((named / "report.json").read_text())["members"]} == {
        "alice@x.org", "carol@x.org", "erin@x.org"}


def test_user_labels_label_every_window_of_their_members(team, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("member,label\nalice@x.org,pass\nbob@x.org,at-risk\ndave@x.org,fail\n")
    w = load_windows(clgt_config({"repo": str(team), "window_days": 30, "labels": str(path)}))
    assert labels_of(w.graphs[0]) == {"alice": 0, "bob": 1, "carol": -1, "dave": 1}
    assert labels_of(w.latest) == {"alice": 0, "carol": -1, "erin": -1}
    assert w.labelled == list(range(8)) and w.split.sizes() == (5, 1, 2)


@pytest.mark.parametrize("case, message", [
    ("not-a-repo", "not a git repository"),
    ("empty", "the history is empty"),
    ("one-member", "has 1 member(s)"),
    ("unknown-member", "labels.csv:2: member 'zed@x.org' is not in the data"),
    ("malformed", "labels.csv:1: the first line must be the header"),
])
def test_bad_input_is_one_message_exit_2_and_nothing_written(team, tmp_path, capsys, case, message):
    repo, extra = team, []
    if case == "not-a-repo":
        repo = tmp_path / "plain"
        repo.mkdir()
    elif case == "empty":
        repo = Repo(tmp_path / "empty").path
    elif case == "one-member":
        r = Repo(tmp_path / "solo")
        r.commit({"a": "1\n"}, "a", who="alice", day=0)
        r.commit({"a": "2\n"}, "b", who="bob", day=1)
        r.commit({"a": "3\n"}, "c", who="alice", day=100)
        repo = r.path
    else:
        labels = tmp_path / "labels.csv"
        labels.write_text("member,label\nzed@x.org,pass\n" if case == "unknown-member" else "who;grade\nalice;1\n")
        extra = ["--labels", str(labels)]
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "clgt", "report", "--repo", str(repo), "--window-days", "30", "--out", str(out),
                            *extra, *FAST)
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_run_that_fails_removes_the_folder_it_made_and_keeps_one_it_did_not(team, tmp_path, monkeypatch):
    from gnnformer.clgt import run as clgt_run

    def broken(*args, **kwargs):
        (tmp_path / "new" / "metrics.json").write_text("{}")
        raise RuntimeError("stop")

    monkeypatch.setattr(clgt_run, "train_models", broken)
    cfg = clgt_config({"repo": str(team), "window_days": 30})
    with pytest.raises(RuntimeError):
        clgt_run.run_train(cfg, tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    monkeypatch.setattr(clgt_run, "train_models", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.raises(RuntimeError):
        clgt_run.run_train(cfg, kept, progress=False)
    assert kept.is_dir()


def test_report_reuses_a_train_checkpoint_and_refuses_one_from_other_windows(team, tmp_path, capsys, monkeypatch):
    trained = tmp_path / "trained"
    assert run(capsys, "clgt", "train", "--repo", str(team), "--window-days", "30", "--out", str(trained), "--quiet",
               *FAST, "baselines=none")[0] == 0
    stored = json.loads((trained / "metrics.json").read_text())["rows"][0]

    import gnnformer.clgt.run as clgt_run

    def no_training(*args, **kwargs):
        raise AssertionError("the report trained a model although a checkpoint was given")

    monkeypatch.setattr(clgt_run, "train_models", no_training)
    out = tmp_path / "report"
    code, _, err = run(capsys, "clgt", "report", "--repo", str(team), "--window-days", "30", "--out", str(out),
                       "--quiet", "--checkpoint", str(trained / "best.pt"), "explain=0")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["name"] == "clgt"
    assert report["model"]["metrics"] == {m: stored[f"test_{m}"]["mean"] for m in ("accuracy", "macro_f1", "roc_auc")}
    # the probabilities are the checkpoint's model on the latest window
    from gnnformer.clgt.data import strip
    from gnnformer.training.checkpoint import load_checkpoint
    from gnnformer.training.inference import model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(trained / "best.pt"))
    latest = load_windows(clgt_config({"repo": str(team), "window_days": 30})).latest
    with torch.no_grad():
        expected = sorted(torch.softmax(model(strip(latest)), -1)[:, 1].tolist(), reverse=True)
    assert [m["p_at_risk"] for m in report["members"]] == pytest.approx(expected, abs=1e-6)

    other = tmp_path / "other"
    code, _, err = run(capsys, "clgt", "report", "--repo", str(team), "--window-days", "40", "--out", str(other),
                       "--quiet", "--checkpoint", str(trained / "best.pt"))
    assert code == 2 and "window length (days): 30 in the checkpoint, 40 here" in err and not other.exists()
    code, _, err = run(capsys, "clgt", "report", "--repo", str(team), "--window-days", "30", "--out", str(other),
                       "--quiet", "--checkpoint", str(trained / "config.yaml"))
    assert code == 2 and "not a gnnformer checkpoint" in err and not other.exists()
