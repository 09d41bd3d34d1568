"""The management API starts with the security server: ``[management]`` read into ``ServerSettings``."""

from __future__ import annotations

from pathlib import Path

from security_server.configfile import load_config
from security_server.management.config import DEFAULT_PORT, ManagementConfig
from security_server.service import ServerSettings


def _settings(tmp_path: Path, text: str) -> ServerSettings:
    extra = tmp_path / "extra.ini"
    extra.write_text(text, encoding="utf-8")
    return ServerSettings.from_config(tmp_path, load_config("security-server", local_dir=tmp_path, extra=extra))


def test_settings_from_the_config_carry_the_api_on_x_roads_port_by_default(tmp_path: Path) -> None:
    """Read from the INI files, the API is on: port 4000 on loopback unless ``[management]`` says otherwise."""
    settings = _settings(tmp_path, "")
    assert settings.management == ManagementConfig() and settings.management.port == DEFAULT_PORT
    assert settings.management.interface == "127.0.0.1" and settings.layered is not None


def test_several_servers_on_one_host_set_their_own_port(tmp_path: Path) -> None:
    """``[management] port`` moves the API (0: any free port, as the tests use)."""
    settings = _settings(tmp_path, "[management]\nport = 0\ninterface = 127.0.0.2\n")
    assert settings.management == ManagementConfig(interface="127.0.0.2", port=0)


def test_settings_built_by_hand_have_no_api(tmp_path: Path) -> None:
    """Settings made in code (the tests' federations) start no API, so no port 4000 is taken."""
    assert ServerSettings(root=tmp_path).management is None
