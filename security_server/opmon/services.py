"""The server proxy's handlers for X-Road's monitoring metaservices: parse, decide (core), read (store, in the
worker thread), answer. The server proxy calls :meth:`OpmonServices.answer` for ``getSecurityServerOperationalData``
and ``getSecurityServerHealthData`` and :meth:`EnvmonService.answer` for ``getSecurityServerMetrics`` when the
request's service belongs to this server's owner (X-Road ``OpMonitoringServiceHandlerImpl.canHandle``); it signs,
logs and returns the answer like any provider's. A bad request fails the Deferred with the ``BusError`` to send
back as a fault (``client.invalid_request``, ``server.serverproxy.access_denied``, ``server.database_error``).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, fail

from security_server.core.envmon import check_access, metrics_response, parse_metrics_request
from security_server.core.errors import InvalidRequest
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.opmon.query import (
    GET_HEALTH_DATA,
    GET_OPERATIONAL_DATA,
    OpmonSettings,
    answer_records,
    health_data_response,
    operational_data_response,
    parse_health_data_request,
    parse_operational_data_request,
    plan_query,
    service_health,
)
from security_server.core.soap import SOAP_CONTENT_TYPE, SoapMessage
from security_server.envmon.sensors import SystemSampler
from security_server.opmon.store import OpmonStore

Runner = Callable[[Callable[[], Any]], "Deferred[Any]"]
"""Runs a store or sensor call off the reactor (``SingleThread.run`` in production) and fires on the reactor."""


def _requester(request: SoapMessage) -> ClientId:
    if request.header is None:
        raise InvalidRequest("a fault message is not a request")
    return request.header.client


class OpmonServices:
    """``getSecurityServerOperationalData`` and ``getSecurityServerHealthData`` over the opmon store."""

    def __init__(
        self,
        store: OpmonStore,
        run: Runner,
        *,
        owner: Callable[[], ClientId],
        monitoring_client: Callable[[], ClientId | None],
        clock: Any,
        startup_ms: int,
        settings: OpmonSettings = OpmonSettings(),
    ) -> None:
        self._store = store
        self._run = run
        self._owner = owner
        self._monitoring_client = monitoring_client
        self._clock = clock
        self.startup_ms = startup_ms
        self.settings = settings

    def answer(self, request: SoapMessage, request_hash: tuple[str, str]) -> Deferred[tuple[str, bytes]]:
        """The ``(Content-Type, body)`` answer to an opmon request, or a failure with its ``BusError``."""
        try:
            code = request.header.service.service_code if request.header is not None else None
            if code == GET_OPERATIONAL_DATA:
                return self._operational_data(request, request_hash)
            if code == GET_HEALTH_DATA:
                return self._health_data(request, request_hash)
            raise InvalidRequest(f"not an operational monitoring service: {code}")
        except Exception as err:
            return fail(err)

    def _operational_data(self, request: SoapMessage, request_hash: tuple[str, str]) -> Deferred[tuple[str, bytes]]:
        query = plan_query(
            parse_operational_data_request(request),
            requester=_requester(request),
            owner=self._owner(),
            monitoring_client=self._monitoring_client(),
            now_seconds=int(self._clock.seconds()),
            settings=self.settings,
        )

        def respond(records: Any) -> tuple[str, bytes]:
            answered, next_from = answer_records(query, records)
            return operational_data_response(request, request_hash, answered, next_from)

        return self._run(lambda: self._store.query(query)).addCallback(respond)

    def _health_data(self, request: SoapMessage, request_hash: tuple[str, str]) -> Deferred[tuple[str, bytes]]:
        provider = parse_health_data_request(request)
        now_ms = int(self._clock.seconds() * 1000)
        period = self.settings.health_statistics_period_seconds
        since = max(self.startup_ms, now_ms - period * 1000)

        def respond(records: Any) -> tuple[str, bytes]:
            services = service_health(
                [r for r in records if r.response_out_ts is None or r.response_out_ts >= self.startup_ms],
                now_ms=now_ms, period_seconds=period, provider=provider,
            )
            body = health_data_response(request, request_hash, startup_ms=self.startup_ms, period_seconds=period,
                                        services=services)
            return SOAP_CONTENT_TYPE, body

        return self._run(lambda: self._store.health_records(since)).addCallback(respond)


class EnvmonService:
    """``getSecurityServerMetrics`` over the system sampler."""

    def __init__(
        self,
        sampler: SystemSampler,
        run: Runner,
        *,
        server: Callable[[], SecurityServerId],
        monitoring_client: Callable[[], ClientId | None],
        proxy_version: str,
    ) -> None:
        self._sampler = sampler
        self._run = run
        self._server = server
        self._monitoring_client = monitoring_client
        self.proxy_version = proxy_version

    def answer(self, request: SoapMessage, request_hash: tuple[str, str]) -> Deferred[tuple[str, bytes]]:
        """The ``(Content-Type, body)`` answer, or a failure with ``access_denied`` / ``invalid_request``."""
        try:
            server = self._server()
            check_access(_requester(request), owner=server.owner, monitoring_client=self._monitoring_client())
            wanted = parse_metrics_request(request)
        except Exception as err:
            return fail(err)

        def respond(metrics: Any) -> tuple[str, bytes]:
            body = metrics_response(request, request_hash, server=server, proxy_version=self.proxy_version,
                                    system_metrics=metrics)
            return SOAP_CONTENT_TYPE, body

        return self._run(lambda: self._sampler.metrics(wanted)).addCallback(respond)
