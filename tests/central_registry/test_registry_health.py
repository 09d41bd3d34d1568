"""The registry's health check and /metrics over a running registry on loopback (central_registry/health.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as global_reactor
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from central_registry.bootstrap import init_registry
from central_registry.service import RegistryService, RegistrySettings
from security_server.core.config import IniLayer, LayeredConfig
from tests.loopback import free_port, now
from tests.security_server.proxy.rest_provider import Reply, http_call
from tests.promtool import assert_metrics_pass

reactor: Any = global_reactor


class RegistryHealthTest(unittest.TestCase):
    """A running registry answers the health check and /metrics for its own parts."""

    timeout = 60

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-registry-health-"))
        http_port, https_port = free_port(), free_port()
        self.paths = init_registry(
            self.tmp / "registry", "EE", now(), public_url=f"http://127.0.0.1:{http_port}", ca_key_size=2048
        )
        self.registry = RegistryService(reactor, self.paths.root, http_port=http_port, https_port=https_port)
        self.registry.startService()
        self.http_port = http_port

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        yield self.registry.stopService()

    @defer.inlineCallbacks
    def test_healthy_then_each_broken_part_is_named_and_metrics_pass_promtool(self) -> Any:
        """200 while every part is fit; 500 naming the publishing or the signing key once broken; /metrics counts
        generations, requests by status and OCSP answers, and promtool finds nothing wrong."""
        yield self.registry.publish_now()
        yield self.registry.health.read_counts()
        port = self.registry.serve_health(0)
        checker = self.registry.health.checker
        checker.success_ttl = checker.failure_ttl = 0.0  # every request below runs the checks afresh

        def get(target_port: int, path: str) -> Reply:
            return http_call(target_port, "GET", path, {})

        healthy = yield deferToThread(get, port, "/")
        assert (healthy.status, healthy.body) == (200, b""), healthy
        refused = yield deferToThread(get, self.http_port, "/ocsp/not-base64!")  # an OCSP answer, counted
        assert refused.status in (200, 400), refused

        scraped = yield deferToThread(get, port, "/metrics")
        assert scraped.status == 200
        assert b"fedbus_registry_configuration_generations_published_total" in scraped.body
        assert b"fedbus_registry_registration_requests" in scraped.body or b"registration_requests" in scraped.body
        assert b"fedbus_registry_ocsp_requests_total{result=" in scraped.body
        assert_metrics_pass(scraped.body)

        self.registry.health.publishing_failed("disk full")
        broken = yield deferToThread(get, port, "/")
        assert broken.status == 500 and broken.body.startswith(b"Configuration publishing: "), broken
        assert b"disk full" in broken.body
        yield self.registry.publish_now()  # a success clears it
        (self.paths.root / "conf-signing" / "cert.pem").rename(self.tmp / "cert.pem")
        unsigned = yield deferToThread(get, port, "/")
        assert unsigned.status == 500 and unsigned.body.startswith(b"Configuration signing key: "), unsigned
        (self.tmp / "cert.pem").rename(self.paths.root / "conf-signing" / "cert.pem")
        healthy = yield deferToThread(get, port, "/")
        assert healthy.status == 200, healthy


def test_the_health_port_is_read_from_the_registry_configuration(tmp_path: Path) -> None:
    """``[healthcheck] port`` and ``interface`` of conf/central-registry.ini reach the registry's settings."""
    config = LayeredConfig.from_layers([IniLayer("local.ini", "[healthcheck]\nport = 9010\ninterface = 0.0.0.0\n")])
    settings = RegistrySettings.from_config(tmp_path, config)
    assert (settings.health.port, settings.health.interface) == (9010, "0.0.0.0")
    assert RegistrySettings.from_config(tmp_path, LayeredConfig.from_layers([])).health.port == 0
