"""Trust decisions: certificate paths, certificate roles and OCSP responses, all judged at an injected ``now``.

Everything here is pure: certificates and response bytes in, a decision out (a value, or a :class:`BusError`
saying why not). The rules follow XROAD-REFERENCE.md §4.3 (a peer's certificate must chain to an approved CA
and carry a good, fresh OCSP response) and §4.4 (OCSP freshness is judged on ``thisUpdate``: a response is too
old when ``thisUpdate < now - ocspFreshnessSeconds``, default 3600 s; ``nextUpdate`` must not have passed; the
responder must be the CA itself or hold a certificate the CA issued for OCSP signing, RFC 6960 §4.2.2.2).

Errors: a certificate that is expired, not yet valid, revoked or unknown to its CA raises
:class:`CertValidation`; a certificate that does not chain to an approved CA raises :class:`InvalidCertPath`;
OCSP evidence that is for another certificate, badly signed, from an unauthorised responder, stale or from the
future raises :class:`IncorrectValidationInfo`.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from security_server.core.errors import CertValidation, IncorrectValidationInfo, InvalidCertPath

DEFAULT_OCSP_FRESHNESS_SECONDS = 3600
"""X-Road's default ``ocspFreshnessSeconds`` (global configuration; XROAD-REFERENCE.md §4.4)."""

DEFAULT_CLOCK_SKEW_SECONDS = 300
"""Tolerated difference between our clock and a responder's or TSA's (OpenSSL's ``-validity_period`` default)."""

MAX_PATH_LENGTH = 8
"""The most intermediate CA certificates between a leaf and its approved CA that :func:`verify_cert_path` accepts."""

MAX_ISSUER_CHECKS = 100
"""The most candidate issuers (right name, signature to check) one search for a path tries: backtracking over
certificates that cross-certify each other could otherwise take time exponential in the number offered."""

CERT_DECODE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
"""What cryptography raises, lazily, on reading a damaged certificate or response (not all are ValueError)."""

# Errors of checking a signature: the decoding errors above, or a signature that does not verify.
_CHECK_ERRORS: tuple[type[Exception], ...] = (*CERT_DECODE_ERRORS, InvalidSignature)


def describe(cert: x509.Certificate, field: str = "subject") -> str:
    """A certificate's subject (or issuer) for messages; never raises on a damaged name."""
    try:
        name = cert.subject if field == "subject" else cert.issuer
        return name.rfc4514_string()
    except CERT_DECODE_ERRORS:
        return f"<undecodable {field}>"


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


# --- signatures and key hashes ---------------------------------------------------------------------------


def signature_is_valid(
    public_key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    *,
    pss_salt_length: int | None = None,
) -> bool:
    """Whether ``signature`` over ``data`` verifies with ``public_key`` (RSA PKCS#1 v1.5 or PSS, ECDSA, EdDSA)."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if hash_algorithm is None:
                return False
            pad: padding.AsymmetricPadding = (
                padding.PSS(padding.MGF1(hash_algorithm), pss_salt_length)
                if pss_salt_length is not None
                else padding.PKCS1v15()
            )
            public_key.verify(signature, data, pad, hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            if hash_algorithm is None:
                return False
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
        else:
            return False
    except _CHECK_ERRORS:
        return False
    return True


def public_key_bits_hash(cert: x509.Certificate, hash_algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the certificate's public key BIT STRING value, as in an OCSP CertID or responder key id (RFC 6960 §4.1.1)."""
    digest = hashes.Hash(hash_algorithm)
    digest.update(_public_key_bits(cert))
    return digest.finalize()


@functools.lru_cache(maxsize=1024)
def _public_key_bits(cert: x509.Certificate) -> bytes:
    """The certificate's subjectPublicKey BIT STRING value (remembered: a pure function of the certificate)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"])


def cert_id_hashes(issuer: x509.Certificate, hash_algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """The ``(issuerNameHash, issuerKeyHash)`` pair of an OCSP CertID for certificates issued by ``issuer``."""
    name_digest = hashes.Hash(hash_algorithm)
    name_digest.update(issuer.subject.public_bytes())
    return name_digest.finalize(), public_key_bits_hash(issuer, hash_algorithm)


@functools.lru_cache(maxsize=4096)
def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s name and key made ``cert`` (name match and a signature that verifies).

    Remembered by the two certificates (it depends on nothing else): a path or OCSP check repeats it for every
    message, and the signature check is most of what verifying a path costs.
    """
    try:
        cert.verify_directly_issued_by(issuer)
    except _CHECK_ERRORS:
        return False
    return True


# --- certificate roles ----------------------------------------------------------------------------------
# Each role is a pure function of the certificate, remembered per certificate: the same few certificates are
# judged for every message, and reading their extensions is most of the cost.


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType] | None:
    """The certificate's extension of ``kind``, or None when absent or unreadable."""
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None
    except CERT_DECODE_ERRORS:
        return None  # duplicate or malformed extensions: treat as absent, every role check then fails closed


@functools.lru_cache(maxsize=1024)
def is_ca_cert(cert: x509.Certificate) -> bool:
    """Whether the certificate is a CA (basicConstraints cA=TRUE)."""
    ext = _extension(cert, x509.BasicConstraints)
    return ext is not None and isinstance(ext.value, x509.BasicConstraints) and ext.value.ca


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    ext = _extension(cert, x509.KeyUsage)
    return ext.value if ext is not None and isinstance(ext.value, x509.KeyUsage) else None


def _extended_key_usage(cert: x509.Certificate) -> tuple[x509.ExtendedKeyUsage | None, bool]:
    ext = _extension(cert, x509.ExtendedKeyUsage)
    if ext is None or not isinstance(ext.value, x509.ExtendedKeyUsage):
        return None, False
    return ext.value, ext.critical


@functools.lru_cache(maxsize=1024)
def is_auth_cert(cert: x509.Certificate) -> bool:
    """Whether this is a security server authentication certificate (XROAD-REFERENCE.md §4.3 check 1).

    Our profile: not a CA, keyUsage digitalSignature without nonRepudiation, and, when an extendedKeyUsage is
    present, both TLS client and server authentication (a security server is both ends of SS-to-SS TLS).
    """
    if is_ca_cert(cert):
        return False
    usage = _key_usage(cert)
    if usage is None or not usage.digital_signature or usage.content_commitment:
        return False
    eku, _ = _extended_key_usage(cert)
    if eku is None:
        return True
    purposes = set(eku)
    return ExtendedKeyUsageOID.CLIENT_AUTH in purposes and ExtendedKeyUsageOID.SERVER_AUTH in purposes


@functools.lru_cache(maxsize=1024)
def is_signing_cert(cert: x509.Certificate) -> bool:
    """Whether this is a member's signing certificate: not a CA and keyUsage nonRepudiation (X-Road's test)."""
    if is_ca_cert(cert):
        return False
    usage = _key_usage(cert)
    return usage is not None and usage.content_commitment


@functools.lru_cache(maxsize=1024)
def is_ocsp_signing_cert(cert: x509.Certificate) -> bool:
    """Whether the certificate carries id-kp-OCSPSigning (a delegated OCSP responder, RFC 6960 §4.2.2.2)."""
    eku, _ = _extended_key_usage(cert)
    return eku is not None and ExtendedKeyUsageOID.OCSP_SIGNING in set(eku)


@functools.lru_cache(maxsize=1024)
def is_tsa_cert(cert: x509.Certificate) -> bool:
    """Whether the certificate has the critical extendedKeyUsage of exactly id-kp-timeStamping (RFC 3161 §2.3)."""
    eku, critical = _extended_key_usage(cert)
    return eku is not None and critical and set(eku) == {ExtendedKeyUsageOID.TIME_STAMPING}


# --- certificate paths ----------------------------------------------------------------------------------


def check_validity(cert: x509.Certificate, at: datetime, what: str = "certificate") -> None:
    """Raise :class:`CertValidation` unless ``cert`` is inside its validity window at ``at``."""
    _require_aware(at)
    if at < cert.not_valid_before_utc:
        raise CertValidation(
            f"{what} is not yet valid",
            reason=f"{what} {describe(cert)} is valid from {cert.not_valid_before_utc.isoformat()}, "
            f"checked at {at.isoformat()}",
        )
    if at > cert.not_valid_after_utc:
        raise CertValidation(
            f"{what} has expired",
            reason=f"{what} {describe(cert)} expired at {cert.not_valid_after_utc.isoformat()}, "
            f"checked at {at.isoformat()}",
        )


def _same_cert(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a == b  # cryptography compares certificates by their DER encoding


def _is_one_of(cert: x509.Certificate, certs: Iterable[x509.Certificate]) -> bool:
    return any(_same_cert(cert, other) for other in certs)


def _check_ca_role(ca: x509.Certificate, below: int) -> None:
    """Raise :class:`InvalidCertPath` unless ``ca`` may issue a path with ``below`` intermediates under it (RFC 5280 §4.2.1.9)."""
    ext = _extension(ca, x509.BasicConstraints)
    if ext is None or not isinstance(ext.value, x509.BasicConstraints) or not ext.value.ca:
        raise InvalidCertPath(
            "certificate path goes through a non-CA certificate",
            reason=f"{describe(ca)} is not a CA (basicConstraints)",
        )
    if ext.value.path_length is not None and below > ext.value.path_length:
        raise InvalidCertPath(
            "certificate path is longer than its CA allows",
            reason=f"{describe(ca)} allows {ext.value.path_length} intermediates, path has {below}",
        )
    usage = _key_usage(ca)
    if usage is not None and not usage.key_cert_sign:
        raise InvalidCertPath(
            "certificate path goes through a CA without keyCertSign",
            reason=f"{describe(ca)} lacks keyUsage keyCertSign",
        )


def _is_valid_at(cert: x509.Certificate, at: datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


_CaIdentity = tuple[x509.Name, bytes]


@functools.lru_cache(maxsize=1024)
def _identity(ca: x509.Certificate) -> _CaIdentity:
    """A CA as a path sees it, its name and key: two certificates with both equal issue the same certificates."""
    return ca.subject, _public_key_bits(ca)


class _DeadEnd(enum.IntEnum):
    """Why a branch of the path search ended, most telling first: when every branch ends, the refusal reported
    is the first one of the most telling kind met."""

    ROLE = 0  # a candidate that may not issue here: not a CA, its pathLen exceeded, no keyCertSign
    LOOP = 1
    TOO_LONG = 2
    NO_ISSUER = 3


class _PathSearch:
    """One depth-first search, backtracking over candidate issuers, for a path from a certificate up to an
    approved CA (RFC 4158): at most :data:`MAX_PATH_LENGTH` intermediates, no CA twice on a path, and at most
    :data:`MAX_ISSUER_CHECKS` candidates tried in all.

    With ``now`` a path must be valid at ``now``; without, only its structure is judged (names, signatures, CA
    roles and path lengths), which tells a path that exists but is out of its time from no path at all.
    """

    def __init__(
        self, roots: Sequence[x509.Certificate], intermediates: Sequence[x509.Certificate], now: datetime | None
    ) -> None:
        self._roots = roots
        self._offered = (*roots, *intermediates)  # a certificate offered twice is tried twice, within the budget
        self._now = now
        self._checks_left = MAX_ISSUER_CHECKS
        self._dead_end: tuple[_DeadEnd, InvalidCertPath] | None = None

    def refusal(self) -> InvalidCertPath:
        """Why no path was found (the first dead end of the most telling kind)."""
        if self._dead_end is None:  # not reached: a search that finds nothing has met a dead end
            return InvalidCertPath("certificate does not chain to an approved certification authority")
        return self._dead_end[1]

    def _note(self, kind: _DeadEnd, error: InvalidCertPath) -> None:
        if self._dead_end is None or kind < self._dead_end[0]:
            self._dead_end = (kind, error)

    def _spend_a_check(self, cert: x509.Certificate) -> None:
        if self._checks_left == 0:
            raise InvalidCertPath(
                "certificate path search gave up",
                reason=f"more than {MAX_ISSUER_CHECKS} candidate issuers tried for {describe(cert)}",
            )
        self._checks_left -= 1

    def extend(
        self, path: tuple[x509.Certificate, ...], on_path: tuple[_CaIdentity, ...]
    ) -> tuple[x509.Certificate, ...] | None:
        """The first path that continues ``path`` (leaf first) to an approved CA, or None when none does.

        Candidates are the offered certificates whose name and key made the last one: approved CAs first, then
        the intermediates in the order given, so a path the greedy walk found is the first path found.
        """
        current = path[-1]
        below = len(path) - 1  # intermediates between the leaf and the next issuer
        issued = False
        try:
            wanted = current.issuer
        except CERT_DECODE_ERRORS:
            wanted = None  # a damaged issuer name names no one
        for candidate in self._offered if wanted is not None else ():
            try:
                if candidate.subject != wanted:
                    continue
            except CERT_DECODE_ERRORS:
                continue  # a damaged name issues nothing
            self._spend_a_check(current)
            if candidate == current or not is_issued_by(current, candidate):
                continue  # not its issuer, or self-signed: the top of its own chain, not a way up
            issued = True
            approved = _is_one_of(candidate, self._roots)
            if not approved:
                # A CA met again: the path through its first appearance is shorter and no harder to satisfy.
                if candidate == path[0] or _identity(candidate) in on_path:
                    loop = InvalidCertPath("certificate path loops", reason=f"{describe(candidate)} repeats")
                    self._note(_DeadEnd.LOOP, loop)
                    continue
                if below >= MAX_PATH_LENGTH:
                    too_long = f"more than {MAX_PATH_LENGTH} intermediate CA certificates"
                    self._note(_DeadEnd.TOO_LONG, InvalidCertPath("certificate path is too long", reason=too_long))
                    continue
            try:
                _check_ca_role(candidate, below)
            except InvalidCertPath as err:
                self._note(_DeadEnd.ROLE, err)
                continue
            if self._now is not None and not _is_valid_at(candidate, self._now):
                continue
            if approved:
                return (*path, candidate)
            found = self.extend((*path, candidate), (*on_path, _identity(candidate)))
            if found is not None:
                return found
        if not issued:
            self._note(
                _DeadEnd.NO_ISSUER,
                InvalidCertPath(
                    "certificate does not chain to an approved certification authority",
                    reason=f"no approved CA or intermediate issued {describe(current)} "
                    f"(issuer {describe(current, 'issuer')})",
                ),
            )
        return None


def verify_cert_path(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    approved_roots: Sequence[x509.Certificate],
    now: datetime,
) -> tuple[x509.Certificate, ...]:
    """Check that ``cert`` chains to one of ``approved_roots`` and that every link is valid at ``now``.

    Returns the path, leaf first and approved CA last (callers may ignore it). The approved CAs are the global
    configuration's ``approvedCA`` top certificates (XROAD-REFERENCE.md §4.3 check 2). Every candidate issuer is
    tried, approved CAs first, then ``intermediates`` in their order, so a same-name certificate that cannot issue
    (another key, expired, not a CA, a path length exceeded, a dead end) does not hide a path. Raises
    :class:`CertValidation` when ``cert`` is out of its validity window, or when a path exists only with a link
    out of its window (naming the link nearest the leaf), and :class:`InvalidCertPath` when no path exists.
    """
    _require_aware(now)
    if not approved_roots:
        raise InvalidCertPath("no approved certification authorities are configured")
    check_validity(cert, now)
    if _is_one_of(cert, approved_roots):
        return (cert,)
    path = _PathSearch(approved_roots, intermediates, now).extend((cert,), ())
    if path is not None:
        return path
    # No path valid at now; a path valid but for the time is refused for the link out of its window.
    search = _PathSearch(approved_roots, intermediates, None)
    path = search.extend((cert,), ())
    if path is None:
        raise search.refusal()
    for link in path[1:-1]:
        check_validity(link, now, "intermediate CA certificate")
    check_validity(path[-1], now, "CA certificate")
    return path  # not reached: the search at now would have found this path


# --- OCSP -----------------------------------------------------------------------------------------------


class CertStatus(enum.StrEnum):
    """A certificate's status in an OCSP response (RFC 6960 §2.2)."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


_CERT_STATUS = {
    ocsp.OCSPCertStatus.GOOD: CertStatus.GOOD,
    ocsp.OCSPCertStatus.REVOKED: CertStatus.REVOKED,
    ocsp.OCSPCertStatus.UNKNOWN: CertStatus.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class OcspStatus:
    """What an authentic, fresh OCSP response says about one certificate."""

    status: CertStatus
    serial_number: int
    this_update: datetime
    next_update: datetime | None
    produced_at: datetime
    responder: str
    revocation_time: datetime | None = None
    revocation_reason: str | None = None

    def __post_init__(self) -> None:
        if self.status is CertStatus.REVOKED and self.revocation_time is None:
            raise ValueError("a revoked status needs its revocation time")
        if self.status is not CertStatus.REVOKED and (self.revocation_time or self.revocation_reason):
            raise ValueError("only a revoked status has a revocation time or reason")


def _single_response_for(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse:
    """The SingleResponse whose CertID names ``cert`` as issued by ``issuer`` (RFC 6960 §4.1.1)."""
    for single in response.responses:
        try:
            algorithm = single.hash_algorithm
        except UnsupportedAlgorithm:
            continue
        name_hash, key_hash = cert_id_hashes(issuer, algorithm)
        if (
            single.serial_number == cert.serial_number
            and single.issuer_name_hash == name_hash
            and single.issuer_key_hash == key_hash
        ):
            return single
    raise IncorrectValidationInfo(
        "OCSP response is not for this certificate",
        reason=f"no CertID in the response names serial {cert.serial_number:x} of {describe(issuer)}",
    )


def _responder_matches(response: ocsp.OCSPResponse, candidate: x509.Certificate) -> bool:
    """Whether the response's ResponderID (byName or byKey, RFC 6960 §4.2.1) names ``candidate``."""
    if response.responder_name is not None:
        return response.responder_name == candidate.subject
    if response.responder_key_hash is not None:
        return response.responder_key_hash == public_key_bits_hash(candidate, hashes.SHA1())
    return False


def _response_signature_valid(response: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    if response.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
        return False  # PSS parameters are not exposed for OCSP responses; no OCSP responder we know uses PSS
    try:
        algorithm = response.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return False
    return signature_is_valid(signer.public_key(), response.signature, response.tbs_response_bytes, algorithm)


@dataclass(frozen=True, slots=True)
class _Responder:
    """A certificate whose signature on an OCSP response verified and that may speak for the CA: always (the CA
    itself, or a responder the global configuration lists) or, for a delegated responder, inside its validity."""

    name: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def refusal_at(self, now: datetime) -> str | None:
        """Why this responder cannot be trusted at ``now``, or None when it can."""
        if self.valid_from is None or self.valid_until is None or self.valid_from <= now <= self.valid_until:
            return None
        return f"{self.name} is outside its validity at {now.isoformat()}"


def _authorised_responders(
    response: ocsp.OCSPResponse,
    issuer: x509.Certificate,
    trusted_responders: Sequence[x509.Certificate],
) -> tuple[tuple[_Responder, ...], tuple[str, ...]]:
    """The certificates that signed ``response`` and may speak for ``issuer`` (RFC 6960 §4.2.2.2), apart from
    the time check of a delegated responder's validity; with the reasons the other named certificates were not."""
    candidates = [issuer, *trusted_responders, *response.certificates]
    named = [c for c in candidates if _responder_matches(response, c)]
    if not named:
        raise IncorrectValidationInfo(
            "OCSP response is signed by an unknown responder",
            reason="the ResponderID names neither the CA nor a certificate in the response",
        )
    responders: list[_Responder] = []
    refusals: list[str] = []
    for candidate in named:
        if _same_cert(candidate, issuer) or _is_one_of(candidate, trusted_responders):
            responder = _Responder(describe(candidate))
        elif not is_issued_by(candidate, issuer):
            refusals.append(f"{describe(candidate)} was not issued by the certificate's CA")
            continue
        elif not is_ocsp_signing_cert(candidate):
            refusals.append(f"{describe(candidate)} lacks id-kp-OCSPSigning")
            continue
        else:
            responder = _Responder(describe(candidate), candidate.not_valid_before_utc, candidate.not_valid_after_utc)
        if _response_signature_valid(response, candidate):
            responders.append(responder)
        else:
            refusals.append(f"signature does not verify with {describe(candidate)}")
    return tuple(responders), tuple(refusals)


def _require_whole_signature_bytes(ocsp_der: bytes) -> None:
    """Refuse a signature BIT STRING with unused bits: its bytes could verify while the value differs (X.690 §11.2)."""
    try:
        basic = asn1_ocsp.OCSPResponse.load(ocsp_der)["response_bytes"]["response"].parsed
        unused = bytes(basic["signature"].contents[:1])
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise IncorrectValidationInfo("OCSP response cannot be decoded", reason=str(err)) from err
    if unused != b"\x00":
        raise IncorrectValidationInfo("OCSP response signature is not a whole number of bytes")


@dataclass(frozen=True, slots=True)
class _OcspFacts:
    """What an OCSP response says about one certificate and who signed it: everything :func:`read_ocsp_response`
    establishes that does not depend on the time of the check."""

    status: CertStatus
    this_update: datetime
    next_update: datetime | None
    produced_at: datetime
    responders: tuple[_Responder, ...]
    refusals: tuple[str, ...]
    revocation_time: datetime | None
    revocation_reason: str | None


@functools.lru_cache(maxsize=1024)
def _ocsp_facts(
    ocsp_der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    trusted_responders: tuple[x509.Certificate, ...],
) -> _OcspFacts:
    """Decode ``ocsp_der``, find its answer about ``cert`` and check its signature (raises as
    :func:`read_ocsp_response` does).

    Remembered by its arguments, on which alone it depends: a security server checks the same few responses
    (its own certificates', its peers') for every message until they are refreshed, and decoding one and
    verifying its signature costs far more than the message's own signature. A refusal is not remembered.
    """
    if not is_issued_by(cert, issuer):
        raise InvalidCertPath(
            "certificate was not issued by the given CA",
            reason=f"{describe(cert)} is not signed by {describe(issuer)}",
        )
    try:
        response = ocsp.load_der_ocsp_response(ocsp_der)
    except ValueError as err:
        raise IncorrectValidationInfo("OCSP response cannot be decoded", reason=str(err)) from err
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise IncorrectValidationInfo(
            "OCSP responder did not answer", reason=f"responseStatus {response.response_status.name}"
        )
    _require_whole_signature_bytes(ocsp_der)
    try:
        single = _single_response_for(response, cert, issuer)
        responders, refusals = _authorised_responders(response, issuer, trusted_responders)
        status = _CERT_STATUS[single.certificate_status]
        reason_flag = single.revocation_reason if status is CertStatus.REVOKED else None
        return _OcspFacts(
            status=status,
            this_update=single.this_update_utc,
            next_update=single.next_update_utc,
            produced_at=response.produced_at_utc,
            responders=responders,
            refusals=refusals,
            revocation_time=single.revocation_time_utc if status is CertStatus.REVOKED else None,
            revocation_reason=reason_flag.value if reason_flag is not None else None,
        )
    except CERT_DECODE_ERRORS as err:
        # cryptography decodes names and extensions lazily; a damaged embedded certificate fails here
        raise IncorrectValidationInfo("OCSP response cannot be decoded", reason=str(err)) from err


def read_ocsp_response(
    ocsp_der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
    *,
    freshness_seconds: float = DEFAULT_OCSP_FRESHNESS_SECONDS,
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
    check_next_update: bool = True,
    trusted_responders: Sequence[x509.Certificate] = (),
) -> OcspStatus:
    """Check that an OCSP response is authentic, about ``cert`` and fresh at ``now``; return what it says.

    This does every check of :func:`check_ocsp_response` except the verdict on the status itself, so a caller
    that caches responses can keep an authentic "revoked" answer. ``trusted_responders`` are responder
    certificates the global configuration lists for the CA (X-Road's ``ocspInfo/cert``). The time-independent
    work (decoding, the responder's signature and authority) is remembered per response; the time checks are
    made on every call.
    """
    _require_aware(now)
    facts = _ocsp_facts(ocsp_der, cert, issuer, tuple(trusted_responders))
    refusals = list(facts.refusals)
    signer: str | None = None
    for responder in facts.responders:
        refusal = responder.refusal_at(now)
        if refusal is None:
            signer = responder.name
            break
        refusals.append(refusal)
    if signer is None:
        raise IncorrectValidationInfo(
            "OCSP response is not signed by an authorised responder", reason="; ".join(refusals)
        )
    this_update, next_update = facts.this_update, facts.next_update
    skew = timedelta(seconds=skew_seconds)
    # Clock skew, our clock behind the responder's: thisUpdate may not lie in our future beyond the tolerance.
    if this_update > now + skew:
        raise IncorrectValidationInfo(
            "OCSP response is from the future",
            reason=f"thisUpdate {this_update.isoformat()} is after {now.isoformat()} plus {skew_seconds} s",
        )
    # XROAD-REFERENCE.md §4.4: stale when thisUpdate < now - ocspFreshnessSeconds (X-Road's OcspVerifier).
    if this_update < now - timedelta(seconds=freshness_seconds):
        raise IncorrectValidationInfo(
            "OCSP response is stale",
            reason=f"thisUpdate {this_update.isoformat()} is older than {freshness_seconds} s at {now.isoformat()}",
        )
    # §4.4: nextUpdate is checked unless the global configuration turns it off (nextupdate-params.xml).
    if check_next_update and next_update is not None and next_update < now - skew:
        raise IncorrectValidationInfo(
            "OCSP response has passed its nextUpdate",
            reason=f"nextUpdate {next_update.isoformat()} is before {now.isoformat()} minus {skew_seconds} s",
        )
    return OcspStatus(
        status=facts.status,
        serial_number=cert.serial_number,
        this_update=this_update,
        next_update=next_update,
        produced_at=facts.produced_at,
        responder=signer,
        revocation_time=facts.revocation_time,
        revocation_reason=facts.revocation_reason,
    )


def require_good(status: OcspStatus) -> OcspStatus:
    """Return ``status`` if it is good; raise :class:`CertValidation` for revoked or unknown (X-Road's verdicts)."""
    if status.status is CertStatus.REVOKED:
        when = status.revocation_time.isoformat() if status.revocation_time else "an unknown time"
        raise CertValidation(
            "certificate has been revoked",
            reason=f"serial {status.serial_number:x} revoked at {when} ({status.revocation_reason or 'no reason'})",
        )
    if status.status is CertStatus.UNKNOWN:
        raise CertValidation(
            "certificate status is unknown to its OCSP responder",
            reason=f"serial {status.serial_number:x}: OCSP status unknown",
        )
    return status


def check_ocsp_response(
    ocsp_der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
    *,
    freshness_seconds: float = DEFAULT_OCSP_FRESHNESS_SECONDS,
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
    check_next_update: bool = True,
    trusted_responders: Sequence[x509.Certificate] = (),
) -> OcspStatus:
    """Accept an OCSP response only if it is for ``cert``, authentic, fresh at ``now`` and says good.

    Raises :class:`IncorrectValidationInfo` for evidence that is wrong (another certificate, unauthorised or
    broken signature, stale, from the future, past ``nextUpdate``) and :class:`CertValidation` for a
    certificate that is revoked or unknown.
    """
    return require_good(
        read_ocsp_response(
            ocsp_der,
            cert,
            issuer,
            now,
            freshness_seconds=freshness_seconds,
            skew_seconds=skew_seconds,
            check_next_update=check_next_update,
            trusted_responders=trusted_responders,
        )
    )
