"""Load generation with wrk and per-process CPU and memory accounting from /proc.

CPU time per exchange is the stable figure on a shared host (PERFORMANCE-NOTES.md B.0): utime+stime of each server
process read before and after a run, divided by the requests completed. Peak RSS is VmHWM.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and of its live descendants (a multi-process server's workers), in seconds."""
    return sum(_own_cpu_seconds(one) for one in [pid, *_descendants(pid)])


def _own_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0  # a descendant that just exited
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        one = todo.pop()
        found.append(one)
        todo += children.get(one, [])
    return found


def peak_rss_kib(pid: int) -> int:
    """The peak resident set size of ``pid`` (VmHWM), KiB."""
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else 0


def rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` now (VmRSS), KiB."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else 0


@dataclass
class LoadResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)


_LUA = """
wrk.method = "{method}"
wrk.body = io.open("{body_file}", "rb"):read("*a")
{headers}
"""


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _duration_ms(text: str) -> float:
    """wrk's latency figures ("456.00us", "1.23ms", "1.02s") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def run_wrk(
    url: str,
    *,
    method: str,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    seconds: int,
    processes: dict[str, int],
    wrk_cpus: str | None = None,
) -> LoadResult:
    """Drive ``url`` with wrk for ``seconds`` at ``connections`` and account CPU of ``processes`` (name -> pid).

    ``wrk_cpus`` (e.g. "1") pins wrk to those CPUs with taskset. wrk is killed if it overruns ``seconds`` by a
    minute (its own ``-d`` and ``--timeout`` normally end it first).
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (make bench installs it with apt-get)")
    with tempfile.TemporaryDirectory() as work:
        body_file = Path(work) / "body"
        body_file.write_bytes(body)
        header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        script = Path(work) / "request.lua"
        script.write_text(_LUA.format(method=method, body_file=body_file, headers=header_lines))
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        pin = ["taskset", "-c", wrk_cpus] if wrk_cpus else []
        completed = subprocess.run(
            [*pin, wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script), url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        )
        after = {name: cpu_seconds(pid) for name, pid in processes.items()}
    result = parse_wrk(completed.stdout)
    for name, pid in processes.items():
        result.cpu_us_per_request[name] = (after[name] - before[name]) * 1e6 / result.requests if result.requests else float("nan")
        result.peak_rss_mib[name] = peak_rss_kib(pid) / 1024
    return result


def parse_wrk(out: str) -> LoadResult:
    """What wrk's ``--latency`` report says: requests, duration, p50/p99 and errors (no process figures)."""
    total = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    if total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    requests = int(total.group(1))
    elapsed = float(total.group(2)) * (60 if total.group(3) == "m" else 1)
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)\s*$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return LoadResult(
        requests=requests,
        seconds=elapsed,
        rps=requests / elapsed if elapsed else 0.0,
        p50_ms=_duration_ms(latency["50"]) if "50" in latency else float("nan"),
        p99_ms=_duration_ms(latency["99"]) if "99" in latency else float("nan"),
        errors=(int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    )
