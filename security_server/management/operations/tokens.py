"""``/tokens`` and ``/keys/{id}``: the tokens, their keys and certificates (X-Road's ``Token``, ``Key``,
``TokenCertificate``).

A token's id is its name (``soft``, or a ``[pkcs11:NAME]`` section's NAME); a key's id is fedbus's key id.
fedbus does not track a certificate's registration state or its last OCSP answer per certificate yet: a
certificate shows ``status`` REGISTERED when it is within its validity, SAVED otherwise, and ``ocsp_status``
OCSP_RESPONSE_UNKNOWN. Key labels are the key ids.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from security_server.admin import keys
from security_server.admin.keys import TokenView
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.management.api import ApiRequest, ApiResponse, Operation, OperationContext
from security_server.management.ids import client_id_text
from security_server.management.operations.common import PREFIX, xroad_time
from security_server.management.permissions import roles_for
from security_server.signer.softtoken import KeyAlgorithm, KeyInfo, KeyKind
from security_server.signer.token import TokenStatus

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


def _owner_id(owner: ClientId | SecurityServerId) -> str:
    return client_id_text(owner.owner if isinstance(owner, SecurityServerId) else owner)


def key_json(info: KeyInfo, now_cert_valid: bool) -> dict[str, Any]:
    """X-Road's ``Key`` with its certificate (a key has at most one in fedbus)."""
    certificates = []
    if info.cert is not None:
        certificates.append({
            "ocsp_status": "OCSP_RESPONSE_UNKNOWN",
            "owner_id": _owner_id(info.owner),
            "active": True,
            "saved_to_configuration": True,
            "certificate_details": certificate_details(info.cert),
            "status": "REGISTERED" if now_cert_valid else "SAVED",
        })
    return {
        "id": info.key_id,
        "name": info.key_id,
        "label": info.key_id,
        "certificates": certificates,
        "certificate_signing_requests": [],
        "usage": "AUTHENTICATION" if info.kind is KeyKind.AUTH else "SIGNING",
        "available": True,
        "saved_to_configuration": True,
        "key_algorithm": "EC" if info.algorithm is KeyAlgorithm.EC_P256 else "RSA",
    }


def token_json(context: OperationContext, token: TokenView) -> dict[str, Any]:
    """X-Road's ``Token``."""
    now = context.now()
    return {
        "id": token.name,
        "name": token.name,
        "type": "HARDWARE" if token.hardware else "SOFTWARE",
        "keys": [
            key_json(k, k.cert is not None and k.cert.not_valid_before_utc <= now <= k.cert.not_valid_after_utc)
            for k in token.keys
        ],
        "status": "OK",
        "logged_in": token.status is TokenStatus.LOGGED_IN,
        "available": token.status is not TokenStatus.NOT_PRESENT,
        "saved_to_configuration": True,
        "read_only": False,
    }


def get_tokens(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /tokens``."""
    return ApiResponse(200, [token_json(context, t) for t in keys.list_tokens(context.server_dir, context.config)])


def get_token(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /tokens/{id}``."""
    return ApiResponse(200, token_json(context, keys.get_token(context.server_dir, request.params["id"], context.config)))


def get_key(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /keys/{id}``."""
    found = keys.find_key(context.server_dir, request.params["id"], context.config)
    now = context.now()
    cert = found.info.cert
    return ApiResponse(200, key_json(found.info, cert is not None and cert.not_valid_before_utc <= now <= cert.not_valid_after_utc))


OPERATIONS = (
    Operation("GET", f"{PREFIX}/tokens", "getTokens", roles_for("getTokens"), get_tokens),
    Operation("GET", f"{PREFIX}/tokens/{{id}}", "getToken", roles_for("getToken"), get_token),
    Operation("GET", f"{PREFIX}/keys/{{id}}", "getKey", roles_for("getKey"), get_key),
)
