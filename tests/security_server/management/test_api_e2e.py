"""Issue 16 end to end: a security server set up through the management API, then serving a call through the bus.

The federation of tests/e2e_federation.py (registry with its CA, OCSP responder and TSA; a SOAP provider) and a
consumer department set up as there. The provider's security server is set up over real HTTPS with one API key,
every step through the API: the API alone before the server exists (anchor, initialisation, auth and sign keys
with their requests, the CA's certificates imported), then the API of the running server (the auth certificate
registered with the server's address, a client added and registered, a WSDL added by URL, a service changed, a
right granted, diagnostics read). Every answer to a path of X-Road's file is checked against it. The consumer's
system then calls getRandom through both servers and gets the provider's answer; the client is then unregistered
(clientDeletion, approved by the registry) and deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from central_registry.trust.ca import CertKind, DevelopmentCA
from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import SecurityServerId
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES, Role
from security_server.management.server import ManagementService
from security_server.serverconf.store import ClientState
from security_server.service import ServerSettings, make_service
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, SERVICE, zeep_call
from tests.loopback import REACTOR, now, serve
from tests.management_https import Document, HttpsApiClient
from tests.security_server.management.xroad_openapi import XROAD

WSDL = Path(__file__).resolve().parents[1] / "getrandom.wsdl"
PROVIDER_ID = "EE:GOV:70000311:provider"
SERVICE_ID = f"{PROVIDER_ID}:getRandom.v1"


def _api_key(directory: Path) -> str:
    """An API key with every role but the observer's, as ``fedbus server api-key create`` makes it."""
    roles = frozenset({Role.SYSTEM_ADMINISTRATOR, Role.SECURITY_OFFICER, Role.REGISTRATION_OFFICER,
                       Role.SERVICE_ADMINISTRATOR})
    with CredentialStore(directory / DB_NAME, ALL_ROLES) as store:
        return store.create_api_key(roles, created_by="admin", now=datetime.now(UTC)).key


def _csr_request(usage: str, member: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"key_usage_type": usage, "ca_name": "fedbus development CA", "csr_format": "PEM",
                            "subject_field_values": {"O": "Provider Department"}}
    if member is not None:
        spec["member_id"] = member
    return {"key_label": usage.lower(), "csr_generate_request": spec}


class ManagementApiEndToEndTest(federation.TwoDepartmentFederation):
    """The provider's security server set up through the API; a consumer's call reaches its service."""

    def test_a_server_set_up_through_the_api_serves_a_call(self) -> defer.Deferred[None]:
        """Anchor, init, keys, certificates, registration, client, WSDL by URL, right: zeep gets getRandom's answer."""
        return defer.Deferred.fromCoroutine(self._scenario())

    async def _scenario(self) -> None:
        await self.registry.publish_now()
        anchor = self.anchor()
        consumer = await self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        root = self.tmp / "ss2"
        root.mkdir()
        key = _api_key(root)

        # --- before the server exists: the API alone, as X-Road's admin UI before initialisation ----------------
        alone = ManagementService(REACTOR, ServerDirectory(root), ManagementConfig(port=0))
        alone.startService()
        try:
            api = HttpsApiClient(root, alone.port, key, XROAD)
            await api.json("POST", "/system/anchor", 201, body=anchor, content_type="application/octet-stream")
            await api.json("POST", "/initialization", 201, json_body={
                "owner_member_class": "GOV", "owner_member_code": "70000311", "security_server_code": "ss2",
                "software_token_pin": "Secret-1234"})
            status = await api.json("GET", "/initialization/status", 200)
            assert status["is_anchor_imported"] and status["is_server_code_initialized"]
            ca = DevelopmentCA.open(self.paths.ca)
            auth_hash = ""
            for usage, kind, member in (("AUTHENTICATION", CertKind.AUTH, None),
                                        ("SIGNING", CertKind.SIGN, "EE:GOV:70000311")):
                made = await api.json("POST", "/tokens/soft/keys-with-csrs", 201, json_body=_csr_request(usage, member))
                key_id, csr_id = made["key"]["id"], made["csr_id"]
                _, pem = await api.call("GET", f"/keys/{key_id}/csrs/{csr_id}", query="csr_format=PEM")
                cert = ca.issue(pem, kind, now())  # the registry's CA, as its operator signs the request
                imported = await api.json("POST", "/token-certificates", 201, body=cert.public_bytes(Encoding.DER),
                                          content_type="application/octet-stream")
                assert imported["certificate_details"]["issuer_common_name"]
                if kind is CertKind.AUTH:
                    auth_hash = imported["certificate_details"]["hash"]
        finally:
            await alone.stopService()

        # --- the server runs, with its API ---------------------------------------------------------------------
        settings = ServerSettings(root=root, client_proxy_port=0, server_proxy_port=0, conf_refresh_seconds=3600,
                                  management=ManagementConfig(port=0))
        svc = make_service(REACTOR, settings)
        svc.startService()
        server_id = SecurityServerId(PROVIDER_MEMBER, "ss2")
        provider = federation.Department(root, server_id, PROVIDER, svc)
        self.departments.append(provider)
        result = await svc.conf_client.refresh()
        assert result.applied, result.error
        svc.restart_ocsp()
        assert svc.ocsp is not None
        for entry in svc.token.list():
            if entry.cert is not None:
                await svc.ocsp.refresh(entry.cert)

        api = HttpsApiClient(root, svc.management.port, key, XROAD)
        await api.json("PUT", f"/token-certificates/{auth_hash}/register", 200,
                       json_body={"address": f"127.0.0.1:{svc.server_proxy_port}"})
        await self.registry.publish_now()
        await svc.conf_client.refresh()
        await api.json("POST", "/clients", 201, json_body={
            "client": {"member_class": "GOV", "member_code": "70000311", "subsystem_code": "provider"}})
        await api.json("PUT", f"/clients/{PROVIDER_ID}/register", 204)
        await self.catch_up(consumer, provider)
        shown = await api.json("GET", f"/clients/{PROVIDER_ID}", 200)
        assert shown["status"] == "REGISTERED", shown
        hosted = svc._snapshot.client(PROVIDER)
        assert hosted is not None and hosted.state is ClientState.REGISTERED

        echo = f"http://127.0.0.1:{self.provider_port.getHost().port}/echo"
        wsdl = WSDL.read_bytes().replace(b"http://127.0.0.1:8080/", echo.encode())
        published = serve(Document(wsdl))
        try:
            added = await api.json("POST", f"/clients/{PROVIDER_ID}/service-descriptions", 201, json_body={
                "url": published.url + "getrandom.wsdl", "type": "WSDL"})
        finally:
            await published.port.stopListening()
        assert [s["id"] for s in added["services"]] == [SERVICE_ID] and added["services"][0]["url"] == echo
        changed = await api.json("PATCH", f"/services/{quote(SERVICE_ID)}", 200,
                                 json_body={"url": echo, "timeout": 30, "ssl_auth": False})
        assert changed["timeout"] == 30
        await api.json("POST", f"/services/{quote(SERVICE_ID)}/service-clients", 201, json_body={
            "items": [{"id": "EE:GOV:70000310:consumer", "service_client_type": "SUBSYSTEM"}]})
        diagnostics = await api.json("GET", "/diagnostics/globalconf", 200)
        assert diagnostics["status_class"] == "OK", diagnostics
        await self.catch_up(consumer, provider)

        address = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"
        result_value, _ = await deferToThread(zeep_call, address, "api-e2e-1")
        assert result_value == "42"
        assert SERVICE in {s.id for s in svc._snapshot.services}

        # Taking the client out again: clientDeletion to the registry, then the client deleted here.
        await api.json("PUT", f"/clients/{PROVIDER_ID}/unregister", 204)
        assert (await api.json("GET", f"/clients/{PROVIDER_ID}", 200))["status"] == "DELETION_IN_PROGRESS"
        await self.catch_up(provider)
        assert not svc.conf_client.current().is_hosted_by(PROVIDER, server_id)
        await api.json("DELETE", f"/clients/{PROVIDER_ID}", 204)
        assert ServerDirectory(root).snapshot().client(PROVIDER) is None
