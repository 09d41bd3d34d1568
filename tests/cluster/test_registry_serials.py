"""Serials of a clustered registry's development TSA and CA come from the shared database: never issued twice.

Two registry nodes on one PostgreSQL database serve the same development CA and TSA (the first node's ``ca/``
folder copied to the second, as after moving the CA to another machine); both issue at once, and every serial
is distinct, where their two file counters would each have started at 1.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from twisted.internet import defer
from twisted.trial import unittest

from central_registry.bootstrap import init_registry, join_registry
from central_registry.service import RegistryService
from central_registry.trust.ca import DevelopmentCA
from central_registry.trust.serials import CA_SEQUENCE, TSA_SEQUENCE, SharedSerials
from central_registry.trust.tsa import SerialCounter
from security_server.core.errors import DatabaseError
from security_server.core.timestamp import build_timestamp_query, parse_timestamp_response, verify_timestamp_token
from tests.loopback import REACTOR, free_port, http, now

reactor: Any = REACTOR
QUERY = b"application/timestamp-query"
EACH = 12
"""Timestamps (and certificates) each node issues in the test."""


@pytest.mark.usefixtures("shared_database")
class SharedSerialsTest(unittest.TestCase):
    """Two registry nodes sharing one database and one development CA/TSA."""

    url: str
    tmp: Path
    timeout = 120

    @defer.inlineCallbacks
    def test_two_nodes_timestamping_at_once_never_repeat_a_serial(self) -> Any:
        """Queries sent to both nodes' /tsa concurrently get tokens whose serials are all distinct, and above
        what the first node's file counter had handed out before it joined a cluster."""
        ports = free_port(), free_port()
        init_registry(self.tmp / "r1", "EE", now(), public_url=f"http://127.0.0.1:{ports[0]}", ca_key_size=2048,
                      database_url=self.url)
        join_registry(self.tmp / "r2", now(), database_url=self.url)
        for _ in range(3):  # the first node timestamped on its own before: serials 1-3 are taken
            SerialCounter(self.tmp / "r1" / "ca" / "tsa-serial.json").next()
        shutil.copytree(self.tmp / "r1" / "ca", self.tmp / "r2" / "ca", dirs_exist_ok=True)
        nodes = [RegistryService(reactor, self.tmp / name, http_port=port, database_url=self.url)
                 for name, port in zip(("r1", "r2"), ports)]
        for node in nodes:
            node.startService()
        try:
            imprint = hashlib.sha256(b"evidence").digest()
            query = build_timestamp_query(imprint, "sha256")
            replies = yield defer.gatherResults([
                defer.Deferred.fromCoroutine(http(b"POST", f"http://127.0.0.1:{port}/tsa", query, QUERY))
                for _ in range(EACH) for port in ports
            ])
            tsa_cert = DevelopmentCA.open(self.tmp / "r1" / "ca").tsa_credentials()[1]
            serials = []
            for reply in replies:
                token = parse_timestamp_response(reply.body).token_der
                assert reply.code == 200 and token is not None
                serials.append(verify_timestamp_token(token, imprint, [tsa_cert], datetime.now(UTC)).serial)
            assert len(set(serials)) == len(serials) == 2 * EACH
            assert min(serials) == 4
        finally:
            for node in nodes:
                yield node.stopService()

    def test_two_copies_of_the_ca_issuing_at_once_never_repeat_a_serial(self) -> None:
        """The same CA opened on two nodes with the shared sequence issues distinct serials from parallel threads."""
        init_registry(self.tmp / "r1", "EE", now(), public_url="http://127.0.0.1:1", ca_key_size=2048,
                      database_url=self.url)
        shutil.copytree(self.tmp / "r1" / "ca", self.tmp / "r2-ca")
        serials: list[int] = []
        lock = threading.Lock()

        def issue(directory: Path) -> None:
            shared = SharedSerials(self.url, CA_SEQUENCE)
            try:
                ca = DevelopmentCA.open(directory, shared_serials=shared)
                for _ in range(EACH):
                    serial = ca.issue_tsa_cert(now()).serial_number
                    with lock:
                        serials.append(serial)
            finally:
                shared.close()

        threads = [threading.Thread(target=issue, args=(d,)) for d in (self.tmp / "r1" / "ca", self.tmp / "r2-ca")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(serials)) == len(serials) == 2 * EACH
        assert len({serial >> 64 for serial in serials}) == 2 * EACH  # the sequence part alone is unique

    def test_a_floor_raises_the_sequence_and_an_outage_is_a_database_error(self) -> None:
        """A node whose file counter is ahead raises the shared sequence to it; an unreachable database gives
        DatabaseError naming ``[database] url`` without the password."""
        first = SharedSerials(self.url, TSA_SEQUENCE)
        assert [first.next(), first.next()] == [1, 2]
        ahead = SharedSerials(self.url, TSA_SEQUENCE, floor=40)
        assert ahead.next() == 40 and first.next() == 41
        behind = SharedSerials(self.url, TSA_SEQUENCE, floor=5)
        assert behind.next() == 42
        for source in (first, ahead, behind):
            source.close()
        down = SharedSerials(f"postgresql://fedbus:secret@127.0.0.1:{free_port()}/none", TSA_SEQUENCE)
        with pytest.raises(DatabaseError) as info:
            down.next()
        assert "[database] url" in str(info.value.reason) and "secret" not in str(info.value.reason)
        with psycopg.connect(self.url) as conn:  # the sequence is an ordinary one of the shared database
            assert conn.execute("SELECT last_value FROM fedbus_tsa_serial").fetchone() == (42,)
