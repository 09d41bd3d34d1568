"""``GET /asic`` over loopback HTTP: X-Road's parameters, own clients only, local callers only, force."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Sequence

from cryptography import x509
from twisted.internet.address import IPv4Address
from twisted.trial import unittest
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from twisted.web.test.requesthelper import DummyRequest

from security_server.core.evidence import verify_evidence
from security_server.core.identifiers import ClientId
from security_server.messagelog.asic_resource import AsicResource, mount_asic
from security_server.messagelog.timestamper import Timestamper, TimestamperSettings, TsaEndpoint
from security_server.messagelog.tsa_client import TsaClient
from security_server.messagelog.writer import MessageLogWriter
from tests.loopback import REACTOR, Reply, http, serve
from tests.federation.departments import CONSUMER, PROVIDER
from tests.federation.evidence import exchange, federation
from tests.security_server.messagelog.stamping import stamp_all

OWN = {CONSUMER}


def query(client: ClientId = CONSUMER, query_id: str = "asic-1", *flags: str) -> str:
    """The query string of a download for ``client``."""
    parts = [f"queryId={query_id}", f"xRoadInstance={client.instance}", f"memberClass={client.member_class}",
             f"memberCode={client.member_code}"]
    if client.subsystem_code:
        parts.append(f"subsystemCode={client.subsystem_code}")
    return "asic?" + "&".join(parts + list(flags))


class AsicResourceTests(unittest.TestCase):
    """The resource on 127.0.0.1 over a real writer; the TSA on loopback for ``force``."""

    timeout = 30

    def setUp(self) -> None:
        folder = Path(self.mktemp())  # type: ignore[no-untyped-call]
        folder.mkdir(parents=True)
        self.folder = folder
        self.writer = MessageLogWriter(REACTOR, folder / "log.db")
        self.writer.start()
        self.addCleanup(self.writer.stop)
        tsa = serve(federation().tsa_resource(REACTOR, folder / "tsa-serial.json"))
        self.addCleanup(tsa.port.stopListening)

        def tsas() -> Sequence[TsaEndpoint]:
            return [TsaEndpoint("TSA", tsa.url, federation().tsa_cert)]

        def client(url: str, approved: Sequence[x509.Certificate]) -> TsaClient:
            return TsaClient(REACTOR, url, approved)

        self.timestamper = Timestamper(
            REACTOR, self.writer, tsas, settings=TimestamperSettings(interval_seconds=3600), client_factory=client
        )
        self.resource = AsicResource(REACTOR, self.writer, OWN.__contains__, timestamper=self.timestamper)
        served = serve(self.resource)
        self.addCleanup(served.port.stopListening)
        self.base = served.url

    async def logged(self, query_id: str = "asic-1", *, stamp: bool = True) -> None:
        for entry in exchange(query_id):
            await self.writer.log(entry)
        if stamp:
            await self.writer.run(stamp_all)

    async def get(self, path: str) -> Reply:
        return await http(b"GET", self.base + path)

    def error(self, reply: Reply) -> str:
        return str(json.loads(reply.body)["type"])

    async def test_download_gives_the_request_and_response_containers(self) -> None:
        """queryId + client: a zip with queryId-request-1.asice and queryId-response-2.asice, both verifying."""
        await self.logged()
        reply = await self.get(query())
        assert reply.code == 200 and reply.content_type == b"application/zip"
        with zipfile.ZipFile(io.BytesIO(reply.body)) as zipped:
            assert zipped.namelist() == ["asic-1-request-1.asice", "asic-1-response-2.asice"]
            for name in zipped.namelist():
                assert verify_evidence(zipped.read(name), federation().conf(), datetime.now(UTC)).ok

    async def test_request_only_and_unique_give_the_container_itself(self) -> None:
        """requestOnly&unique answers one application/vnd.etsi.asic-e+zip container."""
        await self.logged()
        reply = await self.get(query(CONSUMER, "asic-1", "requestOnly", "unique"))
        assert reply.code == 200 and reply.content_type == b"application/vnd.etsi.asic-e+zip"
        report = verify_evidence(reply.body, federation().conf(), datetime.now(UTC))
        assert report.ok and report.signer is not None and report.signer.client == CONSUMER

    async def test_response_only_zip(self) -> None:
        """responseOnly without unique: a zip holding only the response."""
        await self.logged()
        reply = await self.get(query(CONSUMER, "asic-1", "responseOnly"))
        with zipfile.ZipFile(io.BytesIO(reply.body)) as zipped:
            assert zipped.namelist() == ["asic-1-response-2.asice"]

    async def test_bad_parameter_combinations_are_bad_requests(self) -> None:
        """Both requestOnly and responseOnly, unique alone, or a missing memberCode: 400 bad_request."""
        await self.logged()
        for path in (
            query(CONSUMER, "asic-1", "requestOnly", "responseOnly"),
            query(CONSUMER, "asic-1", "unique"),
            "asic?queryId=asic-1&xRoadInstance=EE&memberClass=GOV",
        ):
            reply = await self.get(path)
            assert (reply.code, self.error(reply)) == (400, "server.clientproxy.bad_request"), path

    async def test_unknown_query_is_not_found(self) -> None:
        """A query id with no signed record of the client: 404 not_found."""
        reply = await self.get(query(CONSUMER, "nothing-here"))
        assert (reply.code, self.error(reply)) == (404, "server.clientproxy.not_found")

    async def test_a_client_of_another_server_is_refused(self) -> None:
        """The provider is not a client of this server: 403 access_denied even though its records exist here."""
        await self.logged()
        reply = await self.get(query(PROVIDER))
        assert reply.code == 403 and self.error(reply).endswith("access_denied")

    async def test_only_the_named_clients_records_are_given(self) -> None:
        """Another own client that is not a party of the exchange gets nothing (404)."""
        self.resource._is_own_client = lambda client: True
        await self.logged()
        stranger = ClientId("EE", "GOV", "99999999", "other")
        reply = await self.get(query(stranger))
        assert reply.code == 404

    async def test_records_without_timestamp_need_force(self) -> None:
        """Not yet timestamped: 500 with X-Road's message; with force they are stamped now and downloaded."""
        await self.logged(stamp=False)
        reply = await self.get(query())
        assert reply.code == 500 and b"not been timestamped" in reply.body
        forced = await self.get(query(CONSUMER, "asic-1", "force"))
        assert forced.code == 200, forced.body
        with zipfile.ZipFile(io.BytesIO(forced.body)) as zipped:
            for name in zipped.namelist():
                assert verify_evidence(zipped.read(name), federation().conf(), datetime.now(UTC)).ok

    def test_callers_from_other_hosts_are_refused(self) -> None:
        """A request from 10.0.0.5 is refused with 403 unless remote callers are allowed."""
        request: Any = DummyRequest([b"asic"])
        request.client = IPv4Address("TCP", "10.0.0.5", 40000)
        request.uri = b"/asic?queryId=x"
        self.resource.render_GET(request)
        assert request.responseCode == 403


class _Leaf(Resource):
    """A stand-in for the client proxy's leaf resource: answers with the path it saw."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        path: bytes = request.path
        return b"proxy saw " + path


class AsicMountTests(unittest.TestCase):
    """mount_asic puts /asic in front of the client proxy's site without touching its resource."""

    timeout = 30

    async def test_only_the_asic_path_goes_to_the_download_service(self) -> None:
        """/asic?... reaches the download service; /, /r1/..., /asic/x and /listClients reach the proxy leaf."""
        folder = Path(self.mktemp())  # type: ignore[no-untyped-call]
        folder.mkdir(parents=True)
        writer = MessageLogWriter(REACTOR, folder / "log.db")
        writer.start()
        self.addCleanup(writer.stop)
        site = Site(_Leaf())  # type: ignore[no-untyped-call]
        mount_asic(site, AsicResource(REACTOR, writer, OWN.__contains__))
        port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        base = f"http://127.0.0.1:{port.getHost().port}/"
        assert (await http(b"GET", base + query(CONSUMER, "none"))).code == 404
        for path in ("", "r1/EE/GOV/1/sub/service", "asic/x", "listClients"):
            reply = await http(b"POST", base + path, b"<x/>", b"text/xml")
            assert reply.body == b"proxy saw /" + path.encode(), path
