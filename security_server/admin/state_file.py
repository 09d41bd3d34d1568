"""A small JSON object kept in the server directory, read whole and written whole (replaced atomically).

Used for the administrative state that is not in the configuration store: ``auth-cert-status.json``
(:mod:`security_server.admin.auth_cert_states`), ``token-names.json`` (:mod:`security_server.admin.keys`) and
``address-change.json`` (:mod:`security_server.admin.registration`). A file that cannot be read or does not hold a
JSON object is a :class:`ConfigurationError` naming it; the caller checks the object's members. Keys are written
sorted, so a file's bytes depend on its contents only. Blocking, but the files are small and written rarely.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from security_server.admin.server_dir import ServerDirectory
from security_server.core.errors import ConfigurationError
from security_server.edge.atomic_file import PUBLIC_MODE, write_atomically


def read(server_dir: ServerDirectory, name: str, *, wrong_shape: str = "is not a JSON object") -> dict[str, Any] | None:
    """The JSON object in file ``name`` of the server directory, None when there is no such file.

    ``wrong_shape`` is what the error says after the file's path when it holds a JSON value other than an object.
    """
    path = server_dir.path / name
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ConfigurationError(f"cannot read {path}: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{path} {wrong_shape}")
    return raw


def write(server_dir: ServerDirectory, name: str, content: Mapping[str, Any], *, mode: int = PUBLIC_MODE,
          indent: int | None = 1) -> None:
    """Replace file ``name`` of the server directory with ``content`` as JSON, keys sorted, ``indent`` spaces a
    level (None: on one line), ending in a newline, with exactly ``mode``."""
    path = server_dir.path / name
    data = (json.dumps(content, indent=indent, sort_keys=True) + "\n").encode("utf-8")
    try:
        write_atomically(path, data, mode)
    except OSError as err:
        raise ConfigurationError(f"cannot write {path}: {err}") from err
