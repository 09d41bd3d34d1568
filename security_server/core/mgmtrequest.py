"""Management requests from a security server to the central registry: build, parse and verify signatures.

Modelled on X-Road's management services (pr-mserv §2, Annex A.1/A.3): a ``multipart/related`` body whose
first part is a SOAP 4.0 message naming the request (``authCertReg``, ``clientReg``, ``clientDeletion``,
``authCertDeletion``, ``addressChange``), followed by signatures over the exact bytes of that SOAP part, each with the signing
certificate and, for member signing certificates, its OCSP response. Each signature names its algorithm in a
``signature-algorithm-id`` header with X-Road's Java names: ``SHA512withRSA`` (PKCS#1 v1.5, the default),
``SHA512withRSAandMGF1`` (RSA-PSS, for a key in a token that signs PSS only) or ``SHA512withECDSA``.

fedbus differs from X-Road in one way, on purpose: every part that belongs to a signature carries a
``signature-role`` parameter (``auth`` for the security server's authentication key, ``owner`` for a member's
signing key), so the parts cannot be confused by their order. Every request is signed by the server's
authentication key (for ``authCertReg`` the key of the certificate being registered), which proves the
request comes from that server; and by the signing key of the member it concerns (the server's owner for
certificate requests, the client's member for client requests).

This module checks the shape and that each signature verifies with its certificate. Whether the
certificates are trusted (approved CA, OCSP, profile, registered hash) is the registry's decision.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from typing import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree

from security_server.core import multipart
from security_server.core.errors import (
    BadRequest,
    DuplicateHeaderField,
    InvalidSignatureValue,
    MalformedSignature,
    MissingBody,
    MissingHeaderField,
    MissingSignature,
)
from security_server.core.identifiers import XROAD_NS, ClientId, SecurityServerId, ServiceId
from security_server.core.safexml import parse_xml

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_REQUEST_BYTES = 1024 * 1024
_LIMITS = multipart.Limits(max_body_bytes=MAX_REQUEST_BYTES, max_parts=16, max_part_bytes=MAX_REQUEST_BYTES)

RSA_PKCS1 = "SHA512withRSA"
RSA_PSS = "SHA512withRSAandMGF1"
"""RSA-PSS with SHA-512, MGF1 with SHA-512 and a 64-byte salt: X-Road's Java name, as its signer uses for a token
configured with CKM_RSA_PKCS_PSS."""
ECDSA = "SHA512withECDSA"
_SIGNATURE_ALGORITHMS = {RSA_PKCS1, RSA_PSS, ECDSA}
_PSS_MECHANISM = "CKM_RSA_PKCS_PSS"


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=hashes.SHA512.digest_size)



class RequestType(enum.StrEnum):
    """The management services fedbus implements (pr-mserv §2.1-2.4, and X-Road's ``addressChange``: a security
    server asks for the address others reach it at to change)."""

    AUTH_CERT_REG = "authCertReg"
    AUTH_CERT_DELETION = "authCertDeletion"
    CLIENT_REG = "clientReg"
    CLIENT_DELETION = "clientDeletion"
    ADDRESS_CHANGE = "addressChange"


class SignatureRole(enum.StrEnum):
    """Whose key made a signature."""

    AUTH = "auth"
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class ManagementRequest:
    """What a request asks for; which fields are set depends on ``type``."""

    type: RequestType
    request_id: str
    server: SecurityServerId
    address: str | None = None
    auth_cert_der: bytes | None = None
    client: ClientId | None = None

    def __post_init__(self) -> None:
        if not self.request_id or len(self.request_id) > 128 or not self.request_id.isprintable():
            raise BadRequest("management request id must be 1 to 128 printable characters")
        needs_cert = self.type in (RequestType.AUTH_CERT_REG, RequestType.AUTH_CERT_DELETION)
        needs_client = self.type in (RequestType.CLIENT_REG, RequestType.CLIENT_DELETION)
        if needs_cert != (self.auth_cert_der is not None):
            raise BadRequest(f"{self.type} {'needs' if needs_cert else 'cannot have'} an authentication certificate")
        if needs_client != (self.client is not None):
            raise BadRequest(f"{self.type} {'needs' if needs_client else 'cannot have'} a client")
        if (self.type in (RequestType.AUTH_CERT_REG, RequestType.ADDRESS_CHANGE)) != (self.address is not None):
            raise BadRequest("only authCertReg and addressChange carry a server address, and they must")
        if self.address is not None and (not self.address or len(self.address) > 255 or not self.address.isprintable()):
            raise BadRequest("server address must be 1 to 255 printable characters")

    @property
    def owner_member(self) -> ClientId:
        """The member whose signing key must sign this request."""
        return self.client.member if self.client is not None else self.server.owner


@dataclass(frozen=True, slots=True)
class RequestSignature:
    """One signature over the SOAP part, with the certificate that verifies it."""

    role: SignatureRole
    algorithm: str
    value: bytes
    cert_der: bytes
    ocsp_der: bytes | None = None

    @property
    def cert(self) -> x509.Certificate:
        """The signing certificate."""
        return x509.load_der_x509_certificate(self.cert_der)


@dataclass(frozen=True, slots=True)
class SignedManagementRequest:
    """A parsed request: its meaning, the exact SOAP bytes and the signatures over them."""

    request: ManagementRequest
    soap: bytes
    signatures: tuple[RequestSignature, ...]

    def signature(self, role: SignatureRole) -> RequestSignature:
        """The signature made in ``role``; :class:`MissingSignature` if there is none."""
        for signature in self.signatures:
            if signature.role is role:
                return signature
        raise MissingSignature(f"management request has no {role} signature")


# --- the SOAP part --------------------------------------------------------------------------------------


def build_soap(request: ManagementRequest) -> bytes:
    """The SOAP 4.0 message of a request (pr-mserv Annex A)."""
    envelope = etree.Element(etree.QName(SOAP_ENV_NS, "Envelope"), nsmap={"SOAP-ENV": SOAP_ENV_NS, "xroad": XROAD_NS})
    header = etree.SubElement(envelope, etree.QName(SOAP_ENV_NS, "Header"))
    header.append(request.server.owner.to_xml(etree.QName(XROAD_NS, "client")))
    header.append(ServiceId(request.server.owner, str(request.type)).to_xml(etree.QName(XROAD_NS, "service")))
    etree.SubElement(header, etree.QName(XROAD_NS, "id")).text = request.request_id
    etree.SubElement(header, etree.QName(XROAD_NS, "protocolVersion")).text = "4.0"
    body = etree.SubElement(envelope, etree.QName(SOAP_ENV_NS, "Body"))
    operation = etree.SubElement(body, etree.QName(XROAD_NS, str(request.type)))
    operation.append(request.server.to_xml(etree.QName(XROAD_NS, "server")))
    if request.address is not None:
        etree.SubElement(operation, etree.QName(XROAD_NS, "address")).text = request.address
    if request.auth_cert_der is not None:
        etree.SubElement(operation, etree.QName(XROAD_NS, "authCert")).text = base64.b64encode(request.auth_cert_der).decode()
    if request.client is not None:
        operation.append(request.client.to_xml(etree.QName(XROAD_NS, "client")))
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def _only_child(parent: etree._Element, name: str, *, required: bool = True) -> etree._Element | None:
    found = parent.findall(f"{{{XROAD_NS}}}{name}")
    if len(found) > 1:
        raise DuplicateHeaderField(f"management request repeats {name}")
    if not found:
        if required:
            raise MissingHeaderField(f"management request has no {name}")
        return None
    return found[0]


def parse_soap(soap: bytes) -> ManagementRequest:
    """Read a request's meaning from its SOAP part; header and body must agree."""
    root = parse_xml(soap, max_bytes=MAX_REQUEST_BYTES)
    if root.tag != etree.QName(SOAP_ENV_NS, "Envelope").text:
        raise BadRequest("management request is not a SOAP envelope")
    header = root.find(f"{{{SOAP_ENV_NS}}}Header")
    body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    if header is None:
        raise MissingHeaderField("management request has no SOAP header")
    if body is None or len(body) != 1:
        raise MissingBody("management request body must hold exactly one operation")
    client_el = _only_child(header, "client")
    service_el = _only_child(header, "service")
    id_el = _only_child(header, "id")
    version_el = _only_child(header, "protocolVersion")
    assert client_el is not None and service_el is not None and id_el is not None and version_el is not None
    if (version_el.text or "") != "4.0":
        raise BadRequest("management request protocolVersion must be 4.0")
    sender = ClientId.from_xml(client_el)
    service = ServiceId.from_xml(service_el)
    operation = body[0]
    qname = etree.QName(operation)
    try:
        kind = RequestType(qname.localname)
    except ValueError as err:
        raise BadRequest(f"unknown management request {qname.localname}") from err
    if qname.namespace != XROAD_NS or service.service_code != kind.value:
        raise BadRequest("management request body does not match its service code")
    server_el = _only_child(operation, "server")
    assert server_el is not None
    server = SecurityServerId.from_xml(server_el)
    if sender != server.owner or service.client != server.owner:
        raise BadRequest("management request must be sent in the name of the server's owner")
    address_el = _only_child(operation, "address", required=False)
    cert_el = _only_child(operation, "authCert", required=False)
    client_el = _only_child(operation, "client", required=False)
    cert_der = None
    if cert_el is not None:
        try:
            cert_der = base64.b64decode("".join((cert_el.text or "").split()), validate=True)
        except (binascii.Error, ValueError) as err:
            raise BadRequest("authCert is not base64") from err
    return ManagementRequest(
        type=kind,
        request_id=id_el.text or "",
        server=server,
        address=address_el.text or "" if address_el is not None else None,
        auth_cert_der=cert_der,
        client=ClientId.from_xml(client_el) if client_el is not None else None,
    )


# --- signatures -----------------------------------------------------------------------------------------


def signs_pss(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bool:
    """Whether ``private_key`` signs RSA-PSS only: a PKCS#11 token key whose token is configured with
    CKM_RSA_PKCS_PSS (security_server/signer/pkcs11_key.py sets ``sign_mechanism``; the core cannot import the
    signer, so it reads the attribute)."""
    return isinstance(private_key, rsa.RSAPrivateKey) and str(getattr(private_key, "sign_mechanism", "")) == _PSS_MECHANISM


def sign(
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, data: bytes, *, pss: bool | None = None
) -> tuple[str, bytes]:
    """Sign ``data`` with SHA-512; returns the algorithm id and the signature. RSA keys sign PKCS#1 v1.5
    (``SHA512withRSA``, X-Road's default) unless ``pss`` is true, or is None and the key's token signs PSS only
    (:func:`signs_pss`): then ``SHA512withRSAandMGF1``. EC keys sign ECDSA (``SHA512withECDSA``)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        if pss if pss is not None else signs_pss(private_key):
            return RSA_PSS, private_key.sign(data, _pss(), hashes.SHA512())
        return RSA_PKCS1, private_key.sign(data, padding.PKCS1v15(), hashes.SHA512())
    return ECDSA, private_key.sign(data, ec.ECDSA(hashes.SHA512()))


def verify_signature(signature: RequestSignature, data: bytes) -> None:
    """Check one signature over ``data`` with its certificate's public key."""
    try:
        public_key = signature.cert.public_key()
    except ValueError as err:
        raise MalformedSignature("signature certificate cannot be decoded") from err
    try:
        if signature.algorithm == RSA_PKCS1 and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature.value, data, padding.PKCS1v15(), hashes.SHA512())
        elif signature.algorithm == RSA_PSS and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature.value, data, _pss(), hashes.SHA512())
        elif signature.algorithm == ECDSA and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature.value, data, ec.ECDSA(hashes.SHA512()))
        else:
            raise MalformedSignature(f"signature algorithm {signature.algorithm} does not fit the certificate's key")
    except InvalidSignature as err:
        raise InvalidSignatureValue(f"{signature.role} signature of the management request does not verify") from err


def build_request(request: ManagementRequest, signatures: Sequence[RequestSignature]) -> tuple[str, bytes]:
    """Encode a signed request; returns ``(content_type, body)``. Signatures must be over ``build_soap(request)``."""
    parts = [multipart.Part((("Content-Type", "text/xml; charset=UTF-8"),), build_soap(request))]
    for signature in signatures:
        role = f'signature-role="{signature.role}"'
        parts.append(
            multipart.Part(
                (("Content-Type", f"application/octet-stream; {role}"), ("signature-algorithm-id", signature.algorithm)),
                signature.value,
            )
        )
        parts.append(multipart.Part((("Content-Type", f"application/pkix-cert; {role}"),), signature.cert_der))
        if signature.ocsp_der is not None:
            parts.append(multipart.Part((("Content-Type", f"application/ocsp-response; {role}"),), signature.ocsp_der))
    boundary, body = multipart.build_multipart(parts)
    return f'multipart/related; type="text/xml"; boundary="{boundary}"', body


def signed_request(
    request: ManagementRequest,
    signers: Sequence[tuple[SignatureRole, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, bytes, bytes | None]],
) -> tuple[str, bytes]:
    """Build and sign a request with ``(role, key, cert_der, ocsp_der)`` signers; returns ``(content_type, body)``."""
    soap = build_soap(request)
    signatures = []
    for role, key, cert_der, ocsp_der in signers:
        algorithm, value = sign(key, soap)
        signatures.append(RequestSignature(role, algorithm, value, cert_der, ocsp_der))
    return build_request(request, signatures)


def parse_request(content_type: str, body: bytes) -> SignedManagementRequest:
    """Parse a request body and verify every signature in it over the SOAP part's exact bytes.

    Raises :class:`MissingSignature` when the ``auth`` or ``owner`` signature is absent, and a
    :class:`BusError` for anything malformed; never a bare exception.
    """
    _, parts = multipart.parse_multipart_message(content_type, body, ("multipart/related",), _LIMITS)
    soap_part, rest = parts[0], parts[1:]
    if multipart.parse_header_value(soap_part.require_header("Content-Type")).media_type != "text/xml":
        raise BadRequest("the first part of a management request must be its SOAP message")
    request = parse_soap(soap_part.body)
    by_role: dict[SignatureRole, dict[str, object]] = {}
    for part in rest:
        content = multipart.parse_header_value(part.require_header("Content-Type"))
        try:
            role = SignatureRole(content.param("signature-role") or "")
        except ValueError as err:
            raise MalformedSignature("management request part has no valid signature-role") from err
        slot = by_role.setdefault(role, {})
        kind = {
            "application/octet-stream": "value",
            "application/pkix-cert": "cert",
            "application/ocsp-response": "ocsp",
        }.get(content.media_type)
        if kind is None:
            raise MalformedSignature(f"unexpected part {content.media_type} in management request")
        if kind in slot:
            raise MalformedSignature(f"{role} signature has more than one {kind} part")
        slot[kind] = part.body
        if kind == "value":
            algorithm = part.header("signature-algorithm-id") or ""
            if algorithm not in _SIGNATURE_ALGORITHMS:
                raise MalformedSignature(f"unsupported signature algorithm {algorithm!r}")
            slot["algorithm"] = algorithm
    signatures = []
    for role in (SignatureRole.AUTH, SignatureRole.OWNER):
        found = by_role.get(role)
        if found is None or "value" not in found:
            raise MissingSignature(f"management request has no {role} signature")
        if "cert" not in found:
            raise MalformedSignature(f"{role} signature has no certificate")
        value, cert_der, algorithm_id = found["value"], found["cert"], found["algorithm"]
        ocsp_der = found.get("ocsp")
        assert isinstance(value, bytes) and isinstance(cert_der, bytes) and isinstance(algorithm_id, str)
        assert ocsp_der is None or isinstance(ocsp_der, bytes)
        try:
            x509.load_der_x509_certificate(cert_der)
        except ValueError as err:
            raise MalformedSignature(f"{role} certificate cannot be decoded") from err
        signature = RequestSignature(role, algorithm_id, value, cert_der, ocsp_der)
        verify_signature(signature, soap_part.body)
        signatures.append(signature)
    signed = SignedManagementRequest(request, soap_part.body, tuple(signatures))
    if request.type is RequestType.AUTH_CERT_REG and signed.signature(SignatureRole.AUTH).cert_der != request.auth_cert_der:
        raise InvalidSignatureValue("authCertReg must be signed with the key of the certificate it registers")
    return signed
