"""Issue 22 item 7: the server's own dependencies fail (TSA, disk, registry, clock) and come back.

Each case runs the real exchange pipeline of tests/federation/world.py (both proxies through the in-memory link,
real keys, OCSP, server configurations and SQLite message logs) with the failing part on an injectable clock, and
pins what the consumer's system sees while the dependency is down (X-Road's server-side fault code, never a
``client.*`` one), that nothing half-written is left in the message log (the hash chain verifies, every logged
request has its response or failure record), and that service resumes by itself when the dependency returns, with
no restart. The operators' summary of the same cases is docs/operations.md, "What happens when ...".
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import sqlite3
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from click.testing import CliRunner
from cryptography import x509
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.web import resource, server

from central_registry.publisher import Publication, Publisher, SelfSignedKey
from central_registry.trust.ca import CertKind, DevelopmentCA
from central_registry.trust.ocsp_responder import build_ocsp_response
from central_registry.store import RegistryStore
from security_server import shared_replay_guard
from security_server.audit_cli import audit
from security_server.confclient.client import ConfClient
from security_server.core.certprofile import signing_subject
from security_server.core.errors import IncorrectValidationInfo, InvalidRequest
from security_server.core.globalconf import parse_configuration_anchor
from security_server.core.identifiers import ClientId
from security_server.core.logchain import Direction
from security_server.core.replay import ReplayGuard
from security_server.core.rest import header_value
from security_server.core.signing_clock import SigningClock
from security_server.messagelog.store import MessageLogStore
from security_server.messagelog.timestamper import Timestamper, TimestamperSettings, TsaEndpoint
from security_server.messagelog.tsa_client import TsaClient
from security_server.messagelog.writer import MessageLogWriter
from security_server.proxy.client_proxy import ClientProxy
from security_server.proxy.server_proxy import ServerProxy
from security_server.signer.ocsp_client import OcspClient, OwnCertificate
from tests.federation.evidence import federation
from tests.federation.pki import make_csr
from tests.federation.world import ExchangeBed, Server, fault_code, is_request, signing_keys
from tests.loopback import REACTOR, Served, coroutine_test, serve

REST_PATH = "/r1/EE/GOV/70000002/service/restService"
CLIENT_HEADER = ("X-Road-Client", "EE/GOV/70000001/client")


def refusing(stamper: Timestamper) -> bool:
    """Whether ``stamper`` refuses new records now (read through a call: the answer changes as time passes)."""
    return stamper.refusing


def failed_since(stamper: Timestamper) -> float | None:
    """When ``stamper``'s failure began, if one is going on."""
    return stamper.failed_since


def healthy(part: Any) -> bool:
    """A writer's or configuration client's health now."""
    return bool(part.healthy)


def whole(path: Path) -> dict[str | None, list[tuple[Direction, bool]]]:
    """The message log at ``path`` verified whole: its exchanges (``(direction, succeeded)`` by X-Road-Request-Id),
    each a logged request followed by exactly one response or failure record."""
    with MessageLogStore(path) as store:
        verified = store.verify()
        logged = list(store.records())
    assert verified == len(logged)
    grouped: dict[str | None, list[tuple[Direction, bool]]] = {}
    for record in logged:
        grouped.setdefault(record.x_request_id, []).append((record.direction, record.succeeded))
    for x_request_id, sequence in grouped.items():
        assert len(sequence) == 2 and sequence[0] == (Direction.REQUEST, True), (x_request_id, sequence)
        assert sequence[1][0] is Direction.RESPONSE
    return grouped


class OutageBed(ExchangeBed):
    """The exchange bed with helpers to ask and to check answers."""

    async def answered(self, proxy: ClientProxy | None = None, text: str = "Jaan Tamm") -> None:
        """A SOAP request is answered with the provider's answer."""
        status, _, body = await self.send(is_request(text=text), proxy=proxy)
        assert status == 200 and b"Fault>" not in body, body[:400]

    async def refused(self, code: str, proxy: ClientProxy | None = None, text: str = "Jaan Tamm") -> None:
        """A SOAP request gets the fault ``code`` (HTTP 200, X-Road's fault form), and a REST call X-Road's error
        JSON with ``code`` and 500."""
        status, content_type, body = await self.send(is_request(text=text), proxy=proxy)
        assert status == 200 and content_type.startswith("text/xml") and fault_code(body) == code, body[:400]
        rest = await (proxy or self.client_proxy).handle_rest("GET", REST_PATH, [CLIENT_HEADER], b"")
        assert rest.status == 500 and header_value(rest.headers, "X-Road-Error") == code, rest
        assert json.loads(rest.body)["type"] == code


# --- the TSA down past acceptable-timestamp-failure-period --------------------------------------------------


class TsaBed(OutageBed):
    """The exchange bed with a timestamper on a fake clock and the development TSA on loopback."""

    GRACE = 100.0
    INTERVAL = 60.0

    def setUp(self) -> None:
        super().setUp()
        self.fed = federation()
        self.clock = task.Clock()
        self.clock.advance(REACTOR.seconds())
        self.urls: list[str] = []

    def tsa(self) -> Served:
        """The development TSA on a fresh loopback port."""
        served = serve(self.fed.tsa_resource(REACTOR, self.tmp / "tsa-serial.json"))
        self.addCleanup(served.port.stopListening)
        return served

    def stamper(self, side: Server) -> Timestamper:
        """A timestamper for ``side``'s log on the fake clock, asking the TSAs in ``self.urls``."""

        def tsas() -> Sequence[TsaEndpoint]:
            return [TsaEndpoint(f"TSA {n}", url, self.fed.tsa_cert) for n, url in enumerate(self.urls)]

        def client(url: str, approved: Sequence[x509.Certificate]) -> TsaClient:
            return TsaClient(REACTOR, url, approved, timeout_seconds=5)

        settings = TimestamperSettings(interval_seconds=self.INTERVAL, grace_period_seconds=self.GRACE)
        stamper = Timestamper(self.clock, side.writer, tsas, settings=settings, client_factory=client)
        stamper.startService()
        self.addCleanup(stamper.stopService)
        return stamper

    async def round_after(self, stamper: Timestamper, seconds: float) -> None:
        """Move the clock by ``seconds``; wait for the round the schedule started then."""
        self.clock.advance(seconds)
        await stamper.stamp_pending()

    async def outage_then_return(self, side: Server, code: str) -> None:
        """Within the grace period traffic flows; past it ``code``; when the TSA returns the backlog is stamped
        by the scheduled rounds and traffic resumes, nothing restarted."""
        down = self.tsa()
        self.urls = [down.url]
        await down.port.stopListening()
        stamper = self.stamper(side)
        await self.answered()
        await self.round_after(stamper, self.INTERVAL)
        assert failed_since(stamper) is not None and not refusing(stamper)
        await self.answered()  # still inside the grace period: records wait, traffic goes on
        await self.round_after(stamper, self.GRACE + 1)
        assert refusing(stamper)
        provider_calls = dict(self.service.calls)
        await self.refused(code)
        assert self.service.calls == provider_calls  # refused before the provider saw anything
        with MessageLogStore(side.log_path) as store:
            assert store.untimestamped_count() == 4  # the two exchanges answered before the grace period ended
        self.urls = [self.tsa().url]  # the TSA is back (on a new port, as a new publication would say)
        await self.round_after(stamper, self.INTERVAL)
        assert not refusing(stamper) and stamper.tokens_received == 1
        with MessageLogStore(side.log_path) as store:
            assert store.untimestamped_count() == 0  # the backlog, stamped in one batch
        await self.answered()
        whole(self.consumer.log_path)
        whole(self.provider.log_path)



class TsaOutageTest(TsaBed):
    """The TSA is down for longer than the grace period, then returns."""

    @coroutine_test
    async def test_consumer_tsa_outage_refuses_with_timestamping_failed_then_resumes_by_itself(self) -> None:
        """The consumer's server past the grace period: server.clientproxy.timestamping_failed (X-Road
        ``X_TIMESTAMPING_FAILED_X``), nothing sent; when the TSA returns the backlog is stamped and traffic resumes."""
        await self.outage_then_return(self.consumer, "server.clientproxy.timestamping_failed")

    @coroutine_test
    async def test_provider_tsa_outage_refuses_with_timestamping_failed_then_resumes_by_itself(self) -> None:
        """The provider's server past the grace period: the consumer gets server.serverproxy.timestamping_failed,
        the provider is not called; when the TSA returns the backlog is stamped and traffic resumes."""
        await self.outage_then_return(self.provider, "server.serverproxy.timestamping_failed")


# --- the disk under the message log fills up ----------------------------------------------------------------


class Disk:
    """Whether the disk under a message log is full: a store that cannot write while it is (the store seam), as
    SQLite says it (``SQLITE_FULL``). The transaction fails as a whole, as SQLite rolls one back."""

    def __init__(self) -> None:
        self.full = False

    def store(self, path: Path, **options: Any) -> MessageLogStore:
        """``MessageLogWriter``'s store factory."""
        disk = self

        class FillingStore(MessageLogStore):
            def append_entries(self, entries: Any) -> Any:
                if disk.full:
                    raise sqlite3.OperationalError("database or disk is full")
                return super().append_entries(entries)

        return FillingStore(path, **options)


def mount_tmpfs(directory: Path, size: str = "2m") -> bool:
    """Mount a small tmpfs on ``directory`` when this machine lets us (root in a container that allows mount)."""
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], capture_output=True)
    return done.returncode == 0


def fill(directory: Path) -> Path:
    """Fill the file system under ``directory`` to the last byte; the filler file's path."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 512, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
    finally:
        os.close(descriptor)
    return filler


def verify_log_cli(directory: Path) -> None:
    """``fedbus audit verify log`` passes on the log in ``directory``."""
    result = CliRunner().invoke(audit, ["verify", "log", "--dir", str(directory)], catch_exceptions=False)
    assert result.exit_code == 0, result.output


class DiskFullTest(OutageBed):
    """The message log's disk is full: exchanges refused with a server-side fault, nothing half-written, and
    recovery when space returns."""

    def side_on(self, disk: Disk, *, consumer: bool) -> tuple[ClientProxy, Server]:
        """A consumer (or provider) server whose log writes through ``disk``; the client proxy to use."""
        side = self.consumer if consumer else self.provider
        folder = side.log_path.parent / "on-a-filling-disk"
        folder.mkdir()
        writer = MessageLogWriter(REACTOR, folder / "messagelog.db", store_factory=disk.store)
        writer.start()
        self.addCleanup(writer.stop)
        moved = dataclasses.replace(side, writer=writer, log_path=writer.path, context=dataclasses.replace(side.context, message_log=writer))
        if consumer:
            self.consumer = moved
            return self.make_client_proxy(self.link, moved), moved
        self.server_proxy = ServerProxy(moved.context, provider_client=self.server_proxy.provider_client,
                                        signing_keys=signing_keys(moved.context.token))
        self.link.handlers = {server_id: self.server_proxy for server_id in self.link.handlers}
        self.provider = moved
        return self.client_proxy, moved

    async def consumer_disk_full_at_the_seam(self) -> None:
        """Injected SQLITE_FULL under the consumer's log: logging_failed, nothing sent, recovery, chain verifies."""
        disk = Disk()
        proxy, side = self.side_on(disk, consumer=True)
        await self.answered(proxy)
        disk.full = True
        sent = len(self.link.delivered)
        await self.refused("server.clientproxy.logging_failed", proxy)
        assert len(self.link.delivered) == sent  # nothing leaves without its durable request record
        assert not healthy(side.writer)
        disk.full = False
        await self.answered(proxy)
        assert healthy(side.writer)
        assert len(whole(side.log_path)) == 2
        verify_log_cli(side.log_path.parent)

    @coroutine_test
    async def test_consumer_disk_full_at_the_store_seam_refuses_with_logging_failed_then_recovers(self) -> None:
        """Injected ENOSPC (SQLITE_FULL) in the consumer's log: server.clientproxy.logging_failed, nothing sent or
        half-written; the next exchange after space returns is answered and fedbus audit verify log passes."""
        await self.consumer_disk_full_at_the_seam()

    @coroutine_test
    async def test_provider_disk_full_at_the_store_seam_refuses_with_logging_failed_then_recovers(self) -> None:
        """Injected ENOSPC in the provider's log: the consumer gets server.serverproxy.logging_failed, the provider
        is not called, both logs stay whole; after space returns the next exchange is answered."""
        disk = Disk()
        proxy, side = self.side_on(disk, consumer=False)
        await self.answered(proxy)
        disk.full = True
        calls = dict(self.service.calls)
        await self.refused("server.serverproxy.logging_failed", proxy)
        assert self.service.calls == calls
        disk.full = False
        await self.answered(proxy)
        assert len(whole(side.log_path)) == 2
        whole(self.consumer.log_path)
        verify_log_cli(side.log_path.parent)

    @coroutine_test
    async def test_consumer_disk_full_on_a_small_file_system_refuses_then_recovers(self) -> None:
        """A real full file system under the consumer's log (a 2 MB tmpfs; where mount is not allowed, ENOSPC
        injected at the store seam instead, never skipped): logging_failed, nothing sent, and once space is freed
        the next exchange is answered and fedbus audit verify log passes."""
        folder = Path(tempfile.mkdtemp(prefix="fedbus-fullfs-", dir=self.tmp))
        if not mount_tmpfs(folder):
            await self.consumer_disk_full_at_the_seam()
            return
        self.addCleanup(subprocess.run, ["umount", "-l", str(folder)], capture_output=True)
        consumer = self.make_consumer(log_path=folder / "messagelog.db")
        proxy = self.make_client_proxy(self.link, consumer)
        big = "x" * 200_000  # each exchange needs new pages, whatever the WAL has room for
        await self.answered(proxy, big)
        filler = fill(folder)
        sent = len(self.link.delivered)
        status, _, body = await self.send(is_request(text=big), proxy=proxy)
        assert status == 200 and fault_code(body) == "server.clientproxy.logging_failed", body[:400]
        assert len(self.link.delivered) == sent
        assert not healthy(consumer.writer)
        filler.unlink()
        await self.answered(proxy, big)
        assert healthy(consumer.writer)
        assert len(whole(consumer.log_path)) == 2
        verify_log_cli(folder)


# --- the registry down for longer than the configuration's validity ------------------------------------------


class SourceResource(resource.Resource):
    """The registry's configuration source: answers GET with what was published."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.files: dict[str, tuple[str, bytes]] = {}

    def publish(self, publication: Publication) -> None:
        """Serve ``publication`` from now on."""
        self.files["/internalconf"] = (publication.content_type, publication.directory)
        for location, content in publication.files.items():
            self.files[location] = ("application/octet-stream", content)

    def render_GET(self, request: server.Request) -> bytes:  # noqa: N802 - Twisted's name
        """One published file, or 404."""
        found = self.files.get(request.path.decode())
        if found is None:
            request.setResponseCode(404)
            return b"not found"
        request.setHeader(b"content-type", found[0].encode())  # type: ignore[no-untyped-call]
        return found[1]


class GlobalConfExpiryTest(OutageBed):
    """The registry is down for longer than the configuration's validity, then returns. The server's
    configuration client (real downloads from a real publisher on loopback, its time on a fake clock) decides
    whether a configuration is in force; the proxies ask it on every request."""

    INTERVAL = 60.0

    def setUp(self) -> None:
        super().setUp()
        self.registry = RegistryStore(self.tmp / "registry.db")
        self.addCleanup(self.registry.close)
        self.registry.initialise("EE")
        self.registry.add_member(ClientId("EE", "GOV", "70000001"), "Consumer department")
        self.source = SourceResource()
        self.source_port = REACTOR.listenTCP(0, server.Site(self.source), interface="127.0.0.1")  # type: ignore[no-untyped-call]
        self.port_number = self.source_port.getHost().port
        base = f"http://127.0.0.1:{self.port_number}"
        real_now = datetime.now(timezone.utc)
        key = SelfSignedKey.create(self.tmp / "conf-signing", "EE configuration signing", real_now)
        tls = SelfSignedKey.create(self.tmp / "registry-tls", "EE registry", real_now)
        self.publisher = Publisher(
            self.registry, self.tmp / "published", key, public_url=base,
            management_url="https://127.0.0.1:1/managementservice", management_cert_der=tls.cert_der,
        )
        self.anchor = parse_configuration_anchor(self.publisher.anchor(real_now))
        self.clock = task.Clock()
        self.clock.advance(REACTOR.seconds())

    async def _tear_down(self) -> None:
        if self.source_port is not None:
            await self.source_port.stopListening()
        await super()._tear_down()

    def clock_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), tz=timezone.utc)

    def conf_client(self, side: Server) -> tuple[ConfClient, list[Any]]:
        """``side``'s configuration client, refreshing every INTERVAL on the fake clock, and the Deferreds of the
        refreshes its schedule started; ``side``'s proxies now ask it whether a configuration is in force."""
        client = ConfClient(
            REACTOR, self.anchor, self.tmp / f"{side.server_id.server_code}-globalconf.bundle",
            interval_seconds=self.INTERVAL, clock=self.clock,
        )
        started: list[Any] = []
        real_refresh = client.refresh

        def refresh() -> Any:
            refreshing, seen = real_refresh(), Deferred[Any]()
            started.append(seen)  # its own copy of the result: the schedule's LoopingCall swallows it

            def copy(result: Any) -> Any:
                REACTOR.callLater(0, seen.callback, result)  # once the schedule has set its next call
                return result

            return refreshing.addBoth(copy)

        client.refresh = refresh  # type: ignore[method-assign]  # the schedule's calls, observed
        contents = side.conf_box

        def in_force() -> Any:
            client.current()  # raises GlobalConfOutdated once the downloaded configuration has expired
            return contents[0]  # the federation's values (the test registry publishes only its validity)

        context = dataclasses.replace(side.context, global_conf=in_force)
        if side is self.consumer:
            self.client_proxy = ClientProxy(context, self.link, signing_keys=signing_keys(context.token))
        else:
            self.server_proxy = ServerProxy(
                context, provider_client=self.server_proxy.provider_client, signing_keys=signing_keys(context.token)
            )
            self.link.handlers = {server_id: self.server_proxy for server_id in self.link.handlers}
        client.startService()
        self.addCleanup(client.stopService)
        return client, started

    async def expiry_then_return(self, side: Server, code: str) -> None:
        """In force: answered; registry down past the expiry: ``code`` (fail closed); registry back: the next
        scheduled download applies a new configuration and traffic resumes, nothing restarted."""
        self.source.publish(self.publisher.build(self.clock_now()))
        client, started = self.conf_client(side)
        result = await started[0]
        assert result.applied, result.error
        await self.answered()

        await self.source_port.stopListening()  # the registry goes down
        self.source_port = None
        self.clock.advance(self.INTERVAL)
        assert not (await started[-1]).applied
        await self.answered()  # the configuration is still valid: nothing changes for callers
        self.clock.advance(self.registry.settings().conf_expire_seconds)
        assert not (await started[-1]).applied
        assert not healthy(client)
        calls = dict(self.service.calls)
        await self.refused(code)
        assert self.service.calls == calls

        self.source.publish(self.publisher.build(self.clock_now()))  # the registry returns, same address
        self.source_port = REACTOR.listenTCP(self.port_number, server.Site(self.source), interface="127.0.0.1")  # type: ignore[no-untyped-call]
        before = len(started)
        self.clock.advance(self.INTERVAL)
        assert len(started) == before + 1  # the schedule, not the test, downloads
        result = await started[-1]
        assert result.applied, result.error
        assert healthy(client)
        await self.answered()
        whole(self.consumer.log_path)
        whole(self.provider.log_path)

    @coroutine_test
    async def test_consumer_configuration_expired_refuses_with_global_conf_outdated_then_recovers(self) -> None:
        """The consumer's configuration expires with the registry down: server.clientproxy.global_conf_outdated
        (X-Road ``X_OUTDATED_GLOBALCONF``), nothing sent; the registry returns and the scheduled download brings
        traffic back."""
        await self.expiry_then_return(self.consumer, "server.clientproxy.global_conf_outdated")

    @coroutine_test
    async def test_provider_configuration_expired_refuses_with_global_conf_outdated_then_recovers(self) -> None:
        """The provider's configuration expires: the consumer gets server.serverproxy.global_conf_outdated, the
        provider is not called; the registry returns and traffic resumes by itself."""
        await self.expiry_then_return(self.provider, "server.serverproxy.global_conf_outdated")


# --- the clock jumps on one server ---------------------------------------------------------------------------

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def signed_request(clock: SigningClock, text: bytes, now: datetime) -> tuple[bytes, datetime]:
    """A request's replay key and signing time as the consumer's client proxy makes them at ``now``."""
    signing_time = clock.time_for(text, now)
    return ReplayGuard.key(text + signing_time.isoformat().encode(), text), signing_time


def test_consumer_clock_corrected_after_running_ahead_signs_at_the_right_time_again() -> None:
    """The consumer's clock runs an hour ahead (its requests are refused as from the future, inherently), then is
    corrected: the very next request carries the corrected time and the provider accepts it (the signing clock
    does not hold signing times an hour ahead, which would refuse every request for that hour)."""
    consumer, provider = SigningClock(), ReplayGuard()
    key, signing_time = signed_request(consumer, b"one", T0 + HOUR)
    try:
        provider.check(key, signing_time, T0)
    except InvalidRequest as refused:
        assert refused.subcode == "stale_signature"
    else:
        raise AssertionError("a signing time an hour ahead was accepted")
    key, signing_time = signed_request(consumer, b"two", T0 + timedelta(seconds=1))
    assert signing_time == T0 + timedelta(seconds=1)
    provider.check(key, signing_time, T0 + timedelta(seconds=1))


def test_consumer_clock_stepped_back_a_little_keeps_signing_times_monotonic() -> None:
    """A small step back (NTP) holds signing times at the last one, within the skew the provider tolerates."""
    consumer, provider = SigningClock(), ReplayGuard()
    _, first = signed_request(consumer, b"one", T0)
    key, second = signed_request(consumer, b"two", T0 - timedelta(seconds=5))
    assert second == first
    provider.check(key, second, T0 - timedelta(seconds=5))


def test_provider_clock_jumping_ahead_and_back_does_not_reopen_the_replay_window() -> None:
    """The provider's clock jumps an hour ahead (the guard forgets every key as expired) and is corrected: a
    request accepted before the jump and replayed after the correction is still refused, and fresh requests
    pass."""
    guard = ReplayGuard()
    accepted = ReplayGuard.key(b"signature", b"message")
    guard.check(accepted, T0, T0)
    try:
        guard.check(ReplayGuard.key(b"other", b"message"), T0 + timedelta(seconds=1), T0 + HOUR)
    except InvalidRequest:
        pass  # signed by a peer with the right time: too old for the jumped clock
    for replay_at in (T0 + timedelta(seconds=2), T0 + timedelta(seconds=300)):
        try:
            guard.check(accepted, T0, replay_at)
        except InvalidRequest as refused:
            assert refused.subcode in ("stale_signature", "replayed_signature")
        else:
            raise AssertionError("a replay was accepted after the clock came back")
    guard.check(ReplayGuard.key(b"fresh", b"message"), T0 + timedelta(seconds=3), T0 + timedelta(seconds=3))


def test_shared_replay_guard_clock_jumping_ahead_and_back_does_not_reopen_the_window(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The replay guard the worker processes share: after its clock jumped ahead (a sweep forgets every key) and
    back, a request accepted before the jump is still refused."""
    monkeypatch.setattr(shared_replay_guard, "SWEEP_EVERY", 1)
    guard = shared_replay_guard.SharedReplayGuard(tmp_path / "replay.db")
    accepted = ReplayGuard.key(b"signature", b"message")
    guard.check(accepted, T0, T0)
    guard.check(ReplayGuard.key(b"jumped", b"message"), T0 + HOUR, T0 + HOUR)  # its sweep forgets the first key
    try:
        guard.check(accepted, T0, T0 + timedelta(seconds=2))
    except InvalidRequest as refused:
        assert refused.subcode in ("stale_signature", "replayed_signature")
    else:
        raise AssertionError("a replay was accepted after the clock came back")
    guard.close()


def test_own_ocsp_survives_our_clock_running_ahead_and_being_corrected(tmp_path: Path) -> None:
    """Our clock runs two hours ahead of the responder's: our kept OCSP response is stale by our clock and our
    exchanges are refused with server-side incorrect_validation_info (never client.*); once the clock is corrected
    the kept response serves again at once, no timer or refetch awaited."""
    ca = DevelopmentCA.init(tmp_path / "ca", "Clock jump CA", T0, key_size=2048)
    member = ClientId("EE", "GOV", "70000399")
    cert = ca.issue(make_csr(signing_subject(member, "Gov")), CertKind.SIGN, T0)
    true_time = [T0]

    def responder(target: OwnCertificate, request: bytes) -> Deferred[bytes]:
        return succeed(build_ocsp_response(request, ca.state(), true_time[0]))

    clock = MemoryReactorClock()  # type: ignore[no-untyped-call]
    clock.advance(T0.timestamp())
    client = OcspClient(clock, [OwnCertificate(cert, ca.certificate, "http://127.0.0.1:1/")], fetch=responder)
    client.start()
    clock.advance(0)
    assert client.current(cert)
    true_time[0] = T0 + timedelta(seconds=1)
    clock.advance(2 * 3600)  # our clock jumps ahead; the overdue refresh runs, its answer still "old" to us
    try:
        client.current(cert)
    except IncorrectValidationInfo as refused:
        assert refused.fault_code.startswith("server."), refused.fault_code
    else:
        raise AssertionError("a response two hours old by our clock was served")
    clock.rightNow = (T0 + timedelta(seconds=2)).timestamp()  # corrected (stepped back)
    assert client.current(cert)
    client.stop()


class ClockJumpTimestamperTest(TsaBed):
    """The timestamper's clock jumps (the fake clock moved by hand, as a stepped system clock moves Twisted's)."""

    @coroutine_test
    async def test_clock_jumps_neither_refuse_traffic_nor_lose_records(self) -> None:
        """With the TSA up, a jump of ten hours ahead does not refuse traffic (no failure has started); with it
        down, a jump back does not make the failure older, and a jump ahead past the grace period refuses until the
        TSA answers, which ends the refusal and stamps every waiting record."""
        self.urls = [self.tsa().url]
        stamper = self.stamper(self.consumer)
        await self.answered()
        self.clock.advance(10 * 3600)
        await stamper.stamp_pending()
        assert not refusing(stamper) and failed_since(stamper) is None
        await self.answered()

        up = self.urls
        down = self.tsa()
        self.urls = [down.url]
        await down.port.stopListening()
        await stamper.stamp_pending()
        assert failed_since(stamper) is not None
        self.clock.rightNow -= 3600  # stepped back an hour
        assert not refusing(stamper)
        await self.answered()
        self.clock.advance(3600 + self.GRACE + 1)  # ahead again, past the grace period
        await stamper.stamp_pending()  # joins the round the schedule started then (the TSA is still down)
        assert refusing(stamper)
        await self.refused("server.clientproxy.timestamping_failed")
        self.urls = up
        await stamper.stamp_pending()
        assert not refusing(stamper)
        with MessageLogStore(self.consumer.log_path) as store:
            assert store.untimestamped_count() == 0 and store.verify() == 6
        await self.answered()
