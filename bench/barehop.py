"""The bare hop: a minimal keep-alive HTTP forwarder with no security, the Python ceiling for a hop.

Two of these in a row (client side -> server side -> provider) are what two security servers would cost if they
only moved bytes: twisted.web inbound, a lean HTTP/1.1 client over a pool of persistent connections outbound,
whole bodies buffered (a signing server must buffer too). Run: ``python bench/barehop.py --port 9201
--target 127.0.0.1:9100``.
"""

from __future__ import annotations

import argparse
from collections import deque
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet import reactor as _reactor
from twisted.web import resource, server

reactor: Any = _reactor


class _Upstream(protocol.Protocol):
    """One persistent HTTP/1.1 connection; answers one request at a time (responses carry Content-Length)."""

    def __init__(self, pool: "Pool") -> None:
        self.pool = pool
        self.buffer = b""
        self.waiting: defer.Deferred[tuple[int, bytes, bytes]] | None = None

    def connectionMade(self) -> None:
        self.pool.connected(self)

    def send(self, method: bytes, path: bytes, content_type: bytes, body: bytes) -> defer.Deferred[tuple[int, bytes, bytes]]:
        self.waiting = defer.Deferred()
        head = b"%s %s HTTP/1.1\r\nHost: upstream\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
            method, path, content_type, len(body))
        transport: Any = self.transport
        transport.write(head + body)
        return self.waiting

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiting is None:
            return
        head = self.buffer[:end].split(b"\r\n")
        status = int(head[0].split(b" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in head[1:])}
        length = int(headers.get(b"content-length", b"0"))
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        waiting, self.waiting = self.waiting, None
        waiting.callback((status, headers.get(b"content-type", b"application/octet-stream"), body))
        self.pool.release(self)

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        self.pool.lost(self)
        if self.waiting is not None:
            waiting, self.waiting = self.waiting, None
            waiting.errback(reason)


class Pool(protocol.ClientFactory):
    """Idle persistent connections to one upstream; a new one when none is idle."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: deque[_Upstream] = deque()
        self.pending: deque[defer.Deferred[_Upstream]] = deque()

    def buildProtocol(self, addr: Any) -> _Upstream:
        return _Upstream(self)

    def acquire(self) -> defer.Deferred[_Upstream]:
        if self.idle:
            return defer.succeed(self.idle.popleft())
        waiting: defer.Deferred[_Upstream] = defer.Deferred()
        self.pending.append(waiting)
        reactor.connectTCP(self.host, self.port, self)
        return waiting

    def connected(self, conn: _Upstream) -> None:
        if self.pending:
            self.pending.popleft().callback(conn)
        else:
            self.idle.append(conn)

    def release(self, conn: _Upstream) -> None:
        self.idle.append(conn)

    def lost(self, conn: _Upstream) -> None:
        if conn in self.idle:
            self.idle.remove(conn)


class Forward(resource.Resource):
    """Forward every request's method, path and body upstream; answer with upstream's status and body."""

    isLeaf = True

    def __init__(self, pool: Pool) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.pool = pool

    def render(self, request: Any) -> Any:
        body = request.content.read() if request.content is not None else b""
        content_type = request.getHeader(b"content-type") or b"application/octet-stream"
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def answer(result: tuple[int, bytes, bytes]) -> None:
            if gone:
                return
            status, answer_type, answer_body = result
            request.setResponseCode(status)
            request.setHeader(b"content-type", answer_type)
            request.setHeader(b"content-length", b"%d" % len(answer_body))  # no chunking: the next hop reads lengths
            request.write(answer_body)
            request.finish()

        def failed(_: Any) -> None:
            if gone:
                return
            request.setResponseCode(502)
            request.finish()

        acquired = self.pool.acquire()
        acquired.addCallback(lambda conn: conn.send(request.method, request.uri, content_type, body))
        acquired.addCallbacks(answer, failed)
        return server.NOT_DONE_YET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="host:port of the next hop")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    site = server.Site(Forward(Pool(host, int(port))))  # type: ignore[no-untyped-call]
    site.noisy = False
    reactor.listenTCP(args.port, site, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
