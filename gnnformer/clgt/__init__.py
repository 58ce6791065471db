"""CLGT end to end (``gnnformer clgt train`` / ``report``): a team's version-control history cut into
interaction graphs per window, CLGT and its baselines trained chronologically, the latest window
predicted and explained (Peng et al., "CLGT: A Graph Transformer for Student Performance Prediction
in Collaborative Learning", AAAI 2023, arXiv:2308.02038)."""
from .settings import CLGTConfig, clgt_config

__all__ = ["CLGTConfig", "clgt_config"]
