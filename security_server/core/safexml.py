"""The one hardened XML parser that every fedbus module uses.

Untrusted XML reaches us from department systems, peer security servers, the registry and archives. The
parser here never reads a DTD, never expands or resolves an entity, never touches the network or a file,
refuses any document that carries a DOCTYPE (which is where entities and external references live, so XXE
and billion-laughs are refused before any expansion), and keeps libxml2's default limits on depth and text
size (no ``huge_tree``). Input over ``max_bytes`` is refused before parsing starts.
"""

from __future__ import annotations

import re
from typing import Any, cast

from lxml import etree

from security_server.core.errors import InvalidXml, RequestTooLarge

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
"""X-Road's default limit for a loggable message body (SYSPAR: 10 MiB)."""

# A DOCTYPE or entity declaration in any ASCII-compatible encoding. UTF-16/32 input is caught after parsing
# through docinfo, since the parser itself neither loads nor expands anything.
_DTD_MARKUP = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


_PARSER = _new_parser()


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse untrusted XML bytes into an element tree, or raise :class:`InvalidXml`.

    Raises :class:`RequestTooLarge` when ``data`` is longer than ``max_bytes``.
    """
    if len(data) > max_bytes:
        raise RequestTooLarge(f"XML document is larger than {max_bytes} bytes")
    if not data.strip():
        raise InvalidXml("empty XML document")
    if _DTD_MARKUP.search(data):
        raise InvalidXml("XML with a DOCTYPE or entity declaration is not accepted")
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as err:
        raise InvalidXml("XML is not well formed", reason=f"XML is not well formed: {err}") from err
    if root is None:
        raise InvalidXml("empty XML document")
    docinfo = cast(Any, root.getroottree().docinfo)  # lxml-stubs lack DocInfo.doctype
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise InvalidXml("XML with a DOCTYPE or entity declaration is not accepted")
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise InvalidXml("XML with entity references is not accepted")
    return root
