"""The Configuration pages (X-Road's service administrator): clients, a client's service descriptions, a
service's settings and access rights.

Every page reads, and every form changes, through the management API's own operations
(:meth:`~security_server.management.resource.ManagementResource.perform`: ``findClients``,
``getClientServiceDescriptions``, ``addClientServiceDescription``, ``enableServiceDescription``, ``updateService``,
``addServiceServiceClients``...): the same roles, service layer and audit lines as ``/api/v1``. A refusal is
shown next to the field it concerns (:mod:`.api_forms`).
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

from twisted.internet import defer

from security_server.console_web.api_forms import (
    FormState,
    button_form,
    post_form,
    shown_again,
    select_input,
    text_input,
)
from security_server.console_web.base import ConsoleBase, Reply, arg, not_found_page, see_other
from security_server.console_web.markup import Markup, esc, table
from security_server.management.sessions import Session

ROOT = "/console/configuration"
DESCRIPTION_TYPES = (("REST", "REST (a service's base URL)"), ("OPENAPI3", "OpenAPI 3 (JSON description URL)"),
                     ("WSDL", "WSDL (description URL)"))
ADD_FIELDS: Mapping[str, frozenset[str]] = {
    "url": frozenset({"invalid_url", "wsdl_download_failed", "openapi_download_failed", "invalid_wsdl",
                      "invalid_openapi", "service_description_fetch_unavailable"}),
    "type": frozenset(),
    "rest_service_code": frozenset({"service_already_exists"}),
}
SETTINGS_FIELDS: Mapping[str, frozenset[str]] = {"url": frozenset({"invalid_url"}), "timeout": frozenset()}
RIGHT_FIELDS: Mapping[str, frozenset[str]] = {
    "service_client": frozenset({"invalid_service_client_id", "invalid_client_id", "invalid_service_client_type",
                                 "duplicate_accessright", "client_not_found", "local_group_not_found"}),
}


def path(*segments: str) -> str:
    """A Configuration page's path, each segment (an identifier) percent-encoded."""
    return "/".join((ROOT, *(quote(s, safe="") for s in segments)))


def link(href: str, text: object) -> Markup:
    """A link."""
    return Markup(f'<a href="{esc(href)}">{esc(text)}</a>')


def answer(console: ConsoleBase, request: Any, method: str, session: Session, parts: tuple[str, ...]) -> Any:
    """The page under ``/console/configuration`` (the role is checked; a POST's XSRF token too)."""
    if parts == ():
        console.method(method, "GET")
        return clients_page(console, session)
    if len(parts) == 2 and parts[0] == "clients":
        console.method(method, "GET")
        return client_page(console, session, parts[1])
    if len(parts) == 3 and parts[0] == "clients" and parts[2] == "descriptions":
        console.method(method, "POST")
        return add_description(console, request, session, parts[1])
    if len(parts) == 3 and parts[0] == "descriptions" and parts[2] in ("enable", "disable"):
        console.method(method, "POST")
        return switch_description(console, request, session, parts[1], parts[2] == "enable")
    if len(parts) == 2 and parts[0] == "services":
        console.method(method, "GET")
        return service_page(console, session, parts[1])
    if len(parts) == 3 and parts[0] == "services" and parts[2] == "settings":
        console.method(method, "POST")
        return update_settings(console, request, session, parts[1])
    if len(parts) in (3, 4) and parts[0] == "services" and parts[2] == "rights" and parts[3:] in ((), ("delete",)):
        console.method(method, "POST")
        return change_right(console, request, session, parts[1], grant=len(parts) == 3)
    raise not_found_page()



# --- clients ------------------------------------------------------------------------------------------------


def clients_page(console: ConsoleBase, session: Session) -> defer.Deferred[Reply]:
    """The hosted clients (``findClients``)."""

    def show(found: Any) -> Reply:
        rows = [
            (link(path("clients", c["id"]), c["id"]), c.get("member_name", ""), c["status"],
             "owner" if c.get("owner") else "")
            for c in found.body
        ]
        body = Markup(
            '<p>The members and subsystems this server hosts. Open a client to publish its services and grant '
            'access rights.</p>' + table("Clients", ("Client", "Member name", "Status", ""), rows,
                                          empty="this server hosts no client yet")
        )
        return console.page_reply(200, "Configuration", body, session, "configuration")

    return console.api.perform(session, "findClients").addCallback(show)


def client_page(console: ConsoleBase, session: Session, client: str, state: FormState = FormState(),
                status: int = 200) -> defer.Deferred[Reply]:
    """A client's service descriptions and their services (``getClient``, ``getClientServiceDescriptions``),
    with the form to add one by URL."""
    api = console.api

    def descriptions(found: Any) -> defer.Deferred[tuple[Any, Any]]:
        return api.perform(session, "getClientServiceDescriptions", {"id": client}).addCallback(
            lambda listed: (found.body, listed.body))

    def show(pair: tuple[Any, Any]) -> Reply:
        info, listed = pair
        rows = []
        for d in listed:
            services = Markup(", ".join(link(path("services", s["id"]), s["full_service_code"]) for s in d["services"]))
            state_text = "disabled" + (f" ({d['disabled_notice']})" if d.get("disabled_notice") else "") \
                if d["disabled"] else "enabled"
            action = "enable" if d["disabled"] else "disable"
            switch = button_form(path("descriptions", d["id"], action), session.xsrf_token, action.capitalize(),
                                 hidden={"client": client}, label=f"{action.capitalize()} {d['url']}")
            rows.append((d["url"], d["type"], state_text, services, switch))
        form = post_form(
            "add-description", path("clients", client, "descriptions"), session.xsrf_token,
            [
                text_input("add-description", "url", "URL", state, required=True,
                           hint="The service's base URL (REST), or where its OpenAPI 3 or WSDL description is read."),
                select_input("add-description", "type", "Type", DESCRIPTION_TYPES, state),
                text_input("add-description", "rest_service_code", "Service code", state,
                           hint="For REST and OpenAPI 3: the code clients call the service by."),
            ],
            "Add the description", state, label="Add a service description",
        )
        body = Markup(
            f'<p>Client <strong>{esc(info["id"])}</strong>, {esc(info["status"])}. '
            f'{link(ROOT, "All clients")}</p>'
            + table("Service descriptions", ("URL", "Type", "State", "Services", ""), rows,
                    empty="none yet")
            + "<h2>Add a service description</h2>" + form
        )
        return console.page_reply(status, f"Client {info['id']}", body, session, "configuration")

    return api.perform(session, "getClient", {"id": client}).addCallback(descriptions).addCallback(show)


def add_description(console: ConsoleBase, request: Any, session: Session, client: str) -> defer.Deferred[Reply]:
    """``addClientServiceDescription`` with the form's URL, type and service code; back to the client's page."""
    given = {name: arg(request, name).strip() for name in ADD_FIELDS}
    body: dict[str, Any] = {"url": given["url"], "type": given["type"]}
    if given["rest_service_code"] or given["type"] != "WSDL":
        body["rest_service_code"] = given["rest_service_code"] or None
    body = {k: v for k, v in body.items() if v is not None}

    def show(state: FormState, status: int) -> defer.Deferred[Reply]:
        return client_page(console, session, client, state, status)

    return console.api.perform(session, "addClientServiceDescription", {"id": client}, body=body).addCallbacks(
        lambda _: see_other(path("clients", client)), shown_again(show, given, ADD_FIELDS))


def switch_description(console: ConsoleBase, request: Any, session: Session, description: str,
                       enable: bool) -> defer.Deferred[Reply]:
    """``enableServiceDescription`` or ``disableServiceDescription``; back to the client's page."""
    client = arg(request, "client")
    operation = "enableServiceDescription" if enable else "disableServiceDescription"

    def show(state: FormState, status: int) -> defer.Deferred[Reply]:
        return client_page(console, session, client, state, status)

    return console.api.perform(session, operation, {"id": description}).addCallbacks(
        lambda _: see_other(path("clients", client)), shown_again(show, {}, {}))


# --- a service ----------------------------------------------------------------------------------------------


def service_page(console: ConsoleBase, session: Session, service: str, settings: FormState = FormState(),
                 rights: FormState = FormState(), status: int = 200) -> defer.Deferred[Reply]:
    """A service's URL and timeout (``getService``) and who may call it (``getServiceServiceClients``), with the
    forms to change them."""
    api = console.api
    client = service.rsplit(":", 1)[0]

    def subjects(found: Any) -> defer.Deferred[tuple[Any, Any]]:
        return api.perform(session, "getServiceServiceClients", {"id": service}).addCallback(
            lambda listed: (found.body, listed.body))

    def show(pair: tuple[Any, Any]) -> Reply:
        info, listed = pair
        settings_form = post_form(
            "settings", path("services", service, "settings"), session.xsrf_token,
            [
                text_input("settings", "url", "Service URL", settings, value=info["url"], required=True),
                text_input("settings", "timeout", "Timeout (seconds)", settings, value=str(info["timeout"]),
                           required=True, hint="0 to 1000 seconds."),
            ],
            "Save the settings", settings, label="Service settings",
        )
        rows = [
            (s["id"], s["service_client_type"],
             button_form(path("services", service, "rights", "delete"), session.xsrf_token, "Revoke",
                         hidden={"service_client": s["id"]}, label=f"Revoke the right of {s['id']}"))
            for s in listed
        ]
        grant_form = post_form(
            "grant", path("services", service, "rights"), session.xsrf_token,
            [text_input("grant", "service_client", "Service client", rights, required=True,
                        hint="A subsystem (INSTANCE:CLASS:CODE:SUBSYSTEM), a global group (INSTANCE:CODE), or a "
                             "local group of this client.")],
            "Grant the right", rights, label="Grant an access right",
        )
        body = Markup(
            f'<p>{link(path("clients", client), "Back to the client " + client)}</p>'
            "<h2>Settings</h2>" + settings_form
            + "<h2>Access rights</h2>"
            + table("Service clients with a right to this service", ("Service client", "Type", ""), rows,
                    empty="no service client may call it yet")
            + grant_form
        )
        return console.page_reply(status, f"Service {info['id']}", body, session, "configuration")

    return api.perform(session, "getService", {"id": service}).addCallback(subjects).addCallback(show)


def update_settings(console: ConsoleBase, request: Any, session: Session, service: str) -> defer.Deferred[Reply]:
    """``updateService`` with the form's URL and timeout; back to the service's page."""
    given = {name: arg(request, name).strip() for name in SETTINGS_FIELDS}
    timeout: Any = int(given["timeout"]) if given["timeout"].isdigit() and len(given["timeout"]) < 10 else given["timeout"]

    def show(state: FormState, status: int) -> defer.Deferred[Reply]:
        return service_page(console, session, service, settings=state, status=status)

    def update(found: Any) -> Any:
        # The form has no TLS setting: an https service keeps its ssl_auth (a fixed value would change it); an
        # http one moving to https gets X-Road's default, checked.
        current = found.body
        keep = str(current.get("url", "")).lower().startswith("https:")
        body = {"url": given["url"], "timeout": timeout, "ssl_auth": bool(current.get("ssl_auth", True)) if keep else True}
        return console.api.perform(session, "updateService", {"id": service}, body=body)

    return console.api.perform(session, "getService", {"id": service}).addCallback(update).addCallbacks(
        lambda _: see_other(path("services", service)), shown_again(show, given, SETTINGS_FIELDS))


def change_right(console: ConsoleBase, request: Any, session: Session, service: str,
                 grant: bool) -> defer.Deferred[Reply]:
    """``addServiceServiceClients`` or ``deleteServiceServiceClients`` for one service client."""
    given = {"service_client": arg(request, "service_client").strip()}
    operation = "addServiceServiceClients" if grant else "deleteServiceServiceClients"
    body = {"items": [{"id": given["service_client"]}]}

    def show(state: FormState, status: int) -> defer.Deferred[Reply]:
        return service_page(console, session, service, rights=state, status=status)

    return console.api.perform(session, operation, {"id": service}, body=body).addCallbacks(
        lambda _: see_other(path("services", service)), shown_again(show, given, RIGHT_FIELDS))
