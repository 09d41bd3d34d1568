"""The one call a proxy makes when an exchange is finished: the record goes to the opmon buffer, the counts and
phase durations to the Prometheus metrics. Nothing here waits, and nothing here raises into the proxy."""

from __future__ import annotations

from typing import Callable, Mapping

import structlog

from security_server.core.opmon.record import OperationalRecord, SecurityServerType, service_label
from security_server.metrics import ServerMetrics
from security_server.opmon.buffer import OpmonBuffer

_log = structlog.get_logger("fedbus.opmon")

UNKNOWN = "unknown"
"""The label for a service or client an exchange failed before naming (e.g. a malformed request)."""


class ExchangeRecorder:
    """Hands each finished exchange to the buffer and the metrics."""

    def __init__(
        self, buffer: OpmonBuffer, metrics: ServerMetrics | None = None, *, internal_ip: str | None = None
    ) -> None:
        self.buffer = buffer
        self.metrics = metrics
        self.internal_ip = internal_ip
        """This server's IPv4 address for the records' ``securityServerInternalIp`` (None: left out)."""

    def finished(self, build: Callable[[], OperationalRecord], phases: Mapping[str, float] = {}) -> None:
        """Record one exchange: ``build`` makes its record (a failure to build is counted, never raised);
        ``phases`` are the seconds spent in each phase (see :data:`security_server.metrics.PHASES`)."""
        try:
            record = build()
        except Exception as err:
            self.buffer.unbuildable += 1
            _log.warning("opmon_record_unbuildable", error=f"{type(err).__name__}: {err}")
            return
        self.buffer.add(record)
        if self.metrics is None:
            return
        try:
            direction = "client" if record.security_server_type is SecurityServerType.CLIENT else "server"
            fault = None if record.succeeded else (record.fault_code or "failed")
            self.metrics.exchange_finished(
                direction,
                UNKNOWN if record.service is None else service_label(record.service),
                UNKNOWN if record.client is None else record.client.to_display(),
                fault,
                phases,
            )
        except Exception as err:  # pragma: no cover - exchange_finished does not raise; kept so nothing can
            _log.warning("metrics_event_dropped", error=f"{type(err).__name__}: {err}")
