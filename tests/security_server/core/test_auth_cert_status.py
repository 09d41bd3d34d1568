"""X-Road's authentication-certificate state moves (its configuration checker's rules)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from security_server.core.auth_cert_status import CertStatus, can_register, can_unregister, observed


def test_a_listed_certificate_is_registered_unless_its_deletion_is_in_progress() -> None:
    """Listed: SAVED, in registration, registered and in error become REGISTERED; DELETION_IN_PROGRESS stays."""
    for status in CertStatus:
        expected = status if status is CertStatus.DELETION_IN_PROGRESS else CertStatus.REGISTERED
        assert observed(status, True) is expected


def test_only_a_registered_certificate_that_is_dropped_is_an_error() -> None:
    """Not listed: REGISTERED becomes GLOBAL_ERROR; every other state stays."""
    for status in CertStatus:
        expected = CertStatus.GLOBAL_ERROR if status is CertStatus.REGISTERED else status
        assert observed(status, False) is expected


@given(st.sampled_from(CertStatus), st.lists(st.booleans(), max_size=8))
def test_the_state_after_a_configuration_depends_on_that_configuration_only_once_seen(
    start: CertStatus, listings: list[bool]
) -> None:
    """Observing the same configuration twice changes nothing more (the move is idempotent)."""
    status = start
    for listed in listings:
        status = observed(status, listed)
        assert observed(status, listed) is status


def test_register_and_unregister_rules() -> None:
    """REGISTER only from SAVED; UNREGISTER from in registration or registered; never both."""
    assert [s for s in CertStatus if can_register(s)] == [CertStatus.SAVED]
    assert {s for s in CertStatus if can_unregister(s)} == {CertStatus.REGISTRATION_IN_PROGRESS, CertStatus.REGISTERED}
