"""Input a new user really writes: ids far out of range, a byte-order mark, label sets that make the
result meaningless. Each must end in a message naming the file (and line), never a traceback or a
silently wrong model."""
from __future__ import annotations

import json
import pickle
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from test_datasets import CORA_RAW, MUTAG_RAW, copy_mutag, edit_line, write_mutag_subset, write_toy, write_tox21

from gnnformer import cli
from gnnformer.datasets import load_dataset, read_graphs_for_predict
from gnnformer.datasets.molecules import molecule_schema
from gnnformer.errors import DataError
from gnnformer.paths import EMBEDDED_ROOT

BOM = b"\xef\xbb\xbf"
HUGE = "99999999999999999999999"  # past any 64-bit integer
#: Nodes per class in Cora (Sen et al. 2008), classes 0..6.
CORA_COUNTS = [351, 217, 418, 818, 426, 298, 180]


@pytest.fixture(autouse=True)
def _offline_own_cache(monkeypatch, tmp_path):
    """No network; and a cache of the test's own, so the half-staged folders that refused input
    leaves behind are not seen by tests that inspect the shared cache."""
    monkeypatch.setenv("GNNFORMER_OFFLINE", "1")
    monkeypatch.setenv("GNNFORMER_CACHE", str(tmp_path / "cache"))


def add_bom(path: Path) -> None:
    path.write_bytes(BOM + path.read_bytes())


def train(capsys, root: Path, out: Path) -> tuple[int, str, str]:
    code = cli.main(["train", "--model", "gin", "--dataset", "MUTAG", "--data-root", str(root), "--epochs", "1",
                     "--quiet", "--out", str(out), "model.hidden=8", "model.layers=1"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def flat(text: str) -> str:
    """Text with every run of whitespace made one space (the console wraps long lines)."""
    return " ".join(text.split())


# ----------------------------------------------------------------------------- ids out of range


@pytest.mark.parametrize("suffix, lineno, text, expected", [
    ("A", 3, f"1, {HUGE}", f"MUTAG_A.txt:3: node id {HUGE} is out of range (beyond a 64-bit integer"),
    ("A", 9, f"-{HUGE}, 2", f"MUTAG_A.txt:9: node id -{HUGE} is out of range"),
    ("A", 3, "1, 9223372036854775807", "MUTAG_A.txt:3: node id 9223372036854775807 is outside 1..3371"),
    ("graph_indicator", 20, HUGE, f"MUTAG_graph_indicator.txt:20: graph id {HUGE} is out of range"),
    ("graph_indicator", 3371, "9223372036854775807",
     "MUTAG_graph_indicator.txt:3371: graph id 9223372036854775807 follows 188"),
    ("graph_labels", 7, HUGE, f"MUTAG_graph_labels.txt:7: label {HUGE} is out of range"),
    ("node_labels", 4, "99999999",
     "MUTAG_node_labels.txt:4: node label 99999999 makes the labels span 0..99999999 (100000000 values)"),
    ("edge_labels", 11, "-99999999",
     "MUTAG_edge_labels.txt:11: edge label -99999999 makes the labels span -99999999..3"),
])
def test_ids_and_codes_out_of_range_name_file_and_line(tmp_path, suffix, lineno, text, expected):
    raw = copy_mutag(tmp_path)
    edit_line(raw / f"MUTAG_{suffix}.txt", lineno, text)
    with pytest.raises(DataError) as err:
        load_dataset("MUTAG", str(tmp_path))
    assert expected in str(err.value) and str(raw) in str(err.value)


def test_predict_input_with_a_huge_id_is_refused(tmp_path):
    schema = load_dataset("MUTAG").schema
    write_mutag_subset(tmp_path / "new", 3, prefix="NEW")
    edit_line(tmp_path / "new" / "NEW_A.txt", 2, f"{HUGE}, 1")
    with pytest.raises(DataError, match=rf"NEW_A.txt:2: node id {HUGE} is out of range"):
        read_graphs_for_predict(schema, str(tmp_path / "new"))


@pytest.mark.parametrize("text, expected", [
    (HUGE, rf"ind\.cora\.test\.index:3: node id {HUGE} is out of range"),
    ("5000", r"ind\.cora\.test\.index:3: test node id 5000 is beyond the nodes of ind\.cora\.graph \(ids 0\.\.2707\)"),
])
def test_planetoid_test_index_out_of_range(tmp_path, text, expected):
    raw = tmp_path / "Planetoid" / "Cora" / "raw"
    shutil.copytree(CORA_RAW, raw)
    edit_line(raw / "ind.cora.test.index", 3, text)
    with pytest.raises(DataError, match=expected):
        load_dataset("Cora", str(tmp_path))


def test_temporal_edge_id_out_of_range(tmp_path):
    (tmp_path / "temporal").mkdir()
    raw = json.loads((EMBEDDED_ROOT / "temporal" / "chickenpox.json").read_text())
    raw["edges"][5] = [0, int(HUGE)]
    (tmp_path / "temporal" / "chickenpox.json").write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"chickenpox\.json: edges: edge endpoints must be integer node ids in 0\.\.19"):
        load_dataset("chickenpox", str(tmp_path))


# ----------------------------------------------------------------------------- byte-order mark


def test_bom_in_every_tu_file_loads_like_the_clean_files(tmp_path):
    raw = copy_mutag(tmp_path)
    for path in raw.glob("MUTAG_*.txt"):
        add_bom(path)
    ds, ref = load_dataset("MUTAG", str(tmp_path)), load_dataset("MUTAG")
    assert len(ds.graphs) == 188 and ds.schema == ref.schema
    for a, b in zip(ds.graphs, ref.graphs):
        for key in ("x", "edge_index", "edge_attr", "y"):
            assert torch.equal(a[key], b[key]), key
    # the same files as prediction input
    again = read_graphs_for_predict(ref.schema, str(raw))
    assert all(torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) for a, b in zip(again, ref.graphs))


def test_bom_in_planetoid_test_index(tmp_path):
    raw = tmp_path / "Planetoid" / "Cora" / "raw"
    shutil.copytree(CORA_RAW, raw)
    add_bom(raw / "ind.cora.test.index")
    (g,) = load_dataset("Cora", str(tmp_path)).graphs
    ref = load_dataset("Cora").graphs[0]
    assert torch.equal(g.x, ref.x) and torch.equal(g.y, ref.y) and torch.equal(g.edge_index, ref.edge_index)
    (p,) = read_graphs_for_predict(load_dataset("Cora").schema, str(raw))
    assert torch.equal(p.x, ref.x)


def test_bom_in_molecule_csv_smiles_file_and_json(tmp_path):
    csv_path = write_tox21(tmp_path, ["0,1,,0,0,0,0,0,0,0,0,1,T1,CCO", "1,0,,0,0,0,0,0,0,0,0,1,T2,c1ccccc1"])
    add_bom(csv_path)
    ds = load_dataset("Tox21", str(tmp_path))
    assert [g.num_nodes for g in ds.graphs] == [3, 6] and ds.labels[1, 0] == 1
    smi = tmp_path / "in.smi"
    smi.write_bytes(BOM + b"CCO\nc1ccccc1\n")
    assert [g.num_nodes for g in read_graphs_for_predict(molecule_schema(), str(smi))] == [3, 6]
    (tmp_path / "temporal").mkdir()
    (tmp_path / "temporal" / "chickenpox.json").write_bytes(BOM + (EMBEDDED_ROOT / "temporal" / "chickenpox.json").read_bytes())
    assert len(load_dataset("chickenpox", str(tmp_path)).graphs) == len(load_dataset("chickenpox").graphs)


# ----------------------------------------------------------------------------- label sets


def test_single_class_is_refused(tmp_path):
    write_mutag_subset(tmp_path / "TU" / "MUTAG" / "raw", 20)
    (tmp_path / "TU" / "MUTAG" / "raw" / "MUTAG_graph_labels.txt").write_text("1\n" * 20)
    with pytest.raises(DataError, match=r"MUTAG: every graph \(20\) has the label 1 in MUTAG_graph_labels\.txt; "
                                        "classification needs at least two classes"):
        load_dataset("MUTAG", str(tmp_path))
    write_toy(tmp_path / "TU" / "TOY" / "raw")  # an unregistered TU folder: same rule
    (tmp_path / "TU" / "TOY" / "raw" / "TOY_graph_labels.txt").write_text("-1\n-1\n")
    with pytest.raises(DataError, match=r"TOY: every graph \(2\) has the label -1"):
        load_dataset("TOY", str(tmp_path))


def test_single_class_is_refused_by_the_cli(tmp_path, capsys):
    write_mutag_subset(tmp_path / "TU" / "MUTAG" / "raw", 20)
    (tmp_path / "TU" / "MUTAG" / "raw" / "MUTAG_graph_labels.txt").write_text("-1\n" * 20)
    code, out, err = train(capsys, tmp_path, tmp_path / "run")
    assert code == 2 and "Traceback" not in out + err
    assert "MUTAG: every graph (20) has the label -1 in MUTAG_graph_labels.txt" in flat(err)
    assert not (tmp_path / "run" / "metrics.json").exists()


def stray_mutag(root: Path, k: int = 30, line: int = 7) -> str:
    """The first ``k`` MUTAG graphs with graph ``line``'s label replaced by 5; returns the expected note."""
    raw = root / "TU" / "MUTAG" / "raw"
    write_mutag_subset(raw, k)
    edit_line(raw / "MUTAG_graph_labels.txt", line, "5")
    counts = Counter(int(v) for v in (raw / "MUTAG_graph_labels.txt").read_text().split())
    assert counts[5] == 1 and counts[-1] + counts[1] == k - 1  # counted from the file itself
    return (f"MUTAG declares 2 classes but MUTAG_graph_labels.txt holds 3 label values (-1: {counts[-1]} graphs, "
            f"1: {counts[1]} graphs, 5: 1 graph); the rarest, 5 (1 graph), look like stray labels. The model gets "
            "3 outputs and ROC-AUC (defined for two classes) is not reported.")


def test_stray_label_value_is_noted(tmp_path):
    expected = stray_mutag(tmp_path)
    ds = load_dataset("MUTAG", str(tmp_path))
    assert ds.out_dim == 3 and ds.notes == [expected]
    assert load_dataset("MUTAG").notes == []  # the real file: 2 values, as declared


def test_stray_label_value_is_noted_by_the_cli(tmp_path, capsys):
    expected = stray_mutag(tmp_path)
    code, out, err = train(capsys, tmp_path, tmp_path / "run")
    assert code == 0, err
    assert f"note: {expected}" in flat(out)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["notes"] == [expected] and "test_roc_auc" not in metrics


def rewrite_cora_labels(root: Path, relabel) -> None:
    """Cora under ``root`` with its one-hot label matrices (y, ty, ally) passed through ``relabel``."""
    raw = root / "Planetoid" / "Cora" / "raw"
    shutil.copytree(CORA_RAW, raw)
    for suffix in ("y", "ty", "ally"):
        with open(raw / f"ind.cora.{suffix}", "rb") as f:
            y = pickle.load(f, encoding="latin1")
        with open(raw / f"ind.cora.{suffix}", "wb") as f:
            pickle.dump(relabel(suffix, np.asarray(y)), f)


def test_planetoid_single_class_and_extra_class(tmp_path):
    assert torch.bincount(load_dataset("Cora").labels).tolist() == CORA_COUNTS  # the published counts

    def one_class(suffix, y):
        out = np.zeros_like(y)
        out[:, 3] = 1
        return out

    rewrite_cora_labels(tmp_path / "one", one_class)
    with pytest.raises(DataError, match=r"Cora: every node \(2708\) has the label 3 in ind\.cora\.ally"):
        load_dataset("Cora", str(tmp_path / "one"))

    def eighth_class(suffix, y):  # one extra column; node 0 of ally (also node 0 of y) moved into it
        out = np.concatenate([y, np.zeros((len(y), 1), dtype=y.dtype)], axis=1)
        if suffix in ("y", "ally"):
            out[0] = 0
            out[0, 7] = 1
        return out

    rewrite_cora_labels(tmp_path / "eight", eighth_class)
    ds = load_dataset("Cora", str(tmp_path / "eight"))
    old = int(load_dataset("Cora").labels[0])
    counts = list(CORA_COUNTS) + [1]
    counts[old] -= 1
    table = ", ".join(f"{c}: {n} node{'s' if n != 1 else ''}" for c, n in enumerate(counts))
    assert ds.out_dim == 8 and ds.notes == [
        f"Cora declares 7 classes but ind.cora.ally and .ty (class = the one-hot column) holds 8 label values "
        f"({table}); the rarest, 7 (1 node), look like stray labels. The model gets 8 outputs."]
