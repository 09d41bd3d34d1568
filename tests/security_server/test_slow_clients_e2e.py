"""Issue 22 item 3 in a real process: a flood of slow and idle connections cannot stop a normal caller.

The child (``slow_clients_child.py``) serves the consumer's client proxy (HTTP) and the provider's server proxy
(mutual TLS) of the exchange bed, with ``ulimit -n 256``, the default connection caps (a quarter of that: 64 per
port) and header, body and idle timeouts of 2 s. The test opens 200 connections to the client proxy (half of them
sending a head one byte at a time and never finishing it, half sending nothing) and 100 to the server proxy, and
keeps feeding the slow ones. Before the guards, Twisted reset its idle timer on every byte and these stayed open
for as long as they kept trickling (issue 22: the whole 60 s test), the table filled and callers waited. Now every
flood connection is ended by the server (closed after the header timeout, or answered 503 past the cap), a caller
during the flood gets a clean answer (the provider's, or the 503 fault), and after it the caller is served.
The waits are bounded event waits (sockets become readable), never timing thresholds.
"""

from __future__ import annotations

import http.client
import os
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.federation.world import is_request

HERE = Path(__file__).resolve().parent
CHILD = HERE / "slow_clients_child.py"
REPO_ROOT = HERE.parent.parent
LIMIT = 256
"""The child's RLIMIT_NOFILE."""
TIMEOUT_SECONDS = 2
"""The child's header, body and idle timeouts."""
BOUND = 60.0
"""How long any one awaited event may take before the test calls the process wedged."""
SLOW_HEAD = b"POST / HTTP/1.1\r\nHost: ss1\r\nX-Slow: " + b"a" * 10_000
"""What a slow client sends, one byte at a time: a head that never ends."""


def low_descriptor_limit() -> None:
    """In the child, before exec: ``ulimit -n LIMIT``."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


@pytest.fixture
def child(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int, Path]]:
    """The process serving both proxies: ``(process, client proxy port, server proxy port, stderr file)``."""
    errors = tmp_path / "child-stderr.log"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1")
    with open(errors, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path), str(TIMEOUT_SECONDS)],
            stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, preexec_fn=low_descriptor_limit,
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], BOUND)
        assert ready, "the child did not start"
        line = process.stdout.readline().split()
        assert line[:1] == ["READY"], (line, errors.read_text()[-2000:])
        yield process, int(line[1]), int(line[2]), errors
    finally:
        process.terminate()
        try:
            process.wait(BOUND)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def call(port: int) -> tuple[int, bytes] | None:
    """One SOAP request as a consumer's system sends it: ``(status, body)``, or None when the connection was closed
    or reset without an answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND)
    try:
        connection.request("POST", "/", is_request(), {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
        response = connection.getresponse()
        return response.status, response.read()
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        return None
    finally:
        connection.close()


def answered(result: tuple[int, bytes] | None) -> bool:
    """Whether a call got the provider's answer (200, no fault)."""
    return result is not None and result[0] == 200 and b"Fault>" not in result[1]


def ended_by_server(one: socket.socket) -> bytes:
    """What the server said before it ended a flood connection: b"" (closed) or the start of its answer."""
    try:
        said = one.recv(4096)
    except (ConnectionResetError, TimeoutError):
        said = b""
    return said


def connect_flood(port: int, count: int) -> list[socket.socket]:
    """``count`` connections to ``port`` (ones the server refuses at once count as ended later)."""
    flood = []
    for _ in range(count):
        try:
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=BOUND))
        except (ConnectionResetError, ConnectionRefusedError):
            continue  # refused outright (the table was full): nothing to hold
    return flood


def test_slow_and_idle_connections_are_ended_and_a_normal_caller_is_answered(
    child: tuple[subprocess.Popen[str], int, int, Path],
) -> None:
    """200 slow or idle connections to the client proxy and 100 to the server proxy, the slow ones fed a byte at a
    time: the server ends every one of them (closed, or 503 past the cap), a caller during the flood gets a clean
    answer, a caller after it gets the provider's answer, and the process neither crashes nor logs a traceback."""
    process, client_port, server_port, errors = child
    assert answered(call(client_port))

    slow = connect_flood(client_port, 100)
    idle = connect_flood(client_port, 100) + connect_flood(server_port, 100)
    sent = dict.fromkeys(slow, 0)
    live = set(slow) | set(idle)
    said: list[bytes] = []
    during = call(client_port)  # while the flood holds the port: the answer or the cap's 503, never a hang
    assert during is None or during[0] in (200, 503), during
    deadline = time.monotonic() + BOUND
    while live:
        assert time.monotonic() < deadline, f"{len(live)} flood connections still open after {BOUND} s"
        readable, _, _ = select.select(list(live), [], [], 0.25)
        for one in readable:
            said.append(ended_by_server(one))
            live.discard(one)
        for one in [s for s in slow if s in live]:
            try:
                one.send(SLOW_HEAD[sent[one] : sent[one] + 1])
                sent[one] += 1
            except (BrokenPipeError, ConnectionResetError):
                said.append(b"")
                live.discard(one)
    for one in slow + idle:
        one.close()

    assert all(s == b"" or s.startswith(b"HTTP/1.1 503 ") for s in said), [s[:80] for s in said if s][:3]
    assert max(sent.values()) < len(SLOW_HEAD)  # cut off mid-head, not by running out of head to send
    assert answered(call(client_port))
    assert process.poll() is None
    assert "Traceback" not in errors.read_text()
