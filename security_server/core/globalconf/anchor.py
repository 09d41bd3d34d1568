"""Configuration anchors: parse, build and fingerprint (pr-gconf §2.2, Annex E).

An anchor tells a security server, out of band, which instance it belongs to, where that instance's signed
configuration is downloaded and which certificates' keys may sign it. Its authenticity rests on the person
who installs it comparing :func:`anchor_hash` with the value the registry shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from security_server.core.errors import InvalidConfiguration
from security_server.core.globalconf.document import parse_document, serialize_document
from security_server.core.globalconf.values import (
    check_aware,
    check_certificate,
    check_code,
    check_text,
    decode_certificate,
    encode_base64,
    format_datetime,
    parse_datetime,
)
from security_server.core.globalconf.xmlreader import ChildReader, check_root, leaf_text
from security_server.core.identifiers import XROAD_NS

MAX_ANCHOR_BYTES = 1024 * 1024
"""Largest anchor we read; X-Road's are a few kilobytes."""


@dataclass(frozen=True, slots=True)
class AnchorSource:
    """One configuration source: the URL of its signed directory and the certificates (DER) that may sign it."""

    download_url: str
    verification_certs: tuple[bytes, ...]

    def __post_init__(self) -> None:
        check_text(self.download_url, "download URL")
        if self.download_url != self.download_url.strip():
            raise InvalidConfiguration("download URL has leading or trailing blanks")
        certs = tuple(self.verification_certs)
        if not certs:
            raise InvalidConfiguration("an anchor source needs at least one verification certificate")
        for cert in certs:
            check_certificate(cert, "verification certificate")
        object.__setattr__(self, "verification_certs", certs)


@dataclass(frozen=True, slots=True)
class ConfigurationAnchor:
    """The anchor of one instance: its identifier, its sources, and when it was generated (if stated)."""

    instance: str
    sources: tuple[AnchorSource, ...]
    generated_at: datetime | None = None

    def __post_init__(self) -> None:
        check_code(self.instance, "anchor instance identifier")
        sources = tuple(self.sources)
        if not sources:
            raise InvalidConfiguration("an anchor needs at least one source")
        for source in sources:
            if not isinstance(source, AnchorSource):
                raise InvalidConfiguration("anchor sources must be AnchorSource values")
        object.__setattr__(self, "sources", sources)
        if self.generated_at is not None:
            utc = check_aware(self.generated_at, "generatedAt").astimezone(timezone.utc)
            object.__setattr__(self, "generated_at", utc)

    def verification_certs(self) -> tuple[bytes, ...]:
        """Every verification certificate of every source, without repeats, in anchor order."""
        seen: dict[bytes, None] = {}
        for source in self.sources:
            for cert in source.verification_certs:
                seen.setdefault(cert, None)
        return tuple(seen)


def anchor_from_element(element: etree._Element) -> ConfigurationAnchor:
    """Read a ``ConfigurationAnchorType`` element (the anchor's root, or one inside private parameters)."""
    reader = ChildReader(element, "configurationAnchor")
    generated_element = reader.optional("generatedAt")
    instance = leaf_text(reader.one("instanceIdentifier"), "instanceIdentifier")
    source_elements = reader.many("source")
    reader.finish()
    if not source_elements:
        raise InvalidConfiguration("configuration anchor has no source")
    sources: list[AnchorSource] = []
    for source_element in source_elements:
        source_reader = ChildReader(source_element, "anchor source")
        # pr-gconf Annex A.1 writes downloadURI; the schema (Annex E) says downloadURL. Both are accepted.
        url_element = source_reader.optional("downloadURL")
        if url_element is None:
            url_element = source_reader.one("downloadURI")
        certs = tuple(
            decode_certificate(e.text, "verificationCert") for e in source_reader.many("verificationCert")
        )
        source_reader.finish()
        sources.append(AnchorSource(leaf_text(url_element, "downloadURL").strip(), certs))
    generated_at = None
    if generated_element is not None:
        generated_at = parse_datetime(leaf_text(generated_element, "generatedAt"), "generatedAt")
    return ConfigurationAnchor(check_code(instance, "instanceIdentifier"), tuple(sources), generated_at)


def anchor_to_element(anchor: ConfigurationAnchor, tag: str | etree.QName) -> etree._Element:
    """Write ``anchor`` as a ``ConfigurationAnchorType`` element named ``tag``."""
    element = etree.Element(tag, nsmap={"tns": XROAD_NS})
    if anchor.generated_at is not None:
        etree.SubElement(element, "generatedAt").text = format_datetime(anchor.generated_at)
    etree.SubElement(element, "instanceIdentifier").text = anchor.instance
    for source in anchor.sources:
        source_element = etree.SubElement(element, "source")
        etree.SubElement(source_element, "downloadURL").text = source.download_url
        for cert in source.verification_certs:
            etree.SubElement(source_element, "verificationCert").text = encode_base64(cert)
    return element


def parse_configuration_anchor(
    xml: bytes, schema: etree.XMLSchema | None = None, *, max_bytes: int = MAX_ANCHOR_BYTES
) -> ConfigurationAnchor:
    """Parse an anchor file, or raise :class:`InvalidConfiguration`; validated against ``schema`` when given."""
    root = parse_document(xml, schema, max_bytes, "configuration anchor")
    check_root(root, XROAD_NS, "configurationAnchor", "configuration anchor")
    try:
        return anchor_from_element(root)
    except (ValueError, TypeError, LookupError) as err:  # a gap in our checks must still fail closed
        raise InvalidConfiguration("configuration anchor is malformed", reason=f"anchor: {err!r}") from err


def build_configuration_anchor(anchor: ConfigurationAnchor, schema: etree.XMLSchema) -> bytes:
    """The anchor file of ``anchor``: deterministic bytes, validated against ``schema``."""
    root = anchor_to_element(anchor, etree.QName(XROAD_NS, "configurationAnchor"))
    return serialize_document(root, schema, "configuration anchor")


def anchor_hash(anchor_xml: bytes) -> str:
    """The fingerprint an operator compares: SHA-224 of the file, upper-case hex pairs joined by colons.

    This is X-Road's anchor hash (Digests.calculateAnchorHashDelimited, DEFAULT_ANCHOR_HASH_ALGORITHM_ID).
    """
    digest = hashlib.sha224(anchor_xml).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
