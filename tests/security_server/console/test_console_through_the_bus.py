"""Issue 21's browser test through the bus: the console of a running provider security server in a real federation.

The federation of tests/e2e_federation.py (registry with its CA, OCSP responder and TSA; two security servers
from ``make_service`` registered through the real request flow). The provider's server runs with its management
API and console on a loopback HTTPS port (``[management]``, as ``fedbus server run`` starts it), over its own
stores. In headless Chromium, a service administrator adds a REST description by URL pointing at a REST provider
on loopback and grants the consumer the right; the provider's server re-reads its configuration (triggered, not
waited for); the consumer's system calls the service through its client proxy (plain HTTP); an auditor finds the
call by message id, opens it, downloads its container (the export's bytes) and verifies it (every check passed);
an observer sees the call counted in the Overview's traffic chart (the record of the server's own opmon writer).
Selenium is blocking, so each browser phase runs in a thread while the reactor serves the servers. A screenshot
of each page is written to :func:`~tests.security_server.console.browser.screenshot_folder`.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, cast

import pytest
from twisted.internet import defer
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest
from twisted.web import server

from security_server.management.config import ManagementConfig
from security_server.messagelog.asic_export import record_container
from security_server.messagelog.store import MessageLogStore
from security_server.monitoring import OPMON_DATABASE
from tests import e2e_federation as federation
from tests.e2e_federation import CONSUMER, CONSUMER_MEMBER, PROVIDER, PROVIDER_MEMBER, reactor
from tests.security_server.console.browser import (
    WAIT_SECONDS,
    ConsoleServer,
    chromium_paths,
    heading,
    log_in,
    log_out,
    screenshot_folder,
    start_chromium,
    wait,
)
from tests.security_server.console.data import PASSWORD, add_users
from tests.security_server.proxy.rest_provider import Reply, RestProvider, http_call

SERVICE_CODE = "getPerson"
PROVIDER_ID = "EE:GOV:70000311:provider"
CONSUMER_ID = "EE:GOV:70000310:consumer"


def _checks(browser: Any) -> dict[str, str]:
    """The verification page's checks and their results."""
    from selenium.webdriver.common.by import By

    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    return {row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text for row in rows}


def publish_and_grant(browser: Any, console: ConsoleServer, rest_url: str, shots: Path) -> None:
    """As the service administrator: add the REST description by URL to the provider and grant the consumer."""
    from selenium.webdriver.common.by import By

    log_in(browser, console, "services", PASSWORD)
    heading(browser, "Overview")
    browser.find_element(By.LINK_TEXT, "Configuration").click()
    heading(browser, "Configuration")
    browser.save_screenshot(str(shots / "bus-configuration-clients.png"))
    browser.find_element(By.LINK_TEXT, PROVIDER_ID).click()
    heading(browser, f"Client {PROVIDER_ID}")
    browser.find_element(By.ID, "add-description-url").send_keys(rest_url)
    browser.find_element(By.ID, "add-description-rest_service_code").send_keys(SERVICE_CODE)
    browser.find_element(By.CSS_SELECTOR, "form#add-description button[type=submit]").click()
    heading(browser, f"Client {PROVIDER_ID}")
    assert rest_url in browser.find_element(By.TAG_NAME, "table").text
    browser.save_screenshot(str(shots / "bus-configuration-client.png"))
    browser.find_element(By.LINK_TEXT, SERVICE_CODE).click()
    heading(browser, f"Service {PROVIDER_ID}:{SERVICE_CODE}")
    browser.find_element(By.ID, "grant-service_client").send_keys(CONSUMER_ID)
    browser.find_element(By.CSS_SELECTOR, "form#grant button[type=submit]").click()
    heading(browser, f"Service {PROVIDER_ID}:{SERVICE_CODE}")
    assert CONSUMER_ID in browser.find_element(By.CSS_SELECTOR, "table").text
    browser.save_screenshot(str(shots / "bus-configuration-service.png"))
    log_out(browser)


def audit_the_call(
    browser: Any, console: ConsoleServer, message_id: str, downloads: Path, shots: Path
) -> tuple[int, bytes]:
    """As the auditor: find the call by message id, open it, download its container and verify it; the record's
    id and the container's bytes."""
    from selenium.webdriver.common.by import By

    log_in(browser, console, "auditor", PASSWORD)
    heading(browser, "Audit")
    browser.find_element(By.ID, "query_id").send_keys(message_id)
    browser.find_element(By.CSS_SELECTOR, "form.search button[type=submit]").click()
    heading(browser, "Audit")
    browser.save_screenshot(str(shots / "bus-audit-search.png"))
    links = browser.find_elements(By.CSS_SELECTOR, "table tbody a")
    assert len(links) == 2, [link.text for link in links]  # the request and the response the provider logged
    first = links[0].text
    links[0].click()
    heading(browser, f"Record {first}")
    browser.save_screenshot(str(shots / "bus-audit-record.png"))
    assert message_id in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.PARTIAL_LINK_TEXT, "Download the ASiC-E container").click()
    wait(browser, lambda _: [p for p in downloads.glob("*.asice") if p.stat().st_size > 0])
    saved = next(downloads.glob("*.asice"))
    wait(browser, lambda _: not list(downloads.glob("*.crdownload")))
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    heading(browser, "Verification")
    browser.save_screenshot(str(shots / "bus-audit-verified.png"))
    checks = _checks(browser)
    assert checks and set(checks.values()) == {"passed"}, checks
    assert browser.find_element(By.ID, "verdict").text == "VERIFIED"
    log_out(browser)
    shard, record_id = first.split(":")
    assert shard == "0", first
    return int(record_id), saved.read_bytes()


def see_the_chart(browser: Any, console: ConsoleServer, shots: Path) -> tuple[str, str]:
    """As the observer: the Overview's traffic chart (and the service among the busiest); its succeeded and
    failed counts."""
    from selenium.webdriver.common.by import By

    log_in(browser, console, "observer", PASSWORD)
    heading(browser, "Overview")
    browser.save_screenshot(str(shots / "bus-overview.png"))
    chart = browser.find_element(By.ID, "traffic-chart")
    counts = (chart.get_attribute("data-succeeded"), chart.get_attribute("data-failed"))
    assert chart.find_elements(By.CSS_SELECTOR, "rect.bar-ok")
    assert f"SERVICE:EE/GOV/70000311/provider/{SERVICE_CODE}" in browser.find_element(By.TAG_NAME, "main").text
    browser.execute_script("arguments[0].scrollIntoView();", chart)
    browser.save_screenshot(str(shots / "bus-overview-chart.png"))
    log_out(browser)
    return counts


@defer.inlineCallbacks
def until(check: Callable[[], defer.Deferred[bool]], what: str) -> Any:
    """Run ``check`` until it answers True, every tenth of a second, for :data:`WAIT_SECONDS` at most."""
    deadline = reactor.seconds() + WAIT_SECONDS
    while not (yield check()):
        if reactor.seconds() > deadline:
            raise AssertionError(f"{what}: not done within {WAIT_SECONDS} s")
        yield deferLater(reactor, 0.1, lambda: None)


class ConsoleThroughTheBusTest(federation.TwoDepartmentFederation):
    """The provider's console publishes a service; a call through the bus shows in its Audit and Overview."""

    timeout = 600  # Chromium on a shared machine; every wait inside is bounded (browser.WAIT_SECONDS)

    def setUp(self) -> None:
        try:
            chromium_paths()  # fail (CI) or skip before starting anything
        except pytest.skip.Exception as skipped:
            raise SkipTest(str(skipped)) from None
        super().setUp()
        self.rest_provider = RestProvider()
        self.rest_port = reactor.listenTCP(0, server.Site(self.rest_provider), interface="127.0.0.1")  # type: ignore[no-untyped-call]
        self.browser: Any = None

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        if self.browser is not None:
            yield deferToThread(self.browser.quit)
        yield self.rest_port.stopListening()
        yield super().tearDown()

    @defer.inlineCallbacks
    def test_publish_call_audit_and_chart_through_the_console(self) -> Any:
        """Forms publish and grant; the call through the bus is found, downloaded, verified and charted."""
        shots, downloads = screenshot_folder(self.tmp), self.tmp / "downloads"
        downloads.mkdir()
        yield self.registry.publish_now()
        anchor = self.anchor()
        consumer = yield self.add_department(1, CONSUMER_MEMBER, CONSUMER, anchor)
        provider = yield self.add_department(2, PROVIDER_MEMBER, PROVIDER, anchor, ManagementConfig(port=0))
        yield self.catch_up(consumer, provider)
        add_users(provider.root)
        console = ConsoleServer(process=cast(Any, None), url=f"https://127.0.0.1:{provider.service.management.port}")
        self.browser = yield deferToThread(start_chromium, downloads)

        rest_url = f"http://127.0.0.1:{self.rest_port.getHost().port}/persons"
        yield deferToThread(publish_and_grant, self.browser, console, rest_url, shots)
        yield provider.service.reload_serverconf()  # what its serverconf poll does within a few seconds

        reply: Reply = yield deferToThread(
            http_call, consumer.service.client_proxy_port, "GET",
            f"/r1/EE/GOV/70000311/provider/{SERVICE_CODE}/42?fields=name",
            {"X-Road-Client": "EE/GOV/70000310/consumer", "Accept": "application/json"},
        )
        assert reply.status == 200, reply
        message_id = reply.header("x-road-id")
        assert message_id, reply.headers
        method, uri, _, _ = self.rest_provider.calls[-1]
        assert (method, uri) == ("GET", "/persons/42?fields=name")

        def stamped(_: object) -> bool:
            with MessageLogStore(provider.root / "messagelog.db") as store:
                found = list(store.search(query_id=message_id))
                return len(found) == 2 and all(store.timestamp_of(r.id) is not None for r in found)

        def in_opmon(_: object) -> bool:
            with closing(sqlite3.connect(provider.root / OPMON_DATABASE)) as opmon:
                return bool(opmon.execute("SELECT count(*) FROM operational_data WHERE succeeded = 1 AND record LIKE ?",
                                          (f"%{message_id}%",)).fetchone()[0] == 1)

        # what the batch timestamper's interval and the opmon writer's flush interval do, triggered
        yield until(lambda: provider.service.evidence.timestamper.stamp_pending().addCallback(stamped), "timestamps")
        yield until(lambda: defer.maybeDeferred(provider.service.monitoring.writer.flush).addCallback(in_opmon),
                    "the opmon record")
        with closing(sqlite3.connect(provider.root / OPMON_DATABASE)) as opmon:
            totals = opmon.execute("SELECT sum(succeeded = 1), sum(succeeded = 0) FROM operational_data").fetchone()

        record_id, saved = yield deferToThread(audit_the_call, self.browser, console, message_id, downloads, shots)
        with MessageLogStore(provider.root / "messagelog.db") as store:
            record = store.get(record_id)
            assert record is not None and record.query_id == message_id
            assert saved == record_container(record, store.timestamp_of(record_id))

        counts = yield deferToThread(see_the_chart, self.browser, console, shots)
        assert counts == (str(totals[0]), str(totals[1] or 0)), (counts, totals)
