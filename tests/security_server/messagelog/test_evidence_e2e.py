"""Issue 7 end to end: a real SOAP exchange, timestamped by the registry's TSA, downloaded from /asic, verified.

Two security servers from ``make_service`` exchange one SOAP message over mutual TLS (the issue 5 end-to-end
set-up). The consumer's evidence services are wired exactly as the service will wire them
(``make_evidence_services`` around its writer, ``/asic`` served on loopback): the batch timestamper gets a token
from the registry's TSA, ``/asic`` hands out the request and response containers, ``fedbus audit
verificationconf`` exports the trust configuration from the server's stored global configuration, and both
containers and the archive verify with it.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.web.server import Site

from security_server.audit_cli import audit
from security_server.core.archive import verify_archive
from security_server.core.evidence import read_verification_conf, verify_evidence
from security_server.messagelog.archiver import ArchiverSettings
from security_server.messagelog.asic_export import record_container
from security_server.messagelog.evidence_services import EvidenceSettings, make_evidence_services
from security_server.messagelog.timestamper import TimestamperSettings
from security_server.messagelog.store import MessageLogStore
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, reactor, zeep_call
from tests.loopback import http, serve
from tests.security_server import consumer_traffic
from tests.security_server.proxy.rest_provider import AttachmentEcho, RestProvider


class EvidenceEndToEndTest(federation.TwoDepartmentFederation):
    """The SOAP exchange of issue 5 with the evidence services of issue 7 running on the consumer's server."""

    @defer.inlineCallbacks
    def test_exchange_is_timestamped_downloadable_and_verifiable(self) -> Any:
        """After one exchange the consumer's /asic gives both containers; they, and the archive, verify."""
        consumer, provider = yield self.start_pair()

        # The wiring the service will do (see the report): evidence services around the writer, /asic mounted.
        svc = consumer.service
        settings = EvidenceSettings(
            TimestamperSettings(interval_seconds=3600), ArchiverSettings(archive_dir=consumer.root / "archive")
        )
        evidence = make_evidence_services(reactor, svc.message_log, svc.conf_client.current, svc.context.server_conf, settings)
        evidence.setServiceParent(svc)  # type: ignore[no-untyped-call]  # starts now; stops before the writer
        asic = serve(evidence.asic)
        self.addCleanup(asic.port.stopListening)

        address = f"http://127.0.0.1:{svc.client_proxy_port}/"
        result, _ = yield deferToThread(zeep_call, address, "e2e-evidence-1")
        assert result == "42"
        stamped = yield evidence.timestamper.stamp_pending()
        assert stamped == 4  # two exchanges (zeep's two calls), request and response each
        assert evidence.timestamper.tokens_received == 1

        query = (
            f"asic?queryId=e2e-evidence-1&xRoadInstance={CONSUMER.instance}&memberClass={CONSUMER.member_class}"
            f"&memberCode={CONSUMER.member_code}&subsystemCode={CONSUMER.subsystem_code}"
        )
        reply = yield defer.ensureDeferred(http(b"GET", asic.url + query))
        assert reply.code == 200, reply.body

        conf_dir = consumer.root / "verificationconf"
        exported = yield deferToThread(
            CliRunner().invoke, audit, ["verificationconf", "--dir", str(consumer.root), "--out", str(conf_dir)]
        )
        assert exported.exit_code == 0, exported.output
        conf = read_verification_conf(
            {p.relative_to(conf_dir).as_posix(): p.read_bytes() for p in conf_dir.rglob("*") if p.is_file()}
        )
        with zipfile.ZipFile(io.BytesIO(reply.body)) as zipped:
            names = zipped.namelist()
            assert [name.rsplit("-", 1)[0] for name in names] == ["e2e-evidence-1-request", "e2e-evidence-1-response"]
            signers = []
            for name in names:
                report = verify_evidence(zipped.read(name), conf, datetime.now(UTC))
                assert report.ok, (name, report.checks)
                assert report.signer is not None
                signers.append(report.signer.client)
        assert signers == [CONSUMER, PROVIDER]

        [archive] = yield evidence.archiver.archive_now()
        verdict = verify_archive(Path(archive).read_bytes(), None)
        assert verdict.ok and len(verdict.containers) == 4
        checked = yield deferToThread(
            CliRunner().invoke, audit, ["verify", "archive", str(archive), "--first", "--conf", str(conf_dir)]
        )
        assert checked.exit_code == 0, checked.output
        logged = yield deferToThread(CliRunner().invoke, audit, ["verify", "log", "--dir", str(consumer.root), "--conf", str(conf_dir)])
        assert logged.exit_code == 0, logged.output


class RestEvidenceEndToEndTest(federation.TwoDepartmentFederation):
    """The REST, metadata and attachment exchanges of issue 6, exported from both logs as evidence and verified."""

    extra_ports: list[Any]

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        for port in getattr(self, "extra_ports", []):
            yield port.stopListening()
        yield super().tearDown()

    @defer.inlineCallbacks
    def test_every_signed_rest_soap_and_attachment_record_verifies_as_evidence(self) -> Any:
        """After the issue 6 traffic, every signed record in both logs, timestamped by the registry's TSA, exports
        to a container that verifies, naming the right signer (REST parts, SOAP with attachments, metadata)."""
        rest_provider, attachment_echo = RestProvider(), AttachmentEcho()
        self.extra_ports = [
            reactor.listenTCP(0, Site(rest_provider), interface="127.0.0.1"),  # type: ignore[no-untyped-call]
            reactor.listenTCP(0, Site(attachment_echo), interface="127.0.0.1"),  # type: ignore[no-untyped-call]
        ]
        rest_port, echo_port = (p.getHost().port for p in self.extra_ports)
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor)
        consumer_traffic.publish_services(provider.root, rest_port, self.provider_port.getHost().port, echo_port)
        yield self.catch_up(consumer, provider)
        evidence = []
        for department in (consumer, provider):
            svc = department.service
            settings = EvidenceSettings(
                TimestamperSettings(interval_seconds=3600), ArchiverSettings(archive_dir=department.root / "archive")
            )
            services = make_evidence_services(reactor, svc.message_log, svc.conf_client.current, svc.context.server_conf, settings)
            services.setServiceParent(svc)  # type: ignore[no-untyped-call]
            evidence.append(services)

        out = yield deferToThread(consumer_traffic.department_system, consumer.service.client_proxy_port)
        assert out["attachments"].status == 200 and out["get"].status == 200
        conf_dir = consumer.root / "verificationconf"
        exported = yield deferToThread(
            CliRunner().invoke, audit, ["verificationconf", "--dir", str(consumer.root), "--out", str(conf_dir)]
        )
        assert exported.exit_code == 0, exported.output
        conf = read_verification_conf(
            {p.relative_to(conf_dir).as_posix(): p.read_bytes() for p in conf_dir.rglob("*") if p.is_file()}
        )
        kinds: set[tuple[str, str, bool]] = set()
        for department, services in zip((consumer, provider), evidence):
            stamped = yield services.timestamper.stamp_pending()
            assert stamped > 0 and services.timestamper.failed_since is None

            def containers(store: MessageLogStore) -> list[tuple[int, str, bytes]]:
                return [
                    (record.id, record.query_id, record_container(record, store.timestamp_of(record.id)))
                    for record in store.records()
                    if record.signature
                ]

            found = yield svc_run(department.service, containers)
            assert len(found) >= 20
            for record_id, query_id, data in found:
                report = verify_evidence(data, conf, datetime.now(UTC))
                assert report.ok, (department.root.name, record_id, query_id, report.checks)
                assert report.signer is not None
                expected = PROVIDER if report.signer.response else CONSUMER
                assert report.signer.client == expected, (query_id, report.signer)
                kinds.add((report.signer.kind, query_id, report.signer.response))
        assert ("REST", "e2e-get", False) in kinds and ("REST", "e2e-get", True) in kinds
        assert ("SOAP", "e2e-attachments", False) in kinds and ("SOAP", "e2e-attachments", True) in kinds


def svc_run(service: Any, function: Any) -> Any:
    """Run a store function in the service's message-log writer thread."""
    return service.message_log.run(function)
