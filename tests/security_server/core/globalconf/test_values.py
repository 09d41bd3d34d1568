"""Tests for field checks and codecs (security_server/core/globalconf/values.py) and algorithms.py."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import InvalidConfiguration
from security_server.core.globalconf import algorithms
from security_server.core.globalconf.values import (
    check_seconds,
    check_text,
    decode_certificate,
    format_datetime,
    parse_boolean,
    parse_datetime,
    parse_positive_int,
)
from tests.federation.gconf import signer
from tests.federation.pki import ec_issued


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9998, 1, 1),
        # Fixed offsets: zoneinfo times in a DST fold never compare equal across zones (datetime docs).
        timezones=st.integers(-1439, 1439).map(lambda minutes: timezone(timedelta(minutes=minutes))),
    ),
)
def test_datetimes_round_trip_in_utc(value: datetime) -> None:
    """format_datetime writes UTC with Z; parse_datetime reads it back as the same instant."""
    text = format_datetime(value)
    assert text.endswith("Z")
    assert parse_datetime(text, "t") == value


def test_datetime_offsets_and_refusals() -> None:
    """Offsets are converted to UTC; values without an offset or not ISO 8601 are refused."""
    assert parse_datetime("2026-01-01T02:00:00+02:00", "t") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert format_datetime(datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=timezone.utc)) == "2026-01-01T00:00:00.000005Z"
    for text in ("2026-01-01T00:00:00", "tomorrow", "", None):
        with pytest.raises(InvalidConfiguration):
            parse_datetime(text, "t")


def test_certificate_as_base64_pem_is_converted_to_der() -> None:
    """A base64 element holding a PEM certificate (X-Road's DEV files) decodes to the DER certificate."""
    issued = ec_issued("Pool 0")
    pem = issued.cert.public_bytes(serialization.Encoding.PEM)
    assert decode_certificate(base64.b64encode(pem).decode(), "c") == issued.der
    wrapped = base64.encodebytes(issued.der).decode()  # with line breaks, as in X-Road's anchor
    assert decode_certificate(wrapped, "c") == issued.der
    for text in ("", "!!!", base64.b64encode(b"-----BEGIN CERTIFICATE-----\nxx").decode()):
        with pytest.raises(InvalidConfiguration):
            decode_certificate(text, "c")


def test_text_and_number_checks() -> None:
    """Text XML cannot carry, blank text, booleans posing as numbers and non-numbers are refused."""
    assert check_text("Ministry of Tests\tand\nMore", "t")
    for bad in ("", "  ", "a\x00b", "a\rb", "\ufffe", 5):
        with pytest.raises(InvalidConfiguration):
            check_text(bad, "t")
    assert check_text("", "t", allow_empty=True) == ""
    for bad_number in (True, 0, -1, 1.5):
        with pytest.raises(InvalidConfiguration):
            check_seconds(bad_number, "s")
    assert parse_positive_int(" 60 ", "s") == 60
    for bad_text in ("+60", "6e1", "٦٠", "1" * 19):
        with pytest.raises(InvalidConfiguration):
            parse_positive_int(bad_text, "s")
    assert parse_boolean("1", "b") is True and parse_boolean("false", "b") is False
    with pytest.raises(InvalidConfiguration):
        parse_boolean("yes", "b")


def test_algorithms_refuse_what_they_do_not_know() -> None:
    """Unknown digest and signature URIs are refused; a key cannot sign with another key type's algorithm."""
    with pytest.raises(InvalidConfiguration):
        algorithms.digest("http://www.w3.org/2000/09/xmldsig#sha1", b"x")
    with pytest.raises(InvalidConfiguration):
        algorithms.sign(signer().key, algorithms.ECDSA_SHA256_URI, b"x")  # an RSA key
    signature = algorithms.sign(signer().key, algorithms.RSA_SHA512_URI, b"x")
    public_key = signer().cert.public_key()
    assert algorithms.verify(public_key, algorithms.RSA_SHA512_URI, signature, b"x")
    assert not algorithms.verify(public_key, algorithms.ECDSA_SHA512_URI, signature, b"x")
    assert not algorithms.verify(public_key, algorithms.RSA_SHA512_URI, signature, b"y")
    assert not algorithms.verify(ec_issued("Pool 1").cert.public_key(), algorithms.RSA_SHA512_URI, signature, b"x")
    assert algorithms.digest_size(algorithms.SHA384_URI) == 48
