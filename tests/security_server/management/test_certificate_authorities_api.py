"""``/certificate-authorities`` and CSRs per CA: the approved CAs with their profiles, each CA's request subject
fields, and keys-with-csrs / keys/{id}/csrs building the subject from the CA's profile (answers checked against
X-Road's OpenAPI file by the harness)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509

from security_server.core.certprofile import member_from_signing_cert_as
from security_server.core.globalconf import GlobalConf
from security_server.core.globalconf.sharedparams import ApprovedCa, CaInfo, OcspResponder
from security_server.core.identifiers import ClientId
from security_server.management.roles import Role
from tests.federation.pki import SAMPLE_TIME, make_ca, make_cert
from tests.federation.profile_certs import EE, EJBCA, FI, UNKNOWN
from tests.security_server.management.conftest import OWNER_CLASS, OWNER_CODE, SERVER_CODE
from tests.security_server.management.globalconf_fixture import global_conf
from tests.security_server.management.harness import Api
from tests.security_server.management.xroad_openapi import error_object

OWNER = ClientId("EE", OWNER_CLASS, OWNER_CODE)
KEYS = "/api/v1/tokens/soft/keys-with-csrs"


def _with_cas() -> GlobalConf:
    """The management tests' configuration with four approved CAs: EE and FI (with an intermediate) profiles, an
    EJBCA one for authentication only, and one of a profile fedbus does not read."""
    fi_top = make_ca("FI Root", SAMPLE_TIME)
    fi_mid = make_ca("FI Issuing", SAMPLE_TIME, issuer=fi_top)
    cas = (
        ApprovedCa("EE CA", CaInfo(make_ca("EE Root", SAMPLE_TIME).der,
                                   (OcspResponder("http://ocsp.ee.example"),)), EE),
        ApprovedCa("FI CA", CaInfo(fi_top.der), FI, (CaInfo(fi_mid.der),)),
        ApprovedCa("Auth CA", CaInfo(make_ca("Auth Root", SAMPLE_TIME).der), EJBCA, authentication_only=True),
        ApprovedCa("IS CA", CaInfo(make_ca("IS Root", SAMPLE_TIME).der), UNKNOWN),
    )
    conf = global_conf()
    return GlobalConf(replace(conf.shared, approved_cas=cas), conf.private, conf.expires_at)


@pytest.fixture(scope="module")
def conf() -> GlobalConf:
    """The configuration with the CAs (made once: CA keys)."""
    return _with_cas()


@pytest.fixture
def server(tmp_path: Path, anchor_bytes: bytes, conf: GlobalConf) -> Api:
    """An initialised server (owner EE/GOV/70000310, ss1, token logged in) whose configuration lists the CAs."""
    api = Api(tmp_path / "server", global_conf=lambda: conf)
    key = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    assert api.request("POST", "/api/v1/system/anchor", body=anchor_bytes, content_type="application/octet-stream",
                       key=key).status == 201
    assert api.request("POST", "/api/v1/initialization", key=key, json_body={
        "owner_member_class": OWNER_CLASS, "owner_member_code": OWNER_CODE, "security_server_code": SERVER_CODE,
        "software_token_pin": "Secret-1234"}).status == 201
    return api


def _csr(usage: str, ca_name: str, values: dict[str, str], member: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"key_usage_type": usage, "ca_name": ca_name, "csr_format": "PEM",
                               "subject_field_values": values}
    if member is not None:
        spec["member_id"] = member
    return {"key_label": "k", "csr_generate_request": spec}


def _subject_of(api: Api, key: str, made: dict[str, object]) -> x509.Name:
    shown = made["key"]
    assert isinstance(shown, dict)
    pem = api.request("GET", f"/api/v1/keys/{shown['id']}/csrs/{made['csr_id']}", key=key, query={"csr_format": "PEM"})
    return x509.load_pem_x509_csr(pem.body).subject


def test_the_approved_cas_are_listed_with_their_profiles(server: Api) -> None:
    """Top CAs by default with their X-Road profile class; intermediates on request; SIGNING leaves out the
    authentication-only CA."""
    key = server.api_key(Role.SYSTEM_ADMINISTRATOR)
    listed = server.request("GET", "/api/v1/certificate-authorities", key=key)
    assert listed.status == 200
    by_name = {ca["name"]: ca for ca in listed.json()}
    assert {n: (ca["certificate_profile_info"], ca["top_ca"]) for n, ca in by_name.items()} == {
        "EE CA": (EE, True), "FI CA": (FI, True), "Auth CA": (EJBCA, True), "IS CA": (UNKNOWN, True)}
    assert by_name["EE CA"]["ocsp_responders"] == [{"url": "http://ocsp.ee.example", "cost_type": "UNDEFINED"}]
    assert by_name["Auth CA"]["authentication_only"] is True
    with_mid = server.request("GET", "/api/v1/certificate-authorities", key=key,
                              query={"include_intermediate_cas": "true"}).json()
    mid = [ca for ca in with_mid if not ca["top_ca"]]
    assert [(ca["name"], ca["path"].count(":")) for ca in mid] == [("FI CA", 1)]
    signing = server.request("GET", "/api/v1/certificate-authorities", key=key, query={"key_usage_type": "SIGNING"})
    assert "Auth CA" not in {ca["name"] for ca in signing.json()}


def test_officers_list_the_cas_for_their_usage_only(server: Api) -> None:
    """A registration officer lists CAs for SIGNING, not for AUTHENTICATION; a service administrator not at all."""
    registration = server.api_key(Role.REGISTRATION_OFFICER)
    path = "/api/v1/certificate-authorities"
    assert server.request("GET", path, key=registration, query={"key_usage_type": "SIGNING"}).status == 200
    assert server.request("GET", path, key=registration, query={"key_usage_type": "AUTHENTICATION"}).status == 403
    assert server.request("GET", path, key=server.api_key(Role.SERVICE_ADMINISTRATOR)).status == 403


def test_fi_signing_fields_follow_x_roads_profile(server: Api) -> None:
    """The FI CA's signing fields: C=FI, O to fill in, serialNumber instance/serverCode/memberClass and CN the
    member code, read-only from the identifiers."""
    answer = server.request("GET", "/api/v1/certificate-authorities/FI%20CA/csr-subject-fields",
                            key=server.api_key(Role.REGISTRATION_OFFICER),
                            query={"key_usage_type": "SIGNING", "member_id": "EE:GOV:70000310"})
    assert answer.status == 200, answer.body
    fields = {f["id"]: (f["default_value"], f["read_only"], f["required"]) for f in answer.json()}
    assert fields == {"C": ("FI", True, True), "O": ("", False, True), "serialNumber": ("EE/ss1/GOV", True, True),
                      "CN": ("70000310", True, True), "subjectAltName": ("", False, False)}


def test_ee_auth_fields_name_the_owner(server: Api) -> None:
    """The EE CA's authentication fields: SN the owner's code, CN the owner's name from the configuration."""
    answer = server.request("GET", "/api/v1/certificate-authorities/EE%20CA/csr-subject-fields",
                            key=server.api_key(Role.SECURITY_OFFICER), query={"key_usage_type": "AUTHENTICATION"})
    assert answer.status == 200, answer.body
    assert [(f["id"], f["default_value"]) for f in answer.json()] == [("SN", "70000310"), ("CN", "Ministry")]


@pytest.mark.parametrize(("ca", "query", "role", "status", "code"), [
    ("Nobody CA", {"key_usage_type": "AUTHENTICATION"}, Role.SECURITY_OFFICER, 404, "certificate_authority_not_found"),
    ("FI CA", {"key_usage_type": "SIGNING"}, Role.REGISTRATION_OFFICER, 400, "member_id_required_for_sign_csr"),
    ("FI CA", {"key_usage_type": "AUTHENTICATION"}, Role.REGISTRATION_OFFICER, 403, "permission_denied"),
    ("IS CA", {"key_usage_type": "AUTHENTICATION"}, Role.SECURITY_OFFICER, 500, "certificate_profile_instantiation_failure"),
])
def test_field_description_refusals(server: Api, ca: str, query: dict[str, str], role: str, status: int,
                                    code: str) -> None:
    """An unknown CA is 404, a sign request without a member 400, the other officer 403, a CA whose profile fedbus
    does not read 500."""
    answer = server.request("GET", f"/api/v1/certificate-authorities/{quote(ca)}/csr-subject-fields",
                            key=server.api_key(role), query=query)
    assert answer.status == status
    assert error_object(answer.body)["error"]["code"] == code


def test_keys_with_csrs_follow_the_cas_profile(server: Api) -> None:
    """A sign key's request for the FI CA has the FI subject and reads back as the member under FI; an auth key's
    for the EE CA has SN and CN."""
    registration = server.api_key(Role.REGISTRATION_OFFICER)
    made = server.request("POST", KEYS, key=registration,
                          json_body=_csr("SIGNING", "FI CA", {"O": "Ministry"}, "EE:GOV:70000310"))
    assert made.status == 201, made.body
    subject = _subject_of(server, registration, made.json())
    assert subject.rfc4514_string() == "CN=70000310,2.5.4.5=EE/ss1/GOV,O=Ministry,C=FI"
    security = server.api_key(Role.SECURITY_OFFICER)
    made = server.request("POST", KEYS, key=security, json_body=_csr("AUTHENTICATION", "EE CA", {}))
    assert made.status == 201, made.body
    assert _subject_of(server, security, made.json()).rfc4514_string() == "CN=Ministry,2.5.4.5=70000310"


def test_a_request_refused_by_the_profile_makes_no_key(server: Api) -> None:
    """FI without the organisation, or a field FI lacks: 400 invalid_dn_parameter and no key on the token; a sign
    request to an authentication-only CA is 400 wrong_key_usage."""
    key = server.api_key(Role.REGISTRATION_OFFICER)
    for values in ({}, {"O": "Ministry", "L": "Helsinki"}):
        refused = server.request("POST", KEYS, key=key, json_body=_csr("SIGNING", "FI CA", values, "EE:GOV:70000310"))
        assert refused.status == 400 and error_object(refused.body)["error"]["code"] == "invalid_dn_parameter"
    wrong = server.request("POST", KEYS, key=key, json_body=_csr("SIGNING", "Auth CA", {}, "EE:GOV:70000310"))
    assert wrong.status == 400 and error_object(wrong.body)["error"]["code"] == "wrong_key_usage"
    assert server.server_dir.soft_token().list() == ()


def test_another_request_for_a_key_follows_the_chosen_ca(server: Api, tmp_path: Path) -> None:
    """POST /keys/{id}/csrs with the EE CA makes an EE request for a sign key first requested for fedbus's profile
    (a CA the configuration does not list); an EE certificate for it reads back as the owner."""
    key = server.api_key(Role.REGISTRATION_OFFICER)
    made = server.request("POST", KEYS, key=key, json_body=_csr("SIGNING", "Test CA", {"O": "Ministry"},
                                                                "EE:GOV:70000310"))
    assert made.status == 201
    assert "2.5.4.5=EE/GOV/70000310" in _subject_of(server, key, made.json()).rfc4514_string()
    key_id = made.json()["key"]["id"]
    again = server.request("POST", f"/api/v1/keys/{key_id}/csrs", key=key, json_body={
        "key_usage_type": "SIGNING", "ca_name": "EE CA", "csr_format": "PEM", "subject_field_values": {}})
    assert again.status == 201, again.body
    csr = x509.load_pem_x509_csr(again.body)
    assert csr.subject.rfc4514_string() == "CN=Ministry,2.5.4.5=70000310"
    issuer = make_ca("EE Root for the test", SAMPLE_TIME)
    cert = make_cert(issuer, csr.subject, SAMPLE_TIME, kind="sign").cert
    assert member_from_signing_cert_as(cert, EE, "EE") == OWNER
