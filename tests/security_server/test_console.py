"""The fedbus console script lists exactly the role groups that are installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from security_server.console import main, role_groups


def test_help_lists_the_installed_role_groups() -> None:
    """`fedbus --help` names every role group registered as an entry point."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in role_groups():
        assert name in result.output
    assert "fedbus: a federated data-exchange bus" in result.output


def test_console_script_runs() -> None:
    """The installed `fedbus` script runs and exits 0 on --help."""
    script = Path(sys.executable).with_name("fedbus")
    completed = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "Usage: fedbus" in completed.stdout


def test_unknown_group_is_an_error() -> None:
    """An unknown role group exits non-zero with click's usage error."""
    result = CliRunner().invoke(main, ["nosuchrole"])
    assert result.exit_code == 2
