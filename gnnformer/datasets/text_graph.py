"""Text-attributed graphs: one text per node, class labels and an edge list, for language model + GNN training.

GLEM (Zhao et al., "Learning on Large-scale Text-attributed Graphs via Variational Inference",
ICLR 2023) trains a language model on the node texts and a GNN on the graph. The graphs come from

* ``citeseer-tag``: CiteSeer papers with their title and abstract (Giles et al. 1998; Sen et al.
  2008; texts as released with TAPE, He et al., ICLR 2024), read from ``TAG/CiteSeer-Orig``;
* a user's own files: a node table (id, text, label, optional split) plus an edge list, CSV or
  TSV (:func:`load_text_graph`), checked with ``file:line`` messages.

Edges are made undirected (both directions stored), without self loops or duplicates, sorted.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .root import describe_root, find_child, resolve_data_root
from .splits import Split, per_class_split, random_split, read_split_file
from .validate import read_utf8

#: Built-in text-attributed graphs (name -> one-line summary); gnnformer/catalog.py lists the same.
TEXT_DATASETS = {
    "citeseer-tag": "CiteSeer with raw texts: 3186 papers (title + abstract), 6 classes, 4225 undirected "
                    "citation links (TAG/CiteSeer-Orig)",
}
#: What :func:`text_graph_split` accepts.
TEXT_SPLITS = ("random", "low-label", "file")
#: Values of a node table's split column (an empty value: the node is in no split).
SPLIT_VALUES = ("train", "val", "test")
CITESEER_FILES = ("citeseer_texts.txt", "citeseer.cites")
#: ``../shared/datasets`` beside a source checkout, where the benchmark data lives by default.
CHECKOUT_SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@dataclass
class TextGraph:
    """A graph whose node ``i`` has id ``ids[i]``, text ``texts[i]`` and class ``y[i]`` (-1: no label)."""

    name: str
    ids: list[str]
    texts: list[str]
    y: Tensor  # long [N]
    class_names: list[str]  # y == k  <->  class_names[k]
    edge_index: Tensor  # long [2, E]: both directions, no self loops, no duplicates
    split: dict[str, Tensor] | None = None  # from a split column: "train"/"val"/"test" -> sorted indices

    @property
    def num_nodes(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_data(self, x: Tensor):
        """``Data(x, edge_index, y, num_nodes)`` with ``x`` one row per node (e.g. LM embeddings)."""
        from torch_geometric.data import Data

        if x.size(0) != self.num_nodes:
            raise ValueError(f"x has {x.size(0)} rows, the graph {self.num_nodes} nodes.")
        return Data(x=x, edge_index=self.edge_index, y=self.y, num_nodes=self.num_nodes)


# ----------------------------------------------------------------------------- reading tables


def _delimiter(path: Path, text: str) -> str | None:
    """Tab for .tsv/.tab, comma for .csv; otherwise what the first line holds (None: runs of spaces)."""
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "\t"
    if suffix == ".csv":
        return ","
    first = next((line for line in text.split("\n") if line.strip()), "")
    return "\t" if "\t" in first else "," if "," in first else None


def _rows(path: Path, text: str, delimiter: str | None) -> Iterator[tuple[int, list[str]]]:
    """``(line where the row starts, stripped fields)`` for every non-blank row.

    CSV quoting applies (a quoted text may hold the delimiter or span lines).
    """
    if delimiter is None:
        for i, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
            if line.strip():
                yield i, line.split()
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                yield start, [f.strip() for f in fields]
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: cannot be read as "
                        f"{'TSV' if delimiter == chr(9) else 'CSV'}: {exc}.") from None


class _Nodes:
    """Ids, texts and raw labels as they are read, checked one node at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.labels: list[tuple[int, str]] = []  # (line, label as written; "" = none)
        self.line_of: dict[str, int] = {}

    def add(self, line: int, node_id: str, text: str, label: str) -> None:
        where = f"{self.path}:{line}"
        if not node_id:
            raise DataError(f"{where}: empty node id.")
        if node_id in self.line_of:
            raise DataError(f"{where}: duplicate node id {node_id!r} (first on line {self.line_of[node_id]}).")
        if not text:
            raise DataError(f"{where}: node {node_id!r} has an empty text; every node needs one.")
        self.line_of[node_id] = line
        self.ids.append(node_id)
        self.texts.append(text)
        self.labels.append((line, label))

    def index(self) -> dict[str, int]:
        return {node_id: i for i, node_id in enumerate(self.ids)}

    def classes(self) -> tuple[Tensor, list[str]]:
        """``(y, class_names)``: integer labels sorted by value, others by name; "" -> -1."""
        given = [(line, label) for line, label in self.labels if label]
        for line, label in given:  # -1 is a common "no label" marker: say how to write that instead
            if (_integer(label) or 0) < 0:
                raise DataError(f"{self.path}:{line}: label {label} is negative; leave the label empty "
                                "for a node without one.")
        if all(_integer(label) is not None for _, label in given):
            values = sorted({_integer(label) for _, label in given})
            names = [str(v) for v in values]
            code = {label: values.index(_integer(label)) for _, label in given}
        else:
            names = sorted({label for _, label in given})
            code = {name: k for k, name in enumerate(names)}
        y = torch.tensor([code[label] if label else -1 for _, label in self.labels], dtype=torch.long)
        return y, names


def _integer(label: str) -> int | None:
    try:
        return int(label)
    except ValueError:
        return None


def _undirected(pairs: list[tuple[int, int]]) -> Tensor:
    """Both directions of every pair, without self loops or duplicates, sorted by (source, target)."""
    if not pairs:
        return torch.empty(2, 0, dtype=torch.long)
    edges = torch.tensor(pairs, dtype=torch.long).t()
    edges = edges[:, edges[0] != edges[1]]
    return torch.unique(torch.cat([edges, edges.flip(0)], dim=1), dim=1)


def _edge_pairs(path: Path, index: dict[str, int], nodes_file: str, unknown: str = "error") -> list[tuple[int, int]]:
    """Node-index pairs from the first two columns of an edge list; ``unknown="drop"`` skips edges to
    nodes that are not in ``index`` instead of refusing them. A first line naming no node is a header."""
    text = read_utf8(path)
    delimiter = _delimiter(path, text)
    pairs = []
    for k, (line, fields) in enumerate(_rows(path, text, delimiter)):
        if len(fields) < 2 or not all(fields[:2]):
            sep = {"\t": "a tab", ",": "a comma", None: "spaces"}[delimiter]
            raise DataError(f"{path}:{line}: expected two node ids (source, target) separated by {sep}, found "
                            f"{sum(1 for f in fields[:2] if f)}: {' '.join(fields)[:80]!r}.")
        a, b = fields[:2]
        if a in index and b in index:
            pairs.append((index[a], index[b]))
        elif k == 0 and a not in index and b not in index:
            continue  # a header such as "source,target"
        elif unknown == "error":
            missing = a if a not in index else b
            raise DataError(f"{path}:{line}: node id {missing!r} is not in {nodes_file}; every edge must join "
                            "two nodes of the node table.")
    return pairs


# ----------------------------------------------------------------------------- a user's node table + edges


def _column(path: Path, line: int, header: list[str], name: str, required: bool) -> int | None:
    lowered = [h.lower() for h in header]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    if required:
        raise DataError(f"{path}:{line}: no {name!r} column; the header's columns are "
                        f"{', '.join(repr(h) for h in header)}.")
    return None


def load_text_graph(nodes: str | Path, edges: str | Path, *, id_column: str = "id", text_column: str = "text",
                    label_column: str = "label", split_column: str = "split") -> TextGraph:
    """A text-attributed graph from a node table and an edge list (CSV or TSV, UTF-8, a BOM accepted).

    The node table has a header naming at least ``id_column`` and ``text_column`` (any case); an
    optional ``label_column`` holds class names or non-negative integers (empty: unlabelled, y=-1;
    integer classes are ordered by value, names alphabetically), and an optional ``split_column``
    one of train/val/test or empty per node. The edge list has two columns of node ids (a header
    line is optional); it is read as undirected. Files are comma-separated when named ``.csv``,
    tab-separated when named ``.tsv``; otherwise the first line decides. Any problem is a
    :class:`DataError` naming the file and line.
    """
    nodes_path, edges_path = Path(nodes).expanduser(), Path(edges).expanduser()
    for path in (nodes_path, edges_path):
        if not path.is_file():
            raise DataError(f"{path}: no such file.")
    text = read_utf8(nodes_path)
    rows = _rows(nodes_path, text, _delimiter(nodes_path, text))
    head_line, header = next(rows, (1, []))
    if not header:
        raise DataError(f"{nodes_path}: the file is empty; it needs a header ({id_column}, {text_column}, ...) "
                        "and one line per node.")
    id_col = _column(nodes_path, head_line, header, id_column, True)
    text_col = _column(nodes_path, head_line, header, text_column, True)
    label_col = _column(nodes_path, head_line, header, label_column, False)
    split_col = _column(nodes_path, head_line, header, split_column, False)
    table = _Nodes(nodes_path)
    split_of: list[tuple[int, str]] = []
    for line, fields in rows:
        if len(fields) != len(header):
            raise DataError(f"{nodes_path}:{line}: expected {len(header)} fields as in the header, found "
                            f"{len(fields)}; quote texts that hold the delimiter.")
        label = fields[label_col] if label_col is not None else ""
        table.add(line, fields[id_col], fields[text_col], label)
        if split_col is not None:
            split_of.append((line, _split_value(nodes_path, line, fields[split_col], label)))
    if not table.ids:
        raise DataError(f"{nodes_path}: has a header but no nodes.")
    y, class_names = table.classes()
    pairs = _edge_pairs(edges_path, table.index(), nodes_path.name)
    split = None
    if split_col is not None:
        split = {part: torch.tensor([i for i, (_, v) in enumerate(split_of) if v == part], dtype=torch.long)
                 for part in SPLIT_VALUES}
    return TextGraph(name=nodes_path.stem, ids=table.ids, texts=table.texts, y=y, class_names=class_names,
                     edge_index=_undirected(pairs), split=split)


def _split_value(path: Path, line: int, value: str, label: str) -> str:
    value = value.lower()
    if value and value not in SPLIT_VALUES:
        raise DataError(f"{path}:{line}: unknown split {value!r}; use train, val, test or leave it empty.")
    if value and not label:
        raise DataError(f"{path}:{line}: the node is in split {value!r} but has no label.")
    return value


# ----------------------------------------------------------------------------- CiteSeer with texts


def _citeseer_roots(data_root: str | os.PathLike | None) -> list[tuple[Path, str]]:
    """Where to look: only the --data-root when given, else $GNNFORMER_DATA, $GNNFORMER_SHARED and the
    shared folder beside the checkout, in that order."""
    if data_root is not None and str(data_root) != "":
        root, origin = resolve_data_root(data_root)
        return [(root, describe_root(root, origin))]
    roots = []
    if os.environ.get("GNNFORMER_DATA", "").strip():
        root, origin = resolve_data_root(None)
        roots.append((root, describe_root(root, origin)))
    shared = os.environ.get("GNNFORMER_SHARED", "").strip()
    if shared:
        roots.append((Path(shared).expanduser(), "from $GNNFORMER_SHARED"))
    roots.append((CHECKOUT_SHARED, "beside the source checkout"))
    return roots


def _citeseer_folder(data_root: str | os.PathLike | None) -> Path:
    looked = []
    for root, why in _citeseer_roots(data_root):
        tag = find_child(root, "TAG")
        folder = find_child(tag, "CiteSeer-Orig") if tag is not None else None
        missing = [f for f in CITESEER_FILES if folder is None or find_child(folder, f, want_dir=False) is None]
        if not missing:
            return folder
        looked.append(f"  {folder or root / 'TAG' / 'CiteSeer-Orig'} ({why}): {', '.join(missing)} missing")
    raise DataError("Dataset 'citeseer-tag' is not available. Looked in:\n" + "\n".join(looked) +
                    "\nFix: pass --data-root (or set GNNFORMER_SHARED) to a folder holding "
                    "TAG/CiteSeer-Orig/citeseer_texts.txt and citeseer.cites.")


def load_citeseer_tag(data_root: str | os.PathLike | None = None) -> TextGraph:
    """CiteSeer with raw texts from ``<root>/TAG/CiteSeer-Orig`` (root: see :func:`_citeseer_roots`).

    ``citeseer_texts.txt`` holds three lines per paper (id, title + abstract, class);
    ``citeseer.cites`` one ``cited citing`` pair per line. Of its 4732 lines the 4397 whose papers
    both have a text are kept (120 of them self-citations), giving 4225 undirected links over
    3186 papers. Classes are the sorted class names, in Python's string order:
    ``AI, Agents, DB, HCI, IR, ML``. Node order is the file's (not Planetoid's).
    """
    folder = _citeseer_folder(data_root)
    texts_path = find_child(folder, CITESEER_FILES[0], want_dir=False)
    lines = read_utf8(texts_path).replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) % 3:
        raise DataError(f"{texts_path}: has {len(lines)} lines, not a multiple of 3 "
                        "(each paper takes three: id, title + abstract, class).")
    table = _Nodes(texts_path)
    for k in range(0, len(lines), 3):
        node_id, text, label = (s.strip() for s in lines[k:k + 3])
        if not label:
            raise DataError(f"{texts_path}:{k + 3}: paper {node_id!r} has no class.")
        table.add(k + 1, node_id, text, label)
    y, class_names = table.classes()
    pairs = _edge_pairs(find_child(folder, CITESEER_FILES[1], want_dir=False), table.index(), texts_path.name,
                        unknown="drop")
    return TextGraph(name="citeseer-tag", ids=table.ids, texts=table.texts, y=y, class_names=class_names,
                     edge_index=_undirected(pairs))


# ----------------------------------------------------------------------------- by name, and splits


def load_text_dataset(name_or_nodes: str, edges: str | None = None,
                      data_root: str | os.PathLike | None = None) -> TextGraph:
    """``citeseer-tag`` (any case) by name, or a node table with its edge list (:func:`load_text_graph`)."""
    key = str(name_or_nodes).strip().lower()
    if key in TEXT_DATASETS:
        if edges is not None:
            raise ConfigError(f"{key} is a built-in dataset; an edge file goes with a node file instead.")
        return load_citeseer_tag(data_root)
    if edges is None:
        if not Path(name_or_nodes).expanduser().is_file():
            raise DataError(f"Unknown text-attributed graph {name_or_nodes!r}. Built in: "
                            f"{', '.join(TEXT_DATASETS)}; or give a node table with an edge list.")
        raise ConfigError(f"{name_or_nodes}: a node table needs an edge list too (--edges).")
    return load_text_graph(name_or_nodes, edges)


def text_graph_split(graph: TextGraph, split: str, seed: int, split_file: str | None = None) -> Split:
    """Train/val/test node indices (sorted) over the labelled nodes.

    ``random``: 60/20/20 of the labelled nodes, shuffled with ``seed``. ``low-label``: 20 nodes per
    class for training, then 500 validation and 1000 test nodes at random (the Planetoid budget,
    Yang et al. 2016), seeded. ``file``: ``split_file`` (JSON of node indices in the node table's
    order, :func:`~gnnformer.datasets.splits.read_split_file`) or else the node table's split
    column. Same seed, same split.
    """
    labelled = (graph.y >= 0).nonzero().view(-1)
    if split == "file" and split_file is not None:
        parts = read_split_file(split_file, graph.num_nodes, f"nodes of {graph.name}")
        unlabelled = [int(i) for i in torch.cat([parts.train, parts.val, parts.test]) if graph.y[i] < 0]
        if unlabelled:
            raise DataError(f"{split_file}: node {unlabelled[0]} ({graph.ids[unlabelled[0]]}) has no label; "
                            "train, valid and test nodes need one.")
        return parts
    if split == "file":
        if graph.split is None:
            raise ConfigError(f"{graph.name} has no split column; use split=random or low-label, or add a "
                              "'split' column (train/val/test) to the node table.")
        empty = [part for part in SPLIT_VALUES if graph.split[part].numel() == 0]
        if empty:
            raise DataError(f"{graph.name}: the split column names no {' and no '.join(empty)} node.")
        return Split(*(graph.split[part] for part in SPLIT_VALUES))
    if split not in TEXT_SPLITS:
        raise ConfigError(f"Unknown split {split!r}; use one of {', '.join(TEXT_SPLITS)}.")
    if labelled.numel() == 0:
        raise DataError(f"{graph.name}: no node has a label, so there is nothing to split.")
    if split == "low-label":
        return per_class_split(graph.y, 20, seed, num_val=500, num_test=1000)
    parts = random_split(labelled.numel(), seed, (0.6, 0.2, 0.2))
    return Split(labelled[parts.train], labelled[parts.val], labelled[parts.test])
