"""System figures from psutil: sampled on a fake clock into histograms, outputSpec honoured, certificates listed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from twisted.internet.task import Clock

from security_server.core import envmon
from security_server.core.envmon import HistogramMetric, MetricSet, NumericMetric, StringMetric, metric_set_element
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.envmon.sensors import HISTOGRAMS, CertificateInfo, SystemSampler
from security_server.schemafiles import load_schema

CERT = CertificateInfo("a1b2", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), "AUTH_OR_SIGN", True)


def sampler(tmp_path: Path) -> tuple[SystemSampler, Clock]:
    clock = Clock()
    clock.advance(1_700_000_000)
    return SystemSampler(clock, certificates=lambda: [CERT], disk_paths=[tmp_path], interval=5, window=3), clock


def test_all_metrics_of_this_machine_validate(tmp_path: Path) -> None:
    """Everything asked for: X-Road's names, with histograms, disk, processes and certificates; valid XML."""
    sensors, _ = sampler(tmp_path)
    metrics = sensors.metrics()
    names = [m.name for m in metrics]
    for name in (envmon.OPERATING_SYSTEM, envmon.TOTAL_PHYSICAL_MEMORY, envmon.TOTAL_SWAP_SPACE,
                 envmon.MAX_FILE_DESCRIPTOR_COUNT, *HISTOGRAMS, f"DiskSpaceTotal_{tmp_path}", f"DiskSpaceFree_{tmp_path}",
                 envmon.PROCESSES, envmon.CERTIFICATES):
        assert name in names, name
    by_name = {m.name: m for m in metrics}
    assert isinstance(by_name[envmon.OPERATING_SYSTEM], StringMetric)
    assert isinstance(by_name[envmon.TOTAL_PHYSICAL_MEMORY], NumericMetric)
    assert isinstance(by_name[envmon.SYSTEM_CPU_LOAD], HistogramMetric)
    processes = by_name[envmon.PROCESSES]
    assert isinstance(processes, MetricSet) and processes.metrics
    element = metric_set_element(SecurityServerId(ClientId("EE", "GOV", "1"), "ss1"), "0.1.0", metrics)
    schema = load_schema("env-monitoring.xsd")
    assert schema.validate(element), schema.error_log


def test_output_spec_builds_only_what_is_asked(tmp_path: Path) -> None:
    """A narrow outputSpec answers exactly the named metrics (and lists no processes)."""
    sensors, _ = sampler(tmp_path)
    wanted = frozenset({envmon.OPERATING_SYSTEM, envmon.TOTAL_PHYSICAL_MEMORY})
    assert [m.name for m in sensors.metrics(wanted)] == [envmon.OPERATING_SYSTEM, envmon.TOTAL_PHYSICAL_MEMORY]


def test_histograms_hold_the_last_window_of_samples(tmp_path: Path) -> None:
    """The sampler runs every interval on the reactor's clock and keeps the last ``window`` samples."""
    sensors, clock = sampler(tmp_path)
    sensors.startService()
    for _ in range(5):
        clock.advance(5)
    assert all(len(sensors._samples[name]) == 3 for name in (envmon.FREE_PHYSICAL_MEMORY, envmon.COMMITTED_VIRTUAL_MEMORY))
    (memory,) = sensors.metrics(frozenset({envmon.COMMITTED_VIRTUAL_MEMORY}))
    assert isinstance(memory, HistogramMetric) and memory.minimum > 0
    assert memory.updated == datetime.fromtimestamp(1_700_000_025, tz=UTC)
    sensors.stopService()


def test_certificates_are_listed_as_x_road_does(tmp_path: Path) -> None:
    """Each certificate is a certificate-<sha1> set with its hash, validity, type and whether it is active."""
    sensors, _ = sampler(tmp_path)
    (certificates,) = sensors.metrics(frozenset({envmon.CERTIFICATES}))
    assert isinstance(certificates, MetricSet)
    (cert,) = certificates.metrics
    assert isinstance(cert, MetricSet) and cert.name == "certificate-a1b2"
    assert [(m.name, m.value) for m in cert.metrics if isinstance(m, StringMetric)] == [
        ("sha1Hash", "a1b2"), ("notBefore", "2026-01-01T00:00:00+00:00"), ("notAfter", "2027-01-01T00:00:00+00:00"),
        ("certificateType", "AUTH_OR_SIGN"), ("active", "true")]


def test_a_failing_source_is_left_out(tmp_path: Path) -> None:
    """A certificate source that raises leaves Certificates out; the rest is answered."""
    def broken() -> list[CertificateInfo]:
        raise RuntimeError("token locked")

    clock = Clock()
    sensors = SystemSampler(clock, certificates=broken, disk_paths=[tmp_path / "missing"])
    names = [m.name for m in sensors.metrics()]
    assert envmon.CERTIFICATES not in names and envmon.OPERATING_SYSTEM in names
    assert not any(n.startswith("DiskSpace") for n in names)
