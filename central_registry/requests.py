"""The registration workflow: management requests are checked, kept pending, then approved or rejected.

A request is accepted into the queue only if both its signatures verify and their certificates are
trustworthy now: issued by an approved CA, of the right kind, naming the right member or server under the
certificate profile of its CA (core/certprofile.py; of a server, the parts its profile writes), and (for member
signing certificates) with a good, fresh OCSP response. Anything else is refused and recorded in the audit trail
with the reason. A request id is accepted once: a replay of the same signed request is refused (the id is inside the signed SOAP part, so it cannot be changed without re-signing).
With ``auto_approve`` set (development), an accepted request is applied at once.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from central_registry.store import RegistryError, RegistryStore, auth_cert_hash
from security_server.core import certprofile, trust
from security_server.core.errors import BusError, CertValidation, InvalidCertPath, SslAuthenticationFailed
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.server_address import parse_server_address
from security_server.core.mgmtrequest import (
    ManagementRequest,
    RequestSignature,
    RequestType,
    SignatureRole,
    SignedManagementRequest,
    parse_request,
)


class RequestStatus(enum.StrEnum):
    """Where a request is in its life (UG-CS §6)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A stored request."""

    id: str
    type: RequestType
    status: RequestStatus
    server: str
    client: str | None
    submitted_at: str
    decided_at: str | None


def _find_issuer(cert: x509.Certificate, roots: list[x509.Certificate]) -> x509.Certificate:
    for root in roots:
        if trust.is_issued_by(cert, root):
            return root
    raise InvalidCertPath("certificate was not issued by an approved certification authority")


class RegistrationDesk:
    """Takes management requests from security servers and applies them when approved."""

    def __init__(self, store: RegistryStore) -> None:
        self.store = store

    # --- submission -----------------------------------------------------------------------------------------

    def submit(self, content_type: str, body: bytes, now: datetime) -> RequestRecord:
        """Check and queue a request (or apply it under auto-approve); refused requests are audited, then raised."""
        try:
            signed = parse_request(content_type, body)
            self._check_trust(signed, now)
        except BusError as err:
            self.store.record("request_refused", {"fault": err.fault_code, "reason": err.reason, "detail": err.detail_id})
            raise
        request = signed.request
        if self._exists(request.request_id):
            self.store.record("request_refused", {"id": request.request_id, "reason": "replayed request id"})
            raise RegistryError("this request has already been submitted", reason=f"replay of {request.request_id}")
        try:
            self._check_applicable(request)
        except RegistryError as err:
            self.store.record("request_refused", {"id": request.request_id, "reason": err.reason})
            raise
        payload = {
            "type": str(request.type),
            "server": str(request.server),
            "address": request.address,
            "auth_cert": base64.b64encode(request.auth_cert_der).decode() if request.auth_cert_der else None,
            "client": str(request.client) if request.client else None,
        }
        with self.store.transaction("request_submitted", {"id": request.request_id, "type": str(request.type)}):
            self.store.db.execute(
                "INSERT INTO requests (id, type, payload, status, submitted_at, server_id, client_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    request.request_id,
                    str(request.type),
                    json.dumps(payload, sort_keys=True),
                    str(RequestStatus.PENDING),
                    now.isoformat(),
                    str(request.server),
                    payload["client"],
                ],
            )
            if self.store.settings().auto_approve or twin_of(self.store, request.request_id) is not None:
                self.approve(request.request_id, now)  # X-Road approves a request the centre filed first
        return self.get(request.request_id)

    def _exists(self, request_id: str) -> bool:
        return next(iter(self.store.db.query("SELECT 1 FROM requests WHERE id = ?", [request_id])), None) is not None

    def _approved_roots(self) -> list[x509.Certificate]:
        return [x509.load_der_x509_certificate(ca.cert_der) for ca in self.store.cas()]

    def _profile_of(self, cert: x509.Certificate) -> str:
        """The certificate profile of the approved CA that issued ``cert`` (fedbus's when none did: the path check
        has refused such a certificate already)."""
        for ca in self.store.cas():
            if trust.is_issued_by(cert, x509.load_der_x509_certificate(ca.cert_der)):
                return ca.profile
        return certprofile.FEDBUS_PROFILE

    def _check_trust(self, signed: SignedManagementRequest, now: datetime) -> None:
        request = signed.request
        roots = self._approved_roots()
        self._check_auth_signature(request, signed.signature(SignatureRole.AUTH), roots, now)
        self._check_owner_signature(request, signed.signature(SignatureRole.OWNER), roots, now)

    def _check_auth_signature(
        self, request: ManagementRequest, signature: RequestSignature, roots: list[x509.Certificate], now: datetime
    ) -> None:
        cert = signature.cert
        if request.type is RequestType.AUTH_CERT_REG:
            # The certificate being registered signs its own request (pr-mserv §2.2).
            trust.verify_cert_path(cert, (), roots, now)
            if not trust.is_auth_cert(cert):
                raise CertValidation("authCertReg certificate is not an authentication certificate")
            if not certprofile.auth_names_of_cert(cert, self._profile_of(cert)).matches(request.server):
                raise CertValidation("authentication certificate names another security server")
            return
        registered = self.store.security_server(request.server)
        if registered is None or auth_cert_hash(signature.cert_der) not in registered.auth_cert_hashes:
            raise SslAuthenticationFailed("request is not signed by a registered key of the security server")
        trust.verify_cert_path(cert, (), roots, now)

    def _check_owner_signature(
        self, request: ManagementRequest, signature: RequestSignature, roots: list[x509.Certificate], now: datetime
    ) -> None:
        cert = signature.cert
        trust.verify_cert_path(cert, (), roots, now)
        if not trust.is_signing_cert(cert):
            raise CertValidation("owner signature is not made with a signing certificate")
        owner = request.owner_member
        if certprofile.member_from_signing_cert_as(cert, self._profile_of(cert), owner.instance) != owner:
            raise CertValidation("owner signature is made by another member's certificate")
        if signature.ocsp_der is None:
            raise CertValidation("owner signature comes without the OCSP response of its certificate")
        freshness = self.store.settings().ocsp_freshness_seconds
        ca = next(ca for ca in self.store.cas() if trust.is_issued_by(cert, x509.load_der_x509_certificate(ca.cert_der)))
        responders = [x509.load_der_x509_certificate(ca.ocsp_cert_der)] if ca.ocsp_cert_der else []
        trust.check_ocsp_response(
            signature.ocsp_der,
            cert,
            _find_issuer(cert, roots),
            now,
            freshness_seconds=freshness,
            trusted_responders=responders,
        )

    def _check_applicable(self, request: ManagementRequest) -> None:
        """Refuse at submission what could never be approved (unknown owner, unknown client)."""
        if not self.store.has_client(request.server.owner):
            raise RegistryError(f"unknown server owner {request.server.owner}")
        if request.type in (RequestType.CLIENT_REG, RequestType.CLIENT_DELETION):
            assert request.client is not None
            if not self.store.has_client(request.client.member):
                raise RegistryError(f"unknown member {request.client.member}")
        if request.type is RequestType.ADDRESS_CHANGE:
            assert request.address is not None
            if self.store.security_server(request.server) is None:
                raise RegistryError(f"unknown security server {request.server}")
            if parse_server_address(request.address) is None:
                raise RegistryError("a security server address is a host name or an address, with or without a port")
        if request.type is RequestType.AUTH_CERT_DELETION:
            assert request.auth_cert_der is not None
            server = self.store.security_server(request.server)
            if server is None or auth_cert_hash(request.auth_cert_der) not in server.auth_cert_hashes:
                raise RegistryError("that certificate is not registered for the server")

    # --- decisions ------------------------------------------------------------------------------------------

    def get(self, request_id: str) -> RequestRecord:
        """One request."""
        row = next(iter(self.store.db.query("SELECT * FROM requests WHERE id = ?", [request_id])), None)
        if row is None:
            raise RegistryError(f"no request {request_id}")
        return self._record(row)

    def list(self, status: RequestStatus | None = None) -> list[RequestRecord]:
        """Requests, oldest first, optionally only those in ``status``."""
        if status is None:
            rows = self.store.db.query("SELECT * FROM requests ORDER BY submitted_at, id")
        else:
            rows = self.store.db.query("SELECT * FROM requests WHERE status = ? ORDER BY submitted_at, id", [str(status)])
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: dict[str, Any]) -> RequestRecord:
        return RequestRecord(
            id=row["id"],
            type=RequestType(row["type"]),
            status=RequestStatus(row["status"]),
            server=row["server_id"],
            client=row["client_id"],
            submitted_at=row["submitted_at"],
            decided_at=row["decided_at"],
        )

    def _pending_payload(self, request_id: str) -> dict[str, Any]:
        record = self.get(request_id)
        if record.status is not RequestStatus.PENDING:
            raise RegistryError(f"request {request_id} is already {record.status}")
        row = next(iter(self.store.db.query("SELECT payload FROM requests WHERE id = ?", [request_id])))
        payload: dict[str, Any] = json.loads(row["payload"])
        return payload

    def approve(self, request_id: str, now: datetime) -> RequestRecord:
        """Apply a pending request to the registry in one transaction; approving twice is refused."""
        with self.store.transaction("request_approved", {"id": request_id}):
            self._apply(self._pending_payload(request_id))
            self._decide_twin(request_id, RequestStatus.APPROVED, now)
            self._decide(request_id, RequestStatus.APPROVED, now)
        return self.get(request_id)

    def _apply(self, payload: dict[str, Any]) -> None:
        server = SecurityServerId.parse_display(payload["server"])
        kind = RequestType(payload["type"])
        if kind is RequestType.AUTH_CERT_REG:
            self.store.register_auth_cert(server, payload["address"], base64.b64decode(payload["auth_cert"]))
        elif kind is RequestType.AUTH_CERT_DELETION:
            self.store.delete_auth_cert(server, auth_cert_hash(base64.b64decode(payload["auth_cert"])))
        elif kind is RequestType.ADDRESS_CHANGE:  # published in the next configuration
            self.store.db.execute("UPDATE security_servers SET address = ? WHERE id = ?", [payload["address"], str(server)])
        elif kind is RequestType.CLIENT_REG:
            client = ClientId.parse_display(payload["client"])
            if client.subsystem_code is not None and not self.store.has_client(client):
                self.store.add_subsystem(client)  # X-Road creates the subsystem on its first registration
            self.store.add_server_client(server, client)
        else:
            self.store.remove_server_client(server, ClientId.parse_display(payload["client"]))

    def reject(self, request_id: str, now: datetime) -> RequestRecord:
        """Reject a pending request; it changes nothing else."""
        with self.store.transaction("request_rejected", {"id": request_id}):
            self._pending_payload(request_id)
            self._decide_twin(request_id, RequestStatus.REJECTED, now)
            self._decide(request_id, RequestStatus.REJECTED, now)
        return self.get(request_id)

    def _decide_twin(self, request_id: str, status: RequestStatus, now: datetime) -> None:
        """Decide the waiting request of the other origin that ``request_id`` pairs with, if any, the same way."""
        twin = twin_of(self.store, request_id)
        if twin is not None:
            self._decide(twin, status, now)

    def _decide(self, request_id: str, status: RequestStatus, now: datetime) -> None:
        self.store.db.execute(
            "UPDATE requests SET status = ?, decided_at = ? WHERE id = ?", [str(status), now.isoformat(), request_id]
        )


# --- pairing with the centre's requests (addManagementRequest, issue 17) ------------------------------------------

CENTRE_ORIGIN = "CENTER"
SERVER_ORIGIN = "SECURITY_SERVER"


def origin_of(payload: dict[str, Any]) -> str:
    """Who filed a request: its security server (every request it sends), or the centre (``origin`` CENTER)."""
    return str(payload.get("origin", SERVER_ORIGIN))


def pairing_key(payload: dict[str, Any]) -> tuple[str, str, str | None, str | None]:
    """What two requests of different origins must share to be one registration (X-Road: the type, the server, the
    client of a client request, the certificate of an authentication certificate request)."""
    return payload["type"], payload["server"], payload.get("client"), payload.get("auth_cert")


def waiting_requests(store: RegistryStore, payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The waiting requests (id, payload) with the pairing key of ``payload``, of either origin."""
    rows = store.db.query("SELECT id, payload FROM requests WHERE status = ? AND type = ? AND server_id = ?",
                          [str(RequestStatus.PENDING), payload["type"], payload["server"]])
    found = [(str(row["id"]), json.loads(row["payload"])) for row in rows]
    return [(rid, other) for rid, other in found if pairing_key(other) == pairing_key(payload)]


def twin_of(store: RegistryStore, request_id: str) -> str | None:
    """The waiting request of the other origin that request ``request_id`` pairs with (X-Road's requests sharing
    one processing, ``SUBMITTED FOR APPROVAL``), or None."""
    row = next(iter(store.db.query("SELECT payload FROM requests WHERE id = ?", [request_id])), None)
    if row is None:
        return None
    payload = json.loads(row["payload"])
    for other_id, other in waiting_requests(store, payload):
        if other_id != request_id and origin_of(other) != origin_of(payload):
            return other_id
    return None
