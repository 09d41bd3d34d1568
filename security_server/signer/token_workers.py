"""One worker thread per token, so that a slow or hung HSM never blocks the reactor (issue 20).

A PKCS#11 call blocks for as long as the token takes: microseconds for SoftHSM2, milliseconds for a network HSM,
forever for one whose link hangs. :class:`TokenWorkers` runs such calls off the reactor thread, on a thread of the
token's own, one call at a time (PKCS#11 sessions are not thread-safe, and pkcs11_token.py orders the calls of a
module with a lock anyway, so a second thread per token would only wait). Each call is a bounded wait: when the
token has not answered within ``timeout_seconds`` (measured on the reactor's clock), the caller gets
:class:`~security_server.signer.token.TokenTimedOut` (``signer.cannot_sign``) and the late answer, if it ever comes,
is logged and dropped. While a call that timed out has not returned, the token is taken as hung: further calls fail
at once with the same error instead of queueing behind it, and the token is used again as soon as it answers.

Threads are daemons, started on a token's first call: a thread stuck inside a module cannot hold up the process's
exit, and a server whose keys are all soft starts none.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

import structlog
from twisted.internet.defer import Deferred, fail

from security_server.signer.token import TokenTimedOut

_log = structlog.get_logger("fedbus.signer.workers")
T = TypeVar("T")

DEFAULT_TOKEN_TIMEOUT_SECONDS = 10.0
"""How long a token call may take before the caller is answered with ``signer.cannot_sign`` (a network HSM signs
in milliseconds; ten seconds means it is not answering)."""


@dataclass(slots=True, eq=False)
class _Call(Generic[T]):
    deferred: Deferred[T]
    timer: Any = None
    answered: bool = False
    overdue: bool = False


@dataclass(slots=True, eq=False)
class _Worker:
    name: str
    jobs: queue.SimpleQueue[Callable[[], None] | None] = field(default_factory=queue.SimpleQueue)
    overdue: int = 0
    """Calls that timed out and have not returned yet: while above zero, the token is hung."""
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name=f"fedbus-token-{self.name}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job()


class TokenWorkers:
    """A worker thread per token name; :meth:`run` calls a function there and waits a bounded time for it."""

    def __init__(self, reactor: Any, *, timeout_seconds: float = DEFAULT_TOKEN_TIMEOUT_SECONDS) -> None:
        """``reactor`` provides ``callLater`` (the bounded wait) and ``callFromThread`` (the answer)."""
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._reactor = reactor
        self.timeout_seconds = timeout_seconds
        self._workers: dict[str, _Worker] = {}

    def hung(self, name: str) -> bool:
        """Whether a call on token ``name`` timed out and has not returned yet."""
        worker = self._workers.get(name)
        return worker is not None and worker.overdue > 0

    def run(self, name: str, function: Callable[[], T]) -> Deferred[T]:
        """Call ``function()`` on token ``name``'s thread; fires on the reactor thread with its result or its
        error, or fails with :class:`TokenTimedOut` after ``timeout_seconds`` (at once while the token is hung)."""
        worker = self._workers.get(name)
        if worker is None:
            worker = self._workers[name] = _Worker(name)
            worker.start()
        if worker.overdue:
            return fail(TokenTimedOut(
                f"token {name} is not answering: an earlier call has not returned after {self.timeout_seconds:g} s"
            ))
        call: _Call[T] = _Call(Deferred())

        def job() -> None:
            try:
                result = function()
            except BaseException as err:  # delivered to the caller, whatever it is
                self._reactor.callFromThread(self._answer, worker, call, False, err)
                return
            self._reactor.callFromThread(self._answer, worker, call, True, result)

        call.timer = self._reactor.callLater(self.timeout_seconds, self._expire, worker, call)
        worker.jobs.put(job)
        return call.deferred

    def _expire(self, worker: _Worker, call: _Call[Any]) -> None:
        if call.answered:
            return
        call.answered = call.overdue = True
        worker.overdue += 1
        _log.warning("token_timed_out", token=worker.name, timeout_seconds=self.timeout_seconds)
        call.deferred.errback(TokenTimedOut(f"token {worker.name} did not answer within {self.timeout_seconds:g} s"))

    def _answer(self, worker: _Worker, call: _Call[Any], ok: bool, value: Any) -> None:
        if call.overdue:
            worker.overdue -= 1
            _log.info("token_answered_late", token=worker.name, ok=ok)
            return
        if call.timer is not None and call.timer.active():
            call.timer.cancel()
        call.answered = True
        if ok:
            call.deferred.callback(value)
        else:
            call.deferred.errback(value)

    def stop(self) -> None:
        """Let every idle worker thread end (one stuck in a module stays, as a daemon, until the process ends)."""
        for worker in self._workers.values():
            worker.jobs.put(None)
        self._workers = {}
