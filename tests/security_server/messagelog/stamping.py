"""Timestamp a message log's waiting records in one batch, without a TSA on the network (for archive and export tests)."""

from __future__ import annotations

from pathlib import Path

from security_server.core.logchain import LogEntry
from security_server.messagelog.store import MessageLogStore, TimestampAssignment
from tests.federation.evidence import stamp_batch


def stamp_all(store: MessageLogStore) -> int:
    """Timestamp every waiting record in one batch, as the timestamper would (token from the TSA, no network)."""
    waiting = [record_id for record_id, _ in store.untimestamped(10_000)]
    records = [store.get(record_id) for record_id in waiting]
    stamped = stamp_batch([record for record in records if record is not None])
    if not stamped:
        return 0
    stored = stamped[0][1].timestamp
    store.add_timestamp(
        stored.token,
        stored.hash_chain_result,
        [TimestampAssignment(record.id, stamp.hash_chain) for record, stamp in stamped],
        time=stored.time,
    )
    return len(stamped)


def write_log(path: Path, entries: list[LogEntry]) -> Path:
    """A log at ``path`` holding ``entries``, all timestamped in one batch."""
    with MessageLogStore(path) as store:
        store.append_entries(entries)
        stamp_all(store)
    return path
