"""Running ``fedbus ...`` commands as an administrator would, each one written to ``logs/commands.log``.

The demo drives the federation only through the real command line (and the consumers' own protocols), so the
log it leaves is the admin workflow, command by command, with every output. Commands run in the working
directory, with paths relative to it, so that each logged line can be pasted after ``cd WORKDIR``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from adapters.demo.progress import StepFailed

_FALLBACK = "import sys; from security_server.console import main; sys.exit(main())"


def fedbus_command() -> list[str]:
    """How to run ``fedbus``: the script beside this Python, else the one on PATH, else through Python itself."""
    beside = Path(sys.executable).with_name("fedbus")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-c", _FALLBACK]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command did."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class CommandFailed(StepFailed):
    """A command exited non-zero; the message names the command and holds its error output."""

    def __init__(self, result: CommandResult) -> None:
        error = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
        super().__init__(
            f"`{display(result.args)}` failed (exit {result.returncode}): {error[-1]}",
            details=[line for line in error[:-1]][-15:],
        )
        self.result = result


def display(args: Sequence[str]) -> str:
    """A command as an administrator would type it."""
    return "fedbus " + shlex.join(args)


class Fedbus:
    """Runs ``fedbus`` in ``cwd`` and logs every command with its output."""

    def __init__(self, cwd: Path, log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.log_path = log_path
        self.env = dict(env if env is not None else os.environ)
        self.argv0 = fedbus_command()

    def run(self, *args: str, check: bool = True, timeout: float = 180.0, stdin: str | None = None) -> CommandResult:
        """Run ``fedbus ARGS`` (``stdin``: the text it reads, e.g. a password; never logged); :class:`CommandFailed`
        when it exits non-zero and ``check`` is set."""
        started = time.monotonic()
        feed: dict[str, Any] = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}
        try:
            completed = subprocess.run(
                [*self.argv0, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout,
                check=False, **feed,
            )
            result = CommandResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)
        except subprocess.TimeoutExpired as err:
            result = CommandResult(tuple(args), -1, _text(err.stdout), _text(err.stderr) + f"\ntimed out after {timeout:.0f}s")
        self._log(result, time.monotonic() - started)
        if check and result.returncode != 0:
            raise CommandFailed(result)
        return result

    def json(self, *args: str, timeout: float = 180.0) -> Any:
        """Run ``fedbus ARGS --json`` and parse its output."""
        result = self.run(*args, "--json", timeout=timeout)
        try:
            return parse_json_output(result.stdout)
        except ValueError as err:
            raise StepFailed(f"`{display(result.args)}` did not print JSON", details=result.stdout.splitlines()[:10]) from err

    def available(self, *args: str) -> bool:
        """Whether ``fedbus ARGS --help`` works: the command exists in this build."""
        return self.run(*args, "--help", check=False).returncode == 0

    def help_text(self, *args: str) -> str:
        """The ``--help`` text of a command ('' when it does not exist)."""
        result = self.run(*args, "--help", check=False)
        return result.stdout if result.returncode == 0 else ""

    def _log(self, result: CommandResult, seconds: float) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"$ {display(result.args)}\n")
            for stream in (result.stdout, result.stderr):
                if stream.strip():
                    log.write(stream if stream.endswith("\n") else stream + "\n")
            log.write(f"# exit {result.returncode}, {seconds:.1f}s\n\n")


def parse_json_output(text: str) -> Any:
    """The JSON document a ``--json`` command printed.

    Some commands also print log events on stdout before it; the document is then the text from the first line
    that starts a JSON object or array at column 0 to the end.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("{", "[")):
            try:
                return json.loads("\n".join(lines[index:]))
            except ValueError:
                continue
    raise ValueError("no JSON document in the output")


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")
