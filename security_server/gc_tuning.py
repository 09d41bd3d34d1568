"""The garbage collector's settings for a long-running server process (issue 18, docs/performance.md).

CPython's cyclic collector runs its youngest generation every 700 net allocations and, every so often, a full
collection that walks every tracked object. A security server allocates thousands of short-lived objects per
exchange (parsed messages, Deferreds, value objects) and keeps tens of thousands of long-lived ones (modules, the
global configuration, the trust caches), so with the defaults the collector runs several times an exchange and
its full collections walk start-up objects that never become garbage. Once the server is serving,
:func:`tune_collector` moves everything alive at start-up into the permanent generation (``gc.freeze``: never
walked again) and raises the youngest generation's threshold. Reference counting still frees almost everything at
once; only cyclic garbage waits longer. Full collections would then come hours apart (the youngest generation runs
about every 90 s under load, a full collection every 100 of those), so the heap upkeep (``heap_trim.py``,
``[server] heap-trim-seconds``) runs one every minute.
"""

from __future__ import annotations

import gc

import structlog

YOUNGEST_THRESHOLD = 20_000
"""Net allocations between collections of the youngest generation (CPython's default: 700)."""

log = structlog.get_logger("fedbus.gc")


def tune_collector() -> None:
    """Freeze what start-up made and collect the youngest generation every :data:`YOUNGEST_THRESHOLD` allocations.

    Call it once the service has started (its caches, configuration and listeners made). The older generations
    keep CPython's thresholds."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_THRESHOLD, middle, oldest)
    log.info("gc_tuned", frozen_objects=gc.get_freeze_count(), youngest_threshold=YOUNGEST_THRESHOLD)
