"""Spatiotemporal series as next-step node regression: one graph per time step.

A series holds ``values[t, n]`` for time steps ``t = 0..T-1`` and regions ``n = 0..N-1``, and a
graph between regions (the same every step, or one per step). With a window of ``lags`` steps,
time step ``t`` (for ``t = lags..T-1``) becomes one graph:

* nodes = the ``N`` regions,
* ``x[n] = values[t - lags : t, n]`` (oldest first; ``x[n, -1]`` is the previous step),
* ``y[n] = values[t, n]`` (the value to predict),
* ``edge_index`` (and ``edge_weight``) = the graph of step ``t - 1``, the last one observed
  before the prediction (static graphs: the one graph),
* ``step = t``.

Split (the dataset's ``fixed_split``, used with ``split: auto``): chronological over those graphs
in target-time order: the first 80% train, the next 10% validate, the last 10% test (counts
rounded as in :func:`~gnnformer.datasets.splits.random_split`). Every training input and target
comes from before the first validation target, and every validation one from before the first
test target.

Normalisation: every region's series is standardised with the mean and standard deviation of
its values at time steps ``0..t_last``, where ``t_last`` is the last training target step (so
only training-period data); a region whose training values are constant is only centred. ``x``
and ``y`` are both on that scale, and MSE / MAE are reported on it (the standardised scale).
``dataset.graphs[i].scale_mean`` / ``scale_std`` map back: ``value = y * std + mean``.

Datasets (files under ``<data root>/temporal/``):

* ``chickenpox``: weekly chickenpox cases in the 20 Hungarian counties, 2005-2014 (521 weeks; the
  file holds them already standardised per county), a fixed county graph of 102 directed edges
  with self-loops. Rozemberczki et al., "Chickenpox cases in Hungary: a benchmark dataset for
  spatiotemporal signal processing with graph neural networks", 2021; distributed with PyTorch
  Geometric Temporal. Built in (``chickenpox.json``, 215 KB), so it loads with no data root.
  Default ``lags`` 4.
* ``england-covid``: daily COVID-19 cases in 129 English NUTS3 regions, 61 days of 2020, with one
  mobility graph per day (weighted, 836-2158 directed edges). Panagopoulos, Nikolentzos &
  Vazirgiannis, "Transfer graph neural networks for pandemic forecasting", AAAI 2021. Not built in:
  ``<root>/temporal/england_covid.json``. Default ``lags`` 8.

When a file is missing from the data root it is downloaded once from :data:`URLS` into the cache
(unless ``GNNFORMER_OFFLINE`` is set); if that fails, the error says where to put it.
"""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from ..errors import ConfigError, DataError
from ..paths import cache_dir
from ..registry import DATASETS
from .root import DOWNLOAD_STALL_TIMEOUT, find_child, is_offline, missing_error
from .schema import FeatureSchema, GraphDataset
from .splits import Split, _counts
from .validate import read_text

URL_BASE = "https://raw.githubusercontent.com/benedekrozemberczki/pytorch_geometric_temporal/master/dataset/"
URLS = {"chickenpox.json": URL_BASE + "chickenpox.json", "england_covid.json": URL_BASE + "england_covid.json"}
#: Chronological split of the time steps (train, validation, test).
FRACTIONS = (0.8, 0.1, 0.1)


# ----------------------------------------------------------------------------- files


def locate(filename: str, root: Path, origin: str, name: str) -> Path:
    """``<root>/temporal/<filename>``; else an earlier download in the cache; else download it."""
    folder = find_child(root, "temporal")
    if folder is not None:
        path = find_child(folder, filename, want_dir=False)
        if path is not None:
            return path
    cached = cache_dir() / "downloads" / "temporal" / filename
    if cached.is_file():
        return cached
    reason = _download(URLS[filename], cached)
    if cached.is_file():
        return cached
    raise missing_error(name, [filename], [filename], (folder or root / "temporal"), root, origin,
                        f"temporal/{filename}", f"{URLS[filename]}: {reason}")


def _download(url: str, dest: Path) -> str:
    """Fetch ``url`` to ``dest`` (atomically); returns ``''`` or why it did not happen."""
    if is_offline():
        return "skipped (GNNFORMER_OFFLINE is set)"
    try:
        timeout = float(os.environ.get("GNNFORMER_DOWNLOAD_TIMEOUT", DOWNLOAD_STALL_TIMEOUT))
    except ValueError:
        timeout = DOWNLOAD_STALL_TIMEOUT
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + f".part{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            data = resp.read()
        json.loads(data)  # an HTML error page or a truncated file is not kept
        part.write_bytes(data)
        part.replace(dest)
        return ""
    except Exception as exc:  # network, HTTP or JSON errors all mean "not downloaded"
        part.unlink(missing_ok=True)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"download failed ({type(exc).__name__}{': ' + text[:200] if text else ''})"


def _read_json(path: Path, keys: tuple[str, ...]) -> dict:
    try:
        raw = json.loads(read_text(Path(path)))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({type(exc).__name__}: {exc}).") from exc
    missing = [k for k in keys if not isinstance(raw, dict) or k not in raw]
    if missing:
        raise DataError(f"{path}: expected the keys {', '.join(keys)}; missing {', '.join(missing)}.")
    return raw


def _edges(pairs, n: int, where: str) -> torch.Tensor:
    try:
        arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2) if len(pairs) else np.zeros((0, 2), dtype=np.int64)
    except (OverflowError, TypeError, ValueError) as exc:  # a huge id, a string, a ragged list
        raise DataError(f"{where}: edge endpoints must be integer node ids in 0..{n - 1} ({exc}).") from exc
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise DataError(f"{where}: edge endpoints must lie in 0..{n - 1}, found {arr.min()}..{arr.max()}.")
    return torch.from_numpy(arr.T.copy())


def read_chickenpox(path: Path) -> tuple[np.ndarray, list[torch.Tensor], list[torch.Tensor]]:
    """``(values [T, N], [edge_index], [edge_weight])``: one static graph, unit weights."""
    raw = _read_json(path, ("edges", "FX"))
    values = np.asarray(raw["FX"], dtype=np.float64)
    if values.ndim != 2 or not np.isfinite(values).all():
        raise DataError(f"{path}: FX must be a finite weeks x counties table, got shape {values.shape}.")
    ei = _edges(raw["edges"], values.shape[1], f"{path}: edges")
    return values, [ei], [torch.ones(ei.size(1))]


def read_england_covid(path: Path) -> tuple[np.ndarray, list[torch.Tensor], list[torch.Tensor]]:
    """``(values [T, N], [edge_index per day], [edge_weight per day])``."""
    raw = _read_json(path, ("edge_mapping", "time_periods", "y"))
    values = np.asarray(raw["y"], dtype=np.float64)
    T = int(raw["time_periods"])
    if values.ndim != 2 or values.shape[0] != T or not np.isfinite(values).all():
        raise DataError(f"{path}: y must be a finite {T} days x regions table, got shape {values.shape}.")
    mapping = raw["edge_mapping"]
    if not isinstance(mapping, dict) or "edge_index" not in mapping or "edge_weight" not in mapping:
        raise DataError(f"{path}: edge_mapping must hold edge_index and edge_weight per day.")
    edges, weights = [], []
    for t in range(T):
        if str(t) not in mapping["edge_index"] or str(t) not in mapping["edge_weight"]:
            raise DataError(f"{path}: edge_mapping has no graph for day {t}.")
        ei = _edges(mapping["edge_index"][str(t)], values.shape[1], f"{path}: day {t}")
        w = torch.tensor(mapping["edge_weight"][str(t)], dtype=torch.float32).view(-1)
        if w.numel() != ei.size(1):
            raise DataError(f"{path}: day {t} has {ei.size(1)} edges but {w.numel()} weights.")
        edges.append(ei)
        weights.append(w)
    return values, edges, weights


# ----------------------------------------------------------------------------- windows and split


def chronological_split(num_steps: int, fractions: tuple[float, float, float] = FRACTIONS) -> Split:
    """Items ``0..num_steps-1`` in time order: the first part trains, the next validates, the last tests."""
    if num_steps < 3:
        raise DataError(f"A chronological train/val/test split needs at least 3 time steps, got {num_steps}.")
    n_train, n_val, n_test = _counts(num_steps, tuple(float(f) for f in fractions))
    idx = torch.arange(num_steps)
    return Split(train=idx[:n_train], val=idx[n_train:n_train + n_val], test=idx[n_train + n_val:n_train + n_val + n_test])


def training_scale(values: np.ndarray, last_train_step: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-region mean and standard deviation (ddof 0) over time steps ``0..last_train_step``;
    a constant region gets std 1 (centred only)."""
    seen = values[: last_train_step + 1]
    mean, std = seen.mean(0), seen.std(0)
    return mean, np.where(std > 1e-12, std, 1.0)


def windows(values: np.ndarray, lags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x [S, N, lags], y [S, N], steps [S])`` with ``S = T - lags``: sample ``s`` predicts step
    ``t = s + lags`` from steps ``t - lags .. t - 1``."""
    T = values.shape[0]
    if not 1 <= lags < T:
        raise ConfigError(f"lags must be between 1 and {T - 1} (the series has {T} steps), got {lags}.")
    steps = np.arange(lags, T)
    x = np.stack([values[t - lags:t].T for t in steps])
    return x, values[steps], steps


def build_series(name: str, values: np.ndarray, edges: list[torch.Tensor], weights: list[torch.Tensor],
                 lags: int, source: str, root: Path) -> GraphDataset:
    """The node-regression dataset of a series: one graph per predicted step (see the module doc)."""
    if isinstance(lags, bool) or not isinstance(lags, int):
        raise ConfigError(f"{name} option lags must be an integer, got {lags!r}.")
    T, N = values.shape
    if not 1 <= lags <= T - 3:
        raise ConfigError(f"{name}: lags must be between 1 and {T - 3} (the series has {T} steps and "
                          f"needs 3 left to split), got {lags}.")
    split = chronological_split(T - lags)
    last_train_step = lags + int(split.train[-1])
    mean, std = training_scale(values, last_train_step)
    scaled = (values - mean) / std
    xs, ys, steps = windows(scaled, lags)
    scale_mean = torch.tensor(mean, dtype=torch.float32)
    scale_std = torch.tensor(std, dtype=torch.float32)
    graphs = []
    for x, y, t in zip(xs, ys, steps):
        g = 0 if len(edges) == 1 else int(t) - 1  # the last graph observed before step t
        graphs.append(Data(x=torch.tensor(x, dtype=torch.float32), y=torch.tensor(y, dtype=torch.float32),
                           edge_index=edges[g], edge_weight=weights[g], step=torch.tensor(int(t)),
                           scale_mean=scale_mean, scale_std=scale_std, num_nodes=N))
    sizes = "/".join(str(n) for n in split.sizes())
    notes = [f"{name}: {T} steps x {N} regions, window of {lags} past steps -> next step, one graph per "
             f"predicted step ({T - lags}); chronological {sizes} split (first 80% train, next 10% val, "
             f"last 10% test); values standardised per region with training-period statistics "
             f"(steps 0..{last_train_step}); MSE/MAE are on that standardised scale."]
    schema = FeatureSchema(kind="temporal", num_node_features=lags, num_edge_features=0,
                           description=f"{lags} past standardised values per region ({source})",
                           details={"source": source, "lags": lags, "regions": N,
                                    "normalisation": "per-region standardisation, training-period statistics",
                                    "mean": [round(float(v), 6) for v in mean],
                                    "std": [round(float(v), 6) for v in std]})
    return GraphDataset(name=name, task="node_regression", graphs=graphs, num_features=lags, num_edge_features=0,
                        out_dim=1, schema=schema, root=root, notes=notes, labels=torch.cat([d.y for d in graphs]),
                        fixed_split=split)


SERIES = {
    # name: (file, reader, default lags, summary)
    "chickenpox": ("chickenpox.json", read_chickenpox, 4,
                   "Hungary chickenpox: 521 weeks x 20 counties, static graph; next-week node regression (option lags, default 4)"),
    "england-covid": ("england_covid.json", read_england_covid, 8,
                      "England COVID-19: 61 days x 129 regions, daily mobility graphs; next-day node regression (option lags, default 8)"),
}


def load_series(name: str, root: Path, origin: str, lags: int | None = None) -> GraphDataset:
    filename, reader, default_lags, _ = SERIES[name]
    path = locate(filename, root, origin, name)
    values, edges, weights = reader(path)
    return build_series(name, values, edges, weights, default_lags if lags is None else lags, filename, path.parent)


def _register() -> None:
    for name, (_, _, _, summary) in SERIES.items():
        def loader(root, origin, *, lags: int | None = None, _name=name):
            return load_series(_name, root, origin, lags)

        DATASETS.register(name, summary)(loader)


_register()
