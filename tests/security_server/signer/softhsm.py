"""SoftHSM2 for tests: one temporary token directory per test session, tokens initialised with softhsm2-util.

The PKCS#11 module reads ``SOFTHSM2_CONF`` when it is first initialised in the process, so every test of a session
shares one configuration (:func:`shared_softhsm`, set before any token is opened, removed at exit); each test
initialises its own token (a fresh label), so tests never see each other's keys. Without SoftHSM2 installed the tests are skipped, except under CI
(``CI=true``), where the Makefile installs it and a missing module is a failure.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_PATHS = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
USER_PIN = "123456"
SO_PIN = "87654321"


def find_module() -> str:
    """The SoftHSM2 PKCS#11 module, or skip (fail under CI) when it is not installed."""
    for path in MODULE_PATHS:
        if Path(path).is_file() and shutil.which("softhsm2-util"):
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("SoftHSM2 is not installed (the Makefile's DEBIAN_PACKAGES should have installed softhsm2)")
    pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")


@dataclass(frozen=True, slots=True)
class SoftHsmToken:
    """One initialised SoftHSM2 token: its label, PIN and the directory that holds it."""

    module: str
    label: str
    pin: str
    directory: Path


class SoftHsm:
    """A SoftHSM2 configuration in a temporary directory, installed as ``SOFTHSM2_CONF`` for this process."""

    def __init__(self, root: Path) -> None:
        self.module = find_module()
        self.tokens = root / "tokens"
        self.tokens.mkdir(parents=True)
        conf = root / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = true\n",
            encoding="utf-8",
        )
        os.environ["SOFTHSM2_CONF"] = str(conf)
        self.conf = conf

    def init_token(self, label: str | None = None, pin: str = USER_PIN) -> SoftHsmToken:
        """Initialise a new token in the first free slot; its directory is the one softhsm2-util created."""
        label = label or f"t-{uuid.uuid4().hex[:12]}"
        before = set(self.tokens.iterdir())
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", SO_PIN],
            check=True, capture_output=True, timeout=60, env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
        )
        (directory,) = set(self.tokens.iterdir()) - before
        return SoftHsmToken(self.module, label, pin, directory)


_SHARED: list[SoftHsm] = []


def shared_softhsm() -> SoftHsm:
    """The one SoftHSM2 configuration of this test process (made on first use, its folder removed at exit)."""
    if not _SHARED:
        root = Path(tempfile.mkdtemp(prefix="fedbus-softhsm-"))
        atexit.register(shutil.rmtree, root, True)
        _SHARED.append(SoftHsm(root))
    return _SHARED[0]
