"""Progress of the demo: one line per step with its outcome and timing, a spinner while it waits.

On a terminal the step line ends in a spinner and the seconds elapsed while the step waits for something
(redrawn by the wait loop itself, no thread); elsewhere (CI, a pipe) each line is written once. Details a step
reports (answers, identifiers, where files are) are printed indented under its line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

_SPINNER = "|/-\\"
_WIDTH = 62


class StepFailed(Exception):
    """A step did not do what it should; ``details`` are extra lines for the report."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class PortTaken(StepFailed):
    """A port the demo needs is used by another program (taken after the demo checked it at start)."""

    def __init__(self, taken: list[tuple[str, int]], details: list[str] | None = None) -> None:
        named = ", ".join(f"127.0.0.1:{port} ({what})" for what, port in taken)
        super().__init__(f"port in use by another program: {named}", details)
        self.taken = taken


class StepSkipped(Exception):
    """A step whose feature this build does not have yet."""


@dataclass
class Progress:
    """Writes the step lines to ``out``."""

    out: TextIO
    total: int
    tty: bool = False
    clock: Callable[[], float] = time.monotonic
    _index: int = 0
    _title: str = ""
    _started: float = 0.0
    _details: list[str] = field(default_factory=list)
    _last_tick: float = 0.0
    _turn: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {"ok": 0, "skipped": 0, "failed": 0})

    def line(self, text: str = "") -> None:
        """Write a whole line (outside steps)."""
        self.out.write(text + "\n")
        self.out.flush()

    def _head(self) -> str:
        head = f"[{self._index:>2}/{self.total}] {self._title} "
        return head + "." * max(3, _WIDTH - len(head))

    def begin(self, index: int, title: str) -> None:
        """Start step ``index``."""
        self._index, self._title = index, title
        self._started = self.clock()
        self._details = []
        self.out.write(self._head())
        self.out.flush()

    def tick(self) -> None:
        """Called by wait loops: on a terminal, turn the spinner and show the seconds waited so far."""
        if not self.tty:
            return
        now = self.clock()
        if now - self._last_tick < 0.1:
            return
        self._last_tick = now
        self._turn += 1
        self.out.write(f"\r{self._head()} {_SPINNER[self._turn % len(_SPINNER)]} {now - self._started:5.1f}s")
        self.out.flush()

    def note(self, text: str) -> None:
        """A detail line to print under the step."""
        self._details.append(text)

    def end(self, outcome: str, extra: list[str] | None = None) -> float:
        """Finish the step with ``ok``, ``skipped`` or ``FAILED``; returns its duration."""
        elapsed = self.clock() - self._started
        if self.tty:
            self.out.write(f"\r{self._head()}")
        self.out.write(f" {outcome:<7} {elapsed:5.1f}s" + (" " * 8 if self.tty else "") + "\n")
        for detail in [*self._details, *(extra or [])]:
            self.out.write(f"        {detail}\n")
        self.out.flush()
        key = {"ok": "ok", "skipped": "skipped"}.get(outcome, "failed")
        self.outcomes[key] += 1
        return elapsed
