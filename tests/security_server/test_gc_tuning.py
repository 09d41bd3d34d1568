"""The collector's settings once a server is serving (security_server/gc_tuning.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from security_server.gc_tuning import YOUNGEST_THRESHOLD, tune_collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """Put the test process's collector back as it was."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
def test_start_up_objects_are_frozen_and_the_youngest_threshold_raised() -> None:
    """After tuning, what was alive is in the permanent generation and the older generations keep their settings."""
    before = gc.get_threshold()
    kept = [object() for _ in range(10)]
    tune_collector()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (YOUNGEST_THRESHOLD, before[1], before[2])


@pytest.mark.usefixtures("collector_restored")
def test_cyclic_garbage_made_after_tuning_is_still_collected() -> None:
    """Raising the threshold delays the youngest collection; it does not stop cycles from being freed."""
    tune_collector()

    class Node:
        partner: object = None

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    gone = weakref.ref(first)
    del first, second
    assert gone() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert gone() is None
