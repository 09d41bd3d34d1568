"""The development CA's OCSP responder (RFC 6960): a pure answer builder and the twisted.web Resource that serves it.

Answers ``good``, ``revoked`` (with time and reason) or ``unknown`` (a serial this CA never issued, or a CertID
naming another issuer, RFC 6960 §2.2), signed by the delegated OCSP-signing certificate when the CA has one that
is valid now, else by the CA key, with ``thisUpdate`` = now and ``nextUpdate`` = now + validity. No nonce is required
(X-Road fetches without one, XROAD-REFERENCE.md §4.4); a request that carries one gets it echoed (RFC 8954).
A request that cannot be decoded gets the ``malformedRequest`` response status (RFC 6960 §2.3), never a crash.

HTTP (RFC 6960 Appendix A.1): ``POST`` with ``Content-Type: application/ocsp-request``, or ``GET /<base64 of
the DER request>`` (standard or URL-safe alphabet, URL-encoded); answers are ``application/ocsp-response``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any, Callable

import structlog
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.x509 import ocsp
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from central_registry.trust.ca import CaState
from central_registry.trust.http_reply import finish, method_not_allowed, plain_reply, set_header
from security_server.core.trust import cert_id_hashes

DEFAULT_VALIDITY_SECONDS = 3600
"""How far ``nextUpdate`` lies after ``thisUpdate``: X-Road's default OCSP freshness window."""

MAX_REQUEST_BYTES = 16 * 1024
"""An OCSP request for one certificate is a few hundred bytes; anything far larger is refused unread."""

OCSP_REQUEST_TYPE = b"application/ocsp-request"
OCSP_RESPONSE_TYPE = b"application/ocsp-response"

log = structlog.get_logger(__name__)


def unsuccessful_response(status: ocsp.OCSPResponseStatus) -> bytes:
    """An OCSPResponse with only an error ``responseStatus`` (RFC 6960 §4.2.1), DER."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def build_ocsp_response(
    request_der: bytes,
    ca_state: CaState,
    now: datetime,
    *,
    validity_seconds: float = DEFAULT_VALIDITY_SECONDS,
) -> bytes:
    """Answer one DER OCSP request from ``ca_state`` at ``now``; a malformed request gets ``malformedRequest``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = request.hash_algorithm
        serial = request.serial_number
        name_hash = request.issuer_name_hash
        key_hash = request.issuer_key_hash
        nonce = _nonce(request)
        our_hashes = cert_id_hashes(ca_state.ca_cert, algorithm)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return unsuccessful_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)

    issued = ca_state.issued.get(serial) if (name_hash, key_hash) == our_hashes else None
    revocation_time: datetime | None = None
    reason: x509.ReasonFlags | None = None
    if issued is None:
        status = ocsp.OCSPCertStatus.UNKNOWN
    elif issued.revoked:
        status = ocsp.OCSPCertStatus.REVOKED
        revocation_time, reason = issued.revoked_at, issued.reason
    else:
        status = ocsp.OCSPCertStatus.GOOD

    this_update = now.astimezone(UTC).replace(microsecond=0)
    try:
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=serial,
            algorithm=algorithm,
            cert_status=status,
            this_update=this_update,
            next_update=this_update + timedelta(seconds=validity_seconds),
            revocation_time=revocation_time,
            revocation_reason=reason,
        )
    except (ValueError, TypeError):
        return unsuccessful_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)  # e.g. a CertID hashed with MD5

    delegate = ca_state.responder_cert
    if (
        delegate is not None
        and ca_state.responder_key is not None
        and delegate.not_valid_before_utc <= this_update <= delegate.not_valid_after_utc
    ):
        signer_cert, signer_key = delegate, ca_state.responder_key
        builder = builder.certificates([signer_cert])  # RFC 6960 §4.2.2.2: the delegated certificate travels along
    else:
        signer_cert, signer_key = ca_state.ca_cert, ca_state.ca_key
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    if nonce is not None:
        builder = builder.add_extension(nonce, critical=False)
    digest = None if isinstance(signer_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()
    return builder.sign(signer_key, digest).public_bytes(serialization.Encoding.DER)


def _nonce(request: ocsp.OCSPRequest) -> x509.OCSPNonce | None:
    try:
        value = request.extensions.get_extension_for_class(x509.OCSPNonce).value
    except x509.ExtensionNotFound:
        return None
    return value if isinstance(value, x509.OCSPNonce) else None


def decode_get_path(path: bytes) -> bytes | None:
    """The DER request from a GET path (already URL-decoded), in the standard or URL-safe base64 alphabet."""
    text = path.strip()  # not strip(b"/"): "/" is a base64 character and may end the request
    if not text:
        return None
    padded = text + b"=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None


class OcspResource(Resource):
    """twisted.web Resource answering OCSP over GET and POST; builds answers off the reactor thread."""

    isLeaf = True

    def __init__(
        self,
        reactor: Any,
        state_provider: Callable[[], CaState],
        *,
        validity_seconds: float = DEFAULT_VALIDITY_SECONDS,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._reactor = reactor
        self._state_provider = state_provider
        self._validity_seconds = validity_seconds
        self._max_request_bytes = max_request_bytes

    def render(self, request: Request) -> bytes | int:
        """Dispatch to render_GET/render_POST; any other method gets HTTP 405 (Twisted would say 501 for some)."""
        if request.method not in (b"GET", b"POST"):
            return method_not_allowed(request, (b"GET", b"POST"))
        result: bytes | int = super().render(request)  # type: ignore[no-untyped-call]
        return result

    def render_GET(self, request: Request) -> bytes | int:
        """RFC 6960 A.1: the base64 request is the rest of the path."""
        der = decode_get_path(b"/".join(request.postpath or []))
        if der is None or len(der) > self._max_request_bytes:
            return self._reply(request, unsuccessful_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
        return self._answer(request, der)

    def render_POST(self, request: Request) -> bytes | int:
        """RFC 6960 A.1: the DER request is the body, typed application/ocsp-request."""
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type != OCSP_REQUEST_TYPE:
            return plain_reply(request, 400, b"expected Content-Type: application/ocsp-request\n")
        body = request.content.read(self._max_request_bytes + 1) if request.content is not None else b""
        if len(body) > self._max_request_bytes:
            return plain_reply(request, 413, b"OCSP request too large\n")
        return self._answer(request, body)

    def _reply(self, request: Request, body: bytes) -> bytes:
        set_header(request, b"content-type", OCSP_RESPONSE_TYPE)
        set_header(request, b"cache-control", b"no-cache")
        return body

    def _build(self, der: bytes, now: datetime) -> bytes:
        return build_ocsp_response(der, self._state_provider(), now, validity_seconds=self._validity_seconds)

    def _answer(self, request: Request, der: bytes) -> int:
        now = datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)
        finished = {"gone": False}
        request.notifyFinish().addErrback(lambda _: finished.update(gone=True))

        def send(body: bytes) -> None:
            if finished["gone"]:
                return
            finish(request, self._reply(request, body))

        def failed(failure: Failure) -> None:
            log.error("ocsp_answer_failed", error=failure.getErrorMessage())
            send(unsuccessful_response(ocsp.OCSPResponseStatus.INTERNAL_ERROR))

        def answered(body: bytes) -> None:
            log.info("ocsp_request_answered", method=request.method.decode("ascii", "replace"), bytes=len(body))
            send(body)

        deferred = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._build, der, now)
        deferred.addCallbacks(answered, failed)
        deferred.addErrback(lambda failure: log.error("ocsp_reply_failed", error=failure.getErrorMessage()))
        return NOT_DONE_YET
