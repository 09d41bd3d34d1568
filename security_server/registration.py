"""Sending management requests (authCertReg, clientReg, ...) from a security server to the registry.

The registry's address and the certificate of its HTTPS endpoint come from the private parameters of the
global configuration (``managementService``), downloaded and verified against the anchor; the connection
trusts exactly that certificate, so nobody else can pose as the registry.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from twisted.internet import defer, ssl
from twisted.web.client import Agent
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer


from security_server.core.errors import ClientFault, NetworkError
from security_server.core.globalconf import ManagementService
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.mgmtrequest import ManagementRequest, RequestType, SignatureRole, signed_request
from security_server.edge.http_fetch import fetch
from security_server.signer.token import Token

MAX_ANSWER_BYTES = 64 * 1024
ANSWER_TIMEOUT_SECONDS = 60.0
"""The registry checks signatures and OCSP before it answers: seconds, not minutes."""


@implementer(IPolicyForHTTPS)
class PinnedCertificatePolicy:
    """TLS client policy that trusts one certificate only (the registry's, from the global configuration)."""

    def __init__(self, cert_der: bytes) -> None:
        pem = x509.load_der_x509_certificate(cert_der).public_bytes(serialization.Encoding.PEM)
        self._trust = ssl.Certificate.loadPEM(pem)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        """Client TLS options for the registry: TLS 1.2+, the pinned certificate as the only trust root."""
        return ssl.optionsForClientTLS(
            hostname.decode("ascii"), trustRoot=self._trust, extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2}
        )


def new_request_id() -> str:
    """A fresh request id (a UUID, as X-Road's ``id`` header)."""
    return str(uuid.uuid4())


def auth_cert_reg(token: Token, server: SecurityServerId, address: str, owner_ocsp_der: bytes) -> tuple[str, bytes]:
    """An authCertReg for the token's current auth certificate, signed by it and by the owner's signing key."""
    auth_key, auth_cert = token.auth_key()
    sign_key, sign_cert = token.signing_key(server.owner)
    auth_der = auth_cert.public_bytes(serialization.Encoding.DER)
    request = ManagementRequest(RequestType.AUTH_CERT_REG, new_request_id(), server, address=address, auth_cert_der=auth_der)
    return signed_request(
        request,
        [
            (SignatureRole.AUTH, auth_key, auth_der, None),
            (SignatureRole.OWNER, sign_key, sign_cert.public_bytes(serialization.Encoding.DER), owner_ocsp_der),
        ],
    )


def client_reg(token: Token, server: SecurityServerId, client: ClientId, client_ocsp_der: bytes) -> tuple[str, bytes]:
    """A clientReg for ``client`` on ``server``, signed by the server's auth key and the client member's signing key."""
    auth_key, auth_cert = token.auth_key()
    sign_key, sign_cert = token.signing_key(client.member)
    request = ManagementRequest(RequestType.CLIENT_REG, new_request_id(), server, client=client)
    return signed_request(
        request,
        [
            (SignatureRole.AUTH, auth_key, auth_cert.public_bytes(serialization.Encoding.DER), None),
            (SignatureRole.OWNER, sign_key, sign_cert.public_bytes(serialization.Encoding.DER), client_ocsp_der),
        ],
    )


@defer.inlineCallbacks
def submit(reactor: Any, management: ManagementService, content_type: str, body: bytes) -> Any:
    """POST a signed request to the registry; returns its answer ``{"id", "type", "status"}``.

    A refusal by the registry raises the registry's fault (with its code and detail id in the message).
    """
    if management.auth_cert_reg_service_cert is None:
        raise NetworkError("the global configuration names no certificate for the registry's endpoint")
    agent = Agent(reactor, contextFactory=PinnedCertificatePolicy(management.auth_cert_reg_service_cert))  # type: ignore[no-untyped-call]
    answer = yield fetch(
        agent,
        reactor,
        management.auth_cert_reg_service_address,
        what="the registry",
        max_bytes=MAX_ANSWER_BYTES,
        body=body,
        content_type=content_type,
        timeout_seconds=ANSWER_TIMEOUT_SECONDS,
        accept_status=None,  # a refusal carries the registry's fault document
    )
    try:
        document = json.loads(answer.body)
    except ValueError as err:
        raise NetworkError("the registry answered something that is not JSON") from err
    if answer.status != 200:
        fault = RegistryRefusal(
            f"the registry refused the request: {document.get('type')}: {document.get('message')}"
            f" (detail {document.get('detail')})"
        )
        fault.remote_code = str(document.get("type"))
        raise fault
    return document


class RegistryRefusal(ClientFault):
    """The registry refused a management request; ``remote_code`` is the fault code it gave."""

    code = "invalid_request"
    remote_code: str = ""

