"""A registry whose configuration-signing key is encrypted under its PIN starts logged out: it runs (configuration
site, management endpoint) but signs and publishes nothing, and its health check says why, until a login."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as global_reactor
from twisted.trial import unittest

from central_registry import conf_signing_key as token_files
from central_registry.admin import initialization
from central_registry.admin import signing_keys
from central_registry.service import RegistryService
from security_server.edge.health_checker import Status
from security_server.signer.softtoken_pin import LOGINS
from tests.loopback import free_port, now

reactor: Any = global_reactor


class StartsLoggedOutTest(unittest.TestCase):
    """``RegistryService`` on an API-initialised registry after a restart (no login in the process)."""

    timeout = 60

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-registry-pin-"))
        self.root = self.tmp / "registry"
        initialization.initialise(self.root, "EE", "127.0.0.1", "1234", now())
        self.conf_signing = self.root / "conf-signing"
        LOGINS.forget(self.conf_signing)  # what a new process sees
        self.registry = RegistryService(reactor, self.root, http_port=free_port(), https_port=free_port())

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        if self.registry.running:
            yield self.registry.stopService()
        LOGINS.forget(self.conf_signing)
        shutil.rmtree(self.tmp, ignore_errors=True)

    @defer.inlineCallbacks
    def test_nothing_is_published_until_a_login(self) -> Any:
        """The started registry is logged out: its first publication fails (no directory written) and the health
        check fails on the signing key; after a login with the PIN the next publication is signed and written."""
        self.registry.startService()
        publisher = self.registry.publisher
        assert publisher is not None and publisher.logged_out
        yield self.registry.publish_now()
        assert not (self.root / "published" / "internalconf").exists()
        verdict = yield self.registry.health.checker.verdict()
        assert verdict.status is Status.FAILED and ("log in" in verdict.reason or "logged out" in verdict.reason)
        with_store = self.registry.store
        assert with_store is not None
        yield self.registry.run(signing_keys.login, with_store, publisher, "1234")
        assert token_files.logged_in(self.conf_signing)
        assert self.registry.publisher is not None and self.registry.publisher.signing_key is not None  # unlocked
        yield self.registry.publish_now()
        assert (self.root / "published" / "internalconf").is_file()
