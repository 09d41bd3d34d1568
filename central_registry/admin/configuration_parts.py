"""Optional configuration parts an administrator uploads (X-Road's ``uploadConfigurationParts``, UG-CS §5.6).

As X-Road's central server reads ``/etc/xroad/configuration-parts/*.ini``, the registry knows an optional part by a
file in ``configuration-parts/`` of its directory, in X-Road's format (with or without a section line)::

    content-identifier = OCSP_FETCH_INTERVAL
    file-name = ocsp-fetch-interval-params.xml

The registry's own parts (``PRIVATE-PARAMETERS``, ``SHARED-PARAMETERS``, and ``MONITORING``, which it makes from
``registry set monitoring_client``) and their file names are reserved. An uploaded part is kept in the registry's
settings (so every node of a clustered registry publishes it) and published in every configuration from the next
generation on, listed in the signed directory under its content identifier. X-Road runs a validator program per
part; fedbus runs none: it checks what it can itself, that the content identifier is declared, the size
(:data:`MAX_PART_BYTES`), and that a part whose file name ends in ``.xml`` is well-formed XML (security_server/core/safexml.py).
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from central_registry.store import RegistryError, RegistryStore
from security_server.core.errors import BusError
from security_server.core.safexml import parse_xml

PARTS_DIR = "configuration-parts"
SETTING_PREFIX = "configuration_part:"
MAX_PART_BYTES = 1024 * 1024
"""The largest part taken (a security server downloads every part of every generation it is given)."""
RESERVED_IDENTIFIERS = frozenset({"PRIVATE-PARAMETERS", "SHARED-PARAMETERS", "MONITORING"})
RESERVED_FILE_NAMES = frozenset({"private-params.xml", "shared-params.xml", "monitoring-params.xml"})
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""A part's file name: one path segment the registry's web server serves (central_registry/service.py)."""
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")


class UnknownConfigurationPart(RegistryError):
    """No declared optional part has this content identifier (X-Road's ``unknown_configuration_part``)."""

    http_status = 400
    api_code = "unknown_configuration_part"


class ConfigurationPartValidationFailed(RegistryError):
    """The uploaded file is not acceptable (X-Road's ``configuration_part_validation_failed``)."""

    http_status = 400
    api_code = "configuration_part_validation_failed"


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """An uploaded optional part: its content identifier, file name, bytes and when it was uploaded."""

    content_identifier: str
    file_name: str
    data: bytes
    uploaded_at: datetime


def declared_parts(root: Path) -> dict[str, str]:
    """The optional parts declared in ``root/configuration-parts/*.ini``: content identifier to file name. A file
    that is malformed, or declares a reserved identifier or file name or a name the web server would not serve,
    declares nothing."""
    folder = root / PARTS_DIR
    found: dict[str, str] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.ini")):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            text = path.read_text(encoding="utf-8")
            parser.read_string(text if text.lstrip().startswith("[") else f"[part]\n{text}")
        except (OSError, UnicodeDecodeError, configparser.Error):
            continue
        for section in parser.sections():
            identifier = parser.get(section, "content-identifier", fallback="").strip()
            file_name = parser.get(section, "file-name", fallback="").strip()
            if (_IDENTIFIER.fullmatch(identifier) and _FILE_NAME.fullmatch(file_name)
                    and identifier not in RESERVED_IDENTIFIERS and file_name not in RESERVED_FILE_NAMES
                    and file_name not in found.values()):
                found.setdefault(identifier, file_name)
    return found


def _validate(file_name: str, data: bytes) -> None:
    if not data:
        raise ConfigurationPartValidationFailed("the part is empty")
    if len(data) > MAX_PART_BYTES:
        raise ConfigurationPartValidationFailed(f"the part is larger than {MAX_PART_BYTES} bytes")
    if file_name.lower().endswith(".xml"):
        try:
            parse_xml(data, max_bytes=MAX_PART_BYTES)  # fedbus's one hardened parser: no DTD, no entities
        except BusError as err:
            raise ConfigurationPartValidationFailed(f"the part is not well-formed XML: {err}") from err


def upload(store: RegistryStore, root: Path, content_identifier: str, data: bytes, now: datetime) -> UploadedPart:
    """Take a new version of a declared optional part; published from the next generation on."""
    file_name = declared_parts(root).get(content_identifier)
    if file_name is None:
        raise UnknownConfigurationPart(f"no optional configuration part {content_identifier} is declared")
    _validate(file_name, data)
    record = {"file_name": file_name, "data": base64.b64encode(data).decode("ascii"), "uploaded_at": now.isoformat()}
    digest = hashlib.sha256(data).hexdigest()
    with store.transaction("configuration_part_uploaded", {"content_identifier": content_identifier,
                                                           "file_name": file_name, "sha256": digest}):
        store.db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [SETTING_PREFIX + content_identifier, json.dumps(record, sort_keys=True)],
        )
    return UploadedPart(content_identifier, file_name, data, now)


def uploaded_parts(store: RegistryStore) -> list[UploadedPart]:
    """Every uploaded part, by content identifier (what the publisher publishes beside its own parts)."""
    rows = store.db.query("SELECT key, value FROM settings WHERE key LIKE ? ORDER BY key", [SETTING_PREFIX + "%"])
    found = []
    for row in rows:
        try:
            record = json.loads(row["value"])
            found.append(UploadedPart(str(row["key"])[len(SETTING_PREFIX):], str(record["file_name"]),
                                      base64.b64decode(record["data"]), datetime.fromisoformat(record["uploaded_at"])))
        except (ValueError, KeyError, TypeError):
            continue
    return found
