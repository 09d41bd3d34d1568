"""Issue 22 item 3 in a real process: a flood of slow and idle connections cannot stop a normal caller.

The child (``slow_clients_child.py``) serves the consumer's client proxy (HTTP) and the provider's server proxy
(mutual TLS) of the exchange bed, with ``ulimit -n 256``, the default connection caps (a quarter of that: 64 per
port) and header, body and idle timeouts of 2 s. The test opens 200 connections to the client proxy (half of them
sending a head one byte at a time and never finishing it, half sending nothing) and 100 to the server proxy, and
keeps feeding the slow ones. Before the guards, Twisted reset its idle timer on every byte and these stayed open
for as long as they kept trickling (issue 22: the whole 60 s test), the table filled and callers waited. Now every
flood connection is ended by the server (closed after the header timeout, or answered 503 past the cap), a caller
during the flood gets a clean answer (the provider's, or the 503 fault), and after it the caller is served.
The same process answers heads over the limit on real sockets (issue 22 item 6): a 1 MB header, a 1 MB URI or
10,000 header fields get 431 / 414 in the caller's form, read in full by the caller rather than lost to a reset.
The waits are bounded event waits (sockets become readable), never timing thresholds.
"""

from __future__ import annotations

import select
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security_server.limited_child import BOUND, call, started_child

HERE = Path(__file__).resolve().parent
CHILD = HERE / "slow_clients_child.py"
LIMIT = 256
"""The child's RLIMIT_NOFILE."""
TIMEOUT_SECONDS = 2
"""The child's header, body and idle timeouts."""
SLOW_HEAD = b"POST / HTTP/1.1\r\nHost: ss1\r\nX-Slow: " + b"a" * 10_000
"""What a slow client sends, one byte at a time: a head that never ends."""


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], int, int, Path]]:
    """The process serving both proxies: ``(process, client proxy port, server proxy port, stderr file)``; its
    folder holds ``consumer-auth.pem``."""
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    with started_child(CHILD, tmp_path, [str(TIMEOUT_SECONDS)], LIMIT) as (process, ready, errors):
        yield process, int(ready[0]), int(ready[1]), errors


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


BIG = b"a" * (1024 * 1024)

HEADS = [
    pytest.param(b"%s /%s HTTP/1.1\r\nHost: ss\r\n\r\n", 414, id="1MB-uri"),
    pytest.param(b"%s /%s HTTP/1.1\r\nHost: ss\r\nX-Big: " + BIG + b"\r\n\r\n", 431, id="1MB-header"),
    pytest.param(b"%s /%s HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(10_000)) + b"\r\n", 431, id="10k-headers"),
]


def exchange(port: int, request: bytes, pem: Path | None = None) -> bytes:
    """Send ``request`` whole on a new connection (over TLS with the client certificate in ``pem``) and read what
    comes back until the server closes."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    one = raw
    if pem is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(str(pem))
        one = context.wrap_socket(raw)
    answer = b""
    with one:
        try:
            one.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading; its answer is still there to read
        while True:
            try:
                chunk = one.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and len(answer.partition(b"\r\n\r\n")[2]) >= content_length(answer):
                break
    return answer


def content_length(answer: bytes) -> int:
    """The Content-Length of an answer's head (0 without one)."""
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.mark.parametrize(("template", "status"), HEADS)
@pytest.mark.parametrize(
    ("side", "method", "path", "expected"),
    [
        ("client", b"GET", b"r1/EE/GOV/70000002/service/getPerson", b'"type": "client.bad_request"'),
        ("client", b"POST", b"", b"<faultcode>client.bad_request</faultcode>"),
        ("server", b"POST", b"", b"<faultcode>server.serverproxy.bad_request</faultcode>"),
    ],
    ids=["client-rest", "client-soap", "server-soap"],
)
def test_an_oversized_head_is_answered_on_a_real_socket(
    child: tuple[subprocess.Popen[str], int, int, Path],
    template: bytes, status: int, side: str, method: bytes, path: bytes, expected: bytes,
) -> None:
    """A 1 MB URI is 414, a 1 MB header or 10,000 header fields 431, answered as REST error JSON or X-Road's SOAP
    fault, and the caller reads the whole answer (not a reset) on plain HTTP and on mutual TLS."""
    process, client_port, server_port, errors = child
    target = path + (BIG if status == 414 else b"")
    if status == 414 and not path:
        target = BIG
    request = template % (method, target)
    pem = errors.parent / "consumer-auth.pem"
    answer = exchange(client_port, request) if side == "client" else exchange(server_port, request, pem)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    assert expected in answer and len(answer.partition(b"\r\n\r\n")[2]) == content_length(answer)
    assert process.poll() is None
