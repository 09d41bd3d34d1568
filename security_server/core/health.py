"""The health check's verdicts on the facts it gathers (ig-xlb §3.4): each returns None when all is well, or a
one-line reason for the load balancer's 500 answer.

The edge (``security_server/healthcheck``) gathers the facts (from the signer, the OCSP cache, the stores, the
global configuration, the message log) and asks here what they mean; nothing here waits or reads a clock.
"""

from __future__ import annotations

from datetime import datetime

from security_server.core.trust import CertStatus, OcspStatus


def ocsp_problem(status: OcspStatus | None, *, now: datetime, max_age_seconds: float) -> str | None:
    """The authentication certificate's OCSP status must be ``good`` and fresh: produced no longer than
    ``max_age_seconds`` ago (X-Road's ``ocspFreshnessSeconds``) and not past its ``nextUpdate``."""
    if status is None:
        return "no OCSP response for the authentication certificate"
    if status.status is not CertStatus.GOOD:
        return f"authentication certificate OCSP status is {status.status.value}"
    age = (now - status.produced_at).total_seconds()
    if age > max_age_seconds:
        return f"authentication certificate OCSP response is {age:.0f} s old (limit {max_age_seconds:.0f} s)"
    if status.next_update is not None and now > status.next_update:
        return "authentication certificate OCSP response is past its nextUpdate"
    return None


def globalconf_problem(expires_at: datetime | None, *, now: datetime) -> str | None:
    """The global configuration must be present, verified, and not past its expiry (pr-gconf)."""
    if expires_at is None:
        return "no valid global configuration"
    if now >= expires_at:
        return f"global configuration expired at {expires_at.isoformat()}"
    return None


def timestamping_problem(failing_for_seconds: float | None, *, grace_seconds: float) -> str | None:
    """Batch timestamping may fail for up to its grace period (X-Road ``acceptable-timestamp-failure-period``);
    past it the message log refuses new records, and the node is not fit for traffic."""
    if failing_for_seconds is None or failing_for_seconds <= grace_seconds:
        return None
    return f"timestamping has failed for {failing_for_seconds:.0f} s (grace period {grace_seconds:.0f} s)"


def memory_problem(used_percent: float, *, threshold_percent: float | None) -> str | None:
    """X-Road's optional memory check (ig-xlb §3.4.3): fail above ``memory-usage-threshold`` percent."""
    if threshold_percent is None or used_percent <= threshold_percent:
        return None
    return f"memory usage {used_percent:.0f} % is over the threshold of {threshold_percent:.0f} %"
