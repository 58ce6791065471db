"""Datasets: load benchmark graphs by name, read new input for prediction, and split.

    from gnnformer.datasets import load_dataset
    ds = load_dataset("MUTAG")                # built-in copy; or data_root=..., or $GNNFORMER_DATA
    ds.graphs[0], ds.num_features, ds.out_dim, ds.notes

Raw files are read from a data root laid out like PyG's (``TU/<NAME>/raw``,
``Planetoid/<Name>/raw``, ``MoleculeNet/<name>/raw``); PyG's ``processed/`` goes to the cache.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError
from ..registry import DATASETS
from . import instances, molecules, planetoid, synthetic, temporal, tu  # imports register the datasets
from .root import describe_root, resolve_data_root
from .schema import FeatureSchema, GraphDataset
from .splits import (Split, SplitPlan, per_class_split, plan_splits, planetoid_public_split, random_split,
                     stratified_kfold, train_subset)


def list_datasets() -> list[tuple[str, str]]:
    """``(name, one-line summary)`` for every registered dataset, sorted by name."""
    return [(e.name, e.summary) for e in DATASETS]


def load_dataset(name: str, data_root: str | None = None, options: dict | None = None) -> GraphDataset:
    """Load a dataset by name (any case) from the resolved data root.

    Registered names load with their family's PyG class; any other name that exists as
    ``<root>/TU/<NAME>/raw`` loads as a TU dataset. ``options`` are the dataset's own settings
    (e.g. ``{"lags": 8}`` for a temporal series, ``{"k": 10}`` for ``digits-knn``); a dataset
    refuses options it does not have.
    """
    root, origin = resolve_data_root(data_root)
    key = name.strip()
    options = dict(options or {})
    if key in DATASETS:  # case-insensitive; the loader carries the canonical spelling
        loader = DATASETS.get(key)
        return loader(root, origin, **_check_options(key, loader, options))
    if options:
        raise ConfigError(f"Dataset {name!r} takes no options, got {', '.join(sorted(options))}.")
    folder = tu.has_tu_folder(root, key)
    if folder is not None:
        return tu.load_tu(folder.name, root, origin)
    known = ", ".join(n for n, _ in list_datasets())
    raise DataError(
        f"Unknown dataset {name!r}. Known datasets: {known}.\n"
        f"Any other TU dataset loads by name when its files are at <root>/TU/{key}/raw/{key}_A.txt "
        f"(and the other {key}_*.txt files); data root here: {describe_root(root, origin)}.")


def _check_options(name: str, loader, options: dict) -> dict:
    """``options`` if the loader has a keyword-only parameter for each, else a `ConfigError`."""
    import inspect

    accepted = [p.name for p in inspect.signature(loader).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and not p.name.startswith("_")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        has = f"Its options are: {', '.join(accepted)}." if accepted else "It takes no options."
        raise ConfigError(f"Dataset {name!r} has no option(s) {', '.join(unknown)}. {has}")
    return options


def read_graphs_for_predict(schema: FeatureSchema, path: str) -> list:
    """Read new input to predict on, encoded exactly as the training data (per ``schema``).

    TU: a folder with ``<PREFIX>_A.txt``, ``<PREFIX>_graph_indicator.txt`` and the label files the
    model uses. Planetoid: a folder with ``ind.<name>.*``. Molecule: one SMILES per line, or a CSV
    with a ``smiles`` column.
    """
    if not Path(path).expanduser().exists():
        raise DataError(f"{path}: no such file or folder.")
    readers = {"tu": tu.read_tu_for_predict, "planetoid": planetoid.read_planetoid_for_predict,
               "molecule": molecules.read_smiles_for_predict}
    if schema.kind not in readers:
        raise DataError(f"Unknown feature schema kind {schema.kind!r}; expected one of {', '.join(readers)}.")
    return readers[schema.kind](schema, path)


__all__ = [
    "FeatureSchema",
    "GraphDataset",
    "Split",
    "SplitPlan",
    "plan_splits",
    "train_subset",
    "list_datasets",
    "load_dataset",
    "per_class_split",
    "planetoid_public_split",
    "random_split",
    "read_graphs_for_predict",
    "resolve_data_root",
    "stratified_kfold",
]
