"""Strict in-order reading of the child elements of a global-configuration element.

The parsers here do not depend on schema validation: they read each element's children in the order the
XSD sequence prescribes (local elements unqualified, as in X-Road's files) and refuse anything out of
place, stray text included. Comments and processing instructions are skipped.
"""

from __future__ import annotations

from lxml import etree

from security_server.core.errors import InvalidConfiguration


def _is_element(node: object) -> bool:
    return isinstance(node, etree._Element) and not isinstance(
        node, (etree._Comment, etree._ProcessingInstruction, etree._Entity)
    )


def _has_text(text: str | None) -> bool:
    return bool(text and text.strip())


class ChildReader:
    """A cursor over the child elements of ``element``, consumed in document order."""

    def __init__(self, element: etree._Element, what: str) -> None:
        self._what = what
        if _has_text(element.text):
            raise InvalidConfiguration(f"{what} has stray text")
        self._children: list[etree._Element] = []
        for child in element:
            if _has_text(child.tail):
                raise InvalidConfiguration(f"{what} has stray text")
            if _is_element(child):
                self._children.append(child)
        self._pos = 0

    def _next_is(self, name: str) -> bool:
        if self._pos >= len(self._children):
            return False
        qname = etree.QName(self._children[self._pos])
        return not qname.namespace and qname.localname == name

    def optional(self, name: str) -> etree._Element | None:
        """The next child if it is ``name``, else ``None``."""
        if self._next_is(name):
            self._pos += 1
            return self._children[self._pos - 1]
        return None

    def one(self, name: str) -> etree._Element:
        """The next child, which must be ``name``."""
        child = self.optional(name)
        if child is None:
            raise InvalidConfiguration(f"{self._what} lacks {name} where it is required")
        return child

    def many(self, name: str) -> list[etree._Element]:
        """All consecutive next children named ``name`` (possibly none)."""
        found: list[etree._Element] = []
        while self._next_is(name):
            found.append(self._children[self._pos])
            self._pos += 1
        return found

    def rest(self) -> list[etree._Element]:
        """Every remaining child (for an ``xs:any`` extension point at the end of a sequence)."""
        remaining = self._children[self._pos :]
        self._pos = len(self._children)
        return remaining

    def finish(self) -> None:
        """Refuse any child that was not read."""
        if self._pos < len(self._children):
            unexpected = etree.QName(self._children[self._pos]).localname
            raise InvalidConfiguration(f"{self._what} has an unexpected element {unexpected}")


def leaf_text(element: etree._Element, what: str) -> str:
    """The text of an element that may not have child elements (empty string when it has none)."""
    for child in element:
        if _is_element(child):
            raise InvalidConfiguration(f"{what} may not have child elements")
    return "".join(str(text) for text in element.itertext())


def check_root(root: etree._Element, namespace: str, name: str, what: str) -> None:
    """Refuse a document whose root element is not ``{namespace}name``."""
    qname = etree.QName(root)
    if qname.namespace != namespace or qname.localname != name:
        raise InvalidConfiguration(f"{what} must have the root element {{{namespace}}}{name}")
