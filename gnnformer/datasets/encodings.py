"""Positional and structural encodings of a whole dataset, computed once and cached on disk.

The computations themselves live in :mod:`gnnformer.nn.encodings` (one graph, or a list of
graphs, in memory); this module adds what only the data layer should do: a content-keyed cache
under ``cache_dir()/encodings/`` and progress while computing.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import struct
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import Tensor
from torch_geometric.data import Data

from ..nn.encodings import compute_lap_pe, compute_rwse, compute_spd
from ..paths import cache_dir, unwritable_cache
from ..progress import iterate

#: Stored in every cache file; a file of another version is recomputed. Bumped for an encoding
#: whose values change (LapPE 2: isolated nodes get zero rows; 3: ARPACK from a fixed start vector).
_CACHE_VERSIONS = {"lap_pe": 3, "rwse": 1, "spd": 1}


def graphs_key(graphs: Iterable[Data], weights: bool = False) -> str:
    """sha256 over each graph's ``num_nodes`` and ``edge_index`` (and ``edge_weight`` if asked)."""
    parts: list = []  # hashed in one update: the same digest as one update per piece, less overhead
    for data in graphs:
        ei = data.edge_index
        if ei.dtype is not torch.int64 or not ei.is_cpu:
            ei = ei.detach().cpu().to(torch.int64)
        # Flat: a memoryview of a 2-D array with no columns (a graph without edges) cannot be cast
        # to bytes; the flat array has the same bytes.
        ei = ei.contiguous().view(-1)
        # Sizes first, so that different splits of the same bytes give different keys.
        parts.append(struct.pack("=qq", int(data.num_nodes), ei.numel() // 2))
        parts.append(memoryview(ei.numpy()).cast("B"))
        ew = getattr(data, "edge_weight", None) if weights else None
        if ew is not None:
            parts.append(b"w")
            parts.append(ew.detach().cpu().to(torch.float64).contiguous().numpy().tobytes())
    h = hashlib.sha256(b"".join(parts))
    return h.hexdigest()


def _load(path: Path, version: int, expected_sizes: list[int], dtype: torch.dtype) -> list[Tensor] | None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        sizes = blob["sizes"].tolist()
        if blob.get("version") != version or sizes != expected_sizes:
            return None
        # One conversion of the whole block, then views: not one small copy per graph.
        return list(torch.split(blob["values"].to(dtype), sizes, dim=0))
    except Exception:  # a truncated or foreign file: recompute and overwrite it
        return None


def _save(path: Path, version: int, values: list[Tensor], store_dtype: torch.dtype | None) -> None:
    cat = torch.cat(values, dim=0)
    blob = {
        "version": version,
        "sizes": torch.tensor([v.size(0) for v in values], dtype=torch.long),
        "values": cat.to(store_dtype) if store_dtype is not None else cat,
    }
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(blob, tmp)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise unwritable_cache(path.parent, err) from None


def _encode(
    graphs: list[Data],
    kind: str,
    name: str,
    key: str,
    compute: Callable[[Data], Tensor] | None,
    expected_sizes: list[int],
    *,
    cache: bool,
    progress: bool,
    dtype: torch.dtype,
    store_dtype: torch.dtype | None = None,
    compute_all: Callable[[list[Data]], list[Tensor]] | None = None,
) -> list[Tensor]:
    """Load ``name`` (an encoding of ``kind``: its cache version) from the cache, or compute it:
    per graph with ``compute``, or for all graphs in one call with ``compute_all`` (no progress:
    it is fast)."""
    path = cache_dir() / "encodings" / f"{name}-{key}.pt" if cache else None
    if path is not None and path.exists():
        values = _load(path, _CACHE_VERSIONS[kind], expected_sizes, dtype)
        if values is not None:
            return values
    if compute_all is not None:
        values = list(compute_all(graphs))
    else:
        values = [compute(g) for g in iterate(graphs, f"Computing {name}", enabled=progress)]
    if path is not None and values:
        _save(path, _CACHE_VERSIONS[kind], values, store_dtype)
    return values


def precompute_encodings(
    graphs: list[Data],
    *,
    lap_pe: int = 0,
    rwse: int = 0,
    spd: bool = False,
    cache: bool = True,
    progress: bool = False,
) -> list[Data]:
    """Return shallow copies of ``graphs`` with the requested encodings attached.

    ``lap_pe=k`` adds ``lap_pe`` ``[N, k]`` (:class:`~gnnformer.nn.LapPE`), ``rwse=steps`` adds
    ``rwse`` ``[N, steps]`` (:class:`~gnnformer.nn.RWSE`), ``spd=True`` adds ``spd`` ``[N * N]``
    (:class:`~gnnformer.nn.ShortestPathDistance`). The inputs are not modified. With ``cache=True``
    every encoding is stored under ``cache_dir()/encodings/`` as ``spd-<key>.pt``,
    ``lap_pe<k>-<key>.pt`` or ``rwse<steps>-<key>.pt`` where ``<key>`` is :func:`graphs_key`
    (sha256 of every graph's ``num_nodes`` and ``edge_index``, plus ``edge_weight`` for
    LapPE/RWSE), so a later run with the same graphs loads them instead of recomputing; a cache
    folder that cannot be written is a :class:`~gnnformer.errors.DataError`. ``progress`` shows
    progress (:mod:`gnnformer.progress`) while computing.
    """
    graphs = list(graphs)
    out = [copy.copy(g) for g in graphs]
    if not (lap_pe or rwse or spd) or not graphs:
        return out
    num_nodes = [int(g.num_nodes) for g in graphs]
    opts = dict(cache=cache, progress=progress)
    # LapPE and RWSE read edge weights, SPD does not: two keys (none without a cache).
    weighted_key = graphs_key(graphs, weights=True) if cache and (lap_pe or rwse) else ""

    if lap_pe:
        values = _encode(
            graphs, "lap_pe", f"lap_pe{lap_pe}", weighted_key, lambda g: compute_lap_pe(g, lap_pe),
            num_nodes, dtype=torch.float, **opts,
        )
        for data, v in zip(out, values):
            data.lap_pe = v
    if rwse:
        values = _encode(
            graphs, "rwse", f"rwse{rwse}", weighted_key, lambda g: compute_rwse(g, rwse), num_nodes,
            dtype=torch.float, **opts,
        )
        for data, v in zip(out, values):
            data.rwse = v
    if spd:
        key = graphs_key(graphs) if cache else ""
        values = _encode(
            graphs, "spd", "spd", key, None, [n * n for n in num_nodes],
            dtype=torch.long, store_dtype=torch.int32, compute_all=lambda gs: compute_spd(gs), **opts,
        )
        for data, v in zip(out, values):
            data.spd = v
    return out
