"""Running the demo: check the ports, run the script step by step, keep the federation up, always clean up.

Exit status: 0 when every step passed (skipped steps, whose features this build lacks, do not count against it)
and, without ``--once``, when the user stopped the running federation with Ctrl-C; 1 when a step failed or a
process died; 2 when the demo refused to start (a port in use, a working directory that is not empty) or a port
was taken by another program after the check at start (run again: the same ports, once free, or others); 130
when interrupted during set-up.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Callable, Iterator, TextIO

from adapters.demo.cluster import ClusterDemoScript
from adapters.demo.commands import Fedbus
from adapters.demo.federation import DemoPorts, Layout, busy_ports, find_free_base
from adapters.demo.processes import Supervisor
from adapters.demo.progress import PortTaken, Progress, StepFailed, StepSkipped
from adapters.demo.script import DemoScript
from adapters.demo.snippets import try_it

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130

_CLEAN_ENV = ("FEDBUS_REGISTRY_DIR", "FEDBUS_SERVER_DIR")
"""Variables that would point commands elsewhere; the demo always names its directories."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the command line asked for."""

    workdir: Path | None = None
    base_port: int | None = 18000
    """None: any free block of ports (below the range the kernel gives outgoing connections)."""
    once: bool = False
    fail_at: str | None = None
    """Testing aid: make the step of this name fail (to check the failure report and the clean-up)."""
    cluster: bool = False
    """Clustered provider server and registry on PostgreSQL behind HAProxy (adapters/demo/cluster.py)."""


class Interrupted(Exception):
    """SIGTERM or SIGHUP: stop like Ctrl-C."""


def _prepare_workdir(workdir: Path | None) -> Path:
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="fedbus-demo-")).resolve()
    workdir = workdir.resolve()
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise FileExistsError(f"the working directory {workdir} is not an empty directory; name a new one")
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


@contextmanager
def _signals() -> Iterator[None]:
    """While running, SIGTERM and SIGHUP stop the demo as Ctrl-C does (so the clean-up runs)."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; elsewhere the caller handles stopping
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_demo(options: DemoOptions, out: TextIO | None = None, *, keep_running: Callable[[], bool] | None = None) -> int:
    """Run the demo as ``options`` say; returns the exit status (see the module docstring).

    ``keep_running`` is polled once a second after the script while the federation stays up (default: until
    Ctrl-C or SIGTERM); ``--once`` skips that phase.
    """
    stream = out if out is not None else sys.stdout
    tty = stream.isatty()
    try:
        ports = DemoPorts(find_free_base() if options.base_port is None else options.base_port)
    except (ValueError, OSError) as err:
        stream.write(f"fedbus demo: {err}\n")
        return EXIT_REFUSED
    busy = busy_ports(ports)
    if busy:
        stream.write("fedbus demo: refusing to start, these ports are in use:\n")
        for what, port in busy:
            stream.write(f"  127.0.0.1:{port} ({what})\n")
        stream.write(f"Stop what uses them, or choose other ports with --base-port (now {ports.base}; "
                     f"the demo uses {ports.base} to {ports.base + 32}), or let the demo pick with --base-port auto.\n")
        return EXIT_REFUSED
    try:
        root = _prepare_workdir(options.workdir)
    except (FileExistsError, OSError) as err:
        stream.write(f"fedbus demo: {err}\n")
        return EXIT_REFUSED
    layout = Layout(root)
    layout.logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _CLEAN_ENV}
    # The child processes import the same fedbus as this one, installed or run from a checkout.
    source_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([source_root, *filter(None, [env.get("PYTHONPATH")])])
    supervisor = Supervisor(root, env)
    fedbus = Fedbus(root, layout.commands_log, env)
    script_class = ClusterDemoScript if options.cluster else DemoScript
    script = script_class(layout, ports, fedbus, supervisor, Progress(stream, 0, tty=tty))
    steps = script.steps()
    progress = script.progress
    progress.total = len(steps)
    names = {step.name for step in steps}
    if options.fail_at is not None and options.fail_at not in names:
        stream.write(f"fedbus demo: no step named {options.fail_at!r} (steps: {', '.join(s.name for s in steps)})\n")
        return EXIT_REFUSED

    progress.line(f"fedbus demo: a registry and two departments' security servers on 127.0.0.1, ports "
                  f"{ports.base}-{ports.base + 32}")
    progress.line(f"working directory: {root}")
    progress.line(f"  logs: {layout.logs}   every command with its output: {layout.commands_log}")
    progress.line("")
    with _signals():
        return _run(options, script, layout, ports, supervisor, keep_running)


def _run(options: DemoOptions, script: DemoScript, layout: Layout, ports: DemoPorts, supervisor: Supervisor,
         keep_running: Callable[[], bool] | None) -> int:
    progress = script.progress
    steps = script.steps()
    started = time.monotonic()
    current = None
    try:
        for index, step in enumerate(steps, start=1):
            current = step
            progress.begin(index, step.title)
            try:
                if step.name == options.fail_at:
                    raise StepFailed(f"forced failure (--fail-at {step.name})")
                step.run()
                supervisor.check_all()  # a process that died after it started fails the step that saw it
            except StepSkipped as skipped:
                progress.end("skipped", [str(skipped)])
                continue
            except PortTaken as taken:
                progress.end("FAILED", [taken.message, *taken.details])
                _report_failure(progress, index, step.name, taken.message, layout)
                progress.line(f"Another program took the port after the demo checked it at start. Run again, with "
                              f"another --base-port (now {ports.base}) or --base-port auto.")
                return EXIT_REFUSED
            except StepFailed as failed:
                progress.end("FAILED", [failed.message, *failed.details])
                _report_failure(progress, index, step.name, failed.message, layout)
                return EXIT_FAILED
            except (Interrupted, KeyboardInterrupt):
                raise
            except Exception as err:  # noqa: BLE001 - any surprise is reported as this step's failure
                message = f"{type(err).__name__}: {err}"
                progress.end("FAILED", [message])
                _report_failure(progress, index, step.name, message, layout)
                return EXIT_FAILED
            progress.end("ok")
        current = None
        counts = progress.outcomes
        progress.line("")
        progress.line(f"All steps done in {time.monotonic() - started:.0f}s: {counts['ok']} passed, "
                      f"{counts['skipped']} skipped ({'not available in this build' if counts['skipped'] else 'none'}).")
        if options.once:
            return EXIT_OK
        progress.line("")
        for line in try_it(layout, ports, audit=script.state.audit_available):
            progress.line(line)
        return _keep_running(supervisor, progress, keep_running)
    except (KeyboardInterrupt, Interrupted) as stop:
        progress.line("")
        if current is not None:
            progress.line(f"Interrupted during step {current.name!r} ({type(stop).__name__} {stop}).")
            return EXIT_INTERRUPTED
        progress.line("Stopping the federation.")
        return EXIT_OK
    finally:
        script.close()
        report = supervisor.stop_all()
        if report:
            progress.line("Stopped: " + "; ".join(report) + ".")
        progress.line(f"Everything the demo wrote stays in {layout.root}.")


def _keep_running(supervisor: Supervisor, progress: Progress, keep_running: Callable[[], bool] | None) -> int:
    while keep_running is None or keep_running():
        dead = supervisor.dead()
        if dead:
            for managed in dead:
                progress.line(f"{managed.name} exited with status {managed.process.returncode}; its log: {managed.log}")
                for line in managed.log_tail(8):
                    progress.line(f"    {line}")
            return EXIT_FAILED
        time.sleep(1.0)
    return EXIT_OK


def _report_failure(progress: Progress, index: int, name: str, message: str, layout: Layout) -> None:
    progress.line("")
    progress.line(f"The demo stopped at step {index} ({name}): {message}")
    progress.line(f"Logs: {layout.logs} (one per process); every command and its output: {layout.commands_log}")
