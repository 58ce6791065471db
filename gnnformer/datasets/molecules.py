"""MoleculeNet multitask binary sets (Tox21, SIDER) from SMILES, with fixed-width one-hot features."""
from __future__ import annotations

import csv
import functools
import io
import warnings
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import from_smiles
from torch_geometric.utils.smiles import e_map, x_map

from ..errors import DataError
from ..registry import DATASETS
from .root import attempt_download, find_child, missing_error, process_with_pyg, stage_lock, stage_raw
from .schema import FeatureSchema, GraphDataset, graphs_of
from .validate import read_lines, validate_molecule_csv

KNOWN_MOLECULES = {
    "Tox21": ("tox21", "MoleculeNet: 7831 compounds, 12 toxicity assays (multitask binary, labels missing)"),
    "SIDER": ("sider", "MoleculeNet: 1427 marketed drugs, 27 side-effect classes (multitask binary)"),
}

#: Task (label column) names of the MoleculeNet CSVs, in the order PyG reads the labels; predictions
#: are written under these headings. Checked against the real CSVs' headers by the tests.
TASK_NAMES = {
    "Tox21": ("NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
              "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"),
    "SIDER": ("Hepatobiliary disorders", "Metabolism and nutrition disorders", "Product issues", "Eye disorders",
              "Investigations", "Musculoskeletal and connective tissue disorders", "Gastrointestinal disorders",
              "Social circumstances", "Immune system disorders", "Reproductive system and breast disorders",
              "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
              "General disorders and administration site conditions", "Endocrine disorders",
              "Surgical and medical procedures", "Vascular disorders", "Blood and lymphatic system disorders",
              "Skin and subcutaneous tissue disorders", "Congenital, familial and genetic disorders",
              "Infections and infestations", "Respiratory, thoracic and mediastinal disorders",
              "Psychiatric disorders", "Renal and urinary disorders",
              "Pregnancy, puerperium and perinatal conditions", "Ear and labyrinth disorders", "Cardiac disorders",
              "Nervous system disorders", "Injury, poisoning and procedural complications"),
}

#: Column vocabularies of PyG's ``from_smiles`` (index-coded), fixed so the one-hot width never
#: depends on which atoms a file happens to contain.
ATOM_VOCAB = [[k, len(v)] for k, v in x_map.items()]
BOND_VOCAB = [[k, len(v)] for k, v in e_map.items()]
NUM_ATOM_FEATURES = sum(n for _, n in ATOM_VOCAB)
NUM_BOND_FEATURES = sum(n for _, n in BOND_VOCAB)


def safe_from_smiles(smiles: str) -> Data:
    """PyG's ``from_smiles``; a molecule with a feature outside PyG's vocabulary becomes an empty graph.

    MoleculeNet skips empty graphs, as it does for SMILES RDKit rejects, so one odd molecule
    cannot abort processing a whole dataset; the skipped rows are reported in ``notes``.
    """
    try:
        return from_smiles(smiles)
    except ValueError:  # list.index miss: e.g. an atom with degree > 10
        data = from_smiles("")
        data.smiles = smiles
        return data


def one_hot_columns(codes: Tensor, vocab: list) -> Tensor:
    """``[n, C]`` index codes -> ``[n, sum(sizes)]`` float one-hot, one block per column."""
    sizes = torch.tensor([n for _, n in vocab])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
    out = torch.zeros(codes.size(0), int(sizes.sum()), dtype=torch.float32)
    if codes.numel():
        out.scatter_(1, codes.long() + offsets, 1.0)
    return out


def molecule_schema() -> FeatureSchema:
    atoms = ", ".join(k for k, _ in ATOM_VOCAB)
    bonds = ", ".join(k for k, _ in BOND_VOCAB)
    return FeatureSchema(
        kind="molecule", num_node_features=NUM_ATOM_FEATURES, num_edge_features=NUM_BOND_FEATURES,
        description=f"one-hot RDKit atom features ({atoms}) and bond features ({bonds}), PyG from_smiles vocabulary",
        details={"atom_vocab": ATOM_VOCAB, "bond_vocab": BOND_VOCAB})


def _make(stage: Path, name: str):
    from torch_geometric.datasets import MoleculeNet

    with warnings.catch_warnings():  # one warning per skipped molecule; summarised in notes instead
        warnings.filterwarnings("ignore", message="Skipping molecule")
        return MoleculeNet(str(stage), name, from_smiles=safe_from_smiles)


def load_molecules(name: str, root: Path, origin: str) -> GraphDataset:
    """Load ``<root>/MoleculeNet/<name>/raw/<name>.csv`` through PyG's MoleculeNet, staged in the cache."""
    from torch_geometric.datasets import MoleculeNet

    lower = KNOWN_MOLECULES[name][0]
    folder = find_child(root / "MoleculeNet", lower)
    raw_dir = (folder if folder is not None else root / "MoleculeNet" / lower) / "raw"
    src = find_child(raw_dir, f"{lower}.csv", want_dir=False) if raw_dir.is_dir() else None
    staged = {f"{lower}.csv": src} if src is not None else {}
    stage = stage_raw(name, staged, f"{lower}/raw", text_files=set(staged))
    stage_csv = stage / lower / "raw" / f"{lower}.csv"
    processed = stage / lower / "processed" / "data.pt"
    _, _, _, smiles_col, label_cols = MoleculeNet.names[lower]

    with stage_lock(stage):  # another job may be processing the same file right now
        ds = None
        if not stage_csv.exists():
            ds, reason = attempt_download(lambda: _make(stage, name), stage, stage_csv.parent, [stage_csv.name])
            if ds is None:
                raise missing_error(name, [f"{lower}.csv"], [f"{lower}.csv"], raw_dir, root, origin,
                                    f"MoleculeNet/{lower}/raw/{lower}.csv", reason)
        csv_path = src if src is not None else stage_csv
        # Cheap (well under a second), so checked on every load: the notes need the row list anyway.
        rows = validate_molecule_csv(csv_path, smiles_col, label_cols)
        if ds is None:
            ds = process_with_pyg(lambda: _make(stage, name), processed.parent, str(csv_path),
                                  clean=not processed.is_file())

    rejected = _rejected_rows(ds, rows, stage)
    data = ds._data
    data.x = one_hot_columns(data.x, ATOM_VOCAB)
    data.edge_attr = one_hot_columns(data.edge_attr, BOND_VOCAB)
    graphs = graphs_of(ds)
    labels = data.y.to(torch.float32).view(len(ds), -1)

    notes = []
    if rejected:
        shown = ", ".join(str(line) for line, _ in rejected[:10]) + (", ..." if len(rejected) > 10 else "")
        notes.append(f"{name}: {len(rejected)} SMILES rejected by RDKit and skipped "
                     f"({csv_path.name} lines {shown}).")
    n_missing = int(torch.isnan(labels).sum())
    if n_missing:
        notes.append(f"{name}: {n_missing} of {labels.numel()} labels are missing (NaN) and must be "
                     "masked out of losses and metrics.")
    schema = molecule_schema()
    return GraphDataset(name=name, task="multitask_binary", graphs=graphs,
                        num_features=schema.num_node_features, num_edge_features=schema.num_edge_features,
                        out_dim=len(rows.tasks), schema=schema, root=raw_dir, notes=notes, labels=labels)


def _rejected_rows(ds, rows, stage: Path) -> list[tuple[int, str]]:
    """CSV rows PyG skipped, found by walking the CSV and the kept SMILES side by side (both in order)."""
    kept = list(ds._data.smiles) if len(ds) > 1 else [ds[0].smiles]
    j, rejected = 0, []
    for line, smiles in zip(rows.lines, rows.smiles):
        if j < len(kept) and kept[j] == smiles:
            j += 1
        else:
            rejected.append((line, smiles))
    if j != len(kept):
        raise DataError(f"The processed cache in {stage} does not match {rows.path}; delete that folder "
                        "and load again.")
    return rejected


# ----------------------------------------------------------------------------- prediction input


def read_smiles_for_predict(schema: FeatureSchema, path: str | Path) -> list[Data]:
    """One SMILES per line (``.smi``: first token), or a CSV with a ``smiles`` column -> encoded graphs.

    Each graph keeps its ``smiles`` and the file ``line`` it came from, so output rows can name their input.
    """
    if schema.kind != "molecule":
        raise DataError(f"The model expects {schema.kind} input ({schema.description}), not SMILES.")
    if schema.details.get("atom_vocab") != ATOM_VOCAB or schema.details.get("bond_vocab") != BOND_VOCAB:
        raise DataError("The model was trained with a different PyG from_smiles feature vocabulary than the "
                        "installed PyG provides; install the PyG version used for training.")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{file}: not a file; expected one SMILES per line or a CSV with a 'smiles' column.")
    entries = _smiles_entries(file)
    graphs, bad = [], []
    for line, smiles in entries:
        data = safe_from_smiles(smiles)
        if data.num_nodes == 0:
            bad.append((line, smiles))
            continue
        data.x = one_hot_columns(data.x, ATOM_VOCAB)
        data.edge_attr = one_hot_columns(data.edge_attr, BOND_VOCAB)
        data.smiles, data.line = smiles, line
        graphs.append(data)
    if bad:
        shown = "\n".join(f"  {file}:{line}: {sm[:80]!r}" for line, sm in bad[:10])
        more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise DataError(f"{len(bad)} SMILES could not be parsed by RDKit (or use atom features outside "
                        f"PyG's vocabulary):\n{shown}{more}\nFix or remove these lines.")
    return graphs


def _smiles_entries(file: Path) -> list[tuple[int, str]]:
    lines = read_lines(file)
    header = [h.strip().lower() for h in next(csv.reader(io.StringIO(lines[0])))]
    if file.suffix.lower() == ".csv" or "smiles" in header:
        if "smiles" not in header:
            raise DataError(f"{file}:1: no 'smiles' column in the CSV header.")
        col, ncols = header.index("smiles"), len(header)
        out = []
        for i, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            row = next(csv.reader(io.StringIO(line)))
            if len(row) != ncols:
                raise DataError(f"{file}:{i}: expected {ncols} columns (as in the header), found {len(row)}.")
            if not row[col].strip():
                raise DataError(f"{file}:{i}: empty SMILES.")
            out.append((i, row[col].strip()))
        if not out:
            raise DataError(f"{file}: has a header but no SMILES rows.")
        return out
    return [(i, line.split()[0]) for i, line in enumerate(lines, start=1) if line.strip()]


def _register() -> None:
    for mname, (_, summary) in KNOWN_MOLECULES.items():
        DATASETS.register(mname, summary)(functools.partial(load_molecules, mname))


_register()
