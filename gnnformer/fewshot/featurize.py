"""Molecules as graphs with the integer atom and bond features of Hu et al. (2020).

"Strategies for Pre-training Graph Neural Networks" describes every atom by two indices and
every bond by two indices, each looked up in its own embedding table:

=================  =========================================================================
atom type          atomic number 1..118 -> index 0..117; index 118 = any other atom (e.g. the
                   dummy atom ``*``, atomic number 0). 119 types; index 119 (``MASK_ATOM``) is
                   the extra row attribute masking writes over a hidden atom.
chirality tag      CHI_UNSPECIFIED 0, CHI_TETRAHEDRAL_CW 1 (``@@``), CHI_TETRAHEDRAL_CCW 2
                   (``@``), CHI_OTHER 3 (also every newer RDKit tag: allene, square planar ...)
bond type          SINGLE 0, DOUBLE 1, TRIPLE 2, AROMATIC 3; index 4 (``SELF_LOOP``) marks the
                   self-loop the GIN layer adds to every atom. Any other RDKit bond type (dative,
                   hydrogen, ...) has no index: such a molecule is reported, never guessed.
bond direction     NONE 0, ENDUPRIGHT 1 (``/``), ENDDOWNRIGHT 2 (``\\``); the wedge/dash
                   directions that only molfiles carry count as NONE.
=================  =========================================================================

Every bond becomes two directed edges (i->j, then j->i) with the same two indices.
A SMILES that RDKit cannot read, an empty one, or one with a bond type outside the table is
reported with its file and line; the caller chooses to skip it or to stop (``invalid``).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from torch_geometric.data import Data

from ..errors import ConfigError, DataError

NUM_ATOM_TYPES = 119
OTHER_ATOM = 118
MASK_ATOM = 119
NUM_CHIRALITY = 4
NUM_BOND_TYPES = 4
SELF_LOOP = 4
NUM_BOND_DIRECTIONS = 3
#: Rows of the embedding tables (atom types + mask row; bond types + self-loop).
ATOM_EMBEDDINGS = NUM_ATOM_TYPES + 1
BOND_EMBEDDINGS = NUM_BOND_TYPES + 1

INVALID_POLICIES = ("skip", "error")


def _tables():
    from rdkit import Chem

    chir = {Chem.rdchem.ChiralType.CHI_UNSPECIFIED: 0, Chem.rdchem.ChiralType.CHI_TETRAHEDRAL_CW: 1,
            Chem.rdchem.ChiralType.CHI_TETRAHEDRAL_CCW: 2}
    bonds = {Chem.rdchem.BondType.SINGLE: 0, Chem.rdchem.BondType.DOUBLE: 1, Chem.rdchem.BondType.TRIPLE: 2,
             Chem.rdchem.BondType.AROMATIC: 3}
    dirs = {Chem.rdchem.BondDir.NONE: 0, Chem.rdchem.BondDir.ENDUPRIGHT: 1, Chem.rdchem.BondDir.ENDDOWNRIGHT: 2}
    return chir, bonds, dirs


class FeaturizeError(ValueError):
    """The molecule cannot be encoded; the message says why (without file or line)."""


def mol_from_smiles(smiles: str):
    """The RDKit molecule of ``smiles``; :class:`FeaturizeError` with RDKit's reason otherwise."""
    from rdkit import Chem, RDLogger

    text = smiles.strip()
    if not text:
        raise FeaturizeError("empty SMILES")
    RDLogger.DisableLog("rdApp.*")  # the reason is reported below, with the file and line
    try:
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            raw = Chem.MolFromSmiles(text, sanitize=False)
            if raw is None:
                raise FeaturizeError("RDKit cannot parse it (SMILES syntax)")
            problems = Chem.DetectChemistryProblems(raw)
            reason = problems[0].Message() if problems else "RDKit rejects it"
            raise FeaturizeError(f"RDKit rejects it: {reason}")
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol.GetNumAtoms() == 0:
        raise FeaturizeError("no atoms")
    return mol


def featurize_mol(mol, smiles: str = "") -> Data:
    """Encode an RDKit molecule with the index features described in the module docstring: a
    ``Data`` with ``x`` long ``[atoms, 2]`` (type, chirality), ``edge_index`` long ``[2, 2*bonds]``,
    ``edge_attr`` long ``[2*bonds, 2]`` (bond type, direction) and its ``smiles``."""
    chir, bonds, dirs = _tables()
    atoms = []
    for atom in mol.GetAtoms():
        z = atom.GetAtomicNum()
        atoms.append((z - 1 if 1 <= z <= 118 else OTHER_ATOM, chir.get(atom.GetChiralTag(), 3)))
    src, dst, attrs = [], [], []
    for bond in mol.GetBonds():
        kind = bonds.get(bond.GetBondType())
        if kind is None:
            raise FeaturizeError(f"bond type {bond.GetBondType()} (atoms {bond.GetBeginAtomIdx()}-"
                                 f"{bond.GetEndAtomIdx()}) is outside the feature table "
                                 "(single, double, triple, aromatic)")
        d = dirs.get(bond.GetBondDir(), 0)
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        src += [i, j]
        dst += [j, i]
        attrs += [(kind, d), (kind, d)]
    x = torch.tensor(atoms, dtype=torch.long).view(-1, 2)
    edge_index = torch.tensor([src, dst], dtype=torch.long).view(2, -1)
    edge_attr = torch.tensor(attrs, dtype=torch.long).view(-1, 2)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, smiles=smiles)


def smiles_to_graph(smiles: str) -> Data:
    """The molecule graph of one SMILES; :class:`FeaturizeError` says why when it cannot be encoded."""
    return featurize_mol(mol_from_smiles(smiles), smiles.strip())


# ----------------------------------------------------------------------------- entries with their origin


@dataclass(frozen=True)
class Entry:
    """One SMILES with where it came from (``path``, 1-based ``line``, ``where``: extra context)."""

    smiles: str
    path: str
    line: int
    label: Optional[int] = None
    where: str = ""

    def locate(self) -> str:
        extra = f" ({self.where})" if self.where else ""
        return f"{self.path}:{self.line}{extra}"


@dataclass(frozen=True)
class Rejected:
    entry: Entry
    reason: str

    def __str__(self) -> str:
        return f"{self.entry.locate()}: {self.entry.smiles[:80]!r}: {self.reason}"


def check_policy(invalid: str) -> str:
    if invalid not in INVALID_POLICIES:
        raise ConfigError(f"invalid must be 'skip' or 'error', got {invalid!r}.")
    return invalid


def rejected_message(rejected: Sequence[Rejected], limit: int = 10) -> str:
    shown = "\n".join(f"  {r}" for r in rejected[:limit])
    more = f"\n  ... and {len(rejected) - limit} more" if len(rejected) > limit else ""
    return shown + more


def featurize_entries(entries: Iterable[Entry], invalid: str = "error",
                      cache: Optional[dict] = None) -> Tuple[List[Tuple[Entry, Data]], List[Rejected]]:
    """Encode every entry. ``invalid='error'``: any bad SMILES raises one DataError listing every
    bad one as ``file:line``; ``'skip'``: bad ones are left out and returned as ``Rejected``.

    ``cache`` (SMILES -> graph or reason) lets molecules shared by several tasks be parsed once.
    """
    check_policy(invalid)
    good, bad = [], []
    for entry in entries:
        key = entry.smiles.strip()
        hit = cache.get(key) if cache is not None else None
        if hit is None:
            try:
                hit = smiles_to_graph(key)
            except FeaturizeError as err:
                hit = str(err)
            if cache is not None:
                cache[key] = hit
        if isinstance(hit, str):
            bad.append(Rejected(entry, hit))
        else:
            good.append((entry, hit))
    if bad and invalid == "error":
        raise DataError(f"{len(bad)} SMILES cannot be encoded:\n{rejected_message(bad)}\n"
                        "Fix or remove these lines, or pass --invalid skip (invalid=skip) to leave them out.")
    return good, bad


# ----------------------------------------------------------------------------- files


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: not a file.")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc


def _csv_rows(path: Path, text: str) -> Tuple[List[str], List[Tuple[int, List[str]]]]:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: the file is empty.")
    header = [h.strip().lower() for h in next(csv.reader(io.StringIO(lines[0])))]
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = next(csv.reader(io.StringIO(line)))
        if len(row) != len(header):
            raise DataError(f"{path}:{i}: expected {len(header)} columns (as in the header), found {len(row)}.")
        rows.append((i, row))
    return header, rows


def read_smiles_file(path: str | Path) -> List[Entry]:
    """SMILES to score: one per line (``.smi``/text: the first whitespace-separated token; a first
    line ``smiles`` is a header), or a CSV whose header has a ``smiles`` column."""
    file = Path(path).expanduser()
    text = _read_text(file)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    header = [h.strip().lower() for h in next(csv.reader(io.StringIO(first)))] if first else []
    if file.suffix.lower() == ".csv" or ("smiles" in header and len(header) > 1):
        header, rows = _csv_rows(file, text)
        if "smiles" not in header:
            raise DataError(f"{file}:1: no 'smiles' column in the CSV header.")
        col = header.index("smiles")
        entries = [Entry(row[col].strip(), str(file), i) for i, row in rows]
    else:
        entries = []
        for i, line in enumerate(text.splitlines(), start=1):
            tokens = line.split()
            if not tokens or (i == 1 and tokens[0].lower() == "smiles"):
                continue
            entries.append(Entry(tokens[0], str(file), i))
    if not entries:
        raise DataError(f"{file}: holds no SMILES.")
    return entries


LABEL_COLUMNS = ("label", "y", "active", "activity")
_LABEL_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, "no": 0, "yes": 1}


def read_labelled_csv(path: str | Path) -> List[Entry]:
    """A labelled support set: CSV with a ``smiles`` column and a ``label`` column of 0/1
    (``y``, ``active`` or ``activity`` are accepted names for it)."""
    file = Path(path).expanduser()
    header, rows = _csv_rows(file, _read_text(file))
    if "smiles" not in header:
        raise DataError(f"{file}:1: no 'smiles' column in the CSV header (found: {', '.join(header)}).")
    lab = next((c for c in LABEL_COLUMNS if c in header), None)
    if lab is None:
        raise DataError(f"{file}:1: no label column in the CSV header; name it 'label' (values 0 or 1).")
    scol, lcol = header.index("smiles"), header.index(lab)
    entries = []
    for i, row in rows:
        raw = row[lcol].strip().lower()
        if raw not in _LABEL_VALUES:
            raise DataError(f"{file}:{i}: label {row[lcol]!r} is not 0 or 1.")
        entries.append(Entry(row[scol].strip(), str(file), i, _LABEL_VALUES[raw]))
    if not entries:
        raise DataError(f"{file}: has a header but no rows.")
    return entries


def read_task_json(path: str | Path) -> List[Entry]:
    """A FewShotMol task file ``[negative_smiles, positive_smiles]`` -> labelled entries.

    The line of each SMILES is found from its position in the file (these files are often one
    long line); ``where`` names the list and the item, e.g. ``positives #12``.
    """
    file = Path(path).expanduser()
    text = _read_text(file)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{file}:{err.lineno}: not valid JSON ({err.msg}).") from None
    if not (isinstance(data, list) and len(data) == 2 and all(isinstance(part, list) for part in data)):
        raise DataError(f"{file}: expected a JSON list of two lists, [negative_smiles, positive_smiles].")
    entries, pos, line = [], 0, 1
    for label, (name, items) in enumerate((("negatives", data[0]), ("positives", data[1]))):
        for k, smiles in enumerate(items, start=1):
            if not isinstance(smiles, str):
                raise DataError(f"{file}: {name} #{k} is {type(smiles).__name__}, not a SMILES string.")
            at = text.find(json.dumps(smiles), pos)
            if at >= 0:  # items appear in order: count the newlines since the previous one
                line += text.count("\n", pos, at)
                pos = at
            entries.append(Entry(smiles, str(file), line, label, f"{name} #{k}"))
    return entries
