"""The evidence services' settings and wiring: X-Road's defaults, the [messagelog] keys, own clients only."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.task import Clock

from security_server.core.config import IniLayer, LayeredConfig
from security_server.core.errors import ConfigurationError, GlobalConfOutdated
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId
from security_server.messagelog.archiver import ArchiverSettings
from security_server.messagelog.evidence_services import EvidenceServices, EvidenceSettings, make_evidence_services
from security_server.messagelog.writer import MessageLogWriter


def config(text: str) -> LayeredConfig:
    """A configuration from one INI text."""
    return LayeredConfig.from_layers([IniLayer("test.ini", text)])


def test_defaults_are_xroads(tmp_path: Path) -> None:
    """Interval from the global configuration, 10 000 records, 4 h grace, 6 h/12 h jobs, 30 days, 32 MiB."""
    settings = EvidenceSettings.from_config(tmp_path, config(""))
    assert settings == EvidenceSettings.defaults(tmp_path)
    stamper, archiver = settings.timestamper, settings.archiver
    assert stamper.interval_seconds is None and stamper.max_records == 10_000
    assert stamper.grace_period_seconds == 14_400 and not stamper.immediate
    assert archiver.archive_dir == tmp_path / "archive"
    assert (archiver.archive_interval_seconds, archiver.clean_interval_seconds) == (21_600, 43_200)
    assert archiver.keep_records_seconds == 30 * 86_400 and archiver.max_archive_bytes == 32 * 1024 * 1024
    assert not settings.allow_remote_asic


def test_a_running_server_archives_in_a_separate_process_by_default(tmp_path: Path) -> None:
    """archive-in-separate-process defaults to true for the server (the thread pool starved the proxies), false
    when set so; the Archiver class used directly keeps its in-thread default."""
    assert EvidenceSettings.from_config(tmp_path, config("")).archiver.separate_process
    off = EvidenceSettings.from_config(tmp_path, config("[messagelog]\narchive-in-separate-process = false\n"))
    assert not off.archiver.separate_process
    assert not ArchiverSettings(archive_dir=tmp_path).separate_process


def test_messagelog_section_overrides(tmp_path: Path) -> None:
    """Every [messagelog] key is read with X-Road's name."""
    settings = EvidenceSettings.from_config(
        tmp_path,
        config(
            "[messagelog]\ntimestamp-interval-seconds = 5\ntimestamp-records-limit = 7\n"
            "acceptable-timestamp-failure-period = 0\ntimestamp-immediately = true\narchive-dir = /srv/archive\n"
            "archive-interval-seconds = 60\nclean-interval-seconds = 120\nkeep-records-for-days = 2\n"
            "archive-max-filesize = 2048\nasic-allow-remote = yes\n"
        ),
    )
    assert settings.timestamper.interval_seconds == 5 and settings.timestamper.max_records == 7
    assert settings.timestamper.grace_period_seconds == 0 and settings.timestamper.immediate
    assert settings.archiver.archive_dir == Path("/srv/archive") and settings.archiver.keep_records_seconds == 2 * 86_400
    assert settings.archiver.max_archive_bytes == 2048 and settings.allow_remote_asic


@pytest.mark.parametrize(
    "line", ["timestamp-records-limit = 0", "acceptable-timestamp-failure-period = -1", "timestamp-immediately = maybe"]
)
def test_bad_values_name_file_section_and_key(tmp_path: Path, line: str) -> None:
    """A value out of range or of the wrong type is a configuration error naming where it is."""
    with pytest.raises(ConfigurationError, match=r"test.ini: \[messagelog\]"):
        EvidenceSettings.from_config(tmp_path, config(f"[messagelog]\n{line}\n"))


class _Snapshot:
    """A server configuration that hosts one client."""

    def client(self, client_id: ClientId) -> object | None:
        return object() if client_id == ClientId("EE", "GOV", "1", "mine") else None


def _no_conf() -> GlobalConf:
    raise GlobalConfOutdated("no configuration yet")


def test_make_evidence_services_wires_timestamper_archiver_and_asic(tmp_path: Path) -> None:
    """One MultiService with the timestamper and archiver; /asic knows the server's own clients only; without a
    global configuration the interval falls back to 60 s."""
    clock = Clock()
    writer = MessageLogWriter(clock, tmp_path / "log.db")  # type: ignore[arg-type]  # never started here
    snapshot: object = _Snapshot()
    services = make_evidence_services(
        clock, writer, _no_conf, lambda: snapshot, EvidenceSettings.defaults(tmp_path)  # type: ignore[arg-type,return-value]
    )
    assert isinstance(services, EvidenceServices)
    assert list(services) == [services.timestamper, services.archiver]
    assert services.timestamper.interval_seconds() == 60.0
    assert services.asic._is_own_client(ClientId("EE", "GOV", "1", "mine"))
    assert not services.asic._is_own_client(ClientId("EE", "GOV", "1", "other"))
