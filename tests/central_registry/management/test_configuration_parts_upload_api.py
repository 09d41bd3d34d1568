"""Uploading an optional configuration part (X-Road's uploadConfigurationParts): a part declared in
``configuration-parts/*.ini`` is published in the next signed directory under its content identifier and listed
and downloaded like the registry's own; undeclared or reserved identifiers, malformed XML, oversized files, the
EXTERNAL source and the wrong roles are refused."""

from __future__ import annotations

from typing import Iterator

import pytest
from twisted.web.test.requesthelper import DummyRequest

from central_registry.admin import configuration_parts
from central_registry.admin.configuration_parts import ConfigurationPartValidationFailed, declared_parts
from central_registry.management.roles import Role
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.service import ConfigurationResource
from central_registry.store import RegistryStore
from security_server.core.globalconf.anchor import parse_configuration_anchor
from security_server.core.globalconf.directory import parse_signed_directory, verify_signed_directory
from security_server.schemafiles import load_schema
from tests.central_registry.management.harness import START, RegistryApi, multipart_form

PARTS = "/api/v1/configuration-sources/INTERNAL/configuration-parts"
PART = b'<?xml version="1.0"?><ocspFetchIntervalParams><ocspFetchInterval>120</ocspFetchInterval></ocspFetchIntervalParams>'


@pytest.fixture
def running(registry: RegistryApi) -> Iterator[RegistryApi]:
    """An initialised registry that declares OCSP_FETCH_INTERVAL (and, ignored, a part reusing a reserved
    identifier), with the publisher a running registry has."""
    folder = registry.root / "configuration-parts"
    folder.mkdir()
    (folder / "ocsp-fetch-interval.ini").write_text(
        "content-identifier = OCSP_FETCH_INTERVAL\nfile-name = ocsp-fetch-interval-params.xml\n")
    (folder / "reserved.ini").write_text("[x]\ncontent-identifier = SHARED-PARAMETERS\nfile-name = mine.xml\n")
    (folder / "escape.ini").write_text("content-identifier = ESCAPE\nfile-name = ../../registry.db\n")
    store = RegistryStore(registry.paths.database)
    registry.publisher = Publisher(store, registry.paths.published, SelfSignedKey.load(registry.paths.conf_signing),
                                   public_url="http://127.0.0.1:8090", management_url="https://127.0.0.1:8443/m",
                                   management_cert_der=SelfSignedKey.load(registry.paths.tls).cert_der,
                                   conf_signing_dir=registry.paths.conf_signing)
    yield registry
    store.close()


def _upload(api: RegistryApi, identifier: str, data: bytes, key: str, kind: str = "INTERNAL") -> tuple[int, str]:
    body, content_type = multipart_form({"content_identifier": identifier}, {"file": data})
    answer = api.request("POST", f"/api/v1/configuration-sources/{kind}/configuration-parts", key=key, body=body,
                         content_type=content_type, check=False)
    return answer.status, answer.json()["error"]["code"] if answer.body else ""


def test_a_declared_part_is_published_listed_and_downloaded(running: RegistryApi) -> None:
    """Only the well-formed declaration counts; an upload is 204, the next directory lists the part under its
    content identifier, GET .../configuration-parts shows it optional, and its download is the uploaded file."""
    assert declared_parts(running.root) == {"OCSP_FETCH_INTERVAL": "ocsp-fetch-interval-params.xml"}
    key = running.api_key(Role.SECURITY_OFFICER)
    body, content_type = multipart_form({"content_identifier": "OCSP_FETCH_INTERVAL"}, {"file": PART})
    answer = running.request("POST", PARTS, key=key, body=body, content_type=content_type)
    assert answer.status == 204
    assert running.publisher is not None
    publication = running.publisher.publish(START)
    anchor = parse_configuration_anchor(running.publisher.anchor(START), load_schema("configuration-anchor.xsd"))
    directory = verify_signed_directory(parse_signed_directory(publication.content_type, publication.directory),
                                        anchor, START)
    entry = directory.entry("OCSP_FETCH_INTERVAL")
    assert entry is not None and publication.files[entry.content_location] == PART
    listed = running.request("GET", PARTS, key=key).json()
    assert {p["content_identifier"]: p["optional"] for p in listed} == {
        "PRIVATE-PARAMETERS": False, "SHARED-PARAMETERS": False, "OCSP_FETCH_INTERVAL": True}
    download = running.request("GET", f"{PARTS}/OCSP_FETCH_INTERVAL/3/download", key=key)
    assert download.status == 200 and download.body == PART
    # The registry's web server serves the part where the directory says (and nothing outside the generation).
    site = ConfigurationResource(running.paths.published)
    served = DummyRequest([part.encode() for part in entry.content_location.strip("/").split("/")])
    assert site.render_GET(served) == PART  # type: ignore[arg-type]  # a DummyRequest stands for the Request
    escape = DummyRequest([b"V3", publication.generation.encode(), b"..", b"registry.db"])
    site.render_GET(escape)  # type: ignore[arg-type]
    assert escape.responseCode == 404


def test_hostile_uploads_are_refused(running: RegistryApi) -> None:
    """Undeclared and reserved identifiers are 400 unknown_configuration_part, malformed XML or an empty file 400
    configuration_part_validation_failed, EXTERNAL 404, an observer or registration officer 403; a part above
    the size limit is refused by the service layer."""
    key = running.api_key(Role.SECURITY_OFFICER)
    assert _upload(running, "NO_SUCH_PART", PART, key) == (400, "unknown_configuration_part")
    assert _upload(running, "SHARED-PARAMETERS", PART, key) == (400, "unknown_configuration_part")
    assert _upload(running, "ESCAPE", PART, key) == (400, "unknown_configuration_part")
    assert _upload(running, "OCSP_FETCH_INTERVAL", b"<unclosed>", key) == (400, "configuration_part_validation_failed")
    assert _upload(running, "OCSP_FETCH_INTERVAL", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", key) == (
        400, "configuration_part_validation_failed")
    assert _upload(running, "OCSP_FETCH_INTERVAL", PART, key, "EXTERNAL")[0] == 404
    for role in (Role.OBSERVER, Role.REGISTRATION_OFFICER):
        assert _upload(running, "OCSP_FETCH_INTERVAL", PART, running.api_key(role))[0] == 403
    huge = b"<a>" + b"x" * configuration_parts.MAX_PART_BYTES + b"</a>"
    assert running.publisher is not None
    store = running.publisher.store
    with pytest.raises(ConfigurationPartValidationFailed):
        configuration_parts.upload(store, running.root, "OCSP_FETCH_INTERVAL", huge, START)
    assert configuration_parts.uploaded_parts(store) == []


def test_an_upload_larger_than_the_api_takes_is_refused(running: RegistryApi) -> None:
    """A body above the API's size limit is refused before it reaches the service layer (413)."""
    key = running.api_key(Role.SECURITY_OFFICER)
    status, _ = _upload(running, "OCSP_FETCH_INTERVAL", b"<a>" + b"x" * 100_000 + b"</a>", key)
    assert status == 413
