"""Calling X-Road SOAP services through one's own security server, with zeep.

A consumer department's system needs three things: the address of its security server's client proxy, its own
client identifier, and the provider's WSDL (a file, a URL, bytes, or fetched through the bus with X-Road's
``getWsdl`` metadata service, pr-meta §5)::

    consumer = SoapConsumer(
        "http://127.0.0.1:8080/",
        client=ClientId.parse_display("SUBSYSTEM:EE/GOV/70000001/tax-app"),
        provider=ClientId.parse_display("SUBSYSTEM:EE/GOV/70000002/population"),
        wsdl="population.wsdl",
    )
    person = consumer.service.getPerson(personCode="38001010001")      # zeep's value, as with zeep
    answer = consumer.call("getPerson", personCode="38001010001", user_id="EE38001010001")
    answer.value, answer.message_id, answer.header.request_hash        # with the X-Road headers of the answer

Each call adds the X-Road SOAP 4.0 headers (pr-mess §2.2: ``client``, ``service`` with the operation as service
code and the WSDL's ``xrd:version`` as service version, a fresh ``id``, ``protocolVersion`` 4.0, and optionally
``userId``, ``issue``, ``securityServer``), posts to the security server, and turns an X-Road fault into the
typed exception of its family (:mod:`adapters.consumer.faults`) carrying the fault code and fault-detail UUID.

WSDLs are treated as untrusted: parsed first by the hardened parser (no DOCTYPE, no entities), then by zeep with
DTDs, entities and external imports forbidden (SECURITY-CASES.md: hostile WSDL).
"""

from __future__ import annotations

import io
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import requests
import zeep
import zeep.exceptions
import zeep.transports
import zeep.wsdl.bindings.soap
from lxml import etree

from adapters.consumer.faults import (
    InvalidDescription,
    SecurityServerUnreachable,
    UnexpectedAnswer,
    fault_from_code,
)
from security_server.core.errors import BusError
from security_server.core.identifiers import XROAD_NS, ClientId, SecurityServerId, ServiceId
from security_server.core.multipart import boundary_of, parse_header_value, parse_multipart
from security_server.core.safexml import parse_xml
from security_server.core.soap import SOAP_CONTENT_TYPE, SoapHeader, build_envelope, header_elements, parse_soap

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
MAX_WSDL_BYTES = 5 * 1024 * 1024
"""A WSDL larger than this is refused before parsing."""
MAX_ANSWER_BYTES = 10 * 1024 * 1024
"""X-Road's default message size limit (SYSPAR: 10 MiB)."""

__all__ = ["SoapAnswer", "SoapConsumer", "fetch_wsdl", "raise_for_soap_fault", "xroad_versions"]


@dataclass(frozen=True, slots=True)
class SoapAnswer:
    """The answer to one call: zeep's value, the message id sent, and the answer's X-Road header."""

    value: Any
    message_id: str
    service: ServiceId
    header: SoapHeader | None
    """The response's X-Road header (with ``request_hash``); None when it could not be read."""
    raw: bytes
    """The exact bytes the security server answered with."""


@dataclass(frozen=True, slots=True)
class _Received:
    status: int
    content_type: str
    body: bytes


class _RecordingTransport(zeep.transports.Transport):
    """zeep's transport, remembering each thread's last answer and naming an unreachable security server."""

    def __init__(self, session: requests.Session | None, timeout: float) -> None:
        super().__init__(timeout=timeout, operation_timeout=timeout, session=session)  # type: ignore[no-untyped-call]
        self._local = threading.local()

    def post(self, address: str, message: bytes, headers: Mapping[str, str]) -> requests.Response:
        """POST through requests; a connection failure is :class:`SecurityServerUnreachable`."""
        self._local.last = None
        try:
            response: requests.Response = super().post(address, message, headers)  # type: ignore[no-untyped-call]
        except requests.RequestException as err:
            raise SecurityServerUnreachable(f"cannot reach the security server at {address}: {err}") from err
        self._local.last = _Received(
            response.status_code, response.headers.get("Content-Type", ""), response.content
        )
        return response

    def last(self) -> _Received | None:
        """This thread's last answer."""
        received: _Received | None = getattr(self._local, "last", None)
        return received

    def load(self, url: str) -> bytes:
        """Documents referenced by a WSDL are not fetched (zeep's forbid_external covers http; this covers file)."""
        raise InvalidDescription(f"the WSDL refers to another document ({url}); only self-contained WSDLs are loaded")


def _read_wsdl_source(wsdl: bytes | str | Path, session: requests.Session, timeout: float) -> bytes:
    if isinstance(wsdl, bytes):
        return wsdl
    text = str(wsdl)
    if text.startswith(("http://", "https://")):
        try:
            with session.get(text, timeout=timeout, stream=True) as response:
                response.raise_for_status()
                data = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > MAX_WSDL_BYTES:
                        break
        except requests.RequestException as err:
            raise InvalidDescription(f"cannot download the WSDL from {text}: {err}") from err
        return bytes(data)
    try:
        with Path(text).open("rb") as handle:
            return handle.read(MAX_WSDL_BYTES + 1)
    except OSError as err:
        raise InvalidDescription(f"cannot read the WSDL {text}: {err.strerror}") from err


def xroad_versions(wsdl: bytes) -> dict[str, str]:
    """The ``xrd:version`` of each operation of a WSDL's bindings (pr-mess Annex C: under binding/operation)."""
    try:
        root = parse_xml(wsdl, max_bytes=MAX_WSDL_BYTES)
    except BusError as err:
        raise InvalidDescription(f"the WSDL is not acceptable XML: {err.message}") from err
    if root.tag != f"{{{WSDL_NS}}}definitions":
        raise InvalidDescription("the document is not a WSDL 1.1 definitions element")
    versions: dict[str, str] = {}
    for operation in root.iterfind(f"{{{WSDL_NS}}}binding/{{{WSDL_NS}}}operation"):
        name = operation.get("name")
        version = operation.findtext(f"{{{XROAD_NS}}}version")
        if name and version and version.strip():
            versions.setdefault(name, version.strip())
    return versions


def raise_for_soap_fault(status: int, content_type: str, body: bytes) -> None:
    """Raise the typed fault if ``body`` is a SOAP fault; do nothing otherwise."""
    media = content_type.split(";")[0].strip().lower()
    if media not in ("text/xml", "application/soap+xml", "application/xop+xml") or b"Fault" not in body:
        return
    try:
        message = parse_soap(body, content_type or "text/xml", max_bytes=MAX_ANSWER_BYTES, is_response=True)
    except BusError:
        return
    if message.fault is not None:
        raise fault_from_code(
            message.fault.code, message.fault.string, detail_id=message.fault.detail, http_status=status,
            actor=message.fault.actor,
        )


def _detail_id(detail: Any) -> str | None:
    if detail is None or not isinstance(detail, etree._Element):
        return None
    for element in detail.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == "faultDetail":
            return (element.text or "").strip() or None
    return None


class SoapConsumer:
    """Calls the SOAP operations of one provider (a member or subsystem) through the consumer's security server."""

    def __init__(
        self,
        security_server_url: str,
        client: ClientId,
        provider: ClientId,
        *,
        wsdl: bytes | str | Path,
        user_id: str | None = None,
        issue: str | None = None,
        security_server: SecurityServerId | None = None,
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        if not isinstance(client, ClientId) or not isinstance(provider, ClientId):
            raise TypeError("client and provider must be ClientId values")
        self.security_server_url = security_server_url
        self.client = client
        self.provider = provider
        self.user_id = user_id
        self.issue = issue
        self.security_server = security_server
        self._transport = _RecordingTransport(session, timeout)
        self.wsdl = _read_wsdl_source(wsdl, self._transport.session, timeout)
        if len(self.wsdl) > MAX_WSDL_BYTES:
            raise InvalidDescription(f"the WSDL is larger than {MAX_WSDL_BYTES} bytes")
        self.versions = xroad_versions(self.wsdl)
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        try:
            self._zeep = zeep.Client(  # type: ignore[no-untyped-call]  # zeep is unannotated
                io.BytesIO(self.wsdl), transport=self._transport, settings=settings
            )
        except (zeep.exceptions.Error, etree.LxmlError, ValueError, KeyError) as err:
            raise InvalidDescription(f"zeep cannot load the WSDL: {err}") from err
        self._proxies: dict[str, Any] = {}
        for name, binding in self._zeep.wsdl.bindings.items():
            if not isinstance(binding, zeep.wsdl.bindings.soap.SoapBinding):
                continue
            proxy = None
            for operation in binding.all():  # type: ignore[no-untyped-call]
                if operation not in self._proxies:
                    proxy = proxy or self._zeep.create_service(name, security_server_url)  # type: ignore[no-untyped-call]
                    self._proxies[operation] = proxy
        if not self._proxies:
            raise InvalidDescription("the WSDL has no SOAP binding with operations")
        self.service = _Operations(self)

    @classmethod
    def from_security_server(
        cls,
        security_server_url: str,
        client: ClientId,
        service: ServiceId,
        *,
        user_id: str | None = None,
        issue: str | None = None,
        security_server: SecurityServerId | None = None,
        timeout: float = 60.0,
        session: requests.Session | None = None,
    ) -> SoapConsumer:
        """A consumer for ``service``'s provider, with the WSDL fetched through the bus (``getWsdl``)."""
        wsdl = fetch_wsdl(security_server_url, client, service, user_id=user_id, timeout=timeout, session=session)
        return cls(
            security_server_url, client, service.client, wsdl=wsdl, user_id=user_id, issue=issue,
            security_server=security_server, timeout=timeout, session=session,
        )

    @property
    def operations(self) -> list[str]:
        """The operations the WSDL offers, sorted."""
        return sorted(self._proxies)

    def service_id(self, operation: str, version: str | None = None) -> ServiceId:
        """The X-Road service an operation is: the provider, the operation name, the WSDL's ``xrd:version``."""
        return ServiceId(self.provider, operation, version if version is not None else self.versions.get(operation))

    def call(
        self,
        operation: str,
        /,
        *args: Any,
        message_id: str | None = None,
        user_id: str | None = None,
        issue: str | None = None,
        service_version: str | None = None,
        **kwargs: Any,
    ) -> SoapAnswer:
        """Call ``operation`` with zeep's arguments; return the value with the answer's X-Road header.

        Raises the typed :class:`~adapters.consumer.faults.XRoadFault` for a fault,
        :class:`~adapters.consumer.faults.SecurityServerUnreachable` when the security server cannot be reached,
        and :class:`~adapters.consumer.faults.UnexpectedAnswer` for anything else that is not an answer.
        """
        proxy = self._proxies.get(operation)
        if proxy is None:
            raise InvalidDescription(f"the WSDL has no operation {operation!r} (it has {', '.join(self.operations)})")
        service = self.service_id(operation, service_version)
        header = SoapHeader(
            client=self.client,
            service=service,
            id=message_id or str(uuid.uuid4()),
            user_id=user_id if user_id is not None else self.user_id,
            issue=issue if issue is not None else self.issue,
            security_server=self.security_server,
        )
        try:
            value = getattr(proxy, operation)(*args, _soapheaders=header_elements(header), **kwargs)
        except zeep.exceptions.Fault as fault:
            received = self._transport.last()
            # zeep's frames hold the HTTP response (and through it a pooled socket); the typed fault keeps the
            # zeep fault as its cause, without those frames, so that close() really closes the connection.
            fault.__traceback__ = None
            raise fault_from_code(
                str(fault.code or ""), str(fault.message or ""), detail_id=_detail_id(fault.detail),
                http_status=received.status if received else None, actor=fault.actor,
            ) from fault
        except zeep.exceptions.TransportError as err:
            err.__traceback__ = None  # as above: let go of zeep's frames and the response they hold
            raise UnexpectedAnswer(
                f"the security server answered HTTP {err.status_code} without a SOAP message", http_status=err.status_code
            ) from err
        except (zeep.exceptions.Error, etree.LxmlError) as err:
            err.__traceback__ = None
            received = self._transport.last()
            raise UnexpectedAnswer(
                f"cannot read the answer: {err}", http_status=received.status if received else None
            ) from err
        received = self._transport.last()
        raw = received.body if received else b""
        return SoapAnswer(value, header.id, service, self._answer_header(received), raw)

    @staticmethod
    def _answer_header(received: _Received | None) -> SoapHeader | None:
        if received is None or not received.content_type.lower().startswith("text/xml"):
            return None
        try:
            return parse_soap(received.body, received.content_type, max_bytes=MAX_ANSWER_BYTES, is_response=True).header
        except BusError:
            return None

    def close(self) -> None:
        """Close the HTTP session (and its keep-alive connections)."""
        self._transport.session.close()

    def __enter__(self) -> SoapConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Operations:
    """``consumer.service.<operation>(...)``: call an operation and get zeep's value, as with a zeep client."""

    def __init__(self, consumer: SoapConsumer) -> None:
        self._consumer = consumer

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        if operation.startswith("_"):
            raise AttributeError(operation)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._consumer.call(operation, *args, **kwargs).value

        call.__name__ = operation
        return call

    def __dir__(self) -> list[str]:
        return self._consumer.operations


# --- getWsdl (pr-meta §5, Annex C.6/C.7) ---------------------------------------------------------------------


def _get_wsdl_request(client: ClientId, service: ServiceId, message_id: str, user_id: str | None) -> bytes:
    metadata = ServiceId(service.client, "getWsdl")
    header = SoapHeader(client=client, service=metadata, id=message_id, user_id=user_id)
    wrapper = etree.Element(etree.QName(XROAD_NS, "getWsdl"), nsmap={"xrd": XROAD_NS})
    etree.SubElement(wrapper, etree.QName(XROAD_NS, "serviceCode")).text = service.service_code
    if service.service_version is not None:
        etree.SubElement(wrapper, etree.QName(XROAD_NS, "serviceVersion")).text = service.service_version
    return build_envelope(header, wrapper)


def fetch_wsdl(
    security_server_url: str,
    client: ClientId,
    service: ServiceId,
    *,
    user_id: str | None = None,
    timeout: float = 60.0,
    session: requests.Session | None = None,
) -> bytes:
    """The WSDL describing ``service``, fetched through the bus with X-Road's ``getWsdl`` (pr-meta §5).

    The answer is ``multipart/related``: the SOAP response first, the WSDL as the attachment.
    """
    http = session or requests.Session()
    body = _get_wsdl_request(client, service, str(uuid.uuid4()), user_id)
    try:
        response = http.post(
            security_server_url, data=body, headers={"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": ""},
            timeout=timeout,
        )
    except requests.RequestException as err:
        raise SecurityServerUnreachable(f"cannot reach the security server at {security_server_url}: {err}") from err
    finally:
        if session is None:
            http.close()
    content_type = response.headers.get("Content-Type", "")
    raise_for_soap_fault(response.status_code, content_type, response.content)
    try:
        parsed = parse_header_value(content_type)
        if parsed.media_type != "multipart/related":
            raise UnexpectedAnswer(f"getWsdl answered {parsed.media_type or 'no content type'}, not multipart/related",
                                   http_status=response.status_code)
        parts = parse_multipart(response.content, boundary_of(parsed, ("multipart/related",)))
    except BusError as err:
        raise UnexpectedAnswer(f"cannot read the getWsdl answer: {err.message}", http_status=response.status_code) from err
    if len(parts) < 2:
        raise UnexpectedAnswer("the getWsdl answer has no WSDL attachment", http_status=response.status_code)
    first = parts[0]
    raise_for_soap_fault(response.status_code, first.header("Content-Type") or "text/xml", first.body)
    return parts[1].body

