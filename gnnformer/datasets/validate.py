"""Checks on raw files before PyG parses them, so bad input fails with ``file:line`` instead of a traceback.

PyG's readers assume well-formed files: a short column, a stray word or an out-of-range index
gives an IndexError deep inside ``read_tu_data`` or, worse, a silently wrong graph.
"""
from __future__ import annotations

import csv
import io
import math
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

# ----------------------------------------------------------------------------- plain text tables

INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


#: The byte-order mark some editors (Notepad, Excel's "CSV UTF-8") put at the start of a file.
UTF8_BOM = b"\xef\xbb\xbf"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes without a leading byte-order mark; unreadable is a DataError."""
    try:
        return path.read_bytes().removeprefix(UTF8_BOM)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc


def read_text(path: Path) -> str:
    """The file as UTF-8 text, without a leading byte-order mark; unreadable is a DataError."""
    return _read_bytes(path).decode("utf-8", errors="replace")


def read_utf8(path: Path) -> str:
    """Like :func:`read_text`, but bytes that are not UTF-8 are a DataError naming their line.

    For files whose text is kept (node texts): a replacement character would silently change what
    a language model reads.
    """
    data = _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise DataError(f"{path}:{line}: byte 0x{data[exc.start]:02x} at byte {column} of the line is not "
                        "UTF-8; save the file as UTF-8 (e.g. Excel's 'CSV UTF-8').") from None


def read_lines(path: Path) -> list[str]:
    """The file's lines, without trailing blank lines; an empty file is a DataError."""
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: the file is empty; it needs one line per entry.")
    return lines


def parse_table(path: Path, integer: bool, ncols: int | None = None, what: str = "value") -> np.ndarray:
    """Comma-separated numbers, the same count on every line, as a ``[lines, cols]`` array.

    ``ncols`` None takes the width of the first line. Errors name the file and 1-based line.
    """
    lines = read_lines(path)
    width = ncols if ncols is not None else lines[0].count(",") + 1
    for i, line in enumerate(lines):
        if not line.strip():
            raise DataError(f"{path}:{i + 1}: empty line; every line needs {_n(width, what)}.")
        found = line.count(",") + 1
        if found != width:
            raise DataError(f"{path}:{i + 1}: expected {_n(width, what)} separated by commas, "
                            f"found {found}: {line.strip()[:80]!r}")
    conv = int if integer else float
    try:  # fast path: one C-level pass over all tokens
        flat = list(map(conv, ",".join(lines).split(",")))
    except ValueError:
        for i, line in enumerate(lines):  # slow path only to locate the culprit
            for tok in line.split(","):
                try:
                    conv(tok)
                except ValueError:
                    kind = "an integer" if integer else "a number"
                    raise DataError(f"{path}:{i + 1}: {tok.strip()!r} is not {kind} "
                                    f"(line: {line.strip()[:80]!r}).") from None
        raise  # pragma: no cover - the loop above always finds it
    if integer and any(not INT64_MIN <= v <= INT64_MAX for v in (min(flat), max(flat))):
        i, tok = next((i, tok) for i, line in enumerate(lines) for tok in line.split(",")
                      if not INT64_MIN <= int(tok) <= INT64_MAX)
        raise DataError(f"{path}:{i + 1}: {what} {tok.strip()} is out of range (beyond a 64-bit "
                        f"integer, {INT64_MIN}..{INT64_MAX}).")
    arr = np.asarray(flat, dtype=np.int64 if integer else np.float64).reshape(len(lines), width)
    if not integer:
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{path}:{i + 1}: non-finite value (nan/inf): {lines[i].strip()[:80]!r}")
    return arr


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def _count_mismatch(path: Path, rows: int, want: int, unit: str, ref: str) -> DataError:
    where = f"line {want + 1} is the first extra one" if rows > want else f"it ends at line {rows}"
    return DataError(f"{path}: has {rows} lines but {ref} says there are {want} {unit} "
                     f"(one line per {unit[:-1]}); {where}.")


# ----------------------------------------------------------------------------- TU

#: Optional TU files, by suffix: (integer?, what one line describes).
TU_OPTIONAL = {
    "node_labels": (True, "nodes"),
    "node_attributes": (False, "nodes"),
    "edge_labels": (True, "edges"),
    "edge_attributes": (False, "edges"),
    "graph_labels": (True, "graphs"),
    "graph_attributes": (False, "graphs"),
}
TU_SUFFIXES = ("A", "graph_indicator", *TU_OPTIONAL)
#: Most distinct values a node/edge label column may span (it becomes that many one-hot features).
MAX_LABEL_SPAN = 100_000


@dataclass
class TUTables:
    """Parsed, cross-checked TU files (1-based ids as in the files)."""

    paths: dict[str, Path]
    edges: np.ndarray                      # [E, 2]
    graph_indicator: np.ndarray            # [N]
    num_graphs: int
    tables: dict[str, np.ndarray] = field(default_factory=dict)  # optional files by suffix, 2-D

    def meta(self) -> dict:
        """What the feature encoding depends on, as PyG's ``read_tu_data`` derives it (JSON-able)."""
        out: dict = {"num_graphs": self.num_graphs, "num_nodes": int(self.graph_indicator.size)}
        for kind in ("node", "edge"):
            labels = self.tables.get(f"{kind}_labels")
            out[f"{kind}_label_offsets"] = [] if labels is None else labels.min(0).tolist()
            out[f"{kind}_label_widths"] = [] if labels is None else (labels.max(0) - labels.min(0) + 1).tolist()
            attrs = self.tables.get(f"{kind}_attributes")
            out[f"num_{kind}_attributes"] = 0 if attrs is None else int(attrs.shape[1])
        gl = self.tables.get("graph_labels")
        out["graph_label_values"] = None if gl is None else np.unique(gl).tolist()
        ga = self.tables.get("graph_attributes")
        out["num_graph_attributes"] = 0 if ga is None else int(ga.shape[1])
        return out


def tu_files_in(folder: Path, prefix: str) -> dict[str, Path]:
    """The TU files ``<prefix>_<suffix>.txt`` present in ``folder``, by suffix."""
    return {s: folder / f"{prefix}_{s}.txt" for s in TU_SUFFIXES if (folder / f"{prefix}_{s}.txt").is_file()}


def validate_tu(paths: dict[str, Path], require_labels: bool) -> TUTables:
    """Parse and cross-check TU files given by suffix; raise DataError naming file and line."""
    gi_path, a_path = paths["graph_indicator"], paths["A"]
    gi = parse_table(gi_path, True, 1, "graph id")[:, 0]
    if gi[0] != 1:
        raise DataError(f"{gi_path}:1: the first graph id is {gi[0]}; graph ids must run 1..G.")
    steps = np.diff(gi)
    bad = (steps != 0) & (steps != 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{gi_path}:{i + 2}: graph id {gi[i + 1]} follows {gi[i]}; graph ids must run "
                        "1..G in order with no gaps (nodes of one graph on consecutive lines).")
    num_nodes, num_graphs = int(gi.size), int(gi[-1])

    edges = parse_table(a_path, True, 2, "node id")
    out = (edges < 1) | (edges > num_nodes)
    if out.any():
        i = int(np.argmax(out.any(axis=1)))
        raise DataError(f"{a_path}:{i + 1}: node id {edges[i][out[i]][0]} is outside 1..{num_nodes} "
                        f"({gi_path.name} has {num_nodes} lines, one per node).")
    g_src, g_dst = gi[edges[:, 0] - 1], gi[edges[:, 1] - 1]
    if (g_src != g_dst).any():
        i = int(np.argmax(g_src != g_dst))
        raise DataError(f"{a_path}:{i + 1}: edge ({edges[i, 0]}, {edges[i, 1]}) joins graph {g_src[i]} "
                        f"and graph {g_dst[i]}; an edge must stay inside one graph.")

    tables: dict[str, np.ndarray] = {}
    counts = {"nodes": (num_nodes, gi_path.name), "edges": (len(edges), a_path.name),
              "graphs": (num_graphs, f"{gi_path.name} (largest graph id)")}
    for suffix, (integer, unit) in TU_OPTIONAL.items():
        if suffix not in paths:
            continue
        ncols = 1 if suffix == "graph_labels" else None
        table = parse_table(paths[suffix], integer, ncols, "label" if integer else "value")
        want, ref = counts[unit]
        if len(table) != want:
            raise _count_mismatch(paths[suffix], len(table), want, unit, ref)
        if suffix in ("node_labels", "edge_labels"):
            _check_label_span(paths[suffix], table, unit[:-1])
        tables[suffix] = table
    if require_labels and "graph_labels" not in tables and "graph_attributes" not in tables:
        prefix = a_path.name[: -len("_A.txt")]
        raise DataError(f"{a_path.parent}: no graph targets: expected {prefix}_graph_labels.txt "
                        f"(classification) or {prefix}_graph_attributes.txt (regression).")
    return TUTables(paths=dict(paths), edges=edges, graph_indicator=gi, num_graphs=num_graphs, tables=tables)


def _check_label_span(path: Path, table: np.ndarray, kind: str) -> None:
    """Node/edge labels are category codes, one-hot encoded from their smallest to their largest value:
    a stray huge code would make millions of feature columns, so the span is bounded."""
    lo, hi = table.min(0), table.max(0)
    span = hi.astype(object) - lo.astype(object) + 1  # Python ints: no int64 overflow
    for c in range(table.shape[1]):
        if span[c] > MAX_LABEL_SPAN:
            mid = np.median(table[:, c])  # the stray code is the end farther from the bulk
            far = table[:, c] == (hi[c] if hi[c] - mid >= mid - lo[c] else lo[c])
            i = int(np.argmax(far))
            raise DataError(f"{path}:{i + 1}: {kind} label {table[i, c]} makes the labels span {lo[c]}..{hi[c]} "
                            f"({span[c]} values); labels are category codes, one-hot encoded one feature "
                            f"per value, so at most {MAX_LABEL_SPAN} values apart.")


# ----------------------------------------------------------------------------- Planetoid

PLANETOID_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _load_pickle(path: Path):
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pickle.load(f, encoding="latin1")  # Python-2 pickles, as PyG reads them
    except Exception as exc:  # any unpickling failure means a damaged file
        raise DataError(f"{path}: cannot be read as a Planetoid pickle ({type(exc).__name__}: "
                        f"{str(exc)[:200]}). Replace it with the original file.") from exc


def validate_planetoid(paths: dict[str, Path], prefix: str) -> dict:
    """Unpickle each ``ind.<prefix>.*`` file and check that their shapes agree; return sizes."""
    shapes: dict[str, tuple[int, int]] = {}
    for s in ("x", "tx", "allx", "y", "ty", "ally"):
        obj = _load_pickle(paths[s])
        shape = getattr(obj, "shape", None)
        if shape is None or len(shape) != 2:
            raise DataError(f"{paths[s]}: expected a 2-D matrix, found {type(obj).__name__} "
                            f"with shape {shape}.")
        shapes[s] = (int(shape[0]), int(shape[1]))
    graph = _load_pickle(paths["graph"])
    test_index = parse_table(paths["test.index"], True, 1, "node id")[:, 0]

    def need(ok: bool, path: Path, msg: str) -> None:
        if not ok:
            raise DataError(f"{path}: {msg}")

    for a, b in (("x", "y"), ("tx", "ty"), ("allx", "ally")):
        need(shapes[a][0] == shapes[b][0], paths[b],
             f"has {shapes[b][0]} rows but {paths[a].name} has {shapes[a][0]}; they must match.")
    for a in ("tx", "allx"):
        need(shapes[a][1] == shapes["x"][1], paths[a],
             f"has {shapes[a][1]} feature columns but {paths['x'].name} has {shapes['x'][1]}.")
    for a in ("ty", "ally"):
        need(shapes[a][1] == shapes["y"][1], paths[a],
             f"has {shapes[a][1]} label columns but {paths['y'].name} has {shapes['y'][1]}.")
    need(len(test_index) == shapes["tx"][0], paths["test.index"],
         f"lists {len(test_index)} test nodes but {paths['tx'].name} has {shapes['tx'][0]} rows.")
    n_all = shapes["allx"][0]
    lo, hi = int(test_index.min()), int(test_index.max())
    need(lo >= n_all, paths["test.index"],
         f"test node id {lo} overlaps the {n_all} labelled/unlabelled nodes of {paths['allx'].name}; "
         f"test ids must be >= {n_all}.")
    need(isinstance(graph, dict), paths["graph"],
         f"expected a dict of adjacency lists, found {type(graph).__name__}.")
    try:
        ids = [int(k) for k in graph] + [int(v) for vs in graph.values() for v in vs]
    except (TypeError, ValueError) as exc:
        raise DataError(f"{paths['graph']}: adjacency lists must hold integer node ids ({exc}).") from exc
    if ids and hi > max(ids):  # the graph lists every node; a test id past it is a typo, not a node
        i = int(np.argmax(test_index))
        raise DataError(f"{paths['test.index']}:{i + 1}: test node id {hi} is beyond the nodes of "
                        f"{paths['graph'].name} (ids 0..{max(ids)}).")
    num_nodes = max(n_all + shapes["tx"][0], hi + 1)
    need(shapes["y"][0] + 500 <= num_nodes, paths["y"],
         f"{shapes['y'][0]} training nodes plus 500 validation nodes exceed the {num_nodes} nodes.")
    if ids:
        need(min(ids) >= 0 and max(ids) < num_nodes, paths["graph"],
             f"node ids span {min(ids)}..{max(ids)} but the feature files describe {num_nodes} nodes.")
    return {"num_nodes": num_nodes, "num_features": shapes["x"][1], "num_classes": shapes["y"][1],
            "test_index_span": hi - lo + 1, "num_test": len(test_index)}


# ----------------------------------------------------------------------------- MoleculeNet CSV

@dataclass
class MoleculeRows:
    """A checked MoleculeNet CSV: task names and, per data row, its line, SMILES and labels."""

    path: Path
    tasks: list[str]
    lines: list[int]
    smiles: list[str]
    labels: np.ndarray  # [rows, tasks] float, NaN = missing


_PYG_QUOTES = re.compile(r"\".*\"")  # PyG's MoleculeNet drops quoted text from data rows


def validate_molecule_csv(path: Path, smiles_col: int, label_cols: slice) -> MoleculeRows:
    """Check a MoleculeNet CSV the way PyG will read it (header via csv, rows split on commas)."""
    lines = read_lines(path)
    header = next(csv.reader(io.StringIO(lines[0])))
    names = [h.strip() for h in header]
    if "smiles" not in [n.lower() for n in names]:
        raise DataError(f"{path}:1: no 'smiles' column in the header {', '.join(names)[:200]}.")
    ncols = len(names)
    sm_idx = smiles_col % ncols
    if names[sm_idx].lower() != "smiles":
        raise DataError(f"{path}:1: the 'smiles' column must be column {sm_idx + 1} of {ncols} "
                        f"(PyG's MoleculeNet layout for this dataset); found {names[sm_idx]!r} there.")
    tasks = names[label_cols]
    if not tasks:
        raise DataError(f"{path}:1: no label columns found (header has {ncols} columns).")
    out_lines, smiles, labels = [], [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line:
            continue  # PyG skips empty lines too
        if not line.strip():
            raise DataError(f"{path}:{i}: line holds only spaces; delete it.")
        values = _PYG_QUOTES.sub("", line).split(",")
        if '"' in line and values != next(csv.reader(io.StringIO(line))):
            raise DataError(f"{path}:{i}: quoted fields are not supported in data rows "
                            "(PyG's MoleculeNet reader drops quoted text).")
        if len(values) != ncols:
            raise DataError(f"{path}:{i}: expected {ncols} comma-separated columns (as in the header), "
                            f"found {len(values)}.")
        row = []
        for name, text in zip(tasks, values[label_cols]):
            text = text.strip()
            if not text:
                row.append(math.nan)  # missing label: allowed
                continue
            try:
                value = float(text)
            except ValueError:
                raise DataError(f"{path}:{i}: label {text!r} in column {name!r} is not a number "
                                "(leave it empty for a missing label).") from None
            if value not in (0.0, 1.0):
                raise DataError(f"{path}:{i}: label {text!r} in column {name!r} is not 0 or 1 "
                                "(binary task; leave it empty for a missing label).")
            row.append(value)
        sm = values[sm_idx]  # kept verbatim: it is matched against what PyG stored
        if not sm.strip():
            raise DataError(f"{path}:{i}: empty SMILES in column {sm_idx + 1}.")
        out_lines.append(i)
        smiles.append(sm)
        labels.append(row)
    if not smiles:
        raise DataError(f"{path}: has a header but no data rows.")
    return MoleculeRows(path=path, tasks=tasks, lines=out_lines, smiles=smiles,
                        labels=np.asarray(labels, dtype=np.float64).reshape(len(smiles), len(tasks)))
