"""A server process started with a low ``ulimit -n`` for the process-level flood tests, and a consumer's call to it.

The child script prints ``READY <port> ...`` once it listens; :func:`started_child` starts it with
``RLIMIT_NOFILE`` set to ``limit`` before exec, waits (bounded) for that line and yields the process, the fields
after ``READY`` and the file its standard error goes to; it stops the process afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.federation.world import is_request

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BOUND = 60.0
"""How long any one awaited event may take before a test calls the process wedged."""


@contextlib.contextmanager
def started_child(script: Path, folder: Path, args: list[str], limit: int) -> Iterator[tuple[subprocess.Popen[str], list[str], Path]]:
    """Run ``script folder args...`` with ``ulimit -n limit``: ``(process, READY fields, stderr file)``."""

    def low_descriptor_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    errors = folder / "child-stderr.log"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1")
    with open(errors, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script), str(folder), *args],
            stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, preexec_fn=low_descriptor_limit,
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], BOUND)
        assert ready, "the child did not start"
        line = process.stdout.readline().split()
        assert line[:1] == ["READY"], (line, errors.read_text()[-2000:])
        yield process, line[1:], errors
    finally:
        process.terminate()
        try:
            process.wait(BOUND)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def call(port: int) -> tuple[int, bytes] | None:
    """One SOAP request as a consumer's system sends it: ``(status, body)``, or None when the connection was
    closed or reset without an answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND)
    try:
        connection.request("POST", "/", is_request(), {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
        response = connection.getresponse()
        return response.status, response.read()
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        return None
    finally:
        connection.close()
