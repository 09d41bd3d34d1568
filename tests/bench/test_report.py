"""The benchmark's ratios, tables, JSON and profile summary (bench/report.py, bench/run.py), from made-up runs."""

from __future__ import annotations

import json
import math

import pytest

from bench.report import CaseResult, levers_table, ratios, results_table, to_json
from bench.run import top_frames
from bench.workload import request_for, rest_body, soap_body
from security_server.core.soap import parse_soap


def _run(path: str, rps: float, p50: float, cpu: dict[str, float], **extra: object) -> CaseResult:
    return CaseResult("soap", 1024, 50, path, rps=rps, p50_ms=p50, p99_ms=p50 * 2, requests=0 if math.isnan(rps) else int(rps * 10), seconds=10.0,
                      cpu_us=cpu, peak_rss_mib={k: 50.0 for k in cpu}, **extra)  # type: ignore[arg-type]


RUNS = [
    _run("direct", 10_000, 1.0, {"provider": 80}),
    _run("barehop", 2_000, 4.0, {"first": 250, "second": 250, "provider": 90}),
    _run("fedbus", 500, 10.0, {"first": 1_000, "second": 1_500, "provider": 100, "registry": 5}),
]


def test_ratios_compare_fedbus_with_both_references_of_the_same_case() -> None:
    """Throughput, CPU per server over per hop, and added p50 are taken from the runs of one case."""
    [found] = ratios(RUNS)
    assert found.rps_over_direct == pytest.approx(0.05)
    assert found.rps_over_barehop == pytest.approx(0.25)
    assert found.cpu_first_over_hop == pytest.approx(4.0)
    assert found.cpu_second_over_hop == pytest.approx(6.0)
    assert found.added_p50_ms == pytest.approx(9.0)


def test_incomplete_or_failed_cases_have_no_ratios() -> None:
    """A case missing a path, or whose fedbus run failed, gives no ratio row."""
    assert ratios(RUNS[:2]) == []
    failed = _run("fedbus", math.nan, math.nan, {}, failure="CalledProcessError")
    assert ratios([*RUNS[:2], failed]) == []


def test_table_and_json_carry_every_run_and_lever() -> None:
    """The Markdown table has a row per run with fedbus's ratios; the JSON is standard (no NaN) and complete."""
    lever = _run("fedbus", 600, 9.0, {"first": 900, "second": 1_400, "provider": 100}, label="pool 64")
    failed = CaseResult("rest", 102_400, 1, "fedbus", failure="TimeoutExpired")
    table = results_table([*RUNS, failed, lever])
    assert table.count("\n| SOAP 1 KiB c=50 |") == 3 and "| REST 100 KiB c=1 | fedbus | failed: TimeoutExpired" in table
    assert "0.050 | 0.25 | 4.0× / 6.0× | 9.00" in table
    assert "| pool 64 | SOAP 1 KiB c=50 | 1 | 600 |" in levers_table([*RUNS, lever])
    second = _run("fedbus", 700, 8.0, {"first": 1_100, "second": 1_150, "provider": 100}, label="NORMAL")
    assert "| +0 % |" in levers_table([lever, second]) and "| -2 % |" in levers_table([lever, second])
    document = json.loads(json.dumps(to_json([*RUNS, failed, lever], machine={"cpus": 2}), allow_nan=False))
    assert len(document["runs"]) == 4 and len(document["levers"]) == 1 and len(document["ratios"]) == 1
    assert document["runs"][3]["rps"] is None and document["machine"] == {"cpus": 2}


def test_top_frames_counts_self_and_inclusive_samples_per_function() -> None:
    """py-spy's collapsed stacks give each function's share on top and anywhere on the stack, lines merged."""
    collapsed = "\n".join([
        "process 1:\"python\";thread (0x1);main (a.py:1);handle (b.py:10);sign (c.py:5) 6",
        "process 1:\"python\";thread (0x1);main (a.py:1);handle (b.py:12);parse (d.py:7) 3",
        "process 1:\"python\";thread (0x1);main (a.py:2) 1",
    ])
    found = top_frames(collapsed)
    assert found["samples"] == 10
    assert found["self"][0] == ("sign (c.py)", 0.6)
    assert dict(found["inclusive"])["handle (b.py)"] == 0.9
    assert dict(found["inclusive"])["main (a.py)"] == 1.0


@pytest.mark.parametrize("size", [1024, 100 * 1024])
def test_requests_have_the_asked_size_and_parse(size: int) -> None:
    """The SOAP request is a valid X-Road envelope and both bodies are exactly the asked size."""
    body = soap_body(size)
    assert len(body) == size and len(rest_body(size)) == size
    assert parse_soap(body, "text/xml", max_bytes=size).header is not None
    fedbus_rest = request_for("rest", "fedbus", size)
    assert fedbus_rest.path.startswith("/r1/DEMO/GOV/70000002/examples/benchRest/")
    assert fedbus_rest.headers["X-Road-Client"] == "DEMO/GOV/70000001/tax-app"


def test_lever_rows_are_medians_of_their_runs() -> None:
    """Repeated runs of one lever are shown once, with the median figures and the number of runs."""
    runs = [_run("fedbus", rps, 5.0, {"first": cpu, "second": cpu, "provider": 100}, label="NORMAL")
            for rps, cpu in ((100, 1_000), (300, 3_000), (200, 2_000))]
    table = levers_table(runs)
    assert "| NORMAL | SOAP 1 KiB c=50 | 3 | 200 | 5.00 | 10.00 | 2,000 / 2,000 / 100 | +0 % |" in table
