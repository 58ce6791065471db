"""gnnformer: graph transformers that fuse GNN message passing with Transformer attention.

    import gnnformer
    model = gnnformer.create_model("gps", in_channels=7, out_channels=2)

``import gnnformer`` stays light: the model functions (which need torch and PyG) are imported
on first use, so the ``gnnformer`` command starts without loading torch.
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import CheckpointError, ConfigError, DataError, UserError

__version__ = "0.1.0"

#: Public names that live in a heavy submodule, imported when first asked for.
_LAZY = {"create_model": "models", "list_models": "models"}

__all__ = ["create_model", "list_models", "UserError", "DataError", "ConfigError", "CheckpointError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
