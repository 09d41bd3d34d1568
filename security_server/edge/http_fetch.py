"""One bounded HTTP fetch: send bytes (or nothing) with a content type, check the status, read a bounded body, time out.

Every call the security server makes to a trust or configuration service goes through :func:`fetch`: its own
OCSP responder (signer/ocsp_client.py), a peer's OCSP responder (proxy/peer_trust.py), the TSA
(messagelog/tsa_client.py), the registry's management service (registration.py) and the configuration source
(confclient/client.py). (Peer security servers and provider services are spoken to over the proxies' pooled
connections, not through this fetch.) Each caller names what it talks to (``what``, for the error messages) and how
much it accepts (``max_bytes``); whatever goes wrong becomes a :class:`~security_server.core.errors.NetworkError`
whose message says what failed and whose reason names the URL:

* a status the caller did not expect (the body is not read; the connection is dropped),
* a body longer than ``max_bytes`` (cut off the moment it passes the limit, see
  :mod:`security_server.edge.bounded_body`), or cut short,
* no whole answer within ``timeout_seconds`` (the connection is dropped),
* anything else on the way (connection refused, TLS, DNS).

The Agent (with its pool and TLS policy) stays the caller's: the fetch only drives one request through it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any, cast

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.client import FileBodyProducer
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IResponse

from security_server.core.errors import BusError, NetworkError
from security_server.edge.bounded_body import BodyCutShort, BodyTooLarge, discard_body, read_body

OK_ONLY: frozenset[int] = frozenset({200})
"""The statuses most callers accept."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A fetched answer: the status, the content type (``""`` when none was given) and the whole body."""

    status: int
    content_type: str
    body: bytes


def fetch(
    agent: Any,
    clock: Any,
    url: str,
    *,
    what: str,
    max_bytes: int,
    body: bytes | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float | None = None,
    accept_status: Collection[int] | None = OK_ONLY,
) -> defer.Deferred[HttpAnswer]:
    """POST ``body`` as ``content_type`` to ``url`` (GET when ``body`` is None) and deliver the bounded answer.

    ``clock`` (an ``IReactorTime``) runs the timeout; ``timeout_seconds=None`` leaves timing to the caller.
    ``accept_status=None`` accepts any status and reads its body (an answer whose refusal carries a document).
    """
    if max_bytes < 0:
        raise ValueError("max_bytes must not be negative")
    fields: dict[bytes, list[bytes]] = {}
    if content_type is not None:
        fields[b"content-type"] = [content_type.encode("latin-1")]
    for name, value in (headers or {}).items():
        fields[name.lower().encode("latin-1")] = [value.encode("latin-1")]
    producer = _producer(body) if body is not None else None
    method = b"GET" if body is None else b"POST"
    try:
        requested: defer.Deferred[IResponse] = agent.request(method, url.encode("ascii"), Headers(fields), producer)
    except Exception as err:  # a malformed URL fails inside request() on some Twisted versions
        return defer.fail(NetworkError(f"{what} could not be reached", reason=f"{url}: {err!r}"))

    def got(response: IResponse) -> defer.Deferred[HttpAnswer]:
        if accept_status is not None and response.code not in accept_status:
            discard_body(response)
            raise NetworkError(f"{what} answered HTTP {response.code}", reason=f"HTTP {response.code} from {url}")
        kind = response.headers.getRawHeaders(b"content-type", [b""])[-1].decode("latin-1")
        reading = read_body(response, max_bytes)
        return reading.addCallback(lambda data: HttpAnswer(response.code, kind, data))

    def failed(failure: Failure) -> Failure:
        error = failure.value
        if isinstance(error, BusError):
            return failure
        if isinstance(error, BodyTooLarge):
            raise NetworkError(f"{what} sent more than {max_bytes} bytes", reason=f"over {max_bytes} bytes from {url}")
        if isinstance(error, BodyCutShort):
            raise NetworkError(f"{what} cut its answer short", reason=f"{url}: {error}")
        if timer.timed_out:  # whatever the cancelled request failed with (CancelledError or Twisted's wrapper)
            raise NetworkError(
                f"{what} did not answer within {timeout_seconds:g} s", reason=f"no answer in {timeout_seconds:g} s from {url}"
            )
        raise NetworkError(f"{what} could not be reached", reason=f"{url}: {error!r}")

    answer = requested.addCallback(got)
    timer = _Timer(clock, timeout_seconds, answer)
    return answer.addBoth(timer.stop).addErrback(failed)


class _Timer:
    """Cancels a Deferred that has not fired within ``seconds`` and remembers that it did so."""

    def __init__(self, clock: Any, seconds: float | None, deferred: defer.Deferred[Any]) -> None:
        self.timed_out = False
        self._deferred = deferred
        self._call = clock.callLater(seconds, self._fire) if seconds is not None else None

    def _fire(self) -> None:
        self.timed_out = True
        self._deferred.cancel()  # forwarded to the request, or to the body being read

    def stop(self, result: Any) -> Any:
        """Passed through ``addBoth``: the answer (or failure) arrived, so the timer is not needed."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        return result


def _producer(data: bytes) -> IBodyProducer:
    """A request body producer for ``data`` (typed wrapper: Twisted leaves FileBodyProducer unannotated)."""
    return cast(IBodyProducer, FileBodyProducer(BytesIO(data)))  # type: ignore[no-untyped-call]
