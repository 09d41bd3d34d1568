"""``GET /openapi.yaml``: X-Road's file with exactly the operations this server answers."""

from __future__ import annotations

import yaml  # type: ignore[import-untyped]  # no stubs installed

from security_server.management.operations import security_server_operations
from security_server.management.operations.common import PREFIX
from security_server.management.roles import Role
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import xroad_spec

METHODS = {"get", "put", "post", "delete", "patch"}


def test_the_document_lists_exactly_the_served_operations(api: Api) -> None:
    """Every (method, path) of the answer is one the router serves and every served X-Road operation is in it,
    with X-Road's own definition of it; the rest of the file (info, components) is X-Road's."""
    answer = api.request("GET", "/api/v1/openapi.yaml", key=api.api_key(Role.SECURITYSERVER_OBSERVER))
    assert answer.status == 200 and answer.body.startswith(b"openapi: 3.0.0")
    document = yaml.safe_load(answer.body)
    listed = {(m, p) for p, item in document["paths"].items() for m in item if m in METHODS}
    xroad = xroad_spec()
    known = {(m, p) for p, item in xroad["paths"].items() for m in item if m in METHODS}
    served = {(op.method.lower(), op.path[len(PREFIX):]) for op in security_server_operations()}
    assert listed == served & known
    assert ("get", "/openapi.yaml") in listed and ("put", "/tokens/{id}/login") in listed
    for method, path in listed:
        assert document["paths"][path][method]["operationId"] == xroad["paths"][path][method]["operationId"]
    assert document["info"]["title"] == xroad["info"]["title"]
    assert set(document["components"]["schemas"]) <= set(xroad["components"]["schemas"])


def test_the_document_needs_credentials(api: Api) -> None:
    """Without credentials, 401."""
    assert api.request("GET", "/api/v1/openapi.yaml", check=False).status == 401
