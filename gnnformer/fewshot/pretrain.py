"""Self-supervised pre-training of the GIN by attribute masking (Hu et al., 2020).

In every molecule of a batch, a share of the atoms (``mask_rate``, at least one) has its atom
type replaced by the extra ``MASK_ATOM`` index and its chirality by 0; a linear layer on the
GIN's atom embeddings predicts the hidden atom types (cross-entropy over the 119 types).
No label of any task is read.

Corpus (``corpus``): ``rdkit`` = the unlabelled SMILES shipped inside RDKit's wheel
(``Data/NCI/first_5K.smi``, ``Data/Pains/test_data/wehi_mols.csv``); ``moleculenet`` = the
SMILES column of ``<root>/MoleculeNet/{tox21,sider}/raw/*.csv`` (structures only). The
encoder weights are cached under ``$GNNFORMER_CACHE/fewshot`` by the hash of the corpus and the
settings, so runs that share them pre-train once.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch, Data

from ..datasets.root import find_child, resolve_data_root
from ..errors import ConfigError, DataError
from ..paths import cache_dir
from ..training.checkpoint import save_checkpoint
from ..training.runtime import seed_everything
from .featurize import MASK_ATOM, NUM_ATOM_TYPES, Entry, featurize_entries
from .model import FewShotModelConfig, MolEncoder
from .tasks import episode_generator

CORPORA = ("rdkit", "moleculenet")


def rdkit_smiles_files() -> List[Path]:
    import rdkit

    base = Path(rdkit.__file__).resolve().parent / "Data"
    return [base / "NCI" / "first_5K.smi", base / "Pains" / "test_data" / "wehi_mols.csv"]


def _first_column(path: Path) -> List[Entry]:
    """First field of every line (whitespace-separated for .smi, CSV otherwise); no header."""
    out = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        field = line.split()[0] if path.suffix == ".smi" else next(csv.reader(io.StringIO(line)))[0]
        out.append(Entry(field.strip(), str(path), i))
    return out


def corpus_entries(corpus: Sequence[str], data_root: Optional[str] = None) -> List[Entry]:
    entries: List[Entry] = []
    for name in corpus:
        if name == "rdkit":
            files = rdkit_smiles_files()
            missing = [f for f in files if not f.is_file()]
            if missing:
                raise DataError(f"The installed RDKit lacks {', '.join(map(str, missing))}; "
                                "pre-train with corpus [moleculenet] instead.")
            for f in files:
                entries += _first_column(f)
        elif name == "moleculenet":
            root, _ = resolve_data_root(data_root)
            found = False
            for key in ("tox21", "sider"):
                folder = find_child(root / "MoleculeNet", key) if (root / "MoleculeNet").is_dir() else None
                path = (folder / "raw" / f"{key}.csv") if folder is not None else None
                if path is None or not path.is_file():
                    continue
                found = True
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
                header = [h.strip().lower() for h in next(csv.reader(io.StringIO(lines[0])))]
                col = header.index("smiles")
                for i, line in enumerate(lines[1:], start=2):
                    if line.strip():
                        entries.append(Entry(next(csv.reader(io.StringIO(line)))[col].strip(), str(path), i))
            if not found:
                raise DataError(f"Pre-training corpus 'moleculenet': no MoleculeNet/tox21 or sider CSV under {root}.")
        else:
            raise ConfigError(f"Unknown pre-training corpus {name!r}; choose from {', '.join(CORPORA)}.")
    return entries


def corpus_graphs(corpus: Sequence[str], data_root: Optional[str] = None) -> Tuple[List[Data], List[str]]:
    """Distinct encodable molecules of the corpus (by SMILES text); notes on what was skipped."""
    entries = corpus_entries(corpus, data_root)
    seen, unique = set(), []
    for e in entries:
        if e.smiles and e.smiles not in seen:
            seen.add(e.smiles)
            unique.append(e)
    good, bad = featurize_entries(unique, "skip")
    notes = [f"pre-training corpus ({'+'.join(corpus)}): {len(good)} distinct molecules"
             + (f"; {len(bad)} SMILES skipped, e.g. {bad[0]}" if bad else "")]
    return [g for _, g in good], notes


def mask_atoms(data: Batch, rate: float, gen: torch.Generator) -> Tuple[Batch, torch.Tensor]:
    """A copy of ``data`` with ``rate`` of each molecule's atoms (at least one) masked; the positions."""
    n = data.x.size(0)
    scores = torch.rand(n, generator=gen)
    counts = torch.bincount(data.batch, minlength=data.num_graphs)
    k = torch.clamp((counts.float() * rate).round().long(), min=1)
    # rank of each atom's score within its molecule: mask the k lowest
    order = torch.argsort(data.batch.double() * 2 + scores.double())  # by molecule, then score
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[order] = torch.arange(n) - starts[data.batch[order]]
    masked = torch.nonzero(rank < k[data.batch]).view(-1)
    x = data.x.clone()
    x[masked, 0] = MASK_ATOM
    x[masked, 1] = 0
    masked_data = copy.copy(data)
    masked_data.x = x
    return masked_data, masked


def pretrain_attribute_masking(model_cfg: FewShotModelConfig, graphs: Sequence[Data], epochs: int,
                               batch_size: int, lr: float, mask_rate: float, seed: int,
                               on_step: Optional[Callable[[int, int, float], None]] = None) -> Dict[str, torch.Tensor]:
    """Train a GIN encoder by attribute masking; returns its state dict."""
    seed_everything(seed)
    encoder = MolEncoder(model_cfg)
    predictor = nn.Linear(model_cfg.hidden, NUM_ATOM_TYPES)
    opt = torch.optim.Adam(list(encoder.parameters()) + list(predictor.parameters()), lr=lr)
    gen = episode_generator(seed, 15_485_863)
    encoder.train()
    steps = (len(graphs) + batch_size - 1) // batch_size
    for epoch in range(epochs):
        perm = torch.randperm(len(graphs), generator=gen).tolist()
        for s in range(steps):
            batch = Batch.from_data_list([graphs[i] for i in perm[s * batch_size:(s + 1) * batch_size]])
            masked_batch, masked = mask_atoms(batch, mask_rate, gen)
            h = encoder(masked_batch)
            loss = F.cross_entropy(predictor(h[masked]), batch.x[masked, 0])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if on_step is not None:
                on_step(epoch, epoch * steps + s, float(loss.detach()))
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def pretrain_key(model_cfg: FewShotModelConfig, graphs: Sequence[Data], settings: dict) -> str:
    encoder_cfg = {k: getattr(model_cfg, k) for k in ("hidden", "layers", "dropout", "norm")}
    digest = hashlib.sha256(json.dumps({"encoder": encoder_cfg, **settings}, sort_keys=True).encode())
    for g in graphs:
        digest.update(g.smiles.encode() + b"\0")
    return digest.hexdigest()[:16]


def cached_pretrained_encoder(model_cfg: FewShotModelConfig, corpus: Sequence[str], data_root: Optional[str],
                              epochs: int, batch_size: int, lr: float, mask_rate: float, seed: int,
                              progress: Optional[Callable[[str, int, int, float], None]] = None
                              ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """The attribute-masking encoder for these settings: from the cache, or trained and cached."""
    graphs, notes = corpus_graphs(corpus, data_root)
    settings = {"method": "attrmask", "corpus": list(corpus), "epochs": epochs, "batch_size": batch_size,
                "lr": lr, "mask_rate": mask_rate, "seed": seed}
    key = pretrain_key(model_cfg, graphs, settings)
    path = cache_dir() / "fewshot" / f"attrmask-{key}.pt"
    info = {**settings, "molecules": len(graphs), "key": key, "notes": notes}
    if path.is_file():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            return stored["state_dict"], {**info, "cached": True}
        except Exception:  # a damaged cache file is rebuilt
            path.unlink(missing_ok=True)
    steps = epochs * ((len(graphs) + batch_size - 1) // batch_size)

    def tick(epoch: int, step: int, loss: float) -> None:
        if progress is not None:
            progress("pre-train (attribute masking)", step + 1, steps, loss)

    state = pretrain_attribute_masking(model_cfg, graphs, epochs, batch_size, lr, mask_rate, seed, tick)
    save_checkpoint(path, {"state_dict": state, "settings": settings})
    return state, {**info, "cached": False}
