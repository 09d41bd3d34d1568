"""Giving freed memory back to the system, once a minute (issue 18, docs/performance.md "Memory").

Two things kept a busy security server's resident set creeping up by a megabyte or two a minute although its live
data did not grow (a soak at c=50: the consumer's server 117 -> 144 MiB in 20 minutes; ``bench/run.py
--census-every`` shows where memory is):

* **Cyclic garbage holding native memory.** A connection that ends mid-request (a client gone, a pooled peer link
  aborted) leaves Twisted's connector, factory and protocol in reference cycles, with OpenSSL's buffers and the
  request's bytes behind them. Only a full collection frees them, and with the collector tuned for throughput
  (``gc_tuning``: start-up objects frozen, the youngest generation every 20,000 net allocations) the youngest
  generation ran about every 90 s under load and a full collection would have come about every 100 of those.
  :class:`HeapTrimmer` runs one every interval on the reactor thread (finalisers must run there); the start-up
  objects are frozen, so it walks only what was made since.
* **Freed chunks kept by glibc.** The allocator returns memory to the system only from the top of a heap; between
  long-lived allocations freed pages stay resident. ``malloc_trim(0)`` gives every whole free page inside the
  arenas back (``madvise``), in about 1 ms; it runs in the reactor's thread pool (it holds no GIL). Where the C
  library has no ``malloc_trim`` (musl, macOS) only the collection runs.

``[server] heap-trim-seconds`` sets the interval (default 60; 0: never).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
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
    """Every ``interval`` seconds: ``collect`` (a full collection) here, then ``trim`` through ``run_in_thread``.
    The next interval starts when the trim has finished (LoopingCall waits for its Deferred), so trims never
    overlap; a failing one is logged and the next still runs."""

    def __init__(
        self,
        clock: Any,
        interval: float,
        trim: Trim | None,
        run_in_thread: RunInThread[bool],
        collect: Callable[[], int] = gc.collect,
    ) -> None:
        if interval <= 0:
            raise ValueError("the trim interval must be positive")
        self._run_in_thread = run_in_thread
        self._collect = collect
        self.interval = interval
        self._trim = trim
        self._loop = LoopingCall(self.run_once)
        self._loop.clock = clock
        self.collections = 0
        """Full collections made since start."""
        self.last_collection_ms = 0.0
        """How long the last full collection held the reactor thread."""
        self.trims = 0
        """Trims made since start."""
        self.released = 0
        """Calls that gave memory back."""

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        if self._trim is None:
            log.info("heap_trim_unavailable", reason="the C library has no malloc_trim; collecting only")
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._loop.running:
            self._loop.stop()

    def run_once(self) -> Deferred[None] | None:
        """A full collection, then one trim in the thread pool (None when there is no trim)."""
        started = time.perf_counter()
        found = self._collect()
        self.collections += 1
        self.last_collection_ms = round((time.perf_counter() - started) * 1000, 2)
        log.debug("heap_collected", unreachable=found, ms=self.last_collection_ms)
        trim = self._trim
        if trim is None:
            return None

        def done(released: bool) -> None:
            self.trims += 1
            self.released += bool(released)

        def failed(failure: Any) -> None:  # logged, not raised: a failure would stop the LoopingCall
            log.error("heap_trim_failed", error=failure.getErrorMessage())

        running: Deferred[Any] = self._run_in_thread(trim)
        return running.addCallbacks(done, failed)
