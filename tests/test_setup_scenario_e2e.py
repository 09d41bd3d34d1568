"""X-Road's setup scenario end to end, through the registry's and the security servers' management APIs alone.

A registry process starts with its management API only (no registry yet) and is initialised through it; its test
CA with OCSP responder and TSA is made in its ``ca/`` folder the way ``fedbus registry init`` makes the
development CA (a direct call: the CA's operator, not the API), and served by the registry's HTTP site. Then,
over HTTPS with API keys: a member class, two members and their subsystems are added; the CA (with its OCSP
responder) and the TSA are approved; the anchor is downloaded and uploaded to two security servers, which are
initialised, make their auth and sign keys with CSRs (signed by the test CA: a direct call, as its operator
does), import the certificates, register their auth certificates and clients; each registration is approved on
the registry's API. The provider adds a service description and grants the consumer access; the consumer's
system then calls getRandom through both servers. Every answer is checked against X-Road's OpenAPI file of its
API. The processes' own loops (publishing, configuration download, OCSP refresh) are nudged rather than waited
for, as in tests/e2e_federation.py.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from twisted.web import server

from central_registry.management.roles import Role as RegistryRole
from central_registry.service import RegistryPaths, RegistryService
from central_registry.trust.ca import DevelopmentCA
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.service import SecurityServerService, ServerSettings, make_service
from tests.central_registry.management.xroad_cs_openapi import XROAD_CS
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, SERVICE, zeep_call
from tests.federation.provider import ProviderService
from tests.loopback import REACTOR, free_port, now, serve
from tests.management_https import Document, HttpsApiClient
from tests.security_server.management.api_setup import initialise_through_api, server_api_key
from tests.security_server.management.xroad_openapi import XROAD

WSDL = Path(__file__).resolve().parent / "security_server" / "getrandom.wsdl"
CA_NAME = "EE Test CA"
PROVIDER_ID = "EE:GOV:70000311:provider"
SERVICE_ID = f"{PROVIDER_ID}:getRandom.v1"


def _key(directory: Path, roles: frozenset[str], all_roles: frozenset[str]) -> str:
    """An API key with ``roles``, as ``fedbus registry|server api-key create`` makes it."""
    directory.mkdir(parents=True, exist_ok=True)
    with CredentialStore(directory / DB_NAME, all_roles) as store:
        return store.create_api_key(roles, created_by="admin", now=datetime.now(UTC)).key


def _client_id(client: ClientId) -> dict[str, str]:
    assert client.subsystem_code is not None
    return {"member_class": client.member_class, "member_code": client.member_code,
            "subsystem_code": client.subsystem_code}


def _encoded(client: ClientId) -> str:
    """X-Road's encoded client id (``EE:GOV:70000311:provider``)."""
    return f"{client.instance}:{client.member_class}:{client.member_code}:{client.subsystem_code}"


class SetupScenarioTest(unittest.TestCase):
    """A whole federation set up through the two APIs serves one call through the bus."""

    timeout = 240

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-setup-"))
        self.root = self.tmp / "registry"
        self.http_port = free_port()
        self.public_url = f"http://127.0.0.1:{self.http_port}"
        self.registry_key = _key(self.root, frozenset({RegistryRole.SYSTEM_ADMINISTRATOR,
                                                       RegistryRole.REGISTRATION_OFFICER,
                                                       RegistryRole.SECURITY_OFFICER}), frozenset(RegistryRole))
        self.registries: list[RegistryService] = []
        self.servers: list[SecurityServerService] = []
        self._ss_keys: dict[Path, str] = {}
        self.provider = ProviderService()
        self.provider_port = REACTOR.listenTCP(0, server.Site(self.provider), interface="127.0.0.1")  # type: ignore[no-untyped-call]

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        self.provider.release()
        for svc in self.servers:
            yield svc.stopService()
        yield self.provider_port.stopListening()
        for registry in self.registries:
            if registry.running:
                yield registry.stopService()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _start_registry(self) -> RegistryService:
        registry = RegistryService(REACTOR, self.root, http_port=self.http_port, https_port=free_port(),
                                   public_url=self.public_url, management=ManagementConfig(port=0))
        registry.startService()
        self.registries.append(registry)
        return registry

    def test_a_federation_set_up_through_both_apis_serves_a_call(self) -> defer.Deferred[None]:
        """Registry initialised, classes, members, CA/OCSP/TSA approved, anchor to two servers, their keys,
        certificates and registrations approved on the registry's API, a service and a right: the call answers."""
        return defer.Deferred.fromCoroutine(self._scenario())

    async def _scenario(self) -> None:
        # --- the registry: its API alone, initialised through it ---------------------------------------------
        waiting = self._start_registry()
        api = HttpsApiClient(self.root, waiting.management_port, self.registry_key, XROAD_CS)
        await api.json("POST", "/initialization", 201, json_body={
            "instance_identifier": "EE", "central_server_address": "127.0.0.1", "software_token_pin": "Secret-1234"})
        await waiting.stopService()
        # The test CA, its OCSP responder and TSA: made by their operator (not the API) in the registry's ca/
        # folder, which the registry's HTTP site serves (/ocsp, /tsa), as for ``fedbus registry init``.
        ca = DevelopmentCA.init(RegistryPaths(self.root).ca, CA_NAME, now(), key_size=2048,
                                ocsp_url=f"{self.public_url}/ocsp")
        ocsp_cert, tsa_cert = ca.issue_ocsp_cert(now()), ca.issue_tsa_cert(now())
        registry = self._start_registry()
        api = HttpsApiClient(self.root, registry.management_port, self.registry_key, XROAD_CS)

        await api.json("POST", "/member-classes", 201, json_body={"code": "GOV", "description": "Government"})
        for member, name in ((CONSUMER_MEMBER, "Consumer Department"), (PROVIDER_MEMBER, "Provider Department")):
            await api.json("POST", "/members", 201, json_body={
                "member_id": {"member_class": member.member_class, "member_code": member.member_code},
                "member_name": name})
        for client in (CONSUMER, PROVIDER):
            await api.json("POST", "/subsystems", 201, json_body={"subsystem_id": _client_id(client)})
        added = await api.upload("/certification-services", {"certificate_profile_info": "fedbus", "tls_auth": "true"},
                                 ca.certificate.public_bytes(Encoding.DER))
        await api.upload(f"/certification-services/{added['id']}/ocsp-responders",
                         {"url": f"{self.public_url}/ocsp", "cost_type": "FREE"}, ocsp_cert.public_bytes(Encoding.DER))
        await api.upload("/timestamping-services", {"url": f"{self.public_url}/tsa", "cost_type": "FREE"},
                         tsa_cert.public_bytes(Encoding.DER))
        await registry.publish_now()
        status, anchor = await api.call("GET", "/configuration-sources/INTERNAL/anchor/download")
        assert status == 200 and anchor.startswith(b"<?xml")

        # --- two security servers, through their API ---------------------------------------------------------
        consumer = await self._security_server(api, registry, anchor, CONSUMER_MEMBER, "ss1", CONSUMER)
        provider = await self._security_server(api, registry, anchor, PROVIDER_MEMBER, "ss2", PROVIDER)
        assert provider.management is not None
        provider_api = HttpsApiClient(self.tmp / "ss2", provider.management.port, self._ss_keys[self.tmp / "ss2"], XROAD)
        echo = f"http://127.0.0.1:{self.provider_port.getHost().port}/echo"
        wsdl = WSDL.read_bytes().replace(b"http://127.0.0.1:8080/", echo.encode())
        published = serve(Document(wsdl))
        try:
            described = await provider_api.json("POST", f"/clients/{PROVIDER_ID}/service-descriptions", 201,
                                                json_body={"url": published.url + "getrandom.wsdl", "type": "WSDL"})
        finally:
            await published.port.stopListening()
        assert [s["id"] for s in described["services"]] == [SERVICE_ID]
        await provider_api.json("PATCH", f"/services/{quote(SERVICE_ID)}", 200,
                                json_body={"url": echo, "timeout": 30, "ssl_auth": False})
        await provider_api.json("POST", f"/services/{quote(SERVICE_ID)}/service-clients", 201, json_body={
            "items": [{"id": "EE:GOV:70000310:consumer", "service_client_type": "SUBSYSTEM"}]})
        await self._catch_up(registry, consumer, provider)

        # --- one real exchange through the bus ---------------------------------------------------------------
        address = f"http://127.0.0.1:{consumer.client_proxy_port}/"
        result, _ = await deferToThread(zeep_call, address, "setup-scenario-1")
        assert result == "42"
        assert SERVICE in {s.id for s in provider._snapshot.services}
        shown = await api.json("GET", "/security-servers/EE:GOV:70000311:ss2/clients", 200)
        assert PROVIDER_ID in {c["client_id"]["encoded_id"] for c in shown}

    async def _security_server(self, registry_api: HttpsApiClient, registry: RegistryService, anchor: bytes,
                               member: ClientId, code: str, client: ClientId) -> SecurityServerService:
        """Set up security server ``code`` of ``member`` through its API, its registrations approved on the
        registry's; it hosts ``client``, registered."""
        root = self.tmp / code
        key = server_api_key(root)
        self._ss_keys[root] = key
        ca = DevelopmentCA.open(RegistryPaths(self.root).ca)
        auth_hash = await initialise_through_api(root, key, anchor, member, code, ca, CA_NAME, "Department")

        settings = ServerSettings(root=root, client_proxy_port=0, server_proxy_port=0, conf_refresh_seconds=3600,
                                  management=ManagementConfig(port=0))
        svc = make_service(REACTOR, settings)
        svc.startService()
        self.servers.append(svc)
        await self._catch_up(registry, svc)
        api = HttpsApiClient(root, svc.management.port, key, XROAD)
        await api.json("PUT", f"/token-certificates/{auth_hash}/register", 200,
                       json_body={"address": f"127.0.0.1:{svc.server_proxy_port}"})
        await self._approve_waiting(registry_api, "AUTH_CERT_REGISTRATION_REQUEST")
        await self._catch_up(registry, svc)
        await api.json("POST", "/clients", 201, json_body={"client": _client_id(client)})
        await api.json("PUT", f"/clients/{_encoded(client)}/register", 204)
        await self._approve_waiting(registry_api, "CLIENT_REGISTRATION_REQUEST")
        await self._catch_up(registry, svc)
        shown = await api.json("GET", f"/clients/{_encoded(client)}", 200)
        assert shown["status"] == "REGISTERED", shown
        server_id = SecurityServerId(member, code)
        assert svc.conf_client.current().is_hosted_by(client, server_id)
        return svc

    async def _approve_waiting(self, api: HttpsApiClient, kind: str) -> None:
        """Approve the one waiting request of ``kind`` on the registry's API."""
        found = await api.json("GET", "/management-requests", 200, query=f"status=WAITING&types={kind}")
        assert len(found["items"]) == 1, found
        approved = await api.json("POST", f"/management-requests/{found['items'][0]['id']}/approval", 200)
        assert approved["status"] == "APPROVED", approved

    async def _catch_up(self, registry: RegistryService, *servers: SecurityServerService) -> None:
        """Publish, then have each server download the configuration, reload its own and refresh its OCSP."""
        await registry.publish_now()
        for svc in servers:
            result = await svc.conf_client.refresh()
            assert result.applied or result.error is None, result.error
            svc.restart_ocsp()
            await svc.reload_serverconf()
            assert svc.ocsp is not None
            for entry in svc.token.list():
                if entry.cert is not None:
                    await svc.ocsp.refresh(entry.cert)
