"""Typed exceptions for the faults a security server answers with, one class per X-Road fault family.

A fault code is ``origin.family[.subcode]`` in X-Road 7.8's form (``server.serverproxy.access_denied``,
``server.serverproxy.service_failed.http_error``; XROAD-REFERENCE.md §3.4), or the CamelCase form of X-Road up
to 7.7 (``Server.ServerProxy.AccessDenied``), which is read as the same family. The *family* is the code
without its origin and subcode; each family fedbus knows (the ``code`` of a class in
:mod:`security_server.core.errors`) has its own exception class here, named after the core class with
``Fault`` appended, so a consumer writes::

    try:
        consumer.service.getPerson(personCode="38001010001")
    except AccessDeniedFault as fault:
        print(fault.fault_code, fault.detail_id)

Every fault carries the code as received, the fault string, the fault-detail UUID (the key under which the
security server logged the details, pr-mess Annex D.1, pr-rest §4.6) and the HTTP status. Families are split,
as in the core, into :class:`XRoadClientFault` (the request was at fault) and :class:`XRoadServerFault` (a
security server or the provider failed). A SOAP fault that the *provider's own service* raised (its code is not
an X-Road code, e.g. ``SOAP-ENV:Server``) is a :class:`ProviderFault`. A family added to the core later still
gets its own class, made on first use (:func:`fault_class`).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Mapping, cast

from security_server.core import errors

_ORIGINS = ("server.clientproxy", "server.serverproxy", "client", "server", "signer")
"""Fault-code prefixes of X-Road, longest first (core.errors.Origin)."""

_LEGACY_FAMILIES = {"outdated_global_conf": "global_conf_outdated"}
"""Pre-7.8 codes whose words changed, not only their case (XROAD-REFERENCE.md §3.4)."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class AdapterError(Exception):
    """Root of the errors the consumer adapters raise."""


class SecurityServerUnreachable(AdapterError):
    """The consumer's own security server could not be reached (refused, timed out, TLS failed)."""


class UnexpectedAnswer(AdapterError):
    """The security server answered with something that is neither a message nor an X-Road fault."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class InvalidDescription(AdapterError):
    """A WSDL or OpenAPI description that cannot be used (malformed, hostile, or without the operation)."""


class XRoadFault(AdapterError):
    """A fault answered through the bus: its code, string, fault-detail UUID and HTTP status."""

    family: ClassVar[str | None] = None
    """The fault family (the core error ``code``), None for a code of no known family."""
    core_error: ClassVar[type[errors.BusError] | None] = None
    """The core error class that defines this family."""

    def __init__(
        self,
        fault_code: str,
        fault_string: str,
        *,
        detail_id: str | None = None,
        http_status: int | None = None,
        actor: str | None = None,
    ) -> None:
        super().__init__(f"{fault_code}: {fault_string}" + (f" (detail {detail_id})" if detail_id else ""))
        self.fault_code = fault_code
        self.fault_string = fault_string
        self.detail_id = detail_id
        self.http_status = http_status
        self.actor = actor
        origin, _, subcode = parse_fault_code(fault_code)
        self.origin = origin
        self.subcode = subcode

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fault_code!r}, {self.fault_string!r}, detail_id={self.detail_id!r})"


class XRoadClientFault(XRoadFault):
    """The request was at fault (``client.*`` codes and the client faults of the proxies, e.g. access_denied)."""


class XRoadServerFault(XRoadFault):
    """A security server, a trust service or the provider failed."""


class ProviderFault(XRoadFault):
    """A SOAP fault raised by the provider's own service and passed through the bus unchanged."""


# --- one class per family ----------------------------------------------------------------------------------
# Written out so that consumers can import and type-check them; tests/adapters/consumer/test_faults.py checks
# that every family of security_server.core.errors maps to a class of the right side.


class InternalErrorFault(XRoadServerFault):
    """``internal_error``: a bug or an unexpected state in a security server."""

    core_error = errors.InternalError


class BadRequestFault(XRoadClientFault):
    """``bad_request``: a malformed request (or one over a size limit)."""

    core_error = errors.BadRequest


class InvalidRequestFault(XRoadClientFault):
    """``invalid_request``: a well-formed request that breaks a protocol rule."""

    core_error = errors.InvalidRequest


class InvalidXmlFault(XRoadClientFault):
    """``invalid_xml``: XML that is not well formed or uses DOCTYPE or entities."""

    core_error = errors.InvalidXml


class InvalidContentTypeFault(XRoadClientFault):
    """``invalid_content_type``: a content type the security server does not accept."""

    core_error = errors.InvalidContentType


class InvalidHttpMethodFault(XRoadClientFault):
    """``invalid_http_method``: e.g. GET where SOAP needs POST (or REST is not offered)."""

    core_error = errors.InvalidHttpMethod


class MissingHeaderFault(XRoadClientFault):
    """``missing_header``: the SOAP header is missing."""

    core_error = errors.MissingHeader


class MissingHeaderFieldFault(XRoadClientFault):
    """``missing_header_field``: a required X-Road header field is missing."""

    core_error = errors.MissingHeaderField


class DuplicateHeaderFieldFault(XRoadClientFault):
    """``duplicate_header_field``: an X-Road header field appears twice."""

    core_error = errors.DuplicateHeaderField


class MissingBodyFault(XRoadClientFault):
    """``missing_body``: the SOAP body is missing."""

    core_error = errors.MissingBody


class MissingSoapFault(XRoadClientFault):
    """``missing_soap``: a multipart message without its SOAP part."""

    core_error = errors.MissingSoap


class InconsistentHeadersFault(XRoadClientFault):
    """``inconsistent_headers``: e.g. the body wrapper is not the service code."""

    core_error = errors.InconsistentHeaders


class InvalidProtocolVersionFault(XRoadClientFault):
    """``invalid_protocol_version``: a protocolVersion other than 4.x."""

    core_error = errors.InvalidProtocolVersion


class InvalidClientIdentifierFault(XRoadClientFault):
    """``invalid_client_identifier``: an identifier of the wrong shape or with forbidden characters."""

    core_error = errors.InvalidClientIdentifier


class ServiceTypeFault(XRoadClientFault):
    """``service_type``: a SOAP service called over REST or the other way round."""

    core_error = errors.ServiceType


class UnknownMemberFault(XRoadClientFault):
    """``unknown_member``: a client or provider the bus does not know (or not registered on that server)."""

    core_error = errors.UnknownMember


class UnknownServiceFault(XRoadClientFault):
    """``unknown_service``: the provider's security server does not offer this service."""

    core_error = errors.UnknownService


class ServiceDisabledFault(XRoadClientFault):
    """``service_disabled``: the provider has disabled the service (the fault string holds its notice)."""

    core_error = errors.ServiceDisabled


class AccessDeniedFault(XRoadClientFault):
    """``access_denied``: no access right lets this client call this service."""

    core_error = errors.AccessDenied


class MissingSignatureFault(XRoadClientFault):
    """``missing_signature``: a message without a signature."""

    core_error = errors.MissingSignature


class InvalidSignatureValueFault(XRoadClientFault):
    """``invalid_signature_value``: a signature that does not verify."""

    core_error = errors.InvalidSignatureValue


class MalformedSignatureFault(XRoadClientFault):
    """``malformed_signature``: a signature of the wrong structure."""

    core_error = errors.MalformedSignature


class InvalidHashChainFault(XRoadClientFault):
    """``invalid_hash_chain``: a hash chain that does not lead to its result."""

    core_error = errors.InvalidHashChain


class HashChainUnusedInputsFault(XRoadClientFault):
    """``hashchain_unused_inputs``: a hash chain with unreferenced inputs."""

    core_error = errors.HashChainUnusedInputs


class InconsistentResponseFault(XRoadClientFault):
    """``inconsistent_response``: a response that does not match its request."""

    core_error = errors.InconsistentResponse


class CertValidationFault(XRoadClientFault):
    """``cert_validation``: a certificate that is not acceptable."""

    core_error = errors.CertValidation


class InvalidCertPathFault(XRoadClientFault):
    """``invalid_cert_path``: a certificate that does not chain to an approved CA."""

    core_error = errors.InvalidCertPath


class IncorrectValidationInfoFault(XRoadClientFault):
    """``incorrect_validation_info``: OCSP or timestamp evidence that is stale, untrusted or broken."""

    core_error = errors.IncorrectValidationInfo


class SslAuthenticationFailedFault(XRoadClientFault):
    """``ssl_authentication_failed``: a peer security server's TLS certificate was refused."""

    core_error = errors.SslAuthenticationFailed


class InvalidSecurityServerFault(XRoadClientFault):
    """``invalid_security_server``: a securityServer header naming another server."""

    core_error = errors.InvalidSecurityServer


class ClientProxyVersionNotSupportedFault(XRoadClientFault):
    """``client_proxy_version_not_supported``: the consumer's security server is too old for the provider's."""

    core_error = errors.ClientProxyVersionNotSupported


class IoErrorFault(XRoadServerFault):
    """``io_error``: reading or writing a stream failed."""

    core_error = errors.IoError


class NetworkErrorFault(XRoadServerFault):
    """``network_error``: no connection to the provider's security server (or it broke)."""

    core_error = errors.NetworkError


class DatabaseErrorFault(XRoadServerFault):
    """``database_error``: a security server's store could not be read or written."""

    core_error = errors.DatabaseError


class LoggingFailedFault(XRoadServerFault):
    """``logging_failed``: the message log could not record the exchange, so it was not sent."""

    core_error = errors.LoggingFailed


class TimestampingFailedFault(XRoadServerFault):
    """``timestamping_failed``: timestamping has failed for longer than the grace period."""

    core_error = errors.TimestampingFailed


class ServiceFailedFault(XRoadServerFault):
    """``service_failed``: the provider's service failed; :attr:`subcode` says how (http_error, timeout, ...)."""

    core_error = errors.ServiceFailed


class GlobalConfOutdatedFault(XRoadServerFault):
    """``global_conf_outdated``: the security server's global configuration has expired."""

    core_error = errors.GlobalConfOutdated


class MaintenanceModeFault(XRoadServerFault):
    """``maintenance_mode``: the security server is in maintenance mode."""

    core_error = errors.MaintenanceMode


class InvalidSoapFault(XRoadClientFault):
    """``invalid_soap``: not a SOAP 1.1 envelope."""

    core_error = errors.InvalidSoap


class InvalidBodyFault(XRoadClientFault):
    """``invalid_body``: a SOAP body without exactly one element."""

    core_error = errors.InvalidBody


class InvalidMessageFault(XRoadClientFault):
    """``invalid_message``: a transport message with parts out of order."""

    core_error = errors.InvalidMessage


class IncorrectCertificateFault(XRoadClientFault):
    """``incorrect_certificate``: a signing certificate of another member than the message names."""

    core_error = errors.IncorrectCertificate


_DECLARED: tuple[type[XRoadFault], ...] = (
    InternalErrorFault, BadRequestFault, InvalidRequestFault, InvalidXmlFault, InvalidContentTypeFault,
    InvalidHttpMethodFault, MissingHeaderFault, MissingHeaderFieldFault, DuplicateHeaderFieldFault, MissingBodyFault,
    MissingSoapFault, InconsistentHeadersFault, InvalidProtocolVersionFault, InvalidClientIdentifierFault,
    ServiceTypeFault, UnknownMemberFault, UnknownServiceFault, ServiceDisabledFault, AccessDeniedFault,
    MissingSignatureFault, InvalidSignatureValueFault, MalformedSignatureFault, InvalidHashChainFault,
    HashChainUnusedInputsFault, InconsistentResponseFault, CertValidationFault, InvalidCertPathFault,
    IncorrectValidationInfoFault, SslAuthenticationFailedFault, InvalidSecurityServerFault,
    ClientProxyVersionNotSupportedFault, IoErrorFault, NetworkErrorFault, DatabaseErrorFault, LoggingFailedFault,
    TimestampingFailedFault, ServiceFailedFault, GlobalConfOutdatedFault, MaintenanceModeFault, InvalidSoapFault,
    InvalidBodyFault, InvalidMessageFault, IncorrectCertificateFault,
)

_FAMILIES: dict[str, type[XRoadFault]] = {}
for _declared in _DECLARED:
    assert _declared.core_error is not None
    _declared.family = _declared.core_error.code
    _FAMILIES[_declared.core_error.code] = _declared


def _core_classes() -> dict[str, type[errors.BusError]]:
    """The first core error class defining each code, in the order errors.py declares them."""
    found: dict[str, type[errors.BusError]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.BusError) and value.code not in found:
            if value not in (errors.BusError, errors.ClientFault, errors.ServerFault):
                found[value.code] = value
    return found


def fault_class(family: str) -> type[XRoadFault] | None:
    """The exception class of a fault family, or None if no core error defines it.

    A family defined in the core after this module was written gets a class made (once) from its core class.
    """
    known = _FAMILIES.get(family)
    if known is not None:
        return known
    core = _core_classes().get(family)
    if core is None:
        return None
    base: type[XRoadFault] = XRoadClientFault if issubclass(core, errors.ClientFault) else XRoadServerFault
    made = cast(
        "type[XRoadFault]",
        type(f"{core.__name__}Fault", (base,), {"__doc__": f"``{family}`` ({core.__doc__})", "__module__": __name__}),
    )
    made.family = family
    made.core_error = core
    _FAMILIES[family] = made
    return made


def _snake(word: str) -> str:
    return _CAMEL.sub("_", word).lower()


def parse_fault_code(code: str) -> tuple[str | None, str | None, str | None]:
    """Split a fault code into (origin, family, subcode); (None, None, None) when it is not an X-Road code.

    ``Server.ServerProxy.ServiceFailed.HttpError`` (X-Road up to 7.7) reads as
    ``("server.serverproxy", "service_failed", "http_error")``, like its 7.8 form.
    """
    text = code.strip()
    if not text or ":" in text or " " in text:
        return None, None, None  # a QName such as SOAP-ENV:Server is the provider's, not X-Road's
    words = text.split(".")
    if any(ch.isupper() for ch in text):
        words = [word.lower() if index < 2 and word.lower() in {"server", "client", "signer", "clientproxy",
                                                                  "serverproxy"} else _snake(word)
                 for index, word in enumerate(words)]
    normal = ".".join(words)
    for origin in _ORIGINS:
        if normal.startswith(origin + "."):
            rest = normal[len(origin) + 1:].split(".")
            family = _LEGACY_FAMILIES.get(rest[0], rest[0])
            subcode = ".".join(rest[1:]) or None
            return (origin, family, subcode) if family else (None, None, None)
    return None, None, None


def fault_from_code(
    fault_code: str,
    fault_string: str,
    *,
    detail_id: str | None = None,
    http_status: int | None = None,
    actor: str | None = None,
) -> XRoadFault:
    """The typed exception for a fault as received (SOAP fault or REST error)."""
    origin, family, _ = parse_fault_code(fault_code)
    cls: type[XRoadFault]
    if origin is None or family is None:
        cls = ProviderFault
    else:
        cls = fault_class(family) or (XRoadClientFault if origin == "client" else XRoadServerFault)
    return cls(fault_code, fault_string, detail_id=detail_id, http_status=http_status, actor=actor)


def fault_from_rest_error(body: bytes, error_header: str, http_status: int) -> XRoadFault:
    """The typed exception for a REST error (pr-rest §4.6): ``X-Road-Error`` plus JSON type/message/detail.

    The header names the code; the JSON body, when it parses, adds the message and the detail UUID.
    """
    message = ""
    detail: str | None = None
    code = error_header.strip()
    try:
        parsed: Any = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        parsed = None
    if isinstance(parsed, Mapping):
        if isinstance(parsed.get("type"), str) and parsed["type"]:
            code = parsed["type"] if not code else code
        if isinstance(parsed.get("message"), str):
            message = parsed["message"]
        if isinstance(parsed.get("detail"), str) and parsed["detail"]:
            detail = parsed["detail"]
    return fault_from_code(code or "server.internal_error", message, detail_id=detail, http_status=http_status)
