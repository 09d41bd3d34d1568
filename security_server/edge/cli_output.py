"""What the admin CLIs (``fedbus server``, ``fedbus audit``, ``fedbus registry``) print, and how a BusError ends them.

One convention for all three: the answer goes to stdout as a table (or JSON with ``--json``); a
:class:`~security_server.core.errors.BusError` ends the command with ``Error: <message> (<reason>) [<fault
code>]`` on stderr and exit status 1 (click's own usage errors exit 2). :class:`BusErrorGroup` does that for a
whole command group; :func:`bus_errors_as_command_errors` does it for one block, for the few commands whose
messages leave out the reason or the fault code (kept as they were: scripts may read them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from security_server.core.errors import BusError

F = TypeVar("F", bound=Callable[..., Any])


def error_text(err: BusError, *, with_reason: bool = True, with_code: bool = True) -> str:
    """``message (reason) [fault code]``; the reason only when it says more than the message."""
    text = err.message
    if with_reason and err.reason != err.message:
        text += f" ({err.reason})"
    if with_code:
        text += f" [{err.fault_code}]"
    return text


class BusErrorGroup(click.Group):
    """A click group that turns every :class:`BusError` below it into a clear error and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a BusError becomes ``Error: message (reason) [code]``."""
        try:
            return super().invoke(ctx)
        except BusError as err:
            raise click.ClickException(error_text(err)) from err


@contextmanager
def bus_errors_as_command_errors(*, with_reason: bool = True, with_code: bool = True) -> Iterator[None]:
    """Inside the block, a :class:`BusError` ends the command with exit status 1 and :func:`error_text`."""
    try:
        yield
    except BusError as err:
        raise click.ClickException(error_text(err, with_reason=with_reason, with_code=with_code)) from err


def json_option(help_text: str) -> Callable[[F], F]:
    """The ``--json`` flag (``as_json``), with the command family's help text."""

    def decorate(func: F) -> F:
        return click.option("--json", "as_json", is_flag=True, help=help_text)(func)

    return decorate


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str | None = "(none)") -> str:
    """Left-aligned columns separated by two spaces, trailing blanks trimmed; ``empty`` under the headers when
    there are no rows (None: nothing)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [list(headers), *rows]]
    if not rows and empty is not None:
        lines.append(empty)
    return "\n".join(lines)


def emit(as_json: bool, data: Any, table: Callable[[], str], *, sort_keys: bool = False) -> None:
    """Print ``data`` as indented JSON, or the table ``table()`` makes (built only when it is printed)."""
    click.echo(json.dumps(data, indent=2, sort_keys=sort_keys) if as_json else table())
