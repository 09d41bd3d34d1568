"""The running registry serves its management API over HTTPS on loopback, on the registry's own store."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as global_reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from central_registry.bootstrap import init_registry
from central_registry.management.config import DEFAULT_PORT
from central_registry.management.roles import Role
from central_registry.service import RegistryService, RegistrySettings
from security_server.core.config import IniLayer, LayeredConfig
from security_server.management.config import ManagementConfig
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.tls import CERT_NAME
from tests.loopback import free_port, now

reactor: Any = global_reactor


def _get(port: int, cert: Path, path: str, key: str, body: Any = None) -> tuple[int, Any]:
    """One request over HTTPS (a POST when there is a JSON ``body``), the certificate pinned."""
    context = ssl.create_default_context(cafile=str(cert))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    headers = {"Authorization": f"X-Road-ApiKey token={key}"}
    try:
        if body is None:
            connection.request("GET", path, headers=headers)
        else:
            connection.request("POST", path, body=json.dumps(body), headers={**headers,
                                                                               "Content-Type": "application/json"})
        answer = connection.getresponse()
        data = answer.read()
        return answer.status, json.loads(data) if data else None
    finally:
        connection.close()


class ServedApiTest(unittest.TestCase):
    """``RegistryService`` with ``[management]`` listens with TLS and answers from the running registry's store."""

    timeout = 60

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-registry-api-"))
        http_port = free_port()
        self.paths = init_registry(self.tmp / "registry", "EE", now(), public_url=f"http://127.0.0.1:{http_port}",
                                   dev_ca=False)
        with CredentialStore(self.paths.root / DB_NAME, frozenset(Role)) as store:
            self.key = store.create_api_key(frozenset({Role.OBSERVER}), created_by="test", now=now()).key
        self.registry = RegistryService(reactor, self.paths.root, http_port=http_port, https_port=free_port(),
                                        management=ManagementConfig(port=0))
        self.registry.startService()

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        yield self.registry.stopService()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @defer.inlineCallbacks
    def test_member_classes_over_https(self) -> Any:
        """GET /api/v1/member-classes over TLS answers the classes ``fedbus registry init`` made."""
        cert = self.paths.root / CERT_NAME
        status, body = yield deferToThread(_get, self.registry.management_port, cert, "/api/v1/member-classes",
                                           self.key)
        assert status == 200
        assert [c["code"] for c in body] == ["COM", "GOV"]


class InitialisationThroughTheServedApiTest(unittest.TestCase):
    """``fedbus registry serve`` on a directory without a registry serves the API alone; initialised through it,
    the registry runs at its next start."""

    timeout = 60

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-registry-init-"))
        self.root = self.tmp / "registry"
        self.root.mkdir()
        with CredentialStore(self.root / DB_NAME, frozenset(Role)) as store:
            self.key = store.create_api_key(frozenset({Role.SYSTEM_ADMINISTRATOR}), created_by="test", now=now()).key
        self.services: list[RegistryService] = []

    def _start(self) -> RegistryService:
        registry = RegistryService(reactor, self.root, http_port=free_port(), https_port=free_port(),
                                   management=ManagementConfig(port=0))
        registry.startService()
        self.services.append(registry)
        return registry

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        for registry in self.services:
            if registry.running:
                yield registry.stopService()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @defer.inlineCallbacks
    def test_initialised_through_the_api_then_started(self) -> Any:
        """Status NOT_INITIALIZED, POST /initialization 201, and after a restart the registry publishes."""
        waiting = self._start()
        assert waiting.publisher is None and not (self.root / "registry.db").exists()
        cert = self.root / CERT_NAME
        status, body = yield deferToThread(_get, waiting.management_port, cert, "/api/v1/initialization/status",
                                           self.key)
        assert (status, body["software_token_init_status"]) == (200, "NOT_INITIALIZED")
        init = {"instance_identifier": "EE", "central_server_address": "127.0.0.1", "software_token_pin": "1234"}
        status, _ = yield deferToThread(_get, waiting.management_port, cert, "/api/v1/initialization", self.key, init)
        assert status == 201
        yield waiting.stopService()
        running = self._start()
        assert running.publisher is not None
        status, body = yield deferToThread(_get, running.management_port, cert, "/api/v1/system/status", self.key)
        assert body["initialization_status"]["instance_identifier"] == "EE"
        status, classes = yield deferToThread(_get, running.management_port, cert, "/api/v1/member-classes", self.key)
        assert (status, classes) == (200, [])


def test_the_management_port_is_read_from_the_registry_configuration(tmp_path: Path) -> None:
    """``[management]`` gives the port; without it the registry's default (4100, not a security server's 4000)."""
    default = RegistrySettings.from_config(tmp_path, LayeredConfig.from_layers([]))
    assert default.management.port == DEFAULT_PORT == 4100
    layer = IniLayer("local.ini", "[management]\nport = 4999\ninterface = 0.0.0.0\n")
    configured = RegistrySettings.from_config(tmp_path, LayeredConfig.from_layers([layer]))
    assert (configured.management.port, configured.management.interface) == (4999, "0.0.0.0")
