"""The health check's pure verdicts (ig-xlb §3.4): OCSP good and fresh, global configuration, timestamping, memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from security_server.core.health import globalconf_problem, memory_problem, ocsp_problem, timestamping_problem
from security_server.core.trust import CertStatus, OcspStatus

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def status(state: CertStatus = CertStatus.GOOD, age: float = 60, next_update: datetime | None = None) -> OcspStatus:
    produced = NOW - timedelta(seconds=age)
    revoked = NOW - timedelta(days=1) if state is CertStatus.REVOKED else None
    return OcspStatus(state, 1, produced, next_update, produced, "CN=ocsp", revocation_time=revoked)


def test_good_fresh_ocsp_passes() -> None:
    """A good response produced within the freshness limit is healthy."""
    assert ocsp_problem(status(), now=NOW, max_age_seconds=3600) is None


def test_ocsp_missing_revoked_unknown_stale_or_expired_fails() -> None:
    """No response, a revoked or unknown status, a response past the limit or past nextUpdate each fail."""
    assert ocsp_problem(None, now=NOW, max_age_seconds=3600) == "no OCSP response for the authentication certificate"
    assert "revoked" in (ocsp_problem(status(CertStatus.REVOKED), now=NOW, max_age_seconds=3600) or "")
    assert "unknown" in (ocsp_problem(status(CertStatus.UNKNOWN), now=NOW, max_age_seconds=3600) or "")
    assert "7200 s old" in (ocsp_problem(status(age=7200), now=NOW, max_age_seconds=3600) or "")
    stale = status(next_update=NOW - timedelta(seconds=1))
    assert "nextUpdate" in (ocsp_problem(stale, now=NOW, max_age_seconds=3600) or "")


def test_globalconf_must_be_present_and_unexpired() -> None:
    """A missing configuration or one at or past its expiry fails; one still valid passes."""
    assert globalconf_problem(None, now=NOW) == "no valid global configuration"
    assert "expired" in (globalconf_problem(NOW, now=NOW) or "")
    assert globalconf_problem(NOW + timedelta(minutes=5), now=NOW) is None


def test_timestamping_within_grace_passes() -> None:
    """Timestamping that works, or fails for no longer than the grace period, passes; longer fails."""
    assert timestamping_problem(None, grace_seconds=14400) is None
    assert timestamping_problem(14400, grace_seconds=14400) is None
    assert "14401 s" in (timestamping_problem(14401, grace_seconds=14400) or "")


def test_memory_threshold_is_optional() -> None:
    """Without a threshold memory never fails; above it, it does."""
    assert memory_problem(99, threshold_percent=None) is None
    assert memory_problem(80, threshold_percent=80) is None
    assert memory_problem(81, threshold_percent=80) == "memory usage 81 % is over the threshold of 80 %"
