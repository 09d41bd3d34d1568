"""Layered INI configuration: later layers win, bad values name file, section and key."""

from __future__ import annotations

import pytest

from security_server.core.config import IniLayer, LayeredConfig, LoggingConfig, MessageLimits
from security_server.core.errors import ConfigurationError

DEFAULTS = IniLayer("conf/security-server.ini", "[limits]\nmax-body-bytes = 10485760\nmax-uri-chars = 2000\n")


def test_later_layers_override_key_by_key() -> None:
    """local.ini overrides one key and leaves the others at their defaults."""
    local = IniLayer("conf.d/local.ini", "[limits]\nmax-uri-chars = 4000\n")
    limits = MessageLimits.from_config(LayeredConfig.from_layers([DEFAULTS, local]))
    assert limits.max_uri_chars == 4000
    assert limits.max_body_bytes == 10485760


def test_bad_value_names_file_section_and_key() -> None:
    """A non-integer in the override file is reported with that file, section and key."""
    local = IniLayer("conf.d/local.ini", "[limits]\nmax-body-bytes = lots\n")
    with pytest.raises(ConfigurationError) as info:
        MessageLimits.from_config(LayeredConfig.from_layers([DEFAULTS, local]))
    assert "conf.d/local.ini" in info.value.message
    assert "[limits] max-body-bytes" in info.value.message


def test_out_of_range_value_is_refused() -> None:
    """A value under its minimum is refused with the bound in the message."""
    local = IniLayer("x.ini", "[limits]\nmax-body-bytes = 10\n")
    with pytest.raises(ConfigurationError, match="at least 1024"):
        MessageLimits.from_config(LayeredConfig.from_layers([DEFAULTS, local]))


def test_malformed_file_is_named() -> None:
    """A file that is not INI is named in the error."""
    with pytest.raises(ConfigurationError, match="broken.ini"):
        LayeredConfig.from_layers([IniLayer("broken.ini", "no section header\n")])


def test_choice_and_bool() -> None:
    """Choices outside their set and non-booleans are refused; valid ones parse."""
    config = LayeredConfig.from_layers([IniLayer("a.ini", "[logging]\nformat = xml\n[x]\nflag = yes\nbad = maybe\n")])
    with pytest.raises(ConfigurationError, match=r"\[logging\] format"):
        LoggingConfig.from_config(config)
    assert config.get_bool("x", "flag") is True
    with pytest.raises(ConfigurationError, match=r"\[x\] bad"):
        config.get_bool("x", "bad")


def test_missing_required_key() -> None:
    """A required key set nowhere is an error naming section and key."""
    with pytest.raises(ConfigurationError, match=r"\[server\] owner"):
        LayeredConfig.from_layers([]).get_str("server", "owner")


def test_values_are_frozen() -> None:
    """Parsed configuration objects cannot be changed after start-up."""
    limits = MessageLimits.from_config(LayeredConfig.from_layers([DEFAULTS]))
    with pytest.raises(AttributeError):
        limits.max_body_bytes = 1  # type: ignore[misc]
