"""Calling X-Road REST services (protocol r1) through one's own security server.

::

    consumer = RestConsumer("http://127.0.0.1:8080", client=ClientId.parse_display("SUBSYSTEM:EE/GOV/70000001/tax-app"))
    persons = ServiceId.parse_display("SERVICE:EE/GOV/70000002/population/persons")
    answer = consumer.get(persons, ["38001010001"], user_id="EE38001010001")
    answer.status, answer.json(), answer.message_id

A request goes to ``/r1/{instance}/{memberClass}/{memberCode}/{subsystemCode}/{serviceCode}[/path]`` on the
client proxy (pr-rest §4.1), every segment percent-encoded on its own: the service identifier by
:meth:`ServiceId.to_path`, the path after it segment by segment (``/`` inside a segment is encoded, and ``.`` and
``..`` segments are refused, so no path can be normalised into another service's). ``X-Road-Client`` is always
sent; ``X-Road-Id`` (a fresh UUID unless given), ``X-Road-UserId``, ``X-Road-Issue`` and
``X-Road-Security-Server`` when set (pr-rest §4.3).

An error that arose inside the bus carries ``X-Road-Error`` and a JSON body ``{"type", "message", "detail"}``
(pr-rest §4.6); it is raised as the typed exception of its family (:mod:`adapters.consumer.faults`). The
provider's own statuses and bodies pass through the bus unchanged and are returned, not raised.
"""

from __future__ import annotations

import json as jsonlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import requests

from adapters.consumer.faults import SecurityServerUnreachable, UnexpectedAnswer, fault_from_rest_error
from adapters.consumer.soap import raise_for_soap_fault
from security_server.core.identifiers import ClientId, SecurityServerId, ServiceId

MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""Answers larger than this are refused rather than read into memory."""

__all__ = ["RestAnswer", "RestConsumer", "encode_path"]


def encode_path(path: str | Sequence[str]) -> str:
    """The path after the service code, each segment percent-encoded on its own (pr-rest §4.1).

    A string is split at ``/`` (a leading slash is optional); a sequence gives the segments themselves, which
    may then contain ``/``. Empty, ``.`` and ``..`` segments are refused, except one trailing empty segment
    (a trailing slash).
    """
    if isinstance(path, str):
        segments = path.removeprefix("/").split("/") if path else []
    else:
        segments = list(path)
    encoded = []
    for index, segment in enumerate(segments):
        if not isinstance(segment, str):
            raise TypeError("path segments must be strings")
        if segment in (".", ".."):
            raise ValueError(f"path segment {segment!r} is not allowed (it would be normalised away)")
        if not segment and index != len(segments) - 1:
            raise ValueError("empty path segment")
        encoded.append(quote(segment, safe=""))
    return "".join("/" + segment for segment in encoded)


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """The provider's answer as the bus delivered it, with the X-Road response headers."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    """Response headers, names lower-cased."""
    body: bytes = field(repr=False)
    message_id: str | None = None
    """``X-Road-Id``: the id of this exchange."""
    request_id: str | None = None
    """``X-Road-Request-Id``: the id the security servers use for it."""
    request_hash: str | None = None
    """``X-Road-Request-Hash`` (pr-rest §4.3), checked by the consumer's security server."""

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` of the body."""
        return self.headers.get("content-type", "")

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (replacing undecodable bytes)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; :class:`UnexpectedAnswer` when it is not JSON."""
        try:
            return jsonlib.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise UnexpectedAnswer(f"the answer is not JSON ({self.content_type or 'no content type'})",
                                   http_status=self.status) from err

    @property
    def ok(self) -> bool:
        """Whether the provider answered with a 2xx status."""
        return 200 <= self.status < 300


class RestConsumer:
    """A REST r1 client of one consumer system (``client``) talking to its own security server."""

    def __init__(
        self,
        security_server_url: str,
        client: ClientId,
        *,
        user_id: str | None = None,
        issue: str | None = None,
        security_server: SecurityServerId | None = None,
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        if not isinstance(client, ClientId):
            raise TypeError("client must be a ClientId")
        self.base_url = security_server_url.rstrip("/")
        self.client = client
        self.user_id = user_id
        self.issue = issue
        self.security_server = security_server
        self.timeout = timeout
        self._own_session = session is None
        self.session = session or requests.Session()

    def url_for(self, service: ServiceId, path: str | Sequence[str] = "") -> str:
        """``{security server}/r1/{service path}{path}``, every segment encoded on its own."""
        return f"{self.base_url}/r1/{service.to_path()}{encode_path(path)}"

    def headers_for(
        self, *, message_id: str | None = None, user_id: str | None = None, issue: str | None = None
    ) -> dict[str, str]:
        """The X-Road request headers (pr-rest §4.3)."""
        headers = {"X-Road-Client": self.client.to_path(), "X-Road-Id": message_id or str(uuid.uuid4())}
        chosen_user = user_id if user_id is not None else self.user_id
        if chosen_user is not None:
            headers["X-Road-UserId"] = chosen_user
        chosen_issue = issue if issue is not None else self.issue
        if chosen_issue is not None:
            headers["X-Road-Issue"] = chosen_issue
        if self.security_server is not None:
            headers["X-Road-Security-Server"] = self.security_server.to_path()
        return headers

    def request(
        self,
        method: str,
        service: ServiceId,
        path: str | Sequence[str] = "",
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        user_id: str | None = None,
        issue: str | None = None,
    ) -> RestAnswer:
        """Send one request; return the provider's answer, or raise the typed fault of an X-Road error."""
        return self._send(method, self.url_for(service, path), params=params, json=json, data=data, headers=headers,
                          message_id=message_id, user_id=user_id, issue=issue)

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        user_id: str | None = None,
        issue: str | None = None,
        accept: str | None = None,
    ) -> RestAnswer:
        sent = dict(headers or {})
        if accept is not None:
            sent.setdefault("Accept", accept)
        sent.update(self.headers_for(message_id=message_id, user_id=user_id, issue=issue))
        try:
            response = self.session.request(
                method.upper(), url, params=params, json=json, data=data, headers=sent, timeout=self.timeout,
                allow_redirects=False, stream=True,
            )
        except requests.RequestException as err:
            raise SecurityServerUnreachable(f"cannot reach the security server at {self.base_url}: {err}") from err
        with response:
            body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        if len(body) > MAX_ANSWER_BYTES:
            raise UnexpectedAnswer(f"the answer is larger than {MAX_ANSWER_BYTES} bytes", http_status=response.status_code)
        lowered = {name.lower(): value for name, value in response.headers.items()}
        error = lowered.get("x-road-error")
        if error is not None:
            raise fault_from_rest_error(body, error, response.status_code)
        # A security server that does not speak REST answers with a SOAP fault (e.g. invalid_http_method).
        raise_for_soap_fault(response.status_code, lowered.get("content-type", ""), body)
        return RestAnswer(
            status=response.status_code,
            headers=lowered,
            body=body,
            message_id=lowered.get("x-road-id", sent["X-Road-Id"]),
            request_id=lowered.get("x-road-request-id"),
            request_hash=lowered.get("x-road-request-hash"),
        )

    def get(self, service: ServiceId, path: str | Sequence[str] = "", **kwargs: Any) -> RestAnswer:
        """GET; keyword arguments as for :meth:`request`."""
        return self.request("GET", service, path, **kwargs)

    def post(self, service: ServiceId, path: str | Sequence[str] = "", **kwargs: Any) -> RestAnswer:
        """POST; keyword arguments as for :meth:`request`."""
        return self.request("POST", service, path, **kwargs)

    def put(self, service: ServiceId, path: str | Sequence[str] = "", **kwargs: Any) -> RestAnswer:
        """PUT; keyword arguments as for :meth:`request`."""
        return self.request("PUT", service, path, **kwargs)

    def delete(self, service: ServiceId, path: str | Sequence[str] = "", **kwargs: Any) -> RestAnswer:
        """DELETE; keyword arguments as for :meth:`request`."""
        return self.request("DELETE", service, path, **kwargs)

    # --- metadata services (pr-mrest §3-§5, pr-meta §3) ---------------------------------------------------------

    def list_clients(self) -> Any:
        """``GET /listClients`` as JSON: the members and subsystems of the federation (pr-meta §3)."""
        answer = self._send("GET", f"{self.base_url}/listClients", accept="application/json")
        return self._json(answer)

    def list_methods(self, provider: ClientId) -> Any:
        """``GET /r1/{provider}/listMethods``: the REST services of a provider (pr-mrest §4)."""
        return self._json(self._send("GET", f"{self.base_url}/r1/{provider.to_path()}/listMethods",
                                     accept="application/json"))

    def allowed_methods(self, provider: ClientId) -> Any:
        """``GET /r1/{provider}/allowedMethods``: the REST services this client may call (pr-mrest §4)."""
        return self._json(self._send("GET", f"{self.base_url}/r1/{provider.to_path()}/allowedMethods",
                                     accept="application/json"))

    def get_openapi(self, service: ServiceId) -> bytes:
        """``GET /r1/{provider}/getOpenAPI?serviceCode=...``: the service's OpenAPI description (pr-mrest §5)."""
        url = f"{self.base_url}/r1/{service.client.to_path()}/getOpenAPI"
        answer = self._send("GET", url, params={"serviceCode": service.service_code})
        if not answer.ok:
            raise UnexpectedAnswer(f"getOpenAPI answered HTTP {answer.status}", http_status=answer.status)
        return answer.body

    @staticmethod
    def _json(answer: RestAnswer) -> Any:
        if not answer.ok:
            raise UnexpectedAnswer(f"the security server answered HTTP {answer.status}", http_status=answer.status)
        return answer.json()

    def close(self) -> None:
        """Close the HTTP session this consumer made."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> RestConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
