"""The one error tree of fedbus, with X-Road's fault codes and their two renderings.

Every failure that reaches a caller is a :class:`BusError`. The class says *what* went wrong (its X-Road
``code``) and *who* is at fault (:class:`ClientFault` or :class:`ServerFault`); the instance says *where* it
was detected (the ``origin`` prefix of the fault code, e.g. ``server.clientproxy``). The fault code is the
X-Road 7.8 form ``origin.code[.subcode]`` (XROAD-REFERENCE.md §3.4; X-Road commit 4229e1292e).

A security failure tells the peer only its category (``message``) and a fault-detail UUID; the specific
``reason`` stays in our log under the same UUID (CONVENTIONS.md habit 6).
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from typing import ClassVar, Mapping

from lxml import etree

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"


_NOT_XML_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold replaced, so a message quoting bad input still renders."""
    return _NOT_XML_CHARACTERS.sub("\ufffd", text)


class Origin(enum.StrEnum):
    """The prefix of a fault code: which party or component detected the fault."""

    CLIENT = "client"
    SERVER = "server"
    CLIENT_PROXY = "server.clientproxy"
    SERVER_PROXY = "server.serverproxy"
    SIGNER = "signer"


class BusError(Exception):
    """Root of every fedbus error; renders as a SOAP fault or REST error JSON."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    default_origin: ClassVar[Origin] = Origin.SERVER

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        origin: Origin | None = None,
        subcode: str | None = None,
        detail_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason if reason is not None else message
        self.origin = origin if origin is not None else self.default_origin
        self.subcode = subcode
        self.detail_id = detail_id if detail_id is not None else str(uuid.uuid4())

    @property
    def fault_code(self) -> str:
        """The X-Road 7.8 fault code, e.g. ``server.serverproxy.access_denied``."""
        parts = [str(self.origin), self.code]
        if self.subcode:
            parts.append(self.subcode)
        return ".".join(parts)

    def at(self, origin: Origin) -> BusError:
        """Re-home this error to the component that reports it, keeping its detail id."""
        self.origin = origin
        return self

    def log_fields(self) -> dict[str, str]:
        """Key-value fields for our own log: the fault code, the detail id and the private reason."""
        return {"fault_code": self.fault_code, "fault_detail": self.detail_id, "reason": self.reason}

    def to_soap_fault(self) -> bytes:
        """Render as an X-Road SOAP 1.1 technical fault (pr-mess Annex D.1)."""
        envelope = etree.Element(etree.QName(SOAP_ENV_NS, "Envelope"), nsmap={"SOAP-ENV": SOAP_ENV_NS})
        body = etree.SubElement(envelope, etree.QName(SOAP_ENV_NS, "Body"))
        fault = etree.SubElement(body, etree.QName(SOAP_ENV_NS, "Fault"))
        etree.SubElement(fault, "faultcode").text = self.fault_code
        etree.SubElement(fault, "faultstring").text = _xml_text(self.message)
        etree.SubElement(fault, "faultactor").text = ""
        detail = etree.SubElement(fault, "detail")
        etree.SubElement(detail, "faultDetail").text = self.detail_id
        return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))

    def to_rest_error(self) -> tuple[int, Mapping[str, str], bytes]:
        """Render as REST r1 error JSON with the ``X-Road-Error`` header (pr-rest §4.6)."""
        body = json.dumps({"type": self.fault_code, "message": self.message, "detail": self.detail_id})
        headers = {"Content-Type": "application/json", "X-Road-Error": self.fault_code}
        return self.http_status, headers, body.encode("utf-8")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fault_code!r}, {self.message!r}, detail_id={self.detail_id!r})"


class ClientFault(BusError):
    """The caller or the peer sent something we cannot accept."""

    code = "bad_request"
    http_status = 400
    default_origin = Origin.CLIENT


class ServerFault(BusError):
    """Our side, a trust service, or the provider failed."""

    code = "internal_error"
    http_status = 500
    default_origin = Origin.SERVER


# --- client faults: the request itself is bad -------------------------------------------------------------


class BadRequest(ClientFault):
    """A malformed request that fits no narrower code."""

    code = "bad_request"


class InvalidRequest(ClientFault):
    """A well-formed request that breaks a protocol rule."""

    code = "invalid_request"


class InvalidXml(ClientFault):
    """XML that is not well formed or that uses a forbidden construct (DOCTYPE, entities)."""

    code = "invalid_xml"


class RequestTooLarge(ClientFault):
    """A body, header, URI or attachment count over its configured limit."""

    code = "bad_request"
    http_status = 413


class InvalidContentType(ClientFault):
    """A content type the endpoint does not accept."""

    code = "invalid_content_type"


class InvalidHttpMethod(ClientFault):
    """An HTTP method the endpoint does not accept (e.g. GET for SOAP)."""

    code = "invalid_http_method"
    http_status = 405


class MissingHeader(ClientFault):
    """The SOAP header is missing."""

    code = "missing_header"


class MissingHeaderField(ClientFault):
    """A required SOAP header field is missing."""

    code = "missing_header_field"


class DuplicateHeaderField(ClientFault):
    """A SOAP header field appears more than once."""

    code = "duplicate_header_field"


class MissingBody(ClientFault):
    """The SOAP body is missing."""

    code = "missing_body"


class MissingSoap(ClientFault):
    """A multipart message without its SOAP part."""

    code = "missing_soap"


class InconsistentHeaders(ClientFault):
    """Headers that contradict each other or the body (e.g. wrapper name not the service code)."""

    code = "inconsistent_headers"


class InvalidProtocolVersion(ClientFault):
    """A protocolVersion other than 4.x."""

    code = "invalid_protocol_version"


class InvalidClientIdentifier(ClientFault):
    """An identifier with a bad shape, object type or characters."""

    code = "invalid_client_identifier"


class ServiceType(ClientFault):
    """A SOAP service called over REST or the other way round."""

    code = "service_type"
    default_origin = Origin.SERVER_PROXY


class UnknownMember(ClientFault):
    """A client or provider that the global configuration does not know."""

    code = "unknown_member"
    default_origin = Origin.CLIENT_PROXY


class UnknownService(ClientFault):
    """A service that the provider's security server does not offer."""

    code = "unknown_service"
    default_origin = Origin.SERVER_PROXY


class ServiceDisabled(ClientFault):
    """A service that its provider has disabled."""

    code = "service_disabled"
    default_origin = Origin.SERVER_PROXY


class AccessDenied(ClientFault):
    """No access right covers this client and service (default deny)."""

    code = "access_denied"
    default_origin = Origin.SERVER_PROXY


class MissingSignature(ClientFault):
    """A message without a signature part."""

    code = "missing_signature"
    default_origin = Origin.SERVER_PROXY


class InvalidSignatureValue(ClientFault):
    """A signature or reference digest that does not verify."""

    code = "invalid_signature_value"
    default_origin = Origin.SERVER_PROXY


class MalformedSignature(ClientFault):
    """A signature whose structure is not what X-Road signs."""

    code = "malformed_signature"
    default_origin = Origin.SERVER_PROXY


class InvalidHashChain(ClientFault):
    """A hash chain that does not lead to its claimed result."""

    code = "invalid_hash_chain"
    default_origin = Origin.SERVER_PROXY


class HashChainUnusedInputs(ClientFault):
    """A hash chain that leaves some of its inputs unreferenced."""

    code = "hashchain_unused_inputs"
    default_origin = Origin.SERVER_PROXY


class InconsistentResponse(ClientFault):
    """A response that does not match its request (headers or requestHash)."""

    code = "inconsistent_response"
    default_origin = Origin.CLIENT_PROXY


class CertValidation(ClientFault):
    """A certificate that is not acceptable (wrong use, unapproved CA, expired, revoked)."""

    code = "cert_validation"


class InvalidCertPath(ClientFault):
    """A certificate that does not chain to an approved authority."""

    code = "invalid_cert_path"


class IncorrectValidationInfo(ClientFault):
    """OCSP or timestamp evidence that is for something else, untrusted, stale or broken.

    A client fault when a peer sent the evidence. When it is *our own* evidence that is missing or stale (our
    OCSP responder is down), it is raised with ``origin=Origin.SERVER``: the proxies then answer
    ``server.clientproxy.`` / ``server.serverproxy.incorrect_validation_info`` (REST: 500), never ``client.``,
    as X-Road prefixes its own failures (``AbstractClientProxyHandler``; issue 22).
    """

    code = "incorrect_validation_info"


class SslAuthenticationFailed(ClientFault):
    """A peer security server whose TLS certificate is not registered or not acceptable."""

    code = "ssl_authentication_failed"


class InvalidSecurityServer(ClientFault):
    """A securityServer header naming a server that is not this one."""

    code = "invalid_security_server"


class ClientProxyVersionNotSupported(ClientFault):
    """A peer client proxy older than the configured minimum."""

    code = "client_proxy_version_not_supported"
    default_origin = Origin.SERVER_PROXY


# --- server faults: our side, a trust service or the provider failed ---------------------------------------


class InternalError(ServerFault):
    """A bug or an unexpected state on our side."""

    code = "internal_error"


class IoError(ServerFault):
    """Reading or writing a stream failed."""

    code = "io_error"


class NetworkError(ServerFault):
    """No connection could be made, or it broke."""

    code = "network_error"


class DatabaseError(ServerFault):
    """A store could not be read or written."""

    code = "database_error"


class LoggingFailed(ServerFault):
    """The message log could not record the exchange, so it was not forwarded."""

    code = "logging_failed"


class TimestampingFailed(ServerFault):
    """The timestamping service has failed for longer than the grace period."""

    code = "timestamping_failed"


class ServiceFailed(ServerFault):
    """The provider's service failed; ``subcode`` says how (network_error, http_error, timeout, ...)."""

    code = "service_failed"
    default_origin = Origin.SERVER_PROXY


class GlobalConfOutdated(ServerFault):
    """The global configuration is past its expiry; no traffic until a fresh one is verified."""

    code = "global_conf_outdated"


class MaintenanceMode(ServerFault):
    """The security server is in maintenance mode."""

    code = "maintenance_mode"


class ConfigurationError(ServerFault):
    """A configuration file holds a value that cannot be used; the message names file, section and key."""

    code = "internal_error"


# --- message log: the hash-linked record chain (added with the message-log write path, issue 5) -------------


class LogChainBroken(ServerFault):
    """The message log's hash-linked chain does not verify; ``record_id`` names the first bad record."""

    code = "invalid_hash_chain"

    def __init__(
        self,
        message: str,
        *,
        record_id: int | None = None,
        reason: str | None = None,
        origin: Origin | None = None,
        subcode: str | None = None,
        detail_id: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, origin=origin, subcode=subcode, detail_id=detail_id)
        self.record_id = record_id


# --- global configuration: anchor, signed directory, shared and private parameters (issue 4) --------------
# A download that fails any of these checks is not applied; the previous configuration serves until its
# expiry, after which requests get GlobalConfOutdated. Codes are X-Road 7.8's (ErrorCode.java).


class InvalidConfiguration(ServerFault):
    """A global configuration, anchor or signed directory that is malformed, truncated or inconsistent."""

    code = "malformed_global_conf"


class ConfigurationAnchorMismatch(InvalidConfiguration):
    """A signed directory whose verification certificate is not one of the configuration anchor's."""

    code = "global_conf_missing_verification_cert"


class ConfigurationSignatureInvalid(InvalidConfiguration):
    """A signed directory whose signature does not verify with the anchor's key."""

    code = "global_conf_signature_verification_failure"


class ConfigurationHashMismatch(InvalidConfiguration):
    """A configuration file whose digest differs from the one in the signed directory."""

    code = "global_conf_part_downloaded_hash_failure"


class ConfigurationInstanceMismatch(InvalidConfiguration):
    """A configuration, or one of its parts, for an instance other than the anchor's."""

    code = "global_conf_part_invalid_instance_identifier"


# --- SOAP and transport message structure (issue 5: core/soap.py, core/transport.py) -------------------------
# X-Road 7.8 codes from ErrorCodes.java: SaxSoapParserImpl raises invalid_soap for a root that is not a SOAP 1.1
# Envelope and invalid_body for a body without exactly one element; ProxyMessageDecoder raises invalid_message
# for a transport message whose parts are out of order or that goes on after its signature.


class InvalidSoap(ClientFault):
    """A document that is not a SOAP 1.1 envelope, or an envelope of the wrong shape."""

    code = "invalid_soap"


class InvalidBody(ClientFault):
    """A SOAP body that does not hold exactly one element (the document/literal wrapper)."""

    code = "invalid_body"


class InvalidMessage(ClientFault):
    """A transport message between security servers whose parts are out of order, repeated or unexpected."""

    code = "invalid_message"


# --- exchange logic: the client and server proxies (issue 5) --------------------------------------------------
# X-Road 7.8 SignatureVerifier.verifySignerName raises incorrect_certificate when the member named in the signing
# certificate is not the member that the message says signed it.


class IncorrectCertificate(ClientFault):
    """A certificate that is valid but belongs to someone else than the message says (signer name mismatch)."""

    code = "incorrect_certificate"
    default_origin = Origin.SERVER_PROXY


# --- REST r1, metadata services and SOAP attachments (issue 6) -------------------------------------------------
# X-Road 7.8 ErrorCodes.java: SoapMessageDecoder reports a multipart body that its MIME parser cannot read as
# mime_parsing_failed (X_MIME_PARSING_FAILED).


class MimeParsingFailed(ClientFault):
    """A multipart (SOAP with attachments) body whose MIME structure cannot be read: no boundary, no close."""

    code = "mime_parsing_failed"


# --- evidence: signed-document download and the auditor's tools (issue 7) -------------------------------------
# X-Road 7.8 AsicContainerClientRequestProcessor answers a query for records that are not in the message log
# with HTTP 404 and not_found (X_NOT_FOUND).


class NotFound(ClientFault):
    """The requested signed documents (or other records) are not in the message log."""

    code = "not_found"
    http_status = 404


# --- answering as X-Road 7.8 does (issue 14) --------------------------------------------------------------------
# X-Road 7.8 MessageProcessorBase.validateSoapActionHeader refuses a malformed SOAPAction header with
# invalid_soap_action; ClientMessageProcessor rethrows a SOAP fault sent as a request under the fault's own code,
# lower-cased (ErrorCode.withCode), prefixed ``client.``.


class InvalidSoapAction(ClientFault):
    """A ``SOAPAction`` request header that is neither empty nor a quoted URI."""

    code = "invalid_soap_action"


class SentFault(ClientFault):
    """A SOAP fault sent as a request: answered under the sent fault's own code, lower-cased, as X-Road does."""

    code = "sent_fault"
    MAX_CODE_CHARS: ClassVar[int] = 200

    def __init__(
        self,
        message: str,
        *,
        sent_code: str = "sent_fault",
        reason: str | None = None,
        origin: Origin | None = None,
        subcode: str | None = None,
        detail_id: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, origin=origin, subcode=subcode, detail_id=detail_id)
        self.sent_code = _xml_text(sent_code.strip().lower())[: self.MAX_CODE_CHARS] or "unknown"

    @property
    def fault_code(self) -> str:
        """``origin.`` and the sent fault's code, e.g. ``client.code`` for a fault whose faultcode is ``CODE``."""
        return f"{self.origin}.{self.sent_code}"
