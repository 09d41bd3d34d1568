"""Tests for configuration anchors (security_server/core/globalconf/anchor.py)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from security_server.core.errors import InvalidConfiguration
from security_server.core.globalconf import (
    AnchorSource,
    ConfigurationAnchor,
    anchor_hash,
    build_configuration_anchor,
    parse_configuration_anchor,
)
from security_server.core.globalconf.values import encode_base64
from security_server.schemafiles import load_schema
from tests.federation.gconf import NOW, codes, other_signer, signer


def schema() -> etree.XMLSchema:
    """Our configuration-anchor schema."""
    return load_schema("configuration-anchor.xsd")


# X-Road's 2014 test certificate has a three-letter country code, which cryptography warns about.
@pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning")
def test_x_road_anchor_is_read(xroad_vectors: Path) -> None:
    """X-Road's configuration-anchor1.xml: instance EE, three sources, their URLs and certificates."""
    anchor = parse_configuration_anchor((xroad_vectors / "configuration-anchor1.xml").read_bytes(), schema())
    assert anchor.instance == "EE" and anchor.generated_at is None
    assert [s.download_url for s in anchor.sources] == [
        "http://www.bar.com/conf",
        "http://node-0x.example.com/internalconf",
        "http://node-1x.example.com/internalconf",
    ]
    assert [len(s.verification_certs) for s in anchor.sources] == [2, 1, 1]
    first = x509.load_der_x509_certificate(anchor.sources[0].verification_certs[0])
    assert first.subject.rfc4514_string() == "CN=AAA-central,O=GOV,C=AAA"
    assert len(anchor.verification_certs()) == 4


def test_annex_a1_example_with_download_uri_is_read() -> None:
    """pr-gconf Annex A.1's form (downloadURI, with its closing tag repaired) is accepted."""
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<tns:configurationAnchor xmlns:tns="http://x-road.eu/xsd/xroad.xsd">
    <generatedAt>2014-05-20T16:42:55Z</generatedAt>
    <instanceIdentifier>EE</instanceIdentifier>
    <source>
        <downloadURI>http://10.10.10.10/conf</downloadURI>
        <verificationCert>{encode_base64(signer().der)}</verificationCert>
    </source>
</tns:configurationAnchor>""".encode()
    anchor = parse_configuration_anchor(xml, schema())
    assert anchor.generated_at == datetime(2014, 5, 20, 16, 42, 55, tzinfo=timezone.utc)
    assert anchor.sources == (AnchorSource("http://10.10.10.10/conf", (signer().der,)),)


def test_anchor_round_trip_writes_download_url() -> None:
    """Our anchor builds to schema-valid XML with downloadURL and parses back equal."""
    anchor = ConfigurationAnchor(
        "DEV",
        (AnchorSource("http://registry/internalconf", (signer().der, other_signer().der)),),
        NOW.astimezone(timezone(timedelta(hours=2))),
    )
    built = build_configuration_anchor(anchor, schema())
    assert b"<downloadURL>http://registry/internalconf</downloadURL>" in built
    assert parse_configuration_anchor(built, schema()) == anchor
    assert anchor.generated_at is not None and anchor.generated_at.tzinfo == timezone.utc


@settings(max_examples=30, deadline=None)
@given(codes, st.lists(codes, min_size=1, max_size=3), st.booleans())
def test_generated_anchors_round_trip(instance: str, hosts: list[str], dated: bool) -> None:
    """Any valid anchor survives build -> parse unchanged."""
    anchor = ConfigurationAnchor(
        instance, tuple(AnchorSource(f"https://{h}/conf", (signer().der,)) for h in hosts), NOW if dated else None
    )
    assert parse_configuration_anchor(build_configuration_anchor(anchor, schema()), schema()) == anchor


def test_anchor_hash_is_x_roads_sha224_fingerprint() -> None:
    """anchor_hash is SHA-224 of the file bytes as upper-case hex pairs joined by colons."""
    data = b"<anchor/>"
    digest = hashlib.sha224(data).hexdigest().upper()
    fingerprint = anchor_hash(data)
    assert fingerprint.replace(":", "") == digest
    assert len(fingerprint.split(":")) == 28


ANCHOR_NS = b'xmlns:tns="http://x-road.eu/xsd/xroad.xsd"'


def anchor_xml(inner: bytes) -> bytes:
    """An anchor document with the given children."""
    return b"<tns:configurationAnchor " + ANCHOR_NS + b">" + inner + b"</tns:configurationAnchor>"


EE = b"<instanceIdentifier>EE</instanceIdentifier>"


@pytest.mark.parametrize(
    "xml",
    [
        pytest.param(b"not xml", id="not-xml"),
        pytest.param(anchor_xml(EE), id="no-source"),
        pytest.param(anchor_xml(EE + b"<source><downloadURL>x</downloadURL></source>"), id="no-cert"),
        pytest.param(
            anchor_xml(
                EE + b"<source><downloadURL>x</downloadURL><verificationCert>ZGVmYXVsdA==</verificationCert></source>"
            ),
            id="cert-is-not-a-certificate",
        ),
        pytest.param(anchor_xml(b"<generatedAt>yesterday</generatedAt>" + EE), id="bad-date"),
        pytest.param(b"<configurationAnchor>" + EE + b"</configurationAnchor>", id="no-namespace"),
    ],
)
def test_bad_anchors_are_refused(xml: bytes) -> None:
    """Malformed anchors raise InvalidConfiguration."""
    with pytest.raises(InvalidConfiguration):
        parse_configuration_anchor(xml)


def test_anchor_values_are_checked() -> None:
    """An anchor needs sources, each with a certificate, and an aware generation time."""
    with pytest.raises(InvalidConfiguration):
        ConfigurationAnchor("EE", ())
    with pytest.raises(InvalidConfiguration):
        AnchorSource("http://x", ())
    with pytest.raises(InvalidConfiguration):
        AnchorSource(" http://x", (signer().der,))
    with pytest.raises(InvalidConfiguration):
        ConfigurationAnchor("EE", (AnchorSource("http://x", (signer().der,)),), datetime(2026, 1, 1))
