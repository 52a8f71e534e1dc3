"""Progress of the CLI's long work (verify, bench, the bundle's image builds): a rich bar on a terminal, lines
everywhere.

The work reports through two callbacks: ``log(line)``, what a person reads afterwards (a terminal, a log file,
CI output), and ``step(what, done, total)`` as it goes (``done`` of ``total`` units finished, ``what`` the one
running or just finished). On a terminal the lines scroll above one live bar that ``step`` moves; elsewhere
there is no bar and the lines are the record (verify's lines carry their own ``k/n``).
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class Steps:
    """``with Steps(console, "verify") as s: work(log=s.log, step=s.step)``."""

    def __init__(self, console: Console, title: str):
        self.console, self.title = console, title
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> Steps:
        if self.console.is_terminal:
            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=None)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def log(self, line: str) -> None:
        """One line of the record (printed as given: a ``[...]`` in it is text, not markup)."""
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def step(self, what: str, done: int, total: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=f"{self.title}: {what}", completed=done, total=total)
