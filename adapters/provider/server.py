"""Running a provider as a Twisted web server: ``python -m adapters.examples.population --port 8082``.

Each example service (and any provider built with the kit) has a ``main()`` that parses ``--host``/``--port``,
builds its resource tree and calls :func:`serve`. It listens on loopback by default, logs structlog events
(JSON lines unless on a terminal) to stderr and prints one line when it is ready, so that scripts and the demo
can wait for it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Sequence

from twisted.web import resource, server

from security_server.core.config import LoggingConfig
from security_server.logconfig import configure_logging

__all__ = ["ProviderArguments", "parse_arguments", "serve"]

ProviderArguments = argparse.Namespace


def parse_arguments(description: str, argv: Sequence[str] | None = None) -> ProviderArguments:
    """``--host`` (default 127.0.0.1), ``--port`` (default 8081), ``--log-format`` (auto, json, console)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8081, help="TCP port, 0 for any free port (default: %(default)s)")
    parser.add_argument("--log-format", choices=("auto", "json", "console"), default="auto",
                        help="structlog output on stderr (default: %(default)s)")
    arguments = parser.parse_args(argv)
    if not 0 <= arguments.port <= 65535:
        parser.error("--port must be 0 to 65535")
    return arguments


def serve(
    build: Callable[[str], resource.Resource],
    arguments: ProviderArguments,
    name: str,
    *,
    reactor: Any = None,
) -> None:
    """Listen with the resource ``build(base_url)`` makes, print ``NAME listening on URL``, run until stopped."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    configure_logging(LoggingConfig(level="info", format=arguments.log_format))
    site = server.Site(resource.Resource())  # type: ignore[no-untyped-call]
    site.noisy = False
    port = reactor.listenTCP(arguments.port, site, interface=arguments.host)
    base_url = f"http://{arguments.host}:{port.getHost().port}"
    site.resource = build(base_url)
    print(f"{name} listening on {base_url}/", flush=True)
    reactor.run()


def main_for(build: Callable[[str], resource.Resource], name: str, description: str) -> Callable[[], None]:
    """A ``main()`` for a provider module: parse the arguments, then :func:`serve`."""

    def main() -> None:
        serve(build, parse_arguments(description, sys.argv[1:]), name)

    return main
