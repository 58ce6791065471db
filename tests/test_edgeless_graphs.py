"""Graphs without edges and one-node graphs are valid data: their encodings (hand-checked), the
encoding cache, and the graph transformers through `gnnformer train` and `gnnformer predict`."""
import csv
import hashlib
import io
import os
import stat
import struct

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from gnnformer import cli
from gnnformer.datasets import load_dataset
from gnnformer.datasets.encodings import graphs_key, precompute_encodings
from gnnformer.errors import DataError
from gnnformer.nn import LapPE, RWSE, ShortestPathDistance
from gnnformer.paths import cache_dir

NO_EDGES = torch.empty(2, 0, dtype=torch.long)


def edgeless(n):
    return Data(x=torch.ones(n, 1), edge_index=NO_EDGES.clone(), num_nodes=n)


def path_plus_isolated():
    """Path 0 - 1 - 2 and node 3 without edges."""
    return Data(x=torch.ones(4, 1), edge_index=to_undirected(torch.tensor([[0, 1], [1, 2]])), num_nodes=4)


# --------------------------------------------------------------------------------------------
# Encodings, by hand


def test_one_node_graph_encodings():
    g = edgeless(1)
    assert torch.equal(LapPE(3)(g).lap_pe, torch.zeros(1, 3))  # no non-trivial eigenvector
    assert torch.equal(RWSE(4)(g).rwse, torch.zeros(1, 4))  # a walk cannot take a step
    assert torch.equal(ShortestPathDistance()(g).spd, torch.tensor([0]))


def test_edgeless_graph_encodings():
    g = edgeless(3)
    # Every node is isolated: all zeros, whatever the node order (no node singled out).
    assert torch.equal(LapPE(2)(g).lap_pe, torch.zeros(3, 2))
    assert torch.equal(RWSE(3)(g).rwse, torch.zeros(3, 3))
    expected = torch.tensor([[0, -1, -1], [-1, 0, -1], [-1, -1, 0]])  # 0 to itself, unreachable elsewhere
    assert torch.equal(ShortestPathDistance()(g).spd.view(3, 3), expected)


def test_isolated_node_beside_edges_gets_zero_lap_pe_and_rwse():
    g = path_plus_isolated()
    pe = LapPE(3)(g).lap_pe
    # Normalised Laplacian of the path: eigenvalues 0, 1, 2; for 1: (1, 0, -1) / sqrt(2), for 2:
    # (1, -sqrt(2), 1) / 2, sign made canonical (largest entry positive). Two non-trivial vectors,
    # so the third column is padding; node 3 takes no eigenvector: a zero row.
    r = 2 ** -0.5
    torch.testing.assert_close(pe[:3, 0].abs(), torch.tensor([r, 0.0, r]), atol=1e-6, rtol=0)
    assert float(pe[0, 0] * pe[2, 0]) < 0
    torch.testing.assert_close(pe[:3, 1], torch.tensor([-0.5, r, -0.5]), atol=1e-6, rtol=0)
    assert torch.equal(pe[:, 2], torch.zeros(4)) and torch.equal(pe[3], torch.zeros(3))
    # Return probabilities: ends of the path come back in 2 steps with 1/2, the middle with 1;
    # never in an odd number of steps; the isolated node never moves.
    rw = RWSE(3)(g).rwse
    expected = torch.tensor([[0, 0.5, 0], [0, 1, 0], [0, 0.5, 0], [0, 0, 0]])
    torch.testing.assert_close(rw, expected, atol=1e-6, rtol=0)
    spd = ShortestPathDistance()(g).spd.view(4, 4)
    assert torch.equal(spd[3], torch.tensor([-1, -1, -1, 0])) and torch.equal(spd[0, :3], torch.tensor([0, 1, 2]))


# --------------------------------------------------------------------------------------------
# The cache


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GNNFORMER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_key_format_is_unchanged_and_takes_graphs_without_edges():
    # sha256 over (num_nodes, num_edges) as two native int64, then the int64 edge_index bytes:
    # the format existing cache files were written under.
    g = path_plus_isolated()
    expected = hashlib.sha256(struct.pack("=qq", 4, 4) + g.edge_index.numpy().tobytes()).hexdigest()
    assert graphs_key([g]) == expected
    assert graphs_key([edgeless(1)]) == hashlib.sha256(struct.pack("=qq", 1, 0)).hexdigest()
    keys = {graphs_key([edgeless(1)]), graphs_key([edgeless(3)]), graphs_key([edgeless(1), edgeless(1)])}
    assert len(keys) == 3


def test_precompute_caches_graphs_without_edges(fresh_cache):
    graphs = [edgeless(1), path_plus_isolated(), edgeless(3)]
    first = precompute_encodings(graphs, lap_pe=2, rwse=3, spd=True)
    files = sorted(p.name.split("-")[0] for p in (fresh_cache / "encodings").iterdir())
    assert files == ["lap_pe2", "rwse3", "spd"]
    again = precompute_encodings(graphs, lap_pe=2, rwse=3, spd=True)  # loaded from the files
    for a, b, g in zip(first, again, graphs):
        assert torch.equal(a.lap_pe, b.lap_pe) and torch.equal(a.rwse, b.rwse) and torch.equal(a.spd, b.spd)
        assert torch.equal(b.lap_pe, LapPE(2)(g).lap_pe) and torch.equal(b.spd, ShortestPathDistance()(g).spd)
    assert torch.equal(again[2].spd, torch.tensor([0, -1, -1, -1, 0, -1, -1, -1, 0]))


# --------------------------------------------------------------------------------------------
# An unwritable cache folder


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(folder, os.W_OK):  # root writes anyway: nothing to test
        folder.chmod(stat.S_IRWXU)
        pytest.skip("running as root: a read-only folder is still writable")
    yield folder
    folder.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("sub", ["", "cache"])  # the folder itself, or one to be created in it
def test_unwritable_cache_names_gnnformer_cache(read_only, monkeypatch, sub):
    monkeypatch.setenv("GNNFORMER_CACHE", str(read_only / sub))
    with pytest.raises(DataError, match=r"cannot be written.*GNNFORMER_CACHE") as info:
        precompute_encodings([edgeless(2)], spd=True)
    assert str(read_only / sub).rstrip("/") in str(info.value)
    # Without the cache nothing is written: computing still works.
    out = precompute_encodings([edgeless(2)], spd=True, cache=False)
    assert torch.equal(out[0].spd, torch.tensor([0, -1, -1, 0]))


def test_cache_blocked_by_a_file_names_gnnformer_cache(tmp_path, monkeypatch):
    # Unlike a read-only folder, this fails for root too.
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("GNNFORMER_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(DataError, match=r"file/cache cannot be written.*GNNFORMER_CACHE"):
        cache_dir()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "encodings").write_text("")  # a file where the encodings folder goes
    monkeypatch.setenv("GNNFORMER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"cache/encodings cannot be written.*GNNFORMER_CACHE"):
        precompute_encodings([edgeless(2)], spd=True)


def test_cli_reports_unwritable_cache(read_only, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("GNNFORMER_CACHE", str(read_only))
    code = cli.main(["train", "--model", "gps", "--dataset", "MUTAG", "--epochs", "1", "--quiet",
                     "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "GNNFORMER_CACHE" in err and str(read_only) in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------
# End to end: a TU dataset with a one-node graph and graphs without edges


def write_lonely(raw, prefix="LONELY"):
    """20 graphs: paths (label 0) and cycles (label 1) of 3-6 nodes, except graph 6 (one node)
    and graphs 10 and 20 (three nodes, no edges; the last one has no line in the A file after it)."""
    raw.mkdir(parents=True)
    edges, indicator, labels, node_labels, node = [], [], [], [], 1
    for g in range(20):
        n, cycle = (1, False) if g == 5 else (3, False) if g in (9, 19) else (3 + g % 4, g % 2 == 0)
        if g not in (5, 9, 19):
            pairs = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if cycle else [])
            edges += [e for a, b in pairs for e in ((node + a, node + b), (node + b, node + a))]
        indicator += [g + 1] * n
        node_labels += [(node + i) % 3 for i in range(n)]
        labels.append(int(cycle))
        node += n
    (raw / f"{prefix}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (raw / f"{prefix}_graph_indicator.txt").write_text("".join(f"{i}\n" for i in indicator))
    (raw / f"{prefix}_graph_labels.txt").write_text("".join(f"{y}\n" for y in labels))
    (raw / f"{prefix}_node_labels.txt").write_text("".join(f"{y}\n" for y in node_labels))


@pytest.fixture(scope="module")
def lonely_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lonely")
    write_lonely(root / "TU" / "LONELY" / "raw")
    return root


def test_tu_dataset_keeps_graphs_without_edges(lonely_root):
    ds = load_dataset("LONELY", str(lonely_root))
    assert len(ds.graphs) == 20
    sizes = [(int(g.num_nodes), int(g.edge_index.size(1))) for g in ds.graphs]
    assert sizes[5] == (1, 0) and sizes[9] == (3, 0) and sizes[19] == (3, 0)
    assert sizes[0] == (3, 6) and sizes[1] == (4, 6)  # cycle of 3, path of 4 (both directions)


@pytest.mark.parametrize("model", ["gps", "transformer", "gradformer"])
def test_train_and_predict_with_graphs_without_edges(lonely_root, tmp_path, capsys, model):
    out = tmp_path / "run"
    code = cli.main(["train", "--model", model, "--dataset", "LONELY", "--data-root", str(lonely_root),
                     "--epochs", "1", "--quiet", "--out", str(out), "model.hidden=32", "model.layers=1"])
    err = capsys.readouterr().err
    assert code == 0, err
    code = cli.main(["predict", "--checkpoint", str(out / "best.pt"),
                     "--input", str(lonely_root / "TU" / "LONELY" / "raw")])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert [int(r["index"]) for r in rows] == list(range(20))  # one row per graph, in order
    probs = torch.tensor([[float(r["p_class0"]), float(r["p_class1"])] for r in rows])
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs.sum(1), torch.ones(20), atol=1e-5, rtol=0)
