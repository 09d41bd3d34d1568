"""XAdES signatures as X-Road makes and checks them: sign one message, a batch, or verify.

The format (XROAD-REFERENCE.md §4.2; X-Road ``SignatureXmlBuilder``, ``SignatureCtx``, ``BatchSigner``,
``SignatureVerifier``) is an ``asic:XAdESSignatures`` document holding one ``ds:Signature Id="signature"``:

* ``SignedInfo`` canonicalized with inclusive C14N 1.0, signed with RSA-SHA512 by default (ECDSA allowed).
* One detached reference: ``/message.xml`` (the raw message bytes, digested as they are, no transforms), or
  ``/sig-hashchainresult.xml`` when the signature covers a hash chain (a message with attachments, or a batch
  of messages signed at once); plus ``#signed-properties`` (Type ``http://uri.etsi.org/01903#SignedProperties``).
* ``SignedProperties``: ``SigningTime``, ``SigningCertificate`` (SHA-512 ``CertDigest`` + ``IssuerSerial``),
  ``SignaturePolicyIdentifier`` (``urn:oid:1.3.6.1.4.1.3516.16.2``) and ``DataObjectFormat/MimeType``.
* ``UnsignedProperties``: the intermediate certificates (``CompleteCertificateRefs``, ``CertificateValues``),
  the OCSP responses (``RevocationValues``), and later a ``SignatureTimeStamp`` for single timestamps.

Signing builds the document from canonical-form templates (no XML library on the hot path) and signs the
canonical ``SignedInfo`` with ``cryptography``; verifying parses once with the hardened parser and uses lxml's
C14N. Whether the signing certificate is trusted (chain to an approved CA, fresh good OCSP, owned by the
client member) is decided elsewhere (``core.trust``): :class:`VerifiedSignature` hands over the certificate
and the OCSP responses for that.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Collection, Sequence, Union

from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from security_server.core import digests, hashchain
from security_server.core.digests import DigestAlgorithm
from security_server.core.errors import (
    BusError,
    HashChainUnusedInputs,
    InvalidHashChain,
    InvalidSignatureValue,
    MalformedSignature,
)
from security_server.core.hashchain import MESSAGE, SIG_HASH_CHAIN, SIG_HASH_CHAIN_RESULT, attachment_uri
from security_server.core.safexml import parse_xml

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
"""XML-DSig namespace."""
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
"""XAdES 1.3.2 namespace."""
ASIC_NS = "http://uri.etsi.org/02918/v1.2.1#"
"""Namespace of ``asic:XAdESSignatures`` as X-Road 7 writes it."""
ASIC_NS_OLD = "http://uri.etsi.org/02918/v1.1.1#"
"""Namespace of ``asic:XAdESSignatures`` in signatures from older X-Road versions (still accepted)."""
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
"""Inclusive C14N 1.0: what X-Road canonicalizes ``SignedInfo`` with."""
C14N_WITH_COMMENTS = C14N + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
"""Exclusive C14N 1.0 (accepted when verifying; newer X-Road signers use it for non-batch signatures)."""
EXC_C14N_WITH_COMMENTS = EXC_C14N + "WithComments"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
"""``Type`` of the reference to the XAdES ``SignedProperties``."""

SIGNATURE_POLICY_ID = "urn:oid:1.3.6.1.4.1.3516.16.2"
"""X-Road's signature policy: "Profile for High Performance Digital Signatures (version 1.2)"."""
SIGNATURE_POLICY_DESCRIPTION = "Profile for High Performance Digital Signatures (version 1.2)"
SIGNATURE_POLICY_SHA512 = "BuO0EDNfkxSVlUbxCzmQPzX1AUF1/xx9ytWHk3/6SAOePxQiniEfDYk+90QeYb3lWpV3Izhuz9fKaYyE+lTcXw=="
SIGNATURE_POLICY_SPURI = "https://repo.cyber.ee/dsig-profile-1.2.pdf"

MIME_TEXT_XML = "text/xml"
MIME_HASH_CHAIN_RESULT = "application/hash-chain-result"

MAX_SIGNATURE_BYTES = 1024 * 1024
"""Largest signature document we parse (X-Road's carry a few certificates and OCSP responses: ~10 KB)."""

# Ids X-Road gives the parts of its signatures (SignatureXmlBuilder, MessageFileNames).
_ID_SIGNATURE = "signature"
_ID_SIGNED_PROPERTIES = "signed-properties"
_ID_SIGNATURE_VALUE = "signature-value"
_ID_REFERENCE = "signature-reference-"


# --- algorithms ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignatureAlgorithm:
    """An XML-DSig signature algorithm: its URI, its digest and the kind of key it needs."""

    uri: str
    digest: DigestAlgorithm
    kind: str  # "rsa" (PKCS#1 v1.5), "rsa-pss" (MGF1, salt = digest size) or "ecdsa" (raw r||s)

    def __post_init__(self) -> None:
        if self.kind not in ("rsa", "rsa-pss", "ecdsa"):
            raise ValueError(f"unknown signature key kind {self.kind!r}")


_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_MORE07 = "http://www.w3.org/2007/05/xmldsig-more#"
RSA_SHA256 = SignatureAlgorithm(_MORE + "rsa-sha256", digests.SHA256, "rsa")
RSA_SHA384 = SignatureAlgorithm(_MORE + "rsa-sha384", digests.SHA384, "rsa")
RSA_SHA512 = SignatureAlgorithm(_MORE + "rsa-sha512", digests.SHA512, "rsa")
"""X-Road's default signature algorithm (``SHA512withRSA``)."""
RSA_PSS_SHA256 = SignatureAlgorithm(_MORE07 + "sha256-rsa-MGF1", digests.SHA256, "rsa-pss")
RSA_PSS_SHA384 = SignatureAlgorithm(_MORE07 + "sha384-rsa-MGF1", digests.SHA384, "rsa-pss")
RSA_PSS_SHA512 = SignatureAlgorithm(_MORE07 + "sha512-rsa-MGF1", digests.SHA512, "rsa-pss")
ECDSA_SHA256 = SignatureAlgorithm(_MORE + "ecdsa-sha256", digests.SHA256, "ecdsa")
ECDSA_SHA384 = SignatureAlgorithm(_MORE + "ecdsa-sha384", digests.SHA384, "ecdsa")
ECDSA_SHA512 = SignatureAlgorithm(_MORE + "ecdsa-sha512", digests.SHA512, "ecdsa")
"""ECDSA with SHA-512 (``SHA512withECDSA``), allowed by X-Road for EC signing keys."""

SIGNATURE_ALGORITHMS: dict[str, SignatureAlgorithm] = {
    algorithm.uri: algorithm
    for algorithm in (
        RSA_SHA256, RSA_SHA384, RSA_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512,
        ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512,
    )
}
"""Signature algorithms accepted when verifying, by URI (SHA-1 ones are refused)."""


PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]
SignFunction = Callable[[bytes], bytes]
"""Signs the canonical ``SignedInfo`` bytes with the algorithm asked for; returns the signature as
``cryptography`` produces it (PKCS#1 bytes for RSA, DER ``Ecdsa-Sig-Value`` for ECDSA). A signer that holds
its key elsewhere (a signer service, later PKCS#11) fits here."""


# --- values -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessagePart:
    """A part of a message to sign: its URI (``/message.xml``, ``/attachmentN``) and its digest."""

    name: str
    digest: bytes = field(repr=False)
    algorithm: DigestAlgorithm = digests.DEFAULT

    def __post_init__(self) -> None:
        if not self.name.startswith("/") or "#" in self.name:
            raise ValueError(f"part name {self.name!r} is not a detached reference URI")
        if len(self.digest) != self.algorithm.size:
            raise ValueError(f"digest of {len(self.digest)} bytes is not a {self.algorithm.name} digest")

    @classmethod
    def of(cls, name: str, data: bytes, algorithm: DigestAlgorithm = digests.DEFAULT) -> MessagePart:
        """The part named ``name`` holding ``data``."""
        return cls(name, algorithm.digest(data), algorithm)


@dataclass(frozen=True, slots=True)
class SignatureData:
    """A signature as it travels and is logged: the signature XML, and for hash-chain signatures the
    shared ``HashChainResult`` and this message's own ``HashChain`` (X-Road ``SignatureData``)."""

    signature_xml: bytes
    hash_chain_result: bytes | None = None
    hash_chain: bytes | None = None

    def __post_init__(self) -> None:
        if (self.hash_chain_result is None) != (self.hash_chain is None):
            raise ValueError("hash chain result and hash chain come together")


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a signature proved, and what the trust checks still need (certificate, OCSP, extra certs)."""

    signing_cert: x509.Certificate
    ocsp_responses: tuple[bytes, ...] = field(repr=False)
    extra_certs: tuple[x509.Certificate, ...]
    signing_time: datetime
    signature_value: bytes = field(repr=False)
    algorithm: SignatureAlgorithm
    references: tuple[str, ...]
    covered_parts: frozenset[str]
    hash_chain: hashchain.HashChainVerification | None = None
    timestamp_tokens: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def signing_cert_der(self) -> bytes:
        """The signing certificate, DER encoded."""
        return self.signing_cert.public_bytes(serialization.Encoding.DER)


# --- building -----------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_XML_CHARS = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    """``value`` escaped as C14N writes text, so the document and its canonical form agree."""
    if _XML_CHARS.search(value):
        raise ValueError("text holds characters that XML cannot carry")
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def _attr(value: str) -> str:
    """``value`` escaped as C14N writes attribute values."""
    if _XML_CHARS.search(value):
        raise ValueError("attribute holds characters that XML cannot carry")
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
        .replace("\t", "&#x9;").replace("\n", "&#xA;").replace("\r", "&#xD;")
    )


# The root declares every namespace; an inclusive-C14N subtree repeats them all on its apex, sorted by prefix.
_ROOT_NAMESPACES = f'xmlns:asic="{ASIC_NS}" xmlns:ds="{DS_NS}" xmlns:xades="{XADES_NS}" xmlns:xsi="{XSI_NS}"'


def _digest_alg_and_value(algorithm: DigestAlgorithm, digest_b64: str) -> str:
    return (
        f'<ds:DigestMethod Algorithm="{algorithm.uri}"></ds:DigestMethod>'
        f"<ds:DigestValue>{digest_b64}</ds:DigestValue>"
    )


@dataclass(frozen=True, slots=True)
class _CertInfo:
    der_b64: str
    digest_b64: str
    issuer: str
    serial: str


@functools.lru_cache(maxsize=64)
def _cert_info(cert: x509.Certificate, algorithm: DigestAlgorithm) -> _CertInfo:
    der = cert.public_bytes(serialization.Encoding.DER)
    return _CertInfo(_b64(der), _b64(algorithm.digest(der)), _text(cert.issuer.rfc4514_string()), str(cert.serial_number))


def _cert_digest_and_issuer_serial(info: _CertInfo, algorithm: DigestAlgorithm) -> str:
    return (
        f"<xades:CertDigest>{_digest_alg_and_value(algorithm, info.digest_b64)}</xades:CertDigest>"
        f"<xades:IssuerSerial><ds:X509IssuerName>{info.issuer}</ds:X509IssuerName>"
        f"<ds:X509SerialNumber>{info.serial}</ds:X509SerialNumber></xades:IssuerSerial>"
    )


def _signing_time(now: datetime) -> str:
    """``SigningTime``: UTC to the millisecond, as ``strftime("%Y-%m-%dT%H:%M:%S.")`` writes it (a tenth of its cost)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    utc = now.astimezone(timezone.utc)
    year = f"{utc.year:04d}" if utc.year >= 1000 else utc.strftime("%Y")
    return (
        f"{year}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}."
        f"{utc.microsecond // 1000:03d}Z"
    )


_SIGNED_PROPERTIES_HEAD = "<xades:SignedSignatureProperties><xades:SigningTime>"


def _signed_properties_body(info: _CertInfo, algorithm: DigestAlgorithm, signing_time: str, mime_type: str) -> str:
    """``SignedProperties`` content in canonical form (``SignatureXmlBuilder.createSignedProperties``)."""
    return (
        f"{_SIGNED_PROPERTIES_HEAD}{signing_time}</xades:SigningTime>"
        "<xades:SigningCertificate><xades:Cert>"
        f"{_cert_digest_and_issuer_serial(info, algorithm)}"
        "</xades:Cert></xades:SigningCertificate>"
        "<xades:SignaturePolicyIdentifier><xades:SignaturePolicyId><xades:SigPolicyId>"
        f'<xades:Identifier Qualifier="OIDAsURN">{SIGNATURE_POLICY_ID}</xades:Identifier>'
        f"<xades:Description>{SIGNATURE_POLICY_DESCRIPTION}</xades:Description>"
        "</xades:SigPolicyId><xades:SigPolicyHash>"
        f"{_digest_alg_and_value(digests.SHA512, SIGNATURE_POLICY_SHA512)}"
        "</xades:SigPolicyHash><xades:SigPolicyQualifiers><xades:SigPolicyQualifier>"
        f"<xades:SPURI>{SIGNATURE_POLICY_SPURI}</xades:SPURI>"
        "</xades:SigPolicyQualifier></xades:SigPolicyQualifiers>"
        "</xades:SignaturePolicyId></xades:SignaturePolicyIdentifier>"
        "</xades:SignedSignatureProperties>"
        "<xades:SignedDataObjectProperties>"
        f'<xades:DataObjectFormat ObjectReference="#{_ID_REFERENCE}0">'
        f"<xades:MimeType>{mime_type}</xades:MimeType>"
        "</xades:DataObjectFormat></xades:SignedDataObjectProperties>"
        "</xades:SignedProperties>"
    )


def _unsigned_properties_head(intermediates: Sequence[x509.Certificate], algorithm: DigestAlgorithm) -> str:
    """``UnsignedProperties`` up to the OCSP values (``SignatureXmlBuilder.createUnsignedProperties``)."""
    parts = ["<xades:UnsignedProperties><xades:UnsignedSignatureProperties>"]
    if intermediates:
        infos = [_cert_info(cert, algorithm) for cert in intermediates]
        parts.append('<xades:CompleteCertificateRefs Id="complete-certificate-refs"><xades:CertRefs>')
        for number, info in enumerate(infos, start=1):
            parts.append(
                f'<xades:Cert URI="#encapsulated-cert-{number}">'
                f"{_cert_digest_and_issuer_serial(info, algorithm)}</xades:Cert>"
            )
        parts.append("</xades:CertRefs></xades:CompleteCertificateRefs><xades:CertificateValues>")
        for number, info in enumerate(infos, start=1):
            parts.append(
                f'<xades:EncapsulatedX509Certificate Id="encapsulated-cert-{number}">'
                f"{info.der_b64}</xades:EncapsulatedX509Certificate>"
            )
        parts.append("</xades:CertificateValues>")
    parts.append("<xades:RevocationValues><xades:OCSPValues>")
    return "".join(parts)


def _check_key(algorithm: SignatureAlgorithm, public_key: object) -> None:
    wants_ec = algorithm.kind == "ecdsa"
    if wants_ec and not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ValueError("an ECDSA signature needs an EC signing certificate")
    if not wants_ec and not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("an RSA signature needs an RSA signing certificate")


def _ec_size(public_key: ec.EllipticCurvePublicKey) -> int:
    return (public_key.curve.key_size + 7) // 8


def _sign_value(
    sign: PrivateKey | SignFunction, algorithm: SignatureAlgorithm, data: bytes, cert: x509.Certificate
) -> bytes:
    """The ``SignatureValue`` bytes: PKCS#1 for RSA, raw ``r || s`` for ECDSA (XML-DSig, RFC 4051 §3.3)."""
    hash_algorithm = algorithm.digest.crypto_hash()
    if isinstance(sign, rsa.RSAPrivateKey):
        if algorithm.kind == "rsa-pss":
            pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=algorithm.digest.size)
            value = sign.sign(data, pss, hash_algorithm)
        elif algorithm.kind == "rsa":
            value = sign.sign(data, padding.PKCS1v15(), hash_algorithm)
        else:
            raise ValueError("an RSA key cannot make an ECDSA signature")
    elif isinstance(sign, ec.EllipticCurvePrivateKey):
        if algorithm.kind != "ecdsa":
            raise ValueError("an EC key makes ECDSA signatures only")
        value = sign.sign(data, ec.ECDSA(hash_algorithm))
    else:
        value = sign(data)
    if algorithm.kind != "ecdsa":
        return value
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)  # checked by _check_key
    size = _ec_size(public_key)
    r, s = decode_dss_signature(value)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@dataclass(frozen=True, slots=True)
class _SignatureTemplate:
    """One signer's signature document as bytes around the values that change per message (issue 18, lever 2).

    Filled with the signing time, the reference and its digest, the signed properties' digest, the signature
    value and the OCSP responses; nothing is parsed or serialised per message. Every piece is in the form
    inclusive C14N gives it, so ``SignedInfo`` and ``SignedProperties`` are signed and digested as written (the
    tests prove it against lxml, and the bytes against the builder this replaced).
    """

    digest: DigestAlgorithm
    signed_properties_tail: bytes  # after the SigningTime text, through </xades:SignedProperties>
    signed_info_head: bytes  # SignedInfo content up to the first reference's URI
    reference_digest_head: bytes  # after that URI, up to its DigestValue text
    properties_digest_head: bytes  # after that digest, up to the SignedProperties reference's DigestValue text
    key_info: bytes  # after the SignatureValue text, through <xades:SignedProperties Id=...>
    unsigned_head: bytes  # after </xades:SignedProperties>, through <xades:OCSPValues>


_NS = _ROOT_NAMESPACES.encode("ascii")
_SIGNED_INFO_C14N_OPEN = b"<ds:SignedInfo " + _NS + b">"
_SIGNED_PROPERTIES_C14N_OPEN = b"<xades:SignedProperties " + _NS + f' Id="{_ID_SIGNED_PROPERTIES}">'.encode("ascii")
_SIGNED_INFO_TAIL = b"</ds:DigestValue>\n</ds:Reference>\n</ds:SignedInfo>"
_DOCUMENT_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
    f'<asic:XAdESSignatures {_ROOT_NAMESPACES}><ds:Signature Id="{_ID_SIGNATURE}">\n<ds:SignedInfo>'
).encode("ascii")
_SIGNATURE_VALUE_HEAD = f'\n<ds:SignatureValue Id="{_ID_SIGNATURE_VALUE}">'.encode("ascii")
_OCSP_VALUE = '<xades:EncapsulatedOCSPValue Id="ocsp-response-{number}">{value}</xades:EncapsulatedOCSPValue>'
_DOCUMENT_TAIL = (
    b"</xades:OCSPValues></xades:RevocationValues></xades:UnsignedSignatureProperties></xades:UnsignedProperties>"
    b"</xades:QualifyingProperties></ds:Object>\n</ds:Signature></asic:XAdESSignatures>"
)


@functools.lru_cache(maxsize=64)
def _template(
    cert: x509.Certificate,
    algorithm: SignatureAlgorithm,
    mime_type: str,
    intermediates: tuple[x509.Certificate, ...],
) -> _SignatureTemplate:
    """The template of ``cert``'s signatures (remembered: a server signs with one or two keys)."""
    digest = algorithm.digest
    info = _cert_info(cert, digest)
    body = _signed_properties_body(info, digest, "", mime_type)
    return _SignatureTemplate(
        digest=digest,
        signed_properties_tail=body[len(_SIGNED_PROPERTIES_HEAD) :].encode("utf-8"),
        signed_info_head=(
            f'\n<ds:CanonicalizationMethod Algorithm="{C14N}"></ds:CanonicalizationMethod>\n'
            f'<ds:SignatureMethod Algorithm="{algorithm.uri}"></ds:SignatureMethod>\n'
            f'<ds:Reference Id="{_ID_REFERENCE}0" URI="'
        ).encode("ascii"),
        reference_digest_head=(
            f'">\n<ds:DigestMethod Algorithm="{digest.uri}"></ds:DigestMethod>\n<ds:DigestValue>'
        ).encode("ascii"),
        properties_digest_head=(
            "</ds:DigestValue>\n</ds:Reference>\n"
            f'<ds:Reference Id="{_ID_REFERENCE}1" Type="{SIGNED_PROPERTIES_TYPE}" URI="#{_ID_SIGNED_PROPERTIES}">\n'
            f'<ds:DigestMethod Algorithm="{digest.uri}"></ds:DigestMethod>\n<ds:DigestValue>'
        ).encode("ascii"),
        key_info=(
            "</ds:SignatureValue>\n"
            f"<ds:KeyInfo>\n<ds:X509Data>\n<ds:X509Certificate>{info.der_b64}</ds:X509Certificate>\n</ds:X509Data>\n"
            "</ds:KeyInfo>\n"
            f'<ds:Object><xades:QualifyingProperties Target="#{_ID_SIGNATURE}">'
            f'<xades:SignedProperties Id="{_ID_SIGNED_PROPERTIES}">'
        ).encode("ascii"),
        unsigned_head=_unsigned_properties_head(intermediates, digest).encode("utf-8"),
    )


def _build(
    reference_uri: str,
    reference_digest: bytes,
    mime_type: str,
    signing_cert: x509.Certificate,
    sign: PrivateKey | SignFunction,
    ocsp: Sequence[bytes],
    now: datetime,
    algorithm: SignatureAlgorithm,
    intermediates: Sequence[x509.Certificate],
) -> bytes:
    """The signature document, filled into the signer's template (X-Road ``SignatureXmlBuilder``)."""
    template = _template(signing_cert, algorithm, mime_type, tuple(intermediates))
    signed_properties_body = (
        _SIGNED_PROPERTIES_HEAD.encode("ascii") + _signing_time(now).encode("ascii") + template.signed_properties_tail
    )
    properties_digest = template.digest.digest(_SIGNED_PROPERTIES_C14N_OPEN + signed_properties_body)
    signed_info_body = b"".join((
        template.signed_info_head,
        _attr(reference_uri).encode("utf-8"),
        template.reference_digest_head,
        base64.b64encode(reference_digest),
        template.properties_digest_head,
        base64.b64encode(properties_digest),
        _SIGNED_INFO_TAIL,
    ))
    value = _sign_value(sign, algorithm, _SIGNED_INFO_C14N_OPEN + signed_info_body, signing_cert)
    ocsp_values = _ocsp_values(tuple(ocsp))
    return b"".join((
        _DOCUMENT_HEAD,
        signed_info_body,
        _SIGNATURE_VALUE_HEAD,
        base64.b64encode(value),
        template.key_info,
        signed_properties_body,
        template.unsigned_head,
        ocsp_values,
        _DOCUMENT_TAIL,
    ))


@functools.lru_cache(maxsize=64)
def _ocsp_values(ocsp: tuple[bytes, ...]) -> bytes:
    """The ``EncapsulatedOCSPValue`` elements (remembered: a signer sends the same response until it refreshes it)."""
    return "".join(
        _OCSP_VALUE.format(number=number, value=_b64(response)) for number, response in enumerate(ocsp, start=1)
    ).encode("ascii")


def _check_message(parts: Sequence[MessagePart], algorithm: DigestAlgorithm) -> None:
    if not parts:
        raise ValueError("a message has at least one part")
    for index, part in enumerate(parts):
        expected = MESSAGE if index == 0 else attachment_uri(index)
        if part.name != expected:
            raise ValueError(f"part {index} must be named {expected!r}, not {part.name!r}")
        if part.algorithm != algorithm:
            raise ValueError(f"part {part.name} is digested with {part.algorithm.name}, the signature uses {algorithm.name}")


def sign_batch(
    messages: Sequence[Sequence[MessagePart]],
    signing_cert: x509.Certificate,
    sign: PrivateKey | SignFunction,
    ocsp_der: bytes | Sequence[bytes],
    now: datetime,
    *,
    algorithm: SignatureAlgorithm = RSA_SHA512,
    intermediates: Sequence[x509.Certificate] = (),
) -> tuple[SignatureData, ...]:
    """One signature over ``messages``, and each message's :class:`SignatureData` (X-Road ``SignatureCtx``).

    Each message is its parts: ``/message.xml``, then ``/attachment1`` ... A lone message without
    attachments is signed directly (reference ``/message.xml``); anything else is signed through a hash
    chain (reference ``/sig-hashchainresult.xml``), each message receiving the shared result and its own
    chain, as X-Road's ``BatchSigner`` does. ``ocsp_der`` is the signing certificate's OCSP response, or
    several; ``intermediates`` are CA certificates between the signing certificate and its approved CA.
    ``sign`` is the private key or a :data:`SignFunction`; ``now`` (aware) becomes ``SigningTime``.
    """
    if not messages:
        raise ValueError("nothing to sign")
    for parts in messages:
        _check_message(parts, algorithm.digest)
    _check_key(algorithm, signing_cert.public_key())
    ocsp_responses = (ocsp_der,) if isinstance(ocsp_der, bytes) else tuple(ocsp_der)
    if not ocsp_responses:
        raise ValueError("a signature carries the OCSP response of its signing certificate")

    def build(uri: str, digest: bytes, mime_type: str) -> bytes:
        return _build(uri, digest, mime_type, signing_cert, sign, ocsp_responses, now, algorithm, intermediates)

    if len(messages) == 1 and len(messages[0]) == 1:
        return (SignatureData(build(MESSAGE, messages[0][0].digest, MIME_TEXT_XML)),)
    chains = hashchain.build_hash_chain(
        [[part.digest for part in parts] for parts in messages],
        chain_uri=SIG_HASH_CHAIN,
        data_uri=MESSAGE,
        algorithm=algorithm.digest,
    )
    signature_xml = build(SIG_HASH_CHAIN_RESULT, algorithm.digest.digest(chains.result), MIME_HASH_CHAIN_RESULT)
    return tuple(SignatureData(signature_xml, chains.result, chain) for chain in chains.chains)


def build_signature(
    parts: Sequence[MessagePart],
    signing_cert: x509.Certificate,
    sign: PrivateKey | SignFunction,
    ocsp_der: bytes | Sequence[bytes],
    now: datetime,
    *,
    algorithm: SignatureAlgorithm = RSA_SHA512,
    intermediates: Sequence[x509.Certificate] = (),
) -> SignatureData:
    """Sign one message: ``parts`` are ``/message.xml`` and its attachments (see :func:`sign_batch`)."""
    return sign_batch(
        [parts], signing_cert, sign, ocsp_der, now, algorithm=algorithm, intermediates=intermediates
    )[0]


# --- reading ------------------------------------------------------------------------------------------------


@functools.cache
def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


_DS = functools.partial(_q, DS_NS)
_XADES = functools.partial(_q, XADES_NS)


def _malformed(message: str, reason: str | None = None, subcode: str | None = None) -> MalformedSignature:
    return MalformedSignature(message, reason=reason, subcode=subcode)


def _elements(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _only(element: etree._Element, tag: str, what: str) -> etree._Element:
    found = [child for child in element if child.tag == tag]
    if len(found) != 1:
        raise _malformed(f"signature must have exactly one {what}", reason=f"{len(found)} {what} elements in signature")
    return found[0]


def _base64(element: etree._Element, what: str) -> bytes:
    if len(element):
        raise _malformed(f"unexpected content in {what}")
    text = "".join((element.text or "").split())
    if not text:
        raise _malformed(f"empty {what} in signature")
    try:
        return _canonical_base64(text)
    except (binascii.Error, ValueError) as err:
        raise _malformed(f"{what} in signature is {err}") from err


@functools.lru_cache(maxsize=256)
def _canonical_base64(text: str) -> bytes:
    """The bytes ``text`` encodes; ValueError unless it is base64 in canonical form (remembered: every message
    carries the same certificate and OCSP response texts)."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError("not base64") from err
    if base64.b64encode(decoded).decode("ascii") != text:
        # Non-canonical base64 (stray bits in the last character) would let two texts carry one value.
        raise ValueError("not canonical base64")
    return decoded


@functools.lru_cache(maxsize=256)
def _parse_cert(der: bytes) -> x509.Certificate:
    """A certificate carried in a signature (remembered: the same few signers' certificates come with every message)."""
    return x509.load_der_x509_certificate(der)


def _load_cert(der: bytes, what: str) -> x509.Certificate:
    try:
        return _parse_cert(der)
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as err:
        raise _malformed(f"{what} in signature is not an X.509 certificate") from err


def _parse_signature(signature_xml: bytes, max_bytes: int) -> etree._Element:
    """The ``ds:Signature`` element: the root, or the only child of ``asic:XAdESSignatures``."""
    try:
        root = parse_xml(signature_xml, max_bytes=max_bytes)
    except BusError as err:
        raise _malformed("signature is not well-formed XML", reason=f"signature is not well-formed XML: {err.reason}") from err
    if root.tag == _DS("Signature"):
        return root
    if root.tag not in (_q(ASIC_NS, "XAdESSignatures"), _q(ASIC_NS_OLD, "XAdESSignatures")):
        raise _malformed("not an XAdES signature document", reason=f"unexpected signature root {root.tag}")
    children = _elements(root)
    if len(children) != 1 or children[0].tag != _DS("Signature"):
        raise _malformed("XAdESSignatures must hold exactly one signature")
    return children[0]


_XSD_DATETIME = re.compile(
    r"(?P<date>-?\d{4,}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d{2}:\d{2})?\Z"
)


def parse_xsd_datetime(text: str) -> datetime:
    """An ``xsd:dateTime`` as an aware datetime (UTC when the zone is absent, as X-Road writes UTC)."""
    match = _XSD_DATETIME.match(text.strip())
    if match is None:
        raise _malformed("signing time is not an xsd:dateTime", reason=f"bad signing time {text!r}")
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    zone = match["zone"] or "Z"
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}")
        offset = timedelta() if zone == "Z" else timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * (
            1 if zone[0] == "+" else -1
        )
        return parsed.replace(tzinfo=timezone(offset)).astimezone(timezone.utc)
    except ValueError as err:
        raise _malformed("signing time is not an xsd:dateTime", reason=f"bad signing time {text!r}") from err


@dataclass(frozen=True, slots=True)
class _Reference:
    uri: str
    ref_type: str | None
    transforms: tuple[etree._Element, ...]
    algorithm: DigestAlgorithm
    digest: bytes


def _read_reference(element: etree._Element) -> _Reference:
    uri = element.get("URI")
    if uri is None:
        raise _malformed("signature reference without URI")
    children = _elements(element)
    transforms: tuple[etree._Element, ...] = ()
    if children and children[0].tag == _DS("Transforms"):
        transforms = tuple(_elements(children.pop(0)))
        if not transforms or any(t.tag != _DS("Transform") for t in transforms):
            raise _malformed("malformed reference transforms")
    if len(children) != 2 or children[0].tag != _DS("DigestMethod") or children[1].tag != _DS("DigestValue"):
        raise _malformed("malformed signature reference", reason=f"malformed signature reference to {uri!r}")
    algorithm = digests.by_uri(children[0].get("Algorithm") or "")
    return _Reference(uri, element.get("Type"), transforms, algorithm, _base64(children[1], "reference digest"))


def _canonicalize(element: etree._Element, method: etree._Element | None) -> bytes:
    """``element`` as C14N octets: ``method`` is a ``CanonicalizationMethod``/``Transform``, None for the default."""
    algorithm = C14N if method is None else method.get("Algorithm")
    prefixes: list[str] | None = None
    if algorithm in (EXC_C14N, EXC_C14N_WITH_COMMENTS) and method is not None:
        inclusive = [child for child in _elements(method) if etree.QName(child).localname == "InclusiveNamespaces"]
        if inclusive:
            prefixes = (inclusive[0].get("PrefixList") or "").split()
    elif method is not None and _elements(method):
        raise _malformed("unexpected canonicalization parameters")
    if algorithm not in (C14N, C14N_WITH_COMMENTS, EXC_C14N, EXC_C14N_WITH_COMMENTS):
        raise _malformed("unsupported canonicalization", reason=f"unsupported canonicalization {algorithm!r}")
    try:
        return etree.tostring(
            element,
            method="c14n",
            exclusive=algorithm in (EXC_C14N, EXC_C14N_WITH_COMMENTS),
            with_comments=algorithm in (C14N_WITH_COMMENTS, EXC_C14N_WITH_COMMENTS),
            inclusive_ns_prefixes=prefixes,
        )
    except (etree.C14NError, ValueError) as err:
        # libxml2 refuses e.g. relative namespace URIs, which C14N 1.0 leaves undefined.
        raise _malformed("signature cannot be canonicalized", reason=f"C14N failed: {err}") from err


def _raw_ecdsa_to_der(value: bytes, public_key: ec.EllipticCurvePublicKey) -> bytes:
    size = _ec_size(public_key)
    if len(value) != 2 * size:
        raise InvalidSignatureValue("signature value has the wrong length for the key")
    return encode_dss_signature(int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big"))


def _check_signature_value(
    cert: x509.Certificate, algorithm: SignatureAlgorithm, value: bytes, data: bytes
) -> None:
    hash_algorithm = algorithm.digest.crypto_hash()
    try:
        public_key = cert.public_key()
        if algorithm.kind == "ecdsa":
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise InvalidSignatureValue("signature algorithm does not fit the signing key")
            public_key.verify(_raw_ecdsa_to_der(value, public_key), data, ec.ECDSA(hash_algorithm))
        else:
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise InvalidSignatureValue("signature algorithm does not fit the signing key")
            scheme: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=algorithm.digest.size)
                if algorithm.kind == "rsa-pss"
                else padding.PKCS1v15()
            )
            public_key.verify(value, data, scheme, hash_algorithm)
    except InvalidSignature as err:
        raise InvalidSignatureValue("signature is not valid") from err
    except (UnsupportedAlgorithm, ValueError) as err:
        raise InvalidSignatureValue("signature is not valid", reason=f"signature cannot be checked: {err}") from err


def _issuer_serial_v2_serial(der: bytes) -> int:
    try:
        issuer_serial = asn1_cms.IssuerSerial.load(der)
        return int(issuer_serial["serial"].native)
    except (ValueError, TypeError, KeyError) as err:
        raise _malformed("malformed IssuerSerialV2 in signing certificate") from err


@dataclass(frozen=True, slots=True)
class _CertRef:
    algorithm: DigestAlgorithm
    digest: bytes
    serial: int | None


def _read_cert_ref(cert: etree._Element) -> _CertRef:
    """A XAdES ``Cert`` (``CertDigest`` and ``IssuerSerial`` or ``IssuerSerialV2``)."""
    cert_digest = _only(cert, _XADES("CertDigest"), "CertDigest")
    method = _only(cert_digest, _DS("DigestMethod"), "DigestMethod")
    value = _only(cert_digest, _DS("DigestValue"), "DigestValue")
    serial: int | None = None
    issuer_serial = [child for child in cert if child.tag in (_XADES("IssuerSerial"), _XADES("IssuerSerialV2"))]
    if issuer_serial and issuer_serial[0].tag == _XADES("IssuerSerial"):
        number = _only(issuer_serial[0], _DS("X509SerialNumber"), "X509SerialNumber")
        try:
            serial = int((number.text or "").strip())
        except ValueError as err:
            raise _malformed("malformed serial number in signing certificate reference") from err
    elif issuer_serial:
        serial = _issuer_serial_v2_serial(_base64(issuer_serial[0], "IssuerSerialV2"))
    return _CertRef(digests.by_uri(method.get("Algorithm") or ""), _base64(value, "certificate digest"), serial)


def _matches(ref: _CertRef, cert: x509.Certificate) -> bool:
    return _cert_digest(cert, ref.algorithm) == ref.digest and (ref.serial is None or ref.serial == cert.serial_number)


@functools.lru_cache(maxsize=256)
def _cert_digest(cert: x509.Certificate, algorithm: DigestAlgorithm) -> bytes:
    """The digest of the certificate's DER (remembered: the same signers' certificates come with every message)."""
    return algorithm.digest(cert.public_bytes(serialization.Encoding.DER))


def _extra_certs(unsigned: etree._Element | None, ids: dict[str, etree._Element]) -> tuple[x509.Certificate, ...]:
    """Intermediate certificates from ``CertificateValues``, checked against ``CompleteCertificateRefs``."""
    if unsigned is None:
        return ()
    values = unsigned.findall(f".//{_XADES('EncapsulatedX509Certificate')}")
    certs = tuple(_load_cert(_base64(value, "certificate"), "extra certificate") for value in values)
    for ref in unsigned.findall(f".//{_XADES('CertRefs')}/{_XADES('Cert')}"):
        uri = ref.get("URI") or ""
        target = ids.get(uri[1:]) if uri.startswith("#") else None
        if target is None or target.tag != _XADES("EncapsulatedX509Certificate"):
            raise _malformed("certificate reference without its certificate", reason=f"no certificate for {uri!r}")
        cert = _load_cert(_base64(target, "certificate"), "extra certificate")
        if not _matches(_read_cert_ref(ref), cert):
            raise _malformed("extra certificate digest does not match")
    return certs


@dataclass(frozen=True, slots=True)
class _ParsedSignature:
    signature: etree._Element
    signed_info: etree._Element
    c14n_method: etree._Element
    algorithm: SignatureAlgorithm
    references: tuple[_Reference, ...]
    signed_properties: etree._Element
    value: bytes
    key_info_certs: tuple[x509.Certificate, ...]
    ids: dict[str, etree._Element]


def _read(signature_xml: bytes, max_bytes: int) -> _ParsedSignature:
    signature = _parse_signature(signature_xml, max_bytes)
    children = _elements(signature)
    if len(children) < 2 or children[0].tag != _DS("SignedInfo") or children[1].tag != _DS("SignatureValue"):
        raise _malformed("signature must start with SignedInfo and SignatureValue")
    signed_info, signature_value = children[0], children[1]
    info_children = _elements(signed_info)
    if (
        len(info_children) < 3
        or info_children[0].tag != _DS("CanonicalizationMethod")
        or info_children[1].tag != _DS("SignatureMethod")
        or any(child.tag != _DS("Reference") for child in info_children[2:])
    ):
        raise _malformed("malformed SignedInfo")
    algorithm = SIGNATURE_ALGORITHMS.get(info_children[1].get("Algorithm") or "")
    if algorithm is None or _elements(info_children[1]):
        raise _malformed("unsupported signature algorithm", reason=f"unsupported signature method {info_children[1].get('Algorithm')!r}")
    references = tuple(_read_reference(ref) for ref in info_children[2:])

    ids: dict[str, etree._Element] = {}
    for element in signature.iter():
        element_id = element.get("Id") if isinstance(element.tag, str) else None
        if element_id is not None:
            if element_id in ids:
                # Two elements with one Id would let a reference point at one and a reader at the other.
                raise _malformed("duplicate Id in signature", reason=f"duplicate Id {element_id!r} in signature")
            ids[element_id] = element

    signed_properties = [
        ids.get(ref.uri[1:]) for ref in references if ref.uri.startswith("#")
    ]
    targets = [target for target in signed_properties if target is not None and target.tag == _XADES("SignedProperties")]
    if len(targets) != 1:
        raise _malformed("signature must sign exactly one SignedProperties")

    key_infos = [child for child in children[2:] if child.tag == _DS("KeyInfo")]
    if len(key_infos) != 1:
        raise _malformed("signature must carry its certificate in KeyInfo")
    cert_elements = key_infos[0].findall(f"{_DS('X509Data')}/{_DS('X509Certificate')}")
    if not cert_elements:
        raise _malformed("signature does not contain signing certificate")
    certs = tuple(_load_cert(_base64(element, "certificate"), "KeyInfo certificate") for element in cert_elements)
    return _ParsedSignature(
        signature=signature,
        signed_info=signed_info,
        c14n_method=info_children[0],
        algorithm=algorithm,
        references=references,
        signed_properties=targets[0],
        value=_base64(signature_value, "signature value"),
        key_info_certs=certs,
        ids=ids,
    )


class _TreeSignature:
    """A signature read with the hardened parser: any form XML-DSig allows (X-Road's, older X-Road's, ours).

    What :func:`verify_signature` reads after the structure (the signing certificate reference, the signing time,
    the unsigned properties) is read when asked, in the verifier's order, so a document with several defects
    gets X-Road's verdict for the first one."""

    __slots__ = ("parsed",)

    def __init__(self, parsed: _ParsedSignature) -> None:
        self.parsed = parsed

    @property
    def algorithm(self) -> SignatureAlgorithm:
        return self.parsed.algorithm

    @property
    def references(self) -> tuple[_Reference, ...]:
        return self.parsed.references

    @property
    def value(self) -> bytes:
        return self.parsed.value

    @property
    def key_info_certs(self) -> tuple[x509.Certificate, ...]:
        return self.parsed.key_info_certs

    def signed_info_octets(self) -> bytes:
        """``SignedInfo`` canonicalized as its ``CanonicalizationMethod`` says."""
        return _canonicalize(self.parsed.signed_info, self.parsed.c14n_method)

    def same_document_octets(self, ref: _Reference) -> bytes:
        """What a ``#id`` reference covers: its target after the reference's transform (C14N by default)."""
        target = self.parsed.ids.get(ref.uri[1:])
        if target is None:
            raise _malformed("signature reference target not found", reason=f"no element with Id {ref.uri[1:]!r}")
        if len(ref.transforms) > 1:
            raise _malformed("unsupported reference transforms")
        return _canonicalize(target, ref.transforms[0] if ref.transforms else None)

    def signing_cert_ref(self) -> _CertRef:
        """The first ``Cert`` of the signed ``SigningCertificate`` (or ``SigningCertificateV2``)."""
        signed_properties = self.parsed.signed_properties
        signing_certificate = signed_properties.find(
            f"{_XADES('SignedSignatureProperties')}/{_XADES('SigningCertificate')}"
        )
        if signing_certificate is None:
            signing_certificate = signed_properties.find(
                f"{_XADES('SignedSignatureProperties')}/{_XADES('SigningCertificateV2')}"
            )
        if signing_certificate is None:
            raise _malformed("signature has no signed SigningCertificate")
        cert_refs = [_read_cert_ref(cert) for cert in signing_certificate if cert.tag == _XADES("Cert")]
        if not cert_refs:
            raise _malformed("signature has no signed SigningCertificate")
        return cert_refs[0]

    def signing_time(self) -> datetime:
        """The signed ``SigningTime``."""
        element = self.parsed.signed_properties.find(f"{_XADES('SignedSignatureProperties')}/{_XADES('SigningTime')}")
        if element is None:
            raise _malformed("signature has no SigningTime")
        return parse_xsd_datetime(element.text or "")

    def unsigned(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[x509.Certificate, ...]]:
        """The OCSP responses, the timestamp tokens and the checked intermediate certificates."""
        unsigned = self.parsed.signature.find(
            f"{_DS('Object')}/{_XADES('QualifyingProperties')}/{_XADES('UnsignedProperties')}"
        )
        ocsp: tuple[bytes, ...] = ()
        tokens: tuple[bytes, ...] = ()
        if unsigned is not None:
            ocsp = tuple(
                _base64(value, "OCSP response") for value in unsigned.findall(f".//{_XADES('EncapsulatedOCSPValue')}")
            )
            tokens = tuple(
                _base64(value, "timestamp")
                for value in unsigned.findall(f".//{_XADES('SignatureTimeStamp')}/{_XADES('EncapsulatedTimeStamp')}")
            )
        if not ocsp:
            raise _malformed("could not get any OCSP elements from signature")
        return ocsp, tokens, _extra_certs(unsigned, self.parsed.ids)


@dataclass(frozen=True, slots=True)
class _TemplateSignature:
    """A signature in exactly the form :func:`sign_batch` writes, read from its bytes without a parser (see
    :func:`_read_template`). Every value is the one the parser would read from the same bytes."""

    algorithm: SignatureAlgorithm
    references: tuple[_Reference, ...]
    value: bytes
    key_info_certs: tuple[x509.Certificate, ...]
    signed_info: bytes
    signed_properties: bytes
    cert_ref: _CertRef
    time: datetime
    ocsp: tuple[bytes, ...]

    def signed_info_octets(self) -> bytes:
        """``SignedInfo`` in inclusive C14N: the template writes it canonical, so these are its bytes."""
        return self.signed_info

    def same_document_octets(self, ref: _Reference) -> bytes:
        """The canonical ``SignedProperties`` (the template's only same-document reference)."""
        assert ref.uri == f"#{_ID_SIGNED_PROPERTIES}" and not ref.transforms
        return self.signed_properties

    def signing_cert_ref(self) -> _CertRef:
        return self.cert_ref

    def signing_time(self) -> datetime:
        return self.time

    def unsigned(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[x509.Certificate, ...]]:
        return self.ocsp, (), ()


def _template_pattern() -> re.Pattern[bytes]:
    """The documents :func:`_build` writes without intermediates, as a regular expression over their bytes.

    Built from the builder's own pieces, with a named group for each value: base64 text, digits, a digest or
    signature method URI, the signing time, the issuer name in C14N's text form. Everything else is literal, so
    a matching document is well-formed XML whose tree is fixed by the groups and whose ``SignedInfo`` and
    ``SignedProperties`` are already in inclusive C14N (the tests prove both against lxml).
    """
    b64 = rb"[A-Za-z0-9+/]+={0,2}"
    uri = rb'[A-Za-z0-9:/.#+-]+'
    lit = re.escape

    def digest(method: bytes, value: bytes) -> bytes:
        return (
            lit(b'<ds:DigestMethod Algorithm="') + rb"(?P<" + method + rb">" + uri + rb")"
            + lit(b'"></ds:DigestMethod><ds:DigestValue>') + rb"(?P<" + value + rb">" + b64 + rb")"
            + lit(b"</ds:DigestValue>")
        )

    def reference(index: int, uri_pattern: bytes, type_attr: bytes) -> bytes:
        return (
            lit(f'<ds:Reference Id="{_ID_REFERENCE}{index}"'.encode() + type_attr + b' URI="') + uri_pattern
            + lit(b'">\n<ds:DigestMethod Algorithm="') + rb"(?P<ref" + str(index).encode() + rb"_method>" + uri + rb")"
            + lit(b'"></ds:DigestMethod>\n<ds:DigestValue>') + rb"(?P<ref" + str(index).encode() + rb"_digest>" + b64
            + rb")" + lit(b"</ds:DigestValue>\n</ds:Reference>\n")
        )

    signed_info = (
        lit(f'\n<ds:CanonicalizationMethod Algorithm="{C14N}"></ds:CanonicalizationMethod>\n'.encode())
        + lit(b'<ds:SignatureMethod Algorithm="') + rb"(?P<method>" + uri + rb")" + lit(b'"></ds:SignatureMethod>\n')
        + reference(0, rb"(?P<ref0_uri>" + lit(MESSAGE.encode()) + rb"|" + lit(SIG_HASH_CHAIN_RESULT.encode()) + rb")", b"")
        + reference(1, lit(f"#{_ID_SIGNED_PROPERTIES}".encode()), f' Type="{SIGNED_PROPERTIES_TYPE}"'.encode())
        + lit(b"</ds:SignedInfo>")
    )
    policy = _signed_properties_body(_CertInfo("", "", "", ""), digests.SHA512, "", "").encode()
    policy = policy[policy.index(b"<xades:SignaturePolicyIdentifier>") : policy.index(b"</xades:SignedSignatureProperties>")]
    signed_properties = (
        lit(b"<xades:SignedSignatureProperties><xades:SigningTime>")
        + rb"(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)"
        + lit(b"</xades:SigningTime><xades:SigningCertificate><xades:Cert><xades:CertDigest>")
        + digest(b"cert_method", b"cert_digest")
        + lit(b"</xades:CertDigest><xades:IssuerSerial><ds:X509IssuerName>")
        + rb"(?P<issuer>[^<]*)"  # C14N's text form, checked by _read_template (a regex here is slow on hostile input)
        + lit(b"</ds:X509IssuerName><ds:X509SerialNumber>") + rb"(?P<serial>[0-9]{1,64})"
        + lit(b"</ds:X509SerialNumber></xades:IssuerSerial></xades:Cert></xades:SigningCertificate>")
        + lit(policy)
        + lit(b"</xades:SignedSignatureProperties><xades:SignedDataObjectProperties>")
        + lit(f'<xades:DataObjectFormat ObjectReference="#{_ID_REFERENCE}0"><xades:MimeType>'.encode())
        + rb"(?P<mime>" + lit(MIME_TEXT_XML.encode()) + rb"|" + lit(MIME_HASH_CHAIN_RESULT.encode()) + rb")"
        + lit(b"</xades:MimeType></xades:DataObjectFormat></xades:SignedDataObjectProperties></xades:SignedProperties>")
    )
    ocsp_value = lit(b'<xades:EncapsulatedOCSPValue Id="ocsp-response-') + rb"[0-9]+" + lit(b'">') + b64 + lit(
        b"</xades:EncapsulatedOCSPValue>"
    )
    document = (
        lit(f'<?xml version="1.0" encoding="UTF-8" standalone="no"?><asic:XAdESSignatures {_ROOT_NAMESPACES}>'.encode())
        + lit(f'<ds:Signature Id="{_ID_SIGNATURE}">\n<ds:SignedInfo>'.encode())
        + rb"(?P<signed_info>" + signed_info + rb")"
        + lit(f'\n<ds:SignatureValue Id="{_ID_SIGNATURE_VALUE}">'.encode()) + rb"(?P<value>" + b64 + rb")"
        + lit(b"</ds:SignatureValue>\n<ds:KeyInfo>\n<ds:X509Data>\n<ds:X509Certificate>") + rb"(?P<cert>" + b64 + rb")"
        + lit(b"</ds:X509Certificate>\n</ds:X509Data>\n</ds:KeyInfo>\n")
        + lit(f'<ds:Object><xades:QualifyingProperties Target="#{_ID_SIGNATURE}">'.encode())
        + lit(f'<xades:SignedProperties Id="{_ID_SIGNED_PROPERTIES}">'.encode())
        + rb"(?P<signed_properties>" + signed_properties + rb")"
        + lit(b"<xades:UnsignedProperties><xades:UnsignedSignatureProperties><xades:RevocationValues><xades:OCSPValues>")
        + rb"(?P<ocsp>(?:" + ocsp_value + rb")+)"
        + lit(b"</xades:OCSPValues></xades:RevocationValues></xades:UnsignedSignatureProperties></xades:UnsignedProperties>")
        + lit(b"</xades:QualifyingProperties></ds:Object>\n</ds:Signature></asic:XAdESSignatures>")
    )
    return re.compile(document)


_TEMPLATE = _template_pattern()
_TEMPLATE_OCSP = re.compile(rb'<xades:EncapsulatedOCSPValue Id="ocsp-response-([0-9]+)">([^<]*)</xades:EncapsulatedOCSPValue>')
_ROOT_NAMESPACES_BYTES = _ROOT_NAMESPACES.encode()


_TemplateSigner = tuple[SignatureAlgorithm, DigestAlgorithm, DigestAlgorithm, x509.Certificate, _CertRef]


@functools.lru_cache(maxsize=64)
def _template_signer(
    method: bytes, ref0_method: bytes, ref1_method: bytes, cert_method: bytes, issuer: bytes, cert_text: bytes,
    cert_digest: bytes, serial: bytes,
) -> _TemplateSigner | None:
    """What :func:`_read_template` reads from a template's signer-constant groups, or None (remembered: every
    signature of one signer and algorithm carries the same texts)."""
    algorithm = SIGNATURE_ALGORITHMS.get(method.decode("ascii"))
    ref0 = digests.lookup_uri(ref0_method.decode("ascii"))
    ref1 = digests.lookup_uri(ref1_method.decode("ascii"))
    cert_algorithm = digests.lookup_uri(cert_method.decode("ascii"))
    if algorithm is None or ref0 is None or ref1 is None or cert_algorithm is None:
        return None
    try:
        # The only group that may hold more than ASCII: C14N's text form (no '<', '>' or CR; '&' only in the four
        # escapes it writes; each replaced by a byte that no escape contains, so no new one can form), and UTF-8 of
        # characters XML can carry.
        plain = issuer.replace(b"&amp;", b"_").replace(b"&lt;", b"_").replace(b"&gt;", b"_").replace(b"&#xD;", b"_")
        if b"&" in plain or b">" in plain or b"\r" in plain or _XML_CHARS.search(issuer.decode("utf-8")):
            return None
        cert = _parse_cert(_canonical_base64(cert_text.decode("ascii")))
        cert_ref = _CertRef(cert_algorithm, _canonical_base64(cert_digest.decode("ascii")), int(serial))
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm, BusError):
        return None
    return algorithm, ref0, ref1, cert, cert_ref


@functools.lru_cache(maxsize=64)
def _template_ocsp(block: bytes) -> tuple[bytes, ...] | None:
    """The OCSP responses of a template's ``OCSPValues`` content, or None (remembered: shared by many signatures)."""
    numbers = []
    ocsp = []
    try:
        for found in _TEMPLATE_OCSP.finditer(block):
            numbers.append(found[1])
            ocsp.append(_canonical_base64(found[2].decode("ascii")))
    except ValueError:
        return None
    if numbers != [str(number).encode() for number in range(1, len(numbers) + 1)]:
        return None  # Ids out of sequence (or repeated): let the parser judge them
    return tuple(ocsp)


def _read_template(signature_xml: bytes, max_bytes: int) -> _TemplateSignature | None:
    """The signature read straight from its bytes when it is in exactly our template's form, else None.

    None means "read it with the parser": any deviation (another producer's layout, intermediates, a timestamp,
    whitespace in base64, a value the parser would refuse) takes the general path, which then gives the verdict.
    So this reader never refuses anything itself, and never accepts a value the general reader would not read.
    """
    if len(signature_xml) > max_bytes:
        return None
    match = _TEMPLATE.fullmatch(signature_xml)
    if match is None:
        return None
    signer = _template_signer(
        match["method"], match["ref0_method"], match["ref1_method"], match["cert_method"], match["issuer"],
        match["cert"], match["cert_digest"], match["serial"],
    )
    ocsp = _template_ocsp(match["ocsp"])
    if signer is None or ocsp is None:
        return None
    algorithm, ref0_method, ref1_method, cert, cert_ref = signer
    try:
        references = (
            _Reference(match["ref0_uri"].decode("ascii"), None, (), ref0_method,
                       _canonical_base64(match["ref0_digest"].decode("ascii"))),
            _Reference(f"#{_ID_SIGNED_PROPERTIES}", SIGNED_PROPERTIES_TYPE, (), ref1_method,
                       _canonical_base64(match["ref1_digest"].decode("ascii"))),
        )
        value = _canonical_base64(match["value"].decode("ascii"))
        signing_time = parse_xsd_datetime(match["time"].decode("ascii"))
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm, BusError):
        return None
    return _TemplateSignature(
        algorithm=algorithm,
        references=references,
        value=value,
        key_info_certs=(cert,),
        signed_info=b"<ds:SignedInfo " + _ROOT_NAMESPACES_BYTES + b">" + match["signed_info"],
        signed_properties=(
            b"<xades:SignedProperties " + _ROOT_NAMESPACES_BYTES + b' Id="' + _ID_SIGNED_PROPERTIES.encode() + b'">'
            + match["signed_properties"]
        ),
        cert_ref=cert_ref,
        time=signing_time,
        ocsp=ocsp,
    )


def verify_signature(
    signature_xml: bytes,
    resolve: Callable[[str], bytes | None],
    *,
    expected_parts: Collection[str] = (MESSAGE,),
    allow_unresolved_hash_chain_refs: bool = False,
    max_bytes: int = MAX_SIGNATURE_BYTES,
) -> VerifiedSignature:
    """Check a signature's structure, its hash chain, its references and its value (X-Road ``SignatureVerifier``).

    ``resolve`` maps a detached URI (``/message.xml``, ``/attachmentN``, ``/sig-hashchainresult.xml``,
    ``/sig-hashchain.xml``) to its bytes, or None when absent. Every URI in ``expected_parts`` must be covered:
    referenced by the signature itself, or an input of the hash chain it signs. The checks run in X-Road's
    order: structure and coverage, hash chain, signing certificate, then the signature value and reference
    digests.

    A signature in exactly the form fedbus writes is read from its bytes (:func:`_read_template`: no parse, no
    C14N, since those bytes are already canonical); any other is parsed once. The checks are the same for both.

    Raises :class:`MalformedSignature` (hash-chain failures carry X-Road's code as subcode, e.g.
    ``malformed_signature.invalid_hash_chain_ref``) or :class:`InvalidSignatureValue` (a reference digest or
    the signature value does not verify). Certificate trust is not judged here.
    """
    return _verify(signature_xml, resolve, expected_parts, allow_unresolved_hash_chain_refs, max_bytes, None)


def verify_signature_over_chain(
    signature_xml: bytes,
    resolve: Callable[[str], bytes | None],
    proven: hashchain.HashChainVerification,
    *,
    expected_parts: Collection[str] = (MESSAGE,),
    allow_unresolved_hash_chain_refs: bool = False,
    max_bytes: int = MAX_SIGNATURE_BYTES,
) -> VerifiedSignature:
    """:func:`verify_signature` when the caller already knows that the ``sig-hashchain.xml`` that ``resolve`` gives
    leads from the data to the digest of the ``sig-hashchainresult.xml`` it gives: ``proven`` is what
    :func:`~security_server.core.hashchain.verify_hash_chain` returns for them (the message log's auditor builds a
    batch's chains from its messages and compares bytes). The chain is then not walked again; every other check,
    its order and its verdict are :func:`verify_signature`'s. ``proven`` is taken only when its inputs are exactly
    the expected parts that the signature does not reference itself; otherwise the chain is verified as usual.
    """
    return _verify(signature_xml, resolve, expected_parts, allow_unresolved_hash_chain_refs, max_bytes, proven)


def _verify(
    signature_xml: bytes,
    resolve: Callable[[str], bytes | None],
    expected_parts: Collection[str],
    allow_unresolved_hash_chain_refs: bool,
    max_bytes: int,
    proven: hashchain.HashChainVerification | None,
) -> VerifiedSignature:
    parsed: _TemplateSignature | _TreeSignature | None = _read_template(signature_xml, max_bytes)
    if parsed is None:
        parsed = _TreeSignature(_read(signature_xml, max_bytes))
    detached = [ref for ref in parsed.references if not ref.uri.startswith("#")]
    for ref in detached:
        if ref.transforms:
            # X-Road digests detached data as raw bytes; a transform would change what is signed.
            raise _malformed("transforms on detached references are not supported", reason=f"transforms on {ref.uri!r}")
    direct = {ref.uri for ref in detached}
    if len(direct) != len(detached):
        raise _malformed("signature references one part twice")
    if MESSAGE not in direct and SIG_HASH_CHAIN_RESULT not in direct:
        raise _malformed(f"signature does not reference '{MESSAGE}' or '{SIG_HASH_CHAIN_RESULT}'")

    # The hash chain first, as X-Road does (SignatureVerifier.verify).
    chain_result: hashchain.HashChainVerification | None = None
    covered = set(direct)
    if SIG_HASH_CHAIN_RESULT in direct:
        result_xml = resolve(SIG_HASH_CHAIN_RESULT)
        chain_xml = resolve(SIG_HASH_CHAIN)
        if result_xml is None or chain_xml is None:
            raise _malformed("hash chain of the signature is missing", subcode=hashchain.INVALID_REFERENCE)
        inputs = [part for part in expected_parts if part not in direct]
        try:
            if proven is not None and proven.used_inputs == frozenset(inputs):
                chain_result = proven  # the caller verified this chain (verify_signature_over_chain)
            else:
                chain_result = hashchain.verify_hash_chain(
                    result_xml, chain_xml, resolve, inputs, allow_unresolved=allow_unresolved_hash_chain_refs
                )
        except (InvalidHashChain, HashChainUnusedInputs) as err:
            raise hashchain.as_malformed_signature(err) from err
        covered.update(chain_result.data_refs)
    uncovered = sorted(set(expected_parts) - covered)
    if uncovered:
        raise _malformed("signature does not cover every part", reason=f"parts not signed: {', '.join(uncovered)}")

    # The signing certificate: the KeyInfo certificate that SigningCertificate names by digest.
    cert_ref = parsed.signing_cert_ref()
    candidates = [cert for cert in parsed.key_info_certs if _matches(cert_ref, cert)]
    if not candidates:
        raise _malformed("SigningCertificate does not match the certificate in the signature")
    signing_cert = candidates[0]

    # The signature value over the canonical SignedInfo, then every reference.
    _check_signature_value(signing_cert, parsed.algorithm, parsed.value, parsed.signed_info_octets())
    for ref in parsed.references:
        if ref.uri.startswith("#"):
            octets = parsed.same_document_octets(ref)
        else:
            data = resolve(ref.uri)
            if data is None:
                raise _malformed("signed data is missing", reason=f"cannot resolve {ref.uri!r}", subcode=hashchain.INVALID_REFERENCE)
            octets = data
        if ref.algorithm.digest(octets) != ref.digest:
            raise InvalidSignatureValue("signature is not valid", reason=f"digest of {ref.uri!r} does not match")

    signing_time = parsed.signing_time()
    ocsp, tokens, extra_certs = parsed.unsigned()
    extra = extra_certs + tuple(cert for cert in parsed.key_info_certs if cert is not signing_cert)
    return VerifiedSignature(
        signing_cert=signing_cert,
        ocsp_responses=ocsp,
        extra_certs=extra,
        signing_time=signing_time,
        signature_value=parsed.value,
        algorithm=parsed.algorithm,
        references=tuple(ref.uri for ref in detached),
        covered_parts=frozenset(covered),
        hash_chain=chain_result,
        timestamp_tokens=tokens,
    )


# --- helpers for the message log and timestamps -------------------------------------------------------------


def signature_value(signature_xml: bytes, *, max_bytes: int = MAX_SIGNATURE_BYTES) -> bytes:
    """The raw ``ds:SignatureValue`` bytes: what a single (non-batch) timestamp covers (§4.5)."""
    template = _read_template(signature_xml, max_bytes)
    if template is not None:
        return template.value
    signature = _parse_signature(signature_xml, max_bytes)
    return _base64(_only(signature, _DS("SignatureValue"), "SignatureValue"), "signature value")


def referenced_uris(signature_xml: bytes, *, max_bytes: int = MAX_SIGNATURE_BYTES) -> tuple[str, ...]:
    """The detached URIs that a signature's ``SignedInfo`` references (``Signature.references``)."""
    read: _TemplateSignature | _ParsedSignature | None = _read_template(signature_xml, max_bytes)
    if read is None:
        read = _read(signature_xml, max_bytes)
    return tuple(ref.uri for ref in read.references if not ref.uri.startswith("#"))


def signature_timestamp(signature_xml: bytes, *, max_bytes: int = MAX_SIGNATURE_BYTES) -> bytes | None:
    """The single-timestamp token (DER) inside the signature's ``SignatureTimeStamp``, or None."""
    signature = _parse_signature(signature_xml, max_bytes)
    element = signature.find(f".//{_XADES('SignatureTimeStamp')}/{_XADES('EncapsulatedTimeStamp')}")
    return None if element is None else _base64(element, "timestamp")


def add_signature_timestamp(signature_xml: bytes, token_der: bytes, *, max_bytes: int = MAX_SIGNATURE_BYTES) -> bytes:
    """The signature with a ``SignatureTimeStamp`` holding ``token_der`` (X-Road ``Signature.addSignatureTimestamp``).

    The token goes first in ``UnsignedSignatureProperties``; nothing signed changes, so the signature still
    verifies.
    """
    signature = _parse_signature(signature_xml, max_bytes)
    unsigned = signature.find(
        f"{_DS('Object')}/{_XADES('QualifyingProperties')}/{_XADES('UnsignedProperties')}/"
        f"{_XADES('UnsignedSignatureProperties')}"
    )
    if unsigned is None:
        raise _malformed("signature has no UnsignedSignatureProperties")
    timestamp = etree.Element(_XADES("SignatureTimeStamp"))
    etree.SubElement(timestamp, _XADES("EncapsulatedTimeStamp")).text = _b64(token_der)
    unsigned.insert(0, timestamp)
    return bytes(etree.tostring(signature.getroottree(), xml_declaration=True, encoding="UTF-8", standalone=False))
