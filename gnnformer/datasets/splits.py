"""Train/val/test splits: random, stratified k-fold, per-class label budgets, the Planetoid public
split, and splits read from a file.

All splits are deterministic given the seed (a private ``torch.Generator``, so the global RNG is
neither used nor disturbed) and return sorted ``torch.long`` index tensors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError, DataError


@dataclass
class Split:
    train: Tensor
    val: Tensor
    test: Tensor

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)


def _sorted(idx: Tensor) -> Tensor:
    return idx.to(torch.long).sort().values


def _counts(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Split ``n`` items by ``fractions`` (largest remainder), giving every positive fraction >= 1 item."""
    total = round(n * sum(fractions))
    raw = [n * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in order[: max(0, total - sum(counts))]:
        counts[i] += 1
    for i, f in enumerate(fractions):  # tiny sets: take from the largest part so no split is empty
        if f > 0 and counts[i] == 0:
            j = max(range(len(counts)), key=lambda k: counts[k])
            if counts[j] > 1:
                counts[j] -= 1
                counts[i] += 1
    return counts


def random_split(n: int, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Split:
    """Shuffle ``range(n)`` with ``seed`` and cut it into train/val/test by ``fractions`` (sum <= 1)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ConfigError(f"Split fractions must be three non-negative numbers summing to at most 1, "
                          f"got {tuple(fractions)}.")
    if n < 1:
        raise DataError("Cannot split an empty dataset.")
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=gen)
    n_train, n_val, n_test = _counts(n, tuple(float(f) for f in fractions))
    return Split(train=_sorted(perm[:n_train]), val=_sorted(perm[n_train:n_train + n_val]),
                 test=_sorted(perm[n_train + n_val:n_train + n_val + n_test]))


def stratified_kfold(labels: Tensor, k: int, seed: int) -> list[Split]:
    """``k`` splits; split ``i`` tests on fold ``i``, validates on fold ``(i + 1) % k``, trains on the rest.

    Each class is shuffled, and the classes are dealt round-robin into folds one after another,
    so every class is spread evenly (per-fold counts differ by at most one) and folds differ in
    size by at most one.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ConfigError(f"Stratified k-fold needs one class label per item, got labels of shape "
                          f"{tuple(labels.shape)}; use a random split for multitask or regression targets.")
    n = labels.numel()
    if k < 3:
        raise ConfigError(f"k-fold needs k >= 3 (one fold tests, one validates, the rest train), got k={k}.")
    if k > n:
        raise ConfigError(f"k={k} folds cannot be made from {n} items.")
    gen = torch.Generator().manual_seed(int(seed))
    _, classes = torch.unique(labels, return_inverse=True)
    fold = torch.empty(n, dtype=torch.long)
    pos = 0
    for c in range(int(classes.max()) + 1):
        members = (classes == c).nonzero().view(-1)
        members = members[torch.randperm(members.numel(), generator=gen)]
        fold[members] = (torch.arange(members.numel()) + pos) % k
        pos += members.numel()
    fold = torch.randperm(k, generator=gen)[fold]  # which fold gets the leftovers is random too
    parts = [(fold == i).nonzero().view(-1) for i in range(k)]
    splits = []
    for i in range(k):
        j = (i + 1) % k
        train = torch.cat([parts[m] for m in range(k) if m not in (i, j)])
        splits.append(Split(train=_sorted(train), val=_sorted(parts[j]), test=_sorted(parts[i])))
    return splits


def planetoid_public_split(data) -> Split:
    """The split stored in a Planetoid graph's ``train_mask``/``val_mask``/``test_mask``."""
    masks = []
    for key in ("train_mask", "val_mask", "test_mask"):
        mask = getattr(data, key, None)
        if mask is None:
            raise DataError(f"The graph has no {key}; the public split exists only for Planetoid datasets.")
        masks.append(_sorted(mask.nonzero().view(-1)))
    return Split(*masks)


def per_class_split(labels: Tensor, per_class: int, seed: int, num_val: int = 500,
                    num_test: int | None = 1000) -> Split:
    """A label-budget split of one graph's nodes: ``per_class`` training nodes of every class.

    Every class's nodes are shuffled and the first ``per_class`` train (so training is exactly
    class-balanced); the other nodes are shuffled together and the first ``num_val`` validate and
    the next ``num_test`` test (``num_test=None``: all the rest test). Validation and test are
    drawn at random, not per class. Nodes with a negative label (unlabelled) are never chosen.
    """
    labels = torch.as_tensor(labels).view(-1)
    if per_class < 1:
        raise ConfigError(f"per_class must be at least 1, got {per_class}.")
    if num_val < 1 or (num_test is not None and num_test < 1):
        raise ConfigError(f"num_val and num_test must be at least 1 (num_test null = the rest), "
                          f"got {num_val} and {num_test}.")
    gen = torch.Generator().manual_seed(int(seed))
    labelled = (labels >= 0).nonzero().view(-1)
    train = []
    for c in torch.unique(labels[labelled]).tolist():
        members = (labels == c).nonzero().view(-1)
        if members.numel() < per_class:
            raise DataError(f"Class {c} has {members.numel()} nodes, fewer than per_class={per_class}.")
        train.append(members[torch.randperm(members.numel(), generator=gen)[:per_class]])
    train = torch.cat(train)
    taken = torch.zeros(labels.numel(), dtype=torch.bool)
    taken[train] = True
    rest = labelled[~taken[labelled]]
    rest = rest[torch.randperm(rest.numel(), generator=gen)]
    need = num_val + (num_test if num_test is not None else 1)
    if rest.numel() < need:
        raise DataError(f"{rest.numel()} labelled nodes are left after {per_class} per class for training; "
                        f"num_val={num_val} and num_test={num_test} need {need}.")
    end = rest.numel() if num_test is None else num_val + num_test
    return Split(train=_sorted(train), val=_sorted(rest[:num_val]), test=_sorted(rest[num_val:end]))


SPLIT_FILE_KEYS = ("train", "valid", "test")


def read_split_file(path, num_items: int, what: str = "items") -> Split:
    """The split of a JSON file ``{"train": [...], "valid": [...], "test": [...]}`` of 0-based
    indices (``"val"`` is taken for ``"valid"``), checked against ``num_items`` ``what``: every key
    known, every part a non-empty list of integers in range, no index in two parts (or twice in
    one). Any fault is a :class:`~gnnformer.errors.DataError` naming the file."""
    import json
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise DataError(f"split file {path} is a folder; give the JSON file in it.")
    if not path.is_file():
        raise DataError(f"split file {path} does not exist.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a JSON file ({err}).") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object with keys {', '.join(SPLIT_FILE_KEYS)}.")
    if "val" in raw and "valid" in raw:
        raise DataError(f"{path}: give the validation indices once, as 'valid' (or 'val'), not both.")
    raw = {("valid" if k == "val" else k): v for k, v in raw.items()}
    unknown = sorted(set(raw) - set(SPLIT_FILE_KEYS))
    missing = [k for k in SPLIT_FILE_KEYS if k not in raw]
    if unknown or missing:
        said = [f"unknown key(s) {', '.join(map(repr, unknown))}"] if unknown else []
        said += [f"missing {', '.join(map(repr, missing))}"] if missing else []
        raise DataError(f"{path}: {'; '.join(said)}; the keys are {', '.join(SPLIT_FILE_KEYS)}.")
    parts = []
    owner = {}
    for key in SPLIT_FILE_KEYS:
        values = raw[key]
        if not isinstance(values, list) or not values:
            raise DataError(f"{path}: '{key}' must be a non-empty list of {what} indices.")
        bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, int)), None)
        if bad is not None:
            raise DataError(f"{path}: '{key}' holds {bad!r}; indices are whole numbers.")
        out = next((v for v in values if not 0 <= v < num_items), None)
        if out is not None:
            raise DataError(f"{path}: '{key}' holds index {out}, out of range for {num_items} {what} "
                            f"(0 to {num_items - 1}).")
        for v in values:
            if v in owner:
                where = "twice in" if owner[v] == key else f"in both '{owner[v]}' and"
                raise DataError(f"{path}: index {v} is {where} '{key}'; a split's parts do not overlap.")
            owner[v] = key
        parts.append(_sorted(torch.tensor(values)))
    return Split(*parts)


# ----------------------------------------------------------------------------- split policy


@dataclass(frozen=True)
class SplitPlan:
    """How an experiment splits its data, every run alike (see :func:`plan_splits`)."""

    split: str = "auto"  # auto | random (80/10/10) | public (the dataset's own split) | per_class | file
    folds: int = 0  # k > 1: stratified k-fold cross-validation (classification of graphs)
    runs: int = 1  # without folds: independent runs with seeds seed, seed+1, ...
    seed: int = 0
    per_class: int = 20  # split=per_class: training nodes per class
    num_val: int = 500
    num_test: int | None = 1000  # None: all the rest
    train_fraction: float = 1.0  # train on a seeded, class-stratified subset of each training split
    split_file: str | None = None  # split=file: JSON of indices (read_split_file), the same for every run


def plan_splits(plan: SplitPlan, dataset, graphs: list, single_graph: bool) -> list[tuple[int, Split]]:
    """(seed, split) for every run: k folds, or ``plan.runs`` seeded splits.

    One graph (node task): Planetoid masks (``public``, the default when the graph has them),
    ``per_class`` label budgets, or random node splits. Many graphs: the dataset's own split
    (``fixed_split``) where it has one, stratified folds, or random 80/10/10 splits over graphs.
    With ``train_fraction < 1`` each run trains on a subset of its training split (see
    :func:`train_subset`); validation and test stay as they are.
    """
    splits = _full_splits(plan, dataset, graphs, single_graph)
    if plan.train_fraction < 1.0:
        splits = [(seed, Split(train_subset(s.train, plan.train_fraction, seed,
                                            _class_labels(dataset, graphs, single_graph, s.train)), s.val, s.test))
                  for seed, s in splits]
    return splits


def _full_splits(plan: SplitPlan, ds, graphs: list, single_graph: bool) -> list[tuple[int, Split]]:
    seeds = [plan.seed + r for r in range(plan.runs)]
    if plan.split == "file":  # one split for every run (the seeds still vary the initialisation)
        if plan.folds:
            raise ConfigError("split=file gives the split; drop folds (cross-validation draws its own).")
        if single_graph:
            split = read_split_file(plan.split_file, graphs[0].num_nodes, f"nodes of {ds.name}")
        else:
            split = read_split_file(plan.split_file, len(graphs), f"graphs of {ds.name}")
        return [(s, split) for s in seeds]
    if single_graph:
        data = graphs[0]
        if plan.folds:
            raise ConfigError("folds (cross-validation) is for graph datasets; node tasks use split=public or random.")
        if plan.split == "per_class":
            if ds.task != "node_classification":
                raise ConfigError(f"split=per_class needs class labels; {ds.name} is {ds.task}.")
            return [(s, per_class_split(data.y, plan.per_class, s, plan.num_val, plan.num_test)) for s in seeds]
        if plan.split == "public" and not hasattr(data, "train_mask"):
            raise ConfigError(f"{ds.name} has no public split; use split=random.")
        use_public = plan.split in ("auto", "public") and hasattr(data, "train_mask")
        return [(s, planetoid_public_split(data) if use_public else random_split(data.num_nodes, s)) for s in seeds]
    public = ds.fixed_split  # e.g. CLUSTER's 10000/1000/1000 over graphs
    if plan.split == "per_class":
        raise ConfigError("split=per_class is for node classification on one graph (e.g. Cora, digits).")
    if plan.split == "public" and public is None:
        raise ConfigError(f"{ds.name} has no public split; use split=random or folds=K.")
    if plan.folds:
        if ds.task != "graph_classification":
            raise ConfigError("Stratified folds need class labels; use runs=N for regression, multi-task or node data.")
        return [(plan.seed + i, s) for i, s in enumerate(stratified_kfold(ds.labels, plan.folds, plan.seed))]
    if public is not None and plan.split in ("auto", "public"):
        return [(s, public) for s in seeds]
    return [(s, random_split(len(graphs), s)) for s in seeds]


def _class_labels(ds, graphs: list, single_graph: bool, idx: Tensor) -> Tensor | None:
    """Class label of every item in ``idx`` (graphs, or nodes of a single graph); ``None`` when
    the task has no single class per item (regression, multi-task, nodes spread over many graphs)."""
    if single_graph:
        return graphs[0].y.view(-1)[idx]
    if ds.task != "graph_classification":
        return None
    labels = ds.labels
    if labels.numel() != len(graphs):
        labels = torch.cat([g.y.view(-1)[:1] for g in graphs])
    return labels.view(-1)[idx]


def train_subset(train: Tensor, fraction: float, seed: int, labels: Tensor | None = None) -> Tensor:
    """A seeded subset of about ``fraction`` of ``train`` (sorted), for low-resource training.

    With ``labels`` (one class per item of ``train``) the subset is stratified: each class keeps
    ``round(fraction * count)`` of its items, at least one. Without, ``round(fraction * len)``
    items (at least one) are drawn at random. Same ``seed``, same subset.
    """
    train = train.to(torch.long)
    if fraction >= 1.0 or train.numel() == 0:
        return train
    gen = torch.Generator().manual_seed(int(seed))

    def take(members: Tensor) -> Tensor:
        k = max(1, int(fraction * members.numel() + 0.5))
        return members[torch.randperm(members.numel(), generator=gen)[:k]]

    if labels is None:
        chosen = take(train)
    else:
        labels = labels.view(-1)
        chosen = torch.cat([take(train[labels == c]) for c in torch.unique(labels)])
    return chosen.sort().values
