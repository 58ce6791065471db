"""Settings, one way: a YAML file, then command-line flags, then ``key=value`` overrides, turned
into a typed, validated config dataclass by :func:`build_config`.

Every entry point (``train``, ``fewshot``, ``create_model``, the few-shot models) goes through
:func:`build_config`; the types are checked by pydantic, the messages are ours:

    >>> build_config(ExperimentConfig, {"epochs": "ten"}, "experiment")
    ConfigError: experiment setting epochs must be an integer, got 'ten'.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Type, TypeVar

from .errors import ConfigError

C = TypeVar("C")

#: pydantic error type -> how the message names what was expected.
_EXPECTED = {
    "int": "an integer", "float": "a number", "bool": "true or false", "string": "text",
    "list": "a list", "dict": "a mapping", "tuple": "a list",
}


def parse_scalar(raw: str) -> Any:
    """``'3'`` -> 3, ``'1e-3'`` -> 0.001 (YAML 1.1 alone reads that as text), ``'true'`` -> True."""
    import yaml

    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    try:
        return yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        return raw


@functools.lru_cache(maxsize=None)
def _adapter(cls: type):
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


def build_config(cls: Type[C], values: Mapping[str, Any], owner: str, noun: str = "setting") -> C:
    """``cls(**values)`` with every value checked against its field's type, then ``validate()``.

    Unknown keys and missing required keys are refused with the known ones listed; number-like
    text is converted (``'3'`` for an int field, ``'1e-3'`` for a float), anything else of the
    wrong type is refused with one message naming the setting, what it must be and what it got.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown {noun}(s) of {owner}: {', '.join(unknown)}. "
                          f"Known {noun}s: {', '.join(sorted(fields))}.")
    missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    if missing:
        raise ConfigError(f"{owner[:1].upper()}{owner[1:]} needs {noun}(s) {', '.join(missing)}.")
    from pydantic import ValidationError

    try:
        config = _adapter(cls).validate_python(dict(values))
    except ValidationError as err:
        raise ConfigError(_message(err, f"{owner} {noun}")) from None
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def _message(err, what: str) -> str:
    first = err.errors(include_url=False)[0]
    name = ".".join(str(p) for p in first["loc"] if not isinstance(p, int)) or "value"
    kind = first["type"].split("_")[0]
    got = first.get("input")
    if kind in _EXPECTED:
        return f"{what} {name} must be {_EXPECTED[kind]}, got {got!r}."
    return f"{what} {name}: {first['msg'][:1].lower()}{first['msg'][1:]}, got {got!r}."


def load_config_file(path: Optional[str | Path]) -> Dict[str, Any]:
    """The mapping a YAML settings file holds; ``{}`` for no file."""
    if path is None:
        return {}
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Config file {p} does not exist.")
    try:
        values = yaml.safe_load(p.read_text(encoding="utf-8-sig")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"Config file {p} is not valid YAML{where}: {getattr(err, 'problem', err)}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config file {p} is not UTF-8 text.") from None
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {p} must hold a mapping of settings (key: value), not {type(values).__name__}.")
    return values


def apply_overrides(values: Mapping[str, Any], overrides: Iterable[str],
                    nested: Mapping[str, str] = {"model": "model_args", "dataset": "dataset_args"}) -> Dict[str, Any]:
    """``key=value`` settings; ``model.<option>=value`` sets ``model_args[option]`` (and likewise
    for every prefix in ``nested``). Values are read as YAML scalars: ``lr=1e-3`` is a number,
    ``model.local=gine`` text, ``methods=[fs-gin]`` a list."""
    values = copy.deepcopy(dict(values))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Override {item!r} is not of the form key=value (e.g. lr=0.001 or model.hidden=64).")
        value = parse_scalar(raw)
        prefix, dot, option = key.partition(".")
        if dot and prefix in nested and option:
            target = values.setdefault(nested[prefix], {})
            if not isinstance(target, dict):
                raise ConfigError(f"{nested[prefix]} must be a mapping of options, got {target!r}.")
            target[option] = value
        else:
            values[key] = value
    return values


def merge_settings(config_file: Optional[str | Path], flags: Mapping[str, Any], overrides: Iterable[str] = (),
                   preset: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The config file's settings, then ``preset``, then the flags given (not None), then ``key=value``."""
    values = load_config_file(config_file)
    values.update(preset or {})
    values.update({k: v for k, v in flags.items() if v is not None})
    return apply_overrides(values, overrides)
