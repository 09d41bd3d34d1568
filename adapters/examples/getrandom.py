"""``getRandom``: the service X-Road's example adapter offers, a random number for any client.

Run it alone with ``python -m adapters.examples.getrandom --port 8081``; the WSDL is at ``/?wsdl``.
"""

from __future__ import annotations

import random
from typing import TypedDict

from twisted.web import resource

from adapters.provider.caller import Caller
from adapters.provider.server import main_for
from adapters.provider.soap import SoapProvider

NAMESPACE = "http://test.x-road.global/producer"
"""The target namespace of X-Road's example adapter services."""


class RandomAnswer(TypedDict):
    """The getRandom response: one random number, as text (as in X-Road's example)."""

    data: str


def build_provider(rng: random.Random | None = None) -> SoapProvider:
    """The getRandom service (``rng`` fixes the numbers, for tests)."""
    source = rng or random.SystemRandom()
    provider = SoapProvider(NAMESPACE, name="getRandomService")

    @provider.operation(version="v1", title="Get a random number", titles={"data": "A random number from 1 to 100"})
    def getRandom(caller: Caller) -> RandomAnswer:  # noqa: N802 - the X-Road service code
        """A random number from 1 to 100."""
        return {"data": str(source.randint(1, 100))}

    return provider


def build_resource(base_url: str) -> resource.Resource:
    """The service at the root of the site."""
    return build_provider().resource(f"{base_url}/")


main = main_for(build_resource, "getRandom", "X-Road example service getRandom (SOAP)")

if __name__ == "__main__":
    main()
