"""The one progress helper: a live bar on a terminal, plain lines everywhere else.

Written to a log (nohup, CI, a pipe) a live bar prints nothing useful until it ends, so without
a terminal every task prints a line when it starts, about every tenth of the way, and when it
ends. Progress goes to standard error; standard output stays for results (CSV, tables).

    with Progress(enabled=True) as progress:
        task = progress.add("gps on MUTAG fold 1/10", total=100)
        for epoch in ...:
            task.advance(status="loss 0.41  val accuracy 0.850")
        task.done()

``iterate(items, "LapPE", total)`` wraps a plain loop the same way.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")

#: Plain-line mode prints about this many progress lines per task (plus start and end).
LINES_PER_TASK = 10


def is_terminal(stream: IO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Task:
    """One unit of tracked work (a run, a fold, a loop); ``advance`` after each step."""

    def __init__(self, owner: "Progress", description: str, total: Optional[int]) -> None:
        self.owner, self.description, self.total = owner, description, total
        self.completed, self.status = 0, ""
        self._rich_id = None
        self._started = time.monotonic()
        self._every = max(1, (total or 0) // LINES_PER_TASK) if total else 0
        self._finished = False

    def advance(self, n: int = 1, status: str = "") -> None:
        self.completed += n
        self.status = status or self.status
        self.owner._update(self)

    def done(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self.total is not None:
            self.completed = max(self.completed, 0)
        self.owner._finish(self)


class Progress:
    """A live bar (``rich``) on a terminal, one plain line per start, tenth and end otherwise;
    nothing at all when ``enabled`` is false. Use as a context manager."""

    def __init__(self, enabled: bool = True, stream: Optional[IO] = None, live: Optional[bool] = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.live = is_terminal(self.stream) if live is None else live
        self._bar = None

    def __enter__(self) -> "Progress":
        if self.enabled and self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
            self._bar = RichProgress(*columns, console=Console(file=self.stream), transient=False)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def add(self, description: str, total: Optional[int] = None) -> Task:
        task = Task(self, description, total)
        if not self.enabled:
            return task
        if self._bar is not None:
            task._rich_id = self._bar.add_task(description, total=total, status="")
        else:
            self._line(task, "started")
        return task

    # -- called by Task -------------------------------------------------------------------------
    def _update(self, task: Task) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(task._rich_id, completed=task.completed, status=task.status)
        elif task._every and task.completed % task._every == 0 and task.completed != task.total:
            self._line(task)

    def _finish(self, task: Task) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(task._rich_id, completed=task.total or task.completed, status=task.status)
        else:
            self._line(task, "done")

    def _line(self, task: Task, event: str = "") -> None:
        count = f"{task.completed}/{task.total}" if task.total else str(task.completed)
        parts = [task.description, event or count]
        if event == "done":
            parts.append(f"{count} in {time.monotonic() - task._started:.1f} s")
        if task.status and event != "started":
            parts.append(task.status)
        print("  ".join(parts), file=self.stream, flush=True)


def iterate(items: Iterable[T], description: str, total: Optional[int] = None, enabled: bool = True,
            stream: Optional[IO] = None) -> Iterator[T]:
    """``items``, one at a time, with progress shown as :class:`Progress` shows it."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(enabled=enabled, stream=stream) as progress:
        task = progress.add(description, total)
        for item in items:
            yield item
            task.advance()
        task.done()
