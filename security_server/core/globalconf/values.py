"""Checks and codecs for the field values of global-configuration documents.

Every value type in this package validates its fields with these functions on construction, so a value
that exists can always be written as XML that our schemas accept. Failures are :class:`InvalidConfiguration`.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.core.errors import InvalidClientIdentifier, InvalidConfiguration
from security_server.core.identifiers import check_part

# XML 1.0 §2.2 Char, minus CR: libxml2 would escape CR, but XML readers normalise line ends, so a CR could not
# survive a round trip and is refused instead.
_XML_TEXT = re.compile("[\t\n\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_B64_WHITESPACE = re.compile(rb"[ \t\r\n]+")
PEM_MARKER = b"-----BEGIN"


def check_text(value: object, what: str, *, allow_empty: bool = False) -> str:
    """Return ``value`` if it is a string that XML can carry unchanged (non-empty unless allowed)."""
    if not isinstance(value, str):
        raise InvalidConfiguration(f"{what} must be text")
    if not allow_empty and not value.strip():
        raise InvalidConfiguration(f"{what} is empty")
    if not _XML_TEXT.fullmatch(value):
        raise InvalidConfiguration(f"{what} has characters that XML cannot carry")
    return value


def check_code(value: object, what: str) -> str:
    """Return ``value`` if it is a valid identifier part (X-Road's character set), else refuse it."""
    try:
        return check_part(value, what)
    except InvalidClientIdentifier as err:
        raise InvalidConfiguration(f"{what} is not a valid identifier part", reason=err.reason) from err


def check_seconds(value: object, what: str) -> int:
    """Return ``value`` if it is a positive whole number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidConfiguration(f"{what} must be a positive whole number of seconds")
    return value


def check_aware(value: object, what: str) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidConfiguration(f"{what} must be a timezone-aware datetime")
    return value


def check_certificate(value: object, what: str) -> bytes:
    """Return ``value`` if it is the DER encoding of an X.509 certificate."""
    if not isinstance(value, bytes) or not value:
        raise InvalidConfiguration(f"{what} must be DER certificate bytes")
    try:
        x509.load_der_x509_certificate(value)
    except ValueError as err:
        raise InvalidConfiguration(f"{what} is not a DER X.509 certificate", reason=f"{what}: {err}") from err
    return value


def decode_base64(text: str | None, what: str) -> bytes:
    """Decode base64 element text strictly; line breaks and blanks between characters are allowed."""
    if text is None:
        raise InvalidConfiguration(f"{what} is empty")
    compact = _B64_WHITESPACE.sub(b"", text.encode("ascii", "replace"))
    if not compact:
        raise InvalidConfiguration(f"{what} is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidConfiguration(f"{what} is not valid base64") from err


def decode_certificate(text: str | None, what: str) -> bytes:
    """Decode a base64 certificate element to DER.

    X-Road's files hold base64 DER; its DEV test configuration holds base64 of a PEM text instead
    (globalconf_good2_v3), which is accepted and converted.
    """
    raw = decode_base64(text, what)
    if raw.lstrip().startswith(PEM_MARKER):
        try:
            raw = x509.load_pem_x509_certificate(raw).public_bytes(Encoding.DER)
        except ValueError as err:
            raise InvalidConfiguration(f"{what} is not a PEM X.509 certificate", reason=f"{what}: {err}") from err
    return check_certificate(raw, what)


def encode_base64(data: bytes) -> str:
    """Base64 on one line, as X-Road writes it."""
    return base64.b64encode(data).decode("ascii")


def parse_datetime(text: str | None, what: str) -> datetime:
    """Parse an ISO 8601 / xs:dateTime value with an explicit offset; returned in UTC."""
    if text is None or not text.strip():
        raise InvalidConfiguration(f"{what} is empty")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise InvalidConfiguration(f"{what} is not an ISO 8601 date and time") from err
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidConfiguration(f"{what} has no UTC offset")
    return value.astimezone(timezone.utc)


def format_datetime(value: datetime) -> str:
    """Format an aware datetime in UTC with a ``Z`` suffix (seconds, or microseconds when present)."""
    utc = value.astimezone(timezone.utc)
    spec = "seconds" if utc.microsecond == 0 else "microseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_positive_int(text: str | None, what: str) -> int:
    """Parse a positive decimal integer element."""
    value = (text or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise InvalidConfiguration(f"{what} must be a positive whole number")
    return check_seconds(int(value), what)


def parse_boolean(text: str | None, what: str) -> bool:
    """Parse an xs:boolean element (true, false, 1, 0)."""
    value = (text or "").strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidConfiguration(f"{what} must be true or false")
