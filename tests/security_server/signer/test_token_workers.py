"""Token worker threads: calls run off the test thread, one token's calls in order, and a bounded wait that a fake
clock drives."""

from __future__ import annotations

import functools
import threading

import pytest
from twisted.python.failure import Failure

from security_server.signer.token import TokenTimedOut
from security_server.signer.token_workers import TokenWorkers
from tests.security_server.signer.threaded_clock import SAFETY_SECONDS, ThreadedClock


def _outcome(deferred: object) -> list[object]:
    got: list[object] = []
    deferred.addBoth(got.append)  # type: ignore[attr-defined]
    return got


def test_a_call_runs_on_the_tokens_thread_and_answers_on_the_reactor() -> None:
    """The function runs on a thread named after the token; the Deferred fires only when the answer is delivered."""
    clock = ThreadedClock()
    workers = TokenWorkers(clock, timeout_seconds=5)
    got = _outcome(workers.run("hsm1", lambda: threading.current_thread().name))
    assert got == []
    clock.deliver()
    assert got == ["fedbus-token-hsm1"]
    assert not clock.getDelayedCalls()  # the bounded wait was cancelled
    workers.stop()


def test_one_tokens_calls_run_in_order_on_one_thread() -> None:
    """Calls on one token run one after the other, in the order asked, on the same thread."""
    clock = ThreadedClock()
    workers = TokenWorkers(clock)
    seen: list[tuple[int, str]] = []

    def record(index: int) -> None:
        seen.append((index, threading.current_thread().name))

    outcomes = [_outcome(workers.run("t", functools.partial(record, i))) for i in range(5)]
    clock.deliver(5)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {"fedbus-token-t"}
    assert all(outcome == [None] for outcome in outcomes)
    workers.stop()


def test_an_error_in_the_call_reaches_the_caller() -> None:
    """The function's own exception fails the Deferred as it is."""
    clock = ThreadedClock()
    workers = TokenWorkers(clock)

    def broken() -> None:
        raise ValueError("module error")

    got = _outcome(workers.run("t", broken))
    clock.deliver()
    assert isinstance(got[0], Failure) and isinstance(got[0].value, ValueError)
    workers.stop()


def test_a_token_that_does_not_answer_times_out_with_the_signer_fault_code() -> None:
    """A call still running after the bounded wait fails with signer.cannot_sign; while it hangs, further calls
    fail at once; its late answer is dropped, and the token is used again once it answered."""
    clock = ThreadedClock()
    workers = TokenWorkers(clock, timeout_seconds=10)
    release = threading.Event()
    hung = _outcome(workers.run("hsm1", lambda: release.wait(SAFETY_SECONDS)))
    clock.advance(9.9)
    assert hung == []
    clock.advance(0.1)
    assert isinstance(hung[0], Failure) and isinstance(hung[0].value, TokenTimedOut)
    error = hung[0].value
    assert error.fault_code == "signer.cannot_sign" and "hsm1" in error.message and "10 s" in error.message
    assert workers.hung("hsm1")
    at_once = _outcome(workers.run("hsm1", lambda: "never runs"))
    assert isinstance(at_once[0], Failure) and isinstance(at_once[0].value, TokenTimedOut)
    other = _outcome(workers.run("hsm2", lambda: "fine"))  # another token is not held up
    release.set()
    clock.deliver(2)
    assert other == ["fine"]
    assert len(hung) == 1  # the late answer did not fire the Deferred twice
    assert not workers.hung("hsm1")
    again = _outcome(workers.run("hsm1", lambda: "back"))
    clock.deliver()
    assert again == ["back"]
    workers.stop()


def test_timeout_must_be_positive() -> None:
    """A bounded wait of zero or less is refused."""
    with pytest.raises(ValueError):
        TokenWorkers(ThreadedClock(), timeout_seconds=0)
