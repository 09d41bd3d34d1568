"""Whether a received message's signature and certificates are acceptable: pure decisions over a global
configuration and ``now``, shared by both proxies.

The client proxy checks the provider's signed response with them, the server proxy the client's signed request
(XROAD-REFERENCE.md §4.3, §4.4; X-Road ``SignatureVerifier``). :class:`TrustAnchors` holds the certificates a
configuration approves, parsed once; :class:`TrustCache` keeps them for the configuration last asked about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence

from cryptography import x509

from security_server.core.certprofile import FEDBUS_PROFILE, member_from_signing_cert_as
from security_server.core.errors import BusError, IncorrectCertificate, IncorrectValidationInfo, InvalidCertPath
from security_server.core.globalconf import GlobalConf
from security_server.core.hashchain import SIG_HASH_CHAIN, SIG_HASH_CHAIN_RESULT
from security_server.core.identifiers import ClientId
from security_server.core.signature import VerifiedSignature, verify_signature
from security_server.core.soapattachments import expected_uris, part_resolver
from security_server.core.trust import CERT_DECODE_ERRORS, check_ocsp_response, verify_cert_path

MESSAGE_URI = "/message.xml"
"""The detached reference of a single-part message (XROAD-REFERENCE.md §4.2)."""


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The approved CA certificates, intermediates and OCSP responder certificates of a global configuration,
    parsed once per configuration."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    responders: tuple[x509.Certificate, ...]

    @classmethod
    def of(cls, conf: GlobalConf) -> TrustAnchors:
        """Parse the certificates that ``conf`` lists."""
        load = x509.load_der_x509_certificate
        return cls(
            roots=tuple(load(der) for der in conf.approved_roots()),
            intermediates=tuple(load(der) for der in conf.intermediate_cas()),
            responders=tuple(load(der) for der in conf.ocsp_responder_certs()),
        )


class TrustCache:
    """Keeps the :class:`TrustAnchors` of the configuration last asked about (a new configuration object
    replaces it; the configuration client swaps in a new object on every applied download)."""

    def __init__(self) -> None:
        self._conf: GlobalConf | None = None
        self._anchors: TrustAnchors | None = None

    def get(self, conf: GlobalConf) -> TrustAnchors:
        """The anchors of ``conf``."""
        if self._conf is not conf or self._anchors is None:
            self._anchors = TrustAnchors.of(conf)
            self._conf = conf
        return self._anchors


def check_cert_and_ocsp(
    cert: x509.Certificate,
    ocsp_responses: Sequence[bytes],
    conf: GlobalConf,
    anchors: TrustAnchors,
    now: datetime,
    *,
    extra_certs: Sequence[x509.Certificate] = (),
) -> None:
    """Raise unless ``cert`` chains to an approved CA at ``now`` and one of ``ocsp_responses`` says it is good
    and is fresh (XROAD-REFERENCE.md §4.3 checks 2 and 3, §4.4).

    ``invalid_cert_path`` when there is no chain, ``cert_validation`` for a certificate out of its validity or
    revoked, ``incorrect_validation_info`` when no response is authentic, about this certificate and fresh.
    """
    path = verify_cert_path(cert, (*anchors.intermediates, *extra_certs), anchors.roots, now)
    if len(path) < 2:
        raise InvalidCertPath("an approved CA certificate cannot sign messages or authenticate a server")
    issuer = path[1]
    if not ocsp_responses:
        raise IncorrectValidationInfo("no OCSP response for the certificate")
    problems: list[BusError] = []
    for ocsp_der in ocsp_responses:
        try:
            check_ocsp_response(
                ocsp_der,
                cert,
                issuer,
                now,
                freshness_seconds=conf.ocsp_freshness_seconds,
                trusted_responders=anchors.responders,
            )
            return
        except IncorrectValidationInfo as err:
            problems.append(err)  # maybe another response is the one for this certificate
    raise problems[0]


def signer_member(cert: x509.Certificate, conf: GlobalConf, instance: str) -> ClientId:
    """The member a signing certificate belongs to, read with the certificate profile of the approved CA that
    issued it (X-Road ``GlobalConfImpl.getSubjectName``); ``instance`` is the expected member's. A certificate whose
    issuer is not an approved CA is read with fedbus's profile: the path check refuses it after this. Cached per
    certificate, profile and instance (core/certprofile.py)."""
    try:
        ca = conf.approved_ca_for(cert.issuer)
    except CERT_DECODE_ERRORS:
        ca = None  # an undecodable issuer: fedbus's profile reads (and refuses) it as before
    profile = FEDBUS_PROFILE if ca is None else ca.certificate_profile
    return member_from_signing_cert_as(cert, profile, instance)


def verify_member_signature(
    signature_xml: bytes,
    parts: Mapping[str, bytes],
    member: ClientId,
    conf: GlobalConf,
    anchors: TrustAnchors,
    now: datetime,
    *,
    expected_parts: Sequence[str] = (MESSAGE_URI,),
) -> VerifiedSignature:
    """Verify a message signature and that the signer is ``member`` (a subsystem signs with its member's key).

    ``parts`` maps the detached URIs (``/message.xml``, ``/attachmentN``, and for a hash-chain signature
    ``/sig-hashchainresult.xml`` and ``/sig-hashchain.xml``) to their bytes; every URI in ``expected_parts`` (the
    message and its attachments or REST body) must be covered. The checks: structure and value (core/signature.py), the
    signer's identity from the signing certificate under its CA's profile (``incorrect_certificate`` when it is
    another member, X-Road ``SignatureVerifier.verifySignerName``), then the certificate path and the OCSP
    response embedded in the signature (:func:`check_cert_and_ocsp`).
    """
    verified = verify_signature(signature_xml, parts.get, expected_parts=tuple(expected_parts))
    signer = signer_member(verified.signing_cert, conf, member.instance)
    if signer != member.member:
        raise IncorrectCertificate(
            "Name in certificate does not match name in message",
            reason=f"message is signed by {signer}, its client is {member}",
        )
    check_cert_and_ocsp(
        verified.signing_cert, verified.ocsp_responses, conf, anchors, now, extra_certs=verified.extra_certs
    )
    return verified


def signed_part_map(
    message: bytes, attachments: Sequence[bytes], hashchain_result: bytes | None, hashchain: bytes | None
) -> dict[str, bytes]:
    """The detached parts a received signature may reference, by URI (for :func:`verify_member_signature`)."""
    resolve = part_resolver(message, attachments, hashchain_result, hashchain)
    uris = [*expected_uris(len(attachments)), SIG_HASH_CHAIN_RESULT, SIG_HASH_CHAIN]
    return {uri: data for uri in uris if (data := resolve(uri)) is not None}


def verify_message(
    signature_xml: bytes,
    message: bytes,
    attachments: Sequence[bytes],
    hashchain_result: bytes | None,
    hashchain: bytes | None,
    member: ClientId,
    conf: GlobalConf,
    anchors: TrustAnchors,
    now: datetime,
) -> VerifiedSignature:
    """:func:`verify_member_signature` over one received message and its attachments (or REST body), every part
    required to be covered."""
    parts = signed_part_map(message, attachments, hashchain_result, hashchain)
    return verify_member_signature(
        signature_xml, parts, member, conf, anchors, now, expected_parts=expected_uris(len(attachments))
    )
