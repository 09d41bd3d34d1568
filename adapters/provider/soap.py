"""Plain Python callables as an X-Road SOAP 4.0 service (document/literal wrapped), with a generated WSDL.

::

    provider = SoapProvider("http://population.example/producer", name="populationService")

    @provider.operation(version="v1", title="Look up a person by personal code")
    def getPerson(caller: Caller, personCode: str) -> Person:
        ...

    provider.wsdl("http://127.0.0.1:8081/")   # the WSDL: xrd:version on each binding operation, xrd:title
    provider.resource()                        # a twisted.web Resource: POST requests, GET ?wsdl

Every callable gets the :class:`~adapters.provider.caller.Caller` first (client, service, message id, user id),
then the request's fields as keyword arguments; it returns a mapping for the response wrapper. The request is
read by the bus's own hardened SOAP parser (pr-mess §2.2-§2.3: X-Road headers present and well formed, body
wrapper named after the service code), and the response echoes every request header in the same order with the
same values (pr-mess §2.2; the provider's security server then adds ``requestHash``).

Technical failures are SOAP faults (pr-mess Annex D.1): ``SOAP-ENV:Client`` for a request that does not fit the
operation, ``SOAP-ENV:Server`` for a callable that failed (its reason goes to our log under a fault-detail UUID,
never to the caller), or the code and string of a :class:`SoapFaultError` the callable raises. Business errors
belong in the response body (pr-mess Annex D.2).
"""

from __future__ import annotations

import copy
import inspect
import typing
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import structlog
from lxml import etree
from twisted.internet import threads
from twisted.web import resource, server

from adapters.provider import xroadheaders
from adapters.provider.caller import Caller
from adapters.provider.shapes import (
    XSD_NS,
    Field,
    ShapeError,
    ValueProblem,
    field_of,
    read_record,
    record_fields,
    write_record,
    xsd_sequence,
)
from security_server.core.errors import SOAP_ENV_NS, BusError
from security_server.core.identifiers import IDENTIFIERS_NS, XROAD_NS, check_part
from security_server.core.soap import SOAP_CONTENT_TYPE, parse_soap

log = structlog.get_logger()

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

__all__ = ["Operation", "SoapFaultError", "SoapProvider", "SoapResource"]


class SoapFaultError(Exception):
    """Raised by a callable to answer with a SOAP fault of its own choosing."""

    def __init__(self, string: str, *, code: str = "SOAP-ENV:Server", detail: str | None = None) -> None:
        super().__init__(string)
        self.code = code
        self.string = string
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: its name (the X-Road service code), version, title, callable and message shapes."""

    name: str
    version: str | None
    title: str | None
    function: Callable[..., Any]
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]


def _inputs(function: Callable[..., Any], name: str, titles: Mapping[str, str]) -> tuple[Field, ...]:
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in (parameters[0].POSITIONAL_ONLY, parameters[0].POSITIONAL_OR_KEYWORD):
        raise ShapeError(f"{name}: the first parameter must take the Caller")
    hints = typing.get_type_hints(function, include_extras=True)
    fields = []
    for parameter in parameters[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise ShapeError(f"{name}: parameter {parameter.name} must be a plain or keyword-only parameter")
        if parameter.name not in hints:
            raise ShapeError(f"{name}: parameter {parameter.name} needs a type annotation")
        fields.append(field_of(parameter.name, hints[parameter.name],
                               has_default=parameter.default is not parameter.empty, title=titles.get(parameter.name)))
    return tuple(fields)


def _outputs(function: Callable[..., Any], name: str, returns: Mapping[str, Any] | None,
             titles: Mapping[str, str]) -> tuple[Field, ...]:
    if returns is not None:
        return tuple(field_of(key, annotation, title=titles.get(key)) for key, annotation in returns.items())
    annotation = typing.get_type_hints(function, include_extras=True).get("return")
    if annotation is None or not typing.is_typeddict(annotation):
        raise ShapeError(f"{name}: annotate the return type with a TypedDict, or give returns={{field: type}}")
    return tuple(record_fields(annotation, titles))


class SoapProvider:
    """A set of operations sharing one target namespace, WSDL and endpoint."""

    def __init__(
        self,
        namespace: str,
        *,
        name: str = "xroadService",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        response_headers: bool = False,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.max_body_bytes = max_body_bytes
        self.response_headers = response_headers
        """Whether the WSDL declares the X-Road headers on each operation's output too (see ``xroadheaders``)."""
        self.operations: dict[str, Operation] = {}

    def operation(
        self,
        name: str | None = None,
        *,
        version: str | None = "v1",
        title: str | None = None,
        returns: Mapping[str, Any] | None = None,
        titles: Mapping[str, str] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: offer the function as operation ``name`` (default: the function's name)."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.add(function, name=name, version=version, title=title, returns=returns, titles=titles)
            return function

        return register

    def add(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        version: str | None = "v1",
        title: str | None = None,
        returns: Mapping[str, Any] | None = None,
        titles: Mapping[str, str] | None = None,
    ) -> Operation:
        """Offer ``function`` as an operation; its shapes are checked now."""
        code = name or function.__name__
        try:
            check_part(code, "serviceCode")  # the operation name is the X-Road service code (pr-mess §2.7)
        except BusError as err:
            raise ShapeError(f"{code!r} cannot be a service code: {err.message}") from err
        if code in self.operations:
            raise ValueError(f"operation {code} is already offered")
        operation = Operation(
            code, version, title, function, _inputs(function, code, titles or {}),
            _outputs(function, code, returns, titles or {}),
        )
        self.operations[code] = operation
        return operation

    # --- the WSDL ------------------------------------------------------------------------------------------

    def wsdl(self, address: str) -> bytes:
        """The WSDL 1.1 description, document/literal wrapped, with ``xrd:version`` and ``xrd:title``.

        Every binding operation declares the X-Road headers as ``soap:header`` parts of the ``requestheader``
        message, as X-Road's example WSDL does, so WSDL-driven clients (SoapUI, zeep) send them: on its input, and
        on its output too with ``response_headers``. Their schemas are inline, which keeps the WSDL self-contained
        (:mod:`adapters.provider.xroadheaders`).
        """
        tns = self.namespace
        nsmap = {"wsdl": WSDL_NS, "soap": WSDL_SOAP_NS, "xs": XSD_NS, "xrd": XROAD_NS, "tns": tns}
        root = etree.Element(f"{{{WSDL_NS}}}definitions", nsmap=nsmap, name=self.name, targetNamespace=tns)
        types = etree.SubElement(root, f"{{{WSDL_NS}}}types")
        schema = etree.SubElement(types, f"{{{XSD_NS}}}schema", targetNamespace=tns, elementFormDefault="unqualified")
        for op in self.operations.values():
            for element_name, fields in ((op.name, op.inputs), (f"{op.name}Response", op.outputs)):
                xsd_sequence(etree.SubElement(schema, f"{{{XSD_NS}}}element", name=element_name), fields, XROAD_NS)
        xroadheaders.add_header_schemas(types)
        for op in self.operations.values():
            for message in (op.name, f"{op.name}Response"):
                part = etree.SubElement(etree.SubElement(root, f"{{{WSDL_NS}}}message", name=message), f"{{{WSDL_NS}}}part")
                part.set("name", "body")
                part.set("element", f"tns:{message}")
        xroadheaders.add_header_message(root)
        port_type = etree.SubElement(root, f"{{{WSDL_NS}}}portType", name=f"{self.name}PortType")
        for op in self.operations.values():
            element = etree.SubElement(port_type, f"{{{WSDL_NS}}}operation", name=op.name)
            if op.title:
                documentation = etree.SubElement(element, f"{{{WSDL_NS}}}documentation")
                etree.SubElement(documentation, f"{{{XROAD_NS}}}title").text = op.title
            etree.SubElement(element, f"{{{WSDL_NS}}}input", message=f"tns:{op.name}")
            etree.SubElement(element, f"{{{WSDL_NS}}}output", message=f"tns:{op.name}Response")
        binding = etree.SubElement(root, f"{{{WSDL_NS}}}binding", name=f"{self.name}Binding", type=f"tns:{self.name}PortType")
        etree.SubElement(binding, f"{{{WSDL_SOAP_NS}}}binding", style="document", transport=SOAP_HTTP_TRANSPORT)
        for op in self.operations.values():
            element = etree.SubElement(binding, f"{{{WSDL_NS}}}operation", name=op.name)
            etree.SubElement(element, f"{{{WSDL_SOAP_NS}}}operation", soapAction="", style="document")
            if op.version is not None:
                # pr-mess Annex C / X-Road's WSDL parser: the service version is binding/operation/xrd:version.
                etree.SubElement(element, f"{{{XROAD_NS}}}version").text = op.version
            for direction in ("input", "output"):
                direction_element = etree.SubElement(element, f"{{{WSDL_NS}}}{direction}")
                etree.SubElement(direction_element, f"{{{WSDL_SOAP_NS}}}body", use="literal")
                if direction == "input" or self.response_headers:
                    xroadheaders.add_header_parts(direction_element, response=direction == "output")
        service = etree.SubElement(root, f"{{{WSDL_NS}}}service", name=self.name)
        port = etree.SubElement(service, f"{{{WSDL_NS}}}port", name=f"{self.name}Port", binding=f"tns:{self.name}Binding")
        etree.SubElement(port, f"{{{WSDL_SOAP_NS}}}address", location=address)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))

    # --- answering a request -------------------------------------------------------------------------------

    def handle(self, body: bytes, content_type: str) -> tuple[int, str, bytes]:
        """Answer one POSTed request: ``(HTTP status, content type, body)``; never raises."""
        try:
            request = parse_soap(body, content_type, max_bytes=self.max_body_bytes)
        except BusError as err:
            return _fault("SOAP-ENV:Client", f"Malformed request: {err.message}")
        header = request.header
        assert header is not None and request.wrapper is not None  # parse_soap checked a request has both
        wrapper = next(e for e in request.body if not isinstance(e, (etree._Comment, etree._ProcessingInstruction)))
        operation = self.operations.get(header.service.service_code)
        if operation is None or request.wrapper.namespace != self.namespace:
            return _fault("SOAP-ENV:Client", f"Unknown operation {request.wrapper.localname}")
        try:
            arguments = read_record(wrapper, operation.inputs, operation.name)
        except ValueProblem as err:
            return _fault("SOAP-ENV:Client", str(err))
        caller = Caller.from_soap(header)
        try:
            result = operation.function(caller, **arguments)
        except SoapFaultError as err:
            return _fault(err.code, err.string, err.detail)
        except Exception as err:  # noqa: BLE001 - a provider's bug must become a fault, not a dropped request
            detail = str(uuid.uuid4())
            log.error("operation_failed", operation=operation.name, fault_detail=detail, error=repr(err),
                      client=str(caller.client), message_id=caller.message_id)
            return _fault("SOAP-ENV:Server", "Internal error in the service", detail)
        envelope = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope",
                                 nsmap={"SOAP-ENV": SOAP_ENV_NS, "xrd": XROAD_NS, "id": IDENTIFIERS_NS})
        response_header = etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Header")
        request_header = request.root.find(f"{{{SOAP_ENV_NS}}}Header")
        assert request_header is not None
        for element in request_header:
            response_header.append(copy.deepcopy(element))  # pr-mess §2.2: every header echoed, same order
        response_body = etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body")
        wrapper_out = etree.SubElement(response_body, f"{{{self.namespace}}}{operation.name}Response",
                                       nsmap={"tns": self.namespace})
        try:
            write_record(wrapper_out, operation.outputs, result, operation.name)
        except ShapeError as err:
            detail = str(uuid.uuid4())
            log.error("operation_answer_unusable", operation=operation.name, fault_detail=detail, error=str(err))
            return _fault("SOAP-ENV:Server", "Internal error in the service", detail)
        log.info("operation_answered", operation=operation.name, client=str(caller.client),
                 user_id=caller.user_id, message_id=caller.message_id)
        return 200, SOAP_CONTENT_TYPE, bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))

    def resource(self, address: str | None = None, *, reactor: Any = None) -> SoapResource:
        """A twisted.web resource serving this provider (``address`` goes into the WSDL; default: as requested).

        Callables run in ``reactor``'s thread pool (default: the global reactor), never on the reactor thread.
        """
        return SoapResource(self, address, reactor=reactor)


def _fault(code: str, string: str, detail: str | None = None) -> tuple[int, str, bytes]:
    """A SOAP 1.1 fault (pr-mess Annex D.1), HTTP 500 (SOAP 1.1 §6.2)."""
    envelope = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"SOAP-ENV": SOAP_ENV_NS})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body"), f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = code
    etree.SubElement(fault, "faultstring").text = string
    if detail is not None:
        etree.SubElement(etree.SubElement(fault, "detail"), "faultDetail").text = detail
    return 500, SOAP_CONTENT_TYPE, bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


class SoapResource(resource.Resource):
    """POST: a request, answered in a worker thread (callables may block); GET with ``?wsdl``: the WSDL."""

    isLeaf = True

    def __init__(self, provider: SoapProvider, address: str | None = None, *, reactor: Any = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self.provider = provider
        self.address = address
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.reactor = reactor

    def render_GET(self, request: server.Request) -> bytes:
        """``?wsdl`` gives the WSDL; anything else is 404."""
        query = request.uri.split(b"?", 1)[1] if b"?" in request.uri else b""
        names = {item.split(b"=", 1)[0].lower() for item in query.split(b"&")}
        if b"wsdl" not in names:  # Twisted's request.args drops a bare "?wsdl"
            request.setResponseCode(404)
            return b"GET ?wsdl for the service description; POST SOAP requests\n"
        address = self.address or _own_address(request)
        request.setHeader(b"content-type", b"text/xml; charset=UTF-8")  # type: ignore[no-untyped-call]
        return self.provider.wsdl(address)

    def render_POST(self, request: server.Request) -> int:
        """Read at most the provider's limit, then answer in a thread."""
        limit = self.provider.max_body_bytes
        body = request.content.read(limit + 1) if request.content is not None else b""
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        if len(body) > limit:
            answer = _fault("SOAP-ENV:Client", f"Request larger than {limit} bytes")
            _finish(request, answer)
            return server.NOT_DONE_YET
        gone: list[object] = []
        request.notifyFinish().addErrback(gone.append)

        def done(answer: tuple[int, str, bytes]) -> None:
            if not gone:
                _finish(request, answer)

        threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self.provider.handle, body, content_type
        ).addCallback(done)
        return server.NOT_DONE_YET


def _own_address(request: server.Request) -> str:
    host = request.getRequestHostname().decode("latin-1")  # type: ignore[no-untyped-call]
    port = request.getHost().port  # type: ignore[no-untyped-call]
    path = request.path.decode("latin-1")
    return f"http://{host}:{port}{path}"


def _finish(request: server.Request, answer: tuple[int, str, bytes]) -> None:
    status, content_type, body = answer
    request.setResponseCode(status)
    request.setHeader(b"content-type", content_type.encode("latin-1"))  # type: ignore[no-untyped-call]
    request.setHeader(b"content-length", str(len(body)).encode("ascii"))  # type: ignore[no-untyped-call]
    request.write(body)  # type: ignore[no-untyped-call]
    request.finish()  # type: ignore[no-untyped-call]

