"""Small synthetic few-shot data roots (laid out like ../shared/datasets) for the few-shot tests."""
import csv
import json
import random
from pathlib import Path

from gnnformer.fewshot.tasks import TOX21_TASKS

POOL = ["C", "CC", "CCO", "CCN", "CCC", "CCCl", "c1ccccc1", "c1ccncc1", "CC(=O)O", "CC(=O)N", "C=C", "C#N",
        "CCOC", "OCCO", "NCCN", "CC(C)C", "C1CC1", "C1CCC1", "C1CCCCC1", "FC(F)F", "ClCCl", "CS", "CSC",
        "O=C=O", "CC#C", "c1ccoc1", "c1ccsc1", "CC=O", "CN(C)C", "OC(=O)CN"]

#: Tiny model + schedule so a whole run takes seconds.
TINY = ["model.hidden=16", "model.layers=2", "model.tr_dim=8", "model.tr_heads=2", "model.token_kernel=3",
        "model.token_stride=2", "episodes=2", "tasks_per_episode=2", "query_size=8", "inner_steps=1",
        "inner_steps_test=2", "baseline_steps=2", "baseline_batch_size=8", "finetune_steps=2", "draws=2"]


def task_labels(i: int, positives: int = 10):
    """Deterministic labels of task ``i`` over POOL: ``positives`` positives, the rest negatives."""
    rng = random.Random(i)
    pos = set(rng.sample(range(len(POOL)), positives))
    return [1 if j in pos else 0 for j in range(len(POOL))]


def make_root(root: Path, bad_smiles: str | None = None) -> Path:
    """A Tox21-shaped root: FewShotMol/tox21/new/<i>/raw/tox21.json (12 tasks) and the matching
    MoleculeNet/tox21/raw/tox21.csv. ``bad_smiles`` is added as a negative of task 1 (and a CSV row)."""
    labels = [task_labels(i) for i in range(1, 13)]
    for i in range(1, 13):
        neg = [s for s, y in zip(POOL, labels[i - 1]) if y == 0]
        pos = [s for s, y in zip(POOL, labels[i - 1]) if y == 1]
        if bad_smiles is not None and i == 1:
            neg = neg[:3] + [bad_smiles] + neg[3:]
        folder = root / "FewShotMol" / "tox21" / "new" / str(i) / "raw"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tox21.json").write_text(json.dumps([neg, pos], indent=1))
    csv_dir = root / "MoleculeNet" / "tox21" / "raw"
    csv_dir.mkdir(parents=True, exist_ok=True)
    with open(csv_dir / "tox21.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*TOX21_TASKS, "mol_id", "smiles"])
        for j, smi in enumerate(POOL):
            w.writerow([*(labels[t][j] for t in range(12)), f"M{j}", smi])
        if bad_smiles is not None:
            w.writerow([0] + [""] * 11 + ["BAD", bad_smiles])
    return root
