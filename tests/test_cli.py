"""The `gnnformer` command end to end: outputs, checkpoint round trip, exit codes and messages."""
import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch_geometric.loader import DataLoader

from gnnformer import cli
from gnnformer.datasets import load_dataset
from gnnformer.paths import EMBEDDED_ROOT
from gnnformer.training.checkpoint import load_checkpoint, save_checkpoint
from gnnformer.training.inference import model_from_checkpoint

MUTAG_RAW = EMBEDDED_ROOT / "TU" / "MUTAG" / "raw"


def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small GPS run on MUTAG shared by the tests below."""
    out = tmp_path_factory.mktemp("run")
    code = cli.main(["train", "--model", "gps", "--dataset", "MUTAG", "--epochs", "2", "--out", str(out),
                     "--quiet", "model.hidden=32", "model.layers=2"])
    assert code == 0
    return out


def test_list_names_every_model_and_dataset(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    for name in ("gps", "gin", "gcn", "gat", "transformer", "MUTAG", "Cora", "PROTEINS", "Tox21"):
        assert name in out


def test_train_outputs(trained):
    for name in ("metrics.json", "config.yaml", "best.pt", "curves.png"):
        assert (trained / name).is_file()
    cfg = (trained / "config.yaml").read_text()
    assert "hidden: 32" in cfg and "epochs: 2" in cfg


def test_eval_reproduces_saved_metrics(trained, capsys):
    code, out, err = run(capsys, "eval", "--checkpoint", str(trained / "best.pt"))
    assert code == 0, err
    stored = load_checkpoint(trained / "best.pt")["metrics"]["test"]["accuracy"]
    assert f"test_accuracy   {stored:.4f}   (at save time: {stored:.4f})" in out


def test_predict_matches_model_before_saving(trained, capsys):
    ckpt = load_checkpoint(trained / "best.pt")
    model = model_from_checkpoint(ckpt)
    from gnnformer.datasets.encodings import precompute_encodings

    graphs = precompute_encodings(load_dataset("MUTAG").graphs, **ckpt["encodings"])
    with torch.no_grad():
        expected = torch.cat([model(b) for b in DataLoader(graphs, batch_size=50)]).softmax(-1)
    code, out, err = run(capsys, "predict", "--checkpoint", str(trained / "best.pt"), "--input", str(MUTAG_RAW))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 188
    got = torch.tensor([[float(r["p_class0"]), float(r["p_class1"])] for r in rows])
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)
    assert [int(r["prediction"]) for r in rows] == expected.argmax(-1).tolist()
    assert list(rows[0]) == ["index", "prediction", "p_class0", "p_class1"]  # TU input: graphs by index
    assert [int(r["index"]) for r in rows] == list(range(188))


def test_checkpoint_round_trip_is_exact(trained, tmp_path):
    ckpt = load_checkpoint(trained / "best.pt")
    model = model_from_checkpoint(ckpt)
    save_checkpoint(tmp_path / "again.pt", {k: v for k, v in ckpt.items() if k != "format"})
    again = model_from_checkpoint(load_checkpoint(tmp_path / "again.pt"))
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_checkpoint_write_is_atomic(trained, tmp_path, monkeypatch):
    target = tmp_path / "best.pt"
    shutil.copy(trained / "best.pt", target)
    before = target.read_bytes()

    def dies_midway(obj, fh):
        fh.write(b"half a checkpoint")
        raise KeyboardInterrupt  # as if killed while writing

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(target, {"model": "x"})
    assert target.read_bytes() == before  # the old checkpoint is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # and no temporary file is left


def test_checkpoint_errors(trained, tmp_path, capsys):
    code, _, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "none.pt"))
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "predict", "--checkpoint", str(bad), "--input", str(MUTAG_RAW))
    assert code == 2 and "corrupt or not a gnnformer checkpoint" in err


def test_predict_refuses_other_schema(trained, tmp_path, capsys):
    # A TU folder whose node labels go beyond MUTAG's 7: the checkpoint cannot read it.
    other = tmp_path / "OTHER"
    other.mkdir()
    (other / "OTHER_A.txt").write_text("1, 2\n2, 1\n")
    (other / "OTHER_graph_indicator.txt").write_text("1\n1\n")
    (other / "OTHER_node_labels.txt").write_text("0\n12\n")
    code, _, err = run(capsys, "predict", "--checkpoint", str(trained / "best.pt"), "--input", str(other))
    assert code == 2 and "Traceback" not in err
    # A Planetoid folder is a different kind of data altogether.
    code, _, err = run(capsys, "predict", "--checkpoint", str(trained / "best.pt"),
                       "--input", str(EMBEDDED_ROOT / "Planetoid" / "Cora" / "raw"))
    assert code == 2 and "Traceback" not in err


@pytest.mark.parametrize("args, needle", [
    (["train", "--epochs", "zero"], "not a valid integer"),
    (["train", "--bogus-flag"], "No such option"),
    (["train", "--model", "nope", "--epochs", "1"], "Unknown model 'nope'"),
    (["train", "--dataset", "NOPE_DATASET", "--epochs", "1"], "NOPE_DATASET"),
    (["train", "--epochs", "1", "lr"], "key=value"),
    (["train", "--epochs", "1", "model.colour=red"], "Unknown option(s) of model 'gps': colour"),
    (["predict", "--checkpoint", "x.pt"], "Checkpoint x.pt does not exist"),
])
def test_user_errors_exit_2_with_message(capsys, args, needle):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err + out


def test_predict_without_input_names_it(capsys, tmp_path):
    """A graph checkpoint needs --input (it is optional on the command line because GLEM takes --text)."""
    code, _, _ = run(capsys, "train", "--model", "gin", "--dataset", "MUTAG", "--epochs", "1", "--quiet",
                     "model.hidden=8", "model.layers=1", "--out", str(tmp_path / "run"))
    assert code == 0
    code, _, err = run(capsys, "predict", "--checkpoint", str(tmp_path / "run" / "best.pt"))
    assert code == 2 and "--input is required" in err



def test_bad_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: gin\n  epochs: [\n")
    code, _, err = run(capsys, "train", "--config", str(cfg))
    assert code == 2 and "not valid YAML" in err and "line" in err
    cfg.write_text("- just\n- a list\n")
    code, _, err = run(capsys, "train", "--config", str(cfg))
    assert code == 2 and "mapping" in err


def test_missing_data_root(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--dataset", "MUTAG", "--data-root", str(tmp_path / "empty"), "--epochs", "1")
    assert code == 2 and "Traceback" not in err


def test_internal_error_exit_1(monkeypatch, capsys):
    import gnnformer.training as T

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(T, "run_experiment", broken)
    code, _, err = run(capsys, "train", "--epochs", "1")
    assert code == 1 and "internal error: RuntimeError: boom" in err and "Traceback" not in err


def test_console_script_end_to_end(tmp_path):
    """The installed `gnnformer` command, as a user runs it."""
    exe = Path(sys.executable).with_name("gnnformer")
    env = {**os.environ, "GNNFORMER_CACHE": os.environ["GNNFORMER_CACHE"]}
    bad = subprocess.run([str(exe), "train", "--dataset", "NOPE"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "NOPE" in bad.stderr
    ok = subprocess.run([str(exe), "train", "--model", "gin", "--epochs", "1", "--quiet", "--out", str(tmp_path)],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "test_accuracy" in ok.stdout and (tmp_path / "metrics.json").is_file()


def test_eval_reproduces_a_node_task_over_many_graphs(tmp_path, capsys):
    # CLUSTER-mini: one label per node, 1400 graphs split over graphs. `eval` must count graphs,
    # not the nodes of the first graph, when it checks the stored split against the data.
    code, _, err = run(capsys, "train", "--model", "gin", "--dataset", "CLUSTER-mini", "--epochs", "1",
                       "--out", str(tmp_path), "--quiet", "model.hidden=16", "model.layers=2", "batch_size=128")
    assert code == 0, err
    code, out, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "best.pt"))
    assert code == 0, err
    stored = load_checkpoint(tmp_path / "best.pt")["metrics"]["test"]["accuracy"]
    assert f"test_accuracy   {stored:.4f}   (at save time: {stored:.4f})" in out
