"""Searching the message log (store.search, migration m004): user ids, time order, streaming, and an index per shape."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Iterator

import pytest

from security_server.core.logchain import Direction, LogEntry
from security_server.core.rest import RestRequest
from security_server.messagelog.store import MessageLogStore, search_query
from tests.federation.evidence import soap_message

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CLIENT = "SUBSYSTEM:EE/GOV/70000310/consumer"
SERVICE = "SERVICE:EE/GOV/70000311/provider/getRandom/v1"


def _entry(query_id: str, direction: Direction, message: bytes, at: datetime, **kw: object) -> LogEntry:
    fields: dict[str, object] = dict(
        query_id=query_id, direction=direction, client=CLIENT, service=SERVICE, time=at, message=message,
        signature=b"<sig/>",
    )
    fields.update(kw)
    return LogEntry(**fields)  # type: ignore[arg-type]


def _soap(query_id: str, response: bool, user: str | None) -> bytes:
    message = soap_message(query_id, response=response)
    if user is None:
        return message
    return message.replace(b"<xroad:protocolVersion>", f"<xroad:userId>{user}</xroad:userId><xroad:protocolVersion>".encode())


def _rest_request(query_id: str, user: str) -> bytes:
    return RestRequest.from_client(
        "GET", "/r1/EE/GOV/70000311/provider/getRandom",
        [("X-Road-Client", "EE/GOV/70000310/consumer"), ("X-Road-Id", query_id), ("X-Road-UserId", user)],
        request_id="r", new_query_id=query_id,
    ).to_bytes()


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[MessageLogStore]:
    """A log with a SOAP exchange by user A, a REST exchange by user B (response in a later batch), a failed one
    by A, and an exchange naming no user."""
    log = MessageLogStore(tmp_path / "messagelog.db")
    log.append_entries([
        _entry("soap-1", Direction.REQUEST, _soap("soap-1", False, "EE-A"), T0),
        _entry("soap-1", Direction.RESPONSE, _soap("soap-1", True, "EE-A"), T0),
        _entry("rest-1", Direction.REQUEST, _rest_request("rest-1", "EE-B"), T0 + timedelta(seconds=1)),
    ])
    log.append_entries([
        _entry("rest-1", Direction.RESPONSE, b"200\r\nOK\r\nX-Road-Id:rest-1\r\n", T0 + timedelta(seconds=1)),
        _entry("soap-2", Direction.REQUEST, _soap("soap-2", False, "EE-A"), T0 + timedelta(seconds=2)),
        _entry("soap-2", Direction.RESPONSE, b"<fault/>", T0 + timedelta(seconds=2), signature=b"", succeeded=False,
               fault_code="server.serverproxy.service_failed.timeout"),
        _entry("anon-1", Direction.REQUEST, _soap("anon-1", False, None), T0 + timedelta(seconds=3)),
    ])
    yield log
    log.close()


def test_each_record_is_indexed_by_the_user_its_exchange_names(store: MessageLogStore) -> None:
    """A record's user id is its message's; a REST response or failure record takes its request's, even from an
    earlier batch; an exchange naming no user has none."""
    def ids(user: str) -> list[tuple[str, str]]:
        return [(s.query_id, s.direction.value) for s in store.search(user_id=user)]

    assert ids("EE-A") == [("soap-1", "request"), ("soap-1", "response"), ("soap-2", "request"), ("soap-2", "response")]
    assert ids("EE-B") == [("rest-1", "request"), ("rest-1", "response")]
    assert [s.user_id for s in store.search(query_id="anon-1")] == [None]


def test_the_user_id_is_outside_the_hash_link(store: MessageLogStore) -> None:
    """Changing the stored user id does not break the chain: it is an index derived from the message."""
    store.database.execute("UPDATE logrecord SET user_id = 'someone else'")
    store.database.commit()
    assert store.verify() == 7


def test_search_streams_in_time_order_and_honours_the_limit(store: MessageLogStore) -> None:
    """search() is lazy (a generator over the cursor), lists in time order and stops at ``limit``."""
    found = store.search(client=CLIENT, limit=3)
    assert isinstance(found, types.GeneratorType)
    assert [s.id for s in found] == [1, 2, 3]
    times = [s.time for s in store.search(since=T0, until=T0 + timedelta(seconds=3))]
    assert times == sorted(times) and len(times) == 6


def test_a_client_prefix_is_an_index_range(store: MessageLogStore) -> None:
    """A trailing ``/`` matches every subsystem of the member, and nothing of another member."""
    assert len(list(store.search(client="SUBSYSTEM:EE/GOV/70000310/"))) == 7
    assert list(store.search(client="SUBSYSTEM:EE/GOV/7000031/")) == []


SHAPES = {
    "query id": (dict(query_id="q"), "idx_logrecord_query_id"),
    "client": (dict(client=CLIENT), "idx_logrecord_client_time"),
    "client prefix": (dict(client="SUBSYSTEM:EE/GOV/70000310/"), "idx_logrecord_client_time"),
    "service": (dict(service=SERVICE), "idx_logrecord_service_time"),
    "user id": (dict(user_id="EE-A"), "idx_logrecord_user_id_time"),
    "time range": (dict(since=T0, until=T0 + timedelta(hours=1)), "idx_logrecord_time_us"),
    "since": (dict(since=T0), "idx_logrecord_time_us"),
    "client in a time range": (dict(client=CLIENT, since=T0, until=T0 + timedelta(hours=1)), "idx_logrecord_client_time"),
    "service in a time range": (dict(service=SERVICE, since=T0, until=T0 + timedelta(hours=1)), "idx_logrecord_service_time"),
    "user id in a time range": (dict(user_id="EE-A", since=T0, until=T0 + timedelta(hours=1)), "idx_logrecord_user_id_time"),
    "user id, failed only": (dict(user_id="EE-A", succeeded=False), "idx_logrecord_user_id_time"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_search_shape_reads_an_index_not_the_table(store: MessageLogStore, shape: str) -> None:
    """EXPLAIN QUERY PLAN: each shape SEARCHes logrecord through its index; none SCANs the table."""
    criteria, index = SHAPES[shape]
    sql, params = search_query(**criteria)  # type: ignore[arg-type]
    plan = [str(row[3]) for row in store.database.execute("EXPLAIN QUERY PLAN " + sql, params)]
    on_table = [step for step in plan if "logrecord" in step]
    assert on_table and all(step.startswith("SEARCH logrecord USING") for step in on_table), plan
    assert any(index in step for step in on_table), plan
    if shape not in ("query id", "client prefix"):  # the index gives the order; a prefix's matches are sorted
        assert not any("TEMP B-TREE" in step for step in plan), plan
