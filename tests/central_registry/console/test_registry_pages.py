"""The registry's console over HTTP: its own login and sessions on the registry API, members, servers, waiting
requests approved and declined through the API's operations, trust services and configuration, roles, XSRF and
escaping."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from central_registry.management.roles import Role
from tests.central_registry.console.data import SCRIPT, build_registry
from tests.central_registry.console.harness import RegistryConsoleSite
from tests.security_server.console.harness import xsrf_of

PAGES = ("/console/members", "/console/servers", "/console/requests", "/console/trust", "/console/configuration")


@pytest.fixture
def console(tmp_path: Path) -> RegistryConsoleSite:
    """The console over a registry with a member, its server, a CA, a TSA and two waiting requests."""
    return RegistryConsoleSite(build_registry(tmp_path / "registry"))


def text(page: bytes) -> str:
    """A page as text."""
    return page.decode("utf-8")


def statuses(console: RegistryConsoleSite) -> list[str]:
    """The statuses of the registry's requests by number, as the API lists them."""
    key = console.api_key(Role.OBSERVER)
    found = console.request("GET", "/api/v1/management-requests", key=key).json()["items"]
    return [r["status"] for r in sorted(found, key=lambda r: r["id"])]


def test_login_lands_on_members_and_every_page_shows_its_data(console: RegistryConsoleSite) -> None:
    """The registry's own session: members and subsystems, the server and its address, the CA and TSA, the
    configuration page (no running publisher: says so); every value escaped."""
    login = console.form("/console/login", {"username": "observer", "password": "Registry-Secret-1"})
    assert (login.status, login.header("location")) == (303, "/console/members")
    observer = login.cookies()
    members = text(console.get("/console/members", observer).body)
    assert "EE:GOV:70000310" in members and "EE:GOV:70000310:reg" in members
    assert SCRIPT not in members and "&lt;script&gt;" in members
    assert "ss1.example.org" in text(console.get("/console/servers", observer).body)
    trust = text(console.get("/console/trust", observer).body)
    assert "Test CA" in trust and "http://tsa.example/" in trust
    assert "no anchor" in text(console.get("/console/configuration", observer).body)
    for path in PAGES:
        assert console.get(path, observer).status == 200
        assert console.get(path).header("location") == "/console/login"


def test_the_registration_officer_approves_and_declines(console: RegistryConsoleSite) -> None:
    """Both waiting requests listed with buttons; approving one and declining the other through the API's
    operations; the list is then empty and the store says APPROVED and REJECTED."""
    registrar = console.log_in("registrar")
    page = text(console.get("/console/requests", registrar).body)
    assert "AUTH_CERT_REGISTRATION_REQUEST" in page and "CLIENT_REGISTRATION_REQUEST" in page
    token = xsrf_of(page.encode())
    approved = console.form("/console/requests/2/approve", {"_xsrf": token}, registrar)
    assert (approved.status, approved.header("location")) == (303, "/console/requests")
    assert console.form("/console/requests/1/decline", {"_xsrf": token}, registrar).status == 303
    assert "no request is waiting" in text(console.get("/console/requests", registrar).body)
    assert statuses(console) == ["DECLINED", "APPROVED"]


def test_a_refused_decision_is_shown_on_the_page(console: RegistryConsoleSite) -> None:
    """Approving a request twice: the API's management_request_not_waiting (409) at the top of the list."""
    registrar = console.log_in("registrar")
    token = xsrf_of(console.get("/console/requests", registrar).body)
    console.form("/console/requests/2/approve", {"_xsrf": token}, registrar)
    again = console.form("/console/requests/2/approve", {"_xsrf": token}, registrar)
    assert again.status == 409 and "management_request_not_waiting" in text(again.body)
    assert 'id="requests-error"' in text(again.body)


def test_only_the_registration_officer_decides(console: RegistryConsoleSite) -> None:
    """The observer, the security officer and the system administrator see no buttons and get 403 when they post;
    the requests stay waiting."""
    for name in ("observer", "security", "admin"):
        cookies = console.log_in(name)
        page = text(console.get("/console/requests", cookies).body)
        assert "Approve" not in page and "Only a registration officer" in page
        answer = console.form("/console/requests/1/approve", {"_xsrf": xsrf_of(page.encode())}, cookies)
        assert answer.status == 403
    assert statuses(console) == ["WAITING", "WAITING"]


def test_a_decision_needs_the_xsrf_token(console: RegistryConsoleSite) -> None:
    """Without the session's token approving is 403 and the request stays waiting."""
    registrar = console.log_in("registrar")
    for fields in ({}, {"_xsrf": "not-the-token"}):
        answer = console.form("/console/requests/2/approve", fields, registrar)
        assert answer.status == 403 and "XSRF" in text(answer.body)
    assert statuses(console) == ["WAITING", "WAITING"]


def test_the_management_service_role_opens_no_page(console: RegistryConsoleSite) -> None:
    """XROAD_MANAGEMENT_SERVICE is the security servers' requests, not a person: 403 on every page."""
    with console.credentials() as store:
        store.add_user("service", "Registry-Secret-1", frozenset({Role.MANAGEMENT_SERVICE}), now=datetime.now(UTC))
    cookies = console.log_in("service")
    for path in PAGES:
        assert console.get(path, cookies).status == 403
