"""The registry API's security servers and management requests (X-Road's /security-servers, /management-requests)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from central_registry.requests import RequestStatus
from central_registry.store import RegistryStore
from security_server.core.identifiers import ClientId, SecurityServerId
from tests.central_registry.management.harness import START, RegistryApi

OWNER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(OWNER, "ss1")
SUBSYSTEM = OWNER.subsystem("reg")


def _cert(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(START).not_valid_after(START + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def _submit(store: RegistryStore, request_id: str, kind: str, submitted: int, client: ClientId | None = None) -> None:
    """A request as the registration desk stores an accepted one (its signatures were checked then)."""
    payload = {"type": kind, "server": str(SERVER), "address": "ss1.example.org",
               "auth_cert": base64.b64encode(_cert(request_id)).decode() if kind == "authCertReg" else None,
               "client": str(client) if client else None}
    with store.transaction("request_submitted", {"id": request_id}):
        store.db.execute(
            "INSERT INTO requests (id, type, payload, status, submitted_at, server_id, client_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [request_id, kind, json.dumps(payload), str(RequestStatus.PENDING),
             (START + timedelta(seconds=submitted)).isoformat(), str(SERVER), payload["client"]],
        )


@pytest.fixture
def federation(registry: RegistryApi) -> RegistryApi:
    """A registry with member GOV/70000310 (subsystem reg), its server ss1 hosting both, and two waiting requests:
    an authCertReg (number 1) and a clientReg (number 2)."""
    store = RegistryStore(registry.paths.database)
    try:
        store.db.execute("INSERT INTO member_classes (code, description) VALUES ('GOV', 'Government')")
        store.add_member(OWNER, "Riik")
        store.add_subsystem(SUBSYSTEM)
        store.register_auth_cert(SERVER, "ss1.example.org", _cert("ss1"))
        store.add_server_client(SERVER, SUBSYSTEM)
        _submit(store, "req-a", "authCertReg", 1)
        _submit(store, "req-b", "clientReg", 2, OWNER.subsystem("new"))
    finally:
        store.close()
    return registry


def test_servers_are_listed_with_paging_and_shown(federation: RegistryApi, officer: str) -> None:
    """GET /security-servers pages X-Road's SecurityServer objects; GET one shows its address and owner."""
    listed = federation.request("GET", "/api/v1/security-servers", key=officer, query={"q": "riik"}).json()
    assert listed["paging_metadata"] == {"total_items": 1, "items": 1, "limit": 25, "offset": 0}
    assert listed["items"][0]["server_id"]["encoded_id"] == "EE:GOV:70000310:ss1"
    assert federation.request("GET", "/api/v1/security-servers", key=officer,
                              query={"q": "nothing"}).json()["items"] == []
    shown = federation.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1", key=officer).json()
    assert shown["server_address"] == "ss1.example.org" and shown["owner_name"] == "Riik"


def test_a_servers_clients_and_address_change(federation: RegistryApi, officer: str) -> None:
    """GET .../clients lists the owner and its subsystem; PATCH changes the address."""
    clients = federation.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1/clients", key=officer).json()
    assert [c["client_id"]["encoded_id"] for c in clients] == ["EE:GOV:70000310", "EE:GOV:70000310:reg"]
    changed = federation.request("PATCH", "/api/v1/security-servers/EE:GOV:70000310:ss1",
                                 json_body={"server_address": "10.0.0.7"}, key=officer)
    assert changed.status == 200 and changed.json()["server_address"] == "10.0.0.7"


def test_a_server_is_deleted_and_then_not_found(federation: RegistryApi, officer: str) -> None:
    """DELETE removes the server (204); then it is 404 with X-Road's error object."""
    assert federation.request("DELETE", "/api/v1/security-servers/EE:GOV:70000310:ss1", key=officer).status == 204
    gone = federation.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1", key=officer)
    assert gone.status == 404 and gone.json()["error"]["code"] == "security_server_not_found"


def test_requests_are_listed_filtered_and_shown(federation: RegistryApi, officer: str) -> None:
    """Requests are numbered in submission order with X-Road's types and statuses, filtered and sorted."""
    listed = federation.request("GET", "/api/v1/management-requests", key=officer).json()
    assert [(r["id"], r["type"], r["status"]) for r in listed["items"]] == [
        (1, "AUTH_CERT_REGISTRATION_REQUEST", "WAITING"), (2, "CLIENT_REGISTRATION_REQUEST", "WAITING")]
    only = federation.request("GET", "/api/v1/management-requests", key=officer,
                              query={"types": "CLIENT_REGISTRATION_REQUEST", "sort": "id", "desc": "true"}).json()
    assert [r["id"] for r in only["items"]] == [2]
    shown = federation.request("GET", "/api/v1/management-requests/2", key=officer).json()
    assert shown["client_id"]["encoded_id"] == "EE:GOV:70000310:new" and shown["security_server_owner"] == "Riik"


def test_approving_applies_the_request_once(federation: RegistryApi, officer: str) -> None:
    """Approval answers APPROVED and registers the client; approving again is 409."""
    approved = federation.request("POST", "/api/v1/management-requests/2/approval", key=officer)
    assert approved.status == 200 and approved.json()["status"] == "APPROVED"
    clients = federation.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1/clients", key=officer).json()
    assert "EE:GOV:70000310:new" in [c["client_id"]["encoded_id"] for c in clients]
    again = federation.request("POST", "/api/v1/management-requests/2/approval", key=officer)
    assert again.status == 409 and again.json()["error"]["code"] == "management_request_not_waiting"


def test_declining_changes_nothing_else(federation: RegistryApi, officer: str) -> None:
    """DELETE declines a waiting request (204): DECLINED, and the server has no new certificate."""
    assert federation.request("DELETE", "/api/v1/management-requests/1", key=officer).status == 204
    assert federation.request("GET", "/api/v1/management-requests", key=officer,
                              query={"status": "DECLINED"}).json()["paging_metadata"]["total_items"] == 1
    missing = federation.request("POST", "/api/v1/management-requests/9/approval", key=officer)
    assert missing.status == 404 and missing.json()["error"]["code"] == "management_request_not_found"


def test_a_members_used_servers_and_groups(federation: RegistryApi, officer: str) -> None:
    """used-servers lists ss1 (it hosts the member's subsystem); global-groups names the group its subsystem is in."""
    used = federation.request("GET", "/api/v1/members/EE:GOV:70000310/used-servers", key=officer).json()
    assert [s["server_id"]["encoded_id"] for s in used] == ["EE:GOV:70000310:ss1"]
    federation.request("POST", "/api/v1/global-groups", json_body={"code": "owners", "description": "Owners"},
                       key=officer)
    federation.request("POST", "/api/v1/global-groups/owners/members/add", json_body={"items": ["EE:GOV:70000310:reg"]},
                       key=officer)
    groups = federation.request("GET", "/api/v1/members/EE:GOV:70000310/global-groups", key=officer).json()
    assert [(g["group_code"], g["subsystem"]) for g in groups] == [("owners", "reg")]


def test_a_subsystem_is_unregistered_but_the_owner_is_not(federation: RegistryApi, officer: str) -> None:
    """Unregistering the subsystem from ss1 is 204; the owner member cannot be unregistered from its own server."""
    path = "/api/v1/subsystems/EE:GOV:70000310:reg/servers/EE:GOV:70000310:ss1"
    assert federation.request("DELETE", path, key=officer).status == 204
    clients = federation.request("GET", "/api/v1/security-servers/EE:GOV:70000310:ss1/clients", key=officer).json()
    assert [c["client_id"]["encoded_id"] for c in clients] == ["EE:GOV:70000310"]
    assert federation.request("DELETE", path, key=officer).status == 404
    owner = federation.request("DELETE", "/api/v1/members/EE:GOV:70000310/servers/EE:GOV:70000310:ss1", key=officer)
    assert owner.status == 400


def test_an_auth_certificate_is_deleted_by_its_id(federation: RegistryApi, officer: str) -> None:
    """The id listed with a certificate deletes it (204); the list is then empty, and the id unknown (404)."""
    path = "/api/v1/security-servers/EE:GOV:70000310:ss1/authentication-certificates"
    [cert] = federation.request("GET", path, key=officer).json()
    assert federation.request("DELETE", f"{path}/{cert['id']}", key=officer).status == 204
    assert federation.request("GET", path, key=officer).json() == []
    assert federation.request("DELETE", f"{path}/{cert['id']}", key=officer).status == 404


def test_the_system_version_names_fedbus(federation: RegistryApi, officer: str) -> None:
    """GET /system/version answers X-Road's Version with fedbus's."""
    info = federation.request("GET", "/api/v1/system/version", key=officer).json()["info"]
    assert info.startswith("fedbus central registry ")
