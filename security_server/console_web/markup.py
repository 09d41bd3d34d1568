"""HTML for the console's pages: escaping, the page frame, tables and messages.

Every value from a store, a request or a record goes through :func:`esc` (``html.escape`` with quotes); text built
here from escaped parts is :class:`Markup` and is not escaped twice. Pages carry ``lang``, a skip link, one ``h1``
and the navigation of the signed-in user's roles.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Iterable, Sequence

STYLESHEET_PATH = "/console/static/console.css"


class Markup(str):
    """HTML that is already safe (built from escaped parts)."""


def esc(value: object) -> Markup:
    """``value`` as HTML text: ``&``, ``<``, ``>`` and both quotes escaped (Markup passes through)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object]) -> Markup:
    """Concatenate parts, escaping those that are not Markup."""
    return Markup("".join(esc(part) for part in parts))


def table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[object]], *, empty: str = "None.") -> Markup:
    """A table with a caption and column headers (``scope="col"``); ``empty`` when there is no row."""
    body = [Markup("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>") for row in rows]
    if not body:
        return Markup(f'<p class="empty">{esc(caption)}: {esc(empty)}</p>')
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    return Markup(f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
                  f"<tbody>{''.join(body)}</tbody></table>")


def definitions(items: Iterable[tuple[str, object]]) -> Markup:
    """A definition list of name/value pairs."""
    return Markup("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>")


def status_text(ok: bool | None, *, good: str = "passed", bad: str = "FAILED", unknown: str = "skipped") -> Markup:
    """A verdict as text with its class (never colour alone)."""
    if ok is None:
        return Markup(f'<span class="status-unknown">{esc(unknown)}</span>')
    return Markup(f'<span class="status-ok">{esc(good)}</span>' if ok else f'<span class="status-bad">{esc(bad)}</span>')


@dataclass(frozen=True, slots=True)
class NavItem:
    """One navigation link: where, what it says, and the page key it stands for."""

    href: str
    label: str
    key: str


def page(title: str, body: Markup, *, current: str = "", nav: Sequence[NavItem] = (), user: str | None = None,
         xsrf: str | None = None) -> bytes:
    """A whole page: frame, navigation (with ``aria-current``), the logout form when signed in, and ``body``."""
    links = "".join(
        f'<li><a href="{esc(item.href)}"' + (' aria-current="page"' if item.key == current else "")
        + f">{esc(item.label)}</a></li>"
        for item in nav
    )
    account = ""
    if user is not None and xsrf is not None:
        account = (
            f'<form class="account" method="post" action="/console/logout">'
            f'<input type="hidden" name="_xsrf" value="{esc(xsrf)}">'
            f"<span>Signed in as <strong>{esc(user)}</strong></span> "
            f'<button type="submit">Log out</button></form>'
        )
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · fedbus console</title>"
        f'<link rel="stylesheet" href="{STYLESHEET_PATH}"></head><body>'
        '<a class="skip" href="#main">Skip to the content</a>'
        '<header><p class="brand">fedbus console</p>'
        + (f'<nav aria-label="Console"><ul>{links}</ul></nav>' if links else "")
        + account
        + f'</header><main id="main" tabindex="-1"><h1>{esc(title)}</h1>{body}</main></body></html>'
    )
    return document.encode("utf-8")
