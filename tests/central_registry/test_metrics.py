"""The registry's Prometheus metrics: registration requests by status, generations, OCSP and TSA requests."""

from __future__ import annotations


from prometheus_client.parser import text_string_to_metric_families

from central_registry.metrics import RegistryMetrics
from tests.promtool import assert_metrics_pass


def values(metrics: RegistryMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def test_families_and_counts() -> None:
    """Each event is counted under its result; requests by status come from the source on scrape."""
    metrics = RegistryMetrics(lambda: {"SUBMITTED": 2, "APPROVED": 5})
    metrics.generation_published()
    metrics.ocsp_answered("good")
    metrics.ocsp_answered("good")
    metrics.tsa_answered("granted")
    got = values(metrics)
    assert got[("fedbus_registry_configuration_generations_published_total", ())] == 1
    assert got[("fedbus_registry_ocsp_requests_total", (("result", "good"),))] == 2
    assert got[("fedbus_registry_tsa_requests_total", (("result", "granted"),))] == 1
    assert got[("fedbus_registry_registration_requests", (("status", "APPROVED"),))] == 5


def test_failing_source_is_left_out_and_counted() -> None:
    """A store that cannot be read leaves the requests gauge out of that scrape and is counted."""
    def broken() -> dict[str, int]:
        raise RuntimeError("locked")

    got = values(RegistryMetrics(broken))
    assert not any(name == "fedbus_registry_registration_requests" for name, _ in got)
    assert got[("fedbus_registry_metrics_source_errors_total", ())] == 1


def test_exposition_passes_promtool() -> None:
    """``promtool check metrics`` accepts the exposition (required in CI)."""
    metrics = RegistryMetrics(lambda: {"SUBMITTED": 1})
    metrics.ocsp_answered("revoked")
    assert_metrics_pass(metrics.render())
