"""Issue 15 end to end: operational records, the monitoring metaservices, /metrics and the health check of two
real security servers (tests/e2e_federation.py: registry, CA, OCSP, TSA, mutual TLS between the servers).

The consumer's system sends a SOAP request that succeeds, one the provider answers with a SOAP fault, one with
attachments and REST calls (the issue 6 traffic, tests/security_server/consumer_traffic.py). Then each server's
owner asks its own server for ``getSecurityServerOperationalData`` through the bus (X-Road: the owner's client
proxy sends to its own server proxy, named by the ``securityServer`` header), and every record is checked against
pr-opmon Annex B; the consumer asks the provider's server and sees only its own exchanges. Health data, metrics
(envmon), the bad-input faults, ``/metrics`` through ``promtool``, the health endpoint's 200 / 500 / 503 and the CLI
follow; last, a monitoring store and a recorder that raise fail no exchange.
"""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

from click.testing import CliRunner
from lxml import etree
from twisted.internet import defer, task
from twisted.internet.threads import deferToThread
from twisted.web import server

from security_server.cli import server as server_cli
from central_registry.store import RegistryStore
from security_server.core.acl import AccessRight
from security_server.core.identifiers import ClientId, SecurityServerId, ServiceId
from security_server.core.opmon.query import GET_HEALTH_DATA, GET_OPERATIONAL_DATA, OpmonSettings
from security_server.core.soap import SoapHeader, build_envelope
from security_server.core.soapattachments import parse_related
from security_server.monitoring import ServerMonitoring
from security_server.opmon.services import OpmonServices
from security_server.serverconf.store import ClientState, ServerConfStore
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, SERVICE, Department, reactor
from tests.security_server.consumer_traffic import department_system, publish_services
from tests.security_server.core.opmon.opmon_fixture import schema_problems
from tests.security_server.proxy.rest_provider import AttachmentEcho, Reply, RestProvider, http_call
from tests.promtool import assert_metrics_pass

OM = "http://x-road.eu/xsd/op-monitoring.xsd"
ENVMON = "http://x-road.eu/xsd/monitoring"
FAULTY = ServiceId(PROVIDER, "findPerson", "v1")
SOAP_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}


def request(client: ClientId, service: ServiceId, body: etree._Element, *, message_id: str,
            target: SecurityServerId | None = None) -> bytes:
    """A SOAP 4.0 request of ``client`` for ``service`` (at ``target``, if given) with ``body``."""
    return build_envelope(SoapHeader(client=client, service=service, id=message_id, security_server=target), body)


def element(xml: str) -> etree._Element:
    """One body element from its XML text."""
    return etree.fromstring(xml)


def criteria(records_from: int, records_to: int, extra: str = "", *, client: ClientId | None = None) -> etree._Element:
    """A ``getSecurityServerOperationalData`` body (pr-opmon Annex C.1), with ``extra`` after the criteria."""
    body = element(
        f'<om:getSecurityServerOperationalData xmlns:om="{OM}"><om:searchCriteria>'
        f"<om:recordsFrom>{records_from}</om:recordsFrom><om:recordsTo>{records_to}</om:recordsTo>"
        f"</om:searchCriteria>{extra}</om:getSecurityServerOperationalData>"
    )
    if client is not None:
        body[0].append(client.to_xml(etree.QName(OM, "client")))
    return body


def fault_code(reply: Reply) -> str | None:
    """The ``faultcode`` of a SOAP fault answer, or None when the answer is no fault."""
    try:
        root = etree.fromstring(reply.body)
    except etree.XMLSyntaxError:
        return None
    return root.findtext(".//faultcode")


def records_of(reply: Reply) -> list[dict[str, Any]]:
    """The records of a ``getSecurityServerOperationalData`` answer, after checking the payload against Annex B."""
    assert reply.status == 200, reply
    answer = parse_related(reply.header("content-type") or "", reply.body)
    count = etree.fromstring(answer.soap.body).findtext(f".//{{{OM}}}recordsCount")
    (attachment,) = answer.attachments
    payload = json.loads(gzip.decompress(attachment.body))
    assert schema_problems(payload) == []
    records: list[dict[str, Any]] = payload["records"]
    assert count == str(len(records))
    return records


def one(records: list[dict[str, Any]], message_id: str, side: str) -> dict[str, Any]:
    """The record of exchange ``message_id`` on ``side`` (``Client`` or ``Producer``)."""
    (found,) = [r for r in records if r.get("messageId") == message_id and r["securityServerType"] == side]
    return found


def check_times(record: dict[str, Any]) -> None:
    """The four timestamps are in the order the exchange happened."""
    assert record["requestInTs"] <= record["requestOutTs"] <= record["responseInTs"] <= record["responseOutTs"], record


class MonitoringEndToEndTest(federation.TwoDepartmentFederation):
    """Operational monitoring, metaservices, metrics and the health check of two running security servers."""

    extra_ports: list[Any]

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        for port in getattr(self, "extra_ports", []):
            yield port.stopListening()
        yield super().tearDown()

    @defer.inlineCallbacks
    def flush(self, *departments: Department) -> Any:
        """Store what each server's buffer holds, and let its metaservices see records stored just now (their
        clock a few seconds ahead: X-Road serves a second only once it is over, pr-opmon §2)."""
        for department in departments:
            monitoring: ServerMonitoring = department.service.monitoring
            yield monitoring.writer.flush()
            ahead = task.Clock()
            ahead.advance(reactor.seconds() + 5)
            old = monitoring.opmon_services
            monitoring.opmon_services = OpmonServices(
                monitoring.store, monitoring.thread.run, owner=lambda d=department: d.server_id.owner,  # type: ignore[misc]
                monitoring_client=monitoring.monitoring_client, clock=ahead, startup_ms=old.startup_ms,
                settings=OpmonSettings(records_available_offset_seconds=0),
            )

    @defer.inlineCallbacks
    def test_records_metaservices_metrics_and_health_of_two_running_servers(self) -> Any:
        """Every exchange leaves a valid record on both sides; the owner sees all, others their own; health works."""
        rest_provider, attachment_echo = RestProvider(), AttachmentEcho()
        self.extra_ports = [
            reactor.listenTCP(0, server.Site(rest_provider), interface="127.0.0.1"),  # type: ignore[no-untyped-call]
            reactor.listenTCP(0, server.Site(attachment_echo), interface="127.0.0.1"),  # type: ignore[no-untyped-call]
        ]
        rest_port, echo_port = (p.getHost().port for p in self.extra_ports)
        soap_port = self.provider_port.getHost().port
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        publish_services(provider.root, rest_port, soap_port, echo_port)
        with ServerConfStore(provider.root / "serverconf.db") as store:
            store.add_service(FAULTY, url=f"http://127.0.0.1:{soap_port}/fault")
            store.grant(AccessRight.for_service(CONSUMER, FAULTY))
        for department, owner in ((consumer, CONSUMER_MEMBER), (provider, PROVIDER_MEMBER)):
            with ServerConfStore(department.root / "serverconf.db") as store:  # the owner registers with its server
                store.set_client_state(owner, ClientState.REGISTRATION_IN_PROGRESS)
        yield self.catch_up(consumer, provider)
        ss1, ss2 = consumer.service.client_proxy_port, provider.service.client_proxy_port
        getrandom = element('<p:getRandom xmlns:p="http://test.fedbus.example/producer"><seed>7</seed></p:getRandom>')
        find_person = element('<p:findPerson xmlns:p="http://test.fedbus.example/producer"><name>X</name></p:findPerson>')

        def traffic() -> dict[str, Any]:
            out = department_system(ss1)  # REST calls, metadata, attachments, refused calls
            out["ok"] = http_call(ss1, "POST", "/", SOAP_HEADERS, request(CONSUMER, SERVICE, getrandom, message_id="om-ok"))
            out["fault"] = http_call(ss1, "POST", "/", SOAP_HEADERS, request(CONSUMER, FAULTY, find_person, message_id="om-fault"))
            # the provider's owner asks its own server: an exchange the consumer takes no part in
            health = element(f'<om:getSecurityServerHealthData xmlns:om="{OM}"/>')
            out["owner"] = http_call(ss2, "POST", "/", SOAP_HEADERS, request(
                PROVIDER_MEMBER, ServiceId(PROVIDER_MEMBER, GET_HEALTH_DATA), health, message_id="om-owner",
                target=provider.server_id))
            return out

        out = yield deferToThread(traffic)
        assert out["ok"].status == 200 and fault_code(out["ok"]) is None, out["ok"]
        assert fault_code(out["fault"]) == "SOAP-ENV:Server.PersonNotFound"
        assert out["attachments"].status == 200 and out["get"].status == 200
        assert out["owner"].status == 200 and fault_code(out["owner"]) is None, out["owner"]
        yield self.flush(consumer, provider)

        now = int(reactor.seconds())
        wide = criteria(now - 3600, now + 3600)

        def ask(port: int, client: ClientId, owner: ClientId, code: str, body: etree._Element,
                target: SecurityServerId) -> Reply:
            message = request(client, ServiceId(owner, code), body, message_id=f"om-{uuid.uuid4()}", target=target)
            return http_call(port, "POST", "/", SOAP_HEADERS, message)

        # The owners, each through its own server; the consumer asks the provider's server (forwarded to it).
        answers = yield deferToThread(lambda: {
            "ss1_owner": ask(ss1, CONSUMER_MEMBER, CONSUMER_MEMBER, GET_OPERATIONAL_DATA, wide, consumer.server_id),
            "ss2_owner": ask(ss2, PROVIDER_MEMBER, PROVIDER_MEMBER, GET_OPERATIONAL_DATA, wide, provider.server_id),
            "ss2_by_consumer": ask(ss1, CONSUMER, PROVIDER_MEMBER, GET_OPERATIONAL_DATA, wide, provider.server_id),
            "health": ask(ss2, PROVIDER_MEMBER, PROVIDER_MEMBER, GET_HEALTH_DATA,
                          element(f'<om:getSecurityServerHealthData xmlns:om="{OM}"/>'), provider.server_id),
            "metrics": ask(ss2, PROVIDER_MEMBER, PROVIDER_MEMBER, "getSecurityServerMetrics",
                           element(f'<m:getSecurityServerMetrics xmlns:m="{ENVMON}"/>'), provider.server_id),
            "metrics_by_consumer": ask(ss1, CONSUMER, PROVIDER_MEMBER, "getSecurityServerMetrics",
                                       element(f'<m:getSecurityServerMetrics xmlns:m="{ENVMON}"/>'), provider.server_id),
            "from_after_to": ask(ss2, PROVIDER_MEMBER, PROVIDER_MEMBER, GET_OPERATIONAL_DATA,
                                 criteria(now - 10, now - 20), provider.server_id),
            "unknown_field": ask(ss2, PROVIDER_MEMBER, PROVIDER_MEMBER, GET_OPERATIONAL_DATA,
                                 criteria(now - 10, now, f'<om:outputSpec><om:outputField>secretField</om:outputField>'
                                                         f'</om:outputSpec>'), provider.server_id),
            "malformed": ask(ss2, PROVIDER_MEMBER, PROVIDER_MEMBER, GET_OPERATIONAL_DATA,
                             element(f'<om:getSecurityServerOperationalData xmlns:om="{OM}"><om:searchCriteria>'
                                     f'<om:recordsFrom>yesterday</om:recordsFrom><om:recordsTo>1</om:recordsTo>'
                                     f'</om:searchCriteria></om:getSecurityServerOperationalData>'), provider.server_id),
            "filter_other_member": ask(ss1, CONSUMER, PROVIDER_MEMBER, GET_OPERATIONAL_DATA,
                                       criteria(now - 3600, now + 3600, client=PROVIDER), provider.server_id),
        })

        # Producer side (ss2, by its owner): the four kinds of exchange, every field as X-Road has it.
        produced = records_of(answers["ss2_owner"])
        ok = one(produced, "om-ok", "Producer")
        check_times(ok)
        assert ok["succeeded"] is True and ok["serviceType"] == "WSDL" and ok["statusCode"] == 200
        assert (ok["clientXRoadInstance"], ok["clientMemberClass"], ok["clientMemberCode"], ok["clientSubsystemCode"]) == (
            "EE", "GOV", "70000310", "consumer")
        assert (ok["serviceMemberCode"], ok["serviceSubsystemCode"], ok["serviceCode"], ok["serviceVersion"]) == (
            "70000311", "provider", "getRandom", "v1")
        assert ok["messageProtocolVersion"] == "4.0" and ok["xRoadVersion"].startswith("fedbus")
        assert ok["serviceSecurityServerAddress"].startswith("127.0.0.1")
        assert ok["clientSecurityServerAddress"].startswith("127.0.0.1")
        assert ok["clientSecurityServerAddress"] != ok["serviceSecurityServerAddress"]
        assert ok["securityServerInternalIp"] == "127.0.0.1"  # the server proxy's address; the owner sees it
        assert ok["requestSize"] > 0 and ok["responseSize"] > 0 and "faultCode" not in ok
        fault = one(produced, "om-fault", "Producer")
        assert fault["succeeded"] is False and fault["faultCode"] == "SOAP-ENV:Server.PersonNotFound"
        assert fault["faultString"] == "No such person" and fault["statusCode"] == 500
        attached = one(produced, "e2e-attachments", "Producer")
        assert attached["succeeded"] is True and attached["requestAttachmentCount"] == 2
        assert attached["requestMimeSize"] > attached["requestSize"] and attached["responseAttachmentCount"] == 2
        rest = one(produced, "e2e-get", "Producer")
        check_times(rest)
        assert rest["restMethod"] == "GET" and rest["restPath"] == "/v2/pets/1124" and rest["serviceType"] == "OPENAPI3"
        assert rest["statusCode"] == 200 and rest["serviceCode"] == "pets" and "messageProtocolVersion" not in rest

        # Client side (ss1, by its owner): the same exchanges with both servers' addresses and the IS's status.
        sent = records_of(answers["ss1_owner"])
        ok = one(sent, "om-ok", "Client")
        check_times(ok)
        assert ok["succeeded"] is True and ok["statusCode"] == 200
        assert ok["clientSecurityServerAddress"] != ok["serviceSecurityServerAddress"]
        fault = one(sent, "om-fault", "Client")
        assert fault["succeeded"] is False and fault["faultCode"] == "SOAP-ENV:Server.PersonNotFound"
        attached = one(sent, "e2e-attachments", "Client")
        assert attached["requestAttachmentCount"] == 2 and attached["responseAttachmentCount"] == 2
        assert attached["responseMimeSize"] > attached["responseSize"]
        rest = one(sent, "e2e-get", "Client")
        assert rest["restMethod"] == "GET" and rest["serviceType"] == "REST" and rest["statusCode"] == 200
        refused = [r for r in sent if r.get("faultCode") == "client.bad_request"]
        assert refused and all(r["succeeded"] is False for r in refused)

        # A client that is not the owner sees only the exchanges it took part in.
        own = records_of(answers["ss2_by_consumer"])
        assert own and all(
            r.get("clientSubsystemCode") == "consumer" or r.get("serviceSubsystemCode") == "consumer" for r in own
        )
        owners = one(produced, "om-owner", "Producer")
        assert owners["clientMemberCode"] == "70000311" and "clientSubsystemCode" not in owners
        assert owners["serviceCode"] == GET_HEALTH_DATA and owners["succeeded"] is True
        one(produced, "om-owner", "Client")  # the owner's request left through its own server's client proxy
        assert "om-owner" not in {r.get("messageId") for r in own} and len(own) == len(produced) - 2
        assert not any("securityServerInternalIp" in r for r in own)
        filtered = records_of(answers["filter_other_member"])  # another member named: the view never widens
        assert filtered and all(r.get("clientSubsystemCode") == "consumer" and r["serviceSubsystemCode"] == "provider"
                                for r in filtered)

        # Health data and metrics: the owner gets them; metrics are the owner's and the monitoring client's only.
        health = etree.fromstring(answers["health"].body)
        assert health.findtext(f".//{{{OM}}}monitoringStartupTimestamp")
        assert "getRandom" in {e.findtext(".//{http://x-road.eu/xsd/identifiers}serviceCode")
                               for e in health.iter(f"{{{OM}}}serviceEvents")}
        assert b"proxyVersion" in answers["metrics"].body and fault_code(answers["metrics"]) is None
        assert (fault_code(answers["metrics_by_consumer"]) or "").endswith("access_denied")
        for bad in ("from_after_to", "unknown_field", "malformed"):
            assert (fault_code(answers[bad]) or "").endswith("invalid_request"), (bad, answers[bad])

        yield self.check_metrics_and_health(provider)
        yield self.check_the_central_monitoring_client(consumer, provider, ss1, wide, len(produced))
        yield self.check_monitoring_never_fails_an_exchange(consumer, provider, ss1, getrandom)

    @defer.inlineCallbacks
    def check_the_central_monitoring_client(
        self, consumer: Department, provider: Department, ss1: int, wide: etree._Element, owner_saw: int
    ) -> Any:
        """Once the registry names the consumer the central monitoring client (the MONITORING part of the global
        configuration), it sees every record of the provider's server and may read its metrics."""
        store = RegistryStore(self.paths.database)
        try:
            store.set_setting("monitoring_client", CONSUMER.to_display())
        finally:
            store.close()
        yield self.catch_up(consumer, provider)
        assert provider.service.conf_client.current().monitoring_client == CONSUMER
        yield self.flush(provider)

        def ask(code: str, body: etree._Element) -> Reply:
            message = request(CONSUMER, ServiceId(PROVIDER_MEMBER, code), body, message_id=f"om-{uuid.uuid4()}",
                              target=provider.server_id)
            return http_call(ss1, "POST", "/", SOAP_HEADERS, message)

        metrics = yield deferToThread(ask, "getSecurityServerMetrics", element(f'<m:getSecurityServerMetrics xmlns:m="{ENVMON}"/>'))
        assert fault_code(metrics) is None and b"proxyVersion" in metrics.body, metrics
        everything = records_of((yield deferToThread(ask, GET_OPERATIONAL_DATA, wide)))
        assert len(everything) > owner_saw and "om-owner" in {r.get("messageId") for r in everything}

    @defer.inlineCallbacks
    def check_metrics_and_health(self, provider: Department) -> Any:
        """/metrics passes promtool; the health endpoint answers 200, 500 naming a broken check, 503 in maintenance;
        the CLI switches maintenance and shows the checks and the traffic."""
        monitoring: ServerMonitoring = provider.service.monitoring
        yield monitoring.read_backlog()
        port = monitoring.serve_health(0)
        checker = monitoring.checker
        checker.success_ttl = checker.failure_ttl = 0.0  # every request below runs the checks afresh

        def get(path: str) -> Reply:
            return http_call(port, "GET", path, {})

        scraped = yield deferToThread(get, "/metrics")
        assert scraped.status == 200 and b"fedbus_exchanges_total" in scraped.body
        for family in (b"fedbus_certificate_expiry_seconds", b"fedbus_ocsp_response_age_seconds",
                       b"fedbus_messagelog_awaiting_timestamp_records", b"fedbus_exchange_phase_seconds_bucket",
                       b"fedbus_peer_pool_connections", b"fedbus_replay_guard_entries"):
            assert family in scraped.body, family
        assert_metrics_pass(scraped.body)

        healthy = yield deferToThread(get, "/")
        assert (healthy.status, healthy.body) == (200, b""), healthy
        timestamper = provider.service.evidence.timestamper
        timestamper.failed_since, timestamper.last_error = reactor.seconds() - 10**7, "TSA unreachable"
        broken = yield deferToThread(get, "/")
        assert broken.status == 500 and broken.body.startswith(b"Timestamping"), broken
        timestamper.failed_since, timestamper.last_error = None, None

        runner = CliRunner()
        switched = yield deferToThread(runner.invoke, server_cli, ["maintenance", "on", "--port", str(port)])
        assert switched.exit_code == 0 and "false => true" in switched.output, switched.output
        maintained = yield deferToThread(get, "/")
        assert (maintained.status, maintained.body) == (503, b"Health check interface is in maintenance mode\n")
        status = yield deferToThread(
            runner.invoke, server_cli, ["status", "--dir", str(provider.root), "--port", str(port), "--json"]
        )
        assert status.exit_code == 0, status.output
        report = json.loads(status.output)
        assert report["health"]["status"] == 503 and report["health"]["maintenance"] is True
        lines = {(t["role"], t["service"]): t for t in report["traffic_last_hour"]}
        assert lines[("Producer", "SERVICE:EE/GOV/70000311/provider/findPerson/v1")]["failed"] == 1
        assert lines[("Producer", "SERVICE:EE/GOV/70000311/provider/getRandom/v1")]["succeeded"] >= 1
        switched = yield deferToThread(runner.invoke, server_cli, ["maintenance", "off", "--port", str(port)])
        assert "true => false" in switched.output
        checker.success_ttl = checker.failure_ttl = 30.0  # the status view shows the results the cache holds
        table = yield deferToThread(runner.invoke, server_cli, ["status", "--dir", str(provider.root), "--port", str(port)])
        assert "health: healthy" in table.output and "Authentication key OCSP status" in table.output, table.output

    @defer.inlineCallbacks
    def check_monitoring_never_fails_an_exchange(
        self, consumer: Department, provider: Department, ss1: int, body: etree._Element
    ) -> Any:
        """A store that raises and a recorder that raises leave the exchange answered; the writer says why."""

        class BrokenStore:
            def store(self, records: Any, second: int) -> int:
                raise OSError("disk on fire")

        writer = provider.service.monitoring.writer
        writer.store = BrokenStore()  # type: ignore[assignment]
        recorder = consumer.service.monitoring.recorder
        assert recorder is not None

        def explode(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("recorder bug")

        recorder.finished = explode  # type: ignore[method-assign]
        reply = yield deferToThread(
            http_call, ss1, "POST", "/", SOAP_HEADERS, request(CONSUMER, SERVICE, body, message_id="om-after")
        )
        assert reply.status == 200 and fault_code(reply) is None, reply
        yield writer.flush()
        assert writer.healthy()[0] is False and "disk on fire" in writer.healthy()[1]
        assert "om-after" in {r.message_id for r in writer.buffer.drain(1000)}  # the failed batch went back
