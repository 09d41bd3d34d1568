"""The Audit pages: search the message log, a record's detail, its ASiC-E container, and verifying a container.

They read the message log the way ``fedbus audit`` does (security_server/audit_cli.py): every shard's
:meth:`~security_server.messagelog.store.MessageLogStore.search` for the list, ``get`` and ``timestamp_of`` for a
record, :func:`~security_server.messagelog.asic_export.record_container` for its container, and
:func:`~security_server.core.evidence.verify_evidence` with the server's verification configuration
(``audit_cli.server_verification_files``) for the verdict, shown check by check as ``fedbus audit verify
container`` prints it. Nothing here changes a record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from security_server.console_web.markup import Markup, definitions, esc, status_text, table
from security_server.core.asic import CheckStatus
from security_server.core.errors import BusError, InvalidClientIdentifier
from security_server.core.evidence import EvidenceReport, VerificationConf, read_verification_conf, verify_evidence
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.logchain import Direction, LogRecord
from security_server.core.soap import SoapHeader, parse_soap
from security_server.messagelog.asic_export import record_container, record_container_name
from security_server.messagelog.shards import shard_path, shard_paths
from security_server.messagelog.store import MessageLogStore, RecordSummary, RecordTimestamp

MAX_RESULTS = 200
MAX_BODY_SHOWN = 256 * 1024
MAX_SHARD = 999_999


# --- search ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criteria:
    """The search form's fields as given, what the store is asked, and each field's error."""

    given: Mapping[str, str]
    query: Mapping[str, Any]
    errors: Mapping[str, str]

    @property
    def asked(self) -> bool:
        """Whether the form was submitted (any field given)."""
        return any(self.given.values())


FIELDS = ("query_id", "client", "service", "user_id", "since", "until", "result")


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_criteria(args: Mapping[str, str]) -> Criteria:
    """The store's search arguments from the form (the CLI's rules: display-form identifiers, a trailing ``/``
    for a prefix, ISO 8601 times in UTC unless a zone is given)."""
    given = {name: args.get(name, "").strip() for name in FIELDS}
    query: dict[str, Any] = {"limit": MAX_RESULTS}
    errors: dict[str, str] = {}
    if given["query_id"]:
        query["query_id"] = given["query_id"]
    for name, parse, what in (("client", ClientId.parse_display, "client identifier"),
                              ("service", ServiceId.parse_display, "service identifier")):
        text = given[name]
        if not text:
            continue
        if text.endswith("/"):
            query[name] = text
            continue
        try:
            query[name] = str(parse(text))
        except InvalidClientIdentifier as err:
            errors[name] = f"not a {what}: {err.message}"
    if given["user_id"]:
        query["user_id"] = given["user_id"]
    for name in ("since", "until"):
        if given[name]:
            try:
                query[name] = _time(given[name])
            except ValueError:
                errors[name] = "not an ISO 8601 time (e.g. 2026-12-07T18:00:00Z)"
    if given["result"] in ("succeeded", "failed"):
        query["succeeded"] = given["result"] == "succeeded"
    return Criteria(given, query, errors)


def search(directory: Path, criteria: Criteria) -> list[tuple[int, RecordSummary]]:
    """Every shard's matches, in time order across shards (one shard: chain order), at most :data:`MAX_RESULTS`."""
    found: list[tuple[int, RecordSummary]] = []
    shards = shard_paths(directory)
    for index, path in shards:
        with MessageLogStore(path) as store:
            found += [(index, summary) for summary in store.search(**criteria.query)]
    if len(shards) > 1:
        found.sort(key=lambda item: (item[1].time, item[0], item[1].id))
    return found[:MAX_RESULTS]


def _field(name: str, label: str, criteria: Criteria, hint: str) -> str:
    error = criteria.errors.get(name)
    described = f"{name}-hint" + (f" {name}-error" if error else "")
    return (
        f'<div><label for="{name}">{esc(label)}</label>'
        f'<input type="text" id="{name}" name="{name}" value="{esc(criteria.given.get(name, ""))}"'
        f' aria-describedby="{described}"' + (' aria-invalid="true"' if error else "") + ">"
        f'<small id="{name}-hint">{esc(hint)}</small>'
        + (f'<p class="error" id="{name}-error">{esc(error)}</p>' if error else "") + "</div>"
    )


def search_body(criteria: Criteria, results: Sequence[tuple[int, RecordSummary]] | None, xsrf: str) -> Markup:
    """The search form, the results (when searched) and the form to verify a container file."""
    result = criteria.given.get("result", "")
    options = "".join(
        f'<option value="{value}"' + (" selected" if value == result else "") + f">{label}</option>"
        for value, label in (("", "any"), ("succeeded", "succeeded"), ("failed", "failed"))
    )
    form = (
        '<form class="search" method="get" action="/console/audit" role="search" aria-label="Message log">'
        + _field("query_id", "Message id", criteria, "The X-Road id header / X-Road-Id.")
        + _field("client", "Client", criteria, "e.g. SUBSYSTEM:EE/GOV/70000310/consumer; end with / for a prefix.")
        + _field("service", "Service", criteria, "e.g. SERVICE:EE/GOV/70000311/provider/getRandom/v1, or a prefix/.")
        + _field("user_id", "User id", criteria, "The end user the exchange names (SOAP userId, X-Road-UserId).")
        + _field("since", "From", criteria, "ISO 8601, UTC unless a zone is given (inclusive).")
        + _field("until", "Until", criteria, "ISO 8601 (exclusive).")
        + f'<div><label for="result">Result</label><select id="result" name="result">{options}</select></div>'
        + '<div><button type="submit">Search</button></div></form>'
    )
    listing = Markup("")
    if results is not None:
        rows = [
            (Markup(f'<a href="/console/audit/records/{index}/{s.id}">{index}:{s.id}</a>'),
             _when(s.time), s.query_id, s.direction.value, s.client, s.service, s.user_id or "—",
             "ok" if s.succeeded else f"fault {s.fault_code or ''}".strip(),
             "yes" if s.timestamp_id else "no", "yes" if s.archived else "no")
            for index, s in results
        ]
        listing = Markup(f'<h2 id="h-results">Records ({len(rows)})</h2>' + table(
            "Matching records", ["Record", "Time", "Message id", "Direction", "Client", "Service", "User id", "Result",
                                 "Timestamped", "Archived"], rows, empty="no record matches"))
    upload = (
        '<h2 id="h-verify">Verify a container</h2>'
        '<form method="post" action="/console/audit/verify" enctype="multipart/form-data">'
        f'<input type="hidden" name="_xsrf" value="{esc(xsrf)}">'
        '<label for="container">ASiC-E container (.asice)</label>'
        '<input type="file" id="container" name="container" accept=".asice,application/vnd.etsi.asic-e+zip" required>'
        ' <button type="submit">Verify</button></form>'
    )
    errors = ""
    if criteria.errors:
        errors = '<p class="error" role="alert">Some fields need correcting; see the messages below them.</p>'
    return Markup(errors + form + listing + upload)


# --- one record -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordDetail:
    """A record, its timestamp and its header fields (None when the message is not SOAP)."""

    shard: int
    record: LogRecord
    timestamp: RecordTimestamp | None
    header: SoapHeader | None
    header_lines: tuple[tuple[str, str], ...] = field(default=())


def _rest_header_lines(message: bytes) -> tuple[tuple[str, str], ...]:
    text = message[:MAX_BODY_SHOWN].decode("utf-8", "replace")
    lines: list[tuple[str, str]] = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            break
        name, sep, value = line.partition(":")
        lines.append((name.strip(), value.strip()) if sep else ("", line))
    return tuple(lines)


def read_record(directory: Path, shard: int, record_id: int) -> RecordDetail | None:
    """The record ``shard:record_id`` (None when there is no such shard or record)."""
    path = shard_path(directory, shard)
    if not path.is_file():
        return None
    with MessageLogStore(path) as store:
        record = store.get(record_id)
        if record is None:
            return None
        stamp = store.timestamp_of(record_id)
    header: SoapHeader | None = None
    lines: tuple[tuple[str, str], ...] = ()
    try:
        header = parse_soap(record.message, "text/xml", max_bytes=len(record.message) + 1,
                            is_response=record.direction is Direction.RESPONSE).header
    except BusError:
        lines = _rest_header_lines(record.message)
    return RecordDetail(shard, record, stamp, header, lines)


def container_of(detail: RecordDetail) -> tuple[str, bytes]:
    """The record's container file name and bytes (``NotExportable`` without a signature)."""
    return record_container_name(detail.record), record_container(detail.record, detail.timestamp)


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _header_rows(detail: RecordDetail) -> list[tuple[str, object]]:
    header = detail.header
    if header is None:
        return list(detail.header_lines)
    rows: list[tuple[str, object]] = [
        ("client", header.client.to_display()), ("service", header.service.to_display()), ("id", header.id),
        ("protocolVersion", header.protocol_version),
    ]
    for name, value in (("userId", header.user_id), ("issue", header.issue)):
        if value is not None:
            rows.append((name, value))
    if header.security_server is not None:
        rows.append(("securityServer", str(header.security_server)))
    if header.represented_party is not None:
        rows.append(("representedParty", "/".join(p for p in header.represented_party if p)))
    if header.request_hash is not None:
        rows.append(("requestHash", header.request_hash[1]))
    return rows


def detail_body(detail: RecordDetail, *, show_bodies: bool, xsrf: str) -> Markup:
    """The record's page: identity, header, sizes, signature and timestamp status, fault, body if allowed."""
    record, stamp = detail.record, detail.timestamp
    if stamp is None:
        stamp_text = "not timestamped yet" if record.signature else "none (nothing was signed)"
    else:
        kind = "batch" if stamp.timestamp.hash_chain_result is not None else "single"
        stamp_text = (f"{kind} timestamp #{stamp.timestamp.id} at {_when(stamp.timestamp.time)}"
                      + (f" from {stamp.timestamp.tsa_url}" if stamp.timestamp.tsa_url else ""))
    facts: list[tuple[str, object]] = [
        ("Record", f"{detail.shard}:{record.id}"), ("Message id", record.query_id),
        ("X-Request-Id", record.x_request_id or "—"), ("Direction", record.direction.value),
        ("Client", record.client), ("Service", record.service), ("Time", _when(record.time)),
        ("Result", "succeeded" if record.succeeded else "failed"), ("Fault", record.fault_code or "—"),
    ]
    sizes: list[tuple[str, object]] = [
        ("Message", f"{len(record.message)} bytes"),
        ("Attachments", ", ".join(f"{len(a)} bytes" for a in record.attachments) or "none"),
        ("Signature", f"{len(record.signature)} bytes" if record.signature else "none"),
    ]
    evidence: list[tuple[str, object]] = [
        ("Signature", "signed" + (" (covers a hash chain of a batch)" if record.hashchain else "")
         if record.signature else "not signed (a failed exchange)"),
        ("Timestamp", stamp_text),
    ]
    parts = [
        '<section aria-labelledby="h-record"><h2 id="h-record">Record</h2>', definitions(facts), "</section>",
        '<section aria-labelledby="h-header"><h2 id="h-header">Header</h2>',
        table("Message header", ["Field", "Value"], _header_rows(detail), empty="no header could be read"),
        "</section>",
        '<section aria-labelledby="h-sizes"><h2 id="h-sizes">Sizes</h2>', definitions(sizes), "</section>",
        '<section aria-labelledby="h-evidence"><h2 id="h-evidence">Signature and timestamp</h2>', definitions(evidence),
    ]
    if record.signature:
        base = f"/console/audit/records/{detail.shard}/{record.id}"
        parts += [
            f'<p><a href="{base}/container" download>Download the ASiC-E container '
            f"({esc(record_container_name(record))})</a></p>",
            f'<form method="post" action="{base}/verify"><input type="hidden" name="_xsrf" value="{esc(xsrf)}">'
            '<button type="submit">Verify the container</button></form>',
        ]
    parts.append("</section>")
    parts.append('<section aria-labelledby="h-body"><h2 id="h-body">Body</h2>')
    if show_bodies:
        shown = record.message[:MAX_BODY_SHOWN].decode("utf-8", "replace")
        cut = len(record.message) > MAX_BODY_SHOWN
        parts.append(f'<pre id="message-body">{esc(shown)}</pre>'
                     + (f"<p>(first {MAX_BODY_SHOWN} bytes of {len(record.message)})</p>" if cut else ""))
    else:
        parts.append('<p class="notice">Your role may not see message bodies.</p>')
    parts.append("</section>")
    return Markup("".join(parts))  # every value above went through esc, definitions or table


# --- verifying ------------------------------------------------------------------------------------------------


ConfSource = Callable[[datetime], VerificationConf]


def server_conf_source(directory: Path) -> ConfSource:
    """The server's verification configuration, from its verified global configuration, as ``fedbus audit
    verificationconf`` builds it."""

    def load(now: datetime) -> VerificationConf:
        from security_server.audit_cli import server_verification_files

        return read_verification_conf(server_verification_files(directory, now))

    return load


@dataclass(frozen=True, slots=True)
class Verification:
    """What verifying found: the report, or why there was none (no configuration, not a container)."""

    subject: str
    report: EvidenceReport | None
    problem: str | None = None


def verify(subject: str, data: bytes, conf_source: ConfSource, now: datetime) -> Verification:
    """Verify ``data`` as ``fedbus audit verify container`` does (strict: entries nothing covers are refused)."""
    import click

    try:
        conf = conf_source(now)
    except (BusError, click.ClickException) as err:
        message = err.message if isinstance(err, BusError) else err.format_message()
        return Verification(subject, None, f"the server's verification configuration is not available: {message}")
    return Verification(subject, verify_evidence(data, conf, now, strict=True))


_STATUS = {CheckStatus.PASSED: True, CheckStatus.FAILED: False, CheckStatus.SKIPPED: None}


def verification_body(found: Verification) -> Markup:
    """Each check with its status and what it found, then the verdict (as the CLI prints it)."""
    head = Markup(f"<p>Container: <strong>{esc(found.subject)}</strong></p>")
    if found.report is None:
        return Markup(head + f'<p class="error" role="alert" id="verdict">NOT VERIFIED: {esc(found.problem)}</p>')
    report = found.report
    rows = [(check.name, status_text(_STATUS[check.status]), check.detail) for check in report.checks]
    extra: list[tuple[str, object]] = []
    if report.signer is not None:
        extra.append(("Signer", str(report.signer.client)))
    if report.container.timestamp is not None:
        extra.append(("Timestamp", _when(report.container.timestamp.gen_time)))
    verdict = (f'<p id="verdict" role="status">{status_text(True, good="VERIFIED")}</p>' if report.ok else
               f'<p id="verdict" role="alert">{status_text(False, bad="NOT VERIFIED")}: {esc(report.code)}</p>')
    return Markup(head + table("Checks", ["Check", "Result", "Found"], rows, empty="no check was made")
                  + (definitions(extra) if extra else "") + verdict
                  + '<p><a href="/console/audit">Back to the search</a></p>')

