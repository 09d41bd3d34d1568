"""The registry's console in a real browser: headless Chromium logs in to the registry's management API, a
registration officer approves a waiting request, and an observer sees no button to do so.

The server is the registry's management API on a loopback HTTPS port in its own process (console_server.py). A
screenshot of each page is written under the test's temporary folder (``screenshots/``), or
``$FEDBUS_CONSOLE_SCREENSHOTS`` if set. Without Chromium the tests fail under CI and are skipped elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.central_registry.console.data import PASSWORD, build_registry
from tests.security_server.console.browser import ConsoleServer, chromium_paths, run_server_process, start_chromium

WAIT_SECONDS = 60


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
    session = start_chromium(downloads)
    try:
        yield session
    finally:
        session.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """The screenshot folder."""
    folder = Path(os.environ.get("FEDBUS_CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _heading(browser: Any, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, WAIT_SECONDS).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))


def _log_in(browser: Any, server: ConsoleServer, username: str) -> None:
    """Log in with the keyboard only: Tab past the skip link to the user name, Tab to the password, Enter."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/console/")
    _heading(browser, "Log in")
    ActionChains(browser).send_keys(Keys.TAB, Keys.TAB, username, Keys.TAB, PASSWORD, Keys.ENTER).perform()


def _log_out(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, "form.account button").click()
    _heading(browser, "Log in")


def test_a_registration_officer_approves_a_waiting_request(browser: Any, server: ConsoleServer, shots: Path) -> None:
    """The observer sees the waiting requests without buttons; the registration officer approves the client
    registration, which leaves the list; every other page opens."""
    from selenium.webdriver.common.by import By

    _log_in(browser, server, "observer")
    _heading(browser, "Members and subsystems")
    browser.save_screenshot(str(shots / "registry-members.png"))
    browser.find_element(By.LINK_TEXT, "Requests").click()
    _heading(browser, "Management requests")
    assert "CLIENT_REGISTRATION_REQUEST" in browser.find_element(By.TAG_NAME, "table").text
    assert not browser.find_elements(By.CSS_SELECTOR, "main form button")
    _log_out(browser)

    _log_in(browser, server, "registrar")
    _heading(browser, "Members and subsystems")
    browser.find_element(By.LINK_TEXT, "Requests").click()
    _heading(browser, "Management requests")
    browser.save_screenshot(str(shots / "registry-requests.png"))
    browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Approve request 2"]').click()
    _heading(browser, "Management requests")
    table = browser.find_element(By.TAG_NAME, "table").text
    assert "CLIENT_REGISTRATION_REQUEST" not in table and "AUTH_CERT_REGISTRATION_REQUEST" in table
    browser.save_screenshot(str(shots / "registry-approved.png"))
    for link, heading, name in (("Security servers", "Security servers", "servers"),
                                ("Trust services", "Trust services", "trust"),
                                ("Global configuration", "Global configuration", "configuration")):
        browser.find_element(By.LINK_TEXT, link).click()
        _heading(browser, heading)
        browser.save_screenshot(str(shots / f"registry-{name}.png"))
    _log_out(browser)
