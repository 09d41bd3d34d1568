"""Giving freed heap memory back once a minute (security_server/heap_trim.py)."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable

import pytest
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from bench.measure import rss_kib
from security_server.heap_trim import HeapTrimmer, libc_malloc_trim


class _Trims:
    """A trim that counts its calls and answers what it is told."""

    def __init__(self, answer: bool = True, fails: bool = False) -> None:
        self.calls = 0
        self.answer = answer
        self.fails = fails

    def __call__(self) -> bool:
        self.calls += 1
        if self.fails:
            raise OSError("trim failed")
        return self.answer


def _at_once(function: Callable[[], bool]) -> Deferred[bool]:
    return defer.maybeDeferred(function)


class _Collections:
    """A full collection that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return 0


def test_collects_and_trims_every_interval_and_counts_what_gave_memory_back() -> None:
    """A full collection then a trim each interval (not at start-up); the trims that released memory are counted."""
    clock, trims, collections = Clock(), _Trims(), _Collections()
    trimmer = HeapTrimmer(clock, 60, trims, _at_once, collections)
    trimmer.startService()
    clock.advance(59)
    assert trims.calls == collections.calls == 0  # not at start-up: the first is one interval after
    clock.advance(1)
    assert (collections.calls, trims.calls, trimmer.trims, trimmer.released) == (1, 1, 1, 1)
    trims.answer = False
    clock.advance(60)
    assert (trims.calls, trimmer.trims, trimmer.released) == (2, 2, 1)
    trimmer.stopService()
    clock.advance(600)
    assert trims.calls == 2


def test_a_trim_still_running_is_not_doubled() -> None:
    """A slow trim (a huge heap) is not started again while it runs: the next interval starts when it ends."""
    clock, trims = Clock(), _Trims()
    pending: list[Deferred[bool]] = []

    def held(function: Callable[[], bool]) -> Deferred[bool]:
        function()
        waiting: Deferred[bool] = Deferred()
        pending.append(waiting)
        return waiting

    collections = _Collections()
    trimmer = HeapTrimmer(clock, 60, trims, held, collections)
    trimmer.startService()
    clock.advance(60)
    clock.advance(60)
    clock.advance(60)
    assert trims.calls == collections.calls == 1 and len(pending) == 1
    pending[0].callback(True)
    assert trimmer.trims == 1
    clock.advance(60)
    assert trims.calls == collections.calls == 2


def test_a_failing_trim_is_logged_and_the_next_still_runs() -> None:
    """A trim that raises is logged; the next interval still collects and trims."""
    clock, trims = Clock(), _Trims(fails=True)
    trimmer = HeapTrimmer(clock, 30, trims, _at_once, _Collections())
    trimmer.startService()
    clock.advance(30)
    clock.advance(30)
    assert trims.calls == 2 and trimmer.trims == 0


def test_without_malloc_trim_only_the_collection_runs() -> None:
    """Where the C library has no malloc_trim (musl, macOS) the cyclic garbage is still collected each interval."""
    clock, collections = Clock(), _Collections()
    trimmer = HeapTrimmer(clock, 60, None, _at_once, collections)
    trimmer.startService()
    clock.advance(60)
    clock.advance(60)
    assert collections.calls == 2 and trimmer.trims == 0
    trimmer.stopService()
    assert clock.getDelayedCalls() == []


def test_the_collection_frees_cyclic_garbage_that_holds_memory() -> None:
    """With the real gc.collect: a reference cycle holding a large buffer is gone after one interval."""
    clock = Clock()

    class Holder:
        def __init__(self) -> None:
            self.me = self
            self.buffer = bytearray(1 << 20)

    gone = weakref.ref(Holder())
    assert gone() is not None  # held by its own cycle only
    trimmer = HeapTrimmer(clock, 60, None, _at_once)
    trimmer.startService()
    clock.advance(60)
    assert gone() is None
    trimmer.stopService()


@pytest.mark.parametrize("interval", [0, -1])
def test_an_interval_must_be_positive(interval: float) -> None:
    """0 means no trimmer at all (the service does not make one); a trimmer with no interval is a bug."""
    with pytest.raises(ValueError, match="positive"):
        HeapTrimmer(Clock(), interval, _Trims(), _at_once)


def test_glibcs_malloc_trim_gives_freed_pages_inside_the_heap_back() -> None:
    """This machine's C library is glibc: after most of 100,000 heap blocks are freed, with every 50th kept (so the
    heap cannot shrink from its top), the resident set stays up until the trim gives the free pages back."""
    trim = libc_malloc_trim()
    assert trim is not None
    blocks = [b"x" * 1000 + index.to_bytes(4, "big") for index in range(100_000)]  # ~100 MB from malloc's heap
    kept = blocks[::50]
    del blocks
    before = rss_kib(os.getpid())
    assert trim() is True
    after = rss_kib(os.getpid())
    assert before - after > 40 * 1024, (before, after)
    assert len(kept) == 2_000
