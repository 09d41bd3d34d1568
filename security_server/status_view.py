"""What ``fedbus server status`` and ``fedbus server maintenance`` read: the running server's health checks and
maintenance switch over its health port (loopback: ``/checks``, ``/maintenance``), and the last hour's traffic
from the operational monitoring store in the server's directory.

The CLI is a short-lived process, so it asks with a plain blocking HTTP request; the server answers from its
checks' cache (security_server/edge/health_resource.py), so asking costs no more than a load balancer's poll.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from security_server.core.config import LayeredConfig
from security_server.core.errors import ConfigurationError
from security_server.core.opmon.query import RecordQuery, TrafficLine, traffic_summary
from security_server.monitoring import OPMON_DATABASE, MonitoringSettings
from security_server.opmon.store import OpmonStore

TIMEOUT_SECONDS = 10.0
TRAFFIC_WINDOW_SECONDS = 3600
_MAX_RECORDS = 10_000_000


@dataclass(frozen=True, slots=True)
class HealthPort:
    """Where the running server's health port answers its own CLI."""

    host: str
    port: int

    @classmethod
    def from_config(cls, config: LayeredConfig, port: int | None = None) -> HealthPort:
        """``[healthcheck] port`` and ``interface`` (a wildcard interface is asked on the loopback); ``port``
        overrides the configured one. :class:`ConfigurationError` when the port is off."""
        settings = MonitoringSettings.from_config(config)
        chosen = settings.healthcheck_port if port is None else port
        if not chosen:
            raise ConfigurationError("the health check port is off: set [healthcheck] port (or give --port)")
        interface = settings.healthcheck_interface
        host = "127.0.0.1" if interface in ("", "0.0.0.0") else "::1" if interface == "::" else interface
        return cls(host, chosen)

    def get(self, path: str) -> tuple[int, bytes]:
        """``GET path``: the status and body; :class:`ConfigurationError` when the server cannot be reached."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        except OSError as err:
            raise ConfigurationError(
                f"the security server does not answer on {self.host}:{self.port} (is it running?)", reason=str(err)
            ) from err
        finally:
            connection.close()

    def checks(self) -> dict[str, Any]:
        """The verdict and each check's cached result (``/checks``)."""
        status, body = self.get("/checks")
        if status != 200:
            raise ConfigurationError(f"the health port answered {status}: {body.decode('utf-8', 'replace').strip()}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    def set_maintenance(self, on: bool) -> str:
        """Switch maintenance mode; the server's one-line answer (``Maintenance mode set: false => true``)."""
        status, body = self.get(f"/maintenance?targetState={'true' if on else 'false'}")
        text = body.decode("utf-8", "replace").strip()
        if status != 200:
            raise ConfigurationError(f"maintenance mode was not switched: {text}")
        return text


def recent_traffic(directory: Path, now_seconds: float, window_seconds: int = TRAFFIC_WINDOW_SECONDS) -> tuple[TrafficLine, ...]:
    """The exchanges of the last ``window_seconds`` per role and service, from ``opmon.db`` in ``directory``
    (none when the server has stored no record yet)."""
    path = directory / OPMON_DATABASE
    if not path.exists():
        return ()
    since = int(now_seconds) - window_seconds
    store = OpmonStore(path)
    try:
        # Records are stored within seconds of their exchange: a minute's margin finds every one that started
        # in the window, and traffic_summary keeps those by their own request time.
        records = store.query(RecordQuery(
            records_from=max(0, since - 60), records_to=int(now_seconds) + 60, participant=None, provider=None,
            output_fields=frozenset(), public_only=False, limit=_MAX_RECORDS,
        ))
    finally:
        store.close()
    return traffic_summary(records, since_ms=since * 1000)
