"""``[opmon]`` and ``[healthcheck]`` reach the security server's settings; the CLI says when the health port is off."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from security_server.cli import server as server_cli
from security_server.configfile import load_config
from security_server.core.config import IniLayer, LayeredConfig
from security_server.core.errors import ConfigurationError
from security_server.monitoring import MonitoringSettings
from security_server.service import ServerSettings
from security_server.status_view import HealthPort, recent_traffic


def test_shipped_defaults_record_every_exchange_and_keep_the_health_port_off(tmp_path: Path) -> None:
    """conf/security-server.ini: opmon on, 7 days kept, health port 0 on the loopback."""
    settings = ServerSettings.from_config(tmp_path, load_config("security-server")).monitoring
    assert settings == MonitoringSettings(opmon_enabled=True, retention_days=7, healthcheck_port=0,
                                          healthcheck_interface="127.0.0.1")


def test_the_sections_are_read(tmp_path: Path) -> None:
    """Every key of [opmon] and [healthcheck] is read."""
    config = LayeredConfig.from_layers([IniLayer("local.ini", "[opmon]\nenabled = false\nretention-days = 30\n"
                                                             "[healthcheck]\nport = 5588\ninterface = 0.0.0.0\n")])
    assert ServerSettings.from_config(tmp_path, config).monitoring == MonitoringSettings(False, 30, 5588, "0.0.0.0")


@pytest.mark.parametrize("text", ["[healthcheck]\nport = 70000\n", "[opmon]\nenabled = maybe\n",
                                  "[opmon]\nretention-days = -1\n"])
def test_a_bad_value_is_a_configuration_error(tmp_path: Path, text: str) -> None:
    """A port out of range, a non-boolean switch or a negative retention is refused at start-up."""
    with pytest.raises(ConfigurationError):
        MonitoringSettings.from_config(LayeredConfig.from_layers([IniLayer("local.ini", text)]))


def test_the_cli_asks_the_loopback_for_a_wildcard_interface() -> None:
    """A server listening on 0.0.0.0 is asked on 127.0.0.1; --port overrides the configured port."""
    config = LayeredConfig.from_layers([IniLayer("local.ini", "[healthcheck]\nport = 5588\ninterface = 0.0.0.0\n")])
    assert HealthPort.from_config(config) == HealthPort("127.0.0.1", 5588)
    assert HealthPort.from_config(config, 6000) == HealthPort("127.0.0.1", 6000)


def test_maintenance_with_the_port_off_says_how_to_turn_it_on() -> None:
    """``fedbus server maintenance on`` without a health port ends with a clear error and exit status 1."""
    result = CliRunner().invoke(server_cli, ["maintenance", "on"])
    assert result.exit_code == 1 and "[healthcheck] port" in result.output, result.output


def test_no_traffic_before_the_first_record(tmp_path: Path) -> None:
    """A server directory without opmon.db has no traffic to show, and none is created."""
    assert recent_traffic(tmp_path, 1_700_000_000.0) == ()
    assert not (tmp_path / "opmon.db").exists()
