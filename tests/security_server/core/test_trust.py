"""Trust decisions: certificate paths to approved CAs, certificate roles, and OCSP responses judged at ``now``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.certprofile import auth_subject, signing_subject
from security_server.core.errors import BusError, CertValidation, IncorrectValidationInfo, InvalidCertPath
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.trust import (
    DEFAULT_CLOCK_SKEW_SECONDS,
    CertStatus,
    check_ocsp_response,
    is_auth_cert,
    is_signing_cert,
    is_tsa_cert,
    read_ocsp_response,
    verify_cert_path,
)
from tests.federation.pki import Issued, make_ca, make_cert, make_ocsp_response, name

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")


@dataclass(frozen=True)
class Pki:
    """One approved root, an intermediate, a foreign root, and leaves of every role."""

    root: Issued
    intermediate: Issued
    foreign: Issued
    signing: Issued
    auth: Issued
    under_intermediate: Issued
    responder: Issued
    foreign_responder: Issued
    plain_responder: Issued
    foreign_leaf: Issued


@pytest.fixture(scope="module")
def pki() -> Pki:
    """The test PKI, built once for this module."""
    root = make_ca("Approved Root", NOW)
    intermediate = make_ca("Intermediate", NOW, issuer=root, path_length=0)
    foreign = make_ca("Foreign Root", NOW)
    return Pki(
        root=root,
        intermediate=intermediate,
        foreign=foreign,
        signing=make_cert(root, signing_subject(MEMBER, "Gov"), NOW, kind="sign"),
        auth=make_cert(root, auth_subject(SERVER, "Gov"), NOW, kind="auth"),
        under_intermediate=make_cert(intermediate, signing_subject(MEMBER, "Gov"), NOW, kind="sign"),
        responder=make_cert(root, name("OCSP responder"), NOW, kind="ocsp"),
        foreign_responder=make_cert(foreign, name("OCSP responder"), NOW, kind="ocsp"),
        plain_responder=make_cert(root, name("Not a responder"), NOW, kind="sign"),
        foreign_leaf=make_cert(foreign, signing_subject(MEMBER, "Gov"), NOW, kind="sign"),
    )


# --- certificate paths ----------------------------------------------------------------------------------


def test_leaf_issued_by_approved_root_is_accepted(pki: Pki) -> None:
    """A certificate signed by an approved CA chains to it; the path is leaf then root."""
    path = verify_cert_path(pki.signing.cert, [], [pki.root.cert], NOW)
    assert path == (pki.signing.cert, pki.root.cert)


def test_path_through_intermediate_is_accepted(pki: Pki) -> None:
    """An intermediate given alongside the leaf completes the path."""
    path = verify_cert_path(pki.under_intermediate.cert, [pki.intermediate.cert], [pki.root.cert], NOW)
    assert path == (pki.under_intermediate.cert, pki.intermediate.cert, pki.root.cert)


def test_missing_intermediate_is_refused(pki: Pki) -> None:
    """Without its intermediate a leaf does not chain to the root."""
    with pytest.raises(InvalidCertPath):
        verify_cert_path(pki.under_intermediate.cert, [], [pki.root.cert], NOW)


def test_certificate_from_unapproved_ca_is_refused(pki: Pki) -> None:
    """A certificate from a CA that is not approved is refused even if its CA is offered as an intermediate."""
    with pytest.raises(InvalidCertPath):
        verify_cert_path(pki.foreign_leaf.cert, [pki.foreign.cert], [pki.root.cert], NOW)


def test_impostor_ca_with_the_same_name_is_refused(pki: Pki) -> None:
    """A leaf naming the approved root as issuer but signed by another key is refused."""
    impostor = make_ca("Approved Root", NOW)
    leaf = make_cert(impostor, signing_subject(MEMBER, "Gov"), NOW)
    with pytest.raises(InvalidCertPath):
        verify_cert_path(leaf.cert, [], [pki.root.cert], NOW)


def test_expired_certificate_is_refused(pki: Pki) -> None:
    """A certificate past notAfter is refused with cert_validation."""
    expired = make_cert(pki.root, signing_subject(MEMBER, "Gov"), NOW, not_after=NOW - timedelta(seconds=1))
    with pytest.raises(CertValidation) as info:
        verify_cert_path(expired.cert, [], [pki.root.cert], NOW)
    assert info.value.code == "cert_validation"
    assert "expired" in info.value.message


def test_not_yet_valid_certificate_is_refused(pki: Pki) -> None:
    """A certificate before notBefore is refused with cert_validation."""
    early = make_cert(pki.root, signing_subject(MEMBER, "Gov"), NOW, not_before=NOW + timedelta(minutes=1))
    with pytest.raises(CertValidation, match="not yet valid"):
        verify_cert_path(early.cert, [], [pki.root.cert], NOW)


def test_expired_intermediate_is_refused(pki: Pki) -> None:
    """Every link of the path must be valid at ``now``, not only the leaf."""
    old = make_ca("Old Intermediate", NOW, issuer=pki.root, not_after=NOW - timedelta(days=1), path_length=0)
    leaf = make_cert(old, signing_subject(MEMBER, "Gov"), NOW - timedelta(days=2), not_after=NOW + timedelta(days=1))
    with pytest.raises(CertValidation):
        verify_cert_path(leaf.cert, [old.cert], [pki.root.cert], NOW)


def test_leaf_issued_by_a_non_ca_is_refused(pki: Pki) -> None:
    """A certificate signed by an end-entity certificate does not chain (basicConstraints)."""
    leaf = make_cert(pki.signing, name("Sub-leaf"), NOW)
    with pytest.raises(InvalidCertPath, match="non-CA"):
        verify_cert_path(leaf.cert, [pki.signing.cert], [pki.root.cert], NOW)


def test_no_approved_cas_refuses_everything(pki: Pki) -> None:
    """With no approved CA configured nothing chains."""
    with pytest.raises(InvalidCertPath):
        verify_cert_path(pki.signing.cert, [], [], NOW)


def test_naive_now_is_a_programming_error(pki: Pki) -> None:
    """Time must be timezone-aware; a naive datetime is refused loudly."""
    with pytest.raises(ValueError):
        verify_cert_path(pki.signing.cert, [], [pki.root.cert], datetime(2026, 1, 1))


# --- roles ----------------------------------------------------------------------------------------------


def test_roles_are_told_apart(pki: Pki) -> None:
    """Auth, signing, TSA and CA certificates are each recognised only as what they are."""
    assert is_auth_cert(pki.auth.cert) and not is_signing_cert(pki.auth.cert)
    assert is_signing_cert(pki.signing.cert) and not is_auth_cert(pki.signing.cert)
    assert not is_auth_cert(pki.root.cert) and not is_signing_cert(pki.root.cert)
    assert is_tsa_cert(make_cert(pki.root, name("TSA"), NOW, kind="tsa").cert)
    assert not is_tsa_cert(make_cert(pki.root, name("TSA"), NOW, kind="tsa-noncritical").cert)
    assert not is_auth_cert(make_cert(pki.root, name("x"), NOW, kind="plain").cert)


# --- OCSP -----------------------------------------------------------------------------------------------


def test_good_response_signed_by_the_ca_is_accepted(pki: Pki) -> None:
    """A fresh good answer signed by the issuing CA itself is accepted."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW)
    status = check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)
    assert status.status is CertStatus.GOOD
    assert status.serial_number == pki.signing.cert.serial_number
    assert status.responder == pki.root.cert.subject.rfc4514_string()


def test_good_response_from_delegated_responder_is_accepted(pki: Pki) -> None:
    """A responder certificate issued by the CA with id-kp-OCSPSigning may answer for it (RFC 6960 §4.2.2.2)."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.responder, NOW)
    status = check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)
    assert status.responder == pki.responder.cert.subject.rfc4514_string()


def test_responder_named_by_name_is_found(pki: Pki) -> None:
    """A ResponderID byName identifies the responder as well as byKey does."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.responder, NOW, by_name=True)
    assert check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW).status is CertStatus.GOOD


def test_revoked_certificate_is_refused(pki: Pki) -> None:
    """A revoked answer is refused with cert_validation, and the reason names time and cause."""
    der = make_ocsp_response(
        pki.signing.cert, pki.root.cert, pki.root, NOW, status="revoked", reason=x509.ReasonFlags.key_compromise
    )
    with pytest.raises(CertValidation) as info:
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)
    assert "revoked" in info.value.message
    assert "keyCompromise" in info.value.reason
    status = read_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)
    assert status.status is CertStatus.REVOKED and status.revocation_reason == "keyCompromise"


def test_unknown_certificate_is_refused(pki: Pki) -> None:
    """An "unknown" answer is refused with cert_validation."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW, status="unknown")
    with pytest.raises(CertValidation, match="unknown"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_response_for_another_certificate_is_refused(pki: Pki) -> None:
    """A good answer about another certificate of the same CA is not evidence for this one."""
    der = make_ocsp_response(pki.auth.cert, pki.root.cert, pki.root, NOW)
    with pytest.raises(IncorrectValidationInfo, match="not for this certificate"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_response_signed_by_responder_of_another_ca_is_refused(pki: Pki) -> None:
    """An OCSP-signing certificate from another CA is not authorised to speak for this one."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.foreign_responder, NOW)
    with pytest.raises(IncorrectValidationInfo, match="authorised"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_response_signed_by_certificate_without_ocsp_signing_is_refused(pki: Pki) -> None:
    """A certificate of the right CA but without id-kp-OCSPSigning is not a responder."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.plain_responder, NOW)
    with pytest.raises(IncorrectValidationInfo, match="authorised"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_response_from_responder_not_included_is_refused(pki: Pki) -> None:
    """A responder whose certificate is neither the CA nor in the response cannot be checked, so it is refused."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.responder, NOW, embed_signer=False)
    with pytest.raises(IncorrectValidationInfo, match="unknown responder"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_configured_trusted_responder_is_accepted_without_embedding(pki: Pki) -> None:
    """A responder certificate listed in the global configuration need not travel in the response."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.responder, NOW, embed_signer=False)
    status = check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW, trusted_responders=[pki.responder.cert])
    assert status.status is CertStatus.GOOD


def test_response_with_broken_signature_is_refused(pki: Pki) -> None:
    """A response whose signature bytes were changed is refused."""
    der = bytearray(make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW))
    der[-3] ^= 0x01
    with pytest.raises(IncorrectValidationInfo):
        check_ocsp_response(bytes(der), pki.signing.cert, pki.root.cert, NOW)


def test_response_signed_by_an_impostor_key_is_refused(pki: Pki) -> None:
    """A key pretending to be the CA (same name, byName responder id) cannot sign a good answer."""
    impostor = make_ca("Approved Root", NOW)
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, impostor, NOW, by_name=True)
    with pytest.raises(IncorrectValidationInfo):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_stale_response_is_refused(pki: Pki) -> None:
    """A response whose thisUpdate is older than the freshness limit is stale (X-Road judges thisUpdate, §4.4)."""
    der = make_ocsp_response(
        pki.signing.cert,
        pki.root.cert,
        pki.root,
        NOW,
        this_update=NOW - timedelta(seconds=3601),
        next_update=NOW + timedelta(hours=5),
    )
    with pytest.raises(IncorrectValidationInfo, match="stale"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_response_at_the_freshness_limit_is_still_fresh(pki: Pki) -> None:
    """thisUpdate exactly freshness seconds ago is still accepted; the limit is configurable."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW, this_update=NOW - timedelta(seconds=3600))
    check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)
    with pytest.raises(IncorrectValidationInfo, match="stale"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW, freshness_seconds=1200)


def test_response_past_next_update_is_refused(pki: Pki) -> None:
    """A response whose nextUpdate has passed is refused, unless the configuration turns the check off."""
    der = make_ocsp_response(
        pki.signing.cert,
        pki.root.cert,
        pki.root,
        NOW,
        this_update=NOW - timedelta(minutes=30),
        next_update=NOW - timedelta(minutes=10),
    )
    with pytest.raises(IncorrectValidationInfo, match="nextUpdate"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)
    check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW, check_next_update=False)


def test_response_without_next_update_is_judged_on_this_update(pki: Pki) -> None:
    """nextUpdate is optional (RFC 6960 §2.4); freshness still comes from thisUpdate."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW, no_next_update=True)
    assert check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW).next_update is None


def test_clock_skew_our_clock_behind_the_responder(pki: Pki) -> None:
    """thisUpdate in our future is tolerated within the skew allowance and refused beyond it."""
    near = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW, this_update=NOW + timedelta(seconds=120))
    check_ocsp_response(near, pki.signing.cert, pki.root.cert, NOW)
    far = make_ocsp_response(
        pki.signing.cert, pki.root.cert, pki.root, NOW, this_update=NOW + timedelta(seconds=DEFAULT_CLOCK_SKEW_SECONDS + 1)
    )
    with pytest.raises(IncorrectValidationInfo, match="future"):
        check_ocsp_response(far, pki.signing.cert, pki.root.cert, NOW)


def test_clock_skew_our_clock_ahead_of_the_responder(pki: Pki) -> None:
    """A nextUpdate just behind our clock is tolerated within the skew; a response from an hour-behind clock is stale."""
    just_passed = make_ocsp_response(
        pki.signing.cert,
        pki.root.cert,
        pki.root,
        NOW,
        this_update=NOW - timedelta(minutes=20),
        next_update=NOW - timedelta(seconds=60),
    )
    check_ocsp_response(just_passed, pki.signing.cert, pki.root.cert, NOW)
    behind = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW - timedelta(hours=1, seconds=5))
    with pytest.raises(IncorrectValidationInfo):
        check_ocsp_response(behind, pki.signing.cert, pki.root.cert, NOW)


def test_undecodable_response_is_refused(pki: Pki) -> None:
    """Bytes that are not an OCSP response are refused with incorrect_validation_info, never a bare exception."""
    with pytest.raises(IncorrectValidationInfo):
        check_ocsp_response(b"\x30\x03\x02\x01", pki.signing.cert, pki.root.cert, NOW)


def test_unsuccessful_response_status_is_refused(pki: Pki) -> None:
    """A responder's error status (e.g. malformedRequest) is not evidence."""
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(Encoding.DER)
    with pytest.raises(IncorrectValidationInfo, match="did not answer"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_wrong_issuer_argument_is_refused(pki: Pki) -> None:
    """Checking a certificate against a CA that did not issue it fails before the response is read."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW)
    with pytest.raises(InvalidCertPath):
        check_ocsp_response(der, pki.signing.cert, pki.foreign.cert, NOW)


@pytest.fixture(scope="module")
def good_responses(pki: Pki) -> tuple[bytes, bytes]:
    """Two good responses, made once: one signed by the CA, one by its delegated responder."""
    return (
        make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW),
        make_ocsp_response(pki.signing.cert, pki.root.cert, pki.responder, NOW),
    )


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_of_a_response_is_refused(
    pki: Pki, good_responses: tuple[bytes, bytes], data: st.DataObject
) -> None:
    """Flipping any one byte of a good response (CA-signed or delegated) makes it refused, never accepted."""
    der = bytearray(data.draw(st.sampled_from(good_responses)))
    position = data.draw(st.integers(0, len(der) - 1))
    der[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(BusError):
        check_ocsp_response(bytes(der), pki.signing.cert, pki.root.cert, NOW)


# --- what the checks remember between calls ---------------------------------------------------------------


def test_delegated_responder_validity_is_judged_at_every_check(pki: Pki) -> None:
    """A response's decoding and signature are remembered, but whether its delegated responder may speak is
    decided at each check's ``now``: inside the responder's validity, then after it, then inside again."""
    short_lived = make_cert(
        pki.root, name("Short-lived responder"), NOW, kind="ocsp",
        not_before=NOW - timedelta(hours=1), not_after=NOW + timedelta(minutes=10),
    )
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, short_lived, NOW)
    assert check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW).status is CertStatus.GOOD
    later = NOW + timedelta(minutes=20)
    with pytest.raises(IncorrectValidationInfo, match="authorised") as info:
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, later)
    assert "outside its validity" in info.value.reason
    assert check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW).status is CertStatus.GOOD


def test_freshness_is_judged_at_every_check(pki: Pki) -> None:
    """A response accepted once is refused as stale later, and the time checks use each call's own settings."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW)
    assert check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW).status is CertStatus.GOOD
    with pytest.raises(IncorrectValidationInfo, match="stale"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW + timedelta(seconds=61), freshness_seconds=60)
    assert check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW + timedelta(seconds=59), freshness_seconds=60)


def test_a_remembered_response_is_not_evidence_for_another_certificate(pki: Pki) -> None:
    """What is remembered is keyed by the response and both certificates: after a good check for one
    certificate, the same bytes are still refused for another, and with another CA."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW)
    assert check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW).status is CertStatus.GOOD
    with pytest.raises(IncorrectValidationInfo, match="not for this certificate"):
        check_ocsp_response(der, pki.auth.cert, pki.root.cert, NOW)
    with pytest.raises(InvalidCertPath):
        check_ocsp_response(der, pki.signing.cert, pki.foreign.cert, NOW)


def test_a_trusted_responder_is_not_remembered_for_calls_without_it(pki: Pki) -> None:
    """A response signed by a responder only the configuration vouches for is accepted with that responder in
    the call and refused in a later call that does not list it."""
    der = make_ocsp_response(pki.signing.cert, pki.root.cert, pki.responder, NOW, embed_signer=False)
    assert check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW, trusted_responders=[pki.responder.cert])
    with pytest.raises(IncorrectValidationInfo, match="unknown responder"):
        check_ocsp_response(der, pki.signing.cert, pki.root.cert, NOW)


def test_a_refused_response_is_refused_again(pki: Pki) -> None:
    """A refusal is not remembered as anything else: the same bad bytes are refused on every call."""
    der = bytearray(make_ocsp_response(pki.signing.cert, pki.root.cert, pki.root, NOW))
    der[-5] ^= 0xFF  # inside the signature
    for _ in range(3):
        with pytest.raises(IncorrectValidationInfo):
            check_ocsp_response(bytes(der), pki.signing.cert, pki.root.cert, NOW)
