"""``GET /asic``: the signed-document download of the security server (X-Road SIGDOC §2).

``/asic?queryId=…&xRoadInstance=…&memberClass=…&memberCode=…[&subsystemCode=…]`` answers with
``<queryId>.zip`` holding ``<queryId>-request-<id>.asice`` and ``<queryId>-response-<id>.asice``
(protocol-examples §10; X-Road ``AsicContainerClientRequestProcessor``). Flags (present = on):

* ``requestOnly`` / ``responseOnly`` (not both): only that direction; the zip is ``<queryId>-request.zip`` ...;
* ``unique`` (with one of the two): the single container itself, ``application/vnd.etsi.asic-e+zip``;
* ``force``: records not yet timestamped get a single timestamp now (otherwise they are an error).

Restrictions: only records of the named client, which must be one of this server's own clients (the client
of a request logged here, or the provider of a service called here: the local party of the record, as X-Road
keeps it); and by default only callers on the loopback interface (X-Road checks the caller's IS
authentication instead; an information system on another host is allowed with ``allow_remote=True``).
Errors are X-Road REST error JSON (``X-Road-Error`` header): 400 ``bad_request``, 403 ``access_denied``, 404
``not_found``, 500 for records without a timestamp.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

import structlog
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from security_server.core.errors import (
    AccessDenied,
    BadRequest,
    BusError,
    InternalError,
    InvalidClientIdentifier,
    NotFound,
    Origin,
    TimestampingFailed,
)
from security_server.core.identifiers import ClientId, ServiceId
from security_server.core.logchain import Direction, LogRecord
from security_server.messagelog.asic_export import (
    ASIC_MEDIA_TYPE,
    ZIP_MEDIA_TYPE,
    exchange_zip,
    exchange_zip_name,
    record_container,
    record_container_name,
)
from security_server.messagelog.store import MessageLogStore, RecordTimestamp
from security_server.messagelog.timestamper import Timestamper
from security_server.messagelog.writer import MessageLogWriter

PARAM_QUERY_ID = "queryId"
PARAM_INSTANCE = "xRoadInstance"
PARAM_MEMBER_CLASS = "memberClass"
PARAM_MEMBER_CODE = "memberCode"
PARAM_SUBSYSTEM_CODE = "subsystemCode"
FLAG_REQUEST_ONLY = "requestOnly"
FLAG_RESPONSE_ONLY = "responseOnly"
FLAG_UNIQUE = "unique"
FLAG_FORCE = "force"

NOT_FOUND_MESSAGE = "No signed documents found"
MISSING_TIMESTAMP_MESSAGE = "Message signature has not been timestamped yet!"
TIMESTAMPING_FAILED_MESSAGE = "Could not create missing timestamp!"

_log = structlog.get_logger("fedbus.messagelog.asic")

Stamped = list[tuple[LogRecord, RecordTimestamp | None]]


@dataclass(frozen=True, slots=True)
class AsicQuery:
    """A parsed ``/asic`` query."""

    query_id: str
    client: ClientId
    direction: Direction | None
    unique: bool
    force: bool


def parse_asic_query(args: dict[bytes, list[bytes]]) -> AsicQuery:
    """Read the query string as X-Road does; :class:`BadRequest` for a missing parameter or a bad combination."""

    def text(name: str, optional: bool = False) -> str | None:
        values = args.get(name.encode("ascii"))
        if not values:
            if optional:
                return None
            raise BadRequest(f'Parameter "{name}"  must be specified.')
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError as err:
            raise BadRequest(f'Parameter "{name}" is not UTF-8') from err

    def flag(name: str) -> bool:
        return name.encode("ascii") in args

    query_id = text(PARAM_QUERY_ID)
    assert query_id is not None
    if not query_id:
        raise BadRequest(f'Parameter "{PARAM_QUERY_ID}"  must be specified.')
    try:
        client = ClientId(
            text(PARAM_INSTANCE) or "",
            text(PARAM_MEMBER_CLASS) or "",
            text(PARAM_MEMBER_CODE) or "",
            text(PARAM_SUBSYSTEM_CODE, optional=True),
        )
    except InvalidClientIdentifier as err:
        raise BadRequest("Invalid client identifier", reason=err.reason) from err
    request_only, response_only = flag(FLAG_REQUEST_ONLY), flag(FLAG_RESPONSE_ONLY)
    if request_only and response_only:
        raise BadRequest(f'Parameters "{FLAG_REQUEST_ONLY}" and "{FLAG_RESPONSE_ONLY}" cannot be used at the same time.')
    direction = Direction.REQUEST if request_only else Direction.RESPONSE if response_only else None
    unique = flag(FLAG_UNIQUE)
    if unique and direction is None:
        raise BadRequest(
            f'Parameter "{FLAG_UNIQUE}" not applicable without "{FLAG_REQUEST_ONLY}" or "{FLAG_RESPONSE_ONLY}".'
        )
    return AsicQuery(query_id, client, direction, unique, flag(FLAG_FORCE))


def query_arguments(request: Request) -> dict[bytes, list[bytes]]:
    """The query string's parameters, flags without ``=`` included (``?...&force``; Twisted drops those)."""
    uri: bytes = request.uri or b""
    _, _, query = uri.partition(b"?")
    return urllib.parse.parse_qs(query, keep_blank_values=True)


def belongs_to(record: LogRecord, client: ClientId) -> bool:
    """Whether ``client`` is a party of ``record``: its client, or the provider of its service."""
    if record.client == str(client):
        return True
    try:
        return ServiceId.parse_display(record.service).client == client
    except InvalidClientIdentifier:
        return False


def is_loopback(request: Request) -> bool:
    """Whether the caller connected from the loopback interface."""
    caller: Any = request  # Twisted leaves Request unannotated
    host = getattr(caller.getClientAddress(), "host", None)
    if not isinstance(host, str):
        return False
    try:
        return ipaddress.ip_address(host.removeprefix("::ffff:")).is_loopback
    except ValueError:
        return False


class AsicResource(Resource):
    """twisted.web Resource for ``GET /asic``; see the module docstring."""

    isLeaf = True

    def __init__(
        self,
        reactor: Any,
        writer: MessageLogWriter,
        is_own_client: Callable[[ClientId], bool],
        *,
        timestamper: Timestamper | None = None,
        allow_remote: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._reactor = reactor
        self._writer = writer
        self._is_own_client = is_own_client
        self._timestamper = timestamper
        self._allow_remote = allow_remote

    def render_GET(self, request: Request) -> int:
        """Answer a download request (asynchronously: the log is read in the writer thread)."""
        gone = {"yes": False}
        request.notifyFinish().addErrback(lambda _: gone.update(yes=True))
        reply: Any = request  # Twisted leaves Request unannotated

        def send(code: int, content_type: str, body: bytes, filename: str | None = None) -> None:
            if gone["yes"]:
                return
            reply.setResponseCode(code)
            reply.setHeader(b"content-type", content_type.encode("ascii"))
            if filename is not None:
                reply.setHeader(b"content-disposition", f'attachment; filename="{filename}"'.encode("ascii"))
            reply.setHeader(b"content-length", str(len(body)).encode("ascii"))
            reply.write(body)
            reply.finish()

        def failed(failure: Any) -> None:
            error = failure.value
            if not isinstance(error, BusError):
                error = InternalError("Internal error", reason=failure.getErrorMessage())
            error.at(Origin.CLIENT_PROXY)
            _log.warning("asic_download_failed", **error.log_fields())
            status, headers, body = error.to_rest_error()
            if isinstance(error, AccessDenied):
                status = 403  # not a malformed request: this caller may not have these documents
            if not gone["yes"]:
                for name, value in headers.items():
                    reply.setHeader(name.encode("ascii"), value.encode("utf-8"))
            send(status, headers["Content-Type"], body)

        deferred: Deferred[tuple[int, str, bytes, str | None]] = ensureDeferred(self._answer(request))
        deferred.addCallbacks(lambda reply: send(*reply), failed)
        return NOT_DONE_YET

    async def _answer(self, request: Request) -> tuple[int, str, bytes, str | None]:
        if not self._allow_remote and not is_loopback(request):
            raise AccessDenied("Signed documents are available to local callers only")
        query = parse_asic_query(query_arguments(request))
        if not self._is_own_client(query.client):
            raise AccessDenied("Client is not a client of this security server", reason=f"{query.client} is not ours")
        records = await self._records(query)
        missing = [record for record, stamp in records if stamp is None]
        if missing:
            if not query.force or self._timestamper is None:
                raise InternalError(MISSING_TIMESTAMP_MESSAGE, reason=f"records {[r.id for r in missing]} wait for a timestamp")
            for record in missing:
                try:
                    await self._timestamper.stamp_record(record.id)
                except BusError as err:
                    raise TimestampingFailed(TIMESTAMPING_FAILED_MESSAGE, reason=err.reason) from err
            records = await self._records(query)
        if query.unique:
            if len(records) != 1:
                raise BadRequest("More than one signed document matches", reason=f"{len(records)} records match")
            record, stamp = records[0]
            data = await self._in_thread(record_container, record, stamp)
            _log.info("asic_downloaded", query_id=query.query_id, client=str(query.client), records=1)
            return 200, ASIC_MEDIA_TYPE, data, record_container_name(record)
        data = await self._in_thread(exchange_zip, records)
        _log.info("asic_downloaded", query_id=query.query_id, client=str(query.client), records=len(records))
        return 200, ZIP_MEDIA_TYPE, data, exchange_zip_name(query.query_id, query.direction)

    async def _records(self, query: AsicQuery) -> Stamped:
        def read(store: MessageLogStore) -> Stamped:
            found = [
                record
                for record in store.find(query.query_id)
                if record.signature
                and belongs_to(record, query.client)
                and (query.direction is None or record.direction is query.direction)
            ]
            return [(record, store.timestamp_of(record.id)) for record in found]

        records: Stamped = await self._writer.run(read)
        if not records:
            raise NotFound(NOT_FOUND_MESSAGE, reason=f"no signed records of {query.client} for {query.query_id!r}")
        return records

    def _in_thread(self, function: Callable[..., bytes], *args: Any) -> Deferred[bytes]:
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), function, *args)


class AsicMount(Resource):
    """A root resource that routes exactly ``/asic`` to :class:`AsicResource` and everything else to ``fallback``.

    The client proxy's resource is a leaf that dispatches on the whole path; this keeps it untouched.
    """

    def __init__(self, fallback: Resource, asic: AsicResource) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._fallback = fallback
        self._asic = asic

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        """``/asic`` (with any query) goes to the download service; every other path to the fallback leaf."""
        if path == b"asic" and not request.postpath:
            return self._asic
        return self._fallback

    def render(self, request: Request) -> bytes | int:
        """Reached only for an empty path (no segment at all): the fallback answers."""
        result: bytes | int = self._fallback.render(request)  # type: ignore[no-untyped-call]
        return result


def mount_asic(site: Any, asic: AsicResource) -> None:
    """Serve ``/asic`` on ``site`` (e.g. the client proxy's ``Site``) in front of its current root resource."""
    site.resource = AsicMount(site.resource, asic)
