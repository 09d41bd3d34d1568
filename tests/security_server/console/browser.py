"""Headless Chromium driven through WebDriver, for the console's browser tests, and the console's server process.

Chromium and its driver come from Debian's ``chromium`` and ``chromium-driver``, which ``make test`` installs.
Under CI (``CI`` set) their absence fails the test; on a developer's machine without them it is skipped with the
packages to install (as tests/promtool.py does for promtool).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[3]
START_SECONDS = 60.0
WAIT_SECONDS = 60
"""How long a test waits for a page (or a download) at the most."""


def chromium_paths() -> tuple[str, str]:
    """The paths of ``chromium`` and ``chromedriver``: fails under CI when missing, skips elsewhere."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are required in CI (Debian packages chromium, chromium-driver; "
                        "the Makefile installs them)")
        pytest.skip("chromium not installed (apt install chromium chromium-driver)")
    return browser, driver


def start_chromium(downloads: Path) -> Any:
    """A headless Chromium session that saves downloads in ``downloads`` and accepts the API's own certificate."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
                     "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.accept_insecure_certs = True  # the management API's self-signed certificate (as an operator accepts it)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    session.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return session


@dataclass(frozen=True)
class ConsoleServer:
    """The console's process and its base URL."""

    process: subprocess.Popen[bytes]
    url: str


def chromium_session(downloads: Path) -> Iterator[Any]:
    """A fixture's body: a :func:`start_chromium` session, quit afterwards."""
    session = start_chromium(downloads)
    try:
        yield session
    finally:
        session.quit()


def screenshot_folder(tmp_path: Path) -> Path:
    """Where a test writes its screenshots: ``$FEDBUS_CONSOLE_SCREENSHOTS`` if set, else ``tmp_path/screenshots``."""
    folder = Path(os.environ.get("FEDBUS_CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(browser: Any, condition: Any) -> Any:
    """Wait (at most :data:`WAIT_SECONDS`) until ``condition`` holds; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_SECONDS).until(condition)


def heading(browser: Any, text: str) -> None:
    """Wait until the page's ``h1`` says ``text``. While the page is being replaced, Chromium's driver may fail
    to read the old ``h1`` ("Node with given id does not belong to the document"): that is retried too."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, WAIT_SECONDS, ignored_exceptions=(WebDriverException,)).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))


def log_in(browser: Any, server: ConsoleServer, username: str, password: str) -> None:
    """Log in with the keyboard only: Tab past the skip link to the user name, Tab to the password, Enter."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/console/")
    heading(browser, "Log in")
    ActionChains(browser).send_keys(Keys.TAB, Keys.TAB, username, Keys.TAB, password, Keys.ENTER).perform()


def log_out(browser: Any) -> None:
    """Press the account menu's log-out button and wait for the login page."""
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, "form.account button").click()
    heading(browser, "Log in")


def run_console_server(directory: Path, conf_dir: Path, work: Path) -> Iterator[ConsoleServer]:
    """Start tests/security_server/console/console_server.py for ``directory``; stop it afterwards."""
    yield from run_server_process("tests.security_server.console.console_server", [str(directory), str(conf_dir)],
                                  work)


def run_server_process(module: str, arguments: list[str], work: Path) -> Iterator[ConsoleServer]:
    """Start ``python -m module ARGUMENTS... PORT_FILE`` (a console server that writes its port there once
    listening); stop it afterwards."""
    port_file = work / "port"
    log = (work / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", module, *arguments, str(port_file)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not port_file.exists() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the console server did not start:\n" + (work / "server.log").read_text())
            time.sleep(0.1)
        yield ConsoleServer(process, f"https://127.0.0.1:{port_file.read_text().strip()}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
