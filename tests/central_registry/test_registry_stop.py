"""Stopping the registry lets the store thread finish its work before the store closes (central_registry/service.py)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as global_reactor
from twisted.trial import unittest

from central_registry.bootstrap import init_registry
from central_registry.service import RegistryService
from tests.loopback import free_port, now

reactor: Any = global_reactor


class RegistryStopTest(unittest.TestCase):
    """A stop that arrives while the store thread is busy waits for that work instead of closing the store under it."""

    timeout = 60

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-registry-stop-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        http_port, https_port = free_port(), free_port()
        paths = init_registry(self.tmp / "registry", "EE", now(), public_url=f"http://127.0.0.1:{http_port}", ca_key_size=2048)
        self.registry = RegistryService(reactor, paths.root, http_port=http_port, https_port=https_port)
        self.registry.startService()

    @defer.inlineCallbacks
    def test_work_under_way_in_the_store_thread_finishes_before_the_store_closes(self) -> Any:
        """A store read that is still running when stopService is called completes with its rows, not StoreClosed."""
        started, release = threading.Event(), threading.Event()
        outcome: list[object] = []

        store = self.registry.store
        assert store is not None

        def slow_read() -> None:
            started.set()
            release.wait(10)  # hold the store thread while the stop begins
            try:
                outcome.append(len(store.members()))
            except Exception as err:  # noqa: BLE001 - the failure is what the assertion reports
                outcome.append(err)

        self.registry.run(slow_read)
        assert started.wait(10)
        threading.Timer(0.2, release.set).start()  # let the read go on while the stop is under way
        yield self.registry.stopService()
        assert outcome == [0], outcome
