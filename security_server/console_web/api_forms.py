"""The console's forms over the management API: fields with their labels, and the API's refusals shown next to
the field they concern.

A form's POST calls one API operation (:meth:`~security_server.management.resource.ManagementResource.perform`);
when the API refuses it, its error object (a code and metadata strings) goes next to a field: the field the
metadata names (``invalid_field``, ``missing_field``: ``["url"]``), or the field a code is about (``invalid_url``:
the URL), else at the top of the form. Every value is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from twisted.python.failure import Failure

from security_server.console_web.markup import Markup, esc
from security_server.management.errors import ApiError

_NAMING_CODES = frozenset({"invalid_field", "missing_field", "unknown_field", "invalid_parameter", "missing_parameter"})
MESSAGES: Mapping[str, str] = {
    "invalid_field": "This value is not valid.",
    "missing_field": "This field is required.",
    "invalid_url": "This is not a URL the server can call (http or https, with a host).",
    "wsdl_download_failed": "The WSDL could not be downloaded from this URL.",
    "openapi_download_failed": "The OpenAPI description could not be downloaded from this URL.",
    "service_already_exists": "The client already has a service with this code.",
    "invalid_service_client_id": "Not a service client identifier (INSTANCE:CLASS:CODE:SUBSYSTEM, or a group).",
    "invalid_client_id": "Not a client identifier (INSTANCE:CLASS:CODE[:SUBSYSTEM]).",
    "duplicate_accessright": "This service client already holds this right.",
    "accessright_not_found": "This service client holds no such right.",
    "client_not_found": "There is no such client.",
    "invalid_certificate": "This is not a certificate (PEM or DER).",
    "invalid_address": "This is not a server address (a host name or IP address, with or without a port).",
    "permission_denied": "Your role may not do this.",
    "action_not_possible": "This cannot be done now.",
    "registration_unavailable": "The server cannot reach the registry from here.",
    "service_description_fetch_unavailable": "This server cannot fetch documents by URL.",
}


@dataclass(frozen=True, slots=True)
class FormState:
    """What a form was sent with and what the API said about it."""

    given: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    general: str = ""


def describe(error: ApiError) -> str:
    """The API's error as one line: what it means, then its code and metadata as the API sent them."""
    meaning = MESSAGES.get(error.code, "The API refused it.")
    details = error.code + (f" ({'; '.join(error.metadata)})" if error.metadata else "")
    return f"{meaning} [{details}]"


def refusal(error: ApiError, given: Mapping[str, str], fields: Mapping[str, frozenset[str]]) -> FormState:
    """The form's state after the API refused it: the error next to the field it concerns (``fields``: each field
    with the codes about it), else at the top."""
    named = error.metadata[0] if error.metadata else ""
    if error.code in _NAMING_CODES and named in fields:
        return FormState(given, {named: describe(error)})
    for name, codes in fields.items():
        if error.code in codes:
            return FormState(given, {name: describe(error)})
    return FormState(given, general=describe(error))


def shown_again(show: Callable[[FormState, int], Any], given: Mapping[str, str],
                fields: Mapping[str, frozenset[str]]) -> Callable[[Failure], Any]:
    """An errback for a form's operation: the page again (``show``) with the API's refusal next to its field,
    answered with the API's status; any other failure passes on."""

    def failed(reason: Failure) -> Any:
        error = reason.value
        if not isinstance(error, ApiError):
            return reason
        return show(refusal(error, given, fields), error.status)

    return failed


def _described(form: str, name: str, state: FormState, hint: str) -> tuple[str, str]:
    """The ``aria-describedby``/``aria-invalid`` attributes and the hint and error paragraphs of a field."""
    ident = f"{form}-{name}"
    error = state.errors.get(name)
    ids = ([f"{ident}-hint"] if hint else []) + ([f"{ident}-error"] if error else [])
    attributes = (f' aria-describedby="{" ".join(ids)}"' if ids else "") + (' aria-invalid="true"' if error else "")
    notes = (f'<small id="{ident}-hint">{esc(hint)}</small>' if hint else "") + (
        f'<p class="error field-error" id="{ident}-error">{esc(error)}</p>' if error else "")
    return attributes, notes


def text_input(form: str, name: str, label: str, state: FormState, *, hint: str = "", value: str = "",
               required: bool = False, kind: str = "text") -> Markup:
    """A labelled text input; its error under it."""
    attributes, notes = _described(form, name, state, hint)
    shown = state.given.get(name, value)
    return Markup(
        f'<div><label for="{form}-{name}">{esc(label)}</label>'
        f'<input type="{kind}" id="{form}-{name}" name="{esc(name)}" value="{esc(shown)}"'
        + (" required" if required else "") + attributes + ">" + notes + "</div>"
    )


def select_input(form: str, name: str, label: str, options: Sequence[tuple[str, str]], state: FormState, *,
                 hint: str = "") -> Markup:
    """A labelled select (``options``: value and text); its error under it."""
    attributes, notes = _described(form, name, state, hint)
    chosen = state.given.get(name, options[0][0] if options else "")
    items = "".join(
        f'<option value="{esc(value)}"' + (" selected" if value == chosen else "") + f">{esc(text)}</option>"
        for value, text in options
    )
    return Markup(f'<div><label for="{form}-{name}">{esc(label)}</label>'
                  f'<select id="{form}-{name}" name="{esc(name)}"{attributes}>{items}</select>{notes}</div>')


def file_input(form: str, name: str, label: str, state: FormState, *, hint: str = "") -> Markup:
    """A labelled file input; its error under it."""
    attributes, notes = _described(form, name, state, hint)
    return Markup(f'<div><label for="{form}-{name}">{esc(label)}</label>'
                  f'<input type="file" id="{form}-{name}" name="{esc(name)}"{attributes}>{notes}</div>')


def post_form(form: str, action: str, xsrf: str, fields: Sequence[Markup], button: str, state: FormState, *,
              label: str, hidden: Mapping[str, str] | None = None, multipart: bool = False) -> Markup:
    """A POST form with the session's XSRF token, the general error at its top, and one submit button."""
    general = (f'<p class="error" role="alert" id="{form}-error">{esc(state.general)}</p>' if state.general else "")
    extra = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in (hidden or {}).items())
    encoding = ' enctype="multipart/form-data"' if multipart else ""
    return Markup(
        f'<form class="action" id="{form}" method="post" action="{esc(action)}" aria-label="{esc(label)}"{encoding}>'
        f'{general}<input type="hidden" name="_xsrf" value="{esc(xsrf)}">{extra}'
        + "".join(fields) + f'<div><button type="submit">{esc(button)}</button></div></form>'
    )


def button_form(action: str, xsrf: str, button: str, *, hidden: Mapping[str, str] | None = None,
                label: str = "") -> Markup:
    """A form of one button (enable, disable, revoke, approve...) with the session's XSRF token."""
    extra = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in (hidden or {}).items())
    aria = f' aria-label="{esc(label)}"' if label else ""
    return Markup(f'<form class="inline" method="post" action="{esc(action)}">'
                  f'<input type="hidden" name="_xsrf" value="{esc(xsrf)}">{extra}'
                  f'<button type="submit"{aria}>{esc(button)}</button></form>')
