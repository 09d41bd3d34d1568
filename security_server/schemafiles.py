"""Find fedbus's XSD files and compile them once (edge code: this module reads files).

From a source checkout the schemas are the repository's ``schemas/`` folder beside the package; an installed
fedbus has them in ``<sys.prefix>/share/fedbus/schemas`` (``data_files`` in setup.cfg).
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from security_server.configfile import shipped_dir
from security_server.core.errors import ConfigurationError
from security_server.core.schemas import compile_schema


def schema_dir() -> Path:
    """The folder holding our ``*.xsd`` files: the checkout's ``schemas/`` or the installed copy."""
    return shipped_dir("schemas")


def read_schemas(folder: Path) -> dict[str, bytes]:
    """Read every ``*.xsd`` in ``folder``, keyed by file name."""
    try:
        return {path.name: path.read_bytes() for path in sorted(folder.glob("*.xsd"))}
    except OSError as err:
        message = f"cannot read schemas in {folder}"
        raise ConfigurationError(message, reason=f"{message}: {err}") from err


@functools.cache
def load_schema(name: str) -> etree.XMLSchema:
    """The compiled schema ``name`` (e.g. ``shared-parameters.xsd``), with its imports; cached per process."""
    return compile_schema(name, read_schemas(schema_dir()))
