"""Every model, registered by name: ``create_model(name, **cfg)`` builds any of them.

Each model module defines a config dataclass (``Model.Config``) and registers its class with
``@MODELS.register(name)``; the CLI, configs and tests all go through ``create_model``.
"""
from __future__ import annotations

from typing import Any

from ..config import build_config
from ..registry import MODELS
from . import baselines, clgt, difformer, gps, gradformer, transformer  # noqa: F401  (imports register the models)
from .base import GraphModel, ModelConfig


def model_config(name: str, **cfg: Any) -> ModelConfig:
    """Validate ``cfg`` against the model's config dataclass; unknown keys are a user error."""
    return build_config(MODELS.get(name).Config, cfg, f"model {name!r}", noun="option")


def create_model(name: str, **cfg: Any) -> GraphModel:
    """Build the model registered as ``name`` from keyword options (see its ``Config``)."""
    return MODELS.get(name)(model_config(name, **cfg))


def list_models() -> list[tuple[str, str]]:
    return [(e.name, e.summary) for e in MODELS]


__all__ = ["create_model", "model_config", "list_models", "GraphModel", "ModelConfig"]
