"""The adapter tests' federation: two departments on the bus, with the example providers served on loopback."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.web.resource import Resource

from adapters.examples.population import Person, Register
from adapters.provider.caller import Caller
from tests import e2e_federation as federation
from tests.adapters.sites import connections_closed, listen


class RecordingRegister(Register):
    """The population register, remembering who asked."""

    def __init__(self) -> None:
        super().__init__()
        self.callers: list[Caller] = []

    def lookup(self, caller: Caller, person_code: str) -> Person | None:
        """Record the caller, then look up."""
        self.callers.append(caller)
        return super().lookup(caller, person_code)


class ExampleProvidersFederation(federation.TwoDepartmentFederation):
    """A two-department federation whose test serves example providers; they are stopped after the test."""

    example_ports: list[Any]

    def serve_example(self, resource: Resource) -> str:
        """Serve ``resource`` on a free loopback port until the test ends; its base URL."""
        port = listen(resource)
        self.example_ports = [*getattr(self, "example_ports", []), port]
        return f"http://127.0.0.1:{port.getHost().port}"

    @defer.inlineCallbacks
    def tearDown(self) -> Any:  # type: ignore[override]  # trial waits for the Deferred
        yield connections_closed()
        for port in getattr(self, "example_ports", []):
            yield port.stopListening()
        yield super().tearDown()
