"""bench/stalls.py's reading of latencies and log events: no federation is started here."""

from __future__ import annotations

import json
from pathlib import Path

from bench.stalls import attribute, logged_events, percentile


def test_percentiles_pick_the_nearest_rank() -> None:
    """p50 of 1..100 is 51 (rank 49.5 rounded up), p99 is 99, p100 the maximum."""
    ordered = [float(n) for n in range(1, 101)]
    assert (percentile(ordered, 0.5), percentile(ordered, 0.99), percentile(ordered, 1.0)) == (51.0, 99.0, 100.0)


def test_a_slow_request_is_set_against_the_events_around_it() -> None:
    """A request slower than 3x the p50 counts the events from 0.3 s before it to its end; one with none near is
    unexplained; events outside the run are not counted."""
    latencies = [(100.0 + n, 10.0) for n in range(20)] + [(130.0, 80.0), (140.0, 50.0)]
    events = [(129.8, "ss-tax", "timestamp_stored"), (130.05, "registry", "configuration_published"),
              (135.0, "ss-pop", "global_conf_applied"), (10.0, "ss-tax", "gc_tuned")]
    found = attribute(latencies, events, 3.0)
    assert found["p50_ms"] == 10.0 and found["max_ms"] == 80.0
    assert found["slow"]["count"] == 2 and found["slow"]["with_no_event_near"] == 1
    assert dict(found["slow"]["events_near"]) == {"ss-tax timestamp_stored": 1, "registry configuration_published": 1}
    assert "ss-tax gc_tuned" not in dict(found["events_during_run"])


def test_log_events_are_read_from_json_lines_without_the_per_request_ones(tmp_path: Path) -> None:
    """Structured lines with a timestamp are events; per-request summaries and other lines are not."""
    log = tmp_path / "ss-tax.log"
    log.write_text("\n".join([
        json.dumps({"event": "timestamp_stored", "timestamp": "2026-12-08T01:14:20.208187Z"}),
        json.dumps({"event": "soap_request_answered", "timestamp": "2026-12-08T01:14:20.3Z"}),
        json.dumps({"event": "no time"}),
        "Traceback (most recent call last):",
    ]), encoding="utf-8")
    (event,) = logged_events(log, "ss-tax")
    assert event[1:] == ("ss-tax", "timestamp_stored") and abs(event[0] - 1796692460.208187) < 1e-3
