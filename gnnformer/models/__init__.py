"""Every model, registered by name: ``create_model(name, **cfg)`` builds any of them.

Each model module defines a config dataclass (``Model.Config``) and registers its class with
``@MODELS.register(name)``; the CLI, configs and tests all go through ``create_model``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ..config import coerce_fields
from ..errors import ConfigError
from ..registry import MODELS
from . import baselines, difformer, gps, gradformer, transformer  # noqa: F401  (imports register the models)
from .base import GraphModel, ModelConfig


def model_config(name: str, **cfg: Any) -> ModelConfig:
    """Validate ``cfg`` against the model's config dataclass; unknown keys are a user error."""
    cls = MODELS.get(name)
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        raise ConfigError(
            f"Model {name!r} has no option(s) {', '.join(unknown)}. "
            f"Its options are: {', '.join(sorted(fields))}."
        )
    missing = [n for n, f in fields.items() if n not in cfg and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    if missing:
        raise ConfigError(f"Model {name!r} needs option(s) {', '.join(missing)}.")
    cfg = coerce_fields(cls.Config, cfg, f"model {name!r}")
    try:
        config = cls.Config(**cfg)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"Bad options for model {name!r}: {err}") from None
    config.validate()
    return config


def create_model(name: str, **cfg: Any) -> GraphModel:
    """Build the model registered as ``name`` from keyword options (see its ``Config``)."""
    return MODELS.get(name)(model_config(name, **cfg))


def list_models() -> list[tuple[str, str]]:
    return [(e.name, e.summary) for e in MODELS]


__all__ = ["create_model", "model_config", "list_models", "GraphModel", "ModelConfig"]
