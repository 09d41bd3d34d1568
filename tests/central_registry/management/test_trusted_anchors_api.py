"""The registry's ``/trusted-anchors``: another instance's anchor verified, kept, listed, published; hostile files
refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_registry.bootstrap import init_registry
from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey, private_parameters
from central_registry.store import RegistryStore
from security_server.core.globalconf import anchor_hash
from security_server.core.globalconf.anchor import AnchorSource, ConfigurationAnchor, build_configuration_anchor
from security_server.schemafiles import load_schema
from tests.central_registry.management.harness import START, RegistryApi, certificate_pem, multipart_form
from tests.management_api import Answer


def _anchor(api: RegistryApi, instance: str, generated: int = 0) -> bytes:
    cert = x509.load_pem_x509_certificate(certificate_pem(api, f"{instance} signer {generated}"))
    source = AnchorSource(f"http://cs.{instance.lower()}.example.org/internalconf",
                          (cert.public_bytes(serialization.Encoding.DER),))
    anchor = ConfigurationAnchor(instance, (source,), START - timedelta(hours=1, seconds=generated))
    return build_configuration_anchor(anchor, load_schema("configuration-anchor.xsd"))


def _upload(api: RegistryApi, key: str, xml: bytes, *, preview: bool = False, name: str = "anchor.xml") -> Answer:
    body, content_type = multipart_form({}, {"anchor": xml}, {"anchor": name})
    path = "/api/v1/trusted-anchors/preview" if preview else "/api/v1/trusted-anchors"
    return api.request("POST", path, body=body, content_type=content_type, key=key, check=False)


def test_an_anchor_is_previewed_uploaded_listed_downloaded_and_deleted(registry: RegistryApi) -> None:
    """Preview keeps nothing; upload keeps it with X-Road's fields; download answers the same bytes; delete 204."""
    key = registry.api_key(Role.SECURITY_OFFICER)
    xml = _anchor(registry, "FI")
    preview = _upload(registry, key, xml, preview=True)
    assert preview.status == 200 and preview.json()["hash"] == anchor_hash(xml)
    assert registry.request("GET", "/api/v1/trusted-anchors", key=key).json() == []
    added = _upload(registry, key, xml)
    assert added.status == 201
    shown = registry.request("GET", "/api/v1/trusted-anchors", key=key).json()
    assert shown == [{"hash": anchor_hash(xml), "instance_identifier": "FI", "generated_at": "2026-12-07T11:00:00.000Z",
                      "created_at": "2026-12-07T12:00:00.000Z"}]
    download = registry.request("GET", f"/api/v1/trusted-anchors/{anchor_hash(xml)}/download", key=key)
    assert download.status == 200 and download.body == xml
    assert registry.request("DELETE", f"/api/v1/trusted-anchors/{anchor_hash(xml)}", key=key).status == 204
    assert registry.request("GET", "/api/v1/trusted-anchors", key=key).json() == []


def test_a_newer_anchor_of_an_instance_replaces_the_old(registry: RegistryApi) -> None:
    """One anchor is kept per instance, as X-Road keeps it."""
    key = registry.api_key(Role.SECURITY_OFFICER)
    _upload(registry, key, _anchor(registry, "FI", 1))
    newer = _anchor(registry, "FI", 2)
    _upload(registry, key, newer)
    assert [a["hash"] for a in registry.request("GET", "/api/v1/trusted-anchors", key=key).json()] == [anchor_hash(newer)]


def test_hostile_anchors_are_refused(registry: RegistryApi) -> None:
    """Our own instance, garbage XML, an XML bomb, a wrong extension: X-Road's 400 codes, nothing kept."""
    key = registry.api_key(Role.SECURITY_OFFICER)
    cases = [
        (_anchor(registry, "EE"), "anchor.xml", "trusted_anchor_verification_failed"),
        (b"<not-an-anchor/>", "anchor.xml", "malformed_anchor"),
        (b"\x00\xffgarbage", "anchor.xml", "malformed_anchor"),
        (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxx">]><a>&x;&x;</a>', "anchor.xml", "malformed_anchor"),
        (_anchor(registry, "FI", 3), "script.sh", "invalid_file_extension"),
        (_anchor(registry, "FI", 4), "script.sh.xml", "double_file_extension"),
    ]
    for xml, name, code in cases:
        for preview in (True, False):
            answer = _upload(registry, key, xml, preview=preview, name=name)
            assert answer.status == 400, (name, code)
            assert answer.json()["error"]["code"] == code, (name, code)
    assert registry.request("GET", "/api/v1/trusted-anchors", key=key).json() == []


def test_an_unknown_hash_is_not_found(registry: RegistryApi) -> None:
    """Delete and download of a hash never uploaded: 404 trusted_anchor_not_found."""
    key = registry.api_key(Role.SECURITY_OFFICER)
    for method, path in (("DELETE", "/api/v1/trusted-anchors/AB:CD"), ("GET", "/api/v1/trusted-anchors/AB:CD/download")):
        answer = registry.request(method, path, key=key)
        assert answer.status == 404 and answer.json()["error"]["code"] == "trusted_anchor_not_found"


def test_anchors_follow_xroads_roles(registry: RegistryApi) -> None:
    """Only the security officer uploads and deletes; the system administrator may view; others get 403."""
    admin = registry.api_key(Role.SYSTEM_ADMINISTRATOR)
    officer = registry.api_key(Role.REGISTRATION_OFFICER)
    assert _upload(registry, admin, _anchor(registry, "FI")).status == 403
    assert registry.request("GET", "/api/v1/trusted-anchors", key=admin).status == 200
    assert registry.request("GET", "/api/v1/trusted-anchors", key=officer).status == 403
    assert registry.request("DELETE", "/api/v1/trusted-anchors/AB", key=officer).status == 403


def test_kept_anchors_are_published_in_the_private_parameters(api: RegistryApi) -> None:
    """The next generation's private parameters list the anchor, and a security server's parser reads it back."""
    from security_server.core.globalconf.privateparams import parse_private_parameters

    init_registry(api.root, "EE", START, public_url="http://127.0.0.1:8090", ca_key_size=2048)
    key = api.api_key(Role.SECURITY_OFFICER)
    xml = _anchor(api, "FI")
    assert _upload(api, key, xml).status == 201
    store = RegistryStore(api.paths.database)
    try:
        publisher = Publisher(store, api.paths.published, SelfSignedKey.load(api.paths.conf_signing),
                              public_url="http://127.0.0.1:8090", management_url="https://127.0.0.1:8443/m",
                              management_cert_der=SelfSignedKey.load(api.paths.tls).cert_der)
        built = publisher.build(START)
        private = next(content for location, content in built.files.items() if location.endswith("private-params.xml"))
        parsed = parse_private_parameters(private, load_schema("private-parameters.xsd"))
        assert [a.instance for a in parsed.configuration_anchors] == ["FI"]
        assert private_parameters(store, publisher.management_service()).configuration_anchors[0].instance == "FI"
    finally:
        store.close()


def test_an_oversized_anchor_is_malformed(registry: RegistryApi) -> None:
    """A file over the anchor size limit is refused before it is parsed."""
    from central_registry.admin.trusted_anchors import MAX_ANCHOR_BYTES, MalformedAnchor, verified

    with pytest.raises(MalformedAnchor) as refused:
        verified(b"<a>" + b" " * MAX_ANCHOR_BYTES + b"</a>", "EE", START)
    assert refused.value.api_code == "malformed_anchor"
