"""Giving freed heap memory back to the system, once a minute (issue 18, docs/performance.md "Memory").

A security server frees most of what an exchange allocates at once, but glibc's allocator keeps freed chunks in
its arenas for reuse and returns memory to the system only from the top of a heap. Between long-lived allocations
(replay-guard entries, cached verdicts, pooled connections) the freed pages stay resident, so the resident set
creeps up by a megabyte or two a minute under steady load although the live heap does not grow: in a soak at c=50
the consumer's server rose 117 -> 144 MiB in 20 minutes while the allocator's in-use bytes stayed flat and its
free bytes grew (``bench/run.py --census-every``). ``malloc_trim(0)`` gives every whole free page inside the
arenas back (``madvise``); it takes about 1 ms. :class:`HeapTrimmer` calls it every ``[server] heap-trim-seconds``
(default 60; 0: never) in the reactor's thread pool, so the reactor never waits for it (the call holds no GIL).
Where the C library has no ``malloc_trim`` (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any, Callable, TypeVar

import structlog
from twisted.application import service
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall

DEFAULT_TRIM_SECONDS = 60
"""How often freed heap memory is given back (``[server] heap-trim-seconds``)."""

log = structlog.get_logger("fedbus.heap")

Trim = Callable[[], bool]
"""Gives free heap memory back; True when some was."""

T = TypeVar("T")
RunInThread = Callable[[Callable[[], T]], "Deferred[T]"]
"""Runs a function in a thread and fires with its result (the server passes the reactor's thread pool)."""


def libc_malloc_trim() -> Trim | None:
    """glibc's ``malloc_trim(0)`` as a function, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int

    def trim() -> bool:
        return bool(function(0))

    return trim


class HeapTrimmer(service.Service):
    """Calls ``trim`` every ``interval`` seconds through ``run_in_thread``; a call still running when the next is due
    is not doubled, and a failing call is logged and the next one still runs."""

    def __init__(self, clock: Any, interval: float, trim: Trim | None, run_in_thread: RunInThread[bool]) -> None:
        if interval <= 0:
            raise ValueError("the trim interval must be positive")
        self._run_in_thread = run_in_thread
        self.interval = interval
        self._trim = trim
        self._loop = LoopingCall(self.run_once)
        self._loop.clock = clock
        self._running = False
        self.trims = 0
        """Calls made since start."""
        self.released = 0
        """Calls that gave memory back."""

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        if self._trim is None:
            log.info("heap_trim_unavailable", reason="the C library has no malloc_trim")
            return
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._loop.running:
            self._loop.stop()

    def run_once(self) -> Deferred[None] | None:
        """One trim in the thread pool (None when the previous one is still running or there is no trim)."""
        if self._running or self._trim is None:
            return None
        self._running = True
        trim = self._trim

        def done(released: bool) -> None:
            self.trims += 1
            self.released += bool(released)

        def failed(failure: Any) -> None:
            log.error("heap_trim_failed", error=failure.getErrorMessage())

        def finished(_: object) -> None:
            self._running = False

        running: Deferred[Any] = self._run_in_thread(trim)
        return running.addCallbacks(done, failed).addBoth(finished)
