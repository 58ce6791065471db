"""The class labels of a classification dataset: at least two, and as many as the dataset declares.

A file whose every graph (or node) carries one label trains a model that always answers that
label: accuracy 1.0, nothing learnt. That is refused. A stray value (a ``5`` among MUTAG's -1/1
labels) silently adds a class: the model gets an extra output and two-class metrics such as
ROC-AUC disappear. That is reported as a note, since the data may be right and the declaration
old.
"""
from __future__ import annotations

from collections.abc import Sequence

from ..errors import DataError


def check_classes(name: str, values: Sequence, counts: Sequence[int], declared: int | None, unit: str,
                  source: str, out_dim: int) -> list[str]:
    """Refuse a single class; return a note when the number found differs from ``declared``.

    ``values`` are the distinct label values as written in ``source`` (the file or files that hold
    them), ``counts`` how many ``unit``\\ s (``'graph'``, ``'node'``) carry each, ``declared`` the
    number of classes the dataset is known to have (None: unknown), ``out_dim`` the number of model
    outputs these labels give.
    """
    values, counts = list(values), [int(c) for c in counts]
    total = sum(counts)
    if len(values) == 1:
        raise DataError(
            f"{name}: every {unit} ({total}) has the label {values[0]} in {source}; classification needs "
            "at least two classes (a one-class model scores accuracy 1.0 and learns nothing). Check "
            "the labels file.")
    if declared is None or len(values) == declared:
        return []
    table = ", ".join(f"{v}: {_count(c, unit)}" for v, c in zip(values, counts))
    note = f"{name} declares {declared} classes but {source} holds {len(values)} label values ({table})"
    if len(values) > declared:
        order = sorted(range(len(values)), key=lambda i: (counts[i], i))[: len(values) - declared]
        rare = ", ".join(f"{values[i]} ({_count(counts[i], unit)})" for i in sorted(order))
        note += f"; the rarest, {rare}, look like stray labels"
    note += f". The model gets {out_dim} outputs"
    if declared == 2 and out_dim != 2:
        note += " and ROC-AUC (defined for two classes) is not reported"
    return [note + "."]


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"
