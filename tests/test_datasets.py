"""Dataset loading, validation, staging and prediction input: real files, real PyG, no network."""
from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from gnnformer.datasets import (
    FeatureSchema,
    GraphDataset,
    list_datasets,
    load_dataset,
    read_graphs_for_predict,
    resolve_data_root,
)
from gnnformer.errors import CheckpointError, DataError
from gnnformer.paths import EMBEDDED_ROOT, cache_dir

MUTAG_RAW = EMBEDDED_ROOT / "TU" / "MUTAG" / "raw"
CORA_RAW = EMBEDDED_ROOT / "Planetoid" / "Cora" / "raw"
TOX21_TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
               "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test may reach the network; the one download test lifts this itself."""
    monkeypatch.setenv("GNNFORMER_OFFLINE", "1")


# ----------------------------------------------------------------------------- helpers


def copy_mutag(root: Path) -> Path:
    """A full copy of the built-in MUTAG under ``root/TU/MUTAG/raw``; returns the raw folder."""
    raw = root / "TU" / "MUTAG" / "raw"
    shutil.copytree(MUTAG_RAW, raw)
    return raw


def write_mutag_subset(folder: Path, k: int, prefix: str = "MUTAG", graph_labels: bool = True) -> None:
    """The first ``k`` MUTAG graphs as TU files ``<prefix>_*.txt`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)

    def read(suffix: str) -> list[str]:
        return (MUTAG_RAW / f"MUTAG_{suffix}.txt").read_text().splitlines()

    gi = read("graph_indicator")
    n = sum(1 for g in gi if int(g) <= k)
    keep = [i for i, line in enumerate(read("A")) if int(line.split(",")[0]) <= n]
    files = {
        "graph_indicator": gi[:n],
        "node_labels": read("node_labels")[:n],
        "A": [read("A")[i] for i in keep],
        "edge_labels": [read("edge_labels")[i] for i in keep],
    }
    if graph_labels:
        files["graph_labels"] = read("graph_labels")[:k]
    for suffix, lines in files.items():
        (folder / f"{prefix}_{suffix}.txt").write_text("\n".join(lines) + "\n")


def edit_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ----------------------------------------------------------------------------- built-in data


def test_embedded_mutag_loads_without_a_root():
    ds = load_dataset("MUTAG")
    assert isinstance(ds, GraphDataset)
    assert (ds.name, ds.task, len(ds.graphs)) == ("MUTAG", "graph_classification", 188)
    assert (ds.num_features, ds.num_edge_features, ds.out_dim) == (7, 4, 2)
    assert torch.bincount(ds.labels).tolist() == [63, 125]
    g = ds.graphs[0]
    assert g.x.dtype == torch.float32 and g.x.shape[1] == 7 and torch.all(g.x.sum(1) == 1)
    assert g.edge_attr.dtype == torch.float32 and g.edge_attr.shape == (g.num_edges, 4)
    assert g.y.dtype == torch.long and g.y.shape == (1,)
    assert sum(g.num_nodes for g in ds.graphs) == 3371
    assert ds.root == MUTAG_RAW and ds.schema.kind == "tu"
    assert ds.schema.description.startswith("one-hot of 7 TU node labels")
    assert ds.schema.details["node_label_offsets"] == [0] and ds.schema.details["graph_label_values"] == [-1, 1]
    assert not list(EMBEDDED_ROOT.rglob("processed"))  # the package is never written into


def test_embedded_cora_loads_without_a_root():
    ds = load_dataset("Cora")
    assert (ds.task, len(ds.graphs), ds.out_dim, ds.num_edge_features) == ("node_classification", 1, 7, 0)
    g = ds.graphs[0]
    assert g.x.shape == (2708, 1433) and g.x.dtype == torch.float32
    assert g.edge_index.shape == (2, 10556)
    assert g.y.dtype == torch.long and g.y.shape == (2708,)
    assert [int(g[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [140, 500, 1000]
    assert torch.equal(ds.labels, g.y)


def test_names_resolve_in_any_case_and_list_has_summaries():
    assert load_dataset("mutag").name == "MUTAG"
    assert load_dataset("CORA").name == "Cora"
    listed = dict(list_datasets())
    assert {"MUTAG", "PROTEINS", "NCI1", "IMDB-BINARY", "Cora", "CiteSeer", "PubMed", "Tox21", "SIDER"} <= set(listed)
    assert all(summary.strip() for summary in listed.values())


def test_reload_is_fast():
    load_dataset("MUTAG")
    start = time.perf_counter()
    load_dataset("MUTAG")
    assert time.perf_counter() - start < 0.5


# ----------------------------------------------------------------------------- shared benchmark files


@pytest.fixture(scope="module")
def shared(shared_root):
    """Load each shared dataset once per module (PyG processing of NCI1/Tox21 takes seconds)."""
    loaded: dict[str, GraphDataset] = {}

    def get(name: str) -> GraphDataset:
        if name not in loaded:
            loaded[name] = load_dataset(name, str(shared_root))
        return loaded[name]

    return get


@pytest.mark.parametrize("name, graphs, features, counts", [
    ("MUTAG", 188, 7, [63, 125]),
    ("PROTEINS", 1113, 3, [663, 450]),
    ("NCI1", 4110, 37, [2053, 2057]),
])
def test_shared_tu_counts(shared, shared_root, name, graphs, features, counts):
    ds = shared(name)
    assert (len(ds.graphs), ds.num_features, ds.out_dim) == (graphs, features, 2)
    assert torch.bincount(ds.labels).tolist() == counts
    assert all(g.x.shape[1] == features for g in ds.graphs[:50])
    assert ds.root == shared_root / "TU" / name / "raw"


def test_shared_proteins_says_attributes_are_unused(shared):
    assert any("PROTEINS_node_attributes.txt" in n for n in shared("PROTEINS").notes)


def test_shared_citeseer(shared):
    ds = shared("CiteSeer")
    g = ds.graphs[0]
    assert g.x.shape == (3327, 3703) and g.edge_index.shape == (2, 9104) and ds.out_dim == 6
    assert [int(g[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [120, 500, 1000]
    assert any("15 nodes" in n for n in ds.notes)


def test_shared_tox21_matches_csv(shared, shared_root):
    from rdkit import Chem, RDLogger

    ds = shared("Tox21")
    assert (len(ds.graphs), ds.out_dim, ds.task) == (7823, 12, "multitask_binary")
    assert ds.labels.shape == (7823, 12) and torch.isnan(ds.labels).any()
    g = ds.graphs[0]
    assert g.x.dtype == torch.float32 and g.x.shape[1] == ds.num_features == ds.schema.num_node_features
    assert g.edge_attr.shape[1] == ds.num_edge_features and g.y.shape == (1, 12)
    assert torch.all(g.x.sum(1) == 9)  # one hot per each of the 9 atom columns
    # NR-AR positives: 309 in the CSV, minus those on rows RDKit rejects.
    RDLogger.DisableLog("rdApp.*")
    with open(shared_root / "MoleculeNet" / "tox21" / "raw" / "tox21.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(r["NR-AR"] == "1" for r in rows) == 309
    kept = [r for r in rows if Chem.MolFromSmiles(r["smiles"]) is not None]
    assert len(rows) - len(kept) == 8
    assert int(torch.nansum(ds.labels[:, 0])) == sum(r["NR-AR"] == "1" for r in kept)
    assert int((ds.labels[:, 0] == 0).sum()) == sum(r["NR-AR"] == "0" for r in kept)
    assert any("8 SMILES rejected by RDKit" in n for n in ds.notes)


def test_shared_sider(shared):
    ds = shared("SIDER")
    assert (len(ds.graphs), ds.out_dim) == (1427, 27)
    assert ds.labels.shape == (1427, 27) and not torch.isnan(ds.labels).any()
    assert not any("rejected" in n for n in ds.notes)


def test_shared_pubmed_names_the_missing_file(shared_root):
    with pytest.raises(DataError) as err:
        load_dataset("PubMed", str(shared_root))
    msg = str(err.value)
    assert "ind.pubmed.allx" in msg and "ind.pubmed.x," not in msg.splitlines()[0]
    assert str(shared_root / "Planetoid" / "PubMed" / "raw") in msg and "--data-root" in msg


def test_shared_root_is_not_written(shared, shared_root):
    shared("MUTAG")
    assert not list(shared_root.rglob("processed"))


# ----------------------------------------------------------------------------- roots and staging


def test_missing_dataset_names_files_folder_origin_and_fix(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("PROTEINS", str(tmp_path))
    msg = str(err.value)
    for part in ("'PROTEINS'", "PROTEINS_A.txt", "PROTEINS_graph_indicator.txt", "PROTEINS_graph_labels.txt",
                 str(tmp_path / "TU" / "PROTEINS" / "raw"), "from --data-root", "GNNFORMER_DATA",
                 "skipped (GNNFORMER_OFFLINE"):
        assert part in msg
    assert not (tmp_path / "TU").exists()


def test_missing_from_embedded_root_says_so():
    with pytest.raises(DataError, match="built-in") as err:
        load_dataset("NCI1")
    assert "neither --data-root nor GNNFORMER_DATA" in str(err.value)


def test_root_must_be_a_directory(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DataError, match="is not a directory"):
        load_dataset("MUTAG", str(f))
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_root(str(tmp_path / "nowhere"))


def test_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="Unknown dataset 'NOPE'.*Known datasets: .*MUTAG"):
        load_dataset("NOPE", str(tmp_path))


def test_root_precedence_flag_env_embedded(tmp_path, monkeypatch):
    write_mutag_subset(tmp_path / "env" / "TU" / "MUTAG" / "raw", 50)
    write_mutag_subset(tmp_path / "flag" / "TU" / "MUTAG" / "raw", 20)
    assert resolve_data_root(None) == (EMBEDDED_ROOT, "embedded")
    assert len(load_dataset("MUTAG").graphs) == 188
    monkeypatch.setenv("GNNFORMER_DATA", str(tmp_path / "env"))
    assert resolve_data_root(None) == ((tmp_path / "env").resolve(), "env")
    assert len(load_dataset("MUTAG").graphs) == 50
    assert resolve_data_root(str(tmp_path / "flag"))[1] == "flag"
    assert len(load_dataset("MUTAG", str(tmp_path / "flag")).graphs) == 20
    with pytest.raises(DataError, match=r"from \$GNNFORMER_DATA"):
        load_dataset("NCI1")


def test_processing_goes_to_cache_not_root_and_edits_get_a_new_folder(tmp_path):
    raw = copy_mutag(tmp_path)
    before = tree(tmp_path)
    ds = load_dataset("MUTAG", str(tmp_path))
    assert tree(tmp_path) == before and ds.root == raw.resolve()
    stages = {p.name for p in (cache_dir() / "datasets").glob("MUTAG-*")}
    assert stages and all((cache_dir() / "datasets" / s / "MUTAG" / "processed").is_dir() for s in stages)
    edit_line(raw / "MUTAG_graph_labels.txt", 1, "-1")  # graph 0 changes class
    ds2 = load_dataset("MUTAG", str(tmp_path))
    assert torch.bincount(ds2.labels).tolist() == [64, 124]
    assert len({p.name for p in (cache_dir() / "datasets").glob("MUTAG-*")} - stages) == 1


def test_any_tu_folder_loads_by_name_in_any_case(tmp_path):
    write_mutag_subset(tmp_path / "TU" / "MyMols" / "raw", 12, prefix="MyMols")
    ds = load_dataset("mymols", str(tmp_path))
    assert ds.name == "MyMols" and len(ds.graphs) == 12 and ds.task == "graph_classification"


def test_odd_line_endings_are_read_like_clean_files(tmp_path):
    raw = copy_mutag(tmp_path)
    for i, f in enumerate(sorted(raw.glob("MUTAG_*.txt"))):
        text = f.read_text().rstrip("\n")  # no final newline: PyG alone would drop the last line
        f.write_bytes((text if i % 2 else text.replace("\n", "\r\n") + "\r\n\r\n  \n").encode())
    ds, ref = load_dataset("MUTAG", str(tmp_path)), load_dataset("MUTAG")
    assert len(ds.graphs) == 188
    assert torch.equal(ds.graphs[-1].x, ref.graphs[-1].x) and torch.equal(ds.labels, ref.labels)


def test_failed_download_leaves_no_empty_raw_folder(tmp_path, monkeypatch):
    from torch_geometric.datasets import Planetoid, TUDataset

    monkeypatch.delenv("GNNFORMER_OFFLINE")
    # Point the real download code at a closed local port: it fails at once, with no network.
    monkeypatch.setattr(TUDataset, "url", "http://127.0.0.1:9/tu")
    monkeypatch.setattr(Planetoid, "url", "http://127.0.0.1:9/planetoid")
    for name in ("IMDB-BINARY", "PubMed"):
        with pytest.raises(DataError, match=r"download:  failed \(") as err:
            load_dataset(name, str(tmp_path))
        assert "looked in" in str(err.value)
    assert not [p for p in (cache_dir() / "datasets").rglob("raw")
                if p.parent.name in ("IMDB-BINARY", "PubMed")]
    assert tree(tmp_path) == set()


def test_stalled_download_is_bounded(tmp_path, monkeypatch):
    """A server that accepts but never answers must not hang the loader (aiohttp and urllib paths)."""
    import socket
    import threading

    from torch_geometric.datasets import MoleculeNet, TUDataset

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(8)], daemon=True).start()
    base = f"http://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.delenv("GNNFORMER_OFFLINE")
    monkeypatch.setenv("GNNFORMER_DOWNLOAD_TIMEOUT", "0.5")
    monkeypatch.setattr(TUDataset, "url", base + "/tu")
    monkeypatch.setattr(MoleculeNet, "url", base + "/{}")
    try:
        for name in ("IMDB-BINARY", "Tox21"):
            start = time.perf_counter()
            with pytest.raises(DataError, match=r"download:  failed \("):
                load_dataset(name, str(tmp_path))
            assert time.perf_counter() - start < 10
    finally:
        server.close()


# ----------------------------------------------------------------------------- malformed TU files


@pytest.mark.parametrize("suffix, lineno, text, expected", [
    ("A", 5, "1, 2, 3", "MUTAG_A.txt:5: expected 2 node ids"),
    ("A", 7, "2, x", "MUTAG_A.txt:7: 'x' is not an integer"),
    ("node_labels", 10, "abc", "MUTAG_node_labels.txt:10: 'abc' is not an integer"),
    ("A", 3, "1, 99999", "MUTAG_A.txt:3: node id 99999 is outside 1..3371"),
    ("A", 3, "0, 2", "MUTAG_A.txt:3: node id 0 is outside 1..3371"),
    ("A", 3, "1, 3000", "MUTAG_A.txt:3: edge (1, 3000) joins graph 1 and graph"),
    ("graph_indicator", 20, "5", "MUTAG_graph_indicator.txt:20: graph id 5 follows 2"),
    ("graph_indicator", 1, "2", "MUTAG_graph_indicator.txt:1: the first graph id is 2"),
    ("edge_labels", 4, "", "MUTAG_edge_labels.txt:4: empty line"),
])
def test_malformed_tu_line(tmp_path, suffix, lineno, text, expected):
    raw = copy_mutag(tmp_path)
    edit_line(raw / f"MUTAG_{suffix}.txt", lineno, text)
    with pytest.raises(DataError) as err:
        load_dataset("MUTAG", str(tmp_path))
    assert expected in str(err.value)
    assert str(raw) in str(err.value)


def test_malformed_tu_lengths_and_empty_files(tmp_path):
    raw = copy_mutag(tmp_path)
    labels = raw / "MUTAG_node_labels.txt"
    good = labels.read_text()
    labels.write_text("".join(good.splitlines(keepends=True)[:-2]))
    with pytest.raises(DataError, match=r"MUTAG_node_labels.txt: has 3369 lines but .* 3371 nodes"):
        load_dataset("MUTAG", str(tmp_path))
    labels.write_text(good)
    (raw / "MUTAG_graph_labels.txt").write_text((raw / "MUTAG_graph_labels.txt").read_text() + "1\n")
    with pytest.raises(DataError, match=r"MUTAG_graph_labels.txt: has 189 lines .* 188 graphs"):
        load_dataset("MUTAG", str(tmp_path))
    (raw / "MUTAG_graph_labels.txt").unlink()
    with pytest.raises(DataError, match="no graph targets"):
        load_dataset("MUTAG", str(tmp_path))
    (raw / "MUTAG_graph_labels.txt").write_text("")
    with pytest.raises(DataError, match=r"MUTAG_graph_labels.txt: the file is empty"):
        load_dataset("MUTAG", str(tmp_path))


# ----------------------------------------------------------------------------- malformed Planetoid files


def test_malformed_planetoid_files(tmp_path):
    raw = tmp_path / "Planetoid" / "Cora" / "raw"
    shutil.copytree(CORA_RAW, raw)
    (raw / "ind.cora.graph").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"ind\.cora\.graph: cannot be read as a Planetoid pickle"):
        load_dataset("Cora", str(tmp_path))
    shutil.copy(CORA_RAW / "ind.cora.graph", raw / "ind.cora.graph")
    shutil.copy(CORA_RAW / "ind.cora.y", raw / "ind.cora.ty")  # 140 label rows where 1000 belong
    with pytest.raises(DataError, match=r"ind\.cora\.ty: has 140 rows but ind\.cora\.tx has 1000"):
        load_dataset("Cora", str(tmp_path))
    shutil.copy(CORA_RAW / "ind.cora.ty", raw / "ind.cora.ty")
    edit_line(raw / "ind.cora.test.index", 3, "12x")
    with pytest.raises(DataError, match=r"ind\.cora\.test\.index:3: '12x' is not an integer"):
        load_dataset("Cora", str(tmp_path))


# ----------------------------------------------------------------------------- MoleculeNet CSV


def write_tox21(root: Path, rows: list[str], header: str | None = None) -> Path:
    raw = root / "MoleculeNet" / "tox21" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    header = header or ",".join(TOX21_TASKS + ["mol_id", "smiles"])
    (raw / "tox21.csv").write_text("\n".join([header] + rows) + "\n")
    return raw / "tox21.csv"


def tox_row(smiles: str, labels: str = "0,1,,0,0,0,0,0,0,0,0,1") -> str:
    return f"{labels},TOX1,{smiles}"


def test_tiny_tox21_loads_and_counts_rejected_smiles(tmp_path):
    write_tox21(tmp_path, [tox_row("CCO"), tox_row("c1ccccc1O"), tox_row("C1CC"), tox_row("CC(=O)O")])
    ds = load_dataset("tox21", str(tmp_path))
    assert ds.name == "Tox21" and len(ds.graphs) == 3 and ds.out_dim == 12
    assert any("1 SMILES rejected by RDKit" in n and "lines 4" in n for n in ds.notes)
    assert torch.isnan(ds.labels[:, 2]).all() and ds.labels[0, 1] == 1
    assert ds.graphs[0].x.shape == (3, ds.num_features)


@pytest.mark.parametrize("rows, header, expected", [
    ([tox_row("CCO")], ",".join(TOX21_TASKS + ["mol_id", "smi"]), r"tox21.csv:1: no 'smiles' column"),
    ([tox_row("CCO"), "0,1,TOX2,CCO"], None, r"tox21.csv:3: expected 14 comma-separated columns.*found 4"),
    ([tox_row("CCO"), tox_row("CCN"), tox_row("CCC", "0,yes,,0,0,0,0,0,0,0,0,1")], None,
     r"tox21.csv:4: label 'yes' in column 'NR-AR-LBD' is not a number"),
    ([tox_row("CCO", "0,2,,0,0,0,0,0,0,0,0,1")], None, r"tox21.csv:2: label '2' .* is not 0 or 1"),
])
def test_malformed_molecule_csv(tmp_path, rows, header, expected):
    write_tox21(tmp_path, rows, header)
    with pytest.raises(DataError, match=expected):
        load_dataset("Tox21", str(tmp_path))


# ----------------------------------------------------------------------------- featureless TU: degree


def write_toy(folder: Path, prefix: str = "TOY") -> None:
    """Graph 1: path 1-2-3. Graph 2: star centred on 4 with leaves 5, 6, 7 (plus a self loop on 5)."""
    folder.mkdir(parents=True, exist_ok=True)
    edges = [(1, 2), (2, 1), (2, 3), (3, 2), (4, 5), (5, 4), (4, 6), (6, 4), (4, 7), (7, 4), (5, 5)]
    (folder / f"{prefix}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (folder / f"{prefix}_graph_indicator.txt").write_text("1\n1\n1\n2\n2\n2\n2\n")
    (folder / f"{prefix}_graph_labels.txt").write_text("0\n1\n")


def test_featureless_tu_gets_one_hot_degree(tmp_path):
    write_toy(tmp_path / "TU" / "TOY" / "raw")
    ds = load_dataset("TOY", str(tmp_path))
    assert ds.schema.details["degree_cap"] == 3 and ds.num_features == 4 and ds.num_edge_features == 0
    assert ds.schema.description == "one-hot degree capped at 3"
    expected = [torch.eye(4)[[1, 2, 1]], torch.eye(4)[[3, 1, 1, 1]]]  # the self loop is dropped
    for g, x in zip(ds.graphs, expected):
        assert torch.equal(g.x, x) and g.edge_attr is None
    assert any("no node labels or attributes" in n and "degree" in n for n in ds.notes)
    again = read_graphs_for_predict(ds.schema, str(tmp_path / "TU" / "TOY" / "raw"))
    assert all(torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
               for a, b in zip(again, ds.graphs))


# ----------------------------------------------------------------------------- schema and prediction input


def test_schema_round_trip_and_compatibility():
    mutag = load_dataset("MUTAG").schema
    again = FeatureSchema.from_dict(json.loads(json.dumps(mutag.to_dict())))
    assert again == mutag
    again.check_compatible(mutag)
    cora = load_dataset("Cora").schema
    with pytest.raises(CheckpointError) as err:
        mutag.check_compatible(cora)
    msg = str(err.value)
    assert mutag.description in msg and cora.description in msg and "node features 7 vs 1433" in msg
    shifted = FeatureSchema.from_dict({**mutag.to_dict(), "details": {**mutag.details, "node_label_offsets": [1]}})
    with pytest.raises(CheckpointError, match="node_label_offsets"):
        mutag.check_compatible(shifted)


def test_predict_tu_subset_encodes_like_training(tmp_path):
    ds = load_dataset("MUTAG")
    write_mutag_subset(tmp_path / "new", 10, prefix="NEW")
    graphs = read_graphs_for_predict(ds.schema, str(tmp_path / "new"))
    assert len(graphs) == 10
    for new, old in zip(graphs, ds.graphs[:10]):
        for key in ("x", "edge_index", "edge_attr", "y"):
            assert torch.equal(new[key], old[key]), key
            assert new[key].dtype == old[key].dtype


def test_predict_tu_without_labels_and_out_of_range_label(tmp_path):
    schema = load_dataset("MUTAG").schema
    write_mutag_subset(tmp_path / "new", 5, prefix="NEW", graph_labels=False)
    graphs = read_graphs_for_predict(schema, str(tmp_path / "new"))
    assert len(graphs) == 5 and "y" not in graphs[0]
    edit_line(tmp_path / "new" / "NEW_node_labels.txt", 4, "7")
    with pytest.raises(DataError, match=r"NEW_node_labels.txt:4: node label 7 is outside the training range 0..6"):
        read_graphs_for_predict(schema, str(tmp_path / "new"))
    edit_line(tmp_path / "new" / "NEW_node_labels.txt", 4, "0")
    (tmp_path / "new" / "NEW_graph_labels.txt").write_text("1\n-1\n1\n3\n1\n")
    with pytest.raises(DataError, match=r"NEW_graph_labels.txt:4: graph label 3 was not a class"):
        read_graphs_for_predict(schema, str(tmp_path / "new"))
    with pytest.raises(DataError, match="exactly one <PREFIX>_A.txt"):
        read_graphs_for_predict(schema, str(tmp_path))


def test_predict_planetoid_folder():
    ds = load_dataset("Cora")
    (g,) = read_graphs_for_predict(ds.schema, str(CORA_RAW))
    assert torch.equal(g.x, ds.graphs[0].x) and torch.equal(g.edge_index, ds.graphs[0].edge_index)
    with pytest.raises(DataError, match="expected exactly one ind.<name>.x"):
        read_graphs_for_predict(ds.schema, str(MUTAG_RAW))


def test_predict_smiles_text_and_csv(tmp_path):
    from gnnformer.datasets.molecules import molecule_schema

    schema = molecule_schema()
    smi = tmp_path / "in.smi"
    smi.write_text("CCO ethanol\nc1ccccc1\n\nCC(=O)O\n")
    graphs = read_graphs_for_predict(schema, str(smi))
    assert [g.num_nodes for g in graphs] == [3, 6, 4]
    assert graphs[1].x.shape == (6, schema.num_node_features) and graphs[1].x.dtype == torch.float32
    assert graphs[1].edge_attr.shape == (12, schema.num_edge_features)
    table = tmp_path / "in.csv"
    table.write_text('name,smiles\nethanol,CCO\n"acetic, acid",CC(=O)O\n')
    assert [g.num_nodes for g in read_graphs_for_predict(schema, str(table))] == [3, 4]
    smi.write_text("CCO\nC1CC\nc1cccc\n")
    with pytest.raises(DataError) as err:
        read_graphs_for_predict(schema, str(smi))
    assert "2 SMILES" in str(err.value) and "in.smi:2: 'C1CC'" in str(err.value) and "in.smi:3" in str(err.value)
    with pytest.raises(DataError, match="no such file"):
        read_graphs_for_predict(schema, str(tmp_path / "absent.smi"))
    with pytest.raises(DataError, match="expected a folder"):
        read_graphs_for_predict(load_dataset("MUTAG").schema, str(table))
    with pytest.raises(DataError, match="not a file"):
        read_graphs_for_predict(schema, str(tmp_path))


# ----------------------------------------------------------------------------- concurrent first loads

def _load_after_barrier(cache: str, raw_root: str, barrier, results) -> None:
    import os

    os.environ["GNNFORMER_CACHE"] = cache
    os.environ["GNNFORMER_OFFLINE"] = "1"
    from gnnformer.datasets import load_dataset as load
    from gnnformer.errors import DataError as Error

    barrier.wait()
    try:
        results.put(("ok", len(load("MUTAG", raw_root).graphs)))
    except Error as err:
        results.put(("error", str(err)))


def test_jobs_started_together_process_a_dataset_once_and_all_load_it(tmp_path):
    """Two benchmark rows or torchrun ranks started at once used to process the same cache folder
    together, and one read the other's half-written data.pt ("PyG could not process ...")."""
    import multiprocessing

    root = tmp_path / "data"
    shutil.copytree(MUTAG_RAW, root / "TU" / "MUTAG" / "raw")
    ctx = multiprocessing.get_context("spawn")
    jobs, barrier, results = 3, ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_load_after_barrier, args=(str(tmp_path / "cache"), str(root), barrier, results))
             for _ in range(jobs)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert outcomes == [("ok", 188)] * jobs
    assert len(list((tmp_path / "cache" / "datasets").glob("MUTAG-*/MUTAG/processed/data.pt"))) == 1
