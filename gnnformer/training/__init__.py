"""Training: experiments (runs, folds, outputs), the loop, evaluation, optimizers, checkpoints, plots.

    settings.py    ExperimentConfig: the settings of `gnnformer train`, checked
    experiment.py  prepare -> splits -> train_one per run -> metrics.json, config.yaml, best.pt, curves.png
    loop.py        epochs, learning-rate schedule, selection on validation, early stopping
    evaluation.py  outputs and metrics over a split, in the split's order
    optim.py       optimizers and schedules by name
    runtime.py     seeding and devices
"""
from .evaluation import Evaluator, Prepared
from .experiment import describe_protocol, make_splits, nan_to_none, prepare, run_experiment
from .loop import train_epoch, train_one
from .runtime import resolve_device, seed_everything
from .settings import ExperimentConfig, config_from_mapping

__all__ = ["Evaluator", "ExperimentConfig", "Prepared", "config_from_mapping", "describe_protocol", "make_splits", "nan_to_none",
           "prepare", "resolve_device", "run_experiment", "seed_everything", "train_epoch", "train_one"]
