"""The registry API's trust-service changes: a CA's settings and certificate, OCSP responders and TSAs shown,
changed and deleted in X-Road's shapes, each change reaching the next generated shared parameters."""

from __future__ import annotations

from typing import Iterator

import pytest

from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.store import RegistryStore
from tests.central_registry.management.harness import START, RegistryApi, certificate_pem, multipart_form

EE_PROFILE = "ee.ria.xroad.common.certificateprofile.impl.SkKlass3CertificateProfileInfoProvider"


@pytest.fixture
def trusted(registry: RegistryApi) -> Iterator[RegistryApi]:
    """An initialised registry with CA 1 (``Test CA``, OCSP responder with its own certificate) and TSA 1, and a
    publisher to generate its configuration."""
    key = registry.api_key(Role.SECURITY_OFFICER)
    for path, fields, name in (
        ("/api/v1/certification-services", {"certificate_profile_info": "fedbus"}, "Test CA"),
        ("/api/v1/certification-services/1/ocsp-responders", {"url": "http://ocsp.example.org", "cost_type": "FREE"},
         "Test OCSP"),
        ("/api/v1/timestamping-services", {"url": "http://tsa.example.org", "cost_type": "FREE"}, "Test TSA"),
    ):
        body, kind = multipart_form(fields, {"certificate": certificate_pem(registry, name)})
        assert registry.request("POST", path, body=body, content_type=kind, key=key).status == 201
    store = RegistryStore(registry.paths.database)
    registry.publisher = Publisher(store, registry.paths.published, SelfSignedKey.load(registry.paths.conf_signing),
                                   public_url="http://127.0.0.1:8090", management_url="https://127.0.0.1:8443/m",
                                   management_cert_der=SelfSignedKey.load(registry.paths.tls).cert_der)
    yield registry
    store.close()


def _shared(api: RegistryApi) -> bytes:
    assert api.publisher is not None
    files = api.publisher.build(START).files
    return next(v for k, v in files.items() if k.endswith("shared-params.xml"))


def test_a_cas_settings_change_and_reach_the_shared_parameters(trusted: RegistryApi) -> None:
    """PATCH changes the profile (X-Road's class name) and ``tls_auth``; the next configuration names the CA's
    profile and the CA authentication-only."""
    key = trusted.api_key(Role.SECURITY_OFFICER)
    answer = trusted.request("PATCH", "/api/v1/certification-services/1", key=key,
                             json_body={"certificate_profile_info": EE_PROFILE, "tls_auth": "false"})
    assert answer.status == 200, answer.body
    assert (answer.json()["certificate_profile_info"], answer.json()["tls_auth"]) == (EE_PROFILE, False)
    shared = _shared(trusted)
    assert EE_PROFILE.encode() in shared and b"<authenticationOnly>true</authenticationOnly>" in shared


@pytest.mark.parametrize("profile", ["fedbus-ee", "ee.ria.xroad.common.certificateprofile.impl.IsCertificateProfileInfoProvider"])
def test_an_unknown_certificate_profile_is_refused(trusted: RegistryApi, profile: str) -> None:
    """A profile fedbus does not read is refused where it is entered, as X-Road's central server does (400
    ``certificate_profile_info_class_not_found``), and the CA keeps its profile."""
    key = trusted.api_key(Role.SECURITY_OFFICER)
    answer = trusted.request("PATCH", "/api/v1/certification-services/1", key=key,
                             json_body={"certificate_profile_info": profile})
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "certificate_profile_info_class_not_found"
    shown = trusted.request("GET", "/api/v1/certification-services/1", key=key)
    assert shown.json()["certificate_profile_info"] == "fedbus"


def test_a_cas_certificate_is_shown(trusted: RegistryApi) -> None:
    """GET .../certificate answers X-Road's CertificateDetails of the CA's certificate."""
    answer = trusted.request("GET", "/api/v1/certification-services/1/certificate",
                             key=trusted.api_key(Role.OBSERVER))
    assert answer.status == 200 and answer.json()["subject_common_name"] == "Test CA"


def test_a_deleted_ca_leaves_the_configuration(trusted: RegistryApi) -> None:
    """DELETE answers 204; the CA is gone from the API and from the next shared parameters; again is 404."""
    key = trusted.api_key(Role.SECURITY_OFFICER)
    assert b"Test CA" in _shared(trusted)
    assert trusted.request("DELETE", "/api/v1/certification-services/1", key=key).status == 204
    assert trusted.request("GET", "/api/v1/certification-services", key=key).json() == []
    assert b"Test CA" not in _shared(trusted)
    again = trusted.request("DELETE", "/api/v1/certification-services/1", key=key, check=False)
    assert again.status == 404 and again.json()["error"]["code"] == "certification_service_not_found"


def test_an_ocsp_responder_is_shown_changed_and_deleted(trusted: RegistryApi) -> None:
    """Responder 1 (CA 1's) is shown with its certificate; a new URL reaches the shared parameters; once
    deleted it is 404 ``ocsp_responder_not_found`` and gone from the configuration."""
    key = trusted.api_key(Role.SECURITY_OFFICER)
    shown = trusted.request("GET", "/api/v1/ocsp-responders/1", key=key).json()
    assert (shown["url"], shown["has_certificate"]) == ("http://ocsp.example.org", True)
    cert = trusted.request("GET", "/api/v1/ocsp-responders/1/certificate", key=key).json()
    assert cert["subject_common_name"] == "Test OCSP"
    body, kind = multipart_form({"url": "http://ocsp2.example.org"}, {})
    changed = trusted.request("PATCH", "/api/v1/ocsp-responders/1", body=body, content_type=kind, key=key)
    assert changed.status == 200 and changed.json()["url"] == "http://ocsp2.example.org"
    assert b"http://ocsp2.example.org" in _shared(trusted)
    assert trusted.request("DELETE", "/api/v1/ocsp-responders/1", key=key).status == 204
    assert b"ocsp2.example.org" not in _shared(trusted)
    gone = trusted.request("GET", "/api/v1/ocsp-responders/1", key=key, check=False)
    assert gone.status == 404 and gone.json()["error"]["code"] == "ocsp_responder_not_found"
    assert trusted.request("GET", "/api/v1/certification-services/1/ocsp-responders", key=key).json() == []


def test_a_tsa_is_shown_changed_and_deleted(trusted: RegistryApi) -> None:
    """TSA 1 is shown; a new URL and certificate rename it and reach the shared parameters; deleting it removes
    it, and a missing TSA is X-Road's 404 ``timestamping_authority_not_found``."""
    key = trusted.api_key(Role.SECURITY_OFFICER)
    assert trusted.request("GET", "/api/v1/timestamping-services/1", key=key).json()["url"] == "http://tsa.example.org"
    body, kind = multipart_form({"url": "http://tsa2.example.org", "cost_type": "FREE"},
                                {"certificate": certificate_pem(trusted, "Other TSA")})
    changed = trusted.request("PATCH", "/api/v1/timestamping-services/1", body=body, content_type=kind, key=key)
    assert changed.status == 200, changed.body
    assert changed.json()["certificate"]["subject_common_name"] == "Other TSA"
    shared = _shared(trusted)
    assert b"http://tsa2.example.org" in shared and b"http://tsa.example.org" not in shared
    assert trusted.request("DELETE", "/api/v1/timestamping-services/1", key=key).status == 204
    assert b"tsa2.example.org" not in _shared(trusted)
    gone = trusted.request("GET", "/api/v1/timestamping-services/1", key=key, check=False)
    assert gone.status == 404 and gone.json()["error"]["code"] == "timestamping_authority_not_found"


def test_an_observer_changes_no_trust_service(trusted: RegistryApi) -> None:
    """Changing or deleting a trust service is the security officer's or system administrator's: 403."""
    key = trusted.api_key(Role.OBSERVER)
    assert trusted.request("DELETE", "/api/v1/timestamping-services/1", key=key).status == 403
    assert trusted.request("DELETE", "/api/v1/ocsp-responders/1", key=key).status == 403
    assert trusted.request("PATCH", "/api/v1/certification-services/1", key=key, json_body={"tls_auth": "true"}).status == 403


def test_an_intermediate_ca_with_its_ocsp_responder_reaches_the_shared_parameters(trusted: RegistryApi) -> None:
    """An intermediate CA added under CA 1 is listed and shown (X-Road's CertificateAuthority), gets an OCSP
    responder, both are in the next shared parameters; deleted, they leave it, and it is then 404."""
    key = trusted.api_key(Role.SECURITY_OFFICER)
    body, kind = multipart_form({}, {"certificate": certificate_pem(trusted, "Test Intermediate")})
    added = trusted.request("POST", "/api/v1/certification-services/1/intermediate-cas", body=body,
                            content_type=kind, key=key)
    assert added.status == 201, added.body
    number = added.json()["id"]
    assert added.json()["ca_certificate"]["subject_common_name"] == "Test Intermediate"
    listed = trusted.request("GET", "/api/v1/certification-services/1/intermediate-cas", key=key).json()
    assert [i["id"] for i in listed] == [number]
    assert trusted.request("GET", f"/api/v1/intermediate-cas/{number}", key=key).json() == added.json()
    body, kind = multipart_form({"url": "http://ocsp-i.example.org", "cost_type": "FREE"}, {})
    responder = trusted.request("POST", f"/api/v1/intermediate-cas/{number}/ocsp-responders", body=body,
                                content_type=kind, key=key)
    assert responder.status == 201 and responder.json()["has_certificate"] is False
    assert [r["url"] for r in trusted.request("GET", f"/api/v1/intermediate-cas/{number}/ocsp-responders",
                                              key=key).json()] == ["http://ocsp-i.example.org"]
    shared = _shared(trusted)
    assert b"<intermediateCA>" in shared and b"http://ocsp-i.example.org" in shared
    assert trusted.request("DELETE", f"/api/v1/intermediate-cas/{number}/ocsp-responders/{number}",
                           key=key).status == 204
    assert b"ocsp-i.example.org" not in _shared(trusted)
    assert trusted.request("DELETE", f"/api/v1/intermediate-cas/{number}", key=key).status == 204
    assert b"<intermediateCA>" not in _shared(trusted)
    gone = trusted.request("GET", f"/api/v1/intermediate-cas/{number}", key=key, check=False)
    assert gone.status == 404 and gone.json()["error"]["code"] == "intermediate_ca_not_found"
