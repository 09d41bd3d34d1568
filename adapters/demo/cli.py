"""``fedbus demo``: start a whole federation on loopback and show it working (entry point in setup.cfg)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from adapters.demo.federation import DEFAULT_BASE_PORT
from adapters.demo.runner import DemoOptions, run_demo


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to put everything (a new or empty directory). Default: a new temporary directory.")
@click.option("--base-port", type=click.IntRange(1024, 65535 - 40), default=DEFAULT_BASE_PORT, show_default=True,
              help="The first of the demo's ports on 127.0.0.1 (it uses BASE to BASE+32).")
@click.option("--once", is_flag=True,
              help="Run the script and exit: status 0 only if every step passed.")
@click.option("--fail-at", "fail_at", hidden=True, help="Testing aid: make the step of this name fail.")
def demo(workdir: Path | None, base_port: int, once: bool, fail_at: str | None) -> None:
    """Run a registry (with CA, OCSP responder and TSA), two departments' security servers and example
    providers on loopback; set them up with the real admin commands; call SOAP and REST services through the
    bus; find the exchanges in both message logs and verify the signed evidence.

    Without --once the federation keeps running, with examples to try, until Ctrl-C.
    """
    status = run_demo(DemoOptions(workdir=workdir, base_port=base_port, once=once, fail_at=fail_at), sys.stdout)
    sys.exit(status)
