"""The development time-stamping authority (RFC 3161): a pure response builder and the twisted.web Resource.

A query (TimeStampReq, RFC 3161 §2.4.1) with a SHA-256 or SHA-512 imprint gets a granted TimeStampResp whose
token is CMS SignedData (RFC 5652) over a TSTInfo: eContentType id-ct-TSTInfo, signed attributes content-type,
message-digest and signing-certificate-v2 (ESSCertIDv2, RFC 5035), signed by a certificate whose only, critical,
extendedKeyUsage is id-kp-timeStamping (RFC 3161 §2.3). Anything else gets a ``rejection`` with the RFC's
failInfo: ``badRequest`` (not a query), ``badAlg`` (another hash), ``badDataFormat`` (imprint length),
``unacceptedPolicy``, ``unacceptedExtension``. Serial numbers come from a persistent, monotonic counter
(a file; on a clustered registry a sequence of the shared database, central_registry/trust/serials.py).

HTTP (RFC 3161 §3.4): ``POST`` with ``Content-Type: application/timestamp-query``, answered with
``application/timestamp-reply``; another content type gets HTTP 400, another method HTTP 405.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import tsp as asn1_tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from security_server.edge.atomic_file import write_atomically
from central_registry.trust.serials import SerialSource
from central_registry.trust.http_reply import finish, method_not_allowed, plain_reply, set_header
from security_server.core.errors import ConfigurationError
from security_server.core.timestamp import DIGEST_SIZES, TimeStampResp
from security_server.core.trust import is_tsa_cert

DEFAULT_POLICY = "2.25.130770485401168452253336325867650262279"
"""The development TSA's policy: a UUID-based OID (ITU-T X.667), which needs no registration."""

ACCEPTED_IMPRINTS = ("sha256", "sha512")
"""Imprint algorithms the TSA accepts (issue 3: SHA-256 and SHA-512)."""

MAX_QUERY_BYTES = 16 * 1024
QUERY_TYPE = b"application/timestamp-query"
REPLY_TYPE = b"application/timestamp-reply"

log = structlog.get_logger(__name__)


class SerialCounter:
    """Unique, monotonic TSA serial numbers, persisted in a small JSON file replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def next(self) -> int:
        """Reserve and return the next serial number; it is on disk before it is handed out."""
        with self._lock:
            try:
                state = json.loads(self.path.read_text("utf-8"))
                serial = int(state["next_serial"])
            except FileNotFoundError:
                serial = 1
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise ConfigurationError(f"TSA serial file {self.path} is unreadable: {err}") from err
            if serial < 1:
                raise ConfigurationError(f"TSA serial file {self.path} holds {serial}")
            write_atomically(self.path, json.dumps({"next_serial": serial + 1}).encode("utf-8") + b"\n")
            return serial

    def upcoming(self) -> int:
        """The serial :meth:`next` would hand out, reserving nothing (1 without a file; 1 if it is unreadable)."""
        try:
            return max(1, int(json.loads(self.path.read_text("utf-8"))["next_serial"]))
        except (OSError, ValueError, KeyError, TypeError):
            return 1


@dataclass(frozen=True, slots=True)
class TimestampQuery:
    """An accepted TimeStampReq."""

    hash_algorithm: str
    imprint: bytes
    nonce: int | None
    cert_req: bool
    policy: str | None


class QueryRejected(Exception):
    """A query the TSA refuses, with the RFC 3161 failInfo bit to answer."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info = fail_info
        self.text = text


def parse_timestamp_query(query_der: bytes, *, policy: str = DEFAULT_POLICY) -> TimestampQuery:
    """Decode and check a TimeStampReq; :class:`QueryRejected` says which failInfo to answer."""
    try:
        query = asn1_tsp.TimeStampReq.load(query_der, strict=True)
        query.native  # asn1crypto decodes lazily: force every field now, inside this try
        version = query["version"].native
        imprint = query["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        parameters = imprint["hash_algorithm"]["parameters"]
        hashed = bytes(imprint["hashed_message"].native)
        req_policy = query["req_policy"].dotted if not isinstance(query["req_policy"], asn1_core.Void) else None
        nonce = query["nonce"].native
        cert_req = bool(query["cert_req"].native)
        has_extensions = not isinstance(query["extensions"], asn1_core.Void) and bool(query["extensions"].native)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as err:
        raise QueryRejected("bad_request", "not a TimeStampReq") from err
    if version != "v1":
        raise QueryRejected("bad_request", "only TimeStampReq version 1 is supported")
    if algorithm not in ACCEPTED_IMPRINTS:
        raise QueryRejected("bad_alg", f"imprint algorithm {algorithm} is not accepted; use SHA-256 or SHA-512")
    if not isinstance(parameters, (asn1_core.Void, asn1_core.Null)):
        raise QueryRejected("bad_request", "imprint algorithm has unexpected parameters")
    if len(hashed) != DIGEST_SIZES[algorithm]:
        raise QueryRejected("bad_data_format", f"imprint is {len(hashed)} bytes, not a {algorithm} digest")
    if req_policy is not None and req_policy != policy:
        raise QueryRejected("unaccepted_policy", f"policy {req_policy} is not offered")
    if has_extensions:
        raise QueryRejected("unaccepted_extensions", "this TSA supports no request extensions")
    return TimestampQuery(
        hash_algorithm=str(algorithm),
        imprint=hashed,
        nonce=int(nonce) if nonce is not None else None,
        cert_req=cert_req,
        policy=req_policy,
    )


def rejection_response(fail_info: str, text: str) -> bytes:
    """A TimeStampResp with status rejection and one failInfo bit (RFC 3161 §2.4.2)."""
    status = {"status": "rejection", "status_string": [text], "fail_info": asn1_tsp.PKIFailureInfo({fail_info})}
    return bytes(TimeStampResp({"status": status}).dump())


def _sign(key: CertificateIssuerPrivateKeyTypes, data: bytes) -> tuple[bytes, str]:
    """Sign with SHA-256; return the signature and asn1crypto's name of the signature algorithm."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256()), "sha256_rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    raise ConfigurationError("the TSA key must be RSA or EC")


def build_token(
    query: TimestampQuery,
    now: datetime,
    serial: int,
    tsa_key: CertificateIssuerPrivateKeyTypes,
    tsa_cert: x509.Certificate,
    *,
    policy: str = DEFAULT_POLICY,
) -> bytes:
    """The DER TimeStampToken (a CMS ContentInfo) answering ``query`` at ``now`` with ``serial``."""
    cert_der = tsa_cert.public_bytes(serialization.Encoding.DER)
    cert = asn1_x509.Certificate.load(cert_der)
    tst_fields: dict[str, Any] = {
        "version": "v1",
        "policy": policy,
        "message_imprint": {"hash_algorithm": {"algorithm": query.hash_algorithm}, "hashed_message": query.imprint},
        "serial_number": serial,
        "gen_time": now.astimezone(UTC).replace(microsecond=0),
        "accuracy": {"seconds": 1},
        "tsa": asn1_x509.GeneralName(name="directory_name", value=cert.subject),
    }
    if query.nonce is not None:
        tst_fields["nonce"] = query.nonce
    tst_info = asn1_tsp.TSTInfo(tst_fields)
    tst_der = bytes(tst_info.dump())
    ess_cert_id = {
        "cert_hash": hashlib.sha256(cert_der).digest(),  # hashAlgorithm left at its DEFAULT, SHA-256
        "issuer_serial": {
            "issuer": [asn1_x509.GeneralName(name="directory_name", value=cert.issuer)],
            "serial_number": cert.serial_number,
        },
    }
    attributes = [
        asn1_cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        asn1_cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}),
        asn1_cms.CMSAttribute({"type": "signing_certificate_v2", "values": [{"certs": [ess_cert_id]}]}),
    ]
    # DER orders a SET OF by encoding (X.690 §11.6); verifiers re-encode the attributes before checking.
    attributes.sort(key=lambda attribute: bytes(attribute.dump()))
    signed_attrs = asn1_cms.CMSAttributes(attributes)
    signature, signature_algorithm = _sign(tsa_key, bytes(signed_attrs.dump()))
    signer_info = asn1_cms.SignerInfo(
        {
            "version": "v1",
            "sid": asn1_cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value={"issuer": cert.issuer, "serial_number": cert.serial_number},
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": signature_algorithm},
            "signature": signature,
        }
    )
    signed_data: dict[str, Any] = {
        "version": "v3",  # RFC 5652 §5.1: eContentType is not id-data
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "tst_info", "content": asn1_core.ParsableOctetString(tst_der)},
        "signer_infos": [signer_info],
    }
    if query.cert_req:
        signed_data["certificates"] = [cert]
    token = asn1_cms.ContentInfo({"content_type": "signed_data", "content": asn1_cms.SignedData(signed_data)})
    return bytes(token.dump())


def build_timestamp_response(
    query_der: bytes,
    now: datetime,
    serial: int,
    tsa_key: CertificateIssuerPrivateKeyTypes,
    tsa_cert: x509.Certificate,
    *,
    policy: str = DEFAULT_POLICY,
) -> bytes:
    """Answer a DER TimeStampReq at ``now``: a granted response with a token, or a rejection; never raises for bad input."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not is_tsa_cert(tsa_cert):
        raise ConfigurationError("the TSA certificate lacks the critical extendedKeyUsage id-kp-timeStamping")
    try:
        query = parse_timestamp_query(query_der, policy=policy)
    except QueryRejected as rejected:
        return rejection_response(rejected.fail_info, rejected.text)
    token = asn1_cms.ContentInfo.load(build_token(query, now, serial, tsa_key, tsa_cert, policy=policy))
    return bytes(TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump())


class TsaResource(Resource):
    """twisted.web Resource: POST application/timestamp-query, answered off the reactor thread."""

    isLeaf = True

    def __init__(
        self,
        reactor: Any,
        tsa_key: CertificateIssuerPrivateKeyTypes,
        tsa_cert: x509.Certificate,
        counter: SerialSource,
        *,
        policy: str = DEFAULT_POLICY,
        max_query_bytes: int = MAX_QUERY_BYTES,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        if not is_tsa_cert(tsa_cert):
            raise ConfigurationError("the TSA certificate lacks the critical extendedKeyUsage id-kp-timeStamping")
        self._reactor = reactor
        self._key = tsa_key
        self._cert = tsa_cert
        self._counter = counter
        self._policy = policy
        self._max_query_bytes = max_query_bytes

    def render(self, request: Request) -> bytes | int:
        """Dispatch to render_GET/render_POST; any other method gets HTTP 405 (Twisted would say 501 for some)."""
        if request.method not in (b"POST",):
            return method_not_allowed(request, (b"POST",))
        result: bytes | int = super().render(request)  # type: ignore[no-untyped-call]
        return result

    def render_POST(self, request: Request) -> bytes | int:
        """RFC 3161 §3.4: the DER query is the body."""
        content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if content_type != QUERY_TYPE:
            return plain_reply(request, 400, b"expected Content-Type: application/timestamp-query\n")
        body = request.content.read(self._max_query_bytes + 1) if request.content is not None else b""
        if len(body) > self._max_query_bytes:
            return plain_reply(request, 413, b"time-stamp query too large\n")
        now = datetime.fromtimestamp(self._reactor.seconds(), tz=UTC)
        gone = {"yes": False}
        request.notifyFinish().addErrback(lambda _: gone.update(yes=True))

        def send(reply: bytes) -> None:
            if gone["yes"]:
                return
            set_header(request, b"content-type", REPLY_TYPE)
            finish(request, reply)

        def failed(failure: Failure) -> None:
            log.error("timestamp_failed", error=failure.getErrorMessage())
            send(rejection_response("system_failure", "the TSA failed"))

        def answered(reply: bytes) -> None:
            log.info("timestamp_query_answered", bytes=len(reply))
            send(reply)

        deferred = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._respond, body, now)
        deferred.addCallbacks(answered, failed)
        deferred.addErrback(lambda failure: log.error("timestamp_reply_failed", error=failure.getErrorMessage()))
        return NOT_DONE_YET

    def _respond(self, body: bytes, now: datetime) -> bytes:
        try:
            parse_timestamp_query(body, policy=self._policy)
        except QueryRejected as rejected:
            return rejection_response(rejected.fail_info, rejected.text)  # no serial is spent on a refused query
        return build_timestamp_response(body, now, self._counter.next(), self._key, self._cert, policy=self._policy)

