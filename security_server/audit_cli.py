"""``fedbus audit``: the auditor's commands: find exchanges, export evidence, verify it, export what verifying needs.

Commands read a security server's directory (``--dir``, env ``FEDBUS_SERVER_DIR``; its ``messagelog.db``,
``globalconf.bundle`` and ``serverconf.db``) or files given on the command line; they never change a record::

    fedbus audit find [--query-id ID] [--client ID] [--service ID] [--user-id U] [--since T] [--until T] [--succeeded|--failed]
    fedbus audit export QUERY_ID [--request-only|--response-only] [--record N] --out FILE
    fedbus audit verify container FILE --conf DIR [--xroad-compatible]
    fedbus audit verify archive FILE (--previous DIGEST | --first) [--conf DIR]
    fedbus audit verify log [--conf DIR] [--jobs N] [--checkpoint FILE] [--since-checkpoint FILE] [--checkpoint-key KEY]
    fedbus audit verificationconf --out DIR

``export`` writes one ASiC-E container when one record matches (or ``--record`` picks one), else a zip of the
exchange's containers, named as X-Road's ``/asic`` names them. ``verify`` prints every check it made, one per
line (``passed``/``FAILED``/``skipped``: what was checked and what was found), then ``VERIFIED`` or
``NOT VERIFIED``; the exit status is 0 only when everything verified (1 otherwise, 2 for bad arguments). A
container (or an archive's) of a SOAP record logged without its body, whose every other check passed, ends with
``VERIFIED WITHOUT MESSAGE`` (code ``valid_without_message``, JSON ``"verified": false``) and exit status 3: who
signed a message with that digest, and when, is proven; the message's content is not (docs/evidence.md).
``verificationconf`` writes X-Road's verification configuration (``instance-identifier`` and
``<instance>/shared-params.xml``, taken from the server's verified global configuration) plus ``ca.pem``,
``ocsp.pem`` and ``tsa.pem`` for other tools. ``--json`` prints JSON instead of text.

A server run with several workers writes one message-log shard per worker (messagelog/shards.py):
``find``, ``export`` and ``verify log`` read every shard as one log (``find`` lists them in time order, naming
each record ``SHARD:RECORD``), and ``verify log`` verifies each shard's hash chain from its own anchor.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import click

from security_server.admin.server_dir import DB_NAME
from security_server.cli import dir_option
from security_server.confclient import bundle as conf_bundle
from security_server.core.archive import verify_archive
from security_server.core.asic import VALID_WITHOUT_MESSAGE, CheckStatus
from security_server.core.errors import InvalidClientIdentifier, InvalidConfiguration, LogChainBroken, NotFound
from security_server.core.evidence import (
    INSTANCE_IDENTIFIER_FILE,
    SHARED_PARAMS_FILE,
    EvidenceReport,
    VerificationConf,
    read_verification_conf,
    verification_conf_files,
    verify_evidence,
)
from security_server.core.globalconf.anchor import parse_configuration_anchor
from security_server.core.globalconf.directory import SHARED_PARAMETERS
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.unlogged_message import NOT_LOGGED_DETAIL
from security_server.core.logchain import Direction
from security_server.core.verify_checkpoint import Checkpoint, CheckpointKey, ShardMark, read_checkpoint, write_checkpoint
from security_server.edge import cli_output
from security_server.messagelog.asic_export import exchange_zip, record_container, record_container_name
from security_server.messagelog.log_verifier import MAX_LISTED, verify_shard
from security_server.messagelog.shards import LOG_NAME, shard_path, shard_paths
from security_server.messagelog.store import MessageLogStore, RecordSummary
from security_server.serverconf.store import ServerConfStore

BUNDLE_NAME = "globalconf.bundle"
MAX_INPUT_BYTES = 4 * 1024 * 1024 * 1024
MAX_CONF_FILE_BYTES = 32 * 1024 * 1024
MAX_CHECKPOINT_BYTES = 1024 * 1024
EXIT_VERIFIED_WITHOUT_MESSAGE = 3
"""Exit status of ``verify container``/``archive`` for a SOAP record logged without its body (0 valid, 1 failed)."""

F = TypeVar("F", bound=Callable[..., Any])


# --- options and output ---------------------------------------------------------------------------------------


json_option = cli_output.json_option("Print JSON instead of text.")
"""The ``--json`` flag."""


def conf_option(func: F) -> F:
    """The ``--conf`` option: a verification configuration folder."""
    return click.option(
        "--conf",
        "conf_dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Verification configuration folder (from `fedbus audit verificationconf` or X-Road's /verificationconf).",
    )(func)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time") from err
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _read(path: Path, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise click.ClickException(f"cannot read {what} {path}: {err.strerror}") from err
    if len(data) > limit:
        raise click.ClickException(f"{what} {path} is larger than {limit} bytes")
    return data


@contextlib.contextmanager
def _open_logs(directory: Path) -> Iterator[list[tuple[int, MessageLogStore]]]:
    """Every shard of the message log in ``directory`` (messagelog/shards.py), opened, shard 0 first."""
    found = shard_paths(directory)
    if not found:
        raise click.ClickException(f"no message log at {directory / LOG_NAME}")
    with contextlib.ExitStack() as stack:
        yield [(index, stack.enter_context(MessageLogStore(path))) for index, path in found]


def _now() -> datetime:
    return datetime.now(UTC)


@click.group(cls=cli_output.BusErrorGroup)
def audit() -> None:
    """Find logged exchanges, export their signed evidence (ASiC-E) and verify it offline."""


# --- find -----------------------------------------------------------------------------------------------------


def _summary_json(summary: RecordSummary) -> dict[str, Any]:
    return {
        "record": summary.id,
        "query_id": summary.query_id,
        "direction": summary.direction.value,
        "client": summary.client,
        "service": summary.service,
        "time": _time(summary.time),
        "succeeded": summary.succeeded,
        "fault_code": summary.fault_code,
        "x_request_id": summary.x_request_id,
        "timestamped": bool(summary.timestamp_id),
        "archived": summary.archived,
        "user_id": summary.user_id,
    }


def _identifier(text: str | None, parse: Callable[[str], object], what: str) -> str | None:
    """Normalise an identifier given in display form (a trailing ``/`` keeps it a prefix)."""
    if text is None or text.endswith("/"):
        return text
    try:
        return str(parse(text))
    except InvalidClientIdentifier as err:
        raise click.BadParameter(f"{text!r} is not a {what}: {err.message}") from err


_TABLE_HEADERS = ("RECORD", "TIME", "QUERY ID", "DIR", "CLIENT", "SERVICE", "RESULT", "STAMPED", "ARCHIVED")
_WIDTH_SAMPLE = 100
"""Rows read before the table's column widths are fixed; later rows keep them (a longer cell widens its own row)."""


def _table_row(summary: RecordSummary, name: str) -> list[str]:
    return [
        name,
        _time(summary.time)[:19] + "Z",
        summary.query_id,
        summary.direction.value,
        summary.client,
        summary.service,
        "ok" if summary.succeeded else f"fault {summary.fault_code or ''}".strip(),
        "yes" if summary.timestamp_id else "no",
        "yes" if summary.archived else "no",
    ]


def _echo_table(headers: Sequence[str], rows: Iterator[list[str]]) -> None:
    """Print ``rows`` under ``headers`` as they come: widths from the first rows (format_table's layout for them)."""
    sample = list(itertools.islice(rows, _WIDTH_SAMPLE))
    widths = [len(h) for h in headers]
    for row in sample:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]
    for row in itertools.chain([list(headers)], sample, rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if not sample:
        click.echo("(none)")


def _tagged(summaries: Iterator[RecordSummary], shard: int) -> Iterator[tuple[RecordSummary, int]]:
    return ((summary, shard) for summary in summaries)


def _echo_json_array(items: Iterator[dict[str, Any]]) -> None:
    """Print ``items`` as one indented JSON array, item by item (the text ``json.dumps(list, indent=2)`` gives)."""
    first = True
    for item in items:
        text = json.dumps(item, indent=2).replace("\n", "\n  ")
        click.echo(("[\n  " if first else ",\n  ") + text, nl=False)
        first = False
    click.echo("[]" if first else "\n]")


@audit.command()
@dir_option
@click.option("--query-id", help="The message id (X-Road `id` header / X-Road-Id).")
@click.option("--client", help="The client, e.g. SUBSYSTEM:EE/GOV/70000310/consumer (a trailing / matches a prefix).")
@click.option("--service", help="The service, e.g. SERVICE:EE/GOV/70000311/provider/getRandom/v1 (or a prefix/).")
@click.option("--user-id", help="The end user the exchange names (SOAP `userId` header / X-Road-UserId).")
@click.option("--since", help="From this time on (ISO 8601, UTC if no zone).")
@click.option("--until", help="Before this time (ISO 8601).")
@click.option("--succeeded/--failed", "succeeded", default=None, help="Only successful or only failed exchanges.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@json_option
def find(
    directory: Path,
    query_id: str | None,
    client: str | None,
    service: str | None,
    user_id: str | None,
    since: str | None,
    until: str | None,
    succeeded: bool | None,
    limit: int,
    as_json: bool,
) -> None:
    """List logged records by message id, client, service, user id, time range and outcome, in time order.

    Rows are printed as they are read (every criterion reads an index: messagelog/store.py ``search_query``);
    nothing holds the whole result, so ``--limit`` may be large.
    """
    criteria: dict[str, Any] = dict(
        query_id=query_id,
        client=_identifier(client, ClientId.parse_display, "client identifier"),
        service=_identifier(service, ServiceId.parse_display, "service identifier"),
        user_id=user_id,
        since=_parse_time(since) if since else None,
        until=_parse_time(until) if until else None,
        succeeded=succeeded,
        limit=limit,
    )
    with _open_logs(directory) as stores:
        sharded = len(stores) > 1
        # One log: each shard's rows come in (time, id) order; merged in time order across the shards.
        streams = [_tagged(store.search(**criteria), index) for index, store in stores]
        merged = heapq.merge(*streams, key=lambda item: (item[0].time, item[1], item[0].id))
        tagged = itertools.islice(merged, limit)
        if as_json:
            _echo_json_array({**_summary_json(s), "shard": index} for s, index in tagged)
            return
        headers = ("SHARD:RECORD", *_TABLE_HEADERS[1:]) if sharded else _TABLE_HEADERS
        _echo_table(headers, (_table_row(s, f"{index}:{s.id}" if sharded else str(s.id)) for s, index in tagged))


# --- export ---------------------------------------------------------------------------------------------------


@audit.command()
@dir_option
@click.argument("query_id")
@click.option("--request-only", is_flag=True, help="Only the request.")
@click.option("--response-only", is_flag=True, help="Only the response.")
@click.option("--record", "record_id", type=int, help="Only this record (see `audit find`).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@json_option
def export(
    directory: Path, query_id: str, request_only: bool, response_only: bool, record_id: int | None, out: Path, as_json: bool
) -> None:
    """Export an exchange's evidence: one container, or a zip of the request and response containers."""
    if request_only and response_only:
        raise click.UsageError("--request-only and --response-only exclude each other")
    with _open_logs(directory) as stores:
        stamped = [
            (record, store.timestamp_of(record.id))
            for _, store in stores
            for record in store.find(query_id)
            if record.signature
            and (record_id is None or record.id == record_id)
            and not (request_only and record.direction is not Direction.REQUEST)
            and not (response_only and record.direction is not Direction.RESPONSE)
        ]
        if not stamped:
            raise NotFound(f"no signed records of {query_id!r} match")
    unstamped = [record.id for record, stamp in stamped if stamp is None]
    if len(stamped) == 1:
        record, stamp = stamped[0]
        data, kind, names = record_container(record, stamp), "container", [record_container_name(record)]
    else:
        data, kind, names = exchange_zip(stamped), "zip", [record_container_name(r) for r, _ in stamped]
    out.write_bytes(data)
    if as_json:
        click.echo(json.dumps({"file": str(out), "kind": kind, "containers": names, "not_timestamped": unstamped}, indent=2))
        return
    click.echo(f"wrote {kind} {out} ({', '.join(names)})")
    if unstamped:
        click.echo(f"warning: records {unstamped} are not timestamped yet; their containers carry no timestamp", err=True)


# --- verify ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One reported check: its name, status and what it found."""

    name: str
    status: str  # passed | FAILED | skipped
    detail: str


def _report(as_json: bool, subject: str, lines: Sequence[Line], ok: bool, code: str, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        document = {
            "subject": subject,
            "verified": ok,
            "code": code,
            "checks": [{"name": line.name, "status": line.status.lower(), "detail": line.detail} for line in lines],
        }
        document.update(extra or {})
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(subject)
        for line in lines:
            click.echo(f"  {line.status:<7} {line.name}: {line.detail}")
        if code == VALID_WITHOUT_MESSAGE:
            click.echo(f"VERIFIED WITHOUT MESSAGE: {code} ({NOT_LOGGED_DETAIL})")
        else:
            click.echo("VERIFIED" if ok else f"NOT VERIFIED: {code}")
    if code == VALID_WITHOUT_MESSAGE:
        raise SystemExit(EXIT_VERIFIED_WITHOUT_MESSAGE)
    if not ok:
        raise SystemExit(1)


def _evidence_lines(report: EvidenceReport) -> list[Line]:
    names = {CheckStatus.PASSED: "passed", CheckStatus.FAILED: "FAILED", CheckStatus.SKIPPED: "skipped"}
    return [Line(check.name, names[check.status], check.detail) for check in report.checks]


def _load_conf(conf_dir: Path) -> VerificationConf:
    return read_verification_conf(_conf_files(conf_dir))


def _conf_files(conf_dir: Path) -> dict[str, bytes]:
    """The files of the verification configuration in ``conf_dir`` (what workers read it from again)."""
    files: dict[str, bytes] = {}
    for path in sorted(conf_dir.rglob("*")):
        relative = path.relative_to(conf_dir).as_posix()
        if path.is_file() and (relative.endswith(SHARED_PARAMS_FILE) or relative.endswith(INSTANCE_IDENTIFIER_FILE)):
            files[relative] = _read(path, "verification configuration file", MAX_CONF_FILE_BYTES)
    return files


@audit.group()
def verify() -> None:
    """Verify a container, an archive, or the live message log; exit 0 only when everything verified."""


@verify.command("container")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@conf_option
@click.option(
    "--xroad-compatible", is_flag=True, help="Ignore entries nothing covers, as X-Road does (default: refuse them)."
)
@json_option
def verify_container_command(path: Path, conf_dir: Path | None, xroad_compatible: bool, as_json: bool) -> None:
    """Verify an ASiC-E container: signature, signer's certificate, OCSP, member, hash chains and timestamp."""
    if conf_dir is None:
        raise click.UsageError("--conf is required: the certificates to trust (see `fedbus audit verificationconf`)")
    report = verify_evidence(_read(path, "container"), _load_conf(conf_dir), _now(), strict=not xroad_compatible)
    extra: dict[str, Any] = {}
    if report.signer is not None:
        extra["signer"] = str(report.signer.client)
    if report.container.timestamp is not None:
        extra["timestamp"] = _time(report.container.timestamp.gen_time)
    _report(as_json, f"container {path}", _evidence_lines(report), report.ok, report.code, extra)


@verify.command("archive")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--previous", help="The previous archive's last digest (hex), printed when that archive verified.")
@click.option("--first", is_flag=True, help="The archive is the first of its chain.")
@conf_option
@click.option("--xroad-compatible", is_flag=True, help="Ignore entries that are neither containers nor linkinginfo.")
@json_option
def verify_archive_command(
    path: Path, previous: str | None, first: bool, conf_dir: Path | None, xroad_compatible: bool, as_json: bool
) -> None:
    """Verify an archive's linkinginfo chain (and with --conf every container in it)."""
    if first == (previous is not None):
        raise click.UsageError("give exactly one of --previous DIGEST and --first")
    verdict = verify_archive(_read(path, "archive"), None if first else previous, strict=not xroad_compatible)
    lines = [Line(check.name, "passed" if check.passed else "FAILED", check.detail) for check in verdict.checks]
    ok, code = verdict.ok, verdict.code
    if ok and conf_dir is not None:
        conf, now = _load_conf(conf_dir), _now()
        for name, data in verdict.containers:
            report = verify_evidence(data, conf, now, strict=not xroad_compatible)
            if report.ok:
                signer = f" signed by {report.signer.client}" if report.signer else ""
                lines.append(Line(f"container {name}", "passed", f"verified{signer}"))
            elif report.code == VALID_WITHOUT_MESSAGE:
                signer = f" signed by {report.signer.client}" if report.signer else ""
                lines.append(Line(f"container {name}", "skipped", f"verified{signer}; {NOT_LOGGED_DETAIL}"))
                if ok:
                    code = VALID_WITHOUT_MESSAGE
            else:
                failed = next((c for c in report.checks if c.status is not CheckStatus.PASSED), None)
                lines.append(Line(f"container {name}", "FAILED", failed.detail if failed else report.code))
                ok, code = False, report.code
    elif conf_dir is None:
        lines.append(Line("containers", "skipped", "contents not verified (give --conf to verify every container)"))
    _report(as_json, f"archive {path}", lines, ok, code, {"last_digest": verdict.last_digest})


@verify.command("log")
@dir_option
@conf_option
@click.option(
    "--jobs", type=click.IntRange(1, 256), default=None, help="Worker processes (default: one per CPU of this machine)."
)
@click.option(
    "--checkpoint", "checkpoint_out", type=click.Path(dir_okay=False, path_type=Path),
    help="After a run that verified everything, write a checkpoint signed with --checkpoint-key to this file.",
)
@click.option(
    "--since-checkpoint", "checkpoint_in", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify only the records after this checkpoint (its signature and checkpointed links are checked first).",
)
@click.option(
    "--checkpoint-key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The auditor's checkpoint key: an Ed25519 private key (PEM) or a file of at least 32 secret bytes (HMAC).",
)
@json_option
def verify_log_command(
    directory: Path,
    conf_dir: Path | None,
    jobs: int | None,
    checkpoint_out: Path | None,
    checkpoint_in: Path | None,
    key_path: Path | None,
    as_json: bool,
) -> None:
    """Verify the live message log: its hash-linked chains, every stored timestamp and, with --conf, every signature."""
    if (checkpoint_out is not None or checkpoint_in is not None) and key_path is None:
        raise click.UsageError("--checkpoint and --since-checkpoint need --checkpoint-key (the auditor's key)")
    key = CheckpointKey(_read(key_path, "checkpoint key", MAX_CHECKPOINT_BYTES)) if key_path is not None else None
    since: Checkpoint | None = None
    if checkpoint_in is not None and key is not None:
        since = read_checkpoint(_read(checkpoint_in, "checkpoint", MAX_CHECKPOINT_BYTES), key)
    conf_files = _conf_files(conf_dir) if conf_dir is not None else None
    conf = read_verification_conf(conf_files) if conf_files is not None else None
    found = shard_paths(directory)
    if not found:
        raise click.ClickException(f"no message log at {directory / LOG_NAME}")
    sharded, now = len(found) > 1, _now()
    lines: list[Line] = []
    ok, code = True, "valid"
    stamped = signed = distinct = without_body = unverifiable = 0
    stamp_failures: list[str] = []
    signature_failures: list[str] = []
    marks: list[ShardMark] = []
    for index, path in found:
        # Each shard is its own hash chain (one per worker process): verified from its own anchor.
        name, where = (f"chain of shard {index}", f"shard {index}: ") if sharded else ("chain", "")
        mark = since.mark(index) if since is not None else None
        start = _checkpoint_start(path, mark, where, lines) if mark is not None else None
        result = verify_shard(path, conf, now, jobs=jobs or os.cpu_count() or 1, conf_files=conf_files, since=start)
        if result.chain is None:
            lines.append(Line(name, "passed", f"{result.count} records link from record {result.first_id} to the last one"))
        else:
            lines.append(Line(name, "FAILED", f"{result.chain.text} (record {result.chain.record_id})"))
            if ok:
                ok, code = False, LogChainBroken.code
        stamped += result.stamps
        signed += result.signatures
        distinct += result.distinct_signatures
        without_body += result.without_body
        unverifiable += result.unverifiable
        stamp_failures += [f"{where}record {p.record_id}: {p.text}" for p in result.stamp_problems]
        stamp_failures += [f"{where}... and {result.stamp_problem_count - len(result.stamp_problems)} more records"] * (
            result.stamp_problem_count > len(result.stamp_problems)
        )
        signature_failures += [f"{where}record {p.record_id}: {p.text}" for p in result.signature_problems]
        signature_failures += [
            f"{where}... and {result.signature_problem_count - len(result.signature_problems)} more records"
        ] * (result.signature_problem_count > len(result.signature_problems))
        if result.verified_to is not None:
            marks.append(ShardMark(index, *result.verified_to))
    if stamp_failures:
        ok, code = False, "invalid_timestamp" if code == "valid" else code
        lines += [Line("timestamp", "FAILED", failure) for failure in stamp_failures[:MAX_LISTED]]
    detail = f"{stamped} timestamped records: imprints and hash chains match"
    detail += "; tokens verified against the approved TSAs" if conf is not None else "; tokens not verified (no --conf)"
    lines.append(Line("timestamps", "passed" if not stamp_failures else "FAILED", detail))
    if conf is None:
        lines.append(Line("signatures", "skipped", "not verified (give --conf to verify every record's signature)"))
    else:
        if signature_failures:
            ok, code = False, "invalid_signature" if code == "valid" else code
            lines += [Line("signature", "FAILED", failure) for failure in signature_failures[:MAX_LISTED]]
        detail = (
            f"{signed} signed records ({distinct} signatures, each verified once): XAdES signature and hash chain, "
            "certificate chains to an approved CA, good OCSP response fresh at signing time, signer is the member "
            "the record names"
        )
        if without_body:
            detail += f"; {without_body} logged without their body: its digest taken as signed"
        if unverifiable:
            detail += f"; {unverifiable} SOAP records verified without message ({NOT_LOGGED_DETAIL})"
        lines.append(Line("signatures", "passed" if not signature_failures else "FAILED", detail))
    if checkpoint_out is not None and key is not None and ok:
        checkpoint_out.write_bytes(write_checkpoint(Checkpoint(tuple(marks), now), key))
        upto = ", ".join(f"shard {m.shard} to record {m.record}" if sharded else f"to record {m.record}" for m in marks)
        lines.append(Line("checkpoint", "passed", f"wrote {checkpoint_out}: verified {upto}"))
    subject = f"message log {shard_path(directory, 0)}" + (f" and {len(found) - 1} more shards" if sharded else "")
    _report(as_json, subject, lines, ok, code)


def _checkpoint_start(path: Path, mark: ShardMark, where: str, lines: list[Line]) -> tuple[int, bytes] | None:
    """Where to verify from after ``mark``: its record must still hold its link (None: from the anchor)."""
    with MessageLogStore(path) as store:
        first_id, anchor_link = store.anchor()
        record = store.get(mark.record)
    held = record.link if record is not None else anchor_link if mark.record == first_id - 1 else None
    if held is None and mark.record < first_id - 1:
        lines.append(Line(
            "checkpoint", "passed",
            f"{where}records up to {first_id - 1} were archived and removed since the checkpoint; verifying from the anchor",
        ))
        return None
    if held is None:
        raise InvalidConfiguration(f"checkpoint refused: {where}record {mark.record} of the checkpoint is not in the log")
    if held != mark.link:
        raise InvalidConfiguration(
            f"checkpoint refused: {where}record {mark.record} no longer has the link the checkpoint signed "
            "(the log was changed)"
        )
    lines.append(Line(
        "checkpoint", "passed", f"{where}record {mark.record} still has its signed link; verifying the records after it"
    ))
    return mark.record, mark.link


# --- verificationconf -------------------------------------------------------------------------------------------


def server_verification_files(directory: Path, now: datetime) -> dict[str, bytes]:
    """The verification configuration files of the server in ``directory``, from its verified global configuration."""
    from security_server.configfile import load_config
    from security_server.core.config import DatabaseConfig

    bundle_path, conf_path = directory / BUNDLE_NAME, directory / DB_NAME
    # ``[database] url`` (conf.d/local.ini): a clustered node's configuration is in the shared database.
    database_url = DatabaseConfig.from_config(load_config("security-server")).url
    if not database_url and not conf_path.is_file():
        raise click.ClickException(f"no security server in {directory}")
    stored = conf_bundle.load(bundle_path)
    if stored is None:
        raise click.ClickException(f"no global configuration at {bundle_path} (has the server downloaded one?)")
    with ServerConfStore(conf_path, database_url=database_url) as conf_store:
        if not conf_store.is_initialised():
            raise click.ClickException(f"no security server in {directory}")
        anchor = parse_configuration_anchor(conf_store.anchor())
    verified = conf_bundle.verify_directory(stored.content_type, stored.directory, anchor, now)
    files: dict[str, bytes] = {}
    for entry in verified.entries:
        if entry.content_identifier != SHARED_PARAMETERS or entry.instance is None:
            continue
        content = stored.files.get(entry.content_location)
        if content is None:
            continue
        if entry.instance == verified.instance:
            files.update(verification_conf_files(content, verified.instance))
        else:
            files[f"{entry.instance}/{SHARED_PARAMS_FILE}"] = content
    if f"{verified.instance}/{SHARED_PARAMS_FILE}" not in files:
        raise InvalidConfiguration("the stored global configuration holds no shared parameters of its instance")
    return files


@audit.command()
@dir_option
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write.")
@json_option
def verificationconf(directory: Path, out: Path, as_json: bool) -> None:
    """Write what a verifier needs: approved CA, OCSP responder and TSA certificates (X-Road's layout + PEM)."""
    files = server_verification_files(directory, _now())
    for name, data in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if as_json:
        click.echo(json.dumps({"folder": str(out), "files": sorted(files)}, indent=2))
    else:
        click.echo(f"wrote {len(files)} files to {out}: {', '.join(sorted(files))}")
