"""Is this TLS peer a security server we may talk to? The application-level check of a peer's auth certificate.

TLS between security servers only proves that the peer holds the key of the certificate it showed; whether that
certificate is acceptable is decided here, against the global configuration in force *now* (it changes while
connections live). XROAD-REFERENCE.md §4.3 (X-Road's ``CertHelper.verifyAuthCert`` and the client proxy's
``AuthTrustVerifier``): the peer's certificate

1. is an authentication certificate (``trust.is_auth_cert``);
2. chains to an approved CA of the global configuration and every link is valid now;
3. has its hash registered for a security server in the global configuration;
4. belongs to the expected server: the provider's server when the consumer checks (``expected_server``), a
   server on which the client is registered when the provider checks (``hosted_client``);
5. has a good OCSP response that is authentic and fresh (§4.4: ``thisUpdate`` not older than the global
   configuration's ``ocspFreshnessSeconds``), signed by the CA or a responder the configuration lists for it.

Checks 1-4 need no OCSP (:func:`identify_peer`), so a client proxy can refuse an unregistered peer before it
fetches anything; :func:`check_peer_ocsp` does check 5 and :func:`check_peer_auth_cert` does all of them.

Errors (the caller re-homes them with ``.at(origin)``): a certificate that is not an auth certificate, is not
registered, or is registered for another server raises :class:`SslAuthenticationFailed`; one that is expired,
not from an approved CA, revoked or unknown to OCSP raises :class:`CertValidation`; missing, stale, broken or
foreign OCSP evidence raises :class:`IncorrectValidationInfo`. X-Road reports the chain and OCSP failures with
an ``ssl_authentication_failed.`` prefix; fedbus keeps the narrower code so that the consumer can tell them apart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from cryptography import x509

from security_server.core.errors import (
    BusError,
    CertValidation,
    IncorrectValidationInfo,
    InvalidCertPath,
    SslAuthenticationFailed,
)
from security_server.core.globalconf import GlobalConf, OcspResponder
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.trust import (
    DEFAULT_CLOCK_SKEW_SECONDS,
    OcspStatus,
    is_auth_cert,
    read_ocsp_response,
    require_good,
    verify_cert_path,
)

MAX_CERT_BYTES = 32 * 1024
"""An authentication certificate is one or two kilobytes; anything far larger is refused unparsed."""


@functools.lru_cache(maxsize=512)
def _load_cert(der: bytes) -> x509.Certificate:
    """Parse a DER certificate from the global configuration (the same few certificates, parsed once)."""
    return x509.load_der_x509_certificate(der)


def _load_all(ders: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    return tuple(_load_cert(der) for der in ders)


@dataclass(frozen=True, slots=True)
class AuthenticatedPeer:
    """A peer certificate that passed checks 1-4: the security server it belongs to and its issuing CA."""

    server: SecurityServerId
    cert: x509.Certificate
    issuer: x509.Certificate
    cert_der: bytes
    path_not_after: datetime | None = None
    """When the first certificate of the checked path (leaf, intermediates, approved CA) expires: until then,
    under the same global configuration, checks 1-4 give the same verdict."""

    def __post_init__(self) -> None:
        if not isinstance(self.server, SecurityServerId):
            raise TypeError("server must be a SecurityServerId")
        if not isinstance(self.cert, x509.Certificate) or not isinstance(self.issuer, x509.Certificate):
            raise TypeError("cert and issuer must be certificates")
        if not isinstance(self.cert_der, bytes) or not self.cert_der:
            raise TypeError("cert_der must be the certificate's DER bytes")


def _subject(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return "<unreadable subject>"


def _parse_peer_cert(cert_der: bytes) -> x509.Certificate:
    if not isinstance(cert_der, bytes) or not cert_der:
        raise SslAuthenticationFailed("peer presented no TLS certificate")
    if len(cert_der) > MAX_CERT_BYTES:
        raise SslAuthenticationFailed(
            "peer certificate cannot be read", reason=f"certificate of {len(cert_der)} bytes is over {MAX_CERT_BYTES}"
        )
    try:
        return x509.load_der_x509_certificate(cert_der)
    except ValueError as err:
        raise SslAuthenticationFailed("peer certificate cannot be read", reason=str(err)) from err


def check_peer_chain(cert_der: bytes, conf: GlobalConf, now: datetime) -> tuple[x509.Certificate, ...]:
    """Checks 1-2 of the module docstring: an authentication certificate issued under an approved CA, every link
    valid at ``now``; returns the path, leaf first. (What the server proxy's TLS handshake checks:
    proxy/peer_admission.py.)"""
    cert = _parse_peer_cert(cert_der)
    # §4.3 check 1; X-Road: "Peer certificate is not an authentication certificate".
    if not is_auth_cert(cert):
        raise SslAuthenticationFailed(
            "peer certificate is not an authentication certificate",
            reason=f"{_subject(cert)} lacks the authentication key usage (or is a CA or signing certificate)",
        )
    # §4.3 check 2: chains to an approved CA, every link valid now.
    try:
        path = verify_cert_path(cert, _load_all(conf.intermediate_cas()), _load_all(conf.approved_roots()), now)
    except InvalidCertPath as err:
        raise CertValidation(
            "peer certificate is not issued by an approved certification authority",
            reason=f"{_subject(cert)}: {err.reason}",
        ) from err
    except ValueError as err:  # an approved CA certificate that cryptography cannot read
        raise CertValidation("peer certificate path cannot be checked", reason=str(err)) from err
    if len(path) < 2:
        raise CertValidation(
            "peer certificate is itself listed as a certification authority",
            reason=f"{_subject(cert)} is an approved CA certificate, not one issued by a CA",
        )
    return path


def identify_peer(
    cert_der: bytes,
    conf: GlobalConf,
    now: datetime,
    *,
    expected_server: SecurityServerId | None = None,
    hosted_client: ClientId | None = None,
) -> AuthenticatedPeer:
    """Checks 1-4 of the module docstring: which registered security server this certificate authenticates.

    ``expected_server``: the server the consumer meant to reach (its address came from the configuration).
    ``hosted_client``: the client the peer speaks for, which must be registered on the peer's server.
    """
    conf.check_valid(now)
    path = check_peer_chain(cert_der, conf, now)
    cert, issuer = path[0], path[1]
    # §4.3 check 3: the certificate's hash is registered for a security server.
    info = conf.server_for_auth_cert(cert_der)
    if info is None:
        raise SslAuthenticationFailed(
            "peer authentication certificate is not registered for any security server",
            reason=f"{_subject(cert)} (serial {cert.serial_number:x}) is in no server's authCertHash",
        )
    # §4.3 check 4/5: the right server for this exchange.
    if expected_server is not None and info.id != expected_server:
        raise SslAuthenticationFailed(
            "peer authentication certificate belongs to another security server",
            reason=f"certificate is registered for {info.id}, expected {expected_server}",
        )
    if hosted_client is not None and not conf.is_hosted_by(hosted_client, info.id):
        raise SslAuthenticationFailed(
            "peer security server does not host the client",
            reason=f"{hosted_client} is not registered on {info.id}",
        )
    return AuthenticatedPeer(
        server=info.id, cert=cert, issuer=issuer, cert_der=cert_der,
        path_not_after=min(link.not_valid_after_utc for link in path),
    )


def peer_ocsp_responders(peer: AuthenticatedPeer, conf: GlobalConf) -> tuple[OcspResponder, ...]:
    """The OCSP responders the global configuration lists for the CA that issued the peer's certificate."""
    return conf.ocsp_responders(peer.issuer.subject)


def trusted_responder_certs(peer: AuthenticatedPeer, conf: GlobalConf) -> tuple[x509.Certificate, ...]:
    """The responder certificates the configuration lists for the peer's CA (X-Road's ``ocspInfo/cert``)."""
    ders = [r.cert for r in peer_ocsp_responders(peer, conf) if r.cert is not None]
    try:
        return _load_all(ders)
    except ValueError as err:
        raise IncorrectValidationInfo("an OCSP responder certificate cannot be read", reason=str(err)) from err


def read_peer_ocsp(
    peer: AuthenticatedPeer,
    ocsp_der: bytes,
    conf: GlobalConf,
    now: datetime,
    *,
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
) -> OcspStatus:
    """Whether ``ocsp_der`` is authentic and fresh evidence about the peer's certificate; what it says."""
    return read_ocsp_response(
        ocsp_der,
        peer.cert,
        peer.issuer,
        now,
        freshness_seconds=conf.ocsp_freshness_seconds,
        skew_seconds=skew_seconds,
        trusted_responders=trusted_responder_certs(peer, conf),
    )


def check_peer_ocsp(
    peer: AuthenticatedPeer,
    ocsp_der: bytes | Sequence[bytes] | None,
    conf: GlobalConf,
    now: datetime,
    *,
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
) -> OcspStatus:
    """Check 5: a good, authentic OCSP response for the peer's certificate, fresh at ``now`` (§4.4).

    ``ocsp_der`` is one response, or the OCSP parts of a transport message (XROAD-REFERENCE.md §4.1), of which
    one must be about the peer's certificate; when none is acceptable, the error about the peer's own
    certificate is raised in preference to "not for this certificate".
    """
    candidates = [ocsp_der] if isinstance(ocsp_der, bytes) else list(ocsp_der or ())
    if not candidates:
        raise IncorrectValidationInfo(
            "no OCSP response for the peer's authentication certificate",
            reason=f"none given for {_subject(peer.cert)} (serial {peer.cert.serial_number:x})",
        )
    errors: list[BusError] = []
    for candidate in candidates:
        try:
            return require_good(read_peer_ocsp(peer, candidate, conf, now, skew_seconds=skew_seconds))
        except BusError as err:
            errors.append(err)
    about_this_cert = [e for e in errors if e.message != _NOT_FOR_THIS_CERT]
    raise (about_this_cert or errors)[0]


_NOT_FOR_THIS_CERT = "OCSP response is not for this certificate"
"""The message of trust.py's error for a response whose CertID names another certificate."""


def check_peer_auth_cert(
    cert_der: bytes,
    conf: GlobalConf,
    now: datetime,
    *,
    expected_server: SecurityServerId | None = None,
    hosted_client: ClientId | None = None,
    ocsp_der: bytes | Sequence[bytes] | None,
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
) -> AuthenticatedPeer:
    """All five checks of the module docstring; returns the authenticated peer or raises why not."""
    peer = identify_peer(cert_der, conf, now, expected_server=expected_server, hosted_client=hosted_client)
    check_peer_ocsp(peer, ocsp_der, conf, now, skew_seconds=skew_seconds)
    return peer
