"""REST r1 message parts: X-Road's examples and vectors, round trips, the request hash, headers and errors."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from security_server.core.errors import BadRequest, BusError, InvalidClientIdentifier, RequestTooLarge
from security_server.core.identifiers import ClientId, SecurityServerId, ServiceId
from security_server.core.rest import (
    RestRequest,
    RestResponse,
    error_media_type,
    filter_end_to_end,
    request_hash,
    rest_error,
    rest_error_of,
)
from security_server.core.signature import verify_signature
from security_server.core.soapattachments import part_resolver

PROPERTY = settings(max_examples=80, deadline=None)
CLIENT = ("X-Road-Client", "INSTANCE/CLASS1/MEMBER1/SUBSYSTEM1")


def _request(target: str, headers: list[tuple[str, str]] | None = None, method: str = "GET") -> RestRequest:
    return RestRequest.from_client(
        method, target, [CLIENT] if headers is None else headers, request_id="rid-1", new_query_id="INSTANCE-q1"
    )


# --- X-Road's examples -----------------------------------------------------------------------------------------


def test_request_line_example_is_read_as_x_road_reads_it() -> None:
    """pr-rest §4.1: /r1/INSTANCE/CLASS2/MEMBER2/SUBSYSTEM2/BARSERVICE/v1/bar/zyggy?quu=1 (protocol-examples §3.1)."""
    request = _request("/r1/INSTANCE/CLASS2/MEMBER2/SUBSYSTEM2/BARSERVICE/v1/bar/zyggy?quu=1")
    assert request.service == ServiceId(ClientId("INSTANCE", "CLASS2", "MEMBER2", "SUBSYSTEM2"), "BARSERVICE")
    assert request.client == ClientId("INSTANCE", "CLASS1", "MEMBER1", "SUBSYSTEM1")
    assert request.service_path == "/v1/bar/zyggy" and request.query == "quu=1"
    assert request.provider_target("https://barservice.example.org/") == "https://barservice.example.org/v1/bar/zyggy?quu=1"


def test_request_message_part_is_x_roads_serialization() -> None:
    """VERB CRLF path?query CRLF Name:Value CRLF..., then x-road-request-id and a generated x-road-id (§11.3)."""
    request = _request("/r1/EE/GOV/1/sub/pets/v2/pets?x=1", [CLIENT, ("Accept", "application/json")])
    assert request.to_bytes() == (
        b"GET\r\n/r1/EE/GOV/1/sub/pets/v2/pets?x=1\r\nX-Road-Client:INSTANCE/CLASS1/MEMBER1/SUBSYSTEM1\r\n"
        b"Accept:application/json\r\nx-road-request-id:rid-1\r\nx-road-id:INSTANCE-q1\r\n"
    )
    assert RestRequest.parse(request.to_bytes()) == request


def _vector_container(vectors: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(vectors / "asic" / "valid-non-batch-rest.asice")


def test_x_roads_logged_rest_response_parses_and_serializes_byte_for_byte(xroad_vectors: Path) -> None:
    """message.xml of valid-non-batch-rest.asice (protocol-examples §12.4) reads back to the same bytes."""
    with _vector_container(xroad_vectors) as container:
        message = container.read("message.xml")
    response = RestResponse.parse(message)
    assert response.to_bytes() == message
    assert response.status == 200 and response.reason == "OK"
    assert response.service == ServiceId(ClientId("DEV", "COM", "1234", "TestService"), "mock1")
    assert response.client == ClientId("DEV", "COM", "4422", "TestClient")
    assert response.query_id == "DEV-d75ea6fd-d24b-48ec-a320-53675c40fb86"
    assert response.request_id == "78b890f3-b1eb-45b2-a512-beec5d7ead23" and len(response.request_hash) == 64


def test_x_roads_rest_signature_covers_message_part_and_body(xroad_vectors: Path) -> None:
    """X-Road's signature in valid-non-batch-rest.asice verifies over /message.xml and the body as /attachment1."""
    with _vector_container(xroad_vectors) as container:
        message, body = container.read("message.xml"), container.read("attachment1")
        signature = container.read("META-INF/signatures.xml")
    verified = verify_signature(signature, part_resolver(message, [body]), expected_parts=("/message.xml", "/attachment1"))
    assert {"/message.xml", "/attachment1"} <= verified.covered_parts


# --- the request from the department system --------------------------------------------------------------------


def test_hop_by_hop_and_host_headers_are_filtered() -> None:
    """Connection, Keep-Alive, Host, User-Agent, Content-Length, Expect, ... and Connection's tokens are dropped."""
    headers = [
        CLIENT,
        ("Host", "ss1:8080"),
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("X-Secret-Hop", "1"),
        ("User-Agent", "curl/8"),
        ("Content-Length", "5"),
        ("Transfer-Encoding", "chunked"),
        ("Expect", "100-continue"),
        ("Proxy-Authorization", "Basic x"),
        ("X-Road-Request-Hash", "forged"),
        ("X-Road-Request-Id", "forged"),
        ("Cache-Control", "no-cache"),
    ]
    request = _request("/r1/EE/GOV/1/sub/pets", headers)
    assert [name for name, _ in request.headers] == ["X-Road-Client", "Cache-Control", "x-road-request-id", "x-road-id"]
    assert request.request_id == "rid-1"


def test_the_last_x_road_client_wins_and_is_the_only_one_forwarded() -> None:
    """pr-rest §4.3: the last X-Road-Client is the client; the earlier ones are not signed or forwarded."""
    request = _request("/r1/EE/GOV/1/sub/pets", [("X-Road-Client", "EE/GOV/666/victim"), ("X-Road-Client", "EE/GOV/2/me")])
    assert request.client == ClientId("EE", "GOV", "2", "me")
    assert [v for n, v in request.headers if n.lower() == "x-road-client"] == ["EE/GOV/2/me"]


def test_x_road_id_is_kept_when_sent_and_generated_when_missing() -> None:
    """An X-Road-Id of the system is kept; without one the consumer's server writes instance-uuid (X-Road)."""
    assert _request("/r1/EE/GOV/1/sub/p", [CLIENT, ("X-Road-Id", "mine")]).query_id == "mine"
    assert _request("/r1/EE/GOV/1/sub/p", [CLIENT, ("X-Road-Id", "")]).query_id == "INSTANCE-q1"


def test_optional_x_road_headers_are_read() -> None:
    """X-Road-UserId, -Issue, -Security-Server and -Represented-Party are read (pr-rest §4.3)."""
    request = _request(
        "/r1/EE/GOV/1/sub/p",
        [
            CLIENT,
            ("X-Road-UserId", "EE12345678901"),
            ("X-Road-Issue", "MT324223MSD"),
            ("X-Road-Security-Server", "EE/GOV/1/ss1"),
            ("X-Road-Represented-Party", "COM/12345"),
        ],
    )
    assert request.user_id == "EE12345678901" and request.issue == "MT324223MSD"
    assert request.security_server == SecurityServerId(ClientId("EE", "GOV", "1"), "ss1")
    assert request.represented_party == ("COM", "12345")
    assert _request("/r1/EE/GOV/1/sub/p", [CLIENT, ("X-Road-Represented-Party", "12345")]).represented_party == (None, "12345")


def test_identifier_segments_are_decoded_one_by_one() -> None:
    """Each service-id segment is percent-decoded on its own (pr-rest §4.2)."""
    request = _request("/r1/EE/GOV/70%2B1/s%28b%29/get%3DIt/x%20y", [("X-Road-Client", "EE/GOV/70%2B1/c")])
    assert request.service == ServiceId(ClientId("EE", "GOV", "70+1", "s(b)"), "get=It")
    assert request.client == ClientId("EE", "GOV", "70+1", "c")
    # the service path keeps its escapes for the provider; access rights see its decoded normal form
    assert request.service_path == "/x%20y" and request.normal_path == "/x y"


def test_missing_x_road_client_is_bad_request() -> None:
    """No X-Road-Client (or an empty one) is client.bad_request."""
    for headers in ([], [("X-Road-Client", " ")]):
        with pytest.raises(BadRequest) as caught:
            _request("/r1/EE/GOV/1/sub/p", headers)
        assert caught.value.fault_code == "client.bad_request"


@pytest.mark.parametrize("value", ["EE/GOV", "EE/GOV/1/sub/x", "EE/GOV/1/s b", "EE/GOV/%2e%2e", "EE/GOV/1/%FF", "EE//1"])
def test_malformed_x_road_client_is_invalid_client_identifier(value: str) -> None:
    """A client header of the wrong shape or characters is client.invalid_client_identifier."""
    with pytest.raises(InvalidClientIdentifier):
        _request("/r1/EE/GOV/1/sub/p", [("X-Road-Client", value)])


@pytest.mark.parametrize(
    "target",
    ["/r1/EE/GOV/1/sub", "/r1/EE/GOV/1", "/r1/", "/r2/EE/GOV/1/sub/p", "/x/EE/GOV/1/sub/p", "/r1/EE/GOV/1/sub/p/a b"],
)
def test_malformed_request_paths_are_bad_request(target: str) -> None:
    """Too few segments, another protocol version, or characters that must be encoded: client.bad_request."""
    with pytest.raises(BusError) as caught:
        _request(target)
    assert caught.value.fault_code == "client.bad_request"


def test_encoded_service_path_tricks_are_refused_when_the_request_is_made() -> None:
    """A service path with %2F, %2e%2e, .., ; or double encoding never makes a RestRequest."""
    for path in ("/a/..%2Fb", "/a/%2e%2e/b", "/a/../b", "/a;x", "/a/%252e%252e"):
        with pytest.raises(BadRequest):
            _request(f"/r1/EE/GOV/1/sub/p{path}")


def test_unknown_method_is_refused() -> None:
    """Only the methods of X-Road's RestRequest.Verb are REST calls."""
    with pytest.raises(BadRequest):
        _request("/r1/EE/GOV/1/sub/p", method="CONNECT")


@pytest.mark.parametrize(
    "message",
    [
        b"GET\r\n/r1/EE/GOV/1/sub/p\r\nx-road-client:EE/GOV/1/c\r\nx-road-id:1",  # no final CRLF
        b"GET\n/r1/EE/GOV/1/sub/p\nx-road-client:EE/GOV/1/c\nx-road-id:1\n",  # bare LF
        b"GET\r\nhttp://evil/r1/EE/GOV/1/sub/p\r\nx-road-client:EE/GOV/1/c\r\nx-road-id:1\r\n",  # absolute URI
        b"GET\r\n/r1/EE/GOV/1/sub/p\r\nx-road-client:EE/GOV/1/c\r\nx-road-id:1\r\nHost:x\r\n",  # hop-by-hop
        b"GET\r\n/r1/EE/GOV/1/sub/p\r\nx-road-client:EE/GOV/1/c\r\nx-road-client:EE/GOV/1/d\r\nx-road-id:1\r\n",
        b"GET\r\n/r1/EE/GOV/1/sub/p\r\nx-road-client:EE/GOV/1/c\r\n",  # no x-road-id
        b"GET\r\n/r1/EE/GOV/1/sub/p\r\nx-road-client EE/GOV/1/c\r\nx-road-id:1\r\n",  # no colon
        b"GET\r\n/r1/EE/GOV/1/sub/p\r\nx-road-client:EE/GOV/1/c\r\nx-road-id:\xff\r\n",  # not UTF-8
        b"",
    ],
)
def test_malformed_request_message_parts_are_refused(message: bytes) -> None:
    """A signed message part is read strictly: CRLF lines, a relative target, no hop-by-hop, one client, an id."""
    with pytest.raises(BadRequest):
        RestRequest.parse(message)


def test_oversized_message_part_is_refused() -> None:
    """A message part over its limit is refused before it is read."""
    with pytest.raises(RequestTooLarge):
        RestRequest.parse(b"GET\r\n/r1/EE/GOV/1/sub/p\r\n" + b"x-a:" + b"a" * 300_000 + b"\r\n")


header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=10).filter(
    lambda n: not n.lower().startswith("x-road") and n.lower() not in {"connection", "keep-alive", "te", "trailer",
                                                                       "upgrade", "host", "server", "expect"}
)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)


@PROPERTY
@given(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]),
    st.lists(st.text(alphabet="abcdefXYZ012-._~", min_size=1, max_size=6).filter(lambda s: s not in (".", "..")), max_size=4),
    st.one_of(st.none(), st.text(alphabet="abc=&%20", max_size=10)),
    st.lists(st.tuples(header_names, header_values), max_size=5),
)
def test_request_message_part_round_trips(
    method: str, segments: list[str], query: str | None, headers: list[tuple[str, str]]
) -> None:
    """Any well-formed call serialises to a message part that parses back to the same request."""
    target = "/r1/EE/GOV/1/sub/svc" + "".join("/" + s for s in segments) + ("" if query is None else "?" + query)
    request = _request(target, [CLIENT, *[(n, v.strip()) for n, v in headers]], method=method)
    assert RestRequest.parse(request.to_bytes()) == request


def test_provider_target_joins_base_url_path_and_query() -> None:
    """Base URL + service path with one / between them, then the query unchanged (X-Road concatPath)."""
    request = _request("/r1/EE/GOV/1/sub/p/v1/x?a=%20b")
    assert request.provider_target("http://h/api") == "http://h/api/v1/x?a=%20b"
    assert request.provider_target("http://h/api/") == "http://h/api/v1/x?a=%20b"
    assert _request("/r1/EE/GOV/1/sub/p").provider_target("http://h/api/") == "http://h/api/"


# --- the request hash and the response -----------------------------------------------------------------------


@PROPERTY
@given(st.binary(min_size=1, max_size=200), st.binary(max_size=200))
def test_request_hash_is_x_roads_formula(message: bytes, body: bytes) -> None:
    """H(H(message) || H(body)) with a body, H(message) without one (pr-rest §4.3)."""
    sha = hashlib.sha512
    expected = sha(sha(message).digest() + sha(body).digest()).digest() if body else sha(message).digest()
    assert request_hash(message, body) == expected
    assert request_hash(message, None) == sha(message).digest()


def test_response_overwrites_x_road_headers_the_provider_set() -> None:
    """The provider's x-road-* identity headers, X-Road-Error and hop-by-hop headers go; ours come last in order."""
    request = _request("/r1/EE/GOV/1/sub/pets", [CLIENT, ("X-Road-Id", "q-7")])
    provider_headers = [
        ("Content-Type", "application/json"),
        ("X-Road-Service", "forged"),
        ("X-Road-Client", "forged"),
        ("X-Road-Error", "forged"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
        ("Date", "Thu, 21 Mar 2019 12:36:39 GMT"),
    ]
    response = RestResponse.answering(request, 200, "OK", provider_headers, b"\x01" * 64, "rid-1")
    assert response.headers == (
        ("Content-Type", "application/json"),
        ("Date", "Thu, 21 Mar 2019 12:36:39 GMT"),
        ("x-road-id", "q-7"),
        ("x-road-client", "INSTANCE/CLASS1/MEMBER1/SUBSYSTEM1"),
        ("x-road-service", "EE/GOV/1/sub/pets"),
        ("x-road-request-id", "rid-1"),
        ("x-road-request-hash", base64.b64encode(b"\x01" * 64).decode()),
    )
    assert RestResponse.parse(response.to_bytes()) == response
    assert response.to_bytes().startswith(b"200\r\nOK\r\nContent-Type:application/json\r\n")


@pytest.mark.parametrize(
    "message",
    [
        b"200\r\nOK\r\nx-road-id:1\r\n",  # no request hash
        b"200\r\nOK\r\nx-road-request-hash:AAAA\r\n",  # no id
        b"2000\r\nOK\r\nx-road-id:1\r\nx-road-request-hash:AAAA\r\n",
        b"200\r\nOK\r\nx-road-id:1\r\nx-road-request-hash:not base64!\r\n",
        b"200\r\nOK\r\nx-road-id:1\r\nx-road-id:2\r\nx-road-request-hash:AAAA\r\n",
    ],
)
def test_malformed_response_message_parts_are_refused(message: bytes) -> None:
    """A response message part needs one x-road-id and a base64 x-road-request-hash (X-Road RestResponse.of)."""
    with pytest.raises(BadRequest):
        RestResponse.parse(message)


# --- errors --------------------------------------------------------------------------------------------------


def test_error_json_is_x_roads_shape() -> None:
    """{"type", "message", "detail"} with X-Road-Error; 500 for server.*, 400 otherwise (protocol-examples §3.4)."""
    answer = rest_error("server.serverproxy.database_error", "Error accessing database (serverconf)", "d-1")
    assert answer.status == 500
    assert dict(answer.headers) == {
        "Content-Type": "application/json;charset=utf-8",
        "X-Road-Error": "server.serverproxy.database_error",
    }
    assert json.loads(answer.body) == {
        "type": "server.serverproxy.database_error",
        "message": "Error accessing database (serverconf)",
        "detail": "d-1",
    }
    assert rest_error("client.bad_request", "m", "d").status == 400


def test_error_is_xml_when_accept_asks_for_xml() -> None:
    """Accept text/xml, application/xml or text/* gives <error><type/><message/><detail/></error>."""
    error = BadRequest("Bad")
    answer = rest_error_of(error, accept="application/xml;q=0.9, text/html")
    root = etree.fromstring(answer.body)
    assert [child.tag for child in root] == ["type", "message", "detail"] and root.tag == "error"
    assert root.findtext("type") == "client.bad_request" and root.findtext("detail") == error.detail_id
    assert error_media_type("text/*") == "text/xml" and error_media_type(None) == "application/json"
    assert rest_error_of(RequestTooLarge("big"), own_status=True).status == 413


def test_filtering_refuses_header_values_with_control_characters() -> None:
    """A header value with a control character is refused, not forwarded."""
    with pytest.raises(BadRequest):
        filter_end_to_end([("X-A", "a\x00b")])


@given(st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=40))
def test_a_header_value_is_refused_exactly_for_control_characters_other_than_tab(value: str) -> None:
    """C0 controls except horizontal tab, and DEL, are refused; every other character passes (RFC 9110 §5.5)."""
    controlled = any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value)
    try:
        filter_end_to_end([("X-A", value)])
    except BadRequest:
        assert controlled
    else:
        assert not controlled


@PROPERTY
@given(st.binary(max_size=300), st.booleans())
def test_parsers_of_message_parts_fail_only_with_bus_errors(data: bytes, as_response: bool) -> None:
    """Arbitrary bytes as a request or response message part give a BusError or a value, nothing else."""
    prefix = b"200\r\nOK\r\n" if as_response else b"GET\r\n/r1/EE/GOV/1/sub/p\r\n"
    for candidate in (data, prefix + data):
        try:
            RestResponse.parse(candidate) if as_response else RestRequest.parse(candidate)
        except BusError:
            pass
