"""Text-attributed graphs: a node table + edge list parsed exactly, bad input named by file and line, splits,
and CiteSeer with its texts (checked against the counts in ../shared/datasets/README.md)."""
from collections import Counter

import pytest
import torch

from gnnformer.datasets.splits import Split
from gnnformer.datasets.text_graph import (TextGraph, load_citeseer_tag, load_text_dataset, load_text_graph,
                                           text_graph_split)
from gnnformer.errors import ConfigError, DataError, UserError

NODES = (
    "id,text,label,split\n"
    'a,"Graph networks, a survey",ML,train\n'
    "b,Databases for text,DB,val\n"
    "c,Query planning,DB,test\n"
    "d,Deep nets,ML,train\n"
    "e,An unlabelled note,,\n"
)
EDGES = "source\ttarget\na\tb\nb\ta\nc\tc\nd\tc\n"  # a duplicate (reversed) and a self loop


def _write(tmp_path, nodes=NODES, edges=EDGES, nodes_name="nodes.csv", edges_name="edges.tsv"):
    n, e = tmp_path / nodes_name, tmp_path / edges_name
    n.write_bytes(nodes if isinstance(nodes, bytes) else nodes.encode())
    e.write_bytes(edges if isinstance(edges, bytes) else edges.encode())
    return n, e


def test_node_table_and_edge_list_are_parsed_exactly(tmp_path):
    g = load_text_graph(*_write(tmp_path))
    assert g.name == "nodes"
    assert g.ids == ["a", "b", "c", "d", "e"]
    assert g.texts == ["Graph networks, a survey", "Databases for text", "Query planning", "Deep nets",
                       "An unlabelled note"]
    assert g.class_names == ["DB", "ML"]
    assert g.y.tolist() == [1, 0, 0, 1, -1]
    # a-b once (both directions), c-c dropped, d-c both ways; sorted by (source, target)
    assert g.edge_index.tolist() == [[0, 1, 2, 3], [1, 0, 3, 2]]
    assert g.edge_index.dtype == torch.long
    assert {k: v.tolist() for k, v in g.split.items()} == {"train": [0, 3], "val": [1], "test": [2]}
    assert (g.num_nodes, g.num_classes) == (5, 2)
    data = g.to_data(torch.ones(5, 3))
    assert data.num_nodes == 5 and torch.equal(data.edge_index, g.edge_index) and torch.equal(data.y, g.y)


def test_tsv_nodes_bom_integer_labels_headerless_csv_edges(tmp_path):
    nodes = "\ufeffID\tText\tLabel\n7\tfirst\t3\n8\tsecond\t1\n9\tthird\t\n"
    g = load_text_graph(*_write(tmp_path, nodes, "7,8\n9,8\n", "n.tsv", "e.csv"))
    assert g.ids == ["7", "8", "9"] and g.split is None
    assert g.class_names == ["1", "3"] and g.y.tolist() == [1, 0, -1]  # integers ordered by value
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]


def test_quoted_text_across_lines_keeps_line_numbers(tmp_path):
    nodes = 'id,text\na,"first line\nsecond line"\nb,\n'
    with pytest.raises(UserError) as err:
        load_text_graph(*_write(tmp_path, nodes, "a\tb\n"))
    assert f"{tmp_path / 'nodes.csv'}:4: node 'b' has an empty text" in str(err.value)


BAD = [
    # (nodes, edges, file with the error, line, words in the message)
    ("id,body,label\na,x,ML\n", EDGES, "nodes.csv", 1, "no 'text' column; the header's columns are 'id', 'body', 'label'"),
    ("ident,text\na,x\n", EDGES, "nodes.csv", 1, "no 'id' column"),
    ("id,text,label\na,x,ML\nb,  ,DB\n", "a\tb\n", "nodes.csv", 3, "empty text"),
    ("id,text\na,x\nb,y\na,z\n", "a\tb\n", "nodes.csv", 4, "duplicate node id 'a' (first on line 2)"),
    ("id,text\na,x\nb,y\n", "a\tb\nb\tzz\n", "edges.tsv", 2, "node id 'zz' is not in nodes.csv"),
    ("id,text\na,x\nb,y\n", "a\tb\nb\n", "edges.tsv", 2, "expected two node ids (source, target) separated by a tab"),
    ("id,text,label,split\na,x,ML,train\nb,y,DB,training\n", "a\tb\n", "nodes.csv", 3, "unknown split 'training'"),
    ("id,text,label,split\na,x,,train\n", "a\tb\n", "nodes.csv", 2, "in split 'train' but has no label"),
    ("id,text,label\na,x,ML\nb,y,-1\n", "a\tb\n", "nodes.csv", 3, "label -1 is negative"),
    ("id,text,label\na,x,2\nb,y,-1\n", "a\tb\n", "nodes.csv", 3, "label -1 is negative"),
    ("id,text\na,x\nb,y,z\n", "a\tb\n", "nodes.csv", 3, "expected 2 fields as in the header, found 3"),
    ("id,text\na,x\nb,caf\xe9\n".encode("latin-1"), "a\tb\n", "nodes.csv", 3, "byte 0xe9"),
    ("id,text\na,x\nb,y\n", b"a\tb\n\nb\ta\xff\n", "edges.tsv", 3, "is not UTF-8"),
]


@pytest.mark.parametrize("nodes, edges, where, line, message", BAD)
def test_bad_input_names_file_and_line(tmp_path, nodes, edges, where, line, message):
    with pytest.raises(UserError) as err:
        load_text_graph(*_write(tmp_path, nodes, edges))
    assert f"{tmp_path / where}:{line}: " in str(err.value)
    assert message in str(err.value)


def _graph(labels: list[int], per_class: int = 0) -> TextGraph:
    n = len(labels)
    return TextGraph(name="synthetic", ids=[str(i) for i in range(n)], texts=["t"] * n,
                     y=torch.tensor(labels), class_names=["x", "y", "z"][: max(labels) + 1],
                     edge_index=torch.empty(2, 0, dtype=torch.long))


def _disjoint(s: Split) -> bool:
    return len(set(s.train.tolist()) | set(s.val.tolist()) | set(s.test.tolist())) == sum(s.sizes())


def test_random_split_is_60_20_20_of_the_labelled_nodes_and_seeded():
    g = _graph([0, 1] * 25 + [-1] * 10)  # 50 labelled, 10 unlabelled at the end
    s = text_graph_split(g, "random", seed=3)
    assert s.sizes() == (30, 10, 10) and _disjoint(s)
    assert max(torch.cat([s.train, s.val, s.test])).item() < 50  # no unlabelled node
    assert all(torch.equal(t, t.sort().values) for t in (s.train, s.val, s.test))
    again, other = text_graph_split(g, "random", seed=3), text_graph_split(g, "random", seed=4)
    assert torch.equal(s.train, again.train) and torch.equal(s.test, again.test)
    assert not torch.equal(s.train, other.train)


def test_low_label_split_is_20_per_class_500_val_1000_test():
    labels = [0, 1, 2] * 520 + [-1] * 40
    g = _graph(labels)
    s = text_graph_split(g, "low-label", seed=0)
    assert s.sizes() == (60, 500, 1000) and _disjoint(s)
    assert torch.bincount(g.y[s.train]).tolist() == [20, 20, 20]
    assert (g.y[torch.cat([s.val, s.test])] >= 0).all()
    assert torch.equal(text_graph_split(g, "low-label", seed=0).val, s.val)
    assert not torch.equal(text_graph_split(g, "low-label", seed=1).train, s.train)


def test_file_split_and_its_errors(tmp_path):
    g = load_text_graph(*_write(tmp_path))
    s = text_graph_split(g, "file", seed=0)
    assert (s.train.tolist(), s.val.tolist(), s.test.tolist()) == ([0, 3], [1], [2])
    assert torch.equal(text_graph_split(g, "file", seed=5).train, s.train)  # the seed does not matter
    g.split = None
    with pytest.raises(ConfigError, match="no split column"):
        text_graph_split(g, "file", seed=0)
    with pytest.raises(ConfigError, match="random, low-label, file"):
        text_graph_split(g, "stratified", seed=0)
    nodes = "id,text,label,split\na,x,ML,train\nb,y,DB,val\n"
    with pytest.raises(DataError, match="no test node"):
        text_graph_split(load_text_graph(*_write(tmp_path, nodes, "a\tb\n")), "file", 0)


def test_a_json_split_file_overrides_the_column_and_is_checked(tmp_path):
    import json

    g = load_text_graph(*_write(tmp_path))
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": [2, 0], "valid": [3], "test": [1]}))
    s = text_graph_split(g, "file", seed=0, split_file=str(path))
    assert (s.train.tolist(), s.val.tolist(), s.test.tolist()) == ([0, 2], [3], [1])
    path.write_text(json.dumps({"train": [0], "valid": [3], "test": [9]}))
    with pytest.raises(DataError, match="out of range for 5 nodes of"):
        text_graph_split(g, "file", seed=0, split_file=str(path))
    path.write_text(json.dumps({"train": [0, 4], "valid": [3], "test": [1]}))
    with pytest.raises(DataError, match=r"node 4 \(e\) has no label"):
        text_graph_split(g, "file", seed=0, split_file=str(path))


def _tiny_citeseer(root):
    folder = root / "TAG" / "CiteSeer-Orig"
    folder.mkdir(parents=True)
    (folder / "citeseer_texts.txt").write_text("p1\nTitle one. Abstract.\nML\np2\nTitle two.\nAI\n"
                                               "p3\nTitle three.\nML")  # no final newline, as the real file
    (folder / "citeseer.cites").write_text("p1\tp1\np1\tp2\np2\tp1\nq9\tp3\np3\tp2\n")
    return folder


def test_citeseer_tag_layout_found_through_gnnformer_shared(tmp_path, monkeypatch):
    _tiny_citeseer(tmp_path)
    monkeypatch.setenv("GNNFORMER_SHARED", str(tmp_path))
    g = load_text_dataset("CiteSeer-TAG")
    assert g.name == "citeseer-tag" and g.ids == ["p1", "p2", "p3"]
    assert g.texts == ["Title one. Abstract.", "Title two.", "Title three."]
    assert g.class_names == ["AI", "ML"] and g.y.tolist() == [1, 0, 1]
    # self loop dropped, p1-p2 once, the edge to the untexted q9 dropped, p3-p2 kept
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert g.split is None


def test_missing_citeseer_folder_says_where_it_looked(tmp_path):
    with pytest.raises(DataError) as err:
        load_citeseer_tag(tmp_path)
    assert str(tmp_path / "TAG" / "CiteSeer-Orig") in str(err.value)
    assert "citeseer_texts.txt, citeseer.cites missing" in str(err.value)


def test_load_text_dataset_errors(tmp_path):
    with pytest.raises(DataError, match="Unknown text-attributed graph 'nope'.*citeseer-tag"):
        load_text_dataset("nope")
    nodes, edges = _write(tmp_path)
    with pytest.raises(ConfigError, match="needs an edge list"):
        load_text_dataset(str(nodes))
    assert load_text_dataset(str(nodes), str(edges)).ids == ["a", "b", "c", "d", "e"]


def test_citeseer_tag_matches_the_published_counts(shared_root):
    g = load_citeseer_tag(shared_root)
    assert g.num_nodes == 3186 and len(set(g.ids)) == 3186 and all(t.strip() for t in g.texts)
    assert g.class_names == ["AI", "Agents", "DB", "HCI", "IR", "ML"]
    counts = dict(zip(g.class_names, torch.bincount(g.y).tolist()))
    assert counts == {"DB": 685, "IR": 641, "ML": 569, "Agents": 562, "HCI": 490, "AI": 239}
    lines = (shared_root / "TAG" / "CiteSeer-Orig" / "citeseer.cites").read_text().split("\n")
    pairs = [line.split() for line in lines if line.strip()]
    ids = set(g.ids)
    both = [(a, b) for a, b in pairs if a in ids and b in ids]
    assert (len(pairs), len(both)) == (4732, 4397)
    undirected = {frozenset(p) for p in both if p[0] != p[1]}
    assert g.edge_index.size(1) == 2 * len(undirected) == 8450
    src, dst = g.edge_index
    assert (src != dst).all()
    assert Counter(zip(src.tolist(), dst.tolist())) == Counter(zip(dst.tolist(), src.tolist()))  # symmetric
    assert text_graph_split(g, "random", 0).sizes() == (1912, 637, 637)
    assert text_graph_split(g, "low-label", 0).sizes() == (120, 500, 1000)
