"""Prometheus metrics: the families issue 15 lists, on a per-server registry, valid for promtool."""

from __future__ import annotations


from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from security_server.metrics import GaugeSources, ServerMetrics
from tests.promtool import assert_metrics_pass

NOW = 1_700_000_000.0


def full_sources() -> GaugeSources:
    return GaugeSources(
        messagelog_queue_depth=lambda: 3,
        awaiting_timestamp=lambda: 12,
        oldest_awaiting_timestamp_at=lambda: NOW - 42,
        archive_backlog=lambda: 100,
        certificates=lambda: [("auth", "CN=ss1 #1a", NOW + 86400), ("sign", "CN=org #2b", NOW - 10)],
        ocsp_responses=lambda: [("CN=ss1 #1a", NOW - 300)],
        globalconf_generated_at=lambda: NOW - 60,
        peer_pool_connections=lambda: {"idle": 4, "active": 2},
        replay_guard_size=lambda: 5000,
        opmon_buffer_depth=lambda: 7,
        opmon_records_dropped=lambda: 1,
        heap_upkeep=lambda: (3, 0.012),
    )


def samples(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode("utf-8")):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_every_listed_family_is_exported() -> None:
    """Exchanges, phase latencies, log queue, timestamp backlog and age, archive backlog, certificate expiry,
    OCSP age, global configuration age, pool connections, replay guard, the opmon buffer and the heap upkeep are all
    there."""
    metrics = ServerMetrics(full_sources(), clock=lambda: NOW)
    metrics.exchange_finished("client", "SERVICE:EE/GOV/1/sub/get", "SUBSYSTEM:EE/GOV/2/cli", None,
                              {"signing": 0.002, "peer_exchange": 0.03, "log_commit": 0.004})
    metrics.exchange_finished("server", "SERVICE:EE/GOV/1/sub/get", "SUBSYSTEM:EE/GOV/2/cli",
                              "server.serverproxy.access_denied", {"provider_call": 0.1})
    got = samples(metrics)
    svc, cli = ("service", "SERVICE:EE/GOV/1/sub/get"), ("client", "SUBSYSTEM:EE/GOV/2/cli")
    assert got[("fedbus_exchanges_total", tuple(sorted([("direction", "client"), svc, cli, ("result", "ok")])))] == 1
    assert got[("fedbus_exchanges_total", tuple(sorted([("direction", "server"), svc, cli,
                                                         ("result", "server.serverproxy.access_denied")])))] == 1
    assert got[("fedbus_exchange_phase_seconds_count", (("direction", "client"), ("phase", "signing")))] == 1
    assert got[("fedbus_exchange_phase_seconds_sum", (("direction", "server"), ("phase", "provider_call")))] == 0.1
    assert got[("fedbus_messagelog_queue_depth", ())] == 3
    assert got[("fedbus_messagelog_awaiting_timestamp_records", ())] == 12
    assert got[("fedbus_messagelog_oldest_awaiting_timestamp_age_seconds", ())] == 42
    assert got[("fedbus_messagelog_archive_backlog_records", ())] == 100
    assert got[("fedbus_certificate_expiry_seconds", (("certificate", "CN=ss1 #1a"), ("use", "auth")))] == 86400
    assert got[("fedbus_certificate_expiry_seconds", (("certificate", "CN=org #2b"), ("use", "sign")))] == -10
    assert got[("fedbus_ocsp_response_age_seconds", (("certificate", "CN=ss1 #1a"),))] == 300
    assert got[("fedbus_globalconf_age_seconds", ())] == 60
    assert got[("fedbus_peer_pool_connections", (("state", "active"),))] == 2
    assert got[("fedbus_replay_guard_entries", ())] == 5000
    assert got[("fedbus_opmon_buffer_records", ())] == 7
    assert got[("fedbus_opmon_records_dropped_total", ())] == 1
    assert got[("fedbus_heap_full_collections_total", ())] == 3
    assert got[("fedbus_heap_last_collection_seconds", ())] == 0.012


def test_registry_is_per_server_not_global() -> None:
    """Two servers in one process keep their own figures; nothing lands in prometheus_client's global registry."""
    first, second = ServerMetrics(), ServerMetrics()
    first.exchange_finished("client", "s", "c", None)
    assert ("fedbus_exchanges_total", (("client", "c"), ("direction", "client"), ("result", "ok"), ("service", "s"))) in samples(first)
    assert not any(name == "fedbus_exchanges_total" for name, _ in samples(second))
    assert REGISTRY.get_sample_value("fedbus_exchanges_total", {"direction": "client", "service": "s",
                                                                "client": "c", "result": "ok"}) is None


def test_bad_events_and_failing_sources_never_raise() -> None:
    """An unknown direction or phase is dropped and counted; a failing source is left out and counted."""
    def broken() -> int:
        raise RuntimeError("store closed")

    metrics = ServerMetrics(GaugeSources(replay_guard_size=broken, messagelog_queue_depth=lambda: 1), clock=lambda: NOW)
    metrics.exchange_finished("sideways", "s", "c", None)
    metrics.exchange_finished("client", "s", "c", None, {"lunch": 1.0})
    assert metrics.dropped_events == 2
    got = samples(metrics)
    assert ("fedbus_replay_guard_entries", ()) not in got and got[("fedbus_messagelog_queue_depth", ())] == 1
    assert got[("fedbus_metrics_source_errors_total", (("source", "replay_guard_size"),))] == 1


def test_no_oldest_record_means_age_zero() -> None:
    """With nothing waiting for a timestamp the oldest-record age is 0, not absent."""
    metrics = ServerMetrics(GaugeSources(oldest_awaiting_timestamp_at=lambda: None), clock=lambda: NOW)
    assert samples(metrics)[("fedbus_messagelog_oldest_awaiting_timestamp_age_seconds", ())] == 0


def test_exposition_passes_promtool() -> None:
    """``promtool check metrics`` finds no problem in the exposition (required in CI; skipped only locally
    when promtool is missing)."""
    metrics = ServerMetrics(full_sources(), clock=lambda: NOW)
    metrics.exchange_finished("client", "SERVICE:EE/GOV/1/sub/get", "SUBSYSTEM:EE/GOV/2/cli", None, {"total": 0.05})
    assert_metrics_pass(metrics.render())
