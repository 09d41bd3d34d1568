"""Reading the shipped defaults, conf.d/local.ini and an extra file, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_server.configfile import load_config, shipped_dir
from security_server.core.config import MessageLimits
from security_server.core.errors import ConfigurationError


def test_shipped_defaults_load() -> None:
    """The shipped security-server defaults parse into the documented limits."""
    limits = MessageLimits.from_config(load_config("security-server", local_dir=Path("/nonexistent")))
    assert limits.max_body_bytes == 10 * 1024 * 1024
    assert limits.max_uri_chars == 2000


def test_local_then_extra_override(tmp_path: Path) -> None:
    """local.ini overrides the defaults and the command-line file overrides local.ini."""
    (tmp_path / "local.ini").write_text("[limits]\nmax-uri-chars = 3000\nmax-attachments = 5\n")
    extra = tmp_path / "extra.ini"
    extra.write_text("[limits]\nmax-uri-chars = 4000\n")
    limits = MessageLimits.from_config(load_config("security-server", local_dir=tmp_path, extra=extra))
    assert (limits.max_uri_chars, limits.max_attachments) == (4000, 5)


def test_missing_extra_file_is_an_error(tmp_path: Path) -> None:
    """A configuration file named on the command line must exist."""
    with pytest.raises(ConfigurationError, match="not found"):
        load_config("security-server", local_dir=tmp_path, extra=tmp_path / "missing.ini")


def test_shipped_dirs_exist() -> None:
    """conf/ and schemas/ are found from the package."""
    assert (shipped_dir("conf") / "security-server.ini").is_file()
    assert (shipped_dir("conf") / "central-registry.ini").is_file()
