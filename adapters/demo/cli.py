"""``fedbus demo``: start a whole federation on loopback and show it working (entry point in setup.cfg)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from adapters.demo.federation import DEFAULT_BASE_PORT
from adapters.demo.runner import DemoOptions, run_demo


class BasePort(click.ParamType[int | None]):
    """A port from 1024 to 65495, or ``auto`` (None: the demo picks a free block)."""

    name = "BASE|auto"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        """``auto`` becomes None; anything else must be a port that leaves room for the demo's 33."""
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() == "auto":
            return None
        number: int = click.IntRange(1024, 65535 - 40).convert(str(value), param, ctx)  # type: ignore[arg-type]
        return number


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to put everything (a new or empty directory). Default: a new temporary directory.")
@click.option("--base-port", type=BasePort(), default=str(DEFAULT_BASE_PORT), show_default=True,
              help="The first of the demo's ports on 127.0.0.1 (it uses BASE to BASE+32), or 'auto': any free block "
                   "(the demo prints which).")
@click.option("--once", is_flag=True,
              help="Run the script and exit: status 0 only if every step passed.")
@click.option("--fail-at", "fail_at", hidden=True, help="Testing aid: make the step of this name fail.")
@click.option("--cluster", is_flag=True,
              help="Two nodes of the provider's security server behind HAProxy and two registry nodes, on a "
                   "throwaway PostgreSQL; kill a node and see traffic continue (needs the Debian packages "
                   "postgresql and haproxy; docs/clustering.md).")
def demo(workdir: Path | None, base_port: int | None, once: bool, fail_at: str | None, cluster: bool) -> None:
    """Run a registry (with CA, OCSP responder and TSA), two departments' security servers and example
    providers on loopback; set them up with the real admin commands; call SOAP and REST services through the
    bus; find the exchanges in both message logs and verify the signed evidence.

    Without --once the federation keeps running, with examples to try, until Ctrl-C.
    """
    status = run_demo(DemoOptions(workdir=workdir, base_port=base_port, once=once, fail_at=fail_at, cluster=cluster),
                      sys.stdout)
    sys.exit(status)
