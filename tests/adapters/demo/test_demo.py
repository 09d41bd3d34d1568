"""``fedbus demo``: refuses busy ports, reports a failed step with its logs, always stops what it started,
and runs the whole script with ``--once``."""

from __future__ import annotations

import io
import os
import random
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapters.demo.cli import demo
from adapters.demo.commands import parse_json_output
from adapters.demo.federation import DemoPorts, busy_ports, ephemeral_ports, find_free_base, port_in_use
from adapters.demo.processes import Supervisor
from adapters.demo.progress import PortTaken, Progress, StepFailed


FEATURE_STEPS = ("Find the exchange in both message logs", "Export a signed container and verify it")
"""The steps that need ``fedbus audit`` (issue 7), skipped while it is absent."""


def free_base() -> int:
    """A base port whose demo ports are all free right now, as the demo itself picks one for ``--base-port auto``."""
    return find_free_base()


def gone(pid: int) -> bool:
    """Whether no process has this id any more (ours are reaped by the demo)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_ports_are_offsets_of_one_base() -> None:
    """Fourteen named ports from base to base+32 (the registry's management API, and a health check and a
    management API port beside each server's proxies); a base that does not leave room is refused."""
    ports = DemoPorts(20000)
    named = dict((what, port) for what, port in ports.named())
    assert named["registry HTTP"] == 20000 and named["ss-tax client proxy"] == 20010
    assert named["ss-tax health check"] == 20012 and named["ss-pop health check"] == 20022
    assert named["ss-tax management API"] == 20013 and named["ss-pop management API"] == 20023
    assert named["registry management API"] == 20005
    assert named["population register"] == 20032 and len(named) == 14
    with pytest.raises(ValueError):
        DemoPorts(65530)


def test_a_listening_port_is_seen_as_in_use() -> None:
    """port_in_use binds as Twisted does: a listener makes it busy, a closed socket does not."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use(port)
    assert not port_in_use(port)


def test_a_free_base_is_below_the_ephemeral_range_and_free(tmp_path: Path) -> None:
    """find_free_base: every port of the block is free and below the range outgoing connections take ports from."""
    low, _ = ephemeral_ports()
    for seed in range(5):
        base = find_free_base(random.Random(seed))
        assert base + 32 < low and not busy_ports(DemoPorts(base))
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("40000\t50000\n")
    assert ephemeral_ports(ranges) == (40000, 50000)
    assert ephemeral_ports(tmp_path / "absent") == (32768, 60999)


def test_a_port_in_use_is_reported_as_taken_and_nothing_is_started(tmp_path: Path) -> None:
    """start_listening: a port another program listens on is named (PortTaken) before anything starts."""
    supervisor = Supervisor(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortTaken) as taken:
            supervisor.start_listening("provider", [sys.executable, "-c", "pass"], tmp_path / "p.log",
                                       [("provider", port)], lambda: True, started_marker="listening",
                                       timeout=30, tick=lambda: None)
    assert taken.value.taken == [("provider", port)] and f"127.0.0.1:{port} (provider)" in taken.value.message
    assert supervisor.started == []


CANNOT_LISTEN = """
import socket, sys, time
while True:  # a server that starts just too late: it finds its port taken, says so and exits
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", int(sys.argv[1])))
        except OSError as err:
            print(f"cannot listen: {err}", flush=True)
            raise SystemExit(1)
    time.sleep(0.01)
"""


def test_a_port_taken_after_the_check_is_not_mistaken_for_the_process(tmp_path: Path) -> None:
    """A port taken between the check and the bind: another program's answer does not count as ready; the
    process that could not listen is reported with PortTaken and its log."""
    supervisor = Supervisor(tmp_path)
    port = free_base()
    squatter = socket.socket()
    sockets: list[Any] = []

    def impostor_answers() -> bool:
        if not sockets:  # another program binds the port just after the check
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            sockets.append(squatter)
        return True

    try:
        with pytest.raises(PortTaken) as taken:
            supervisor.start_listening(
                "provider", [sys.executable, "-c", CANNOT_LISTEN, str(port)],
                tmp_path / "p.log", [("provider", port)], impostor_answers, started_marker="listening on",
                timeout=60, tick=lambda: None,
            )
    finally:
        squatter.close()
    assert taken.value.taken == [("provider", port)]
    assert any("cannot listen" in line for line in taken.value.details)
    supervisor.stop_all()


def test_json_output_is_found_after_log_lines() -> None:
    """A command that logs before its --json document still yields the document."""
    assert parse_json_output('{"a": 1}') == {"a": 1}
    text = '2026-01-01 [info] global_conf_loaded x=1\n{\n  "id": "r",\n  "status": "approved"\n}\n'
    assert parse_json_output(text) == {"id": "r", "status": "approved"}
    with pytest.raises(ValueError):
        parse_json_output("no json here\n")


def test_progress_lines_and_the_spinner() -> None:
    """Off a terminal: one line per step with outcome and time, details indented, no spinner characters."""
    ticks = iter([0.0, 1.5, 2.0, 2.1, 3.0])
    plain = io.StringIO()
    progress = Progress(plain, 2, tty=False, clock=lambda: next(ticks))
    progress.begin(1, "Start the registry")
    progress.tick()
    progress.note("listening")
    progress.end("ok")
    progress.begin(2, "Call REST")
    progress.end("skipped", ["not available in this build: REST r1"])
    lines = plain.getvalue().splitlines()
    assert re.fullmatch(r"\[ 1/2\] Start the registry \.+ ok +1\.5s", lines[0])
    assert lines[1] == "        listening" and "skipped" in lines[2] and "\r" not in plain.getvalue()
    assert lines[3].strip() == "not available in this build: REST r1"
    assert progress.outcomes == {"ok": 1, "skipped": 1, "failed": 0}
    clock = iter(float(i) for i in range(100))
    terminal = io.StringIO()
    spinning = Progress(terminal, 1, tty=True, clock=lambda: next(clock))
    spinning.begin(1, "Wait")
    spinning.tick()
    spinning.end("FAILED", ["why"])
    assert "\r" in terminal.getvalue() and "FAILED" in terminal.getvalue()
    assert spinning.outcomes["failed"] == 1


def test_the_supervisor_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    """stop_all sends SIGTERM, and SIGKILL after the timeout; a process that died is reported with its log."""
    supervisor = Supervisor(tmp_path)
    stubborn = supervisor.start(
        "stubborn",
        [sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                               "print('ready', flush=True); time.sleep(60)"],
        tmp_path / "stubborn.log",
    )
    crashing = supervisor.start("crashing", [sys.executable, "-c", "print('bad config'); raise SystemExit(3)"],
                                tmp_path / "crashing.log")
    supervisor.wait_ready(stubborn, lambda: "ready" in (tmp_path / "stubborn.log").read_text(), timeout=30,
                          tick=lambda: None)
    crashing.process.wait(timeout=30)
    with pytest.raises(StepFailed) as failed:
        supervisor.check(crashing)
    assert "status 3" in failed.value.message and "bad config" in failed.value.details
    assert supervisor.dead() == [crashing]
    report = supervisor.stop_all(timeout=0.5)
    assert any("stubborn" in line and "killed" in line for line in report)
    assert gone(stubborn.pid) and supervisor.started == []


def test_the_supervisor_stops_one_process_and_forgets_it(tmp_path: Path) -> None:
    """stop ends one process (as the demo ends the management API it ran alone before init) and leaves the others
    to stop_all."""
    supervisor = Supervisor(tmp_path)
    script = "import time; print('ready', flush=True); time.sleep(60)"
    alone = supervisor.start("alone", [sys.executable, "-c", script], tmp_path / "alone.log")
    other = supervisor.start("other", [sys.executable, "-c", script], tmp_path / "other.log")
    supervisor.wait_ready(alone, lambda: "ready" in (tmp_path / "alone.log").read_text(), timeout=30,
                          tick=lambda: None)
    assert supervisor.stop(alone) == f"alone (pid {alone.pid}) stopped"
    assert gone(alone.pid) and supervisor.started == [other] and supervisor.dead() == []
    supervisor.stop_all()
    assert gone(other.pid)


def test_the_demo_refuses_a_busy_port(tmp_path: Path) -> None:
    """A port in use: the demo names it, starts nothing and exits 2."""
    base = free_base()
    workdir = tmp_path / "demo"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 10))
        squatter.listen()
        result = CliRunner().invoke(demo, ["--once", "--base-port", str(base), "--workdir", str(workdir)])
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{base + 10} (ss-tax client proxy)" in result.output
    assert "--base-port" in result.output and not workdir.exists()


def test_a_non_empty_working_directory_is_refused(tmp_path: Path) -> None:
    """The demo never writes into a directory that already holds something."""
    (tmp_path / "precious.txt").write_text("keep")
    result = CliRunner().invoke(demo, ["--once", "--base-port", str(free_base()), "--workdir", str(tmp_path)])
    assert result.exit_code == 2 and "not an empty directory" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_a_failed_step_is_reported_and_every_process_is_stopped(tmp_path: Path) -> None:
    """A step forced to fail after the registry started: the report names the step, the error and the logs, and
    the registry process is gone."""
    base = free_base()
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(demo, ["--once", "--base-port", str(base), "--workdir", str(workdir), "--fail-at",
                                       "anchor"])
    assert result.exit_code == 1, result.output
    assert "The demo stopped at step 6 (anchor): forced failure (--fail-at anchor)" in result.output
    assert f"Logs: {workdir / 'logs'}" in result.output and (workdir / "logs" / "registry.log").is_file()
    stopped = re.findall(r"registry \(pid (\d+)\) stopped", result.output)
    assert stopped and gone(int(stopped[0]))
    assert not port_in_use(base)


@pytest.mark.timeout(1200)  # a guard against a hang only: the demo bounds each of its own waits
def test_the_demo_runs_end_to_end_once(tmp_path: Path) -> None:
    """``fedbus demo --once``: every step passes (or is skipped only for a feature this build lacks), exit 0,
    also beside another federation on a busy machine: the demo picks its own free ports (``--base-port auto``)
    and, should another program take one after its check, says so (exit 2) and a new run picks again; ss-tax is set
    up with ``fedbus`` commands and ss-pop through its management API, each call in the commands log."""
    for attempt in range(3):
        workdir = tmp_path / f"demo-{attempt}"
        result = CliRunner().invoke(demo, ["--once", "--base-port", "auto", "--workdir", str(workdir)])
        if not (result.exit_code == 2 and "port in use by another program" in result.output):
            break
    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.output and "All steps done" in result.output
    assert "AccessDeniedFault: server.serverproxy.access_denied" in result.output
    assert "getPerson(personCode='38001010014'" in result.output
    assert "ss-tax console: https://127.0.0.1:" in result.output and "security servers: auditor / " in result.output
    # Only the steps whose features a build may lack can be skipped, and only saying so.
    lines = result.output.splitlines()
    for index, line in enumerate(lines):
        if re.search(r"\.\.\. skipped ", line) or re.search(r"\. skipped +\d", line):
            assert any(title in line for title in FEATURE_STEPS), line
            assert "not available in this build" in lines[index + 1], lines[index + 1]
    stopped = re.findall(r"\(pid (\d+)\) stopped", result.output)
    assert len(stopped) == 6 and all(gone(int(pid)) for pid in stopped)
    commands = (workdir / "logs" / "commands.log").read_text()
    assert commands.count("$ fedbus ") > 30
    # Both set-up paths ran: ss-tax through the CLI, ss-pop through its management API (X-Road's /api/v1).
    assert "$ fedbus server init --dir ss-tax " in commands and "$ fedbus server register --dir ss-tax " in commands
    assert "$ fedbus server init --dir ss-pop" not in commands and "$ fedbus server register --dir ss-pop" not in commands
    api_calls = re.findall(r"^(GET|POST|PUT) https://127\.0\.0\.1:\d+/api/v1(/\S*)\n", commands, re.MULTILINE)
    for method, path in (("POST", "/system/anchor"), ("POST", "/initialization"), ("POST", "/tokens/soft/keys-with-csrs"),
                         ("POST", "/token-certificates"), ("POST", "/clients"),
                         ("PUT", "/clients/DEMO:GOV:70000002:population/register")):
        assert (method, path) in api_calls, (method, path)
    assert any(m == "PUT" and re.fullmatch(r"/token-certificates/\w+/register", p) for m, p in api_calls)
    # Its services and the Tax Board's access rights too: descriptions by URL, service URLs, service clients.
    api_calls = re.findall(r"^(GET|POST|PUT|PATCH) https://127\.0\.0\.1:\d+/api/v1(/\S*)\n", commands, re.MULTILINE)
    assert ("POST", "/clients/DEMO:GOV:70000002:population/service-descriptions") in api_calls
    assert sum(1 for m, p in api_calls if m == "PATCH" and p.startswith("/services/")) == 5
    assert sum(1 for m, p in api_calls if m == "POST" and p.endswith("/service-clients")) == 4
    assert "$ fedbus server service add" not in commands and "$ fedbus server acl grant" not in commands
    assert "Set up the Tax Board's security server (fedbus CLI)" in result.output
    assert "Set up the Population Register's server (management API)" in result.output
