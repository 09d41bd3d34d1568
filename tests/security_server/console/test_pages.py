"""The console's pages over HTTP without a browser: login, roles checked on the server, XSRF, escaping, the
Overview's figures, and the Audit pages' search, detail, container and verification."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from twisted.internet.task import Clock

from security_server.admin.server_dir import ServerDirectory
from security_server.edge.health_checker import HealthChecker
from security_server.healthcheck import checks
from security_server.management.config import ManagementConfig
from security_server.management.diagnostics import (
    Diagnostic,
    DiagnosticStatus,
    OcspDiagnostic,
    TsaDiagnostic,
)
from security_server.management.sessions import DEFAULT_IDLE_SECONDS
from security_server.management.server import make_management_site
from security_server.messagelog.asic_export import record_container
from security_server.messagelog.store import MessageLogStore
from tests.federation.evidence import federation
from tests.management_api import run_now
from tests.security_server.console.data import (
    EXCHANGE_ID,
    PASSWORD,
    SCRIPT,
    USER_ID,
    USER_QUERY_ID,
    Built,
    tampered_container,
)
from tests.security_server.console.harness import Console, xsrf_of


@pytest.fixture
def console(built: Built) -> Console:
    """The console over it, with a health checker of two real checks (one failing)."""
    clock = Clock()
    health = HealthChecker([
        checks.globalconf(lambda: datetime.fromtimestamp(clock.seconds() + 3600, tz=UTC), clock=clock.seconds),
        checks.timestamper(lambda: 600.0, grace_seconds=60),
    ], clock)
    return Console(built.directory, health=health, clock=clock)


class RunningServer:
    """What a running server's diagnostics say: configuration 10 min old, OCSP answer 30 min old, one TSA."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def globalconf(self) -> Diagnostic:
        """Downloaded ten minutes ago."""
        return Diagnostic(DiagnosticStatus.OK, self.now - timedelta(minutes=10), self.now + timedelta(minutes=50))

    def timestamping(self) -> tuple[TsaDiagnostic, ...]:
        """One approved TSA, failing."""
        return (TsaDiagnostic("http://tsa.example/", Diagnostic(DiagnosticStatus.FAIL, self.now, None,
                                                              "timestamping_failed", "refused")),)

    def ocsp(self) -> tuple[OcspDiagnostic, ...]:
        """The federation CA's responder answered half an hour ago."""
        ca = federation().ca.certificate.subject.rfc4514_string()
        return (OcspDiagnostic(ca, "http://ocsp.example/", Diagnostic(DiagnosticStatus.OK,
                                                                      self.now - timedelta(minutes=30))),)


def text(page: bytes) -> str:
    """A page as text."""
    return page.decode("utf-8")


def test_a_page_without_a_session_sends_the_browser_to_the_login_page(console: Console) -> None:
    """Overview and Audit redirect to /console/login; the login page labels both fields."""
    for path in ("/console/overview", "/console/audit", "/console/"):
        answer = console.get(path)
        assert (answer.status, answer.header("location")) == (303, "/console/login")
    page = text(console.get("/console/login").body)
    assert '<label for="username">' in page and '<label for="password">' in page and '<html lang="en">' in page


def test_a_wrong_password_is_refused_on_the_login_page(console: Console) -> None:
    """401 with the reason on the page and no session cookie; the right password lands on the role's page."""
    refused = console.form("/console/login", {"username": "observer", "password": "wrong"})
    assert refused.status == 401 and "Wrong user name or password." in text(refused.body)
    assert "JSESSIONID" not in refused.cookies()
    admitted = console.form("/console/login", {"username": "observer", "password": PASSWORD})
    assert (admitted.status, admitted.header("location")) == (303, "/console/overview")
    assert {"JSESSIONID", "XSRF-TOKEN"} <= set(admitted.cookies())
    auditor = console.form("/console/login", {"username": "auditor", "password": PASSWORD})
    assert auditor.header("location") == "/console/audit"


def test_each_page_checks_the_role_on_the_server(console: Console) -> None:
    """The observer gets 403 on Audit; the auditor 403 on Overview; the administrator both; the nav shows only
    what the role may open."""
    observer, auditor, admin = (console.log_in(n) for n in ("observer", "auditor", "admin"))
    assert console.get("/console/audit", observer).status == 403
    assert console.get("/console/audit/records/0/1", observer).status == 403
    assert console.get("/console/audit/records/0/1/container", observer).status == 403
    assert "Your role may not open this page." in text(console.get("/console/audit", observer).body)
    assert console.get("/console/overview", auditor).status == 403
    assert console.get("/console/overview", admin).status == 200 and console.get("/console/audit", admin).status == 200
    nav = text(console.get("/console/overview", observer).body)
    assert 'href="/console/overview"' in nav and 'href="/console/audit"' not in nav


def test_the_auditor_role_is_allowed_no_api_operation(console: Console) -> None:
    """FEDBUS_AUDITOR reads nothing through the API (only the console's Audit pages)."""
    key = console.api_key("FEDBUS_AUDITOR")
    assert console.request("GET", "/api/v1/clients", key=key, check=False).status == 403


def test_a_post_without_the_xsrf_token_is_refused(console: Console) -> None:
    """Verify and logout need the session's token in the form; a wrong or missing one is 403 and changes nothing."""
    auditor = console.log_in("auditor")
    for fields in ({}, {"_xsrf": "not-the-token"}):
        answer = console.form("/console/audit/records/0/1/verify", fields, auditor)
        assert answer.status == 403 and "XSRF" in text(answer.body)
        assert console.form("/console/logout", fields, auditor).status == 403
    assert console.get("/console/audit", auditor).status == 200  # still signed in


def test_logout_ends_the_session(console: Console) -> None:
    """Logging out clears the cookies; the old session cookie no longer opens a page."""
    observer = console.log_in("observer")
    token = xsrf_of(console.get("/console/overview", observer).body)
    answer = console.form("/console/logout", {"_xsrf": token}, observer)
    assert (answer.status, answer.header("location")) == (303, "/console/login")
    assert console.get("/console/overview", observer).status == 303


def test_an_idle_session_expires(console: Console) -> None:
    """After the API's idle time without a request the session is gone and the page asks for a login again."""
    observer = console.log_in("observer")
    console.clock.advance(DEFAULT_IDLE_SECONDS + 1)
    assert console.get("/console/overview", observer).header("location") == "/console/login"


def test_pages_are_not_cached_framed_or_scripted(console: Console) -> None:
    """Every page is no-store, nosniff, not framable, and its CSP allows no script."""
    answer = console.get("/console/login")
    policy = answer.header("content-security-policy") or ""
    assert answer.header("cache-control") == "no-store" and answer.header("x-frame-options") == "DENY"
    assert "default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'none'" in policy
    assert answer.header("x-content-type-options") == "nosniff"
    css = console.get("/console/static/console.css")
    assert css.status == 200 and (css.header("content-type") or "").startswith("text/css")


def test_overview_shows_health_certificates_backlog_and_traffic(console: Console, built: Built) -> None:
    """The verdict and each check, the tokens' state, the backlog, and a chart of the opmon records."""
    page = text(console.get("/console/overview", console.log_in("observer")).body)
    assert re.search(r'id="health-verdict">Verdict: <span class="status-bad">failing', page)
    assert "timestamping has failed for 600 s" in page and page.count("<td><span class=\"status-ok\">ok<") == 1
    assert "Records waiting for a timestamp</dt><dd>0" in page
    assert f'data-succeeded="{built.opmon_succeeded}" data-failed="{built.opmon_failed}"' in page
    assert page.count('class="bar-ok"') == 10 and page.count('class="bar-failed"') == built.opmon_failed
    assert "SUBSYSTEM:EE/GOV/70000310/consumer" in page and "SERVICE:EE/GOV/70000311/provider/getRandom/v1" in page
    day = text(console.get("/console/overview", console.log_in("observer"), window="day").body)
    assert 'aria-current="true">Last day' in day and f'data-succeeded="{built.opmon_succeeded}"' in day


def test_overview_shows_certificate_expiry_ocsp_and_configuration_age(built: Built) -> None:
    """With the running server's diagnostics: days to expiry, OCSP status and age, configuration age, TSA status."""
    now = datetime.now(UTC)
    console = Console(built.directory, diagnostics=RunningServer(now))
    page = text(console.get("/console/overview", console.log_in("observer")).body)
    days = (built.signing_not_after - now).days
    assert f'<td>MEMBER:EE/GOV/70000310</td>' in page and f'<span class="status-ok">{days}</span>' in page
    assert "<td>OK</td><td>30 min</td>" in page
    assert "<dt>Age</dt><dd>10 min</dd>" in page
    assert "<td>http://tsa.example/</td><td>FAIL</td>" in page and "timestamping_failed" in page


def test_overview_without_a_running_server_says_so(built: Built) -> None:
    """Without a health checker (the API alone) the page says there is no verdict instead of failing."""
    console = Console(built.directory)
    page = text(console.get("/console/overview", console.log_in("admin")).body)
    assert "there is no verdict to show" in page


def test_search_by_message_id_lists_the_exchange(console: Console) -> None:
    """The message id finds the request and the response, each linked to its detail."""
    auditor = console.log_in("auditor")
    page = text(console.get("/console/audit", auditor, query_id=EXCHANGE_ID).body)
    assert "Records (2)" in page
    assert 'href="/console/audit/records/0/1"' in page and 'href="/console/audit/records/0/2"' in page


def test_search_by_client_time_and_result(console: Console, built: Built) -> None:
    """A client prefix, a time range and the failed filter narrow the list as the CLI's do."""
    auditor = console.log_in("auditor")
    prefix = text(console.get("/console/audit", auditor, client="SUBSYSTEM:EE/GOV/70000310/").body)
    assert "Records (4)" in prefix  # the exchange's two, a failure and the user's request; not the script's
    failed = text(console.get("/console/audit", auditor, result="failed").body)
    assert "Records (3)" in failed
    since = built.now.isoformat()
    assert "Records (0)" in text(console.get("/console/audit", auditor, since=since).body)


def test_search_by_user_id_finds_the_users_exchange(console: Console) -> None:
    """The user id the message names finds its record; the list and the detail show it."""
    auditor = console.log_in("auditor")
    page = text(console.get("/console/audit", auditor, user_id=USER_ID).body)
    assert "Records (1)" in page and USER_QUERY_ID in page and f"<td>{USER_ID}</td>" in page
    record = re.search(r'href="(/console/audit/records/0/\d+)"', page)
    assert record is not None
    assert f"<tr><td>userId</td><td>{USER_ID}</td></tr>" in text(console.get(record.group(1), auditor).body)
    assert "Records (0)" in text(console.get("/console/audit", auditor, user_id="EE0").body)


def test_a_bad_field_is_shown_next_to_it(console: Console) -> None:
    """A malformed client or time: 400, the message under the field, the field marked invalid."""
    page = console.get("/console/audit", console.log_in("auditor"), client="nonsense", since="yesterday")
    body = text(page.body)
    assert page.status == 400
    assert 'id="client-error"' in body and 'aria-invalid="true"' in body and 'id="since-error"' in body


def test_input_and_stored_values_are_escaped(console: Console) -> None:
    """A search term and stored client, message id, fault and body holding a script tag are shown as text."""
    auditor = console.log_in("auditor")
    found = text(console.get("/console/audit", auditor, query_id=SCRIPT).body)
    assert "Records (1)" in found and SCRIPT not in found and "&lt;script&gt;" in found
    bad = text(console.get("/console/audit", auditor, client=SCRIPT).body)
    assert SCRIPT not in bad and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in bad
    record = re.search(r'href="(/console/audit/records/0/\d+)"', found)
    assert record is not None
    detail = text(console.get(record.group(1), auditor).body)
    assert SCRIPT not in detail and detail.count("&lt;script&gt;") >= 3
    login = text(console.form("/console/login", {"username": SCRIPT, "password": "x"}).body)
    assert SCRIPT not in login


def test_detail_shows_header_sizes_evidence_and_body(console: Console) -> None:
    """The SOAP header fields, sizes, signature and batch timestamp, and the body for the auditor."""
    page = text(console.get("/console/audit/records/0/1", console.log_in("auditor")).body)
    for expected in ("protocolVersion", EXCHANGE_ID, "SERVICE:EE/GOV/70000311/provider/getRandom/v1", "batch timestamp #1",
                     "Download the ASiC-E container", 'id="message-body"', "signed"):
        assert expected in page, expected


def test_a_failed_record_has_no_container(console: Console) -> None:
    """An unsigned record says so and offers no download; asking for its container is 409."""
    auditor = console.log_in("auditor")
    page = text(console.get("/console/audit/records/0/3", auditor).body)
    assert "not signed (a failed exchange)" in page and "/container" not in page
    assert console.get("/console/audit/records/0/3/container", auditor).status == 409
    assert console.get("/console/audit/records/0/99", auditor).status == 404
    assert console.get("/console/audit/records/x/1", auditor).status == 404


def test_the_container_download_is_the_export(console: Console, built: Built) -> None:
    """The downloaded bytes are record_container of the record, named as X-Road names it."""
    answer = console.get("/console/audit/records/0/1/container", console.log_in("auditor"))
    with MessageLogStore(built.directory / "messagelog.db") as store:
        record = store.get(1)
        assert record is not None
        expected = record_container(record, store.timestamp_of(1))
    assert answer.status == 200 and answer.body == expected
    assert answer.header("content-type") == "application/vnd.etsi.asic-e+zip"
    assert f'filename="{EXCHANGE_ID}-request-1.asice"' in (answer.header("content-disposition") or "")


def _checks(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr><td>([^<]+)</td><td><span class="status-(ok|bad|unknown)">', page)


def test_verifying_a_record_shows_every_check_passed(console: Console) -> None:
    """The server verifies the record's container and lists each check as passed, then VERIFIED."""
    auditor = console.log_in("auditor")
    token = xsrf_of(console.get("/console/audit/records/0/2", auditor).body)
    page = text(console.form("/console/audit/records/0/2/verify", {"_xsrf": token}, auditor).body)
    found = _checks(page)
    assert found and all(status == "ok" for _, status in found), found
    assert {"signature", "timestamp token"} <= {name for name, _ in found}
    assert 'id="verdict" role="status"><span class="status-ok">VERIFIED' in page


def test_an_uploaded_tampered_container_fails_its_check(console: Console) -> None:
    """An uploaded container verifies like the record's; one with a changed message fails the signature check."""
    auditor = console.log_in("auditor")
    token = xsrf_of(console.get("/console/audit", auditor).body)
    container = console.get("/console/audit/records/0/1/container", auditor).body
    good = text(console.upload("/console/audit/verify", {"_xsrf": token}, "container", container, auditor).body)
    assert "VERIFIED" in good and "NOT VERIFIED" not in good
    bad = text(console.upload("/console/audit/verify", {"_xsrf": token}, "container", tampered_container(container), auditor).body)
    assert "NOT VERIFIED" in bad and ("signature", "bad") in _checks(bad)
    refused = console.upload("/console/audit/verify", {}, "container", container, auditor)
    assert refused.status == 403


def test_without_the_servers_configuration_verifying_says_why(built: Built) -> None:
    """By default the server's own verification configuration is used; without one the page says so."""
    clock = Clock()
    clock.advance(datetime.now(UTC).timestamp())
    site: Any = make_management_site(clock, ServerDirectory(built.directory), ManagementConfig(), executor=run_now,
                                     secure_cookies=False)
    console = Console(built.directory)
    console.site, console.router = site, site.resource._router
    auditor = console.log_in("auditor")
    token = xsrf_of(console.get("/console/audit/records/0/1", auditor).body)
    page = text(console.form("/console/audit/records/0/1/verify", {"_xsrf": token}, auditor).body)
    assert "NOT VERIFIED: the server&#x27;s verification configuration is not available" in page


@pytest.mark.parametrize("name", ["query_id", "client", "service", "user_id", "since", "until", "result"])
def test_every_search_field_echoes_its_input_escaped(console: Console, name: str) -> None:
    """A script tag in any search field comes back as text, never as markup."""
    page = text(console.get("/console/audit", console.log_in("auditor"), **{name: SCRIPT}).body)
    assert SCRIPT not in page and "<script" not in page


def test_no_page_carries_the_session_id(console: Console) -> None:
    """The session cookie is HttpOnly and never written into a page (the XSRF token is, by design)."""
    admin = console.log_in("admin")
    for path in ("/console/overview", "/console/audit", "/console/audit/records/0/1"):
        assert admin["JSESSIONID"] not in text(console.get(path, admin).body)
    answer = console.form("/console/login", {"username": "admin", "password": PASSWORD})
    assert any("JSESSIONID=" in c and "HttpOnly" in c for c in answer.headers["set-cookie"])
