"""The traffic chart as SVG drawn on the server: one stacked bar per bucket (succeeded below, failed above).

Chosen over a JavaScript chart library: no vendored script to keep up to date, nothing to build, the page works
with scripts off and under a CSP without ``script-src``, and tests read the bars from the HTML. It is an image
with a title and description for screen readers, each bar has a ``<title>`` (its time and counts), and the same
figures follow as a table.
"""

from __future__ import annotations

from datetime import UTC, datetime

from security_server.console_web.markup import Markup, esc
from security_server.console_web.traffic import TrafficView

WIDTH = 720
HEIGHT = 240
LEFT = 48
BOTTOM = 28
TOP = 12


def _time(ms: int, with_date: bool) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%m-%d %H:%M" if with_date else "%H:%M")


def _per_minute(count: int, bucket_seconds: int) -> float:
    return count * 60 / bucket_seconds


def traffic_svg(view: TrafficView) -> Markup:
    """The chart of ``view``: exchanges per minute, averaged over each bar's bucket, by result."""
    seconds = view.window.bucket_seconds
    buckets = view.buckets
    peak = max((_per_minute(b.succeeded + b.failed, seconds) for b in buckets), default=0.0)
    scale_top = max(1.0, peak)
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - TOP - BOTTOM
    bar_w = plot_w / len(buckets)
    with_date = view.window.seconds > 86_400
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' role="img" aria-labelledby="chart-title chart-desc" id="traffic-chart"'
        f' data-succeeded="{view.succeeded}" data-failed="{view.failed}">',
        f'<title id="chart-title">Exchanges per minute, {esc(view.window.label)}, by result</title>',
        f'<desc id="chart-desc">{view.succeeded} succeeded and {view.failed} failed in the {esc(view.window.label)};'
        f" one bar per {seconds // 60} minutes; the busiest bar averaged {peak:.2f} exchanges per minute.</desc>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{scale_top:.1f}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for index, anchor in ((0, "start"), (len(buckets) // 2, "middle"), (len(buckets) - 1, "end")):
        x = LEFT + (index + (1 if anchor == "end" else 0)) * bar_w
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                     f"{esc(_time(buckets[index].start_ms, with_date))}</text>")
    for index, bucket in enumerate(buckets):
        if not bucket.succeeded and not bucket.failed:
            continue
        x = LEFT + index * bar_w
        label = esc(f"{_time(bucket.start_ms, True)} UTC: {bucket.succeeded} succeeded, {bucket.failed} failed")
        base: float = TOP + plot_h
        for count, kind in ((bucket.succeeded, "ok"), (bucket.failed, "failed")):
            if not count:
                continue
            height = max(1.0, _per_minute(count, seconds) / scale_top * plot_h)
            base -= height
            parts.append(
                f'<rect class="bar-{kind}" x="{x:.1f}" y="{base:.1f}" width="{max(1.0, bar_w - 1):.1f}"'
                f' height="{height:.1f}" data-count="{count}"><title>{label}</title></rect>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
