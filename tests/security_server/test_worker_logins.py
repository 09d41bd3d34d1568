"""The soft token's login across worker processes: the lines a worker and its parent exchange, and the parent's
relay (a login in one worker reaches every other one, and every worker it starts)."""

from __future__ import annotations

import os
import pickle
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from twisted.internet.task import Clock

from security_server.service import ServerSettings
from security_server.signer.softtoken_pin import LOGINS, SoftTokenLogins
from security_server.worker_slot import READY_FD
from security_server.workers import (
    WorkerSupervisor,
    login_line,
    logins_line,
    parse_login_line,
    parse_logins_line,
)

SECRET = bytes(range(32))


@dataclass
class FakeProcess:
    """A spawned worker: what the parent wrote to its stdin."""

    pid: int
    written: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        """Record a write to the worker's stdin."""
        self.written.append(data)


class FakeReactor(Clock):
    """A clock that spawns fake processes."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[Any, FakeProcess]] = []

    def spawnProcess(self, protocol: Any, *args: Any, **kwargs: Any) -> FakeProcess:
        """Record the protocol and answer a fake process."""
        process = FakeProcess(1000 + len(self.spawned))
        self.spawned.append((protocol, process))
        return process


@pytest.fixture
def keys_dir(tmp_path: Path) -> Iterator[Path]:
    """A token directory whose login this process forgets afterwards."""
    directory = tmp_path / "keys"
    directory.mkdir()
    yield directory
    LOGINS.forget(directory)


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Two sockets standing for the parent's listening ones (only their descriptors are handed on)."""
    made = [socket.socket(), socket.socket()]
    yield made
    for sock in made:
        sock.close()


def _supervisor(tmp_path: Path, sockets: list[socket.socket]) -> tuple[WorkerSupervisor, FakeReactor]:
    reactor = FakeReactor()
    supervisor = WorkerSupervisor(reactor, ServerSettings(root=tmp_path, workers=2))
    supervisor._sockets = sockets
    for worker in supervisor.workers:
        supervisor._spawn(worker)
    return supervisor, reactor


def test_login_lines_round_trip() -> None:
    """A login, a logout and the logins at start are read back as written."""
    where = Path("/srv/fedbus/keys")
    assert parse_login_line(login_line(where, SECRET).rstrip(b"\n")) == (where, SECRET)
    assert parse_login_line(login_line(where, None).rstrip(b"\n")) == (where, None)
    assert parse_logins_line(logins_line({where: SECRET}).rstrip(b"\n")) == {where: SECRET}
    assert parse_logins_line(logins_line({}).rstrip(b"\n")) == {}


@pytest.mark.parametrize("line", [
    b"", b"not json", b"[]", b'{"token": "/k"}', b'{"token": "/k", "secret": "00"}',
    b'{"token": "/k", "secret": 5}', b'{"token": 5, "secret": null}', b'{"token": "/k", "secret": null, "x": 1}',
    b'{"token": "/k", "secret": "' + b"zz" * 32 + b'"}',
])
def test_hostile_login_lines_are_refused(line: bytes) -> None:
    """Anything but a token path and a 32-byte hex secret (or null) is not a login line."""
    with pytest.raises(ValueError):
        parse_login_line(line)


def test_announce_reaches_the_relay_and_adopt_does_not() -> None:
    """announce gives the relay the current secret (None once logged out); an adopted login is not announced
    again (no echo between processes)."""
    logins = SoftTokenLogins()
    heard: list[tuple[Path, bytes | None]] = []
    logins.relay_to(lambda where, secret: heard.append((where, secret)))
    where = Path("/tmp/fedbus-test-keys")
    logins.set(where, SECRET)
    logins.announce(where)
    logins.forget(where)
    logins.announce(where)
    logins.adopt(where, SECRET)
    assert heard == [(where, SECRET), (where, None)]
    assert logins.get(where) is not None and logins.secrets() == {where: SECRET}
    logins.adopt(where, None)
    assert logins.get(where) is None and logins.secrets() == {}


def test_a_worker_gets_its_order_then_the_current_logins(tmp_path: Path, keys_dir: Path, sockets: list[socket.socket]) -> None:
    """A spawned worker's stdin: the pickled order, then one line with every login of the parent."""
    LOGINS.set(keys_dir, SECRET)
    _, reactor = _supervisor(tmp_path, sockets)
    for _, process in reactor.spawned:
        order, line = process.written
        size = int.from_bytes(order[:8], "big")
        assert pickle.loads(order[8:8 + size]).settings.workers == 2
        assert parse_logins_line(line.rstrip(b"\n"))[Path(os.path.realpath(keys_dir))] == SECRET


def test_a_login_in_one_worker_reaches_the_others_and_the_parent(tmp_path: Path, keys_dir: Path, sockets: list[socket.socket]) -> None:
    """Worker 0's login line (split over reads): the parent adopts it and writes it to worker 1 only; its logout
    likewise; a worker restarted after the login is given it."""
    supervisor, reactor = _supervisor(tmp_path, sockets)
    (first, first_process), (_, second_process) = reactor.spawned
    line = login_line(keys_dir, SECRET)
    first.childDataReceived(READY_FD, b"ready 1000\n" + line[:10])
    first.childDataReceived(READY_FD, line[10:])
    assert supervisor.workers[0].ready
    assert second_process.written[-1] == line and len(first_process.written) == 2
    assert LOGINS.get(keys_dir) is not None
    supervisor._spawn(supervisor.workers[1])
    restarted = reactor.spawned[-1][1]
    assert parse_logins_line(restarted.written[1].rstrip(b"\n"))[Path(os.path.realpath(keys_dir))] == SECRET
    first.childDataReceived(READY_FD, login_line(keys_dir, None))
    assert restarted.written[-1] == login_line(keys_dir, None) and LOGINS.get(keys_dir) is None


def test_hostile_lines_from_a_worker_change_nothing(tmp_path: Path, keys_dir: Path, sockets: list[socket.socket]) -> None:
    """A malformed line or an endless one is dropped: nothing adopted, nothing passed on."""
    _, reactor = _supervisor(tmp_path, sockets)
    (first, _), (_, second_process) = reactor.spawned
    first.childDataReceived(READY_FD, b'{"token": "' + str(keys_dir).encode() + b'", "secret": "00"}\n')
    first.childDataReceived(READY_FD, b"x" * (70 * 1024))
    first.childDataReceived(READY_FD, b"\n")
    assert len(second_process.written) == 2 and LOGINS.get(keys_dir) is None
