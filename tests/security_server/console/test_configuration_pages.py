"""The Configuration pages over HTTP: clients, a client's service descriptions, a service's settings and access
rights, each form through the API's own operation, its refusals next to the field, roles, XSRF and escaping."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from security_server.admin import access_rights
from security_server.admin.server_dir import ServerDirectory
from security_server.management.audit import AUDIT_NAME
from tests.federation.departments import CONSUMER
from tests.security_server.console.data import SCRIPT, Built, build_server, host_client
from tests.management_api import Answer
from tests.security_server.console.harness import Console, xsrf_of

SERVICE = "EE:GOV:70000310:consumer:getPerson"
CALLER = "EE:GOV:70000311:provider"


@pytest.fixture
def built(tmp_path: Path) -> Built:
    """A server directory hosting the consumer subsystem."""
    made = build_server(tmp_path / "server")
    host_client(made.directory)
    return made


@pytest.fixture
def console(built: Built) -> Console:
    """The console over it."""
    return Console(built.directory)


def text(page: bytes) -> str:
    """A page as text."""
    return page.decode("utf-8")


def client_path(client: str = "EE:GOV:70000310:consumer") -> str:
    """The client's page."""
    return "/console/configuration/clients/" + quote(client, safe="")


def service_path(service: str = SERVICE) -> str:
    """The service's page."""
    return "/console/configuration/services/" + quote(service, safe="")


def add_rest(console: Console, cookies: dict[str, str], url: str = "http://127.0.0.1:8080/persons",
             code: str = "getPerson") -> Answer:
    """Send the add-description form for a REST service."""
    token = xsrf_of(console.get(client_path(), cookies).body)
    return console.form(client_path() + "/descriptions",
                        {"_xsrf": token, "url": url, "type": "REST", "rest_service_code": code}, cookies)


def test_the_clients_list_links_each_hosted_client(console: Console) -> None:
    """findClients through the page: the owner member and the hosted subsystem, each linked to its page."""
    page = text(console.get("/console/configuration", console.log_in("services")).body)
    assert "EE:GOV:70000310:consumer" in page and "SAVED" in page
    assert f'href="{client_path()}"' in page


def test_a_rest_description_added_by_url_is_listed_and_audited(console: Console, built: Built) -> None:
    """The form adds it through addClientServiceDescription: 303 back to the client, its service listed and
    linked, one audit line for the write under the user's name."""
    services = console.log_in("services")
    answer = add_rest(console, services)
    assert (answer.status, answer.header("location")) == (303, client_path())
    page = text(console.get(client_path(), services).body)
    assert "http://127.0.0.1:8080/persons" in page and f'href="{service_path()}"' in page and "enabled" in page
    lines = [json.loads(line) for line in (built.directory / AUDIT_NAME).read_text().splitlines()]
    added = [line for line in lines if line.get("operation") == "addClientServiceDescription"]
    assert added and added[-1]["user"] == "services" and added[-1]["status"] == 201


def test_a_refused_url_is_shown_next_to_the_url_field(console: Console) -> None:
    """The API's invalid_url goes under the URL field (aria-invalid, aria-describedby), the input kept, escaped."""
    services = console.log_in("services")
    answer = add_rest(console, services, url="ftp://x/" + SCRIPT)
    page = text(answer.body)
    assert answer.status == 400
    assert 'id="add-description-url-error"' in page and "invalid_url" in page
    assert 'aria-describedby="add-description-url-hint add-description-url-error" aria-invalid="true"' in page
    assert SCRIPT not in page and "&lt;script&gt;" in page


def test_a_missing_service_code_is_shown_next_to_its_field(console: Console) -> None:
    """missing_field rest_service_code from the API goes under the service code field."""
    answer = add_rest(console, console.log_in("services"), code="")
    page = text(answer.body)
    assert answer.status == 400 and 'id="add-description-rest_service_code-error"' in page
    assert "missing_field" in page


def test_a_duplicate_service_code_is_shown_next_to_its_field(console: Console) -> None:
    """The service layer's service_already_exists (409) goes under the service code field."""
    services = console.log_in("services")
    add_rest(console, services)
    answer = add_rest(console, services, url="http://127.0.0.1:8080/other")
    assert answer.status == 409 and 'id="add-description-rest_service_code-error"' in text(answer.body)


def test_disabling_and_enabling_a_description(console: Console) -> None:
    """The description's button disables it, the other enables it again."""
    services = console.log_in("services")
    add_rest(console, services)
    page = text(console.get(client_path(), services).body)
    description = quote(SERVICE, safe="")
    disabled = console.form(f"/console/configuration/descriptions/{description}/disable",
                            {"_xsrf": xsrf_of(page.encode()), "client": "EE:GOV:70000310:consumer"}, services)
    assert disabled.status == 303 and "disabled" in text(console.get(client_path(), services).body)
    enabled = console.form(f"/console/configuration/descriptions/{description}/enable",
                           {"_xsrf": xsrf_of(page.encode()), "client": "EE:GOV:70000310:consumer"}, services)
    assert enabled.status == 303 and ">enabled<" in text(console.get(client_path(), services).body)


def test_settings_and_access_rights_of_a_service(console: Console, built: Built) -> None:
    """updateService changes URL and timeout; addServiceServiceClients grants a right, listed with a revoke
    button; deleteServiceServiceClients revokes it. The stores say the same."""
    services = console.log_in("services")
    add_rest(console, services)
    token = xsrf_of(console.get(service_path(), services).body)
    saved = console.form(service_path() + "/settings",
                         {"_xsrf": token, "url": "http://127.0.0.1:8081/persons", "timeout": "45"}, services)
    assert saved.status == 303
    page = text(console.get(service_path(), services).body)
    assert 'value="http://127.0.0.1:8081/persons"' in page and 'value="45"' in page
    granted = console.form(service_path() + "/rights", {"_xsrf": token, "service_client": CALLER}, services)
    assert granted.status == 303
    page = text(console.get(service_path(), services).body)
    assert CALLER in page and "Revoke" in page
    directory = ServerDirectory(built.directory)
    assert len(access_rights.service_clients(directory, CONSUMER, "getPerson")) == 1
    revoked = console.form(service_path() + "/rights/delete", {"_xsrf": token, "service_client": CALLER}, services)
    assert revoked.status == 303 and access_rights.service_clients(directory, CONSUMER, "getPerson") == ()


def test_refused_settings_and_rights_go_next_to_their_fields(console: Console) -> None:
    """A timeout out of range: the API's invalid_field timeout under the timeout field; a malformed service
    client: its error under the service client field, escaped."""
    services = console.log_in("services")
    add_rest(console, services)
    token = xsrf_of(console.get(service_path(), services).body)
    answer = console.form(service_path() + "/settings",
                          {"_xsrf": token, "url": "http://127.0.0.1:8081/x", "timeout": "5000"}, services)
    assert answer.status == 400 and 'id="settings-timeout-error"' in text(answer.body)
    answer = console.form(service_path() + "/rights", {"_xsrf": token, "service_client": SCRIPT}, services)
    page = text(answer.body)
    assert answer.status == 400 and 'id="grant-service_client-error"' in page
    assert SCRIPT not in page and "&lt;script&gt;" in page


def test_the_configuration_pages_check_the_role(console: Console) -> None:
    """The observer and the auditor get 403 on every Configuration page; the service administrator and the
    system administrator open them; the nav shows Configuration only to them."""
    for name in ("observer", "auditor", "officer"):
        cookies = console.log_in(name)
        assert console.get("/console/configuration", cookies).status == 403
        assert console.get(client_path(), cookies).status == 403
    for name in ("services", "admin"):
        cookies = console.log_in(name)
        assert console.get("/console/configuration", cookies).status == 200
        assert 'href="/console/configuration"' in text(console.get("/console/configuration", cookies).body)
    assert 'href="/console/configuration"' not in text(console.get("/console/overview",
                                                                    console.log_in("observer")).body)


def test_the_api_refuses_a_write_the_role_may_not_do(console: Console) -> None:
    """The system administrator opens the page, but addClientServiceDescription is the service administrator's:
    the API's permission_denied is shown at the top of the form (403) and nothing is added."""
    admin = console.log_in("admin")
    answer = add_rest(console, admin)
    page = text(answer.body)
    assert answer.status == 403 and 'id="add-description-error"' in page and "permission_denied" in page
    assert "getPerson" not in text(console.get(client_path(), admin).body)


def test_configuration_forms_need_the_xsrf_token(console: Console) -> None:
    """Without the session's token every Configuration form is 403 and adds nothing."""
    services = console.log_in("services")
    for fields in ({}, {"_xsrf": "not-the-token"}):
        answer = console.form(client_path() + "/descriptions",
                              {**fields, "url": "http://127.0.0.1:8080/p", "type": "REST",
                               "rest_service_code": "getPerson"}, services)
        assert answer.status == 403 and "XSRF" in text(answer.body)
    assert "getPerson" not in text(console.get(client_path(), services).body)
