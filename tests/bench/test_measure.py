"""The benchmark's reading of wrk's report (bench/measure.py): no wrk is run here."""

from __future__ import annotations

import math
import os

import pytest

from bench.measure import cpu_seconds, parse_wrk, peak_rss_kib, rss_kib

REPORT = """Running 2s test @ http://127.0.0.1:19135/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.29ms    2.10ms  25.02ms   84.07%
    Req/Sec     4.77k   300.00     5.10k    80.00%
  Latency Distribution
     50%    9.29ms
     75%   10.01ms
     90%   11.50ms
     99%   25.02ms
  9547 requests in 2.01s, 1.23MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:   4747.00
Transfer/sec:    612.00KB
"""


def test_report_gives_requests_rate_percentiles_and_errors() -> None:
    """Requests, duration, p50/p99 in ms and errors (non-2xx plus socket errors) are read from the report."""
    result = parse_wrk(REPORT)
    assert result.requests == 9547
    assert result.seconds == pytest.approx(2.01)
    assert result.rps == pytest.approx(9547 / 2.01)
    assert result.p50_ms == pytest.approx(9.29)
    assert result.p99_ms == pytest.approx(25.02)
    assert result.errors == 6


def test_latency_units_are_converted_to_milliseconds() -> None:
    """wrk's us, ms and s latencies (seconds with a trailing space) become milliseconds; a missing one is NaN."""
    text = REPORT.replace("     50%    9.29ms", "     50%  456.00us").replace("     99%   25.02ms", "     99%    1.02s ")
    result = parse_wrk(text)
    assert result.p50_ms == pytest.approx(0.456)
    assert result.p99_ms == pytest.approx(1020.0)
    assert math.isnan(parse_wrk(REPORT.replace("     99%   25.02ms\n", "")).p99_ms)


def test_minutes_and_clean_runs() -> None:
    """A run reported in minutes is converted to seconds; a run without error lines has no errors."""
    text = REPORT.replace("in 2.01s", "in 1.00m").replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "")
    result = parse_wrk(text.replace("  Non-2xx or 3xx responses: 3\n", ""))
    assert result.seconds == pytest.approx(60.0)
    assert result.errors == 0


def test_unreadable_report_is_an_error() -> None:
    """Output without the requests line raises rather than reporting zeros."""
    with pytest.raises(RuntimeError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_process_figures_come_from_proc() -> None:
    """CPU seconds and RSS figures of a live process (this one) are read from /proc."""
    pid = os.getpid()
    sum(range(200_000))  # some CPU time for this process, whatever ran before
    assert cpu_seconds(pid) > 0
    resident = rss_kib(pid)  # read before the peak: the peak read later is at least this
    assert peak_rss_kib(pid) >= resident > 0



def test_cpu_seconds_counts_live_descendants() -> None:
    """The processes a server's CPU is read from include its live children (a multi-process server's workers)."""
    import os
    import subprocess
    import sys

    from bench.measure import _descendants

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in _descendants(os.getpid())
    finally:
        child.kill()
        child.wait()
