"""Hostile servers for the bounded-fetch tests: one that streams without end, one that never answers.

:class:`EndlessResource` is a real loopback responder: it answers 200 and streams a body that does not end. It
is bounded all the same (it stops by itself after ``limit`` bytes, so a client that fails to cut it off
makes a test fail instead of hanging or filling memory without end), and ``ended`` says whether the client
hung up before the stream ran out. It writes as a pull producer, so its own side holds one chunk at a time.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

CHUNK = b"\x30" * (64 * 1024)


class _Stream:
    """Writes CHUNK each time the connection can take more, until ``limit`` bytes or the client hangs up."""

    def __init__(self, request: Request, limit: int, owner: EndlessResource) -> None:
        self.request = request
        self.limit = limit
        self.owner = owner
        self.done = False

    def resumeProducing(self) -> None:
        """Send one more chunk, or finish when the limit is reached."""
        if self.done:
            return
        if self.owner.sent >= self.limit:
            self.done = True
            self.request.unregisterProducer()  # type: ignore[no-untyped-call]
            self.request.finish()  # type: ignore[no-untyped-call]
            return
        self.owner.sent += len(CHUNK)
        self.request.write(CHUNK)  # type: ignore[no-untyped-call]

    def stopProducing(self) -> None:
        """The connection went away."""
        self.done = True


class EndlessResource(Resource):
    """Answers any POST or GET with 200 and a body of up to ``limit`` bytes, sent without Content-Length."""

    isLeaf = True

    def __init__(self, content_type: bytes, limit: int = 64 * 1024 * 1024) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.content_type = content_type
        self.limit = limit
        self.sent = 0
        self.ended: Deferred[bool] = Deferred()
        """Fires once the (first) answer is over: True if the client hung up, False if the stream ran out."""

    def render_POST(self, request: Request) -> Any:
        """Start streaming."""
        request.setHeader(b"content-type", self.content_type)  # type: ignore[no-untyped-call]
        request.notifyFinish().addCallbacks(lambda _: self._end(False), lambda _: self._end(True))
        request.registerProducer(_Stream(request, self.limit, self), False)  # type: ignore[no-untyped-call]
        return NOT_DONE_YET

    render_GET = render_POST

    def _end(self, hung_up: bool) -> None:
        if not self.ended.called:
            self.ended.callback(hung_up)


class HangingAgent:
    """An Agent (for a fake clock) whose requests are never answered; counts the cancellations a timeout makes."""

    def __init__(self) -> None:
        self.cancelled = 0

    def request(self, *args: Any) -> Deferred[Any]:
        """A request that hangs until cancelled."""

        def cancel(_: Deferred[Any]) -> None:
            self.cancelled += 1

        return Deferred(cancel)
