"""``helloService``: the other service of X-Road's example adapter, a greeting for a name.

Run it alone with ``python -m adapters.examples.hello --port 8081``; the WSDL is at ``/?wsdl``.
"""

from __future__ import annotations

from typing import TypedDict

from twisted.web import resource

from adapters.examples.getrandom import NAMESPACE
from adapters.provider.caller import Caller
from adapters.provider.server import main_for
from adapters.provider.soap import SoapProvider


class HelloAnswer(TypedDict):
    """The helloService response."""

    message: str


def build_provider() -> SoapProvider:
    """The helloService service."""
    provider = SoapProvider(NAMESPACE, name="helloService")

    @provider.operation(version="v1", title="Say hello", titles={"name": "Whom to greet", "message": "The greeting"})
    def helloService(caller: Caller, name: str) -> HelloAnswer:  # noqa: N802 - the X-Road service code
        """X-Road's example greeting."""
        return {"message": f"Hello {name}! Greetings from adapter server!"}

    return provider


def build_resource(base_url: str) -> resource.Resource:
    """The service at the root of the site."""
    return build_provider().resource(f"{base_url}/")


main = main_for(build_resource, "helloService", "X-Road example service helloService (SOAP)")

if __name__ == "__main__":
    main()
