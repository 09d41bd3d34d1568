"""The development CA per certificate profile: made with a profile (library and ``fedbus registry ca init
--profile``), it issues requests of that profile's shape as they are and refuses others; ``ca add --profile``
approves an outside CA with its profile."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from central_registry.cli import registry
from central_registry.store import ApprovedCa, RegistryStore
from central_registry.trust.ca import INDEX, CertKind, DevelopmentCA
from security_server.core.certprofile import (
    auth_names_of_cert,
    member_from_signing_cert_as,
    signing_subject,
)
from security_server.core.errors import BadRequest, CertValidation
from security_server.core.identifiers import ClientId, SecurityServerId
from tests.federation.pki import make_csr
from tests.federation.profile_certs import EE, FI, UNKNOWN, profile_subjects

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MEMBER = ClientId("EE", "GOV", "70000310")
SERVER = SecurityServerId(MEMBER, "ss1")


def _ca(directory: Path, profile: str) -> DevelopmentCA:
    return DevelopmentCA.init(directory, f"{profile[-20:]} CA", NOW, key_size=2048, profile=profile)


@pytest.mark.parametrize("profile", [EE, FI, "ee", "fi"])
def test_a_ca_of_an_xroad_profile_issues_that_profiles_subjects_unchanged(tmp_path: Path, profile: str) -> None:
    """A CA made with X-Road's profile (class or short name) records its class and issues the profile's request
    subject as it is; the certificates read back under that profile."""
    ca = _ca(tmp_path / "ca", profile)
    assert ca.profile in (EE, FI)
    sign_subject = profile_subjects(ca.profile, MEMBER, "Member")
    sign = ca.issue(make_csr(sign_subject), CertKind.SIGN, NOW)
    auth = ca.issue(make_csr(profile_subjects(ca.profile, SERVER, "Member")), CertKind.AUTH, NOW)
    assert sign.subject == sign_subject
    assert member_from_signing_cert_as(sign, ca.profile, "EE") == MEMBER
    assert auth_names_of_cert(auth, ca.profile).matches(SERVER)


def test_a_ca_of_an_xroad_profile_refuses_a_fedbus_request(tmp_path: Path) -> None:
    """A fedbus-profile request does not fit the FI profile: nothing is issued."""
    ca = _ca(tmp_path / "ca", FI)
    with pytest.raises(CertValidation, match="fi profile"):
        ca.issue(make_csr(signing_subject(MEMBER, "Member")), CertKind.SIGN, NOW)
    assert ca.issued() == [c for c in ca.issued() if c.kind is not CertKind.SIGN]


def test_a_ca_without_a_recorded_profile_is_fedbus(tmp_path: Path) -> None:
    """An index written before profiles existed (no ``profile`` key) is fedbus's profile."""
    ca = DevelopmentCA.init(tmp_path / "ca", "Old CA", NOW, key_size=2048)
    index = json.loads((tmp_path / "ca" / INDEX).read_text())
    assert index["profile"] == "fedbus"
    del index["profile"]
    (tmp_path / "ca" / INDEX).write_text(json.dumps(index))
    assert DevelopmentCA.open(tmp_path / "ca").profile == ca.profile == "fedbus"


def test_an_unknown_profile_is_refused_when_the_ca_is_made(tmp_path: Path) -> None:
    """A CA cannot be made for a profile fedbus does not read."""
    with pytest.raises(BadRequest, match="unknown certificate profile"):
        _ca(tmp_path / "ca", UNKNOWN)
    assert not (tmp_path / "ca" / INDEX).exists()


def test_cli_ca_init_and_add_take_a_profile(tmp_path: Path) -> None:
    """``ca init --profile fi`` makes an FI CA; ``ca add --profile`` approves a CA with X-Road's class name; an
    unknown profile is a usage error."""
    runner = CliRunner()
    made = runner.invoke(registry, ["ca", "init", "--dir", str(tmp_path / "ca"), "--key-size", "2048",
                                    "--profile", "fi"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    assert FI in made.output and DevelopmentCA.open(tmp_path / "ca").profile == FI
    bad = runner.invoke(registry, ["ca", "init", "--dir", str(tmp_path / "other"), "--profile", UNKNOWN])
    assert bad.exit_code == 2 and "unknown certificate profile" in bad.output
    root = tmp_path / "registry"
    assert runner.invoke(registry, ["init", "--registry-dir", str(root), "--instance", "EE", "--no-dev-ca"],
                         catch_exceptions=False).exit_code == 0
    added = runner.invoke(registry, ["ca", "add", "--registry-dir", str(root), "--name", "FI CA", "--cert",
                                     str(tmp_path / "ca" / "ca-cert.pem"), "--profile", "fi"], catch_exceptions=False)
    assert added.exit_code == 0, added.output
    store = RegistryStore(root / "registry.db")
    try:
        found: list[ApprovedCa] = [ca for ca in store.cas() if ca.name == "FI CA"]
    finally:
        store.close()
    assert [ca.profile for ca in found] == [FI]
    listed = json.loads(runner.invoke(registry, ["ca", "approved", "--registry-dir", str(root), "--json"]).output)
    assert [ca["certificate_profile"] for ca in listed] == [FI]
    assert x509.load_der_x509_certificate(found[0].cert_der).subject == DevelopmentCA.open(tmp_path / "ca").certificate.subject
