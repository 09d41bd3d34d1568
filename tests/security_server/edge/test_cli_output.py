"""The admin CLIs' shared output: BusError -> message and exit status 1, tables, JSON."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from security_server.core.errors import NetworkError, NotFound, Origin
from security_server.edge.cli_output import (
    BusErrorGroup,
    bus_errors_as_command_errors,
    emit,
    error_text,
    format_table,
    json_option,
)


def test_error_text_gives_message_reason_and_fault_code() -> None:
    """message (reason) [fault code]; each part can be left out, and a reason equal to the message is not repeated."""
    err = NetworkError("the registry could not be reached", reason="connection refused")
    assert error_text(err) == "the registry could not be reached (connection refused) [server.network_error]"
    assert error_text(err, with_code=False) == "the registry could not be reached (connection refused)"
    assert error_text(err, with_reason=False) == "the registry could not be reached [server.network_error]"
    assert error_text(err, with_reason=False, with_code=False) == "the registry could not be reached"
    assert error_text(NotFound("no such record", origin=Origin.CLIENT)) == "no such record [client.not_found]"


@click.group(cls=BusErrorGroup)
def tool() -> None:
    """A command group like the admin CLIs'."""


@tool.command()
def fails() -> None:
    """A command whose work raises a BusError."""
    raise NetworkError("down", reason="refused")


@tool.command()
def fails_plainly() -> None:
    """A command that reports its BusError by message alone."""
    with bus_errors_as_command_errors(with_reason=False, with_code=False):
        raise NetworkError("down", reason="refused")


@tool.command()
@json_option("Print JSON.")
def lists(as_json: bool) -> None:
    """A listing command."""
    emit(as_json, {"b": 1, "a": [2]}, lambda: format_table(["name", "value"], [["a", "2"], ["b", "1"]]))


def test_a_bus_error_below_the_group_is_error_text_on_stderr_and_exit_1() -> None:
    """The group turns a BusError into ``Error: ...`` on stderr and exit status 1, nothing on stdout."""
    result = CliRunner().invoke(tool, ["fails"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: down (refused) [server.network_error]\n"


def test_a_block_can_report_the_message_alone() -> None:
    """bus_errors_as_command_errors ends the command the same way with the parts asked for."""
    result = CliRunner().invoke(tool, ["fails-plainly"])
    assert (result.exit_code, result.stderr) == (1, "Error: down\n")


def test_emit_prints_a_table_or_json() -> None:
    """Without --json a table, with it indented JSON (keys in the given order unless sorted)."""
    runner = CliRunner()
    assert runner.invoke(tool, ["lists"]).stdout == "name  value\na     2\nb     1\n"
    assert json.loads(runner.invoke(tool, ["lists", "--json"]).stdout) == {"b": 1, "a": [2]}
    assert runner.invoke(tool, ["lists", "--json"]).stdout.startswith('{\n  "b": 1')


def test_emit_can_sort_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """sort_keys=True prints JSON keys sorted (the server CLI's form)."""
    emit(True, {"b": 1, "a": 2}, lambda: "", sort_keys=True)
    assert capsys.readouterr().out == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_format_table_aligns_columns() -> None:
    """Columns are padded to their widest cell and separated by two spaces; trailing blanks are trimmed."""
    assert format_table(["a", "bb"], [["ccc", "d"]]) == "a    bb\nccc  d"
    assert format_table(["a", "b"], [["", ""]]) == "a  b\n"


def test_format_table_marks_an_empty_table_unless_told_not_to() -> None:
    """No rows: ``(none)`` under the headers by default, nothing with empty=None."""
    assert format_table(["a"], []) == "a\n(none)"
    assert format_table(["A", "B"], [], empty=None) == "A  B"
