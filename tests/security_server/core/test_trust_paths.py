"""Certificate path building, judged against two independent builders: cryptography's ``x509.verification`` and
``openssl verify``, on chains generated at run time with cross-certificates, several candidate issuers of the
same name, loops and intermediate chains of one to four CAs.

cryptography's builder backtracks over every candidate issuer, so it is held to the same verdict as ours (given a
CA policy that also asks for keyCertSign, which ours and OpenSSL require). OpenSSL's builder does not backtrack
past a candidate of the right name that then fails (another key, not a CA, no keyCertSign, a path length
exceeded, a dead end), so it is held to one direction only: whatever OpenSSL accepts, we accept.
"""

from __future__ import annotations

import functools
import random
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import BusError, CertValidation, InvalidCertPath
from security_server.core.trust import MAX_PATH_LENGTH, check_validity, is_issued_by, verify_cert_path

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

# --- generated PKI ----------------------------------------------------------------------------------------


@functools.cache
def key(label: str) -> ec.EllipticCurvePrivateKey:
    """The EC P-256 key called ``label``, made once per run and reused by every example (never committed)."""
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def cert(
    subject: str,
    issuer: str,
    *,
    subject_key: str | None = None,
    issuer_key: str | None = None,
    ca: bool = True,
    path_length: int | None = None,
    key_cert_sign: bool = True,
    expired: bool = False,
    valid_days: int = 30,
) -> x509.Certificate:
    """A certificate for ``subject`` issued by ``issuer``; each name's key is the key of that label unless told.

    Valid from a day before NOW for ``valid_days`` after it, or, when ``expired``, for ten days up to a day before.
    """
    public_key = key(subject_key or subject).public_key()
    not_before, not_after = (NOW - timedelta(days=10), NOW - timedelta(days=1)) if expired else (
        NOW - timedelta(days=1),
        NOW + timedelta(days=valid_days),
    )
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca and key_cert_sign,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key(issuer_key or issuer), hashes.SHA256())
    )


def leaf(issuer: str) -> x509.Certificate:
    """An end-entity certificate issued by ``issuer``."""
    return cert("Leaf", issuer, ca=False)


@functools.cache
def root(common_name: str = "Root", *, expired: bool = False) -> x509.Certificate:
    """A self-signed CA certificate."""
    return cert(common_name, common_name, expired=expired)


# --- the three builders -----------------------------------------------------------------------------------


def ours(
    end: x509.Certificate, intermediates: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...] | BusError:
    """Our path, or the error refusing one."""
    try:
        return verify_cert_path(end, intermediates, roots, NOW)
    except (InvalidCertPath, CertValidation) as err:
        return err


def _require_key_cert_sign(_policy: verification.Policy, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("a CA's keyUsage lacks keyCertSign")


def cryptography_accepts(
    end: x509.Certificate, intermediates: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
) -> bool:
    """Whether cryptography's builder finds a path (RFC 5280 profile: no SAN, AKI or EKU demanded)."""
    ca_policy = (
        verification.ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _require_key_cert_sign)
    )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(list(roots)))
        .time(NOW)
        .max_chain_depth(MAX_PATH_LENGTH)
        .extension_policies(ca_policy=ca_policy, ee_policy=verification.ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    try:
        verifier.verify(end, list(intermediates))
    except verification.VerificationError:
        return False
    return True


def openssl_accepts(
    end: x509.Certificate, intermediates: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
) -> bool:
    """Whether ``openssl verify`` finds a path, with only ``roots`` trusted and checked at ``NOW``."""
    with tempfile.TemporaryDirectory() as folder:

        def pem_file(file_name: str, certs: Sequence[x509.Certificate]) -> str:
            path = Path(folder) / file_name
            path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs))
            return str(path)

        command = ["openssl", "verify", "-no-CApath", "-no-CAstore", "-CAfile", pem_file("roots.pem", roots)]
        command += ["-attime", str(int(NOW.timestamp()))]
        if intermediates:
            command += ["-untrusted", pem_file("untrusted.pem", intermediates)]
        command.append(pem_file("leaf.pem", [end]))
        return subprocess.run(command, capture_output=True, check=False).returncode == 0


def assert_sound(path: tuple[x509.Certificate, ...], roots: Sequence[x509.Certificate]) -> None:
    """Each link of ``path`` is issued by the next, none repeats, all are valid at NOW and the last is approved."""
    assert path[-1] in roots
    assert len(set(path)) == len(path)
    for child, parent in zip(path, path[1:]):
        assert is_issued_by(child, parent)
    for link in path:
        check_validity(link, NOW)


def judge(
    end: x509.Certificate, intermediates: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...] | BusError:
    """Our verdict, after checking it against cryptography's (equal) and OpenSSL's (no path OpenSSL found missed)."""
    verdict = ours(end, intermediates, roots)
    accepted = not isinstance(verdict, BusError)
    assert accepted == cryptography_accepts(end, intermediates, roots), verdict
    if openssl_accepts(end, intermediates, roots):
        assert accepted, verdict
    if not isinstance(verdict, BusError):
        assert_sound(verdict, roots)
    return verdict


# --- named shapes -----------------------------------------------------------------------------------------

DECOYS = {
    "wrong key": lambda subject, issuer: cert(subject, issuer, subject_key=f"{subject} impostor"),
    "expired": lambda subject, issuer: cert(subject, issuer, expired=True),
    "not a CA": lambda subject, issuer: cert(subject, issuer, ca=False),
    "no keyCertSign": lambda subject, issuer: cert(subject, issuer, key_cert_sign=False),
    "pathLen 0 exceeded": lambda subject, issuer: cert(subject, issuer, path_length=0),
}
"""Candidate issuers that carry the right name but cannot issue (here) the certificate below them."""

REFUSAL_OF_DECOY: dict[str, type[BusError]] = {
    "wrong key": InvalidCertPath,
    "expired": CertValidation,
    "not a CA": InvalidCertPath,
    "no keyCertSign": InvalidCertPath,
    "pathLen 0 exceeded": InvalidCertPath,
}
"""What the path is refused with when the decoy is the only candidate (the verdict the greedy builder gave)."""


def chain(length: int) -> list[x509.Certificate]:
    """Intermediates CA1 (issued by Root) .. CA<length>, leaf-side last."""
    return [cert(f"CA{i}", "Root" if i == 1 else f"CA{i - 1}") for i in range(1, length + 1)]


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_a_chain_of_intermediates_is_followed_in_any_order(length: int) -> None:
    """One to four intermediates, given leaf-side first or root-side first, make the same path."""
    intermediates = chain(length)
    end = leaf(f"CA{length}")
    expected = (end, *reversed(intermediates), root())
    assert judge(end, intermediates, [root()]) == expected
    assert judge(end, list(reversed(intermediates)), [root()]) == expected


@pytest.mark.parametrize("decoy", sorted(DECOYS))
@pytest.mark.parametrize("length", [2, 4])
def test_a_decoy_issuer_listed_first_is_passed_over(decoy: str, length: int) -> None:
    """A same-name candidate that cannot issue, offered before the real top CA (CA1), does not hide the path."""
    # CA1 has CAs below it, so a pathLen 0 copy of it is exceeded there.
    intermediates = chain(length)
    end = leaf(f"CA{length}")
    offered = [DECOYS[decoy]("CA1", "Root"), *intermediates]
    assert judge(end, offered, [root()]) == (end, *reversed(intermediates), root())


@pytest.mark.parametrize("decoy", sorted(DECOYS))
def test_a_decoy_issuer_alone_is_refused_as_before(decoy: str) -> None:
    """When the decoy is the only candidate there is no path, refused with the error the greedy builder gave."""
    offered = [DECOYS[decoy]("CA1", "Root"), *chain(2)[1:]]
    verdict = judge(leaf("CA2"), offered, [root()])
    assert type(verdict) is REFUSAL_OF_DECOY[decoy]


@pytest.mark.parametrize("decoy", sorted(DECOYS))
def test_decoys_at_every_level_are_passed_over(decoy: str) -> None:
    """Each of three intermediates has a decoy listed before it; the real path is still found."""
    intermediates = chain(3)
    offered = [DECOYS[decoy](f"CA{i}", "Root" if i == 1 else f"CA{i - 1}") for i in (1, 2, 3)]
    end = leaf("CA3")
    verdict = judge(end, [*offered, *intermediates], [root()])
    if decoy == "pathLen 0 exceeded":  # the pathLen 0 copy of CA3 has nothing below it: a real issuer too
        assert verdict == (end, offered[2], intermediates[1], intermediates[0], root())
    else:
        assert verdict == (end, *reversed(intermediates), root())


def test_a_cross_certificate_to_an_unapproved_root_is_passed_over() -> None:
    """CA1 cross-certified by a foreign root, listed first, is a dead end; CA1 under the approved root is taken."""
    cross = cert("CA1", "Foreign")
    approved = cert("CA1", "Root")
    end = leaf("CA1")
    assert judge(end, [cross, root("Foreign"), approved], [root()]) == (end, approved, root())


def test_a_cross_certificate_reaches_a_second_approved_root() -> None:
    """CA1 issued by an unapproved root and cross-certified by a second, approved, root chains to that root."""
    end = leaf("CA1")
    cross = cert("CA1", "Other Root")
    offered = [cert("CA1", "Foreign"), root("Foreign"), cross]
    assert judge(end, offered, [root(), root("Other Root")]) == (end, cross, root("Other Root"))


def test_only_the_unapproved_root_is_refused() -> None:
    """A leaf under a foreign root, offered with that root, does not chain (the foreign root is a dead end)."""
    verdict = judge(leaf("CA1"), [cert("CA1", "Foreign"), root("Foreign")], [root()])
    assert isinstance(verdict, InvalidCertPath)
    assert "does not chain" in verdict.message


def test_an_expired_copy_of_the_approved_root_is_passed_over() -> None:
    """An approved root listed twice, the first copy expired, still anchors the path through the valid copy."""
    end = leaf("Root")
    assert judge(end, [], [root(expired=True), root()]) == (end, root())


def test_a_loop_without_an_exit_is_refused() -> None:
    """A signs B and B signs A: no path to the root, refused without walking round forever."""
    verdict = judge(leaf("A"), [cert("A", "B"), cert("B", "A")], [root()])
    assert isinstance(verdict, InvalidCertPath)


def test_a_loop_with_an_exit_is_left_by_the_exit() -> None:
    """A signs B, B signs A, and A is also certified by the root: the path leaves the loop, repeating nothing."""
    end = leaf("A")
    exit_cert = cert("A", "Root")
    assert judge(end, [cert("A", "B"), cert("B", "A"), exit_cert], [root()]) == (end, exit_cert, root())


def test_a_loop_entered_below_the_exit_is_left_by_the_exit() -> None:
    """The leaf's issuer B is in a loop with A, and A is certified by the root: leaf, B, A, root."""
    end = leaf("B")
    a_by_root = cert("A", "Root")
    b_by_a = cert("B", "A")
    assert judge(end, [cert("A", "B"), b_by_a, a_by_root], [root()]) == (end, b_by_a, a_by_root, root())


def test_a_root_path_length_limit_is_kept() -> None:
    """An approved root with pathLen 0 does not accept an intermediate below it."""
    limited = cert("Limited Root", "Limited Root", path_length=0)
    assert isinstance(judge(leaf("CA1"), [cert("CA1", "Limited Root")], [limited]), InvalidCertPath)


def test_at_most_max_path_length_intermediates_are_followed() -> None:
    """A path of MAX_PATH_LENGTH intermediates is accepted, one more is refused as too long, as the greedy walk did."""
    longest = chain(MAX_PATH_LENGTH)
    end = leaf(f"CA{MAX_PATH_LENGTH}")
    assert ours(end, longest, [root()]) == (end, *reversed(longest), root())
    too_long = chain(MAX_PATH_LENGTH + 1)
    verdict = ours(leaf(f"CA{MAX_PATH_LENGTH + 1}"), too_long, [root()])
    assert isinstance(verdict, InvalidCertPath)
    assert verdict.message == "certificate path is too long"


def test_a_dense_web_of_cross_certificates_is_searched_within_a_bound() -> None:
    """Ten CAs each certified by every other, none by the root: refused after a bounded search, not 9! paths."""
    names = [f"Web{i}" for i in range(10)]
    web = [cert(subject, issuer) for subject in names for issuer in names if subject != issuer]
    verdict = ours(leaf("Web0"), web, [root()])
    assert isinstance(verdict, InvalidCertPath)
    assert "gave up" in verdict.message


def test_a_path_out_of_its_time_is_refused_for_the_link_nearest_the_leaf() -> None:
    """A path that exists but for two expired intermediates is refused with cert_validation for the lower one."""
    upper = cert("CA1", "Root", expired=True)
    lower = cert("CA2", "CA1", expired=True)
    verdict = judge(leaf("CA2"), [upper, lower], [root()])
    assert isinstance(verdict, CertValidation)
    assert "CN=CA2" in verdict.reason


def test_an_expired_intermediate_without_a_path_above_is_refused_as_no_path() -> None:
    """An expired intermediate whose issuer is not offered leaves no path at all: invalid_cert_path."""
    verdict = judge(leaf("CA2"), [cert("CA2", "CA1", expired=True)], [root()])
    assert isinstance(verdict, InvalidCertPath)


def test_a_verdict_is_judged_again_at_every_time() -> None:
    """Accepted, refused once an intermediate has expired, accepted again: no verdict on time is remembered."""
    intermediate = cert("CA1", "Root", valid_days=2)
    end = leaf("CA1")
    later = intermediate.not_valid_after_utc + timedelta(seconds=1)
    assert verify_cert_path(end, [intermediate], [root()], NOW) == (end, intermediate, root())
    with pytest.raises(CertValidation, match="intermediate CA certificate has expired"):
        verify_cert_path(end, [intermediate], [root()], later)
    assert verify_cert_path(end, [intermediate], [root()], NOW) == (end, intermediate, root())


# --- generated shapes -------------------------------------------------------------------------------------

CA_NAMES = ("CA0", "CA1", "CA2", "CA3")
FLAVOURS = ("good", "good", "good", *sorted(DECOYS))


@dataclass(frozen=True)
class Shape:
    """A generated set of certificates: edges between CA names (and the roots), the leaf's issuer, the roots."""

    edges: tuple[tuple[str, str, str], ...]
    leaf_issuer: str
    expired_root_first: bool
    foreign_root_offered: bool

    def build(self) -> tuple[x509.Certificate, list[x509.Certificate], list[x509.Certificate]]:
        """The leaf, the intermediates in the drawn order, and the approved roots."""
        intermediates = [
            cert(subject, issuer) if flavour == "good" else DECOYS[flavour](subject, issuer)
            for subject, issuer, flavour in self.edges
        ]
        if self.foreign_root_offered:
            intermediates.append(root("Foreign"))
        roots = [root(expired=True), root()] if self.expired_root_first else [root()]
        return leaf(self.leaf_issuer), intermediates, roots


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    """Shapes of up to seven certificates among four CA names, the approved root and a foreign root."""
    names = CA_NAMES[: draw(st.integers(1, len(CA_NAMES)))]
    issuers = (*names, "Root", "Foreign")
    edge = st.tuples(st.sampled_from(names), st.sampled_from(issuers), st.sampled_from(FLAVOURS)).filter(
        lambda e: e[0] != e[1]  # no self-issued intermediates: the two oracles count them differently
    )
    return Shape(
        edges=tuple(draw(st.lists(edge, max_size=7))),
        leaf_issuer=draw(st.sampled_from((*names, "Root"))),
        expired_root_first=draw(st.booleans()),
        foreign_root_offered=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None)
@given(shapes())
def test_generated_shapes_get_the_independent_builders_verdict(shape: Shape) -> None:
    """On generated shapes, a path is found exactly when cryptography finds one, and whenever OpenSSL finds one."""
    judge(*shape.build())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.lists(st.sampled_from(sorted(DECOYS)), min_size=1, max_size=4), st.randoms())
def test_a_chain_with_shuffled_decoys_is_found(length: int, decoys: list[str], shuffler: random.Random) -> None:
    """A one-to-four CA chain with decoys of its CAs' names, all shuffled, always chains (judge checks the links)."""
    offered = chain(length)
    for i, decoy in enumerate(decoys):
        level = i % length + 1
        offered.append(DECOYS[decoy](f"CA{level}", "Root" if level == 1 else f"CA{level - 1}"))
    shuffler.shuffle(offered)
    verdict = judge(leaf(f"CA{length}"), offered, [root()])
    # a pathLen 0 copy of the CA just above the leaf may issue it instead of the real one: same length either way
    assert not isinstance(verdict, BusError) and len(verdict) == length + 2
