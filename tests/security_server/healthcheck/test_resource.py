"""The health endpoint over a real loopback port: 200 empty, 500 with the reason, 503 in maintenance, /metrics."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from security_server.healthcheck import checks
from security_server.edge.health_checker import HealthChecker
from security_server.edge.health_resource import HealthResource, MaintenanceResource
from security_server.metrics import GaugeSources, ServerMetrics
from tests.loopback import REACTOR, http, serve


class HealthResourceTests(unittest.TestCase):
    """One server on 127.0.0.1 whose message-log source the test switches."""

    def setUp(self) -> None:
        self.log_ok: dict[str, Any] = {"ok": True}
        checker = HealthChecker([checks.auth_key(lambda: True),
                                 checks.messagelog_writer(lambda: (self.log_ok["ok"], "disk full"))], REACTOR,
                                success_ttl=0.0, failure_ttl=0.0)
        self.checker = checker
        metrics = ServerMetrics(GaugeSources(replay_guard_size=lambda: 9))
        served = serve(HealthResource(checker, metrics.render))
        self.url = served.url
        self.addCleanup(served.port.stopListening)

    async def test_verdicts_and_metrics_over_http(self) -> None:
        """200 with no body; 500 naming the failed check; 503 in maintenance; /metrics the exposition."""
        healthy = await http(b"GET", self.url)
        assert (healthy.code, healthy.body) == (200, b"")
        self.log_ok["ok"] = False
        failed = await http(b"GET", self.url)
        assert (failed.code, failed.body) == (500, b"Message log: disk full\n")
        self.checker.set_maintenance(True)
        maintenance = await http(b"GET", self.url + "anything")
        assert (maintenance.code, maintenance.body) == (503, b"Health check interface is in maintenance mode\n")
        metrics = await http(b"GET", self.url + "metrics")
        assert metrics.code == 200
        assert metrics.content_type.startswith(b"text/plain; version=0.0.4")
        assert b"fedbus_replay_guard_entries 9.0" in metrics.body


class MaintenanceResourceTests(unittest.TestCase):
    """The admin switch on 127.0.0.1."""

    def setUp(self) -> None:
        self.checker = HealthChecker([checks.auth_key(lambda: True)], REACTOR)
        served = serve(MaintenanceResource(self.checker))
        self.url = served.url
        self.addCleanup(served.port.stopListening)

    async def test_switch_on_and_off_with_x_road_answers(self) -> None:
        """targetState=true/false switches maintenance and answers as X-Road; anything else is a 400."""
        on = await http(b"GET", self.url + "?targetState=true")
        assert (on.code, on.body, self.checker.maintenance) == (200, b"Maintenance mode set: false => true\n", True)
        off = await http(b"GET", self.url + "?targetState=false")
        assert (off.body, self.checker.maintenance) == (b"Maintenance mode set: true => false\n", False)
        bad = await http(b"GET", self.url + "?targetState=maybe")
        assert (bad.code, self.checker.maintenance) == (400, False)
