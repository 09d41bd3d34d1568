"""What an operation of a management API receives and answers: :class:`ApiRequest`, :class:`ApiResponse`.

An operation is a plain function ``(context, ApiRequest) -> ApiResponse`` that runs in a worker thread (it opens
SQLite stores; Twisted's rule is no blocking on the reactor), translates JSON into the service layer's value types,
calls one function of the role's service layer, and turns its value into X-Road's JSON. Request bodies are checked
strictly: malformed JSON, a field the operation does not know, or a value of the wrong type is a 400 with X-Road's
error object, before anything changes.

This module, :mod:`.routing`, :mod:`.resource`, :mod:`.credentials`, :mod:`.passwords`, :mod:`.sessions`,
:mod:`.throttle`, :mod:`.audit`, :mod:`.errors`, :mod:`.ids`, :mod:`.config` and :mod:`.tls` know no role: they
import only the core, the edge toolkit and the store layer, so that the registry's API (issue 17) is built on them
with its own roles, context and operations.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Callable, Mapping, Protocol

from twisted.internet.defer import Deferred

from security_server.management.credentials import CredentialStore
from security_server.management.errors import ApiError, bad_request

JSON = "application/json"


class AuthKind(enum.StrEnum):
    """How the caller proved who it is."""

    API_KEY = "api-key"
    SESSION = "session"
    BASIC = "basic"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a name for the audit log and its roles."""

    name: str
    roles: frozenset[str]
    auth: AuthKind


@dataclass(frozen=True, slots=True)
class FormPart:
    """One part of a ``multipart/form-data`` body: its file name (None for a plain field) and its bytes."""

    filename: str | None
    data: bytes

    def text(self, name: str) -> str:
        """The part as a UTF-8 text field; 400 ``invalid_field`` otherwise."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise bad_request("invalid_field", name) from err


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One request, parsed as far as the transport goes."""

    method: str
    path: str
    params: Mapping[str, str]
    query: Mapping[str, tuple[str, ...]]
    body: bytes
    content_type: str | None
    principal: Principal | None = None

    def json(self) -> Any:
        """The body as JSON; 400 ``invalid_json`` when it is not."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise bad_request("invalid_json", "the request body is not JSON") from err

    def json_object(self, allowed: frozenset[str], required: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The body as a JSON object with only ``allowed`` fields and every ``required`` one."""
        data = self.json()
        if not isinstance(data, dict):
            raise bad_request("invalid_json", "the request body must be a JSON object")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise bad_request("unknown_field", *unknown)
        missing = sorted(required - set(data))
        if missing:
            raise bad_request("missing_field", *missing)
        return data

    def form_parts(self, *metadata: str) -> dict[str, FormPart]:
        """The parts of a ``multipart/form-data`` body by field name (X-Road's file uploads); 400 when the body is
        not one (with ``metadata`` in the error object)."""
        content_type = self.content_type or ""
        if not content_type.lower().startswith("multipart/form-data"):
            raise bad_request("invalid_content_type", *(metadata or ("multipart/form-data",)))
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        if not message.is_multipart():
            raise bad_request("invalid_multipart", *metadata)
        parts: dict[str, FormPart] = {}
        for part in message.iter_parts():
            assert isinstance(part, Message)
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                parts[name] = FormPart(part.get_filename(), payload)
        return parts

    def query_value(self, name: str) -> str | None:
        """One query parameter (the last one given), or None."""
        values = self.query.get(name)
        return values[-1] if values else None

    def query_bool(self, name: str, default: bool) -> bool:
        """A ``true``/``false`` query parameter."""
        value = self.query_value(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise bad_request("invalid_parameter", name)
        return value.lower() == "true"


def string_field(data: Mapping[str, Any], name: str, *, required: bool = True, max_length: int = 255) -> str | None:
    """A string field of a JSON object; 400 ``invalid_field`` when it has another type or length."""
    value = data.get(name)
    if value is None:
        if required:
            raise bad_request("missing_field", name)
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise bad_request("invalid_field", name)
    return value


def bool_field(data: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """A boolean field of a JSON object."""
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise bad_request("invalid_field", name)
    return value


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An answer: JSON (``body``) or bytes (``raw`` with its ``content_type``)."""

    status: int
    body: Any = None
    raw: bytes | None = None
    content_type: str = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


def no_content() -> ApiResponse:
    """204."""
    return ApiResponse(204)


class ApiContext(Protocol):
    """What the resource itself needs of an API's context: the credential store (opened in the calling
    thread). Each role's context (:class:`~security_server.management.context.OperationContext` for the security
    server) adds what its operations use."""

    def credentials(self) -> CredentialStore:
        """Open the credential store."""


Handler = Callable[[Any, ApiRequest], "ApiResponse | Deferred[ApiResponse]"]
"""An operation: its role's context and the request to an answer, or (for an ``in_reactor`` operation only) a
Deferred of one."""


class Access(enum.Enum):
    """Which credentials an operation takes."""

    API = "api"
    """An API key or a session (every operation of X-Road's OpenAPI file)."""
    KEY_ADMIN = "key-admin"
    """A user's password (HTTP Basic) or a session: API keys are made and revoked by people, not by keys."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: its method, path template, X-Road operationId, allowed roles and handler."""

    method: str
    path: str
    name: str
    roles: frozenset[str]
    handler: Handler
    access: Access = Access.API
    in_reactor: bool = False
    """Runs on the reactor thread (it touches the running server's state, or reaches out and hands its blocking
    work to ``context.blocking``), and may answer a Deferred."""

    @property
    def writes(self) -> bool:
        """Whether it changes something (and is audited, and needs the XSRF header with a session)."""
        return self.method != "GET"

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError(f"unsupported method {self.method}")
        if not self.roles:
            raise ValueError(f"{self.name}: no role may call it")


def problem(status: int, code: str, *metadata: str) -> ApiError:
    """An :class:`ApiError` for an operation to raise."""
    return ApiError(status, code, *metadata)
