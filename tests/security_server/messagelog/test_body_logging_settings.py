"""[messagelog] body-logging keys (X-Road's names) are read and handed to the writer the proxies consult."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from security_server.core.body_logging import LOG_EVERY_BODY, BodyLogging
from security_server.core.config import IniLayer, LayeredConfig
from security_server.core.errors import GlobalConfOutdated, ConfigurationError
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId
from security_server.messagelog.evidence_services import EvidenceSettings, make_evidence_services
from security_server.messagelog.writer import MessageLogWriter

A = ClientId("EE", "GOV", "70000311", "provider")
B = ClientId("EE", "GOV", "70000312", "other")


def config(text: str) -> LayeredConfig:
    """A configuration from one INI text."""
    return LayeredConfig.from_layers([IniLayer("test.ini", text)])


def test_by_default_every_body_is_logged(tmp_path: Path) -> None:
    """No keys: X-Road's default, message-body-logging = true without exceptions."""
    assert EvidenceSettings.from_config(tmp_path, config("")).body_logging == LOG_EVERY_BODY


def test_the_rule_and_the_four_lists_are_read(tmp_path: Path) -> None:
    """Each key by its X-Road name, lists of INSTANCE/CLASS/MEMBER/SUBSYSTEM."""
    settings = EvidenceSettings.from_config(tmp_path, config(
        "[messagelog]\nmessage-body-logging = false\n"
        "enabled-body-logging-local-producer-subsystems = EE/GOV/70000311/provider\n"
        "enabled-body-logging-remote-producer-subsystems = EE/GOV/70000312/other, EE/GOV/70000311/provider\n"
        "disabled-body-logging-local-producer-subsystems = EE/GOV/70000312/other\n"
        "disabled-body-logging-remote-producer-subsystems =\n"
    ))
    assert settings.body_logging == BodyLogging(
        enabled=False, enabled_local=frozenset({A}), enabled_remote=frozenset({A, B}), disabled_local=frozenset({B})
    )


def test_a_member_in_a_list_is_a_configuration_error(tmp_path: Path) -> None:
    """Body logging is set per subsystem (X-Road): a member-level entry is refused at start-up."""
    with pytest.raises(ConfigurationError, match="disabled-body-logging-local-producer-subsystems"):
        EvidenceSettings.from_config(tmp_path, config(
            "[messagelog]\ndisabled-body-logging-local-producer-subsystems = EE/GOV/70000311\n"
        ))


def _no_conf() -> GlobalConf:
    raise GlobalConfOutdated("no configuration yet")


def test_the_evidence_services_hand_the_choice_to_the_writer(tmp_path: Path) -> None:
    """make_evidence_services sets the writer's body_logging, which the proxies' journal reads per record."""
    clock = Clock()
    writer = MessageLogWriter(clock, tmp_path / "log.db")  # type: ignore[arg-type]  # never started here
    policy = BodyLogging(disabled_remote=frozenset({A}))
    settings = replace(EvidenceSettings.defaults(tmp_path), body_logging=policy)
    make_evidence_services(clock, writer, _no_conf, lambda: None, settings)  # type: ignore[arg-type,return-value]
    assert writer.body_logging == policy
