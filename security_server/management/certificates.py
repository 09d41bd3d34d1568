"""X-Road's ``CertificateDetails`` of a certificate: the one JSON shape both roles' APIs show a certificate in.

Role-neutral (the registry's API shows authentication and TSA certificates the same way the security server's
shows its keys' certificates); it imports only cryptography.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID


def xroad_time(moment: datetime) -> str:
    """``2018-12-15T00:00:00.001Z``: UTC with milliseconds (X-Road's date-time fields are 24 characters)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_USAGES = (
    ("digital_signature", "DIGITAL_SIGNATURE"), ("content_commitment", "NON_REPUDIATION"),
    ("key_encipherment", "KEY_ENCIPHERMENT"), ("data_encipherment", "DATA_ENCIPHERMENT"),
    ("key_agreement", "KEY_AGREEMENT"), ("key_cert_sign", "KEY_CERT_SIGN"), ("crl_sign", "CRL_SIGN"),
)


def _common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else ""


def _key_usages(cert: x509.Certificate) -> list[str]:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    agreement = usage.key_agreement
    found = []
    for attribute, name in _USAGES:
        if getattr(usage, attribute):
            found.append(name)
    if agreement and usage.encipher_only:
        found.append("ENCIPHER_ONLY")
    if agreement and usage.decipher_only:
        found.append("DECIPHER_ONLY")
    return found


def _alt_names(cert: x509.Certificate) -> str:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "-"  # X-Road's file requires a non-empty value
    return ", ".join(str(n.value) for n in names) or "-"


_SIGNATURE_ALGORITHMS = {
    SignatureAlgorithmOID.RSA_WITH_SHA256: "SHA256withRSA",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "SHA384withRSA",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "SHA512withRSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "SHA256withECDSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "SHA384withECDSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "SHA512withECDSA",
    SignatureAlgorithmOID.RSASSA_PSS: "RSASSA-PSS",
}
"""The Java names X-Road shows for the signature algorithms of certificates."""


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return _SIGNATURE_ALGORITHMS.get(oid, oid.dotted_string)


def certificate_details(cert: x509.Certificate) -> dict[str, Any]:
    """X-Road's ``CertificateDetails``."""
    public = cert.public_key()
    data: dict[str, Any] = {
        "issuer_distinguished_name": cert.issuer.rfc4514_string(),
        "issuer_common_name": _common_name(cert.issuer),
        "subject_distinguished_name": cert.subject.rfc4514_string(),
        "subject_common_name": _common_name(cert.subject),
        "not_before": xroad_time(cert.not_valid_before_utc),
        "not_after": xroad_time(cert.not_valid_after_utc),
        "serial": str(cert.serial_number),
        "version": cert.version.value + 1,
        "signature_algorithm": _signature_algorithm(cert),
        # X-Road's file allows 255 characters; an RSA-2048 signature is 512 hex digits: its first 255 are shown.
        "signature": cert.signature.hex()[:255],
        "public_key_algorithm": "RSA" if isinstance(public, rsa.RSAPublicKey) else "EC",
        # Required by X-Road's file even for an EC key: "0" and 0 there.
        "rsa_public_key_modulus": "0",
        "rsa_public_key_exponent": 0,
        "hash": cert.fingerprint(hashes.SHA256()).hex().upper(),
        "key_usages": _key_usages(cert),
        "subject_alternative_names": _alt_names(cert),
    }
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        data["rsa_public_key_modulus"] = format(numbers.n, "x")
        data["rsa_public_key_exponent"] = numbers.e
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data["ec_public_parameters"] = public.curve.name
        point = public.public_numbers()
        data["ec_public_key_point"] = f"{point.x:x}{point.y:x}"
    return data
