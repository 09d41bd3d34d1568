"""``fedbus audit find`` streaming its output: by user id, JSON as one array printed item by item, --limit."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from security_server.audit_cli import audit
from security_server.core.logchain import LogEntry
from security_server.messagelog.store import MessageLogStore
from tests.federation.evidence import exchange

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def invoke(*args: str) -> Result:
    """Run ``fedbus audit ARGS``."""
    return CliRunner().invoke(audit, list(args), catch_exceptions=False)


def _named(entries: tuple[LogEntry, ...], user: str) -> list[LogEntry]:
    """The entries with a ``userId`` header naming ``user`` added to their messages."""
    tag = f"<xroad:userId>{user}</xroad:userId><xroad:protocolVersion>".encode()
    return [replace(e, message=e.message.replace(b"<xroad:protocolVersion>", tag)) for e in entries]


@pytest.fixture()
def server(tmp_path: Path) -> Path:
    """Two shards: exchanges of user EE-A in shard 0, one of EE-B in shard 1, interleaved in time."""
    directory = tmp_path / "server"
    directory.mkdir()
    with MessageLogStore(directory / "messagelog.db") as store:
        for n in range(3):
            store.append_entries(_named(exchange(f"a-{n}", T0 + timedelta(minutes=2 * n)), "EE-A"))
    with MessageLogStore(directory / "messagelog-1.db") as store:
        store.append_entries(_named(exchange("b-0", T0 + timedelta(minutes=1)), "EE-B"))
    return directory


def test_find_by_user_id_lists_that_users_records_from_every_shard(server: Path) -> None:
    """--user-id finds the user's requests and responses, across shards, naming the user in JSON."""
    rows = json.loads(invoke("find", "--dir", str(server), "--json", "--user-id", "EE-B").output)
    assert [(r["shard"], r["query_id"], r["direction"], r["user_id"]) for r in rows] == [
        (1, "b-0", "request", "EE-B"), (1, "b-0", "response", "EE-B")
    ]
    assert len(json.loads(invoke("find", "--dir", str(server), "--json", "--user-id", "EE-A").output)) == 6


def test_json_output_is_the_indented_array_it_always_was(server: Path) -> None:
    """Printed item by item, the JSON is byte for byte what json.dumps(list, indent=2) gives; none is ``[]``."""
    output = invoke("find", "--dir", str(server), "--json").output
    rows = json.loads(output)
    assert output == json.dumps(rows, indent=2) + "\n"
    assert [r["query_id"] for r in rows][::2] == ["a-0", "b-0", "a-1", "a-2"]  # time order across shards
    assert invoke("find", "--dir", str(server), "--json", "--user-id", "nobody").output == "[]\n"


def test_limit_is_honoured_across_shards(server: Path) -> None:
    """--limit N prints the first N records in time order, whichever shard they are in."""
    rows = json.loads(invoke("find", "--dir", str(server), "--json", "--limit", "3").output)
    assert [(r["shard"], r["query_id"]) for r in rows] == [(0, "a-0"), (0, "a-0"), (1, "b-0")]
    table = invoke("find", "--dir", str(server), "--limit", "3").output.splitlines()
    assert table[0].startswith("SHARD:RECORD") and len(table) == 4


def test_an_empty_table_says_none(server: Path) -> None:
    """No match: the headers, then ``(none)``, as before."""
    lines = invoke("find", "--dir", str(server), "--user-id", "nobody").output.splitlines()
    assert lines[0].split()[:2] == ["SHARD:RECORD", "TIME"] and lines[1:] == ["(none)"]
