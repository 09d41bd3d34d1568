"""The management API over a real loopback HTTPS port: its own certificate, X-Road's answers on the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.trial import unittest
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from security_server.admin.server_dir import ServerDirectory
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES, Role
from security_server.management.server import ManagementService
from security_server.management.tls import CERT_NAME, KEY_NAME
from tests.loopback import REACTOR
from tests.management_https import Document, PinnedPolicy
from tests.security_server.management.xroad_openapi import check_response


class HttpsTest(unittest.TestCase):
    """A ManagementService on 127.0.0.1, a free port."""

    def setUp(self) -> None:
        self.directory = Path(self.mktemp())  # type: ignore[no-untyped-call]  # trial leaves it unannotated
        self.directory.mkdir()
        with CredentialStore(self.directory / DB_NAME, ALL_ROLES) as store:
            self.key = store.create_api_key(frozenset({Role.SECURITYSERVER_OBSERVER}), created_by="test",
                                            now=datetime.now(UTC)).key
        self.service = ManagementService(REACTOR, ServerDirectory(self.directory), ManagementConfig(port=0))
        self.service.startService()

    def tearDown(self) -> Any:
        return self.service.stopService()

    async def _get(self, path: str, key: str | None) -> tuple[int, bytes, str]:
        policy = PinnedPolicy((self.directory / CERT_NAME).read_bytes())
        agent: Any = Agent(REACTOR, contextFactory=policy)  # type: ignore[no-untyped-call]
        headers = Headers({b"Authorization": [f"X-Road-ApiKey token={key}".encode()]} if key else {})
        response = await agent.request(b"GET", f"https://localhost:{self.service.port}{path}".encode(), headers, None)
        body = await readBody(response)
        kind = response.headers.getRawHeaders(b"content-type", [b""])[0].decode()
        return response.code, body, kind

    def test_status_over_https_matches_xroads_schema(self) -> defer.Deferred[None]:
        """GET /api/v1/initialization/status over TLS with an API key answers X-Road's InitializationStatus."""

        async def run() -> None:
            code, body, kind = await self._get("/api/v1/initialization/status", self.key)
            assert code == 200
            check_response("GET", "/api/v1/initialization/status", {}, code, kind, body)
            assert not json.loads(body)["is_anchor_imported"]

        return defer.Deferred.fromCoroutine(run())

    def test_no_key_over_https_is_401(self) -> defer.Deferred[None]:
        """Without a key the answer over TLS is 401 with the error object."""

        async def run() -> None:
            code, body, _ = await self._get("/api/v1/clients", None)
            assert (code, json.loads(body)["error"]["code"]) == (401, "unauthorized")

        return defer.Deferred.fromCoroutine(run())

    def test_the_certificate_is_made_once_and_kept_private(self) -> None:
        """The first start makes the key (mode 0600) and certificate; a restart keeps them."""
        key_path = self.directory / KEY_NAME
        assert key_path.stat().st_mode & 0o777 == 0o600
        before = (self.directory / CERT_NAME).read_bytes()
        self.service.stopService()
        self.service.startService()
        assert (self.directory / CERT_NAME).read_bytes() == before


class DescriptionFetchTest(unittest.TestCase):
    """The management API's description fetcher over a real loopback HTTP port."""

    def test_a_served_wsdl_is_fetched_whole(self) -> defer.Deferred[None]:
        """description_fetcher answers the bytes a provider serves at the URL."""
        from security_server.management.server import description_fetcher
        from tests.loopback import serve

        wsdl = (Path(__file__).resolve().parents[1] / "getrandom.wsdl").read_bytes()
        served = serve(Document(wsdl))

        async def run() -> None:
            try:
                fetched = await description_fetcher(REACTOR)(served.url + "getrandom.wsdl")
                assert fetched == wsdl
            finally:
                await served.port.stopListening()

        return defer.Deferred.fromCoroutine(run())
