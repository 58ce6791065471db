"""Few-shot molecular tasks: loading Tox21/SIDER as one binary task per assay, and episodes.

Two sources hold the same tasks (checked: identical molecules and labels, task i = CSV column i):

- ``fewshotmol``: ``<root>/FewShotMol/<name>/new/<i>/raw/<name>.json``, one file per task holding
  ``[negative_smiles, positive_smiles]`` (the per-property files of the few-shot literature);
- ``moleculenet``: ``<root>/MoleculeNet/<name>/raw/<name>.csv``, task i = label column i; a
  molecule without a label for a task is not part of that task.

Tox21 has 12 tasks: 1-9 meta-train, 10-12 (SR-HSE, SR-MMP, SR-p53) meta-test. SIDER has 27:
1-21 meta-train, 22-27 meta-test. Test tasks never contribute a label to (meta-)training.

Episodes (2-way k-shot): the support set is k positives and k negatives of one task; the
query set is drawn from the task's other molecules (``query_size`` of them in meta-training,
all of them at meta-test), so support and query never share a molecule.
"""
from __future__ import annotations


from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from ..datasets.molecules import TASK_NAMES
from ..datasets.root import describe_root, find_child, resolve_data_root
from ..errors import ConfigError, DataError
from .featurize import Entry, _csv_rows, featurize_entries, read_task_json

TOX21_TASKS = list(TASK_NAMES["Tox21"])
SIDER_TASKS = list(TASK_NAMES["SIDER"])

#: name -> (task names, number of meta-training tasks; the rest, last in order, are meta-test tasks)
DATASETS: Dict[str, Tuple[List[str], int]] = {"tox21": (TOX21_TASKS, 9), "sider": (SIDER_TASKS, 21)}
SOURCES = ("fewshotmol", "moleculenet")


@dataclass
class FewShotTask:
    index: int  # 1-based, as in the files
    name: str
    mol_ids: Tensor  # long [n]: rows of FewShotData.molecules
    labels: Tensor  # long [n]: 0 or 1

    @property
    def num_positives(self) -> int:
        return int(self.labels.sum())

    @property
    def num_negatives(self) -> int:
        return int(self.labels.numel() - self.labels.sum())


@dataclass
class FewShotData:
    name: str
    source: str
    molecules: List[Data]
    tasks: List[FewShotTask]
    num_train: int
    notes: List[str] = field(default_factory=list)
    origin: str = ""
    held_out: Optional[int] = None  # position in ``tasks`` of the meta-training task kept for validation

    @property
    def train_tasks(self) -> List[FewShotTask]:
        return [t for i, t in enumerate(self.tasks[: self.num_train]) if i != self.held_out]

    @property
    def val_tasks(self) -> List[FewShotTask]:
        """The held-out meta-training task (``with_validation``), or none."""
        return [] if self.held_out is None else [self.tasks[self.held_out]]

    def with_validation(self, position: Optional[int]) -> "FewShotData":
        """The same data with meta-training task ``position`` (-1: the last) held out for validation:
        it leaves the meta-training tasks, and it is never a test task."""
        if position is None:
            return replace(self, held_out=None)
        if not -self.num_train <= position < self.num_train or self.num_train < 2:
            raise ConfigError(f"val_task must pick one of the {self.num_train} meta-training tasks "
                              f"(0..{self.num_train - 1}, or -1 for the last), leaving one to train on; got {position}.")
        return replace(self, held_out=position % self.num_train)

    @property
    def test_tasks(self) -> List[FewShotTask]:
        return self.tasks[self.num_train:]

    def batch(self, ids: Tensor) -> Batch:
        """The molecules of rows ``ids`` as one PyG ``Batch``, in that order."""
        return Batch.from_data_list([self.molecules[i] for i in ids.tolist()])


def _dataset_key(name: str) -> str:
    key = name.strip().lower()
    if key not in DATASETS:
        raise ConfigError(f"Unknown few-shot dataset {name!r}; choose tox21 or sider.")
    return key


def task_files(name: str, root: Path, source: str) -> List[Path]:
    """The raw files of every task (one JSON per task, or the one CSV)."""
    key = _dataset_key(name)
    if source == "fewshotmol":
        base = find_child(root / "FewShotMol", key) if (root / "FewShotMol").is_dir() else None
        base = base if base is not None else root / "FewShotMol" / key
        return [base / "new" / str(i) / "raw" / f"{key}.json" for i in range(1, len(DATASETS[key][0]) + 1)]
    if source == "moleculenet":
        folder = find_child(root / "MoleculeNet", key) if (root / "MoleculeNet").is_dir() else None
        return [(folder if folder is not None else root / "MoleculeNet" / key) / "raw" / f"{key}.csv"]
    raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}.")


def _missing(name: str, files: List[Path], root: Path, origin: str, source: str) -> DataError:
    absent = [f for f in files if not f.is_file()]
    layout = (f"FewShotMol/{name}/new/<i>/raw/{name}.json (one per task)" if source == "fewshotmol"
              else f"MoleculeNet/{name}/raw/{name}.csv")
    shown = ", ".join(str(f) for f in absent[:3]) + (f" and {len(absent) - 3} more" if len(absent) > 3 else "")
    return DataError(f"Few-shot dataset {name!r} ({source}) is not available: {shown} "
                     f"{'is' if len(absent) == 1 else 'are'} missing.\n"
                     f"  data root: {describe_root(root, origin)}\n"
                     f"Fix: point --data-root (or GNNFORMER_DATA) at a folder laid out as <root>/{layout}.")


def _csv_entries(path: Path, name: str) -> List[List[Entry]]:
    """Per task (CSV label column), its labelled entries with their CSV line numbers."""
    header, rows = _csv_rows(path, path.read_text(encoding="utf-8", errors="replace"))
    names = DATASETS[name][0]
    if "smiles" not in header:
        raise DataError(f"{path}:1: no 'smiles' column in the CSV header.")
    missing = [t for t in names if t.lower() not in header]
    if missing:
        raise DataError(f"{path}:1: the header lacks the task column(s) {', '.join(missing)}.")
    scol = header.index("smiles")
    cols = [header.index(t.lower()) for t in names]
    per_task: List[List[Entry]] = [[] for _ in names]
    for i, row in rows:
        for t, col in enumerate(cols):
            raw = row[col].strip()
            if raw == "":
                continue  # no label for this task
            try:
                value = float(raw)
            except ValueError:
                raise DataError(f"{path}:{i}: label {raw!r} of task {names[t]!r} is not 0, 1 or empty.") from None
            if value not in (0.0, 1.0):
                raise DataError(f"{path}:{i}: label {raw!r} of task {names[t]!r} is not 0, 1 or empty.")
            per_task[t].append(Entry(row[scol].strip(), str(path), i, int(value), names[t]))
    return per_task


def load_tasks(name: str, data_root: Optional[str] = None, source: str = "fewshotmol",
               invalid: str = "skip") -> FewShotData:
    """Load every task of ``name`` (tox21 | sider); bad SMILES are skipped (and noted) or refused."""
    key = _dataset_key(name)
    root, origin = resolve_data_root(data_root)
    files = task_files(key, root, source)
    if not all(f.is_file() for f in files):
        raise _missing(key, files, root, origin, source)
    if source == "fewshotmol":
        per_task = [read_task_json(f) for f in files]
    else:
        per_task = _csv_entries(files[0], key)
    names, num_train = DATASETS[key]
    cache: dict = {}
    ids: Dict[str, int] = {}
    molecules: List[Data] = []
    tasks, notes, rejected = [], [], []
    for t, entries in enumerate(per_task):
        good, bad = featurize_entries(entries, invalid, cache)
        rejected += bad
        seen: Dict[str, int] = {}
        conflicts = 0
        for entry, graph in good:
            smi = graph.smiles
            if smi not in ids:
                ids[smi] = len(molecules)
                molecules.append(graph)
            mid = ids[smi]
            if mid in seen:
                if seen[mid] != entry.label:
                    seen[mid] = -1  # both labels: ambiguous, dropped below
                    conflicts += 1
                continue
            seen[mid] = int(entry.label)
        kept = [(m, y) for m, y in seen.items() if y >= 0]
        if conflicts:
            notes.append(f"{key} task {t + 1} ({names[t]}): {conflicts} molecule(s) listed with both labels "
                         "were left out.")
        mol_ids = torch.tensor([m for m, _ in kept], dtype=torch.long)
        labels = torch.tensor([y for _, y in kept], dtype=torch.long)
        tasks.append(FewShotTask(t + 1, names[t], mol_ids, labels))
    if rejected:
        distinct = sorted({r.entry.smiles for r in rejected})
        notes.insert(0, f"{key}: {len(rejected)} task entries ({len(distinct)} distinct SMILES) cannot be encoded "
                        f"and were skipped, e.g. {rejected[0]}")
    return FewShotData(key, source, molecules, tasks, num_train, notes, describe_root(root, origin))


# ----------------------------------------------------------------------------- episodes


@dataclass
class Episode:
    """Positions into a task (``task.mol_ids[...]``): support (balanced) and query."""

    task: FewShotTask
    support: Tensor
    query: Tensor

    @property
    def support_ids(self) -> Tensor:
        return self.task.mol_ids[self.support]

    @property
    def query_ids(self) -> Tensor:
        return self.task.mol_ids[self.query]

    @property
    def support_labels(self) -> Tensor:
        return self.task.labels[self.support]

    @property
    def query_labels(self) -> Tensor:
        return self.task.labels[self.query]


def check_task_fits(task: FewShotTask, shots: int) -> None:
    """A task needs ``shots`` positives and negatives for the support set and one of each left over."""
    if task.num_positives < shots + 1 or task.num_negatives < shots + 1:
        raise DataError(f"Task {task.index} ({task.name}) has {task.num_positives} positives and "
                        f"{task.num_negatives} negatives; a {shots}-shot episode needs at least {shots + 1} of each.")


def sample_episode(task: FewShotTask, shots: int, query_size: Optional[int], gen: torch.Generator) -> Episode:
    """``shots`` positives + ``shots`` negatives as support; ``query_size`` random others as query
    (``None``: every other molecule of the task). Deterministic for a given generator state."""
    check_task_fits(task, shots)
    pos = torch.nonzero(task.labels == 1).view(-1)
    neg = torch.nonzero(task.labels == 0).view(-1)
    s_pos = pos[torch.randperm(pos.numel(), generator=gen)[:shots]]
    s_neg = neg[torch.randperm(neg.numel(), generator=gen)[:shots]]
    support = torch.cat([s_pos, s_neg])
    support = support[torch.randperm(support.numel(), generator=gen)]
    rest = torch.ones(task.labels.numel(), dtype=torch.bool)
    rest[support] = False
    others = torch.nonzero(rest).view(-1)
    if query_size is not None and query_size < others.numel():
        others = others[torch.randperm(others.numel(), generator=gen)[:query_size]]
    return Episode(task, support, others)


def episode_generator(seed: int, *keys: int) -> torch.Generator:
    """A generator seeded from ``seed`` and integer keys (task, draw ...), the same on every machine."""
    value = seed & 0xFFFFFFFF
    for key in keys:
        value = (value * 1_000_003 + int(key) + 1) % (2**61 - 1)
    return torch.Generator().manual_seed(value)


def pool_ids(tasks: Sequence[FewShotTask]) -> Tensor:
    """The distinct molecules of ``tasks`` (sorted ids)."""
    if not tasks:
        return torch.zeros(0, dtype=torch.long)
    return torch.unique(torch.cat([t.mol_ids for t in tasks]))
