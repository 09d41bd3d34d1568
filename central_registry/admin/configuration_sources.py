"""The internal configuration source: its anchor (what security servers are initialised with), the parts of
the newest published configuration, and every generation still kept (with its parts' hashes).

The anchor's time is the configuration-signing certificate's start of validity, or the time it was last
re-created when that is later, so that the anchor (and its hash) stays the same until the signing key changes or
it is re-created, as X-Road's stays until it is re-created; fedbus has no external configuration source.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from central_registry.admin.errors import NotFound
from central_registry.publisher import DIRECTORY_NAME, Publisher
from security_server.core.globalconf import anchor_hash


@dataclass(frozen=True, slots=True)
class Anchor:
    """The anchor file, its hash as X-Road shows it (SHA-224, colon-separated) and when it was made."""

    xml: bytes
    hash: str
    created_at: datetime


ANCHOR_SETTING = "anchor_created_at"
"""The settings row that holds when the anchor was last re-created (ISO 8601, UTC)."""


def internal_anchor(publisher: Publisher) -> Anchor:
    """The internal source's anchor."""
    created = publisher.signing_cert.not_valid_before_utc
    rows = publisher.store.db.query("SELECT value FROM settings WHERE key = ?", [ANCHOR_SETTING])
    if rows:
        created = max(created, datetime.fromisoformat(rows[0]["value"]))
    xml = publisher.anchor(created)
    return Anchor(xml, anchor_hash(xml), created.replace(microsecond=0))


def recreate_anchor(publisher: Publisher, now: datetime) -> Anchor:
    """Re-create the internal source's anchor at ``now`` (its sources and signing certificates as they are now)."""
    moment = now.astimezone(UTC).replace(microsecond=0).isoformat()
    with publisher.store.transaction("anchor_recreated", {"created_at": moment}):
        publisher.store.db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [ANCHOR_SETTING, moment],
        )
    return internal_anchor(publisher)


def download_url(publisher: Publisher) -> str:
    """Where security servers download the internal configuration (this registry's directory)."""
    return f"{publisher.public_url}/{DIRECTORY_NAME}"


PART_FILES = {
    "PRIVATE-PARAMETERS": ("private-params.xml", False),
    "SHARED-PARAMETERS": ("shared-params.xml", False),
    "MONITORING": ("monitoring-params.xml", True),
}
"""The internal source's parts: content identifier to file name and whether the part is optional."""
_GENERATION = re.compile(r"[0-9]{20}")


@dataclass(frozen=True, slots=True)
class ConfigurationPart:
    """One part of the latest published configuration."""

    content_identifier: str
    file_name: str
    version: int
    optional: bool
    updated_at: datetime
    path: Path


def _generation_folders(published: Path) -> list[tuple[str, int, Path]]:
    """Every generation kept under ``published`` (``V<version>/<generation>/``), newest first."""
    found: list[tuple[str, int, Path]] = []
    for version_dir in published.glob("V[0-9]*"):
        if not version_dir.name[1:].isdigit() or not version_dir.is_dir():
            continue
        found.extend((generation.name, int(version_dir.name[1:]), generation)
                     for generation in version_dir.iterdir() if _GENERATION.fullmatch(generation.name))
    return sorted(found, reverse=True)


def _parts_of(name: str, version: int, folder: Path, optional_parts: Mapping[str, str] = MappingProxyType({})
              ) -> list[ConfigurationPart]:
    updated = datetime.strptime(name, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)
    files = {**PART_FILES, **{identifier: (file_name, True) for identifier, file_name in optional_parts.items()}}
    return [
        ConfigurationPart(identifier, file_name, version, optional, updated, folder / file_name)
        for identifier, (file_name, optional) in files.items()
        if (folder / file_name).is_file()
    ]


def configuration_parts(published: Path, optional_parts: Mapping[str, str] = MappingProxyType({})
                        ) -> list[ConfigurationPart]:
    """The parts of the newest generation published under ``published`` (``V<version>/<generation>/``); none
    before the first publication. ``optional_parts``: the uploaded parts' file names by content identifier
    (central_registry/admin/configuration_parts.py)."""
    folders = _generation_folders(published)
    return _parts_of(*folders[0], optional_parts) if folders else []


@dataclass(frozen=True, slots=True)
class PartHash:
    """One part of a kept generation and its content hash."""

    part: ConfigurationPart
    sha512: str
    """Base64 SHA-512 of the file: the hash the generation's signed directory listed for it (pr-gconf §3.3)."""


@dataclass(frozen=True, slots=True)
class ConfigurationGeneration:
    """One generation the registry still keeps (the publisher keeps the newest ``KEEP_GENERATIONS``)."""

    generation: str
    version: int
    published_at: datetime
    parts: tuple[PartHash, ...]


def configuration_generations(published: Path, optional_parts: Mapping[str, str] = MappingProxyType({})
                              ) -> list[ConfigurationGeneration]:
    """Every generation kept under ``published``, newest first, with its parts and their hashes (a fedbus
    extension: X-Road's API lists only the newest parts). Only the newest is the one the signed directory names;
    the older ones are kept for downloads that read the previous directory (central_registry/publisher.py)."""
    generations = []
    for name, version, folder in _generation_folders(published):
        parts = _parts_of(name, version, folder, optional_parts)
        hashes = []
        for part in parts:
            try:
                data = part.path.read_bytes()
            except FileNotFoundError:  # pruned by a publication in the meantime
                continue
            hashes.append(PartHash(part, base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")))
        if hashes:
            generations.append(ConfigurationGeneration(name, version, parts[0].updated_at, tuple(hashes)))
    return generations


def configuration_part(published: Path, content_identifier: str, version: int,
                       optional_parts: Mapping[str, str] = MappingProxyType({})) -> tuple[ConfigurationPart, bytes]:
    """One part of the newest generation and its bytes; :class:`ConfigurationPartNotFound` when there is none."""
    for part in configuration_parts(published, optional_parts):
        if part.content_identifier == content_identifier and part.version == version:
            return part, part.path.read_bytes()
    raise ConfigurationPartNotFound(f"no published part {content_identifier} version {version}")


class ConfigurationPartNotFound(NotFound):
    """The newest configuration has no such part."""

    api_code = "configuration_part_not_found"
