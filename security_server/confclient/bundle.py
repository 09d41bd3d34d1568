"""The security server's local copy of the global configuration, swapped in whole.

A verified download is stored as one file (the signed directory, its content type and every file it lists),
replaced with one atomic rename: after a crash the server holds either the previous configuration or the new
one, never a mix. On start-up the stored copy is verified again against the anchor (signature and hashes), so
a tampered file on disk is refused like a tampered download.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from security_server.core.errors import InvalidConfiguration
from security_server.core.globalconf import (
    ConfigurationAnchor,
    GlobalConf,
    assemble_global_conf,
    parse_signed_directory,
    verify_signed_directory,
)
from security_server.core.globalconf.directory import VerifiedDirectory
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.schemafiles import load_schema

BUNDLE_FORMAT = "fedbus-globalconf-1"


@dataclass(frozen=True, slots=True)
class ConfBundle:
    """A downloaded configuration exactly as received: directory and files."""

    content_type: str
    directory: bytes
    files: dict[str, bytes]

    def to_bytes(self) -> bytes:
        """Serialise for the local store."""
        return json.dumps(
            {
                "format": BUNDLE_FORMAT,
                "content_type": self.content_type,
                "directory": base64.b64encode(self.directory).decode("ascii"),
                "files": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(self.files.items())},
            },
            sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> ConfBundle:
        """Read a stored bundle; a damaged one raises :class:`InvalidConfiguration`."""
        try:
            document = json.loads(data)
            if document.get("format") != BUNDLE_FORMAT:
                raise ValueError("unknown format")
            return cls(
                content_type=str(document["content_type"]),
                directory=base64.b64decode(document["directory"], validate=True),
                files={str(k): base64.b64decode(v, validate=True) for k, v in document["files"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise InvalidConfiguration("the stored global configuration is damaged") from err


def verify_directory(content_type: str, directory: bytes, anchor: ConfigurationAnchor, now: datetime) -> VerifiedDirectory:
    """Parse and verify a signed directory against the anchor at ``now``."""
    return verify_signed_directory(parse_signed_directory(content_type, directory), anchor, now)


def assemble(bundle: ConfBundle, anchor: ConfigurationAnchor, now: datetime) -> GlobalConf:
    """Verify a whole bundle against the anchor at ``now`` and build the :class:`GlobalConf` it describes.

    An expired bundle raises :class:`GlobalConfOutdated`, like an expired download: X-Road serves no traffic
    on an outdated configuration (ARC-G §3.2).
    """
    verified = verify_directory(bundle.content_type, bundle.directory, anchor, now)
    return assemble_global_conf(
        verified,
        bundle.files,
        shared_schema=load_schema("shared-parameters.xsd"),
        private_schema=load_schema("private-parameters.xsd"),
    )


def save(path: Path, bundle: ConfBundle) -> None:
    """Replace the stored bundle atomically (write, fsync, rename, fsync the folder), readable by us only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, bundle.to_bytes(), PRIVATE_MODE)


def load(path: Path) -> ConfBundle | None:
    """The stored bundle, or None if there is none yet."""
    try:
        return ConfBundle.from_bytes(path.read_bytes())
    except FileNotFoundError:
        return None
