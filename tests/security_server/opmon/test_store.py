"""The opmon SQLite store: batches, time-range and client queries with the record limit, retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from security_server.core.errors import DatabaseError
from security_server.core.identifiers import ClientId
from security_server.core.opmon.query import (
    OperationalDataRequest,
    OpmonSettings,
    RecordQuery,
    answer_records,
    plan_query,
    service_health,
)
from security_server.core.opmon.record import OperationalRecord
from security_server.opmon.store import SCHEMA, OpmonStore
from security_server.store.errors import SchemaTooNew
from tests.security_server.core.opmon.opmon_fixture import (
    CONSUMER,
    MONITORING,
    OTHER,
    OWNER,
    PROVIDER,
    SERVICE,
    T0,
    faulted_soap,
    rest_call,
    succeeded_soap,
    with_attachments,
)

NOW = 2_000_000_000


def plan(requester: ClientId = OWNER, provider: ClientId | None = None, limit: int = 10000) -> RecordQuery:
    return plan_query(
        OperationalDataRequest(0, NOW, provider),
        requester=requester,
        owner=OWNER,
        monitoring_client=MONITORING,
        now_seconds=NOW,
        settings=OpmonSettings(max_records_in_payload=limit),
    )


@pytest.fixture
def store(tmp_path: Path) -> OpmonStore:
    store = OpmonStore(tmp_path / "opmon.db")
    store.store([succeeded_soap(), faulted_soap(), with_attachments()], 100)
    store.store([rest_call()], 101)
    return store


def test_records_come_back_stamped_and_equal(store: OpmonStore) -> None:
    """What is stored reads back field for field, with the second of its batch as monitoringDataTs."""
    records = store.query(plan())
    assert [r.monitoring_data_ts for r in records] == [100, 100, 100, 101]
    assert records[0] == succeeded_soap().stamped(100) and records[3] == rest_call().stamped(101)
    assert store.count() == 4


def test_client_filters_match_the_pure_rule(store: OpmonStore) -> None:
    """The SQL filters select exactly what RecordQuery.matches selects, for every requester and provider filter."""
    everything = store.query(plan())
    for requester in (OWNER, CONSUMER, OTHER, PROVIDER):
        for provider in (None, PROVIDER, OTHER, CONSUMER):
            query = plan(requester, provider)
            expected = [r for r in everything if query.matches(r)]
            assert store.query(query) == expected, (requester, provider)


def test_member_filter_does_not_match_its_subsystems(tmp_path: Path) -> None:
    """A member-level identifier matches records of the member itself, not of its subsystems (NULL subsystem)."""
    store = OpmonStore(tmp_path / "opmon.db")
    store.store([succeeded_soap(client=CONSUMER.member), succeeded_soap()], 100)
    query = plan(CONSUMER.member)
    assert [r.client for r in store.query(query)] == [CONSUMER.member]


def test_limit_keeps_the_last_second_whole(tmp_path: Path) -> None:
    """With the limit inside a second, the store returns that whole second and one later record."""
    store = OpmonStore(tmp_path / "opmon.db")
    for second, count in ((10, 2), (11, 3), (12, 2)):
        store.store([succeeded_soap(message_id=f"{second}-{i}") for i in range(count)], second)
    query = plan(limit=3)
    fetched = store.query(query)
    assert [r.message_id for r in fetched] == ["10-0", "10-1", "11-0", "11-1", "11-2", "12-0"]
    answered, next_from = answer_records(query, fetched)
    assert len(answered) == 5 and next_from == 12
    answered, next_from = answer_records(plan(limit=100), store.query(plan(limit=100)))
    assert len(answered) == 7 and next_from == NOW - 60


def test_retention_deletes_old_batches(store: OpmonStore) -> None:
    """delete_older_than removes the records stored before the cutoff second only."""
    assert store.delete_older_than(101) == 3
    assert [r.message_id for r in store.query(plan())] == ["rest-1"]


def test_health_records_reach_back_for_last_times(tmp_path: Path) -> None:
    """Health records: the period's producer records plus the latest earlier one per service and result."""
    store = OpmonStore(tmp_path / "opmon.db")
    old_ok = succeeded_soap(response_out_ts=T0 - 5000, message_id="old-ok")
    older_ok = succeeded_soap(response_out_ts=T0 - 9000, message_id="older-ok")
    old_fail = succeeded_soap(response_out_ts=T0 - 7000, succeeded=False, message_id="old-fail")
    recent = succeeded_soap(response_out_ts=T0 + 10, message_id="recent")
    store.store([older_ok, old_ok, old_fail, recent, faulted_soap(response_out_ts=T0 + 20)], 100)
    records = store.health_records(T0)
    assert sorted(r.message_id or "" for r in records) == ["old-fail", "old-ok", "recent"]
    (health,) = service_health(records, now_ms=T0 + 100, period_seconds=1)
    assert health.service == SERVICE
    assert (health.last_successful_ms, health.last_unsuccessful_ms) == (T0 + 10, T0 - 7000)
    assert health.statistics.successful == 1


def test_empty_batch_and_reopen(tmp_path: Path) -> None:
    """An empty batch stores nothing; a closed store reopens on the next call with its records intact."""
    store = OpmonStore(tmp_path / "opmon.db")
    assert store.store([], 5) == 0
    store.store([succeeded_soap()], 5)
    store.close()
    assert OpmonStore(tmp_path / "opmon.db").count() == 1 and store.count() == 1


def test_schema_version_and_newer_schema_refused(tmp_path: Path) -> None:
    """The store's migrations are recorded by the store layer; a database from a newer fedbus is refused."""
    path = tmp_path / "opmon.db"
    store = OpmonStore(path)
    store.count()
    store.close()
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations WHERE store = 'opmon'")]
        assert versions == list(range(1, SCHEMA.latest + 1))
        conn.execute("INSERT INTO schema_migrations VALUES ('opmon', ?, 'future', 'x')", (SCHEMA.latest + 1,))
    with pytest.raises(SchemaTooNew):
        OpmonStore(path).count()


def test_sqlite_failures_are_database_errors(tmp_path: Path) -> None:
    """A file that is not a database gives DatabaseError (database_error), never a bare sqlite3 exception."""
    path = tmp_path / "opmon.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(DatabaseError) as caught:
        OpmonStore(path).store([succeeded_soap()], 1)
    assert caught.value.fault_code == "server.database_error"


def test_stored_form_round_trips_every_case(store: OpmonStore) -> None:
    """Every case survives the store unchanged (the JSON column holds the Annex B form)."""
    for record in store.query(plan()):
        assert isinstance(record, OperationalRecord)
        assert OperationalRecord.from_json(record.to_json()) == record
