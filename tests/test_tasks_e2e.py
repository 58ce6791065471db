"""Each kind of target trained end to end on small real-format files: regression, multi-task
binary with missing labels (from SMILES), and prediction from a SMILES file."""
import csv
import io

import pytest
import torch
from run_helpers import load_run
from sklearn.metrics import roc_auc_score
from torch_geometric.loader import DataLoader

from gnnformer import cli
from gnnformer.datasets import load_dataset

TOX21_HEADER = ("NR-AR,NR-AR-LBD,NR-AhR,NR-Aromatase,NR-ER,NR-ER-LBD,NR-PPAR-gamma,SR-ARE,SR-ATAD5,"
                "SR-HSE,SR-MMP,SR-p53,mol_id,smiles")
SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "CC(C)O", "c1ccncc1", "OCC(O)CO", "CCOC(=O)C",
          "C1CCCCC1", "CC#N", "Oc1ccccc1", "NC(=O)N", "CCCCO", "ClC(Cl)Cl", "c1ccc2ccccc2c1", "CCS",
          "CN(C)C", "O=C=O", "CC=C", "BrCCBr", "CC(=O)N", "c1ccoc1", "CCCCCC", "OC(=O)c1ccccc1",
          "CC(C)(C)O", "N#Cc1ccccc1", "COc1ccccc1", "CSC", "FC(F)F"]


def tox_label(i: int, t: int) -> int | None:
    """Label of molecule ``i`` for task ``t`` in the tiny Tox21 below (None: missing)."""
    return None if (i + t) % 5 == 0 else (i * 7 + t * 3) % 2


def task_columns(csv_text: str, tasks: int = 12) -> torch.Tensor:
    """The per-task probabilities of `gnnformer predict`'s CSV: its last ``tasks`` columns, one row per molecule."""
    rows = list(csv.reader(io.StringIO(csv_text)))[1:]
    return torch.tensor([[float(v) for v in row[-tasks:]] for row in rows], dtype=torch.float64)


@pytest.fixture()
def tox21_root(tmp_path):
    """A 30-molecule Tox21 in the real CSV layout; some labels missing (empty cells)."""
    raw = tmp_path / "MoleculeNet" / "tox21" / "raw"
    raw.mkdir(parents=True)
    lines = [TOX21_HEADER]
    for i, smi in enumerate(SMILES):
        labels = ["" if tox_label(i, t) is None else str(tox_label(i, t)) for t in range(12)]
        lines.append(",".join(labels + [f"TOX{i}", smi]))
    (raw / "tox21.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_multitask_with_missing_labels_and_smiles_predict(tox21_root, tmp_path, capsys):
    ds = load_dataset("Tox21", str(tox21_root))
    assert ds.task == "multitask_binary" and len(ds.graphs) == 30 and ds.out_dim == 12
    y = torch.cat([g.y for g in ds.graphs])
    assert int(torch.isnan(y).sum()) == sum(1 for i in range(30) for t in range(12) if (i + t) % 5 == 0)

    out = tmp_path / "run"
    code = cli.main(["train", "--model", "gin", "--dataset", "Tox21", "--data-root", str(tox21_root),
                     "--epochs", "2", "--quiet", "--out", str(out), "batch_size=8"])
    assert code == 0
    metrics, ckpt, _ = load_run(out)
    assert metrics["monitor"] == "roc_auc"

    # Score all 30 molecules with `predict`, then recompute each split's ROC-AUC with scikit-learn:
    # the mean over the tasks whose known labels in that split hold both classes.
    capsys.readouterr()
    every = tmp_path / "all.smi"
    every.write_text("\n".join(SMILES) + "\n")
    assert cli.main(["predict", "--checkpoint", str(out / "best.pt"), "--input", str(every)]) == 0
    probs = task_columns(capsys.readouterr().out)
    assert probs.shape == (30, 12)
    for split in ("train", "val", "test"):
        aucs = []
        for t in range(12):
            known = [i for i in ckpt["split"][split] if tox_label(i, t) is not None]
            labels = [tox_label(i, t) for i in known]
            if len(set(labels)) == 2:
                aucs.append(roc_auc_score(labels, probs[known, t].numpy()))
        assert len(aucs) >= 3, split
        assert metrics[f"{split}_roc_auc"]["mean"] == pytest.approx(sum(aucs) / len(aucs), abs=1e-9), split

    # New input: the same molecule gets the same scores, whatever its SMILES spelling
    # (phenol is Oc1ccccc1, molecule 11 of the file).
    smi = tmp_path / "new.smi"
    smi.write_text("CCO\nc1ccccc1O\n")
    code = cli.main(["predict", "--checkpoint", str(out / "best.pt"), "--input", str(smi)])
    text = capsys.readouterr().out
    assert code == 0
    header = next(csv.reader(io.StringIO(text)))
    assert header[-12:] in ([f"task{t}" for t in range(12)], TOX21_HEADER.split(",")[:12])  # generic or named
    torch.testing.assert_close(task_columns(text), probs[[0, 11]], atol=2e-6, rtol=0)

    smi.write_text("CCO\nthis-is-not-smiles\n")
    code = cli.main(["predict", "--checkpoint", str(out / "best.pt"), "--input", str(smi)])
    err = capsys.readouterr().err
    assert code == 2 and "2" in err and "Traceback" not in err


@pytest.fixture()
def regression_root(tmp_path):
    """A TU-format dataset with a real-valued target per graph (graph_attributes)."""
    raw = tmp_path / "TU" / "CHAINS" / "raw"
    raw.mkdir(parents=True)
    edges, indicator, targets, node = [], [], [], 1
    for g in range(24):  # path graphs of 3..8 nodes; target = number of nodes / 10
        n = 3 + g % 6
        for i in range(n - 1):
            edges += [f"{node + i}, {node + i + 1}", f"{node + i + 1}, {node + i}"]
        indicator += [str(g + 1)] * n
        targets.append(f"{n / 10:.1f}")
        node += n
    (raw / "CHAINS_A.txt").write_text("\n".join(edges) + "\n")
    (raw / "CHAINS_graph_indicator.txt").write_text("\n".join(indicator) + "\n")
    (raw / "CHAINS_graph_attributes.txt").write_text("\n".join(targets) + "\n")
    return tmp_path


def test_graph_regression_reports_mae(regression_root, tmp_path):
    ds = load_dataset("CHAINS", str(regression_root))
    assert ds.task == "graph_regression" and ds.out_dim == 1
    assert any("degree" in note for note in ds.notes)  # no node features: the user is told
    out = tmp_path / "run"
    code = cli.main(["train", "--model", "gcn", "--dataset", "CHAINS", "--data-root", str(regression_root),
                     "--epochs", "3", "--quiet", "--out", str(out), "runs=2"])
    assert code == 0
    metrics, ckpt, model = load_run(out)
    assert metrics["monitor"] == "mae" and len(metrics["test_mae"]["values"]) == 2
    # The saved model (the best run's) on each split, against the targets n / 10 by hand.
    reported = metrics["per_run"][metrics["best_run"]]
    for split, index in ckpt["split"].items():
        with torch.no_grad():
            pred = torch.cat([model(b) for b in DataLoader([ds.graphs[i] for i in index], batch_size=64)]).view(-1)
        target = torch.tensor([(3 + i % 6) / 10 for i in index], dtype=torch.float64)
        mae = (pred.double() - target).abs().mean().item()
        assert reported[split]["mae"] == pytest.approx(mae, abs=1e-6), split
    assert metrics["test_mae"]["values"][metrics["best_run"]] == reported["test"]["mae"]
