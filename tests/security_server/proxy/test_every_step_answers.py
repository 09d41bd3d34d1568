"""Issue 22 item 8: whatever step of either proxy fails, the caller gets an answer and the log stays whole.

An exception (a bug, not a BusError) is injected at one step of the real pipeline at a time: the consumer's client
proxy and the provider's server proxy wired through the in-memory link, real keys, OCSP, server configurations and
message logs (tests/federation/world.py). For every step the consumer's system must get X-Road's fault form (SOAP:
HTTP 200 with the fault; REST: the error JSON with ``X-Road-Error`` and X-Road's status) and both message logs must
hold no half-written exchange: the hash chain verifies, and every logged request has exactly one response record
(the answer, or the failure record). A step that waits on something outside (the provider) is answered within its
configured timeout: the provider client runs its timers on a ``task.Clock`` the test advances.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.web import server

from security_server.core.identifiers import ServiceId
from security_server.core.logchain import Direction, LogEntry
from security_server.core.rest import RestAnswer, RestRequest, header_value
from security_server.messagelog.store import MessageLogStore
from security_server.proxy import client_proxy, client_proxy_site, server_proxy
from security_server.proxy.provider_client import LeanProviderClient
from security_server.proxy.server_proxy import ServerProxy
from security_server.serverconf.store import ServiceKind
from security_server.core.acl import AccessRight
from tests.federation.world import CONSUMER, P, PROVIDER, SLOW, ExchangeBed, fault_code, is_request, signing_keys
from tests.loopback import REACTOR, ClockedLoopback, coroutine_test, http
from tests.security_server.proxy.rest_provider import RestProvider

PETS = ServiceId(PROVIDER, "pets")
METRICS = ServiceId(P, "getSecurityServerMetrics")
PETS_PATH = "/r1/EE/GOV/70000002/service/pets/v1/pets/7"
CLIENT_HEADER = ("X-Road-Client", "EE/GOV/70000001/client")


class Injected(RuntimeError):
    """The failure injected at a step (a bug, which no step expects)."""


def boom(step: str) -> Callable[..., Any]:
    """A stand-in for a step's function that fails as a bug would."""

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise Injected(f"injected at {step}")

    return fails


class RaisingRecorder:
    """An operational-monitoring recorder that crashes on every finished exchange."""

    internal_ip = "127.0.0.1"

    def finished(self, build: Any, phases: Any = None) -> None:
        """Crash, as a monitoring bug would."""
        raise Injected("injected at monitoring")


def exchanges(path: Path) -> dict[str | None, list[tuple[Direction, bool]]]:
    """The message log, verified whole, as each exchange's ``(direction, succeeded)`` records in log order."""
    with MessageLogStore(path) as store:
        verified = store.verify()
        logged = list(store.records())
    assert verified == len(logged)
    grouped: dict[str | None, list[tuple[Direction, bool]]] = {}
    for record in logged:
        grouped.setdefault(record.x_request_id, []).append((record.direction, record.succeeded))
    return grouped


def assert_whole(path: Path) -> None:
    """No half-written exchange: every logged request has exactly one response record after it."""
    for x_request_id, sequence in exchanges(path).items():
        assert x_request_id is not None
        assert len(sequence) == 2 and sequence[0] == (Direction.REQUEST, True), (x_request_id, sequence)
        assert sequence[1][0] is Direction.RESPONSE, (x_request_id, sequence)


class EveryStepAnswersTest(ExchangeBed):
    """One failure per step of either proxy, SOAP and REST; see the module docstring."""

    def setUp(self) -> None:
        super().setUp()
        self.rest_provider = RestProvider()
        site = server.Site(self.rest_provider)  # type: ignore[no-untyped-call]
        site.timeOut = None
        self.rest_port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
        self.provider.store.add_service(
            PETS, url=f"http://127.0.0.1:{self.rest_port.getHost().port}/api/", kind=ServiceKind.REST
        )
        self.provider.store.grant(AccessRight(CONSUMER, PETS))

    async def _tear_down(self) -> None:
        await self.rest_port.stopListening()
        await super()._tear_down()

    # --- injection points -------------------------------------------------------------------------------------

    def put(self, owner: object, name: str, value: object) -> None:
        """Replace ``owner.name`` with ``value`` for this test (trial restores it)."""
        self.patch(owner, name, value)  # type: ignore[no-untyped-call]  # trial leaves it unannotated

    def fail_log_entry(self, writer: Any, direction: Direction) -> None:
        """Make ``writer`` fail the first successful ``direction`` entry it is given, as a bug in the log would."""
        real = writer.log
        failed: list[LogEntry] = []

        def log(entry: LogEntry) -> Deferred[Any]:
            if not failed and entry.direction is direction and entry.succeeded:
                failed.append(entry)
                return fail(Injected(f"injected at the {direction.name.lower()} log"))
            logged: Deferred[Any] = real(entry)
            return logged

        self.put(writer, "log", log)

    def inject(self, step: str) -> None:
        """Make ``step`` fail (see STEPS)."""
        cp, sp = self.client_proxy, self.server_proxy
        match step:
            case "nothing":
                pass
            case "client parse":
                self.put(client_proxy, "is_multipart_related", boom(step))
                self.put(RestRequest, "from_client", boom(step))
            case "client checks":
                self.put(cp, "_check_client", boom(step))
            case "client provider lookup":
                self.put(cp, "_provider_peers", boom(step))
            case "client sign":
                self.put(cp.signer, "sign", boom(step))
            case "client request log":
                self.fail_log_entry(self.consumer.writer, Direction.REQUEST)
            case "client peer":
                self.put(cp.link, "send", boom(step))
            case "client response signature":
                self.put(client_proxy, "verify_message", boom(step))
            case "client response consistency":
                self.put(client_proxy, "check_response_consistency", boom(step))
                self.put(client_proxy, "check_rest_response_consistency", boom(step))
            case "client response log":
                self.fail_log_entry(self.consumer.writer, Direction.RESPONSE)
            case "client summary":
                self.put(cp.journal, "summary", boom(step))
            case "client monitoring":
                self.put(cp.journal, "_recorder", RaisingRecorder())
            case "server parse":
                self.put(server_proxy, "decode_request", boom(step))
            case "server target check":
                self.put(sp, "_check_target", boom(step))
            case "server peer check":
                self.put(sp, "peer_check", boom(step))
            case "server access check":
                self.put(sp, "_check_service", boom(step))
            case "server signature check":
                self.put(sp, "_verify_request", boom(step))
            case "server request log":
                self.fail_log_entry(self.provider.writer, Direction.REQUEST)
            case "server provider":
                self.put(sp.provider_client, "post", boom(step))
                self.put(sp.rest_client, "request", boom(step))
            case "server sign":
                self.put(sp.signer, "sign", boom(step))
            case "server response log":
                self.fail_log_entry(self.provider.writer, Direction.RESPONSE)
            case "server summary":
                self.put(sp.journal, "summary", boom(step))
            case "server monitoring":
                self.put(sp.journal, "_recorder", RaisingRecorder())
            case _:
                raise AssertionError(f"no such step: {step}")

    # --- the checks -------------------------------------------------------------------------------------------

    async def soap_answer(self, step: str, code: str | None) -> None:
        """With ``step`` failing, a SOAP request is answered (with the fault ``code``, or normally when None) and
        both logs are whole."""
        self.inject(step)
        status, content_type, body = await self.send(is_request(query_id=f"step-{uuid.uuid4()}"))
        assert status == 200 and content_type.startswith("text/xml"), (status, content_type, body[:300])
        if code is None:
            assert b"Fault>" not in body, body[:400]
        else:
            assert fault_code(body) == code, body[:400]
        assert_whole(self.consumer.log_path)
        assert_whole(self.provider.log_path)

    async def rest_answer(self, step: str, code: str | None, status: int = 500) -> None:
        """With ``step`` failing, a REST call is answered (with X-Road's error JSON for ``code`` and ``status``, or
        the provider's answer when None) and both logs are whole."""
        self.inject(step)
        answer: RestAnswer = await self.client_proxy.handle_rest("GET", PETS_PATH, [CLIENT_HEADER], b"")
        if code is None:
            assert answer.status == 200 and header_value(answer.headers, "X-Road-Error") is None, answer
        else:
            assert answer.status == status, answer
            assert header_value(answer.headers, "X-Road-Error") == code, answer
            error = json.loads(answer.body)
            assert error["type"] == code and uuid.UUID(error["detail"])
        assert_whole(self.consumer.log_path)
        assert_whole(self.provider.log_path)

    # --- no failure: the baseline the cases below depart from ------------------------------------------------

    @coroutine_test
    async def test_without_a_failure_both_protocols_are_answered_and_logged_whole(self) -> None:
        """The bed works: a SOAP request and a REST call are answered, each exchange logged request and response."""
        await self.soap_answer("nothing", None)
        await self.rest_answer("nothing", None)
        assert len(exchanges(self.consumer.log_path)) == 2 == len(exchanges(self.provider.log_path))

    # --- the client proxy's steps -----------------------------------------------------------------------------

    @coroutine_test
    async def test_client_parse_failure_is_answered_internal_error(self) -> None:
        """A crash while reading the IS's request: server.clientproxy.internal_error, nothing logged or sent."""
        await self.soap_answer("client parse", "server.clientproxy.internal_error")
        await self.rest_answer("client parse", "server.clientproxy.internal_error")
        assert self.link.delivered == [] and exchanges(self.consumer.log_path) == {}

    @coroutine_test
    async def test_client_check_failure_is_answered_internal_error(self) -> None:
        """A crash in the client check: server.clientproxy.internal_error, nothing logged or sent."""
        await self.soap_answer("client checks", "server.clientproxy.internal_error")
        await self.rest_answer("client checks", "server.clientproxy.internal_error")
        assert self.link.delivered == [] and exchanges(self.consumer.log_path) == {}

    @coroutine_test
    async def test_client_provider_lookup_failure_is_answered_internal_error(self) -> None:
        """A crash finding the provider's servers: server.clientproxy.internal_error, nothing logged or sent."""
        await self.soap_answer("client provider lookup", "server.clientproxy.internal_error")
        await self.rest_answer("client provider lookup", "server.clientproxy.internal_error")
        assert self.link.delivered == []

    @coroutine_test
    async def test_client_signing_failure_is_answered_internal_error(self) -> None:
        """A crash in the signer: server.clientproxy.internal_error, nothing logged or sent."""
        await self.soap_answer("client sign", "server.clientproxy.internal_error")
        await self.rest_answer("client sign", "server.clientproxy.internal_error")
        assert self.link.delivered == [] and exchanges(self.consumer.log_path) == {}

    @coroutine_test
    async def test_client_request_log_failure_is_answered_logging_failed(self) -> None:
        """The request cannot be logged: server.clientproxy.logging_failed, and nothing leaves."""
        await self.soap_answer("client request log", "server.clientproxy.logging_failed")
        await self.rest_answer("client request log", "server.clientproxy.logging_failed")
        assert self.link.delivered == [] and exchanges(self.consumer.log_path) == {}

    @coroutine_test
    async def test_client_peer_failure_is_answered_network_error(self) -> None:
        """A crash in the peer link: server.clientproxy.network_error; the logged request gets its failure record."""
        await self.soap_answer("client peer", "server.clientproxy.network_error")
        await self.rest_answer("client peer", "server.clientproxy.network_error")
        assert [s[1] for s in exchanges(self.consumer.log_path).values()] == [(Direction.RESPONSE, False)] * 2

    @coroutine_test
    async def test_client_response_signature_check_failure_is_answered_internal_error(self) -> None:
        """A crash checking the answer's signature: server.clientproxy.internal_error, failure recorded."""
        await self.soap_answer("client response signature", "server.clientproxy.internal_error")
        await self.rest_answer("client response signature", "server.clientproxy.internal_error")

    @coroutine_test
    async def test_client_response_consistency_failure_is_answered_internal_error(self) -> None:
        """A crash checking the answer's headers: server.clientproxy.internal_error, failure recorded."""
        await self.soap_answer("client response consistency", "server.clientproxy.internal_error")
        await self.rest_answer("client response consistency", "server.clientproxy.internal_error")

    @coroutine_test
    async def test_client_response_log_failure_is_answered_logging_failed(self) -> None:
        """The answer cannot be logged: server.clientproxy.logging_failed; the failure record closes the exchange."""
        await self.soap_answer("client response log", "server.clientproxy.logging_failed")
        await self.rest_answer("client response log", "server.clientproxy.logging_failed")
        assert [s[1] for s in exchanges(self.consumer.log_path).values()] == [(Direction.RESPONSE, False)] * 2

    @coroutine_test
    async def test_client_summary_failure_is_still_answered(self) -> None:
        """A crash in the exchange summary: the IS still gets server.clientproxy.internal_error (SOAP: the last
        resort; REST: X-Road's error JSON with 500), never silence."""
        await self.soap_answer("client summary", "server.clientproxy.internal_error")
        await self.rest_answer("client summary", "server.clientproxy.internal_error")

    @coroutine_test
    async def test_client_monitoring_failure_never_fails_the_exchange(self) -> None:
        """A crash in operational monitoring: the exchange is answered as if nothing happened."""
        await self.soap_answer("client monitoring", None)
        await self.rest_answer("client monitoring", None)

    # --- the server proxy's steps -----------------------------------------------------------------------------

    @coroutine_test
    async def test_server_parse_failure_is_relayed_internal_error(self) -> None:
        """A crash reading the transport message: the IS gets server.serverproxy.internal_error."""
        await self.soap_answer("server parse", "server.serverproxy.internal_error")
        await self.rest_answer("server parse", "server.serverproxy.internal_error")
        assert exchanges(self.provider.log_path) == {}

    @coroutine_test
    async def test_server_target_check_failure_is_relayed_internal_error(self) -> None:
        """A crash checking the target server and provider: server.serverproxy.internal_error."""
        await self.soap_answer("server target check", "server.serverproxy.internal_error")
        await self.rest_answer("server target check", "server.serverproxy.internal_error")
        assert exchanges(self.provider.log_path) == {}

    @coroutine_test
    async def test_server_peer_check_failure_is_relayed_internal_error(self) -> None:
        """A crash checking the peer's TLS certificate: server.serverproxy.internal_error."""
        await self.soap_answer("server peer check", "server.serverproxy.internal_error")
        await self.rest_answer("server peer check", "server.serverproxy.internal_error")
        assert exchanges(self.provider.log_path) == {}

    @coroutine_test
    async def test_server_access_check_failure_is_relayed_internal_error(self) -> None:
        """A crash checking the service and the access right: server.serverproxy.internal_error."""
        await self.soap_answer("server access check", "server.serverproxy.internal_error")
        await self.rest_answer("server access check", "server.serverproxy.internal_error")
        assert self.service.calls == {} and self.rest_provider.calls == []

    @coroutine_test
    async def test_server_signature_check_failure_is_relayed_internal_error(self) -> None:
        """A crash verifying the request's signature: server.serverproxy.internal_error, nothing logged there."""
        await self.soap_answer("server signature check", "server.serverproxy.internal_error")
        await self.rest_answer("server signature check", "server.serverproxy.internal_error")
        assert exchanges(self.provider.log_path) == {}

    @coroutine_test
    async def test_server_request_log_failure_is_relayed_logging_failed(self) -> None:
        """The provider's server cannot log the request: server.serverproxy.logging_failed, provider not called."""
        await self.soap_answer("server request log", "server.serverproxy.logging_failed")
        await self.rest_answer("server request log", "server.serverproxy.logging_failed")
        assert self.service.calls == {} and self.rest_provider.calls == []

    @coroutine_test
    async def test_server_provider_call_failure_is_relayed_internal_error(self) -> None:
        """A crash calling the provider: server.serverproxy.internal_error; both sides record the failure."""
        await self.soap_answer("server provider", "server.serverproxy.internal_error")
        await self.rest_answer("server provider", "server.serverproxy.internal_error")
        assert [s[1] for s in exchanges(self.provider.log_path).values()] == [(Direction.RESPONSE, False)] * 2

    @coroutine_test
    async def test_server_signing_failure_is_relayed_internal_error(self) -> None:
        """A crash signing the answer: server.serverproxy.internal_error; both sides record the failure."""
        await self.soap_answer("server sign", "server.serverproxy.internal_error")
        await self.rest_answer("server sign", "server.serverproxy.internal_error")

    @coroutine_test
    async def test_server_response_log_failure_is_relayed_logging_failed(self) -> None:
        """The answer cannot be logged: server.serverproxy.logging_failed; the failure record closes it there."""
        await self.soap_answer("server response log", "server.serverproxy.logging_failed")
        await self.rest_answer("server response log", "server.serverproxy.logging_failed")
        assert [s[1] for s in exchanges(self.provider.log_path).values()] == [(Direction.RESPONSE, False)] * 2

    @coroutine_test
    async def test_server_summary_failure_is_still_answered(self) -> None:
        """A crash in the server proxy's summary: the last resort answers server.serverproxy.internal_error."""
        await self.soap_answer("server summary", "server.serverproxy.internal_error")
        await self.rest_answer("server summary", "server.serverproxy.internal_error")

    @coroutine_test
    async def test_server_monitoring_failure_never_fails_the_exchange(self) -> None:
        """A crash in the server proxy's operational monitoring: the exchange is answered normally."""
        await self.soap_answer("server monitoring", None)
        await self.rest_answer("server monitoring", None)

    @coroutine_test
    async def test_monitoring_service_failure_is_relayed_internal_error(self) -> None:
        """A crash in a monitoring metaservice (member-level service of the owner): the IS gets
        server.serverproxy.internal_error, and the summaries of this member-level service do not crash."""

        def crashing(request: Any, digest: tuple[str, str]) -> Deferred[tuple[str, bytes]]:
            raise Injected("injected at the monitoring service")

        self.put(self.server_proxy, "monitoring", {METRICS.service_code: crashing})
        status, _, body = await self.send(is_request(METRICS, query_id="metrics-1"))
        assert status == 200 and fault_code(body) == "server.serverproxy.internal_error", body[:400]
        assert_whole(self.consumer.log_path)
        assert_whole(self.provider.log_path)

    # --- waiting on the outside: answered within the configured timeout ----------------------------------------

    @coroutine_test
    async def test_provider_that_never_answers_is_answered_when_its_timeout_passes(self) -> None:
        """A provider that never answers: once the service's timeout (1 s) passes on the provider client's clock,
        the IS gets server.serverproxy.service_failed.io_error, and not before; both logs record the failure."""
        loop = ClockedLoopback()
        client = LeanProviderClient(loop, max_response_bytes=1024 * 1024)
        self.addCleanup(client.close)
        called: Deferred[None] = Deferred()
        real_post = client.post

        def post(*args: Any) -> Any:
            answering = real_post(*args)
            called.callback(None)
            return answering

        self.put(client, "post", post)
        self.server_proxy = ServerProxy(
            self.provider.context, provider_client=client, signing_keys=signing_keys(self.provider.context.token)
        )
        self.link.handlers = {address: self.server_proxy for address in self.link.handlers}
        answered = Deferred.fromCoroutine(self.send(is_request(SLOW, query_id="slow-1")))
        await called
        assert not answered.called
        loop.clock.advance(1.0)  # the service's configured timeout (tests/federation/world.py: SLOW)
        status, _, body = await answered
        assert status == 200 and fault_code(body) == "server.serverproxy.service_failed.io_error", body[:400]
        assert_whole(self.consumer.log_path)
        assert_whole(self.provider.log_path)

    # --- the HTTP site: writing the answer fails ---------------------------------------------------------------

    async def over_http(self, method: bytes, path: str, body: bytes | None, content_type: bytes | None) -> Any:
        """One call to the client proxy's HTTP site on loopback, the first write of an answer failing."""
        port = REACTOR.listenTCP(0, client_proxy_site.client_proxy_site(self.client_proxy), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        for name in ("_start_answer", "_write_rest"):
            real = getattr(client_proxy_site, name)
            failed: list[str] = []

            def first_fails(*args: Any, _real: Any = real, _failed: list[str] = failed, _name: str = name) -> Any:
                if not _failed:
                    _failed.append(_name)
                    raise Injected(f"injected writing the answer ({_name})")
                return _real(*args)

            self.put(client_proxy_site, name, first_fails)
        return await http(method, f"http://127.0.0.1:{port.getHost().port}{path}", body, content_type)

    @coroutine_test
    async def test_soap_answer_that_cannot_be_written_is_answered_internal_error(self) -> None:
        """Writing the SOAP answer fails at the site: the IS gets server.clientproxy.internal_error in X-Road's
        fault form, never silence."""
        reply = await self.over_http(b"POST", "/", is_request(), b"text/xml; charset=UTF-8")
        assert reply.code == 200 and fault_code(reply.body) == "server.clientproxy.internal_error", reply

    @coroutine_test
    async def test_rest_answer_that_cannot_be_written_is_answered_internal_error(self) -> None:
        """Writing the REST answer fails at the site: the IS gets X-Road's error JSON, 500,
        server.clientproxy.internal_error, never silence."""
        reply = await self.over_http(b"GET", PETS_PATH, None, None)
        assert reply.code == 500, reply
        assert json.loads(reply.body)["type"] == "server.clientproxy.internal_error", reply

