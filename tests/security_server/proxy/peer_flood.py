"""A hostile client process for the flood test: many TLS connections with untrusted certificates, each sending 10 MB.

``python -m tests.security_server.proxy.peer_flood PORT COUNT CERT KEY [CERT KEY ...]``: COUNT connections per
certificate, all at once (one thread each). Each connects, sends a POST head announcing 10 MB and then the body in
64 KiB pieces as fast as the server takes them, and reads whatever answer came. It prints ``flooding`` once every
connection has been attempted, then one JSON line with each connection's outcome:

* ``refused``: the TLS handshake failed, or the connection was reset before any answer;
* ``fault``: an answer came and it is the server proxy's fault (its ``faultcode`` is recorded);
* ``answered``: any other answer; ``completed``: the whole body went through (neither may happen).

``sent`` is how many body bytes the connection got into its socket before it ended. The send buffer is fixed at
256 KiB (no autotuning), so a server that reads nothing leaves it far below 10 MB.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
import threading
from typing import Any

BODY = 10 * 1024 * 1024
PIECE = b"f" * (64 * 1024)
SEND_BUFFER = 256 * 1024
_FAULT_CODE = re.compile(rb"<faultcode>([^<]*)</faultcode>")


def attempt(port: int, cert: str, key: str, attempted: threading.Event) -> dict[str, Any]:
    """One hostile connection; see the module docstring. ``attempted`` is set once it connected, or failed to."""
    try:
        return _attempt(port, cert, key, attempted)
    except Exception as err:  # noqa: BLE001 - reported, never a hung flood
        return {"cert": cert, "sent": 0, "kind": "broken", "error": repr(err)}
    finally:
        attempted.set()


def _attempt(port: int, cert: str, key: str, attempted: threading.Event) -> dict[str, Any]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(cert, key)
    outcome: dict[str, Any] = {"cert": cert, "sent": 0}
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    raw.settimeout(60)
    try:
        raw.connect(("127.0.0.1", port))
        tls = context.wrap_socket(raw)
    except OSError as err:
        raw.close()
        return {**outcome, "kind": "refused", "error": type(err).__name__}
    attempted.set()
    answer = b""
    error = ""
    with tls:
        try:
            tls.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % BODY)
            while outcome["sent"] < BODY:
                tls.sendall(PIECE)
                outcome["sent"] += len(PIECE)
        except OSError as err:
            error = type(err).__name__
        try:
            while chunk := tls.recv(65536):
                answer += chunk
        except OSError as err:
            error = error or type(err).__name__
    if not answer:
        kind = "completed" if outcome["sent"] >= BODY else "refused"
        return {**outcome, "kind": kind, "error": error}
    code = _FAULT_CODE.search(answer)
    if code is not None:
        return {**outcome, "kind": "fault", "fault_code": code.group(1).decode(), "error": error}
    return {**outcome, "kind": "answered", "head": answer[:80].decode("latin-1"), "error": error}


def main(argv: list[str]) -> None:
    """Run the flood and print its outcome."""
    port, count = int(argv[0]), int(argv[1])
    pairs = list(zip(argv[2::2], argv[3::2], strict=True))
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    events = [threading.Event() for _ in range(count * len(pairs))]

    def run(cert: str, key: str, attempted: threading.Event) -> None:
        result = attempt(port, cert, key, attempted)
        with lock:
            results.append(result)

    threads = [
        threading.Thread(target=run, args=(*pairs[index % len(pairs)], event)) for index, event in enumerate(events)
    ]
    for thread in threads:
        thread.start()
    for event in events:
        event.wait()
    print("flooding", flush=True)
    for thread in threads:
        thread.join()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
