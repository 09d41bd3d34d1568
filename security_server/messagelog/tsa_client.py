"""Request RFC 3161 time-stamp tokens over HTTP and verify them before the message log keeps them.

The message log timestamps a digest of what it logged (XROAD-REFERENCE.md §4.5). This client sends a
TimeStampReq with a fresh nonce to one TSA (RFC 3161 §3.4: POST ``application/timestamp-query``), and accepts
the reply only if :func:`security_server.core.timestamp.verify_timestamp_token` accepts its token for our
imprint and nonce, from an approved TSA, with a genTime within the clock-skew tolerance of our clock on either
side. Trying TSAs in order and the grace period after failures belong to the timestamper that uses it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable, Sequence

import structlog
from cryptography import x509
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.client import Agent

from security_server.core.errors import BusError, IncorrectValidationInfo, NetworkError
from security_server.core.timestamp import (
    DIGEST_SIZES,
    TimestampInfo,
    build_timestamp_query,
    parse_timestamp_response,
    verify_timestamp_token,
)
from security_server.core.trust import DEFAULT_CLOCK_SKEW_SECONDS
from security_server.edge.http_fetch import HttpAnswer, fetch

MAX_REPLY_BYTES = 256 * 1024
"""A token with its TSA certificate is a few kilobytes; a reply far larger is refused."""

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TimestampResult:
    """A verified token and what it says."""

    token_der: bytes
    info: TimestampInfo


def _random_nonce() -> int:
    return secrets.randbits(63)


class TsaClient:
    """Asks one TSA for tokens; takes the reactor in its constructor."""

    def __init__(
        self,
        reactor: Any,
        url: str,
        approved_tsa_certs: Sequence[x509.Certificate],
        *,
        agent: Any = None,
        hash_algorithm: str = "sha512",
        timeout_seconds: float = 30.0,
        skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
        nonce_source: Callable[[], int] = _random_nonce,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the TSA URL must be http:// or https://")
        if hash_algorithm not in DIGEST_SIZES:
            raise ValueError(f"unsupported imprint algorithm {hash_algorithm}")
        self._reactor = reactor
        self._url = url
        self._approved = tuple(approved_tsa_certs)
        self._agent: Any = agent if agent is not None else Agent(reactor)  # type: ignore[no-untyped-call]
        self.hash_algorithm = hash_algorithm
        self._timeout = timeout_seconds
        self._skew = skew_seconds
        self._nonce_source = nonce_source

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)

    def timestamp(self, imprint: bytes) -> Deferred[TimestampResult]:
        """Request and verify a token over ``imprint`` (a digest made with :attr:`hash_algorithm`)."""
        nonce = self._nonce_source()
        query = build_timestamp_query(imprint, self.hash_algorithm, nonce, cert_req=True)
        started = self._reactor.seconds()
        deferred = fetch(
            self._agent,
            self._reactor,
            self._url,
            what="TSA",
            max_bytes=MAX_REPLY_BYTES,
            body=query,
            content_type="application/timestamp-query",
            timeout_seconds=self._timeout,
        )

        def verify(answer: HttpAnswer) -> TimestampResult:
            reply = parse_timestamp_response(answer.body)
            if not reply.granted or reply.token_der is None:
                raise IncorrectValidationInfo(
                    "TSA refused the time-stamp request",
                    reason=f"status {reply.status}, failInfo {','.join(reply.fail_info) or '-'}: "
                    f"{' '.join(reply.status_strings)}",
                )
            info = verify_timestamp_token(
                reply.token_der,
                imprint,
                self._approved,
                self._now(),
                expected_hash_algorithm=self.hash_algorithm,
                expected_nonce=nonce,
                skew_seconds=self._skew,
                # a token just asked for: its genTime must not lie before our request beyond the tolerance
                max_age_seconds=self._skew + (self._reactor.seconds() - started),
            )
            log.info(
                "timestamp_received",
                serial=info.serial,
                gen_time=info.gen_time.isoformat(),
                seconds=round(self._reactor.seconds() - started, 3),
            )
            return TimestampResult(reply.token_der, info)

        def failed(failure: Failure) -> Failure:
            if isinstance(failure.value, BusError):
                log.warning("timestamp_failed", reason=failure.value.reason)
                return failure
            log.warning("timestamp_failed", reason=failure.getErrorMessage())
            raise NetworkError("TSA could not be reached", reason=failure.getErrorMessage())

        return deferred.addCallback(verify).addErrback(failed)

