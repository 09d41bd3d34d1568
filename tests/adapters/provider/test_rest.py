"""The REST provider kit: routes, per-segment path decoding, who asked, errors, and the OpenAPI description."""

from __future__ import annotations

import json
from typing import Any, TypedDict

import pytest
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.trial import unittest
from twisted.web import resource

from adapters.consumer.rest import RestConsumer
from adapters.provider.rest import RestError, RestProvider, RestReply, RestRequest
from adapters.provider.shapes import ShapeError
from security_server.core.identifiers import ClientId
from tests.adapters.sites import connections_closed, listen


class Item(TypedDict):
    """One item."""

    name: str
    size: int


def make_provider() -> RestProvider:
    """Items by name, a POST that echoes JSON, a failing route and one that answers its own status."""
    provider = RestProvider("Items", version="2.0.0", description="Test items")

    @provider.route("GET", "/items/{name}", summary="One item", returns=Item)
    def get_item(request: RestRequest, name: str) -> Any:
        if name == "missing":
            raise RestError(404, "no such item", code="not_found")
        return {"name": name, "size": len(name), "who": str(request.caller.client), "user": request.caller.user_id,
                "id": request.caller.message_id, "q": request.param("q")}

    @provider.route("POST", "/items", body=Item, returns=Item)
    def post_item(request: RestRequest) -> RestReply:
        return RestReply(request.json(), status=201, headers={"Location": "/items/x"})

    @provider.route("GET", "/boom")
    def boom(request: RestRequest) -> Any:
        raise RuntimeError("secret detail")

    return provider


def call(provider: RestProvider, method: str, segments: list[str], *, headers: dict[str, str] | None = None,
         query: dict[str, list[str]] | None = None, body: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """Answer one request and parse the JSON body."""
    status, answer_headers, data = provider.handle(method, segments, query or {}, headers or {}, body)
    return status, answer_headers, json.loads(data)


def test_a_route_gets_its_path_parameters_and_the_caller() -> None:
    """X-Road-* headers become the Caller; path parameters arrive decoded, per segment."""
    status, _, body = call(
        make_provider(), "GET", ["items", "a/b c"],
        headers={"X-Road-Client": "EE/GOV/70000001/consumer", "X-Road-UserId": "EE1", "X-Road-Id": "m-1",
                 "X-Road-Service": "EE/GOV/70000002/provider/items", "X-Road-Request-Id": "r-1"},
        query={"q": ["x"]},
    )
    assert status == 200
    assert body == {"name": "a/b c", "size": 5, "who": "SUBSYSTEM:EE/GOV/70000001/consumer", "user": "EE1",
                    "id": "m-1", "q": "x"}


def test_a_caller_header_that_does_not_parse_is_left_out() -> None:
    """A malformed X-Road-Client gives no client rather than a guessed one."""
    status, _, body = call(make_provider(), "GET", ["items", "a"], headers={"X-Road-Client": "EE/GOV/../x"})
    assert status == 200 and body["who"] == "None"


@pytest.mark.parametrize(
    ("method", "segments", "status", "code"),
    [
        ("GET", ["items", "missing"], 404, "not_found"),
        ("GET", ["nothing"], 404, "not_found"),
        ("DELETE", ["items", "a"], 405, "method_not_allowed"),
        ("GET", ["items", ".."], 400, "bad_path"),
        ("GET", ["..", "items", "a"], 400, "bad_path"),
        ("GET", ["boom"], 500, "internal_error"),
        ("POST", ["items"], 400, "bad_json"),
    ],
)
def test_errors_are_json_with_a_status(method: str, segments: list[str], status: int, code: str) -> None:
    """Unknown paths, wrong methods, dot segments, bad JSON and failing callables are answered as JSON errors."""
    got, headers, body = call(make_provider(), method, segments, body=b"not json")
    assert (got, body["error"]) == (status, code)
    assert "X-Road-Error" not in headers  # only the bus sets it
    assert "secret" not in body["message"]


def test_a_reply_sets_status_and_headers() -> None:
    """RestReply's status and headers are answered; the body is JSON."""
    status, headers, body = call(make_provider(), "POST", ["items"], body=b'{"name": "n", "size": 1}')
    assert status == 201 and headers["Location"] == "/items/x" and body == {"name": "n", "size": 1}


def test_the_openapi_description() -> None:
    """OpenAPI 3.0.3 with the routes, their parameters, schemas and the server URL; also served at openapi.json."""
    provider = make_provider()
    document = provider.openapi("http://127.0.0.1:1/api")
    assert document["openapi"] == "3.0.3" and document["info"] == {"title": "Items", "version": "2.0.0",
                                                                  "description": "Test items"}
    assert document["servers"] == [{"url": "http://127.0.0.1:1/api"}]
    get = document["paths"]["/items/{name}"]["get"]
    assert get["operationId"] == "get_item" and get["parameters"][0]["name"] == "name"
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["size"]["type"] == "integer"
    assert document["paths"]["/items"]["post"]["requestBody"]["required"] is True
    status, _, served = provider.handle("GET", ["openapi.json"], {}, {}, b"", server_url="http://x/api")
    assert status == 200 and json.loads(served)["servers"] == [{"url": "http://x/api"}]


def test_routes_are_checked_when_declared() -> None:
    """A pattern without a leading slash, a dot segment, a missing parameter or an unknown method is refused."""
    provider = RestProvider("x")
    with pytest.raises(ValueError):
        provider.add(lambda request: None, "GET", "items")
    with pytest.raises(ValueError):
        provider.add(lambda request: None, "GET", "/a/../b")
    with pytest.raises(ShapeError):
        provider.add(lambda request: None, "GET", "/items/{name}")
    with pytest.raises(ValueError):
        provider.add(lambda request: None, "TRACE", "/x")
    with pytest.raises(ShapeError):
        provider.add(lambda request: None, "GET", "/y", returns=dict[str, str])


class RestProviderOverLoopbackTest(unittest.TestCase):
    """The REST consumer adapter straight against the provider kit (no bus): paths, headers, statuses."""

    timeout = 60

    def setUp(self) -> None:
        root = resource.Resource()  # type: ignore[no-untyped-call]
        root.putChild(b"api", make_provider().resource())  # type: ignore[arg-type]
        self.port = listen(root)

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        yield connections_closed()
        yield self.port.stopListening()

    @defer.inlineCallbacks
    def test_the_rest_consumer_reaches_the_provider_kit(self) -> Any:
        """Encoded segments arrive decoded; X-Road headers arrive as the Caller; the provider's 404 is returned."""
        base = f"http://127.0.0.1:{self.port.getHost().port}"

        def consumer_system() -> dict[str, Any]:
            consumer = RestConsumer(base, client=ClientId("EE", "GOV", "70000001", "consumer"), user_id="EE7")
            try:
                # straight at the provider: the URL the bus would build is replaced by the provider's own
                got = consumer._send("GET", f"{base}/api/items/a%2Fb", message_id="m-9")
                missing = consumer._send("GET", f"{base}/api/items/missing")
                openapi = consumer._send("GET", f"{base}/api/openapi.json")
                return {"got": got, "missing": missing, "openapi": openapi}
            finally:
                consumer.close()

        out = yield deferToThread(consumer_system)
        got = out["got"].json()
        assert got["name"] == "a/b" and got["who"] == "SUBSYSTEM:EE/GOV/70000001/consumer"
        assert got["user"] == "EE7" and got["id"] == "m-9" and out["got"].message_id == "m-9"
        assert out["missing"].status == 404 and not out["missing"].ok
        assert out["openapi"].json()["servers"][0]["url"].endswith("/api")
