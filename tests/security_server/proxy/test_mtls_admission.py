"""The server proxy's early gates over real loopback mutual TLS (issue 22 item 4, proxy/peer_admission.py).

A client certificate outside the approved CAs fails the TLS handshake (openssl s_client, Python's ssl module); a
CA-issued certificate that no security server registered gets X-Road's fault after the request head, and its body
is never read; both follow the global configuration in force, without a restart.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import ssl
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from twisted.internet import defer, threads
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.internet.ssl import CertificateOptions
from twisted.python.failure import Failure
from twisted.internet.interfaces import IPullProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface import implementer

from central_registry.trust.ca import DevelopmentCA
from security_server.core.errors import BusError, GlobalConfOutdated, NetworkError, Origin, SslAuthenticationFailed
from security_server.core.globalconf import GlobalConf
from security_server.proxy.mtls import MtlsPeerLink, server_context_factory
from security_server.proxy.peer_admission import AdmittedRequest, PeerAdmission
from security_server.proxy.peerlink import PeerAddress, PeerRequest
from security_server.proxy.server_proxy_site import ServerProxyResource, server_proxy_site
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from tests.federation.ca import KeyAndCert, issue_auth, issue_into_token, make_ca
from tests.federation.gconf import approved_ca, auth_hashes
from tests.federation.peers import SS1, SS2, SS3, make_conf, peer_world
from tests.federation.pki import write_pem
from tests.loopback import ConnectionWatch
from tests.security_server.proxy.tls_clients import RecordingHandler, raw_tls_client, resumed_tls_clients, token_files

reactor: Any = _reactor
MAX_BODY = 10 * 1024 * 1024
TEN_MB = 10 * 1024 * 1024
LINGER = 0.2
"""How long a refused connection is held here before it is cut off (short: the tests wait for it)."""
HEAD_BOUND = 128 * 1024
"""What the server may decrypt of a refused connection: the head and at most one socket read after it (64 KiB)."""


@dataclasses.dataclass(frozen=True)
class OtherCa:
    """A second CA, not approved by :func:`make_conf`, and an auth certificate it issued for SS3."""

    ca: DevelopmentCA
    auth: KeyAndCert


@functools.cache
def other_ca() -> OtherCa:
    """The second CA, made once per test process."""
    world = peer_world()
    ca = make_ca(Path(tempfile.mkdtemp(prefix="fedbus-other-ca-")), world.now, "fedbus other CA")
    return OtherCa(ca, issue_auth(ca, SS3, world.now))


def conf_approving_other_ca(*, only: bool) -> GlobalConf:
    """make_conf's configuration with the second CA approved (alone when ``only``) and its cert registered on SS3."""
    world = peer_world()
    base = make_conf(world)
    other = other_ca()
    servers = tuple(
        dataclasses.replace(s, auth_cert_hashes=s.auth_cert_hashes + auth_hashes(other.auth.cert_der))
        if s.id == SS3 else s
        for s in base.shared.security_servers
    )
    cas = (approved_ca(other.ca, name="fedbus other CA"),)
    shared = dataclasses.replace(
        base.shared, approved_cas=cas if only else base.shared.approved_cas + cas, security_servers=servers
    )
    return GlobalConf(shared, base.private, base.expires_at)


def pem_files(directory: Path, name: str, pair: KeyAndCert) -> tuple[str, str]:
    """``pair`` as a PEM certificate file and an unencrypted PEM key file."""
    cert = write_pem(directory / f"{name}.cert.pem", pair.cert)
    key = directory / f"{name}.key.pem"
    key.write_bytes(
        pair.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert), str(key)


def post_head(length: int) -> bytes:
    """The head of a POST whose body of ``length`` bytes is to follow."""
    return (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % length
    )


def s_client(port: int, cert: tuple[str, str], version: str, payload: bytes) -> subprocess.CompletedProcess[bytes]:
    """``openssl s_client`` with the client certificate, sending ``payload`` (blocking: run in a thread)."""
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-cert", cert[0], "-key", cert[1], version,
         "-quiet"],
        input=payload, capture_output=True, timeout=20, check=False,
    )


def head_then_body(port: int, cert: tuple[str, str]) -> tuple[bytes, BaseException | None]:
    """Send a head announcing 10 MB, read the answer to its end, then try to send the body (blocking)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(*cert)
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(post_head(TEN_MB))
            while chunk := tls.recv(65536):
                answer += chunk
            try:
                tls.sendall(b"b" * TEN_MB)
            except OSError as err:  # reset or broken pipe: the server cut the connection off
                return answer, err
    return answer, None


def keep_alive_twice(port: int, cert: tuple[str, str], between: Any) -> tuple[bytes, bytes]:
    """One request answered on a kept-alive connection, ``between()``, then the head of a second (blocking)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(*cert)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(post_head(2) + b"hi")
            first = b""
            while b"\r\n\r\n" not in first:
                first += tls.recv(65536)
            head, _, body = first.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += tls.recv(65536)
            between()
            tls.sendall(post_head(TEN_MB))
            second = b""
            try:
                while chunk := tls.recv(65536):
                    second += chunk
            except OSError:
                pass
            return head + b"\r\n\r\n" + body, second


@implementer(IPullProducer)
class _Body:
    """A request body of ``size`` bytes, made as the transport asks for it (never all in memory)."""

    CHUNK = 64 * 1024

    def __init__(self, transport: Any, size: int) -> None:
        self.transport = transport
        self.left = size
        self.sent = 0

    def resumeProducing(self) -> None:
        """Write the next chunk; unregister at the end."""
        if self.left <= 0:
            return
        chunk = min(self.CHUNK, self.left)
        self.left -= chunk
        self.sent += chunk
        self.transport.write(b"c" * chunk)
        if self.left <= 0:
            self.transport.unregisterProducer()

    def stopProducing(self) -> None:
        """The connection went away."""
        self.left = 0


class BodySender(Protocol):
    """A TLS client that sends a head and a large body while reading whatever comes back."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.received = b""
        self.body: _Body | None = None
        self.done: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        """Head, then the body as fast as the connection takes it."""
        transport: Any = self.transport
        transport.write(post_head(self.size))
        self.body = _Body(transport, self.size)
        transport.registerProducer(self.body, False)

    def dataReceived(self, data: bytes) -> None:
        """Keep the answer."""
        self.received += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Done (however it ended)."""
        self.done.callback(None)


class Recorded(AdmittedRequest):
    """The site's requests, kept for the test to look at."""

    made: list[AdmittedRequest] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        Recorded.made.append(self)


class AdmissionOverTlsTest(unittest.TestCase):
    """A server proxy for SS2 with its peer admission on the test's current configuration."""

    timeout = 60

    def setUp(self) -> None:
        world = peer_world()
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-admission-"))
        self.conf: GlobalConf | None = make_conf(world)
        self.admission = PeerAdmission(reactor, self.current_conf, linger_seconds=LINGER)
        self.handler = RecordingHandler(b"ss2")
        site = server_proxy_site(ServerProxyResource(self.handler, max_body_bytes=MAX_BODY), admission=self.admission)
        Recorded.made = []
        site.requestFactory = Recorded
        self.watch = ConnectionWatch()
        tls = server_context_factory(world.tokens[SS2], client_policy=self.admission)
        self.port = reactor.listenSSL(0, self.watch.factory(site), tls, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.addCleanup(self.watch.closed)
        self.registered = token_files(SS1)
        self.rogue = pem_files(self.tmp, "rogue", world.rogue)
        self.unregistered = pem_files(self.tmp, "unregistered", world.unregistered)

    def current_conf(self) -> GlobalConf:
        """The configuration in force (the test changes it), or GlobalConfOutdated."""
        if self.conf is None:
            raise GlobalConfOutdated("no valid global configuration", reason="none in this test")
        return self.conf

    @property
    def port_number(self) -> int:
        """The listening port."""
        number: int = self.port.getHost().port
        return number

    def post(self, cert: tuple[str, str], **options: Any) -> Deferred[bytes]:
        """A small POST with ``cert`` in a thread, read to the server's close."""
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        return threads.deferToThread(raw_tls_client, self.port_number, request, client_cert=cert, **options)

    @defer.inlineCallbacks
    def refused_in_handshake(self, cert: tuple[str, str]) -> Any:
        """TLS 1.2 fails the handshake; TLS 1.3 (whose client finishes first) gets no answer; nothing is read."""
        try:
            yield self.post(cert, maximum=ssl.TLSVersion.TLSv1_2)
        except ssl.SSLError:
            pass
        else:
            raise AssertionError("a TLS 1.2 handshake with the refused certificate succeeded")
        try:
            answer = yield self.post(cert)
        except (ssl.SSLError, ConnectionError):
            answer = b""
        assert answer == b""
        assert self.handler.calls == []
        assert Recorded.made == []
        assert self.watch.bytes_received == 0

    @defer.inlineCallbacks
    def test_registered_peer_is_served(self) -> Any:
        """A registered server's certificate under the approved CA passes both gates; the handler answers."""
        answer = yield self.post(self.registered)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:60]
        assert answer.endswith(b"ss2:hi")
        assert [cert for cert, _ in self.handler.calls] == [peer_world().auth_der(SS1)]
        assert (self.admission.refused_handshakes, self.admission.refused_heads) == (0, 0)

    @defer.inlineCallbacks
    def test_unapproved_ca_fails_the_handshake_python(self) -> Any:
        """A certificate from a CA the configuration does not approve fails the handshake (Python's ssl module)."""
        yield self.refused_in_handshake(self.rogue)
        assert self.admission.refused_handshakes == 2

    @defer.inlineCallbacks
    def test_unapproved_ca_fails_the_handshake_openssl(self) -> Any:
        """openssl s_client with an unapproved CA's certificate: a TLS alert, no HTTP answer, nothing read."""
        payload = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        for version in ("-tls1_2", "-tls1_3"):
            done = yield threads.deferToThread(s_client, self.port_number, self.rogue, version, payload)
            assert b"HTTP/1.1" not in done.stdout, done.stdout[:200]
            assert b"alert" in done.stderr.lower(), done.stderr[-400:]
        assert self.handler.calls == []
        assert self.watch.bytes_received == 0
        assert self.admission.refused_handshakes == 2
        done = yield threads.deferToThread(s_client, self.port_number, self.registered, "-tls1_3", payload)
        assert b"ss2:hi" in done.stdout, done.stderr[-400:]

    @defer.inlineCallbacks
    def test_expired_and_signing_certificates_fail_the_handshake(self) -> Any:
        """An expired certificate, and a signing certificate (not an auth certificate), fail the handshake too."""
        world = peer_world()
        yield self.refused_in_handshake(pem_files(self.tmp, "expired", world.expired))
        yield self.refused_in_handshake(pem_files(self.tmp, "signing", world.signing))

    @defer.inlineCallbacks
    def test_unregistered_peer_gets_the_fault_before_its_body(self) -> Any:
        """A CA-issued but unregistered certificate: X-Road's fault after the head; of the 10 MB body the server reads
        nothing past the socket read that brought the head, and keeps none of it."""
        sender = BodySender(TEN_MB)
        factory = ClientFactory.forProtocol(lambda: sender)
        options = CertificateOptions(
            privateKey=peer_world().unregistered.key,  # type: ignore[arg-type]
            certificate=peer_world().unregistered.cert,  # type: ignore[arg-type]
        )
        reactor.connectSSL("127.0.0.1", self.port_number, factory, options)
        yield sender.done
        assert sender.received.startswith(b"HTTP/1.1 200 OK\r\n"), sender.received[:80]
        assert b"<faultcode>server.serverproxy.ssl_authentication_failed</faultcode>" in sender.received
        assert b"Content-Type: text/xml;charset=utf-8\r\n" in sender.received
        [request] = Recorded.made
        assert request.refused is not None
        assert request.refused.fault_code == "server.serverproxy.ssl_authentication_failed"
        assert request.content is not None and request.content.tell() == 0  # not one body byte kept
        assert request.body_bytes_after_refusal < HEAD_BOUND
        assert self.watch.bytes_received < HEAD_BOUND
        assert self.handler.calls == []
        assert self.admission.refused_heads == 1

    @defer.inlineCallbacks
    def test_unregistered_python_client_reads_the_fault_and_cannot_send_the_body(self) -> Any:
        """Python's ssl client: the fault arrives after the head alone; sending the body then fails."""
        answer, error = yield threads.deferToThread(head_then_body, self.port_number, self.unregistered)
        assert b"<faultcode>server.serverproxy.ssl_authentication_failed</faultcode>" in answer
        assert isinstance(error, OSError), error
        assert self.watch.bytes_received < HEAD_BOUND
        assert self.handler.calls == []

    @defer.inlineCallbacks
    def test_no_configuration_is_global_conf_outdated_before_the_body(self) -> Any:
        """With no configuration in force the handshake passes and the head gets global_conf_outdated."""
        self.conf = None
        answer, _ = yield threads.deferToThread(head_then_body, self.port_number, self.registered)
        assert b"<faultcode>server.serverproxy.global_conf_outdated</faultcode>" in answer
        assert self.handler.calls == []

    @defer.inlineCallbacks
    def test_newly_approved_ca_is_accepted_without_restart(self) -> Any:
        """A certificate from a CA the configuration approves from now on is served on the next connection."""
        other = pem_files(self.tmp, "other", other_ca().auth)
        yield self.refused_in_handshake(other)
        self.conf = conf_approving_other_ca(only=False)
        answer = yield self.post(other)
        assert answer.endswith(b"ss2:hi"), answer[:200]
        assert [cert for cert, _ in self.handler.calls] == [other_ca().auth.cert_der]

    @defer.inlineCallbacks
    def test_removed_ca_is_refused_on_the_next_handshake_even_resumed(self) -> Any:
        """Once the CA is no longer approved, a new handshake fails, also one offering a session from before."""
        def resume_after_change(port: int, payload: bytes, cert: tuple[str, str]) -> Any:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(*cert)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with context.wrap_socket(raw) as tls:
                    tls.sendall(payload)
                    while tls.recv(65536):
                        pass
                    session = tls.session
            threads.blockingCallFromThread(reactor, setattr, self, "conf", conf_approving_other_ca(only=True))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                try:
                    with context.wrap_socket(raw, session=session) as tls:
                        tls.sendall(payload)
                        return tls.recv(65536)
                except (ssl.SSLError, ConnectionError) as err:
                    return err

        payload = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        outcome = yield threads.deferToThread(resume_after_change, self.port_number, payload, self.registered)
        assert isinstance(outcome, ssl.SSLError), outcome
        assert len(self.handler.calls) == 1
        assert self.admission.refused_handshakes == 1

    @defer.inlineCallbacks
    def test_kept_alive_connection_is_refused_at_the_next_head_after_the_ca_goes(self) -> Any:
        """A connection opened under the old configuration: its next request gets cert_validation before its body."""

        def drop_the_ca() -> None:
            threads.blockingCallFromThread(reactor, setattr, self, "conf", conf_approving_other_ca(only=True))

        first, second = yield threads.deferToThread(keep_alive_twice, self.port_number, self.registered, drop_the_ca)
        assert first.endswith(b"ss2:hi")
        assert b"<faultcode>server.serverproxy.cert_validation</faultcode>" in second
        assert len(self.handler.calls) == 1

    @defer.inlineCallbacks
    def test_sessions_still_resume_while_the_approved_cas_stay(self) -> Any:
        """A new configuration object with the same approved CAs keeps the TLS context: sessions resume."""
        world = peer_world()
        port = self.port_number
        payload = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"

        def twice() -> tuple[bool, bool]:
            return resumed_tls_clients(port, payload, self.registered)

        self.conf = make_conf(world)
        first, second = yield threads.deferToThread(twice)
        assert (first, second) == (False, True)

    @defer.inlineCallbacks
    def test_link_with_an_unapproved_cas_certificate_cannot_connect_then_gets_the_head_fault(self) -> Any:
        """Our own client under an unapproved CA: refused in the handshake (network_error naming the refusal, nothing
        read, TLS 1.3 included); once the CA is approved, the still unregistered certificate gets the head fault."""
        world = peer_world()
        token = SoftToken(self.tmp / "other-token")
        issue_into_token(token, other_ca().ca, KeyKind.AUTH, SS3, KeyAlgorithm.EC_P256, world.now)
        link = MtlsPeerLink(reactor, token, verify_peer=lambda address, cert: None, connect_timeout=5)
        self.addCleanup(link.close)
        address = PeerAddress(SS2, "127.0.0.1", self.port_number)
        request = PeerRequest({}, "text/xml", b"<x/>")
        try:
            yield link.send([address], request, 5.0)
        except NetworkError as err:
            assert err.fault_code == "server.clientproxy.network_error"
            assert "alert" in err.reason, err.reason
        else:
            raise AssertionError("the link's handshake with an unapproved CA's certificate succeeded")
        assert self.watch.bytes_received == 0
        self.conf = conf_approving_other_ca(only=False)
        response = yield link.send([address], request, 5.0)
        assert b"<faultcode>server.serverproxy.ssl_authentication_failed</faultcode>" in response.body
        assert self.handler.calls == []


class PeerAdmissionTest(unittest.TestCase):
    """The two gates' decisions and memory on a fake clock."""

    def setUp(self) -> None:
        self.world = peer_world()
        self.clock = Clock()
        self.clock.advance(self.world.now.timestamp() + 60)
        self.conf = make_conf(self.world)
        self.admission = PeerAdmission(self.clock, lambda: self.conf)

    def test_handshake_gate_is_checks_one_and_two(self) -> None:
        """The handshake accepts approved-CA auth certificates, registered or not; refuses the rest."""
        accepts = self.admission.tls_accepts
        assert accepts(self.world.auth_der(SS1))
        assert accepts(self.world.unregistered.cert_der)
        assert not accepts(self.world.rogue.cert_der)
        assert not accepts(self.world.expired.cert_der)
        assert not accepts(self.world.signing.cert_der)
        assert self.admission.refused_handshakes == 3

    def test_head_gate_needs_registration(self) -> None:
        """The head gate refuses an unregistered certificate with ssl_authentication_failed; admits a registered one."""
        assert self.admission.refusal(self.world.auth_der(SS1)) is None
        refused = self.admission.refusal(self.world.unregistered.cert_der)
        assert refused is not None and refused.fault_code == "server.serverproxy.ssl_authentication_failed"
        assert self.admission.refusal(None) is None

    def test_verdicts_end_with_the_certificate(self) -> None:
        """A remembered verdict does not outlive the certificate's validity."""
        cert = self.world.auth_cert(SS1)
        assert self.admission.tls_accepts(self.world.auth_der(SS1))
        self.clock.advance(cert.not_valid_after_utc.timestamp() - self.clock.seconds() + 1)
        self.conf = make_conf(self.world, expires_at=cert.not_valid_after_utc + timedelta(days=1))
        assert not self.admission.tls_accepts(self.world.auth_der(SS1))

    def test_generation_follows_the_approved_cas_only(self) -> None:
        """A new configuration with the same CAs keeps the trust generation; another CA set changes it."""
        first = self.admission.trust_generation()
        self.conf = make_conf(self.world)
        assert self.admission.trust_generation() == first
        self.conf = conf_approving_other_ca(only=False)
        assert self.admission.trust_generation() != first

    def test_no_configuration_lets_the_handshake_through(self) -> None:
        """Without a configuration in force the handshake passes; the head gate answers global_conf_outdated."""

        def outdated() -> GlobalConf:
            raise GlobalConfOutdated("no valid global configuration")

        admission = PeerAdmission(self.clock, outdated)
        assert admission.tls_accepts(self.world.rogue.cert_der)
        assert admission.trust_generation() == b""
        refused = admission.refusal(self.world.auth_der(SS1))
        assert refused is not None and refused.fault_code == "server.serverproxy.global_conf_outdated"



def connected(site: Any) -> tuple[Any, Any]:
    """A channel of ``site`` on an in-memory transport."""
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5500))
    transport = StringTransport()  # type: ignore[no-untyped-call]
    channel.makeConnection(transport)
    return channel, transport


def cut_off(transport: Any) -> bool:
    """Whether the connection was aborted (an in-memory transport says so by ``disconnected``)."""
    return bool(transport.disconnected)


class _RefuseEveryone(PeerAdmission):
    """An admission that refuses every head (the request mechanics without a TLS certificate)."""

    def refusal(self, cert_der: bytes | None) -> BusError | None:
        """Always ssl_authentication_failed."""
        return SslAuthenticationFailed("refused by the test", origin=Origin.SERVER_PROXY)


class RefusedHeadTest(unittest.TestCase):
    """What a refusal at the head does to the connection, on a fake clock and an in-memory transport."""

    def test_refusal_answers_stops_reading_and_cuts_off_after_the_linger(self) -> None:
        """The fault is written at once, reading pauses, what still arrives is dropped, and the connection is cut off
        after exactly the linger period; the handler never runs."""
        clock = Clock()
        handler = RecordingHandler(b"ss2")
        admission = _RefuseEveryone(clock, lambda: make_conf(peer_world()), linger_seconds=LINGER)
        resource = ServerProxyResource(handler, max_body_bytes=MAX_BODY)
        site = server_proxy_site(resource, admission=admission, reactor=clock)
        Recorded.made = []
        site.requestFactory = Recorded
        channel, transport = connected(site)
        channel.dataReceived(post_head(TEN_MB) + b"x" * 1000)
        answer: bytes = transport.value()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:60]
        assert b"<faultcode>server.serverproxy.ssl_authentication_failed</faultcode>" in answer
        assert b"\r\nSOAPAction: \r\n" in answer and b"\r\nConnection: close\r\n" in answer
        assert transport.producerState == "paused"
        [request] = Recorded.made
        assert request.body_bytes_after_refusal == 0  # the rest of that read is not even parsed
        channel.dataReceived(b"y" * 5000)  # what TLS had decrypted already still arrives: dropped unkept
        assert request.body_bytes_after_refusal == 6000
        assert request.content is not None and request.content.tell() == 0
        clock.advance(LINGER * 0.99)
        assert not cut_off(transport)
        clock.advance(LINGER * 0.01)
        assert cut_off(transport)
        channel.connectionLost(Failure(ConnectionDone()))  # type: ignore[no-untyped-call]
        assert handler.calls == []
        assert admission.refused_heads == 0  # (the subclass counts nothing)

    def test_body_less_refused_request_is_never_processed(self) -> None:
        """A refused request without a body (it completes with its head) never reaches the resource."""
        clock = Clock()
        handler = RecordingHandler(b"ss2")
        admission = _RefuseEveryone(clock, lambda: make_conf(peer_world()), linger_seconds=LINGER)
        resource = ServerProxyResource(handler, max_body_bytes=MAX_BODY)
        site = server_proxy_site(resource, admission=admission, reactor=clock)
        channel, transport = connected(site)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
        answer: bytes = transport.value()
        assert answer.count(b"HTTP/1.1 ") == 1 and b"100 Continue" not in answer
        assert b"ssl_authentication_failed" in answer and b"invalid_http_method" not in answer
        clock.advance(LINGER)
        channel.connectionLost(Failure(ConnectionDone()))  # type: ignore[no-untyped-call]
        assert handler.calls == []
