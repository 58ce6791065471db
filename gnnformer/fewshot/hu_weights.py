"""Encoders pre-trained by Hu et al. ("Strategies for Pre-training Graph Neural Networks", ICLR
2020) in their own file format, loaded into the few-shot models' ``MolEncoder`` and written back.

Their files are a plain ``state_dict`` of their ``GNN`` class: ``x_embedding1`` (atom type, 120
rows with the mask token) and ``x_embedding2`` (chirality, 3 rows), then per layer ``i``
``gnns.{i}.mlp.0`` / ``gnns.{i}.mlp.2`` (GIN) or ``gnns.{i}.linear`` (GCN and GraphSAGE, which
share their keys: ``conv`` in the model options says which), ``gnns.{i}.edge_embedding1`` (bond
type, 6 rows: 4 types, the self-loop, a mask token) and ``edge_embedding2`` (bond direction), and
``batch_norms.{i}``. Differences to this package's featurisation, handled here:

- chirality: ours has a fourth row, ``CHI_OTHER``, which their table lacks; it keeps the
  encoder's own initial values (atoms with that tag are rare: allenes, square-planar centres);
- bond type: their sixth row (the mask token of their edge-masking pre-training) is never
  indexed here and is dropped; written back as zeros.

The layers must be the encoder's norm (``norm: batch``), width and depth; anything else is
refused with a message that says which option to set.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .model import FewShotModelConfig, MolEncoder

_LAYER = re.compile(r"^gnns\.(\d+)\.")
#: Rows of their tables (atom, chirality, bond type, bond direction).
HU_ROWS = {"x_embedding1.weight": 120, "x_embedding2.weight": 3, "edge_embedding1.weight": 6,
           "edge_embedding2.weight": 3}


def read_hu_file(path: str | Path) -> Dict[str, Tensor]:
    """The state dict in ``path``, or a `DataError` that says why it is not one of their files."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a pre-trained encoder .pth of Hu et al.'s format).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors vary; all mean the same to the user
        raise DataError(f"{path} cannot be read as a torch state dict ({type(err).__name__}).") from None
    if not isinstance(state, dict) or "x_embedding1.weight" not in state or "gnns.0.edge_embedding1.weight" not in state:
        raise DataError(f"{path} is not an encoder in Hu et al.'s format (keys x_embedding1, gnns.0.edge_embedding1 "
                        "missing).")
    return state


def hu_conv(state: Dict[str, Tensor]) -> str:
    """``gin`` when the layers have MLPs, else ``gcn or graphsage`` (their keys are the same)."""
    return "gin" if "gnns.0.mlp.0.weight" in state else "gcn or graphsage"


def _key_map(cfg: FewShotModelConfig) -> List[Tuple[str, str]]:
    """(their key, our key) for every tensor, embeddings first."""
    pairs = [("x_embedding1.weight", "atom.weight"), ("x_embedding2.weight", "chirality.weight")]
    inner = ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"] if cfg.conv == "gin" else \
        ["linear.weight", "linear.bias"]
    for i in range(cfg.layers):
        pairs += [(f"gnns.{i}.{k}", f"layers.{i}.{k}") for k in inner]
        pairs += [(f"gnns.{i}.edge_embedding1.weight", f"layers.{i}.bond.weight"),
                  (f"gnns.{i}.edge_embedding2.weight", f"layers.{i}.direction.weight")]
        pairs += [(f"batch_norms.{i}.{k}", f"norms.{i}.{k}")
                  for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    return pairs


def _check(state: Dict[str, Tensor], cfg: FewShotModelConfig, source: str) -> None:
    layers = 1 + max(int(m.group(1)) for m in map(_LAYER.match, state) if m)
    hidden = state["x_embedding1.weight"].shape[1]
    wrong = []
    if layers != cfg.layers:
        wrong.append(f"layers={layers}")
    if hidden != cfg.hidden:
        wrong.append(f"hidden={hidden}")
    kind = hu_conv(state)
    if (kind == "gin") != (cfg.conv == "gin"):
        wrong.append("conv=gin" if kind == "gin" else "conv=gcn or conv=graphsage")
    if cfg.norm != "batch":
        wrong.append("norm=batch")
    if wrong:
        raise ConfigError(f"{source} holds a {layers}-layer, {hidden}-wide {kind} encoder with BatchNorm; set the "
                          f"model options {', '.join(wrong)} (e.g. model_args.{wrong[0]}) to load it.")


def encoder_state_from_hu(state: Dict[str, Tensor], encoder: MolEncoder, source: str = "the file") -> Dict[str, Tensor]:
    """A state dict for ``encoder`` holding the weights of ``state`` (their format)."""
    cfg = encoder.cfg
    _check(state, cfg, source)
    own = encoder.state_dict()
    out = dict(own)
    missing = []
    for theirs, ours in _key_map(cfg):
        if theirs not in state:
            missing.append(theirs)
            continue
        value = state[theirs]
        if ours == "chirality.weight" or ours.endswith(".bond.weight"):
            rows = min(value.shape[0], own[ours].shape[0])
            merged = own[ours].clone()
            merged[:rows] = value[:rows]
            value = merged
        if value.shape != own[ours].shape:
            raise DataError(f"{source}: {theirs} has shape {tuple(value.shape)}, the encoder's {ours} "
                            f"{tuple(own[ours].shape)}.")
        out[ours] = value.to(own[ours].dtype)
    if missing:
        raise DataError(f"{source} lacks {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}.")
    return out


def hu_state_from_encoder(encoder: MolEncoder) -> Dict[str, Tensor]:
    """``encoder``'s weights in their format (loadable by their ``GNN(..., gnn_type=conv)``)."""
    cfg = encoder.cfg
    own = encoder.state_dict()
    out = {}
    for theirs, ours in _key_map(cfg):
        if ours not in own:
            raise ConfigError("Only an encoder with norm=batch has their batch_norms; set model_args.norm=batch.")
        value = own[ours]
        rows = HU_ROWS.get(theirs.split(".", 2)[-1] if theirs.startswith("gnns.") else theirs)
        if rows is not None and value.shape[0] != rows:
            fitted = torch.zeros(rows, value.shape[1], dtype=value.dtype)
            fitted[:min(rows, value.shape[0])] = value[:rows]
            value = fitted
        out[theirs] = value.clone()
    return out


def load_hu_encoder(path: str | Path, cfg: FewShotModelConfig) -> Tuple[Dict[str, Tensor], List[str]]:
    """``(encoder state dict, notes)`` for a ``MolEncoder`` built from ``cfg``, from ``path``."""
    state = read_hu_file(path)
    encoder = MolEncoder(cfg)
    out = encoder_state_from_hu(state, encoder, str(path))
    notes = [f"encoder weights from {path} (Hu et al.'s format, {hu_conv(state)}); the CHI_OTHER chirality row, "
             "which their table lacks, keeps its initial values"]
    return out, notes
