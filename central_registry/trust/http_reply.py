"""Typed helpers for answering a twisted.web request (Twisted leaves these Request methods unannotated)."""

from __future__ import annotations

from twisted.web.server import Request


def set_header(request: Request, name: bytes, value: bytes) -> None:
    """Set a response header (typed wrapper: Twisted leaves Request.setHeader unannotated)."""
    request.setHeader(name, value)  # type: ignore[no-untyped-call]


def finish(request: Request, body: bytes) -> None:
    """Write the whole body and finish a request answered later (after NOT_DONE_YET)."""
    request.write(body)  # type: ignore[no-untyped-call]
    request.finish()  # type: ignore[no-untyped-call]


def plain_reply(request: Request, code: int, text: bytes) -> bytes:
    """An HTTP error answer with a short text body."""
    request.setResponseCode(code)
    set_header(request, b"content-type", b"text/plain; charset=utf-8")
    return text


def method_not_allowed(request: Request, allowed: tuple[bytes, ...]) -> bytes:
    """HTTP 405 with the Allow header (RFC 9110 §15.5.6), for any method the resource does not serve."""
    set_header(request, b"allow", b", ".join(allowed))
    return plain_reply(request, 405, b"method not allowed\n")
