"""Issue 22 item 7, out of file descriptors: a server process whose RLIMIT_NOFILE is hit by a flood of connections.

The child (``outage_fd_child.py``) serves a consumer's client proxy over HTTP on loopback, with the whole exchange
pipeline behind it, and starts with a low ``ulimit -n``. The test fills its descriptor table with idle
connections and pins what an operator can rely on: the process neither crashes nor wedges; while the table is full
a new caller is refused (its connection closed: Twisted accepts it on a descriptor it keeps in reserve and closes
it, and the listening port stays open); once the flood lets go, the next caller is answered normally. It runs twice:
with the port's connection cap far above the limit, so that the descriptors do run out, and with the default cap
(``[proxy] client-max-connections = 0``: a quarter of the limit), which refuses with a 503 before they do.
The waits are bounded event waits (a socket becomes readable, a descriptor count falls), never thresholds.
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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.federation.world import is_request

HERE = Path(__file__).resolve().parent
CHILD = HERE / "outage_fd_child.py"
REPO_ROOT = HERE.parent.parent
LIMIT = 160
"""The child's RLIMIT_NOFILE: room to start (stores, logs, ports, threads), little more."""
BOUND = 60.0
"""How long any one awaited event may take before the test calls the process wedged."""


def low_descriptor_limit() -> None:
    """In the child, before exec: ``ulimit -n LIMIT``."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def descriptors(pid: int) -> int:
    """How many descriptors process ``pid`` holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling, bounded by BOUND) until ``condition()`` holds."""
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {BOUND} s"
        time.sleep(0.05)


@pytest.fixture(params=[100_000, 0], ids=["uncapped", "default-cap"])
def child(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], int, Path, bool]]:
    """The client-proxy process with the low limit: ``(process, port, stderr file, capped)``; its port's connection cap is
    far above the limit (so the flood exhausts the descriptors) or the default (a quarter of the limit: the cap
    refuses first, with a 503)."""
    errors = tmp_path / "child-stderr.log"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1")
    with open(errors, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path), str(request.param)],
            stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, preexec_fn=low_descriptor_limit,
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], BOUND)
        assert ready, "the child did not start"
        line = process.stdout.readline().split()
        assert line[:1] == ["READY"], (line, errors.read_text()[-2000:])
        yield process, int(line[1]), errors, request.param == 0
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
    """One SOAP request as a consumer's system sends it: ``(status, body)``, or None when the connection was
    closed or reset without an answer (refused)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND)
    try:
        connection.request("POST", "/", is_request(), {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
        response = connection.getresponse()
        return response.status, response.read()
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        return None
    finally:
        connection.close()


def test_running_out_of_descriptors_refuses_callers_then_recovers(
    child: tuple[subprocess.Popen[str], int, Path, bool],
) -> None:
    """A flood of idle connections fills the process's descriptor table: the process stays up, a new caller is
    refused (closed, not left hanging), and once the flood is gone callers are answered normally again."""
    process, port, errors, capped = child
    answered = call(port)
    assert answered is not None and answered[0] == 200 and b"Fault>" not in answered[1], answered

    flood: list[socket.socket] = []
    try:
        for _ in range(LIMIT + 40):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=BOUND))
        # Full once the process refuses connections it cannot keep (closed; or answered with a refusal where the
        # proxy caps its connections below the limit): some flood socket becomes readable.
        refused, _, _ = select.select(flood, [], [], BOUND)
        assert refused, "no connection was refused: the limit was not reached"
        for one in refused:
            try:
                said = one.recv(4096)
            except ConnectionResetError:
                said = b""
            # Closed (by Twisted on its reserve descriptor when the table is full, or by the cap's refusal after it
            # waited in vain for a request line), or the cap's 503.
            assert said == b"" or said.startswith(b"HTTP/1.1 503 "), said[:200]
        if not capped:
            assert descriptors(process.pid) >= LIMIT - 2  # the table did fill up
        while_full = call(port)  # refused at once, never left waiting
        assert while_full is None or while_full[0] != 200 or b"Fault>" in while_full[1], while_full
        assert process.poll() is None
    finally:
        for one in flood:
            one.close()
    wait_for(lambda: descriptors(process.pid) < LIMIT // 2, "descriptors freed after the flood")
    answered = call(port)
    assert answered is not None and answered[0] == 200 and b"Fault>" not in answered[1], answered
    assert process.poll() is None
    assert "Traceback" not in errors.read_text()
