"""The registry's console in a real browser: headless Chromium logs in to the registry's management API, a
registration officer approves a waiting request, and an observer sees no button to do so.

The server is the registry's management API on a loopback HTTPS port in its own process (console_server.py). A
screenshot of each page is written under the test's temporary folder (``screenshots/``), or
``$FEDBUS_CONSOLE_SCREENSHOTS`` if set. Without Chromium the tests fail under CI and are skipped elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.central_registry.console.data import PASSWORD, build_registry
from tests.security_server.console.browser import (
    ConsoleServer,
    chromium_paths,
    chromium_session,
    heading,
    log_in,
    log_out,
    run_server_process,
    screenshot_folder,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ConsoleServer]:
    """The registry console's process over a registry with two waiting requests."""
    chromium_paths()  # fail (CI) or skip before starting anything
    root = build_registry(tmp_path / "registry")
    yield from run_server_process("tests.central_registry.console.console_server", [str(root)], tmp_path)


@pytest.fixture
def browser(server: ConsoleServer, tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium session."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    yield from chromium_session(downloads)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """The screenshot folder."""
    return screenshot_folder(tmp_path)


def test_a_registration_officer_approves_a_waiting_request(browser: Any, server: ConsoleServer, shots: Path) -> None:
    """The observer sees the waiting requests without buttons; the registration officer approves the client
    registration, which leaves the list; every other page opens."""
    from selenium.webdriver.common.by import By

    log_in(browser, server, "observer", PASSWORD)
    heading(browser, "Members and subsystems")
    browser.save_screenshot(str(shots / "registry-members.png"))
    browser.find_element(By.LINK_TEXT, "Requests").click()
    heading(browser, "Management requests")
    assert "CLIENT_REGISTRATION_REQUEST" in browser.find_element(By.TAG_NAME, "table").text
    assert not browser.find_elements(By.CSS_SELECTOR, "main form button")
    log_out(browser)

    log_in(browser, server, "registrar", PASSWORD)
    heading(browser, "Members and subsystems")
    browser.find_element(By.LINK_TEXT, "Requests").click()
    heading(browser, "Management requests")
    browser.save_screenshot(str(shots / "registry-requests.png"))
    browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Approve request 2"]').click()
    heading(browser, "Management requests")
    table = browser.find_element(By.TAG_NAME, "table").text
    assert "CLIENT_REGISTRATION_REQUEST" not in table and "AUTH_CERT_REGISTRATION_REQUEST" in table
    browser.save_screenshot(str(shots / "registry-approved.png"))
    for link, title, name in (("Security servers", "Security servers", "servers"),
                                ("Trust services", "Trust services", "trust"),
                                ("Global configuration", "Global configuration", "configuration")):
        browser.find_element(By.LINK_TEXT, link).click()
        heading(browser, title)
        browser.save_screenshot(str(shots / f"registry-{name}.png"))
    log_out(browser)
