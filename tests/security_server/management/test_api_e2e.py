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

from pathlib import Path
from urllib.parse import quote

from twisted.internet import defer
from twisted.internet.threads import deferToThread

from central_registry.trust.ca import DevelopmentCA
from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import SecurityServerId
from security_server.management.config import ManagementConfig
from security_server.serverconf.store import ClientState
from security_server.service import ServerSettings, make_service
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, SERVICE, zeep_call
from tests.loopback import REACTOR, serve
from tests.management_https import Document, HttpsApiClient
from tests.security_server.management.api_setup import initialise_through_api, server_api_key
from tests.security_server.management.xroad_openapi import XROAD

WSDL = Path(__file__).resolve().parents[1] / "getrandom.wsdl"
PROVIDER_ID = "EE:GOV:70000311:provider"
SERVICE_ID = f"{PROVIDER_ID}:getRandom.v1"


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
        key = server_api_key(root)

        # --- before the server exists: the API alone, as X-Road's admin UI before initialisation ----------------
        ca = DevelopmentCA.open(self.paths.ca)
        auth_hash = await initialise_through_api(
            root, key, anchor, PROVIDER_MEMBER, "ss2", ca, "fedbus development CA", "Provider Department")

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
