"""Checkpoints: written atomically, carrying everything needed to rebuild and check the model.

A checkpoint is a dict of plain types plus a state_dict, so it loads with ``weights_only=True``
(no arbitrary code runs when a file from elsewhere is opened).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict

import torch

from ..errors import CheckpointError

FORMAT = "gnnformer-checkpoint/1"
REQUIRED = ("format", "model", "model_config", "state_dict", "schema", "task", "dataset", "experiment")


def save_checkpoint(path: str | os.PathLike, payload: Dict[str, Any]) -> Path:
    """Write ``payload`` (a checkpoint: the keys of ``REQUIRED``) atomically (``atomic_save``)."""
    return atomic_save(path, {"format": FORMAT, **payload})


def atomic_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` so that a kill mid-write never leaves a half-written file.

    The bytes go to a temporary file in the same folder, are flushed to disk, and only then
    renamed over the target (``os.replace`` is atomic on POSIX and Windows).
    """
    return _atomic(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically, as ``atomic_save`` does."""
    return _atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def _atomic(path: str | os.PathLike, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike) -> Dict[str, Any]:
    """Read and check a checkpoint file; a missing file or a folder is a `CheckpointError` that says what to pass."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(_folder_message(path))
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist (expected a file written by `gnnformer train`).")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors vary by corruption; all mean the same to the user
        raise CheckpointError(
            f"Checkpoint {path} cannot be read ({type(err).__name__}); it is corrupt or not a gnnformer checkpoint."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gnnformer checkpoint (format tag {FORMAT!r} missing).")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"Checkpoint {path} lacks {', '.join(missing)}; it is incomplete.")
    return ckpt


def _folder_message(folder: Path) -> str:
    """Why a folder is not a checkpoint, naming the checkpoint files inside it when there are any."""
    best = folder / "best.pt"
    found = [best] if best.is_file() else sorted(folder.glob("*.pt")) + sorted(folder.glob("checkpoints/*.pt"))
    if not found:
        return (f"Checkpoint {folder} is a folder, not a checkpoint file, and holds none (no best.pt from "
                "`gnnformer train`, no checkpoints/*.pt from `gnnformer fewshot`).")
    if len(found) == 1:
        return f"Checkpoint {folder} is a folder, not a checkpoint file; did you mean {found[0]}?"
    listed = "\n".join(f"  {p}" for p in found)
    return f"Checkpoint {folder} is a folder, not a checkpoint file; it holds these checkpoints, pass one:\n{listed}"
