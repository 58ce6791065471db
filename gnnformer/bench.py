"""The speed and memory suite behind ``gnnformer bench`` and ``make bench``: one list of pieces.

Each piece is a script under ``benchmarks/`` of a source checkout. The full run rewrites its
table in BENCHMARKS.md (machine, date, command, and the ratios against PyG's or plain PyTorch's
peers measured in the same run); ``--quick`` runs the same scripts at smoke size and writes
nothing, as a check before a commit. The scripts are not part of an installed wheel, so the suite
needs the checkout.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from .errors import ConfigError, DataError

#: The checkout's benchmarks folder (absent in an installed wheel).
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@dataclass(frozen=True)
class Piece:
    name: str
    script: str
    what: str
    full: Tuple[str, ...] = ()
    quick: Tuple[str, ...] = ()
    needs_data: bool = False  # reads a benchmark dataset from the data root

    def command(self, quick: bool, data_root: Optional[str]) -> List[str]:
        args = [sys.executable, str(BENCHMARKS / self.script), *(self.quick if quick else self.full)]
        # The scripts run in the checkout, so a relative data root is resolved from here first.
        return args + (["--data-root", str(Path(data_root).resolve())] if self.needs_data and data_root else [])


SUITE = (
    Piece("layers", "bench_layers.py", "one layer forward/backward against PyG's conv layers",
          quick=("--repeats", "2", "--graphs", "16", "--no-write")),
    Piece("graph-epoch", "bench_graph_epoch.py", "NCI1 training epoch, gradformer/gps against PyG's GPS",
          quick=("--epochs", "1", "--rounds", "1", "--spd-repeats", "1", "--models", "gradformer,pyg_gps", "--threads", "1",
                 "--no-write"), needs_data=True),
    Piece("difformer-scaling", "bench_difformer_scaling.py", "DIFFormer-s time and memory against N, beside PyG's SGFormer",
          quick=("--quick",)),
    Piece("difformer-ablation", "bench_difformer_ablation.py", "DIFFormer-s fast paths against the plain PyTorch path",
          quick=("--quick",)),
    Piece("explainers", "bench_explainers.py", "PGM-Explainer against PyG's explainers",
          quick=("--nodes", "2", "--datasets", "tree-cycles", "--epochs", "200", "--no-write")),
    Piece("distributed", "bench_distributed.py", "epoch time with one and two processes under torchrun",
          quick=("--cases", "NCI1, gps", "--epochs", "1", "--no-write"), needs_data=True),
)


def select(only: Sequence[str]) -> List[Piece]:
    """The pieces named in ``only`` (all when empty), in suite order; an unknown name is refused."""
    names = [p.name for p in SUITE]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ConfigError(f"unknown benchmark piece(s) {', '.join(unknown)}; the pieces are {', '.join(names)}.")
    return [p for p in SUITE if not only or p.name in only]


def check_available(pieces: Sequence[Piece], data_root: Optional[str]) -> None:
    """Refuse before anything runs: a missing checkout or a piece needing data without a data root."""
    missing = [p.script for p in pieces if not (BENCHMARKS / p.script).is_file()]
    if missing:
        raise DataError(f"gnnformer bench runs the scripts under benchmarks/ of a source checkout, and "
                        f"{BENCHMARKS} lacks {', '.join(missing)}; clone the repository and run it there.")
    needing = [p.name for p in pieces if p.needs_data]
    need = f"{' and '.join(needing)} need{'s' if len(needing) == 1 else ''} NCI1 from a data root"
    if needing and not data_root:
        raise DataError(f"{need}: pass --data-root DIR (or set GNNFORMER_DATA), or leave them out with --only.")
    if needing and not Path(data_root).is_dir():
        raise DataError(f"{need}, and {data_root} is not a folder.")


def run_suite(pieces: Sequence[Piece], quick: bool, data_root: Optional[str],
              echo: Callable[[str], None] = print) -> List[Tuple[str, float, int]]:
    """Run ``pieces`` one after another (each prints its own progress); returns (name, seconds,
    exit status) per piece. A failing piece does not stop the others."""
    done = []
    for i, piece in enumerate(pieces, 1):
        command = piece.command(quick, data_root)
        echo(f"[{i}/{len(pieces)}] {piece.name}: {piece.what}\n  $ {shlex.join(command)}")
        start = time.perf_counter()
        status = subprocess.run(command, cwd=BENCHMARKS.parent).returncode
        done.append((piece.name, time.perf_counter() - start, status))
    return done
