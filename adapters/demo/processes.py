"""The demo's long-running processes: started with their output in a log file, always stopped at the end.

Each process runs in its own session (so a Ctrl-C at the terminal reaches only the demo, which then stops them
in order) and, on Linux when the demo runs single-threaded (as ``fedbus demo`` does), is told by the kernel to
terminate if the demo itself dies without cleaning up (``PR_SET_PDEATHSIG``). :meth:`Supervisor.stop_all` sends SIGTERM to each process group (Twisted stops its
services on it), waits a bounded time, then SIGKILLs whatever is left.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from adapters.demo.federation import port_in_use
from adapters.demo.progress import PortTaken, StepFailed

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Managed:
    """One started process."""

    name: str
    args: tuple[str, ...]
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid

    def running(self) -> bool:
        """Whether it has not exited."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 12) -> list[str]:
        """The last lines of its log."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]


class Supervisor:
    """Starts processes, checks on them, and stops them all."""

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.env = dict(env if env is not None else os.environ)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.started: list[Managed] = []

    def start(self, name: str, args: Sequence[str], log: Path) -> Managed:
        """Start ``args`` with stdout and stderr appended to ``log``."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            process = subprocess.Popen(
                list(args), cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True,
                # preexec_fn is only safe in a process with one thread (fork copies no other thread's locks).
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") and threading.active_count() == 1
                else None,
            )
        managed = Managed(name, tuple(args), process, log)
        self.started.append(managed)
        return managed

    def check(self, managed: Managed) -> None:
        """:class:`StepFailed` with the end of its log if the process has exited."""
        code = managed.process.poll()
        if code is not None:
            raise StepFailed(f"{managed.name} exited with status {code} (log: {managed.log})", details=managed.log_tail())

    def wait_ready(
        self, managed: Managed, ready: Callable[[], bool], *, timeout: float, tick: Callable[[], None]
    ) -> None:
        """Poll ``ready()`` until it holds, the process exits, or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            self.check(managed)
            if ready():
                return
            if time.monotonic() > deadline:
                raise StepFailed(f"{managed.name} did not become ready in {timeout:.0f}s (log: {managed.log})",
                                 details=managed.log_tail())
            for _ in range(5):
                tick()
                time.sleep(0.05)

    def start_listening(
        self,
        name: str,
        args: Sequence[str],
        log: Path,
        ports: Sequence[tuple[str, int]],
        ready: Callable[[], bool],
        *,
        started_marker: str,
        timeout: float,
        tick: Callable[[], None],
    ) -> Managed:
        """Start a process that listens on ``ports``; wait until ``ready()`` and its log shows ``started_marker``.

        The marker makes sure the answering listener is this process and not another program that took the
        port: :class:`PortTaken` names such a port, whether it is busy before the start or the process died
        while it was busy.
        """
        taken = [(what, port) for what, port in ports if port_in_use(port)]
        if taken:
            raise PortTaken(taken)
        managed = self.start(name, args, log)

        def ours() -> bool:
            return ready() and any(started_marker in line for line in managed.log_tail(200))

        try:
            self.wait_ready(managed, ours, timeout=timeout, tick=tick)
        except StepFailed as failed:
            taken = [(what, port) for what, port in ports if port_in_use(port)]
            if taken and not managed.running():
                raise PortTaken(taken, [failed.message, *failed.details]) from failed
            raise
        return managed

    def check_all(self) -> None:
        """:class:`StepFailed` with its log for the first started process that has exited."""
        for managed in self.started:
            self.check(managed)

    def dead(self) -> list[Managed]:
        """Started processes that have exited on their own."""
        return [m for m in self.started if not m.running()]

    def stop(self, managed: Managed, timeout: float = 10.0) -> str:
        """Stop one started process (SIGTERM, then SIGKILL after ``timeout``) and forget it; what happened."""
        if managed.running():
            _signal_group(managed.process, signal.SIGTERM)
        try:
            managed.process.wait(timeout=timeout)
            report = f"{managed.name} (pid {managed.pid}) stopped"
        except subprocess.TimeoutExpired:
            _signal_group(managed.process, signal.SIGKILL)
            managed.process.wait(timeout=5)
            report = f"{managed.name} (pid {managed.pid}) killed after {timeout:.0f}s"
        self.started.remove(managed)
        return report

    def stop_all(self, timeout: float = 10.0) -> list[str]:
        """Stop every started process, newest first: SIGTERM, then SIGKILL after ``timeout``; report each."""
        report: list[str] = []
        for managed in reversed(self.started):
            if managed.running():
                _signal_group(managed.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for managed in reversed(self.started):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                managed.process.wait(timeout=remaining)
                report.append(f"{managed.name} (pid {managed.pid}) stopped")
            except subprocess.TimeoutExpired:
                _signal_group(managed.process, signal.SIGKILL)
                managed.process.wait(timeout=5)
                report.append(f"{managed.name} (pid {managed.pid}) killed after {timeout:.0f}s")
        self.started = []
        return report


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the process's group (it leads its own session); quietly nothing if it is gone."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
