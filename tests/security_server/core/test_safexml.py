"""The hardened XML parser refuses DTDs, entities, external references and oversized input."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.core.errors import BusError, InvalidXml, RequestTooLarge
from security_server.core.safexml import parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""


def test_parses_plain_xml() -> None:
    """Ordinary XML parses."""
    assert parse_xml(b"<a><b>x</b></a>").findtext("b") == "x"


def test_billion_laughs_is_refused() -> None:
    """Entity expansion is refused before anything expands."""
    with pytest.raises(InvalidXml) as info:
        parse_xml(BILLION_LAUGHS)
    assert info.value.fault_code == "client.invalid_xml"


def test_external_entity_is_refused(tmp_path: Path) -> None:
    """An external entity (XXE) is refused and the file is never read into the document."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doc = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]><r>&x;</r>'.encode()
    with pytest.raises(InvalidXml):
        parse_xml(doc)


def test_external_dtd_is_refused() -> None:
    """A DOCTYPE pointing at an external DTD over the network is refused."""
    with pytest.raises(InvalidXml):
        parse_xml(b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>')


def test_doctype_in_utf16_is_refused() -> None:
    """A DOCTYPE hidden from a byte scan by UTF-16 encoding is still refused."""
    doc = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'.encode("utf-16")
    with pytest.raises(InvalidXml):
        parse_xml(doc)


def test_oversized_input_is_refused_before_parsing() -> None:
    """Input over the limit is refused with a 413-class error."""
    with pytest.raises(RequestTooLarge) as info:
        parse_xml(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)
    assert info.value.http_status == 413


def test_deep_nesting_is_refused() -> None:
    """A tree deeper than libxml2's safe limit is refused, not parsed."""
    depth = 100_000
    with pytest.raises(InvalidXml):
        parse_xml(b"<a>" * depth + b"</a>" * depth)


@pytest.mark.parametrize("data", [b"", b"   ", b"<a>", b"<a></b>", b"\xff\xfe\x00", b"not xml", b"<a>&undefined;</a>"])
def test_malformed_input_gives_a_bus_error(data: bytes) -> None:
    """Malformed input gives InvalidXml, never a bare exception."""
    with pytest.raises(BusError):
        parse_xml(data)
