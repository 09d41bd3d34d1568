"""The Keys and certificates page over HTTP: tokens, keys and certificates with their status, a certificate request
generated and downloaded, a certificate imported, registration asked, each through the API's own operation, its
refusals next to the field, roles and XSRF."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from central_registry.trust.ca import CertKind
from security_server.admin.server_dir import ServerDirectory
from security_server.management.roles import Role
from security_server.signer.softtoken_pin import LOGINS
from tests.federation.evidence import federation
from tests.management_api import Answer
from tests.security_server.console.data import SCRIPT, Built
from tests.security_server.console.harness import Console, xsrf_of

_CSR_LINK = re.compile(r'href="(/console/keys/[^"/]+/csrs/[^"?]+)\?format=PEM"')


@pytest.fixture
def console(built: Built) -> Iterator[Console]:
    """The console over it; the soft token's login is forgotten afterwards (it is kept per process)."""
    yield Console(built.directory)
    LOGINS.forget(ServerDirectory(built.directory).keys_path)


def text(page: bytes) -> str:
    """A page as text."""
    return page.decode("utf-8")


def generate(console: Console, cookies: dict[str, str], usage: str = "AUTHENTICATION", organisation: str = "Test",
             member: str = "") -> Answer:
    """Send the certificate-request form."""
    token = xsrf_of(console.get("/console/keys", cookies).body)
    return console.form("/console/keys/csrs", {"_xsrf": token, "token": "soft", "key_usage_type": usage,
                                               "O": organisation, "member_id": member, "csr_format": "PEM"}, cookies)


def test_the_page_lists_tokens_keys_and_certificates(console: Console) -> None:
    """getTokens through the page: the soft token, its signing key, the certificate with expiry and registration
    status, and the token logged in."""
    page = text(console.get("/console/keys", console.log_in("officer")).body)
    assert "<caption>Tokens</caption>" in page and ">soft<" in page and "SIGNING" in page
    assert "REGISTERED" in page and "logged in" in page


def test_a_generated_request_is_listed_and_downloads(console: Console) -> None:
    """addKeyAndCsr through the form: 303 back, the request listed with its download links; the PEM link answers
    the request as a file."""
    officer = console.log_in("officer")
    answer = generate(console, officer)
    assert (answer.status, answer.header("location")) == (303, "/console/keys")
    page = text(console.get("/console/keys", officer).body)
    found = _CSR_LINK.search(page)
    assert found is not None and "AUTHENTICATION" in page
    download = console.get(found.group(1), officer, format="PEM")
    assert download.status == 200 and download.body.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    assert (download.header("content-disposition") or "").startswith("attachment;")
    assert console.get(found.group(1), console.log_in("observer"), format="PEM").status == 403


def test_an_imported_certificate_replaces_its_request(console: Console) -> None:
    """The CA's certificate for the downloaded request, uploaded through importCertificate: listed, the request
    gone."""
    officer = console.log_in("officer")
    generate(console, officer)
    page = text(console.get("/console/keys", officer).body)
    found = _CSR_LINK.search(page)
    assert found is not None
    csr = console.get(found.group(1), officer, format="PEM").body
    cert = federation().ca.issue(csr, CertKind.AUTH, datetime.now(UTC))
    answer = console.upload("/console/keys/certificates", {"_xsrf": xsrf_of(page.encode())}, "certificate",
                            cert.public_bytes(serialization.Encoding.PEM), officer)
    assert answer.status == 303
    page = text(console.get("/console/keys", officer).body)
    assert _CSR_LINK.search(page) is None and "Register at the registry" in page


def test_refusals_go_next_to_their_fields(console: Console) -> None:
    """A missing organisation under O; a signing request, the registration officer's, refused to the security
    officer under the usage; a file that is no certificate under the file field; all escaped."""
    officer = console.log_in("officer")
    answer = generate(console, officer, organisation="")
    assert answer.status == 400 and 'id="csr-O-error"' in text(answer.body)
    answer = generate(console, officer, usage="SIGNING", organisation=SCRIPT)
    page = text(answer.body)
    assert answer.status == 403 and 'id="csr-key_usage_type-error"' in page and "permission_denied" in page
    assert SCRIPT not in page and "&lt;script&gt;" in page
    token = xsrf_of(page.encode())
    answer = console.upload("/console/keys/certificates", {"_xsrf": token}, "certificate", b"", officer)
    assert answer.status == 400 and 'id="import-certificate-error"' in text(answer.body)


def test_registering_checks_the_address_first(console: Console) -> None:
    """registerCertificate's invalid_address goes under the certificate's address field; without a registry the
    API's registration_unavailable is shown at the top of that form."""
    officer = console.log_in("officer")
    generate(console, officer)
    page = text(console.get("/console/keys", officer).body)
    found = _CSR_LINK.search(page)
    assert found is not None
    cert = federation().ca.issue(console.get(found.group(1), officer, format="PEM").body, CertKind.AUTH,
                                 datetime.now(UTC))
    console.upload("/console/keys/certificates", {"_xsrf": xsrf_of(page.encode())}, "certificate",
                   cert.public_bytes(serialization.Encoding.PEM), officer)
    digest = cert.fingerprint(hashes.SHA256())
    action = f"/console/keys/certificates/{digest.hex().upper()}/register"
    token = xsrf_of(console.get("/console/keys", officer).body)
    answer = console.form(action, {"_xsrf": token, "address": "not an address"}, officer)
    assert answer.status == 400 and "invalid_address" in text(answer.body)
    assert '-address-error"' in text(answer.body)
    answer = console.form(action, {"_xsrf": token, "address": "ss1.example"}, officer)
    assert answer.status == 404 and "registration_unavailable" in text(answer.body)


def test_the_keys_page_checks_the_role_and_the_xsrf_token(console: Console) -> None:
    """Observer, service administrator and auditor get 403; the security officer, the registration officer and
    the system administrator open it; a form without the session's token is 403 and generates nothing."""
    for name in ("observer", "services", "auditor"):
        assert console.get("/console/keys", console.log_in(name)).status == 403
    for name in ("admin", "registrar"):
        assert console.get("/console/keys", console.log_in(name)).status == 200
    officer = console.log_in("officer")
    answer = console.form("/console/keys/csrs", {"token": "soft", "key_usage_type": "AUTHENTICATION", "O": "T"},
                          officer)
    assert answer.status == 403 and "XSRF" in text(answer.body)
    assert _CSR_LINK.search(text(console.get("/console/keys", officer).body)) is None


def test_a_certificate_is_disabled_and_activated_again(console: Console) -> None:
    """disableCertificate and activateCertificate through the signing certificate's button (the registration
    officer's); disabling twice is the API's action_not_possible at the top of the page; the system administrator's
    click is the API's permission_denied there."""
    admin = console.log_in("admin")
    page = text(console.get("/console/keys", admin).body)
    found = re.search(r'action="(/console/keys/certificates/[0-9A-F]+)/disable"', page)
    assert found is not None
    refused = console.form(found.group(1) + "/disable", {"_xsrf": xsrf_of(page.encode())}, admin)
    assert refused.status == 403 and "permission_denied" in text(refused.body)
    officer = console.log_in("registrar")
    page = text(console.get("/console/keys", officer).body)
    found = re.search(r'action="(/console/keys/certificates/[0-9A-F]+)/disable"', page)
    assert found is not None
    token = xsrf_of(page.encode())
    assert console.form(found.group(1) + "/disable", {"_xsrf": token}, officer).status == 303
    page = text(console.get("/console/keys", officer).body)
    assert "disabled" in page and f'action="{found.group(1)}/activate"' in page
    again = console.form(found.group(1) + "/disable", {"_xsrf": token}, officer)
    assert again.status == 400 and 'id="keys-error"' in text(again.body) and "action_not_possible" in text(again.body)
    assert console.form(found.group(1) + "/activate", {"_xsrf": token}, officer).status == 303
    assert f'action="{found.group(1)}/disable"' in text(console.get("/console/keys", officer).body)


def test_the_soft_token_is_logged_out_and_in_with_its_pin(console: Console) -> None:
    """Without a PIN, logging out is the API's action_not_possible at the top; with one, Log out, then a wrong PIN
    under the PIN field (never echoed), then the right one logs it in again."""
    officer = console.log_in("officer")
    token = xsrf_of(console.get("/console/keys", officer).body)
    refused = console.form("/console/keys/tokens/soft/logout", {"_xsrf": token}, officer)
    assert refused.status == 400 and "action_not_possible" in text(refused.body)
    key = console.api_key(Role.SYSTEM_ADMINISTRATOR)  # updateTokenPin is the system administrator's
    pin = "Console-Pin-1234"
    assert console.request("PUT", "/api/v1/tokens/soft/pin", key=key,
                           json_body={"old_pin": "none", "new_pin": pin}).status == 204
    assert console.form("/console/keys/tokens/soft/logout", {"_xsrf": token}, officer).status == 303
    page = text(console.get("/console/keys", officer).body)
    assert "logged out" in page and 'id="login-soft-password"' in page
    wrong = console.form("/console/keys/tokens/soft/login", {"_xsrf": token, "password": "wrong-" + SCRIPT}, officer)
    page = text(wrong.body)
    assert wrong.status == 400 and 'id="login-soft-password-error"' in page and "pin_incorrect" in page
    assert "wrong-" not in page
    right = console.form("/console/keys/tokens/soft/login", {"_xsrf": token, "password": pin}, officer)
    assert right.status == 303 and ">logged in<" in text(console.get("/console/keys", officer).body)
