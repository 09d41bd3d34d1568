"""A ``task.Clock`` that also takes ``callFromThread``: the answers of worker threads wait in a queue until the test
delivers them on its own thread, so timeouts are driven by ``advance()`` and never by real time."""

from __future__ import annotations

import queue
from typing import Any, Callable

from twisted.internet.task import Clock

SAFETY_SECONDS = 60.0
"""How long :meth:`ThreadedClock.deliver` waits for a worker's answer before failing the test (a guard against a
hang, never a measurement)."""


class ThreadedClock(Clock):
    """``callLater`` on a fake clock; ``callFromThread`` calls queued for :meth:`deliver`."""

    def __init__(self) -> None:
        super().__init__()
        self._from_threads: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = (
            queue.SimpleQueue()
        )

    def callFromThread(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue ``function`` for the test thread (IReactorFromThreads)."""
        self._from_threads.put((function, args, kwargs))

    def deliver(self, count: int = 1) -> None:
        """Wait for ``count`` answers of worker threads and run them here, in order."""
        for _ in range(count):
            function, args, kwargs = self._from_threads.get(timeout=SAFETY_SECONDS)
            function(*args, **kwargs)

    def pending(self) -> bool:
        """Whether an answer is waiting to be delivered."""
        return not self._from_threads.empty()
