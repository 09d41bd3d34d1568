"""A registry set up through its API alone, as X-Road's setup scenario does it, up to the anchor: initialised,
member classes and a member with a subsystem added, a CA with its OCSP responder and a TSA approved; the anchor
downloaded parses, and the published configuration names what was approved."""

from __future__ import annotations

from typing import Any

from cryptography import x509

from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.store import RegistryStore
from security_server.core.globalconf.anchor import parse_configuration_anchor
from security_server.schemafiles import load_schema
from tests.central_registry.management.harness import RegistryApi, certificate_pem, multipart_form


def _json(api: RegistryApi, method: str, path: str, key: str, body: Any = None, status: int = 200) -> Any:
    answer = api.request(method, path, json_body=body, key=key)
    assert answer.status == status, (path, answer.status, answer.body)
    return answer.json() if answer.body else None


def test_a_registry_is_set_up_through_the_api(api: RegistryApi) -> None:
    """Every step is an API call with the role X-Road gives it; the result is a published configuration with the
    member, the CA and the TSA, and an anchor security servers can be initialised with."""
    admin = api.api_key(Role.SYSTEM_ADMINISTRATOR)
    officer = api.api_key(Role.REGISTRATION_OFFICER)
    security = api.api_key(Role.SECURITY_OFFICER)
    _json(api, "POST", "/api/v1/initialization", admin, {
        "instance_identifier": "EE", "central_server_address": "127.0.0.1", "software_token_pin": "1234"}, 201)
    _json(api, "POST", "/api/v1/member-classes", officer, {"code": "GOV", "description": "Government"}, 201)
    _json(api, "POST", "/api/v1/members", officer,
          {"member_id": {"member_class": "GOV", "member_code": "70000310"}, "member_name": "Riik"}, 201)
    _json(api, "POST", "/api/v1/subsystems", officer,
          {"subsystem_id": {"member_class": "GOV", "member_code": "70000310", "subsystem_code": "reg"}}, 201)
    for path, fields, name in (
        ("/api/v1/certification-services", {"certificate_profile_info": "fedbus"}, "Test CA"),
        ("/api/v1/certification-services/1/ocsp-responders", {"url": "http://127.0.0.1:8090/ocsp"}, "Test OCSP"),
        ("/api/v1/timestamping-services", {"url": "http://127.0.0.1:8090/tsa"}, "Test TSA"),
    ):
        body, kind = multipart_form(fields, {"certificate": certificate_pem(api, name)})
        answer = api.request("POST", path, body=body, content_type=kind, key=security)
        assert answer.status == 201, (path, answer.body)

    store = RegistryStore(api.paths.database)
    try:
        api.publisher = Publisher(store, api.paths.published, SelfSignedKey.load(api.paths.conf_signing),
                                  public_url="http://127.0.0.1:8090",
                                  management_url="https://127.0.0.1:8443/managementservice",
                                  management_cert_der=SelfSignedKey.load(api.paths.tls).cert_der)
        api.publisher.publish(api.context.now())
        observer = api.api_key(Role.OBSERVER)
        anchor = api.request("GET", "/api/v1/configuration-sources/INTERNAL/anchor/download", key=observer)
        parsed = parse_configuration_anchor(anchor.body, load_schema("configuration-anchor.xsd"))
        assert parsed.instance == "EE"
        assert parsed.sources[0].download_url == "http://127.0.0.1:8090/internalconf"
        signing = SelfSignedKey.load(api.paths.conf_signing).cert
        assert x509.load_der_x509_certificate(parsed.sources[0].verification_certs[0]) == signing
        shared = api.request(
            "GET", "/api/v1/configuration-sources/INTERNAL/configuration-parts/SHARED-PARAMETERS/3/download",
            key=observer).body
        for expected in (b"70000310", b"Riik", b"http://127.0.0.1:8090/ocsp", b"http://127.0.0.1:8090/tsa"):
            assert expected in shared, expected
    finally:
        store.close()
