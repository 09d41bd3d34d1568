"""The internal configuration source: its anchor (what security servers are initialised with).

The anchor's time is the configuration-signing certificate's start of validity, so that the anchor (and its
hash) stays the same until the signing key changes, as X-Road's stays until it is re-created; fedbus has no
external configuration source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from central_registry.publisher import Publisher
from security_server.core.globalconf import anchor_hash


@dataclass(frozen=True, slots=True)
class Anchor:
    """The anchor file, its hash as X-Road shows it (SHA-224, colon-separated) and when it was made."""

    xml: bytes
    hash: str
    created_at: datetime


def internal_anchor(publisher: Publisher) -> Anchor:
    """The internal source's anchor."""
    created = publisher.signing_key.cert.not_valid_before_utc
    xml = publisher.anchor(created)
    return Anchor(xml, anchor_hash(xml), created)
