"""fedbus answers as X-Road 7.8 answers (issue 14): the fault form, the fault codes of malformed requests,
SOAPAction, the multipart form the provider gets, the old ``GET /wsdl``, member-level services, and an answer
whatever fails. Each test names the X-Road source it reproduces (paths under X-Road's ``src/``; PC =
``service/proxy/proxy-core/src/main/java/org/niis/xroad/proxy/core/``, CJ =
``common/common-jetty/src/main/java/ee/ria/xroad/common/util/``, CM =
``common/common-message/src/main/java/ee/ria/xroad/common/message/``).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import pytest
from lxml import etree
from structlog.testing import capture_logs
from twisted.internet import error as net_error
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from security_server.core.errors import SOAP_ENV_NS, InvalidSoapAction
from security_server.core.multipart import Part, parse_header_value, parse_multipart
from security_server.core.signature import verify_signature
from security_server.core.soap import check_soap_action
from security_server.core.soapattachments import expected_uris, part_resolver
from security_server.messagelog.store import MessageLogStore
from security_server.proxy import server_proxy as server_proxy_module
from security_server.proxy.exchange import SoapRequest
from security_server.proxy.peerlink import PeerAddress, PeerLink, PeerRequest, PeerResponse
from security_server.proxy.provider_call import failure_to_service_failed
from security_server.proxy.server_proxy_site import ServerProxyResource, server_proxy_site
from tests.federation.world import FAULTY, fault_code, is_request, records
from tests.loopback import coroutine_test
from tests.security_server.proxy.xroad_bed import MR, QUERIES, REACTOR, HttpAnswer, XRoadBed, http_exchange, query

FAULT_FORM = "text/xml;charset=utf-8"


def _fault_string(body: bytes) -> str:
    found = etree.fromstring(body).find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault/faultstring")
    assert found is not None
    return found.text or ""


def _assert_fault_form(answer: HttpAnswer, code: str) -> None:
    """CJ/HandlerBase.java sendErrorResponse: 200, text/xml;charset=utf-8, Content-Length, an empty SOAPAction."""
    assert answer.status == 200
    assert answer.header("content-type") == FAULT_FORM
    assert answer.headers.get("soapaction") == [""]
    assert answer.header("content-length") == str(len(answer.body))
    assert fault_code(answer.body) == code


class Rewrite:
    """A link that changes the request's HTTP headers on the way to the provider's server."""

    def __init__(self, inner: PeerLink, headers: dict[str, str]) -> None:
        self.inner = inner
        self.headers = headers

    def send(self, peers: Sequence[PeerAddress], request: PeerRequest, timeout_seconds: float) -> Deferred[PeerResponse]:
        changed = dataclasses.replace(request, headers={**request.headers, **self.headers})
        return self.inner.send(peers, changed, timeout_seconds)


class XRoadAnswersTest(XRoadBed):
    """The client proxy over loopback HTTP, the provider's server behind it."""

    # --- point 1: the form of a SOAP fault --------------------------------------------------------------------

    @coroutine_test
    async def test_fault_is_http_200_text_xml_with_empty_soap_action(self) -> None:
        """A SOAP fault goes out as CJ/HandlerBase.java sendErrorResponse sends it: HTTP 200,
        text/xml;charset=utf-8, Content-Length and an empty SOAPAction header."""
        answer = await self.http(b"")
        _assert_fault_form(answer, "client.invalid_soap")
        assert b"<faultactor></faultactor>" in answer.body

    @coroutine_test
    async def test_provider_fault_is_passed_on_in_the_fault_form(self) -> None:
        """A provider's SOAP fault reaches the IS as it came, in the fault form (CM/SoapFault.java createFaultXml
        sends a received fault verbatim; X-Road's ServiceReturnsFault case)."""
        answer = await self.http(is_request(FAULTY), headers={"SOAPAction": '""'})
        _assert_fault_form(answer, "SOAP-ENV:Server.PersonNotFound")
        assert b"No such person" in answer.body

    @coroutine_test
    async def test_server_proxy_fault_is_in_the_fault_form(self) -> None:
        """The server proxy's own faults: 200, text/xml;charset=utf-8, empty SOAPAction, prefix server.serverproxy
        (PC/serverproxy/ServerProxyHandler.java: a GET is server.serverproxy.invalid_http_method)."""
        site = server_proxy_site(ServerProxyResource(self.server_proxy))
        port = REACTOR.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        answer = await http_exchange(port.getHost().port, "GET", "/")
        _assert_fault_form(answer, "server.serverproxy.invalid_http_method")
        assert _fault_string(answer.body) == "Must use POST request method instead of GET"

    @coroutine_test
    async def test_rest_errors_keep_x_roads_statuses(self) -> None:
        """REST r1 errors keep X-Road's statuses (PC/clientproxy/ClientRestMessageHandler.java): 400 for a client.*
        code, 500 for a server.* one, with X-Road-Error."""
        target = "/r1/EE/GOV/70000002/service/getRandom"
        answer = await self.client_proxy.handle_rest("GET", target, [("X-Road-Client", "EE/GOV")], b"")
        assert answer.status == 400 and dict(answer.headers)["X-Road-Error"] == "client.invalid_client_identifier"
        answer = await self.client_proxy.handle_rest("GET", target, [("X-Road-Client", "EE/GOV/70000009/nobody")], b"")
        assert answer.status == 500 and dict(answer.headers)["X-Road-Error"] == "server.clientproxy.unknown_member"

    # --- point 3: the codes of malformed requests -------------------------------------------------------------

    @coroutine_test
    async def test_malformed_requests_get_x_roads_codes(self) -> None:
        """An empty body is client.invalid_soap (CM/SaxSoapParserImpl.java: premature end of file), an empty
        multipart/related client.missing_soap (PC/clientproxy/ClientMessageProcessor.java onCompleted), a service
        block without id:objectType client.invalid_xml (CM/SaxSoapParserImpl.java 'Missing objectType attribute')."""
        _assert_fault_form(await self.http(b""), "client.invalid_soap")
        _assert_fault_form(await self.http(b"", MR), "client.missing_soap")
        answer = await self.http(query("missingobjecttype.query"))
        _assert_fault_form(answer, "client.invalid_xml")
        assert _fault_string(answer.body) == "Missing objectType attribute"
        assert self.link.delivered == []

    @coroutine_test
    async def test_fault_sent_as_a_request_is_answered_under_its_own_code(self) -> None:
        """A SOAP fault sent as a request is client.<its faultcode, lower-cased> with its faultstring
        (PC/clientproxy/ClientMessageProcessor.java rethrows it, common-core ErrorCode.java withCode lower-cases)."""
        answer = await self.http(query("fault.query"))
        _assert_fault_form(answer, "client.code")
        assert _fault_string(answer.body) == "STRING"

    # --- point 4: SOAPAction ----------------------------------------------------------------------------------

    def test_soap_action_values_as_x_road_judges_them(self) -> None:
        """ValidateSoapActionTest.java's vectors (PC/util/MessageProcessorBase.java validateSoapActionHeader):
        absent, empty, "" or a quoted URI pass; anything else is invalid_soap_action."""
        for good in (None, "", '""', '"http://example.org/test"', '"urn:foo"'):
            check_soap_action(good)
        for bad in ("http://quotes/missing", '"http://extra/quote""', '"spaces "', '"'):
            with pytest.raises(InvalidSoapAction):
                check_soap_action(bad)

    @coroutine_test
    async def test_malformed_soap_action_is_refused_before_the_body_is_read(self) -> None:
        """An unquoted SOAPAction is client.invalid_soap_action, checked before the body (X-Road's
        SoapActionMalformedHeader case; PC/clientproxy/ClientMessageProcessor.java); nothing is sent."""
        answer = await self.http(b"not even XML", headers={"SOAPAction": "http://example.org/action"})
        _assert_fault_form(answer, "client.invalid_soap_action")
        assert _fault_string(answer.body) == "Malformed SOAPAction header"
        assert self.link.delivered == []

    @coroutine_test
    async def test_soap_action_reaches_the_provider_as_it_came(self) -> None:
        """SOAPAction "" arrives as "", an empty one or none at all as an empty one (X-Road's SoapActionHeader and
        SoapActionEmptyHeader cases; PC/serverproxy/ServerMessageProcessor.java sets it on the provider request)."""
        for sent, arrived in (({"SOAPAction": '""'}, '""'), ({"SOAPAction": ""}, ""), ({}, ""), ({"SOAPAction": '"urn:x"'}, '"urn:x"')):
            answer = await self.http(query("getstate.query"), headers=sent)
            assert answer.status == 200 and b"Fault" not in answer.body
            assert self.xroad_provider.received[-1].soap_action == arrived, sent

    @coroutine_test
    async def test_server_proxy_checks_the_soap_action_again(self) -> None:
        """The server proxy re-validates x-original-soapaction (PC/serverproxy/ServerMessageProcessor.java):
        server.serverproxy.invalid_soap_action, and the provider is not called."""
        proxy = self.make_client_proxy(Rewrite(self.link, {"x-original-soapaction": "unquoted"}))
        _, _, answer = await proxy.handle_soap("text/xml; charset=UTF-8", query("getstate.query"), {})
        assert fault_code(answer) == "server.serverproxy.invalid_soap_action"
        assert self.xroad_provider.received == []

    # --- point 5: the form the provider gets ------------------------------------------------------------------

    @coroutine_test
    async def test_multipart_with_only_the_soap_part_reaches_the_provider_as_multipart(self) -> None:
        """X-Road's MimeSoap case (PC/protocol/ProxyMessage.java getSoapContentType): a multipart/related request
        holding only its SOAP part reaches the provider under the client's own Content-Type, boundary and all,
        with exactly one part."""
        answer = await self.http(query("mimesoap.query"), MR)
        assert answer.status == 200 and b"Fault" not in answer.body
        received = self.xroad_provider.received[-1]
        assert received.content_type == MR
        parts = parse_multipart(received.body, "jetty771207119h3h10dty")
        assert len(parts) == 1 and parts[0].header("Content-Type") == 'text/xml; charset="utf-8"'

    @coroutine_test
    async def test_mtom_request_reaches_the_provider_with_the_clients_content_type(self) -> None:
        """X-Road's AttachmentMTOM case: the provider gets the client's Content-Type string unchanged and each
        part's Content-Type and Content-ID."""
        mtom = 'Multipart/Related; start-info="application/soap+xml"; type="application/xop+xml"; boundary="jetty771207119h3h10dty"'
        answer = await self.http(query("attachm-mtom.query"), mtom)
        assert answer.status == 200 and b"Fault" not in answer.body
        received = self.xroad_provider.received[-1]
        assert received.content_type == mtom
        boundary = parse_header_value(mtom).param("boundary")
        assert boundary is not None
        parts = parse_multipart(received.body, boundary)
        assert [p.header("Content-ID") for p in parts] == ["<foo>", "<42a7ee0a-20ee-426b-a135-094d72bc138f@example.org>"]
        assert parts[0].header("Content-Type") == 'application/xop+xml; type="application/soap+xml"; charset=utf-8'
        assert parts[1].header("Content-Type") == "text/plain; charset=UTF-8; name=attachment.txt"

    # --- point 5, the answer: the form the IS gets ------------------------------------------------------------

    def _provider_answers_with(self, answer_file: str, content_type: str) -> list[Part]:
        """The provider answers with X-Road's answer file (LF line ends, as X-Road's tests send it) under
        ``content_type``, its SOAP part replaced by the echo of the request; returns the file's parts."""
        boundary = parse_header_value(content_type).param("boundary")
        assert boundary is not None
        raw = (QUERIES / answer_file).read_bytes()
        parts = list(parse_multipart(raw, boundary))
        self.xroad_provider.answer_form = lambda soap: (content_type, raw.replace(parts[0].body, soap, 1))
        return parts

    def _logged_response(self) -> tuple[bytes, tuple[bytes, ...]]:
        """The SOAP part and attachments of the consumer's logged response, after checking that both message logs
        verify and that its signature covers the SOAP part and every attachment."""
        for side in (self.consumer, self.provider):
            with MessageLogStore(side.log_path) as store:
                assert store.verify() == 2
                response = list(store.records())[1]
            resolve = part_resolver(response.message, response.attachments, response.hashchainresult, response.hashchain)
            verify_signature(response.signature, resolve, expected_parts=expected_uris(len(response.attachments)))
        return response.message, response.attachments

    @coroutine_test
    async def test_mtom_answer_reaches_the_is_under_the_providers_content_type(self) -> None:
        """X-Road's AttachmentMTOM answer (PC/serverproxy/ServerMessageProcessor.java parseResponse puts the
        provider's Content-Type in x-original-content-type; PC/clientproxy/ClientMessageProcessor.java sendResponse
        answers with it; PC/protocol/ProxyMessage.java writeSoapContent re-encodes with CJ/MultipartEncoder.java):
        the IS gets the provider's Content-Type string unchanged, and the parts with the provider's boundary, CRLF
        line ends, Content-Type first and each part's other headers kept; the signature covers the SOAP part and
        the attachment, in both message logs."""
        answer_type = (
            'Multipart/Related; start-info="application/soap+xml"; type="application/xop+xml"; '
            'boundary="jetty771207119h3h10dty";charset=UTF-8'
        )
        parts = self._provider_answers_with("attachm-mtom.answer", answer_type)
        mtom = 'Multipart/Related; start-info="application/soap+xml"; type="application/xop+xml"; boundary="jetty771207119h3h10dty"'
        answer = await self.http(query("attachm-mtom.query"), mtom)
        assert answer.status == 200 and answer.header("content-type") == answer_type, answer.body[:400]
        soap, attachments = self._logged_response()
        assert attachments == (parts[1].body,)
        assert b"requestHash" in soap
        assert answer.body == (
            b"--jetty771207119h3h10dty\r\n"
            b'Content-Type: application/xop+xml; type="application/soap+xml"; charset=utf-8\r\n'
            b"Content-ID: <foo>\r\n\r\n" + soap + b"\r\n"
            b"--jetty771207119h3h10dty\r\n"
            b"Content-Type: text/plain; charset=UTF-8; name=attachment.txt\r\n"
            b"Content-ID: <42a7ee0a-20ee-426b-a135-094d72bc138f@example.org>\r\n\r\n" + parts[1].body + b"\r\n"
            b"--jetty771207119h3h10dty--\r\n"
        )

    @coroutine_test
    async def test_multipart_answer_with_only_the_soap_part_stays_multipart(self) -> None:
        """X-Road's MimeSoap answer (PC/protocol/ProxyMessage.java getSoapContentType: a multipart/related answer
        without attachments keeps the provider's Content-Type; writeSoapContent writes its one part with the
        provider's boundary): the IS gets one part, not the SOAP message as text/xml."""
        self._provider_answers_with("mimesoap.answer", MR)
        answer = await self.http(query("mimesoap.query"), MR)
        assert answer.status == 200 and answer.header("content-type") == MR, answer.body[:400]
        soap, attachments = self._logged_response()
        assert attachments == ()
        assert answer.body == (
            b'--jetty771207119h3h10dty\r\nContent-Type: text/xml; charset="utf-8"\r\n\r\n'
            + soap
            + b"\r\n--jetty771207119h3h10dty--\r\n"
        )

    @coroutine_test
    async def test_text_xml_answer_stays_text_xml_for_a_multipart_request(self) -> None:
        """A text/xml answer to a multipart/related request reaches the IS as text/xml, the SOAP bytes alone
        (PC/protocol/ProxyMessage.java: the answer's own Content-Type decides, not the request's)."""
        answer = await self.http(query("mimesoap.query"), MR)
        assert answer.status == 200 and answer.header("content-type") == "text/xml; charset=UTF-8"
        soap, _ = self._logged_response()
        assert answer.body == soap

    # --- point 7: the old GET /wsdl ---------------------------------------------------------------------------

    @coroutine_test
    async def test_old_get_wsdl_is_invalid_http_method(self) -> None:
        """GET /wsdl (removed in X-Road 6.24) is answered as X-Road 7.8 answers any GET
        (PC/clientproxy/ClientMessageHandler.java verifyCanProcess): client.invalid_http_method, HTTP 200."""
        answer = await self.http(None, None, method="GET", path="/wsdl?xRoadInstance=EE&memberClass=GOV")
        _assert_fault_form(answer, "client.invalid_http_method")
        assert _fault_string(answer.body) == "Must use POST request method instead of GET"

    @coroutine_test
    async def test_post_to_wsdl_is_an_ordinary_soap_request(self) -> None:
        """X-Road's SOAP handler never looks at the path: POST /wsdl with a SOAP body is served as usual."""
        answer = await self.http(query("getstate.query"), path="/wsdl")
        assert answer.status == 200 and b"getStateResponse" in answer.body

    # --- point 8: member-level services, and an answer whatever fails -----------------------------------------

    @coroutine_test
    async def test_member_level_service_works_end_to_end(self) -> None:
        """X-Road's baseline NormalMessage (getstate.query) is a member-level call: it is answered, and logs and
        summaries name the service as X-Road's XRoadId.toString does, SERVICE:EE/GOV/70000002/getState."""
        with capture_logs() as logs:
            answer = await self.http(query("getstate.query"))
        assert answer.status == 200 and b"getStateResponse" in answer.body
        summaries = [e for e in logs if e["event"] in ("soap_request_answered", "peer_request_answered")]
        assert len(summaries) == 2 and {e["service"] for e in summaries} == {"SERVICE:EE/GOV/70000002/getState"}
        assert {r.service for r in records(self.consumer.log_path)} == {"SERVICE:EE/GOV/70000002/getState"}

    @coroutine_test
    async def test_client_proxy_answers_whatever_step_fails(self) -> None:
        """A failure at any step of the client proxy is answered, never left hanging: server.clientproxy.internal_error
        with the cause in our log (PC/clientproxy/AbstractClientProxyHandler.java catches every Throwable)."""
        proxy = self.client_proxy
        steps: list[tuple[str, Any, str]] = [
            ("parse", SoapRequest, "parse"),
            ("check_client", proxy, "_check_client"),
            ("provider_peers", proxy, "_provider_peers"),
            ("sign_request", proxy, "_sign_request"),
            ("exchange_with_peer", proxy, "_exchange_with_peer"),
            ("record", proxy.journal, "record"),
            ("summary", proxy.journal, "summary"),
            ("handle_soap", proxy, "handle_soap"),
            # steps run only when another has failed: with the exchange step failing first
            ("fail", proxy, "_fail"),
            ("record_failure", proxy.journal, "record_failure"),
        ]
        for marker, owner, name in steps:
            with _patched(owner, name, _raiser(f"boom-{marker}")), capture_logs() as logs:
                if marker in ("fail", "record_failure"):
                    with _patched(proxy, "_exchange_with_peer", _raiser("boom-first")):
                        answer = await self.http(query("getstate.query"))
                else:
                    answer = await self.http(query("getstate.query"))
            assert b"<faultcode>server.clientproxy.internal_error</faultcode>" in answer.body, marker
            _assert_fault_form(answer, "server.clientproxy.internal_error")
            assert any(f"boom-{marker}" in str(event.get("reason", "")) for event in logs), marker
        answer = await self.http(query("getstate.query"))
        assert answer.status == 200 and b"getStateResponse" in answer.body  # nothing left broken

    @coroutine_test
    async def test_server_proxy_answers_whatever_step_fails(self) -> None:
        """A failure at any step of the server proxy is answered: server.serverproxy.internal_error, passed to the IS,
        the cause in the server proxy's log (PC/serverproxy/ServerProxyHandler.java catches every Throwable)."""
        proxy = self.server_proxy
        steps: list[tuple[str, Any, str]] = [
            ("decode_request", server_proxy_module, "decode_request"),
            ("read_soap", proxy, "_read_soap"),
            ("check_target", proxy, "_check_target"),
            ("check_peer", proxy, "_check_peer"),
            ("check_service", proxy, "_check_service"),
            ("verify_request", proxy, "_verify_request"),
            ("record", proxy.journal, "record"),
            ("call_soap_provider", proxy, "_call_soap_provider"),
            ("sign_response", proxy, "_sign_response"),
            ("reply", proxy, "_reply"),
            ("summary", proxy.journal, "summary"),
            ("record_failure", proxy.journal, "record_failure"),
        ]  # a handler failing outright is answered by the server proxy's site: test_mtls.py
        for marker, owner, name in steps:
            with _patched(owner, name, _raiser(f"boom-{marker}")), capture_logs() as logs:
                if marker == "record_failure":  # called for a failure after the request was logged
                    with _patched(proxy, "_call_soap_provider", _raiser("boom-provider")):
                        answer = await self.http(query("getstate.query"))
                else:
                    answer = await self.http(query("getstate.query"))
            _assert_fault_form(answer, "server.serverproxy.internal_error")
            assert any(f"boom-{marker}" in str(event.get("reason", "")) for event in logs), marker
        answer = await self.http(query("getstate.query"))
        assert answer.status == 200 and b"getStateResponse" in answer.body  # nothing left broken


_MISSING = object()


@contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` replaced by ``value`` for the block (an instance's own attribute, a class's or a module's)."""
    saved = vars(owner).get(name, _MISSING)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if saved is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, saved)


def _raiser(message: str) -> Callable[..., Any]:
    """A stand-in for a step that fails as nothing in fedbus should (not a BusError)."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(message)

    return boom


def test_unresolvable_provider_host_is_unknown_host() -> None:
    """A provider host name that does not resolve is service_failed.unknown_host, as X-Road maps an
    UnknownHostException (common-core XrdRuntimeException.java resolveExceptionCode; X-Road's InvalidServiceAddress)."""
    failure = Failure(net_error.DNSLookupError("no results for hostname lookup: nowhere.invalid"))  # type: ignore[no-untyped-call]
    error = failure_to_service_failed(failure, "http://nowhere.invalid/", 10.0)
    assert error.code == "service_failed" and error.subcode == "unknown_host"
