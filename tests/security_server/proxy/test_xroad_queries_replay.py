"""X-Road's whole client-sendable request set, replayed against a running fedbus (issue 14).

Every query of X-Road 7.8's proxy test suite that a client can send (``client_can_send=yes`` in the research table,
/work/briefs/xroad_cases.tsv; X-Road ``src/service/proxy/proxy-core/src/test/java/.../testsuite/testcases/*.java``
and the query files in tests/vectors/xroad/queries/) goes over loopback HTTP to the client proxy of the test
federation, identifiers rewritten to ours (tests/security_server/proxy/xroad_bed.py), on to the provider's server
and provider. Each must be answered with X-Road's fault code, or succeed where X-Road succeeds. Where fedbus
differs on purpose the case says so (``Differs``) and docs/compatibility.md lists it; a test checks that it does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lxml import etree

from security_server.core.acl import AccessRight
from security_server.core.errors import SOAP_ENV_NS
from security_server.core.identifiers import ServiceId
from tests.federation.world import C, P, global_conf
from tests.loopback import coroutine_test
from tests.security_server.proxy.xroad_bed import GET_STATE, MR, QUERIES, HttpAnswer, XRoadBed, query

TEXT_XML = "text/xml; charset=UTF-8"
MR_NO_CHARSET = "multipart/related; boundary=jetty771207119h3h10dty"
MTOM = 'Multipart/Related; start-info="application/soap+xml"; type="application/xop+xml"; boundary="jetty771207119h3h10dty"'
OK = "ok"

COMPATIBILITY = Path(__file__).resolve().parents[3] / "docs" / "compatibility.md"


@dataclass(frozen=True)
class Differs:
    """A deliberate difference from X-Road 7.8: what fedbus answers instead (a fault code, or ``ok``)."""

    fedbus: str
    why: str


@dataclass(frozen=True)
class Case:
    """One X-Road test case as a client sends it, and X-Road 7.8's answer (a fault code, or ``ok``)."""

    name: str
    source: str
    """The query file sent (or how the request is made)."""
    xroad: str
    content_type: str | None = TEXT_XML
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "POST"
    path: str = "/"
    setup: Callable[[XRoadBed], None] | None = None
    differs: Differs | None = None
    edit: Callable[[bytes], bytes] | None = None
    """A change to the query file's bytes (after the identifiers are rewritten)."""
    attachment_mib: int | None = None
    """X-Road's AttachmentBig: the request is built in code, getstate.query and a binary attachment this large."""

    @property
    def body(self) -> bytes | None:
        """The body sent: the query file (rewritten, edited), or a request made in code; None for a GET."""
        if self.method == "GET":
            return None
        if self.attachment_mib is not None:
            return _with_attachment(self.attachment_mib * 1024 * 1024)
        data = query(self.source)
        return data if self.edit is None else self.edit(data)


def _revoke_test_right(bed: XRoadBed) -> None:
    bed.provider.store.revoke(AccessRight.for_service(C, ServiceId(P, "test")))


def _disable_get_state(bed: XRoadBed) -> None:
    bed.provider.store.disable_service(GET_STATE, "Closed for maintenance")


def _no_provider_address(bed: XRoadBed) -> None:
    bed.conf_box[0] = global_conf(bed.pki, ss2_address=None)  # type: ignore[arg-type]  # a server without address


def _publish_invalid_service_address(bed: XRoadBed) -> None:
    url = f"http://127.0.0.1:{bed.provider_port.getHost().port}/xroad"
    bed.provider.store.add_service(ServiceId(P, "invalidServiceAddress"), url=url, timeout_seconds=10)
    bed.provider.store.grant(AccessRight.for_service(C, ServiceId(P, "invalidServiceAddress")))


def _with_attachment(size: int) -> bytes:
    """X-Road's AttachmentBig request (built in code, Jetty's CRLF form): getstate.query and a binary attachment."""
    soap = query("getstate.query")
    return (
        b"--B1\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n" + soap
        + b"\r\n--B1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        + bytes(range(256)) * (size // 256) + b"\r\n--B1--\r\n"
    )


EMPTY_ID = Differs(
    "client.missing_header_field",
    "an empty <xroad:id> is refused: the id names the exchange in both message logs and in the evidence",
)

CASES = (
    Case("Attachment", "attachm.query", OK, MR),
    Case("Attachment2", "attachm2.query", OK, MR_NO_CHARSET),
    Case("AttachmentBig (1 MiB)", "getstate.query", OK, "multipart/related; charset=UTF-8; boundary=B1", attachment_mib=1),
    Case(
        "AttachmentBig",
        "getstate.query",
        OK,
        "multipart/related; charset=UTF-8; boundary=B1",
        attachment_mib=11,
        differs=Differs("client.bad_request", "a body over the configured limit (10 MiB by default) is refused, not streamed"),
    ),
    Case("AttachmentFaulty", "attachm-error.query", "client.invalid_content_type", MR),
    Case("AttachmentFaultySoap", "attachm-faulty-soap.query", "client.missing_header_field", MR),
    Case("AttachmentMTOM", "attachm-mtom.query", OK, MTOM),
    Case("AttachmentNoSoap", "attachm-no-soap.query", "client.invalid_content_type", MR),
    Case("CDATAMessage", "cdata.query", OK),
    Case("DefaultNamespaceMessage", "getstate-defaultnamespace.query", OK),
    Case("EmptyMultipartRequest", "empty.query", "client.missing_soap", MR),
    Case("EmptyQuery", "empty.query", "client.invalid_soap"),
    Case("FaultyHeader", "faulty-header2.query", "client.duplicate_header_field"),
    Case("FaultyRequestContentType", "getstate.query", "client.invalid_content_type", "blah"),
    Case("InvalidProviderAddress3", "attachm.query", "server.clientproxy.unknown_member", MR, setup=_no_provider_address),
    Case("MalformedBody1", "malformed-body1.query", "client.invalid_body"),
    Case("MalformedBody2", "malformed-body2.query", "client.invalid_body"),
    Case("MalformedBody3", "malformed-body3.query", "client.inconsistent_headers"),
    Case("MalformedProtocolVersionHeader", "malformed-protocolVersion.query", "client.invalid_protocol_version"),
    Case("MimeSoap", "mimesoap.query", OK, MR),
    Case("MissingBody", "missing-body.query", "client.missing_body"),
    Case("MissingHeader", "no-header.query", "client.missing_header"),
    Case("MissingObjectTypeMessage", "missingobjecttype.query", "client.invalid_xml"),
    Case("MissingOrg", "missing-org.query", "server.clientproxy.unknown_member"),
    Case("MissingProtocolVersionHeader", "missing-protocolVersion.query", "client.missing_header_field"),
    Case("MissingUserIdHeader", "missing-userId.query", OK),
    Case("NoWhitespaceMessage", "nowhitespace.query", OK),
    Case("NormalMessage", "getstate.query", OK),
    Case("NormalSubsystem", "getstate-subsystem.query", OK),
    Case("NotAllowed", "notAllowed.query", "server.serverproxy.access_denied", setup=_revoke_test_right),
    Case("ServiceDisabled", "getstate.query", "server.serverproxy.service_disabled", setup=_disable_get_state),
    Case("SeveralAttachments", "attachments.query", OK, MR),
    Case("SoapActionEmptyHeader", "getstate.query", OK, headers=(("SOAPAction", ""),)),
    Case("SoapActionHeader", "getstate.query", OK, headers=(("SOAPAction", '""'),)),
    Case(
        "SoapActionMalformedHeader",
        "getstate.query",
        "client.invalid_soap_action",
        headers=(("SOAPAction", "http://example.org/action"),),
    ),
    Case("SoapFaultToClientProxy", "fault.query", "client.code"),
    Case("SplitHeaderMessage", "split-header.query", OK),
    Case(
        "UnknownService",
        "getstate.query",
        "server.serverproxy.unknown_service",
        edit=lambda data: data.replace(b"getState", b"getUnknownState"),
    ),
    Case("Utf8BomAttachment2", "attachm2-utf8bom-inside.query", OK, MR_NO_CHARSET, differs=EMPTY_ID),
    Case("Utf8BomNormalSubsystem", "getstate-subsystem.query", OK, edit=lambda data: b"\xef\xbb\xbf" + data),
    Case("WrongHttpMethod", "getstate.query", "client.invalid_http_method", method="GET"),
    Case("GET /wsdl (removed in X-Road 6.24)", "getstate.query", "client.invalid_http_method", None, method="GET", path="/wsdl?xRoadInstance=EE"),
    Case("WrongProtocolVersionHeader", "wrong-protocolVersion.query", "client.invalid_protocol_version"),
    Case("XmlEncodedMessage", "xmlencoded.query", OK),
    # query files no X-Road proxy test case sends (the expected answer is read from X-Road's source)
    Case("allowedMethods.query", "allowedMethods.query", OK),
    Case("listMethods.query", "listMethods.query", OK),
    Case("attach-error-withsoap.query", "attach-error-withsoap.query", "client.inconsistent_headers"),
    Case("bigAttachment.query", "bigAttachment.query", OK),
    Case("inconsistent-headers.query", "inconsistent-headers.query", "client.inconsistent_headers"),
    Case("invalid-service-address.query", "invalid-service-address.query", OK, setup=_publish_invalid_service_address),
    Case("proxyemulator.query", "proxyemulator.query", OK),
    Case(
        "request-suffix.query",
        "request-suffix.query",
        OK,
        differs=Differs(
            "client.inconsistent_headers",
            "the body element must equal the service code: access rights are per service code, and a prefix match "
            "would let a right on `get` reach a provider that dispatches `getSecret` by its body element",
        ),
    ),
    Case("signing-error-request.query", "signing-error-request.query", "server.clientproxy.unknown_member"),
    Case("signing-error-response.query", "signing-error-response.query", "server.clientproxy.unknown_member"),
    Case("simple-representedparty.query", "simple-representedparty.query", OK),
    Case("simple-rpc.query", "simple-rpc.query", OK),
    Case("simple.query", "simple.query", OK),
    Case("smallAttachment.query", "smallAttachment.query", OK, MR),
    Case("soapfaulterror.query", "soapfaulterror.query", "client.soap-env:clientrwerete"),
    Case("wrong-version.query", "wrong-version.query", "client.invalid_protocol_version"),
    # requests whose X-Road case scripts the provider's answer (client_can_send=no): as plain requests they succeed
    Case("xml.query", "xml.query", OK),
    Case("soapfault-mtom.query", "soapfault-mtom.query", OK, MTOM),
)
"""Every client-sendable case of X-Road's proxy test suite, and the query files no test sends (all but the ones in
:data:`NOT_REPLAYED`)."""

NOT_REPLAYED = {
    "AttachmentSmallMantis": "its query file is missing from the X-Road snapshot we hold",
    "InvalidServiceAddress": "needs a host name that does not resolve (no DNS in tests); the mapping to "
    "service_failed.unknown_host is pinned by test_xroad_answers.py",
    "InvalidServiceAddress2": "as InvalidServiceAddress",
    "ServerProxyMaintenanceMode": "fedbus has no maintenance mode in the global configuration",
    "SslClientAuth": "fedbus's client proxy has no TLS authentication of information systems (SSLAUTH)",
    "SslClientAuthExpiredISCert": "as SslClientAuth",
    "SslClientAuthNoISCert": "as SslClientAuth",
    "SslClientAuthWrongISCert": "as SslClientAuth",
    "SslNormalMessage": "as SslClientAuth (the IS talks plain HTTP to the client proxy)",
}
"""Client-sendable cases that cannot be replayed here, and why; docs/compatibility.md lists them."""

NOT_CLIENT_REQUESTS = {"faulty-header.query", "faulty-multipart.query", "no-signature.query", "no-soap.query"}
"""Query files X-Road uses only as a provider's answer or as a message posted straight to a server proxy."""


def _code(answer: HttpAnswer) -> str:
    """``ok`` for a successful SOAP answer, else the fault's code (or the HTTP status when it is not 200)."""
    if answer.status != 200:
        return f"HTTP {answer.status}"
    if (answer.header("content-type") or "").lower().startswith("multipart/"):
        return OK
    code = etree.fromstring(answer.body).find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault/faultcode")
    return OK if code is None else code.text or ""


class ReplayTest(XRoadBed):
    """One test per case, each on a fresh test bed (a case may change the configuration); made below from CASES."""

    async def replay(self, case: Case) -> None:
        """Send ``case`` as a client does; check X-Road's answer (or the documented difference) and its form."""
        if case.setup is not None:
            case.setup(self)
        answer = await self.http(case.body, case.content_type, method=case.method, path=case.path, headers=dict(case.headers))
        expected = case.differs.fedbus if case.differs is not None else case.xroad
        assert _code(answer) == expected, (case.name, answer.status, answer.body[:600])
        assert answer.status == 200  # X-Road answers every SOAP request, fault or not, with 200
        if expected != OK:
            # HandlerBase.sendErrorResponse: text/xml;charset=utf-8 and an empty SOAPAction header
            assert answer.header("content-type") == "text/xml;charset=utf-8", case.name
            assert answer.headers.get("soapaction") == [""], case.name


def _replay_test(case: Case) -> Callable[[ReplayTest], Any]:
    async def test(self: ReplayTest) -> None:
        await self.replay(case)

    test.__name__ = "test_" + re.sub(r"\W+", "_", case.name).strip("_")
    test.__doc__ = f"X-Road's {case.name}: answered {case.differs.fedbus if case.differs else case.xroad} (X-Road: {case.xroad})."
    return coroutine_test(test)


for _case in CASES:
    _test = _replay_test(_case)
    setattr(ReplayTest, _test.__name__, _test)


def test_differences_are_in_the_compatibility_table() -> None:
    """Every case where fedbus answers otherwise than X-Road, and every case not replayed, is in docs/compatibility.md."""
    text = COMPATIBILITY.read_text(encoding="utf-8")
    for case in CASES:
        if case.differs is not None:
            assert case.name in text, case.name
    for name in NOT_REPLAYED:
        assert name in text, name


def test_every_query_file_is_replayed() -> None:
    """Each query file in the vector folder is sent by some case, unless it is not a client's request at all."""
    sent = {case.source for case in CASES}
    for path in sorted(QUERIES.glob("*.query")):
        assert path.name in sent or path.name in NOT_CLIENT_REQUESTS, path.name
