"""The Overview's traffic figures and chart from operational records: buckets, percentiles, busiest, SVG."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from security_server.console_web.chart import traffic_svg
from security_server.console_web.markup import Markup, esc, table
from security_server.console_web.traffic import Window, percentile, traffic_view
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.opmon.record import OperationalRecord, SecurityServerType

NOW_MS = 1_800_000_000_000 + 30_000
CLIENT = ClientId("EE", "GOV", "1", "a")
OTHER = ClientId("EE", "GOV", "2", "b")
SERVICE = ServiceId(ClientId("EE", "GOV", "3", "p"), "get", "v1")


def record(at_ms: int, ok: bool = True, took: int | None = 100, client: ClientId = CLIENT) -> OperationalRecord:
    """One client-side record starting at ``at_ms``."""
    return OperationalRecord(SecurityServerType.CLIENT, ok, request_in_ts=at_ms,
                             response_out_ts=None if took is None else at_ms + took, client=client, service=SERVICE)


def test_the_hour_has_sixty_minute_buckets_ending_with_the_current_one() -> None:
    """Records land in their minute; older ones and ones without a request time are left out."""
    view = traffic_view([record(NOW_MS), record(NOW_MS - 60_000, ok=False), record(NOW_MS - 3_700_000),
                         OperationalRecord(SecurityServerType.CLIENT, True)], Window.HOUR, NOW_MS)
    assert len(view.buckets) == 60
    assert (view.buckets[-1].succeeded, view.buckets[-2].failed) == (1, 1)
    assert (view.succeeded, view.failed) == (1, 1)
    assert view.buckets[-1].start_ms <= NOW_MS < view.buckets[-1].start_ms + 60_000


def test_day_and_week_use_wider_buckets() -> None:
    """A day is 96 quarter-hours, a week 168 hours; an unknown window name means the hour."""
    assert len(traffic_view([], Window.DAY, NOW_MS).buckets) == 96
    assert len(traffic_view([], Window.WEEK, NOW_MS).buckets) == 168
    assert Window.parse("fortnight") is Window.HOUR and Window.parse("week") is Window.WEEK


def test_latency_percentiles_and_the_busiest_clients() -> None:
    """Nearest-rank percentiles over records with both times; clients ranked by their exchanges."""
    records = [record(NOW_MS - i * 1000, took=10 * (i + 1)) for i in range(100)]
    records += [record(NOW_MS, took=None, client=OTHER)]
    view = traffic_view(records, Window.HOUR, NOW_MS)
    assert view.latency is not None
    assert (view.latency.count, view.latency.p50, view.latency.p95, view.latency.p99, view.latency.max) == (
        100, 500, 950, 990, 1000)
    assert [(c.name, c.total) for c in view.clients] == [(CLIENT.to_display(), 100), (OTHER.to_display(), 1)]
    assert view.services[0].name == "SERVICE:EE/GOV/3/p/get/v1"


@given(st.lists(st.integers(0, 10_000), min_size=1), st.floats(0.01, 1.0))
def test_a_percentile_is_one_of_the_values_and_grows_with_the_fraction(values: list[int], fraction: float) -> None:
    """The percentile is a member of the data, at least the minimum and at most the maximum."""
    ordered = sorted(values)
    found = percentile(ordered, fraction)
    assert found in ordered and ordered[0] <= found <= ordered[-1]
    assert percentile(ordered, 1.0) == ordered[-1]


def test_the_chart_draws_one_stack_per_busy_bucket_with_text_for_screen_readers() -> None:
    """Each non-empty bucket is a bar (failed stacked on succeeded) with a title; the SVG is a labelled image."""
    view = traffic_view([record(NOW_MS), record(NOW_MS, ok=False), record(NOW_MS - 120_000)], Window.HOUR, NOW_MS)
    svg = traffic_svg(view)
    assert svg.count('class="bar-ok"') == 2 and svg.count('class="bar-failed"') == 1
    assert 'role="img" aria-labelledby="chart-title chart-desc"' in svg
    assert "2 succeeded and 1 failed in the last hour" in svg
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 3


def test_escaping_leaves_markup_alone_and_escapes_everything_else() -> None:
    """esc escapes both quotes and angle brackets once; tables escape every cell that is not Markup."""
    assert esc("<a href='x'>\"") == "&lt;a href=&#x27;x&#x27;&gt;&quot;"
    assert esc(esc("<b>")) == "&lt;b&gt;"
    cells = table("T", ["<h>"], [["<td>"], [Markup("<em>ok</em>")]])
    assert "&lt;h&gt;" in cells and "&lt;td&gt;" in cells and "<em>ok</em>" in cells
