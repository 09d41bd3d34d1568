"""REST service paths: the one decoded, normalised form an access right is checked against, and path patterns.

A REST call names a service and then a path under it (``/r1/EE/GOV/123/sub/pets/v1/pets/7``: service ``pets``,
service path ``/v1/pets/7``; pr-rest §4.1). An access right may be limited to one endpoint, a method and a path
pattern (DM-SS §2.17; :class:`security_server.core.acl.Endpoint`). The provider's information system, not we,
finally decides which resource a path names, and web frameworks disagree about encodings: some decode ``%2F``
into a separator, some decode twice, servlet containers drop ``;parameters`` from a segment and then resolve
``..``. X-Road's own matcher once let an encoded path reach an endpoint its right did not cover (PR #3140).

So a service path is accepted only when every reading of it names the same resource, and refused with
``client.bad_request`` otherwise (SECURITY-CASES.md: "an encoded path can never widen a REST access right"):

* every character is an RFC 3986 ``pchar`` or ``/`` (no spaces, quotes, backslashes, ``{}``, ``|``, ``^``, controls);
* each segment is percent-decoded on its own, strictly (a ``%`` must start two hex digits; the bytes must be UTF-8);
* a decoded segment may not hold ``/`` or ``\\`` (``%2F``, ``%5C``: a separator in disguise), ``%`` (``%25``: double
  encoding, which a second decoding would turn into something else), ``;`` (a servlet container would cut the
  segment there), or control characters;
* no segment is ``.`` or ``..``, before or after decoding (``%2e%2e``), and no segment is empty except a final one
  (``/a//b`` is ``/a/b`` to some servers and not to others; a trailing ``/`` is kept, ``/pets/`` is not ``/pets``).

The accepted path's normal form is ``/`` followed by the decoded segments joined with ``/``; an empty service path
is ``/``. Because decoded segments hold no ``/``, the separators in the normal form are exactly the segment
boundaries that the provider sees.

**Patterns** (X-Road ``PathGlob``): ``**`` matches any characters, ``/`` included; ``*`` matches the characters of
one segment. Unlike X-Road, ``*`` must match at least one character (an empty segment is not a segment: ``/pets/*``
does not cover ``/pets/``), and an OpenAPI template segment ``{name}`` is read as ``*``. Everything else matches
itself, case-sensitively. Matching is always against the normal form.
"""

from __future__ import annotations

import functools
import re

from security_server.core.errors import BadRequest

# RFC 3986 §3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@"; plus "/" between segments.
_RAW_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")
_HEX = frozenset("0123456789abcdefABCDEF")
_FORBIDDEN_DECODED = frozenset("/\\%;")
_TEMPLATE = re.compile(r"\{[^{}/]*\}")

MAX_PATH_CHARS = 2000
"""The longest service path we look at; longer request URIs are refused before this (pr-rest §4.2)."""


def _decode_segment(segment: str) -> str:
    """Percent-decode one raw segment strictly (see the module docstring)."""
    out = bytearray()
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch == "%":
            pair = segment[i + 1 : i + 3]
            if len(pair) != 2 or not all(c in _HEX for c in pair):
                raise BadRequest("Invalid percent encoding in the request path", reason=f"bad escape in {segment!r}")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(ord(ch))
            i += 1
    try:
        decoded = out.decode("utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise BadRequest("Request path is not UTF-8 after percent decoding", reason=f"segment {segment!r}") from err
    for char in decoded:
        if char in _FORBIDDEN_DECODED or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            raise BadRequest(
                "Request path segment holds a character that servers read differently",
                reason=f"segment {segment!r} decodes to {decoded!r} (separator, escape, ';' or control character)",
            )
    return decoded


def normalise_service_path(raw: str) -> str:
    """The normal form of a raw service path (``''`` or starting with ``/``), or :class:`BadRequest`."""
    if not isinstance(raw, str):
        raise BadRequest("request path must be text")
    if raw == "":
        return "/"
    if len(raw) > MAX_PATH_CHARS:
        raise BadRequest(f"Request path is longer than {MAX_PATH_CHARS} characters")
    if not raw.startswith("/") or not _RAW_PATH.fullmatch(raw):
        raise BadRequest("Request path has characters that must be percent-encoded", reason=f"path {raw[:200]!r}")
    segments = raw[1:].split("/")
    decoded: list[str] = []
    for index, segment in enumerate(segments):
        if segment == "" and index != len(segments) - 1:
            raise BadRequest("Request path has an empty segment", reason=f"path {raw[:200]!r}")
        value = _decode_segment(segment)
        if value in (".", "..") or segment in (".", ".."):
            raise BadRequest("Request path has a '.' or '..' segment", reason=f"path {raw[:200]!r}")
        decoded.append(value)
    return "/" + "/".join(decoded)


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of a path pattern (cached; patterns come from the configuration)."""
    pieces: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            pieces.append(".*")
            while i < len(pattern) and pattern[i] == "*":
                i += 1
            continue
        if pattern[i] == "*":
            pieces.append("[^/]+")
            i += 1
            continue
        template = _TEMPLATE.match(pattern, i)
        if template is not None:
            pieces.append("[^/]+")
            i = template.end()
            continue
        pieces.append(re.escape(pattern[i]))
        i += 1
    return re.compile("".join(pieces))


def pattern_matches(pattern: str, path: str) -> bool:
    """Whether ``pattern`` covers the normal-form ``path`` (see the module docstring)."""
    return compile_pattern(pattern).fullmatch(path) is not None


def method_matches(allowed: str, method: str) -> bool:
    """Whether an endpoint's method (``*`` for any) covers the request method (X-Road compares ignoring case)."""
    return allowed == "*" or allowed.upper() == method.upper()
