"""Trusted anchors (federation): other instances' configuration anchors, verified, kept and published.

An uploaded anchor is parsed against ``configuration-anchor.xsd``, must state when it was generated, must name
another instance than ours, and every verification certificate it lists must be an X.509 certificate valid now.
One anchor is kept per instance (a newer upload of the same instance replaces it, as X-Road's central server
does); the publisher lists them as ``configurationAnchor`` elements of the private parameters (pr-gconf §2.5), so
that this instance's security servers learn them. fedbus's configuration client reads those elements and does not
act on them yet: it does not download the federated instance's configuration (docs/management-api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from central_registry.admin.errors import NotFound
from central_registry.store import RegistryError, RegistryStore
from security_server.core.errors import InvalidConfiguration
from security_server.core.globalconf import anchor_hash
from security_server.core.globalconf.anchor import ConfigurationAnchor, parse_configuration_anchor
from security_server.schemafiles import load_schema

MAX_ANCHOR_BYTES = 256 * 1024
"""Largest anchor file accepted (X-Road's are a few kilobytes, one per node of the other instance)."""


class TrustedAnchorNotFound(NotFound):
    """No trusted anchor has this hash."""

    api_code = "trusted_anchor_not_found"


class MalformedAnchor(RegistryError):
    """The file is not a configuration anchor."""

    api_code = "malformed_anchor"


class AnchorNotTrusted(RegistryError):
    """The anchor is well formed but cannot be trusted (our own instance, a certificate not valid now)."""

    api_code = "trusted_anchor_verification_failed"


@dataclass(frozen=True, slots=True)
class TrustedAnchor:
    """One kept anchor: its hash (SHA-224, colon-separated, as X-Road shows it), instance and times, and file."""

    hash: str
    instance: str
    generated_at: datetime
    created_at: datetime
    xml: bytes

    def anchor(self) -> ConfigurationAnchor:
        """The parsed anchor."""
        return parse_configuration_anchor(self.xml, load_schema("configuration-anchor.xsd"))


def verified(xml: bytes, own_instance: str, now: datetime) -> TrustedAnchor:
    """The anchor in ``xml`` checked (not stored): :class:`MalformedAnchor` or :class:`AnchorNotTrusted`."""
    if len(xml) > MAX_ANCHOR_BYTES:
        raise MalformedAnchor(f"the anchor is larger than {MAX_ANCHOR_BYTES} bytes")
    try:
        anchor = parse_configuration_anchor(xml, load_schema("configuration-anchor.xsd"), max_bytes=MAX_ANCHOR_BYTES)
    except InvalidConfiguration as err:
        raise MalformedAnchor(f"not a configuration anchor: {err.message}") from err
    if anchor.generated_at is None:
        raise MalformedAnchor("the anchor does not say when it was generated (generatedAt)")
    if anchor.instance == own_instance:
        raise AnchorNotTrusted(f"the anchor is of this registry's own instance {own_instance}")
    for source in anchor.sources:
        if not source.download_url.startswith(("http://", "https://")):
            raise AnchorNotTrusted(f"source {source.download_url!r} is not an http(s) URL")
        for der in source.verification_certs:
            cert = x509.load_der_x509_certificate(der)
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise AnchorNotTrusted(f"a verification certificate of {source.download_url} is not valid now")
    return TrustedAnchor(anchor_hash(xml), anchor.instance, anchor.generated_at, now.astimezone(UTC), xml)


def _row(row: dict[str, Any]) -> TrustedAnchor:
    return TrustedAnchor(
        str(row["hash"]), str(row["instance"]), datetime.fromisoformat(str(row["generated_at"])),
        datetime.fromisoformat(str(row["created_at"])), bytes(row["anchor_xml"]),
    )


def trusted_anchors(store: RegistryStore) -> tuple[TrustedAnchor, ...]:
    """The kept anchors, by instance."""
    rows = store.db.query(
        "SELECT hash, instance, generated_at, created_at, anchor_xml FROM trusted_anchors ORDER BY instance")
    return tuple(_row(row) for row in rows)


def trusted_anchor(store: RegistryStore, hash_text: str) -> TrustedAnchor:
    """The anchor of this hash; :class:`TrustedAnchorNotFound` otherwise."""
    for anchor in trusted_anchors(store):
        if anchor.hash == hash_text.upper():
            return anchor
    raise TrustedAnchorNotFound(f"no trusted anchor {hash_text}")


def add_trusted_anchor(store: RegistryStore, xml: bytes, now: datetime) -> TrustedAnchor:
    """Verify and keep an anchor, replacing the one kept for its instance; published from the next generation."""
    anchor = verified(xml, store.settings().instance, now)
    with store.transaction("trusted_anchor_added", {"instance": anchor.instance, "hash": anchor.hash}):
        store.db.execute("DELETE FROM trusted_anchors WHERE instance = ? OR hash = ?", [anchor.instance, anchor.hash])
        store.db.execute(
            "INSERT INTO trusted_anchors (instance, hash, generated_at, created_at, anchor_xml) VALUES (?, ?, ?, ?, ?)",
            [anchor.instance, anchor.hash, anchor.generated_at.isoformat(), anchor.created_at.isoformat(), xml],
        )
    return anchor


def delete_trusted_anchor(store: RegistryStore, hash_text: str) -> None:
    """Forget an anchor; it leaves the private parameters at the next generation."""
    anchor = trusted_anchor(store, hash_text)
    with store.transaction("trusted_anchor_deleted", {"instance": anchor.instance, "hash": anchor.hash}):
        store.db.execute("DELETE FROM trusted_anchors WHERE hash = ?", [anchor.hash])


def published_anchors(store: RegistryStore) -> tuple[ConfigurationAnchor, ...]:
    """The anchors the private parameters list (each was parsed when it was added)."""
    return tuple(anchor.anchor() for anchor in trusted_anchors(store))
