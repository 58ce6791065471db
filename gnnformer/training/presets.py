"""The settings a paper gives for a (model, dataset) pair, applied by ``gnnformer train`` by default.

``presets.yaml`` holds, per pair, the training settings of its benchmark row (epochs, optimiser,
regularisation, ``model_args``, ``dataset_args``; never the protocol: split, runs, seeds, folds),
where they come from, and the config file that row ran. Layering: the preset is the lowest
layer, under the flags and ``key=value`` overrides, so every key can be overridden; a ``--config``
file is taken as the whole of the user's settings and no preset is added to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

NESTED = ("model_args", "dataset_args")


def as_words(settings: Mapping[str, Any]) -> Dict[str, Any]:
    """Settings as ``key=value`` words, ``model_args``/``dataset_args`` as ``model.<k>``/``dataset.<k>``."""
    words = {k: v for k, v in settings.items() if k not in NESTED}
    for key in NESTED:
        words.update({f"{key.split('_')[0]}.{k}": v for k, v in (settings.get(key) or {}).items()})
    return words


@dataclass(frozen=True)
class Preset:
    model: str
    dataset: str
    source: str  # e.g. "the DIFFormer paper's Cora settings (Wu et al., ICLR 2023)"
    config: str  # the config file of the benchmark row, relative to the repository
    settings: Dict[str, Any]

    def words(self) -> Dict[str, Any]:
        """The settings as ``key=value`` words: ``{"epochs": 500, ..., "model.layers": 8}``."""
        return as_words(self.settings)

    def describe(self, given: Mapping[str, Any] = {}) -> str:
        """The preset's settings as ``key=value`` words, leaving out and naming those ``given``
        (the user's own settings, which win)."""
        mine = set(as_words(given))
        words = self.words()
        text = " ".join(f"{k}={v}" for k, v in words.items() if k not in mine)
        kept = [k for k in words if k in mine]
        return text + (f"; yours kept: {', '.join(kept)}" if kept else "")


@lru_cache(maxsize=1)
def all_presets() -> Dict[Tuple[str, str], Preset]:
    """Every preset, keyed by (model, dataset) in lower case."""
    import yaml

    raw = yaml.safe_load((Path(__file__).with_name("presets.yaml")).read_text())
    out = {}
    for key, entry in raw.items():
        model, _, dataset = key.partition("/")
        out[(model.lower(), dataset.lower())] = Preset(model, dataset, entry["source"], entry["config"],
                                                        entry["settings"])
    return out


def find_preset(model: str, dataset: str) -> Optional[Preset]:
    return all_presets().get((str(model).lower(), str(dataset).lower()))


def with_preset(values: Mapping[str, Any], model: str, dataset: str) -> Tuple[Dict[str, Any], Optional[Preset]]:
    """``values`` over the preset of (``model``, ``dataset``), if there is one; ``model_args`` and
    ``dataset_args`` are merged key by key (``model.hidden=32`` keeps the preset's other options)."""
    preset = find_preset(model, dataset)
    if preset is None:
        return dict(values), None
    merged = {**preset.settings, **values}
    for key in NESTED:
        if key in preset.settings or key in values:
            merged[key] = {**preset.settings.get(key, {}), **(values.get(key) or {})}
    return merged, preset
