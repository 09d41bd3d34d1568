"""Whether the message log keeps a message's body, per producer subsystem, as X-Road's ``message-body-logging`` decides.

X-Road (UG-SYSPAR ``[message-log]``; ``MessageBodyManipulator``): ``message-body-logging`` (default true) is the
rule, and four comma-separated lists of subsystems (``INSTANCE/CLASS/MEMBER/SUBSYSTEM``; subsystems only) are its
exceptions: when it is true, ``disabled-body-logging-local-producer-subsystems`` (our subsystems that provide the
service: the server-proxy side) and ``disabled-body-logging-remote-producer-subsystems`` (other members'
subsystems whose services our clients call: the client-proxy side) are logged without body; when it is false, the
``enabled-...`` lists are logged with it. The producer is the subsystem of the exchange's service.

Without its body, a record keeps what X-Road keeps:

* **SOAP**: the message with its ``Body`` emptied (the header bytes exactly as they came, the ``Body`` start tag,
  its end tag), and no attachments. The signature, hash chain and everything else stay as signed. The signed
  digest of the message then no longer matches the logged message, so a container of such a record does not verify
  its message (X-Road's ``asicverifier`` fails it: UG-SIGDOC); the signature, certificate, OCSP response, timestamp
  and the log's hash link still prove who signed what digest and when: ``verify container`` checks them over the
  stated digest and answers ``valid_without_message`` (core/unlogged_message.py).
* **REST**: the body (``attachment1``) is dropped; the request/response message part (method, path, query, headers)
  is kept whole, unlike X-Road (which also drops the path and query and so can no longer verify anything). The
  signature covers the body through its hash chain, whose digest of ``/attachment1`` stays, so the container still
  verifies: the body's digest is taken as signed (``verify container`` says so).

Pure: identifiers and bytes in, decisions and bytes out.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from lxml import etree

from security_server.core.errors import SOAP_ENV_NS, BusError, ConfigurationError, InvalidClientIdentifier
from security_server.core.identifiers import ClientId
from security_server.core.logchain import LogEntry
from security_server.core.safexml import parse_xml

_ENVELOPE = f"{{{SOAP_ENV_NS}}}Envelope"
_BODY = f"{{{SOAP_ENV_NS}}}Body"


def parse_subsystems(text: str, what: str) -> frozenset[ClientId]:
    """A comma-separated list of subsystems in X-Road's form ``INSTANCE/CLASS/MEMBER/SUBSYSTEM``.

    Raises :class:`ConfigurationError` naming ``what`` for a member (X-Road: subsystems only) or a malformed id.
    """
    found: set[ClientId] = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            client = ClientId.parse_path(item)
        except InvalidClientIdentifier as err:
            raise ConfigurationError(f"{what}: {item!r} is not INSTANCE/CLASS/MEMBER/SUBSYSTEM") from err
        if client.subsystem_code is None:
            raise ConfigurationError(f"{what}: {item!r} is a member; body logging is set per subsystem")
        found.add(client)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class BodyLogging:
    """X-Road's ``message-body-logging`` and its four exception lists."""

    enabled: bool = True
    enabled_local: frozenset[ClientId] = frozenset()
    enabled_remote: frozenset[ClientId] = frozenset()
    disabled_local: frozenset[ClientId] = frozenset()
    disabled_remote: frozenset[ClientId] = frozenset()

    def logs_every_body(self, *, client_side: bool) -> bool:
        """Whether every body on this side is logged whatever the producer (X-Road's default): the proxies then skip
        the per-exchange look-up."""
        return self.enabled and not (self.disabled_remote if client_side else self.disabled_local)

    def logs_body(self, producer: ClientId | None, *, client_side: bool) -> bool:
        """Whether the body of an exchange with service ``producer`` is logged (``client_side``: the client proxy,
        whose producers are remote). An unknown producer follows the rule."""
        if self.enabled:
            exceptions = self.disabled_remote if client_side else self.disabled_local
        else:
            exceptions = self.enabled_remote if client_side else self.enabled_local
        excepted = producer is not None and producer in exceptions
        return self.enabled != excepted


LOG_EVERY_BODY = BodyLogging()
"""X-Road's default: every body is logged."""


_HEADER = f"{{{SOAP_ENV_NS}}}Header"


def soap_without_body(message: bytes) -> bytes:
    """``message`` with the children of its SOAP ``Body`` removed, everything before and after kept byte for byte.

    A message that cannot be read as a SOAP envelope is returned as it is (it is not ours to rewrite: a failure
    record's fault, say). The cut is checked: it must parse, with an empty body and the very same header; where the
    bytes do not allow that (an unusual layout), the envelope is re-serialised with an empty body instead.
    """
    try:
        root = parse_xml(message, max_bytes=len(message))
    except BusError:
        return message
    body = _child(root, _BODY)
    if body is None:
        return message
    if len(body) == 0 and not (body.text or "").strip():
        return message
    cut = _cut(message, body.prefix, _child(root, _HEADER))
    if cut is not None:
        return cut
    for child in list(body):
        body.remove(child)
    body.text = None
    return bytes(etree.tostring(root, xml_declaration=message.lstrip().startswith(b"<?xml"), encoding="UTF-8"))


def is_soap_without_body(message: bytes) -> bool:
    """Whether ``message`` is a SOAP envelope with an empty ``Body``: the form a record logged without body holds."""
    if not message.lstrip().startswith(b"<"):
        return False
    try:
        root = parse_xml(message, max_bytes=len(message))
    except BusError:
        return False
    body = _child(root, _BODY)
    return body is not None and len(body) == 0 and not (body.text or "").strip()


NOT_LOGGED_ELEMENT = "{urn:fedbus:message-log}bodyNotLogged"
"""The stand-in element :func:`with_stand_in_body` puts in an emptied ``Body`` (never logged, never signed)."""


def with_stand_in_body(message: bytes) -> bytes:
    """An emptied SOAP message (:func:`is_soap_without_body`) with one stand-in element in its ``Body``, so that the
    SOAP reader, which wants exactly one body element, can read its header. Only for reading; raises BusError."""
    root = parse_xml(message, max_bytes=len(message))
    body = _child(root, _BODY)
    if body is None or len(body) != 0:
        raise ConfigurationError("not a SOAP message logged without its body")
    etree.SubElement(body, NOT_LOGGED_ELEMENT)
    return bytes(etree.tostring(root, encoding="UTF-8"))


def _child(root: etree._Element, tag: str) -> etree._Element | None:
    if root.tag != _ENVELOPE:
        return None
    for child in root:
        if child.tag == tag:
            return child
    return None


def _cut(message: bytes, prefix: str | None, header: etree._Element | None) -> bytes | None:
    """The bytes without the body's content, if a plain cut between the Body tags gives exactly that."""
    tag = (f"{prefix}:Body" if prefix else "Body").encode("ascii", "replace")
    start = re.compile(rb"<" + re.escape(tag) + rb"(?:\s[^>]*)?>").search(message)
    end = message.rfind(b"</" + tag)
    if start is None or start.group().endswith(b"/>") or end < start.end():
        return None
    candidate = message[: start.end()] + message[end:]
    try:
        root = parse_xml(candidate, max_bytes=len(candidate))
    except BusError:
        return None
    body = _child(root, _BODY)
    if body is None or len(body) != 0 or (body.text or "").strip():
        return None
    kept = _child(root, _HEADER)
    same_header = (header is None) == (kept is None) and (
        header is None or kept is None or etree.tostring(header) == etree.tostring(kept)
    )
    return candidate if same_header else None


def entry_without_body(entry: LogEntry, *, rest: bool) -> LogEntry:
    """``entry`` as logged without its body: a REST entry without its body (the message part whole), a SOAP entry
    with its ``Body`` emptied and without attachments (see the module docstring for what that keeps)."""
    if rest:
        return dataclasses.replace(entry, attachments=())
    return dataclasses.replace(entry, message=soap_without_body(entry.message), attachments=())
