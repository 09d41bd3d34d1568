"""Serial numbers that the nodes of a clustered registry share: one PostgreSQL sequence per kind of serial.

On one machine the development TSA counts its serials in a file (:class:`~central_registry.trust.tsa.SerialCounter`)
and the development CA draws random serials checked against its own index. With ``[database] url`` the registry
runs as several nodes, and a TSA or CA served by more than one of them (its key copied, or moved to another node
after a loss) would repeat what a file of another node already handed out. :class:`SharedSerials` takes every
serial from a sequence of the shared database (``nextval`` is atomic across connections and never hands one value
out twice, committed or not), so two nodes never issue the same serial.

The sequence is created on first use, starting above ``floor``: the node holding the file counter passes its next
value, so switching an existing registry to a database URL never repeats a serial it issued before (if another node
created the sequence first, the floor still raises it, under a lock that excludes taking a serial meanwhile). The CA keeps 64 random bits below the sequence
number (:func:`ca_serial`): unique by the sequence, unpredictable by the random part (as X.509 practice asks).
"""

from __future__ import annotations

import secrets
import threading
from typing import Any, Protocol

import psycopg
from psycopg import sql

from security_server.core.config import url_without_password
from security_server.core.errors import DatabaseError

TSA_SEQUENCE = "fedbus_tsa_serial"
"""The development TSA's serials."""
CA_SEQUENCE = "fedbus_ca_serial"
"""The development CA's serials (the high bits: :func:`ca_serial`)."""

CONNECT_TIMEOUT_SECONDS = 5
RANDOM_BITS = 64
"""Random low bits of a CA serial taken from the shared sequence."""


class SerialSource(Protocol):
    """Hands out unique serial numbers, one per call (thread-safe)."""

    def next(self) -> int:
        """The next serial number, never handed out before."""


class SharedSerials:
    """A :class:`SerialSource` backed by one PostgreSQL sequence of the registry's shared database."""

    def __init__(self, url: str, sequence: str, *, floor: int = 1) -> None:
        if floor < 1:
            raise ValueError("serial numbers start at 1")
        self.url = url
        self.sequence = sequence
        self.floor = floor
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def next(self) -> int:
        """``nextval`` of the sequence (created on first use, raised to ``floor``); one retry on a new connection."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    conn = self._connection()
                    with conn.transaction():  # shared: serials flow concurrently, but never while a floor is raised
                        conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", (self.sequence,))
                        row = conn.execute("SELECT nextval(%s)", (self.sequence,)).fetchone()
                    assert row is not None
                    return int(row[0])
                except psycopg.Error as err:
                    self._close()
                    if attempt == 2:
                        raise DatabaseError(
                            "the shared serial numbers are unavailable",
                            reason=f"[database] url {url_without_password(self.url)}: {type(err).__name__}: {err}",
                        ) from err
        raise AssertionError("unreachable")

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Create the sequence if missing and make sure its next value is at least ``floor``."""
        name = sql.Identifier(self.sequence)
        with conn.transaction():
            # One lock per sequence name, taken exclusively here and shared by next(): raising the floor never races
            # another node creating the sequence or taking a serial.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.sequence,))
            conn.execute(sql.SQL("CREATE SEQUENCE IF NOT EXISTS {} AS BIGINT MINVALUE 1").format(name))
            row = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(name)).fetchone()
            assert row is not None
            issued_up_to = int(row[0]) if row[1] else int(row[0]) - 1
            if issued_up_to < self.floor - 1:
                conn.execute("SELECT setval(%s, %s, false)", (self.sequence, self.floor))

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except psycopg.Error:
                pass

    def close(self) -> None:
        """Close the connection (the next serial opens one again)."""
        with self._lock:
            self._close()


def ca_serial(sequence_value: int) -> int:
    """A CA serial from a shared sequence value: the value in the high bits, 64 random bits below (positive, at most
    127 bits: inside X.509's 20 octets)."""
    return (sequence_value << RANDOM_BITS) | secrets.randbits(RANDOM_BITS)
