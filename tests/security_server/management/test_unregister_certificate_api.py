"""An authentication certificate's X-Road states through the API: register, the configuration lists it, unregister
(authCertDeletion) or mark for deletion, the configuration drops it; and what each state allows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import defer

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import SecurityServerId
from security_server.management.roles import Role
from tests.security_server.management.conftest import OWNER_CLASS, OWNER_CODE, SERVER_CODE
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.certificate_setup import imported_certificate
from tests.security_server.management.harness import START, Api
from tests.security_server.management.xroad_openapi import error_object


@dataclass
class Conf:
    """The global configuration in force (the management tests' one) with the auth certificates it lists for this
    server set by the test."""

    listed: set[bytes] = field(default_factory=set)
    real: GlobalConf = field(default_factory=global_conf)

    def auth_cert_hashes(self, server_id: SecurityServerId) -> tuple[bytes, ...]:
        """Every listed hash belongs to this test's one server."""
        return tuple(self.listed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@dataclass
class Server:
    """An initialised server with an auth and a sign certificate; what it sent to the registry."""

    api: Api
    conf: Conf
    registered: list[str]
    deleted: list[str]
    auth: str
    sign: str

    def status(self, cert_hash: str) -> str:
        """The certificate's ``status`` as ``GET /token-certificates/{hash}`` shows it."""
        shown = self.api.request("GET", f"/api/v1/token-certificates/{cert_hash}",
                                 key=self.api.api_key(Role.SECURITYSERVER_OBSERVER))
        assert shown.status == 200, shown.body
        return str(shown.json()["status"])

    def actions(self, cert_hash: str) -> list[str]:
        """Its possible actions."""
        found: list[str] = self.api.request("GET", f"/api/v1/token-certificates/{cert_hash}/possible-actions",
                                            key=self.api.api_key(Role.SECURITYSERVER_OBSERVER)).json()
        return found

    def put(self, cert_hash: str, action: str, role: Role = Role.SECURITY_OFFICER,
            body: dict[str, str] | None = None) -> Any:
        """``PUT /token-certificates/{hash}/{action}``."""
        return self.api.request("PUT", f"/api/v1/token-certificates/{cert_hash}/{action}",
                                key=self.api.api_key(role), json_body=body)

    def list_auth(self) -> None:
        """The next global configuration lists the auth certificate."""
        self.conf.listed.add(bytes.fromhex(self.auth))


@pytest.fixture
def server(tmp_path: Path, anchor_bytes: bytes) -> Server:
    """authCertReg and authCertDeletion are recorded, not sent; the configuration lists nothing yet."""
    conf = Conf()
    registered: list[str] = []
    deleted: list[str] = []

    def register(address: str) -> defer.Deferred[Any]:
        registered.append(address)
        return defer.succeed({"status": "submitted"})

    def unregister(cert_hash: str) -> defer.Deferred[Any]:
        deleted.append(cert_hash)
        return defer.succeed({"status": "submitted"})

    api = Api(tmp_path / "server", register_server=register, unregister_server=unregister, global_conf=lambda: conf)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream", key=key)
    api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE})
    ca = DevelopmentCA.init(tmp_path / "ca", "Test CA", START - timedelta(days=1), key_size=2048)
    auth = imported_certificate(api, ca, "AUTHENTICATION", CertKind.AUTH)
    sign = imported_certificate(api, ca, "SIGNING", CertKind.SIGN, "EE:GOV:70000310")
    return Server(api, conf, registered, deleted, auth, sign)


def _code(answer: Any) -> str:
    return str(error_object(answer.body)["error"]["code"])


def test_an_imported_auth_certificate_is_saved_and_a_sign_certificate_registered(server: Server) -> None:
    """X-Road's states at import: the auth certificate SAVED (REGISTER and DELETE possible, not UNREGISTER), the
    sign certificate REGISTERED."""
    assert server.status(server.auth) == "SAVED" and server.status(server.sign) == "REGISTERED"
    assert server.actions(server.auth) == ["DELETE", "REGISTER", "DISABLE"]


def test_register_then_the_configuration_lists_it_then_unregister(server: Server) -> None:
    """register: REGISTRATION_IN_PROGRESS (UNREGISTER possible, DELETE and REGISTER not); listed by the
    configuration: REGISTERED; unregister: authCertDeletion sent once with the hash, 204, DELETION_IN_PROGRESS
    even while still listed; then it may be deleted."""
    assert server.put(server.auth, "register", body={"address": "10.0.0.5"}).status == 200
    assert server.status(server.auth) == "REGISTRATION_IN_PROGRESS"
    assert server.actions(server.auth) == ["UNREGISTER", "DISABLE"]
    again = server.put(server.auth, "register", body={"address": "10.0.0.5"})
    assert (again.status, _code(again), server.registered) == (400, "action_not_possible", ["10.0.0.5"])
    server.list_auth()
    assert server.status(server.auth) == "REGISTERED"
    refused = server.api.request("DELETE", f"/api/v1/token-certificates/{server.auth}",
                                 key=server.api.api_key(Role.SECURITY_OFFICER))
    assert (refused.status, _code(refused)) == (400, "action_not_possible")
    answer = server.put(server.auth.lower(), "unregister")
    assert answer.status == 204, answer.body
    assert server.deleted == [server.auth]
    assert server.status(server.auth) == "DELETION_IN_PROGRESS"
    assert server.actions(server.auth) == ["DELETE", "DISABLE"]
    assert server.api.request("DELETE", f"/api/v1/token-certificates/{server.auth}",
                              key=server.api.api_key(Role.SECURITY_OFFICER)).status == 204


def test_a_registered_certificate_the_configuration_drops_is_a_global_error(server: Server) -> None:
    """REGISTERED, then a configuration without it: GLOBAL_ERROR, which is neither registered again nor
    unregistered (X-Road's rules); listed again, REGISTERED."""
    server.put(server.auth, "register", body={"address": "10.0.0.5"})
    server.list_auth()
    assert server.status(server.auth) == "REGISTERED"
    server.conf.listed.clear()
    assert server.status(server.auth) == "GLOBAL_ERROR"
    assert server.actions(server.auth) == ["DELETE", "DISABLE"]
    for action, body in (("register", {"address": "10.0.0.5"}), ("unregister", {})):
        refused = server.put(server.auth, action, body=body or None)
        assert (refused.status, _code(refused)) == (400, "action_not_possible"), action
    server.list_auth()
    assert server.status(server.auth) == "REGISTERED"


def test_mark_for_deletion_sends_nothing(server: Server) -> None:
    """mark-for-deletion of a registered certificate: 204, DELETION_IN_PROGRESS, no authCertDeletion sent."""
    server.put(server.auth, "register", body={"address": "10.0.0.5"})
    server.list_auth()
    assert server.put(server.auth, "mark-for-deletion").status == 204
    assert server.status(server.auth) == "DELETION_IN_PROGRESS" and server.deleted == []


def test_refusals_send_nothing_and_change_nothing(server: Server) -> None:
    """A saved auth certificate (400 action_not_possible), a sign certificate (400), an unknown hash (404),
    another role (403), a hash with a path in it (404): nothing is sent, the states stay."""
    for action in ("unregister", "mark-for-deletion"):
        for cert_hash, role, status in (
            (server.auth, Role.SECURITY_OFFICER, 400),
            (server.sign, Role.SECURITY_OFFICER, 400),
            ("AB" * 32, Role.SECURITY_OFFICER, 404),
            (server.auth, Role.REGISTRATION_OFFICER, 403),
            (server.auth, Role.SECURITYSERVER_OBSERVER, 403),
        ):
            answer = server.put(cert_hash, action, role)
            assert answer.status == status, (action, cert_hash, role, answer.body)
            if status == 400:
                assert _code(answer) == "action_not_possible"
        traversal = server.api.request("PUT", f"/api/v1/token-certificates/..%2F{server.auth}/{action}",
                                       key=server.api.api_key(Role.SECURITY_OFFICER), check=False)
        assert traversal.status == 404
    assert server.deleted == [] and server.status(server.auth) == "SAVED" and server.status(server.sign) == "REGISTERED"


def test_unregister_without_the_registry_is_404(tmp_path: Path, anchor_bytes: bytes) -> None:
    """The API run without a registry connection answers 404 registration_unavailable."""
    api = Api(tmp_path / "server")
    answer = api.request("PUT", f"/api/v1/token-certificates/{'AB' * 32}/unregister",
                         key=api.api_key(Role.SECURITY_OFFICER))
    assert (answer.status, _code(answer)) == (404, "registration_unavailable")


def test_a_certificate_hash_is_matched_on_its_sha256(server: Server) -> None:
    """The configuration's listing is matched on the SHA-256 of the certificate's DER, as the hash shown."""
    der = server.api.server_dir.soft_token().auth_key(now=START)[1].public_bytes(Encoding.DER)
    assert hashlib.sha256(der).hexdigest().upper() == server.auth
