"""The console in a real browser: headless Chromium logs in, reads the Overview and its traffic chart, finds an
exchange in the Audit pages, downloads and verifies its container, and is refused what its role may not open.

The server is a real management API on a loopback HTTPS port in its own process (console_server.py) over a
directory with real message-log records (signed, batch-timestamped) and operational records. A screenshot of each
page is written under the test's temporary folder (``screenshots/``), or ``$FEDBUS_CONSOLE_SCREENSHOTS`` if set.
"""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path
from typing import Any, Iterator

import pytest

from security_server.messagelog.asic_export import record_container
from security_server.messagelog.store import MessageLogStore
from tests.federation.evidence import federation
from tests.security_server.console.browser import (
    WAIT_SECONDS,
    ConsoleServer,
    chromium_paths,
    chromium_session,
    heading,
    log_in,
    log_out,
    run_console_server,
    screenshot_folder,
    wait,
)
from tests.security_server.console.data import EXCHANGE_ID, PASSWORD, Built, host_client, tampered_container


@pytest.fixture
def server(built: Built, tmp_path: Path) -> Iterator[ConsoleServer]:
    """The console's process, verifying with the federation's verification configuration."""
    chromium_paths()  # fail (CI) or skip before starting anything
    conf = federation().write_verificationconf(tmp_path / "verificationconf")
    yield from run_console_server(built.directory, conf, tmp_path)


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    """Where the browser saves downloads."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(server: ConsoleServer, downloads: Path) -> Iterator[Any]:
    """A headless Chromium session."""
    yield from chromium_session(downloads)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """The screenshot folder."""
    return screenshot_folder(tmp_path)


def _post_without_token(server: ConsoleServer, browser: Any, path: str) -> int:
    """POST a form with the browser's session cookie but no XSRF token (what another site could make it send)."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=WAIT_SECONDS)
    try:
        connection.request("POST", path, body=b"", headers={
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        return connection.getresponse().status
    finally:
        connection.close()


def _checks(browser: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    return {row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text for row in rows}


def test_an_observer_sees_the_overview_and_its_chart_but_not_the_audit(
    browser: Any, server: ConsoleServer, built: Built, shots: Path
) -> None:
    """Health verdicts and a chart drawn from the opmon records; Audit is a 403 page; logout ends the session."""
    from selenium.webdriver.common.by import By

    log_in(browser, server, "observer", PASSWORD)
    heading(browser, "Overview")
    browser.save_screenshot(str(shots / "overview.png"))
    assert browser.find_element(By.ID, "health-verdict").text.startswith("Verdict: healthy")
    chart = browser.find_element(By.ID, "traffic-chart")
    assert chart.get_attribute("data-succeeded") == str(built.opmon_succeeded)
    assert chart.get_attribute("data-failed") == str(built.opmon_failed)
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar-ok")
    assert len(bars) == 10 and all(float(bar.get_attribute("height") or 0) > 0 for bar in bars)
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.bar-failed")) == built.opmon_failed
    browser.find_element(By.LINK_TEXT, "Last week").click()
    heading(browser, "Overview")
    assert browser.find_element(By.ID, "traffic-chart").get_attribute("data-succeeded") == str(built.opmon_succeeded)
    browser.save_screenshot(str(shots / "overview-week.png"))
    assert not browser.find_elements(By.LINK_TEXT, "Audit")
    browser.get(server.url + "/console/audit")
    heading(browser, "Forbidden")
    browser.save_screenshot(str(shots / "forbidden.png"))
    assert _post_without_token(server, browser, "/console/logout") == 403
    log_out(browser)
    browser.save_screenshot(str(shots / "login.png"))
    browser.get(server.url + "/console/overview")
    heading(browser, "Log in")


def test_an_auditor_finds_downloads_and_verifies_an_exchange(
    browser: Any, server: ConsoleServer, built: Built, downloads: Path, shots: Path, tmp_path: Path
) -> None:
    """Search by message id, open the record, download its container (the export's bytes), verify it on the server
    (every check passed), then upload a tampered copy and see the failed check."""
    from selenium.webdriver.common.by import By

    log_in(browser, server, "auditor", PASSWORD)
    heading(browser, "Audit")
    browser.find_element(By.ID, "query_id").send_keys(EXCHANGE_ID)
    browser.find_element(By.CSS_SELECTOR, "form.search button[type=submit]").click()
    heading(browser, "Audit")
    browser.save_screenshot(str(shots / "audit-search.png"))
    links = browser.find_elements(By.CSS_SELECTOR, "table tbody a")
    assert [link.text for link in links] == ["0:1", "0:2"]
    links[0].click()
    heading(browser, "Record 0:1")
    browser.save_screenshot(str(shots / "audit-record.png"))
    assert EXCHANGE_ID in browser.find_element(By.ID, "message-body").text

    browser.find_element(By.PARTIAL_LINK_TEXT, "Download the ASiC-E container").click()
    saved = downloads / f"{EXCHANGE_ID}-request-1.asice"
    wait(browser, lambda _: saved.exists() and saved.stat().st_size > 0)
    with MessageLogStore(built.directory / "messagelog.db") as store:
        record = store.get(1)
        assert record is not None
        assert saved.read_bytes() == record_container(record, store.timestamp_of(1))

    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    heading(browser, "Verification")
    browser.save_screenshot(str(shots / "audit-verified.png"))
    checks = _checks(browser)
    assert checks and set(checks.values()) == {"passed"}, checks
    assert browser.find_element(By.ID, "verdict").text == "VERIFIED"

    tampered = tmp_path / "tampered.asice"
    tampered.write_bytes(tampered_container(saved.read_bytes()))
    browser.find_element(By.LINK_TEXT, "Audit").click()
    heading(browser, "Audit")
    browser.find_element(By.ID, "container").send_keys(str(tampered))
    browser.find_element(By.CSS_SELECTOR, "form[enctype] button[type=submit]").click()
    heading(browser, "Verification")
    browser.save_screenshot(str(shots / "audit-tampered.png"))
    assert _checks(browser).get("signature") == "FAILED"
    assert browser.find_element(By.ID, "verdict").text.startswith("NOT VERIFIED")
    log_out(browser)


def test_a_service_administrator_publishes_a_rest_service_and_grants_a_right(
    browser: Any, server: ConsoleServer, built: Built, shots: Path
) -> None:
    """Configuration: open the hosted client, add a REST description by URL (a bad URL first: the API's error
    under the URL field), open its service, grant a subsystem the right and see it listed."""
    from selenium.webdriver.common.by import By

    client = host_client(built.directory)
    log_in(browser, server, "services", PASSWORD)
    heading(browser, "Overview")
    browser.find_element(By.LINK_TEXT, "Configuration").click()
    heading(browser, "Configuration")
    browser.save_screenshot(str(shots / "configuration-clients.png"))
    browser.find_element(By.LINK_TEXT, client).click()
    heading(browser, f"Client {client}")
    browser.find_element(By.ID, "add-description-url").send_keys("ftp://persons.example/api")
    browser.find_element(By.ID, "add-description-rest_service_code").send_keys("getPerson")
    browser.find_element(By.CSS_SELECTOR, "form#add-description button[type=submit]").click()
    heading(browser, f"Client {client}")
    assert "invalid_url" in browser.find_element(By.ID, "add-description-url-error").text
    browser.save_screenshot(str(shots / "configuration-url-refused.png"))
    url = browser.find_element(By.ID, "add-description-url")
    url.clear()
    url.send_keys("http://127.0.0.1:8080/persons")
    browser.find_element(By.CSS_SELECTOR, "form#add-description button[type=submit]").click()
    heading(browser, f"Client {client}")
    assert "http://127.0.0.1:8080/persons" in browser.find_element(By.TAG_NAME, "table").text
    browser.save_screenshot(str(shots / "configuration-client.png"))
    browser.find_element(By.LINK_TEXT, "getPerson").click()
    heading(browser, f"Service {client}:getPerson")
    browser.find_element(By.ID, "grant-service_client").send_keys("EE:GOV:70000311:provider")
    browser.find_element(By.CSS_SELECTOR, "form#grant button[type=submit]").click()
    heading(browser, f"Service {client}:getPerson")
    rights = browser.find_element(By.CSS_SELECTOR, "table").text
    assert "EE:GOV:70000311:provider" in rights and "SUBSYSTEM" in rights
    browser.save_screenshot(str(shots / "configuration-service.png"))
    log_out(browser)


def test_a_security_officer_generates_and_downloads_a_certificate_request(
    browser: Any, server: ConsoleServer, downloads: Path, shots: Path
) -> None:
    """Keys and certificates: generate an authentication key and its request, see it listed, download the PEM."""
    from selenium.webdriver.common.by import By

    log_in(browser, server, "officer", PASSWORD)
    heading(browser, "Overview")
    browser.find_element(By.LINK_TEXT, "Keys and certificates").click()
    heading(browser, "Keys and certificates")
    browser.find_element(By.ID, "csr-O").send_keys("Test department")
    browser.find_element(By.CSS_SELECTOR, "form#csr button[type=submit]").click()
    heading(browser, "Keys and certificates")
    browser.save_screenshot(str(shots / "keys.png"))
    browser.find_element(By.LINK_TEXT, "PEM").click()
    wait(browser, lambda _: [p for p in downloads.glob("*.pem") if p.stat().st_size > 0])
    saved = next(downloads.glob("*.pem"))
    assert saved.read_bytes().startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    log_out(browser)
