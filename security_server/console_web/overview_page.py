"""The Overview page: health checks with their verdicts, certificates (days to expiry, OCSP age), the global
configuration's age, the timestamp backlog, and the traffic of the last hour, day or week.

The health verdict is asked of the running server's health checker on the reactor thread (the same cached checks
``fedbus server status`` reads over the health port); everything else is read in a worker thread from the stores
``fedbus server status`` reads: the token set, the message-log shards, ``opmon.db`` and the server's diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from twisted.internet import defer

from security_server.admin.server_dir import ServerDirectory
from security_server.console_web.chart import traffic_svg
from security_server.console_web.markup import Markup, definitions, esc, status_text, table
from security_server.console_web.traffic import TrafficView, Window, traffic_view
from security_server.core.config import LayeredConfig
from security_server.core.errors import BusError
from security_server.core.opmon.query import RecordQuery
from security_server.core.opmon.record import OperationalRecord
from security_server.edge.health_checker import CheckResult, Status, Verdict
from security_server.management.diagnostics import Diagnostic, Diagnostics
from security_server.messagelog.shards import shard_paths
from security_server.messagelog.store import MessageLogStore
from security_server.monitoring import OPMON_DATABASE
from security_server.opmon.store import OpmonStore
from security_server.signer.token import KeyInfo, KeyKind
from security_server.signer.token_set import TokenSet

BUNDLE_NAME = "globalconf.bundle"
MAX_RECORDS = 1_000_000


class HealthSource(Protocol):
    """The running server's health checks (:class:`~security_server.edge.health_checker.HealthChecker`)."""

    maintenance: bool

    def verdict(self) -> defer.Deferred[Verdict]:
        """Run (or reuse) every check."""

    def cached(self) -> dict[str, CheckResult]:
        """Each check's cached result."""


@dataclass(frozen=True, slots=True)
class Health:
    """The verdict and each check's result (None: the API runs without a server)."""

    verdict: Verdict
    checks: Mapping[str, CheckResult]


@dataclass(frozen=True, slots=True)
class CertificateRow:
    """One certificate on the tokens, with its OCSP status when the server knows it."""

    kind: str
    owner: str
    subject: str
    not_after: datetime
    ocsp: Diagnostic | None


@dataclass(frozen=True, slots=True)
class Backlog:
    """Records waiting for a timestamp, across the shards, and the time of the oldest."""

    waiting: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the page shows."""

    now: datetime
    health: Health | None
    certificates: tuple[CertificateRow, ...]
    certificates_error: str | None
    globalconf: Diagnostic | None
    globalconf_stored: datetime | None
    timestamping: tuple[tuple[str, Diagnostic], ...]
    backlog: Backlog
    traffic: TrafficView


def ask_health(source: HealthSource | None) -> defer.Deferred[Health | None]:
    """The verdict and the checks' results (on the reactor thread)."""
    if source is None:
        return defer.succeed(None)
    return source.verdict().addCallback(lambda verdict: Health(verdict, dict(sorted(source.cached().items()))))


def _certificates(server_dir: ServerDirectory, config: LayeredConfig | None,
                  diagnostics: Diagnostics | None) -> tuple[tuple[CertificateRow, ...], str | None]:
    try:
        tokens = server_dir.tokens(config) if config is not None else TokenSet([server_dir.soft_token()])
        keys: Sequence[KeyInfo] = tokens.list()
    except BusError as err:
        return (), err.message
    by_ca: dict[str, Diagnostic] = {}
    if diagnostics is not None:
        by_ca = {found.ca: found.diagnostic for found in diagnostics.ocsp()}
    rows = tuple(
        CertificateRow(
            "authentication" if key.kind is KeyKind.AUTH else "signing", key.owner.to_display(),
            key.cert.subject.rfc4514_string(), key.cert.not_valid_after_utc,
            by_ca.get(key.cert.issuer.rfc4514_string()),
        )
        for key in keys
        if key.cert is not None
    )
    return rows, None


def _backlog(directory: Path) -> Backlog:
    waiting, oldest = 0, None
    for _, path in shard_paths(directory):
        with MessageLogStore(path) as store:
            waiting += store.untimestamped_count()
            found = store.oldest_untimestamped_time()
        if found is not None and (oldest is None or found < oldest):
            oldest = found
    return Backlog(waiting, oldest)


def _opmon_records(directory: Path, since_s: int, until_s: int) -> list[OperationalRecord]:
    path = directory / OPMON_DATABASE
    if not path.exists():
        return []
    store = OpmonStore(path)
    try:
        # Records are stored within seconds of their exchange: a minute's margin finds every one that started in
        # the window (as status_view.recent_traffic reads them); traffic_view keeps those by their request time.
        return store.query(RecordQuery(
            records_from=max(0, since_s - 60), records_to=until_s + 60, participant=None, provider=None,
            output_fields=frozenset(), public_only=False, limit=MAX_RECORDS,
        ))
    finally:
        store.close()


def read_overview(server_dir: ServerDirectory, config: LayeredConfig | None, diagnostics: Diagnostics | None,
                  health: Health | None, window: Window, now: datetime) -> Overview:
    """Read the stores (in a worker thread) for the page."""
    directory = server_dir.path
    certificates, certificates_error = _certificates(server_dir, config, diagnostics)
    bundle = directory / BUNDLE_NAME
    stored = datetime.fromtimestamp(bundle.stat().st_mtime, tz=UTC) if bundle.exists() else None
    now_s = int(now.timestamp())
    records = _opmon_records(directory, now_s - window.seconds, now_s)
    return Overview(
        now, health, certificates, certificates_error,
        diagnostics.globalconf() if diagnostics is not None else None, stored,
        tuple((t.url, t.diagnostic) for t in diagnostics.timestamping()) if diagnostics is not None else (),
        _backlog(directory), traffic_view(records, window, int(now.timestamp() * 1000)),
    )


# --- rendering ------------------------------------------------------------------------------------------------


def _age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "unknown"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


def _when(moment: datetime | None) -> str:
    return "unknown" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_VERDICTS = {Status.HEALTHY: "healthy", Status.FAILED: "failing", Status.MAINTENANCE: "in maintenance"}


def _health_section(health: Health | None) -> Markup:
    if health is None:
        return Markup('<p class="notice">The health checks run in the security server; this management API runs '
                      "without one, so there is no verdict to show.</p>")
    verdict = health.verdict
    ok = verdict.status is Status.HEALTHY
    head = Markup(f'<p id="health-verdict">Verdict: {status_text(ok, good="healthy", bad=_VERDICTS[verdict.status])}'
                  + (f" — {esc(verdict.reason)}" if verdict.reason else "") + "</p>")
    rows = [(name, status_text(result.ok, good="ok"), result.reason or "—") for name, result in health.checks.items()]
    return Markup(head + table("Health checks", ["Check", "Result", "Reason"], rows, empty="no check has run yet"))


def _certificates_section(overview: Overview) -> Markup:
    if overview.certificates_error is not None:
        return Markup(f'<p class="notice">The tokens cannot be read: {esc(overview.certificates_error)}</p>')
    rows = []
    for cert in overview.certificates:
        days = (cert.not_after - overview.now).days
        ocsp = cert.ocsp
        rows.append((
            cert.kind, cert.owner, cert.subject, _when(cert.not_after),
            status_text(days >= 0, good=str(days), bad=f"expired ({days})"),
            "not known" if ocsp is None else str(ocsp.status),
            "—" if ocsp is None or ocsp.prev_update is None else _age(ocsp.prev_update, overview.now),
        ))
    return table("Certificates", ["Use", "Owner", "Subject", "Expires", "Days left", "OCSP", "OCSP age"], rows,
                 empty="no certificate on the tokens")


def _globalconf_section(overview: Overview) -> Markup:
    conf = overview.globalconf
    items: list[tuple[str, object]] = []
    if conf is not None:
        items += [("Status", str(conf.status)), ("Last updated", _when(conf.prev_update)),
                  ("Age", _age(conf.prev_update, overview.now)), ("Next update", _when(conf.next_update))]
        if conf.error_code:
            items.append(("Error", f"{conf.error_code}: {conf.error_detail or ''}"))
    else:
        items += [("Stored copy", _when(overview.globalconf_stored)),
                  ("Age", _age(overview.globalconf_stored, overview.now))]
    return definitions(items)


def _backlog_section(overview: Overview) -> Markup:
    backlog = overview.backlog
    items: list[tuple[str, object]] = [
        ("Records waiting for a timestamp", backlog.waiting),
        ("Oldest waiting since", "—" if backlog.oldest is None else
         f"{_when(backlog.oldest)} ({_age(backlog.oldest, overview.now)} ago)"),
    ]
    services = table("Time-stamping services", ["URL", "Status", "Last update", "Error"], [
        (url, str(d.status), _when(d.prev_update), d.error_code or "—") for url, d in overview.timestamping
    ], empty="none known to the running server")
    return Markup(definitions(items) + services)


def _traffic_section(view: TrafficView) -> Markup:
    links = "".join(
        f'<li><a href="/console/overview?window={w.value}"' + (' aria-current="true"' if w is view.window else "")
        + f">{esc(w.label.capitalize())}</a></li>"
        for w in Window
    )
    latency = view.latency
    latency_rows = [] if latency is None else [(latency.count, latency.p50, latency.p95, latency.p99, latency.max)]
    bucket_rows = [
        (_when(datetime.fromtimestamp(b.start_ms / 1000, tz=UTC)), b.succeeded, b.failed)
        for b in view.buckets if b.succeeded or b.failed
    ]

    def busiest(caption: str, what: str, rows: Sequence[Any]) -> Markup:
        return table(caption, [what, "Succeeded", "Failed", "Total"],
                     [(r.name, r.succeeded, r.failed, r.total) for r in rows], empty="no exchange")

    return Markup(
        f'<nav aria-label="Traffic window"><ul class="legend">{links}</ul></nav>'
        f'<figure class="chart">{traffic_svg(view)}<figcaption>Exchanges per minute in the {esc(view.window.label)}'
        f" (each bar averages {view.window.bucket_seconds // 60} min): "
        f'<span class="swatch swatch-ok" aria-hidden="true"></span>succeeded {view.succeeded}, '
        f'<span class="swatch swatch-failed" aria-hidden="true"></span>failed {view.failed}.</figcaption></figure>'
        + table("Latency (ms, request in to response out)", ["Exchanges", "p50", "p95", "p99", "Max"], latency_rows,
                empty="no exchange with both times")
        + busiest("Busiest services", "Service", view.services)
        + busiest("Busiest clients", "Client", view.clients)
        + "<details><summary>The chart's figures</summary>"
        + table("Exchanges per bar", ["From", "Succeeded", "Failed"], bucket_rows, empty="no exchange")
        + "</details>"
    )


def overview_body(overview: Overview) -> Markup:
    """The page's content."""
    return Markup(
        f'<p>As of {esc(_when(overview.now))}.</p>'
        '<section aria-labelledby="h-health"><h2 id="h-health">Health</h2>'
        + _health_section(overview.health) + "</section>"
        '<section aria-labelledby="h-certs"><h2 id="h-certs">Certificates</h2>'
        + _certificates_section(overview) + "</section>"
        '<section aria-labelledby="h-conf"><h2 id="h-conf">Global configuration</h2>'
        + _globalconf_section(overview) + "</section>"
        '<section aria-labelledby="h-ts"><h2 id="h-ts">Timestamping</h2>'
        + _backlog_section(overview) + "</section>"
        '<section aria-labelledby="h-traffic"><h2 id="h-traffic">Traffic</h2>'
        + _traffic_section(overview.traffic) + "</section>"
    )
