"""Training curves as a PNG: loss per epoch and the validation metric, one line per run.

matplotlib is imported only when a plot is drawn, and drawn on its own Agg canvas: pyplot's
global backend (a user's notebook, a GUI session) is never touched.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple


def plot_curves(histories: List[List[Dict[str, float]]], monitor: str, path: str | Path, title: str = "") -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_loss, ax_metric = fig.subplots(1, 2)
    for run, hist in enumerate(histories):
        epochs = [h["epoch"] for h in hist]
        colour = f"C{run % 10}"
        ax_loss.plot(epochs, [h["train_loss"] for h in hist], color=colour, label=f"run {run} train")
        ax_loss.plot(epochs, [h["val_loss"] for h in hist], color=colour, linestyle="--", label=f"run {run} val")
        ax_metric.plot(epochs, [h[f"val_{monitor}"] for h in hist], color=colour, label=f"run {run}")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss (solid: train, dashed: validation)")
    ax_metric.set(xlabel="epoch", ylabel=monitor, title=f"validation {monitor}")
    if len(histories) <= 5:
        ax_loss.legend(fontsize=7)
        ax_metric.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def plot_series(series: Dict[str, Tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
                path: str | Path, title: str = "", marks: Dict[str, float] | None = None) -> Path:
    """One line per ``label -> (xs, ys)``; ``marks`` puts a dot on a line at that x (a selected step)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, (label, (xs, ys)) in enumerate(series.items()):
        ax.plot(list(xs), list(ys), color=f"C{i % 10}", label=label)
        if marks and label in marks:
            at = list(xs).index(marks[label])
            ax.plot([marks[label]], [list(ys)[at]], "o", color=f"C{i % 10}")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
