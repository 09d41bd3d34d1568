"""The XAdES signature builder as it was before issue 18: per-message string formatting of the whole document.

Kept as the reference of the byte templates in ``security_server/core/signature.py``: the tests check that the
templates give exactly these bytes for random inputs. Not used outside the tests.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from security_server.core import digests
from security_server.core.digests import DigestAlgorithm
from security_server.core.signature import (
    _ID_REFERENCE,
    _ID_SIGNATURE,
    _ID_SIGNATURE_VALUE,
    _ID_SIGNED_PROPERTIES,
    _ROOT_NAMESPACES,
    C14N,
    SIGNATURE_POLICY_DESCRIPTION,
    SIGNATURE_POLICY_ID,
    SIGNATURE_POLICY_SHA512,
    SIGNATURE_POLICY_SPURI,
    SIGNED_PROPERTIES_TYPE,
    PrivateKey,
    SignatureAlgorithm,
    SignFunction,
    _attr,
    _sign_value,
    _text,
)




def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


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
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    utc = now.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _signed_properties_body(info: _CertInfo, algorithm: DigestAlgorithm, now: datetime, mime_type: str) -> str:
    """``SignedProperties`` content in canonical form (``SignatureXmlBuilder.createSignedProperties``)."""
    return (
        "<xades:SignedSignatureProperties>"
        f"<xades:SigningTime>{_signing_time(now)}</xades:SigningTime>"
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


def _reference(ref_id: str, uri: str, algorithm: DigestAlgorithm, digest: bytes, ref_type: str | None = None) -> str:
    type_attr = f' Type="{ref_type}"' if ref_type else ""
    return (
        f'<ds:Reference Id="{ref_id}"{type_attr} URI="{_attr(uri)}">\n'
        f'<ds:DigestMethod Algorithm="{algorithm.uri}"></ds:DigestMethod>\n'
        f"<ds:DigestValue>{_b64(digest)}</ds:DigestValue>\n"
        "</ds:Reference>\n"
    )


def _unsigned_properties(
    ocsp: Sequence[bytes], intermediates: Sequence[x509.Certificate], algorithm: DigestAlgorithm
) -> str:
    """``UnsignedProperties`` (``SignatureXmlBuilder.createUnsignedProperties``)."""
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
    for number, response in enumerate(ocsp, start=1):
        parts.append(f'<xades:EncapsulatedOCSPValue Id="ocsp-response-{number}">{_b64(response)}</xades:EncapsulatedOCSPValue>')
    parts.append("</xades:OCSPValues></xades:RevocationValues>")
    parts.append("</xades:UnsignedSignatureProperties></xades:UnsignedProperties>")
    return "".join(parts)


def build_document(
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
    digest = algorithm.digest
    info = _cert_info(signing_cert, digest)
    signed_properties_body = _signed_properties_body(info, digest, now, mime_type)
    signed_properties_c14n = (
        f'<xades:SignedProperties {_ROOT_NAMESPACES} Id="{_ID_SIGNED_PROPERTIES}">{signed_properties_body}'
    ).encode("utf-8")
    signed_info_body = (
        "\n"
        f'<ds:CanonicalizationMethod Algorithm="{C14N}"></ds:CanonicalizationMethod>\n'
        f'<ds:SignatureMethod Algorithm="{algorithm.uri}"></ds:SignatureMethod>\n'
        + _reference(f"{_ID_REFERENCE}0", reference_uri, digest, reference_digest)
        + _reference(
            f"{_ID_REFERENCE}1", f"#{_ID_SIGNED_PROPERTIES}", digest, digest.digest(signed_properties_c14n),
            SIGNED_PROPERTIES_TYPE,
        )
        + "</ds:SignedInfo>"
    )
    signed_info_c14n = f"<ds:SignedInfo {_ROOT_NAMESPACES}>{signed_info_body}".encode("utf-8")
    value = _sign_value(sign, algorithm, signed_info_c14n, signing_cert)
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
        f'<asic:XAdESSignatures {_ROOT_NAMESPACES}><ds:Signature Id="{_ID_SIGNATURE}">\n'
        f"<ds:SignedInfo>{signed_info_body}\n"
        f'<ds:SignatureValue Id="{_ID_SIGNATURE_VALUE}">{_b64(value)}</ds:SignatureValue>\n'
        f"<ds:KeyInfo>\n<ds:X509Data>\n<ds:X509Certificate>{info.der_b64}</ds:X509Certificate>\n</ds:X509Data>\n</ds:KeyInfo>\n"
        f'<ds:Object><xades:QualifyingProperties Target="#{_ID_SIGNATURE}">'
        f'<xades:SignedProperties Id="{_ID_SIGNED_PROPERTIES}">{signed_properties_body}'
        f"{_unsigned_properties(ocsp, intermediates, digest)}"
        "</xades:QualifyingProperties></ds:Object>\n"
        "</ds:Signature></asic:XAdESSignatures>"
    )
    return document.encode("utf-8")
