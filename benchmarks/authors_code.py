"""Runs of a paper's own released code on this machine, kept beside our rows.

A results file (``benchmarks/results/<family>/authors_code.json``) holds what was run (``what``: the
repository, files and commits; ``environment``: what had to be supplied around it), the date, and per
(model, dataset) row the exact command and the per-run test accuracies that code printed. The
reproduction scripts render it as one line naming every command and a cell per row.
"""
from __future__ import annotations

import json
from pathlib import Path


def _rows(path: Path) -> list:
    """The file's per-row entries; none when nothing was run."""
    return json.loads(path.read_text())["rows"] if path.is_file() else []


def authors_code_line(path: Path, how_read: str) -> str:
    """The table's bullet naming what ran and how, or that nothing did."""
    if not path.is_file():
        return "- authors' code: not run here"
    info = json.loads(path.read_text())
    return (f"- authors' code: {info['what']}, on this machine ({info['date']}); per row: "
            + "; ".join(f"{r['model']} on {r['dataset']}: `{r['command']}`" for r in info["rows"])
            + f". {info['environment']} {how_read}")


def authors_code_notes(path: Path) -> dict:
    """(model, dataset) -> what a row's ``note`` says about how its number was picked, if anything."""
    return {(r["model"], r["dataset"]): r["note"] for r in _rows(path) if r.get("note")}


def authors_code_cells(path: Path) -> dict:
    """(model, dataset) -> "mean ± std (k runs)" of the authors' code's runs (population std, as our
    rows are summarised), or "value (1 run)"."""
    out = {}
    for row in _rows(path):
        runs = row["test_accuracy_per_run"]
        mean = sum(runs) / len(runs)
        std = (sum((r - mean) ** 2 for r in runs) / len(runs)) ** 0.5
        out[(row["model"], row["dataset"])] = (f"{mean:.1f} ± {std:.1f} ({len(runs)} runs)" if len(runs) > 1
                                               else f"{mean:.1f} (1 run)")
    return out
