"""The registry console's pages: members and subsystems, security servers, management requests (approve,
decline), approved certification and time-stamping services, the published configuration.

Roles as X-Road's central server's (:data:`~central_registry.management.permissions.CONSOLE_PERMISSIONS`): every
person's role may look, the registration officer decides requests. Every read and every decision is the registry
API's own operation (:meth:`~security_server.management.resource.ManagementResource.perform`:
``findClients``, ``findSecurityServers``, ``findManagementRequests``, ``approveManagementRequest``,
``revokeManagementRequest``, ``getCertificationServices``, ``getTimestampingServices``, ``getConfigurationParts``,
and the fedbus extension ``getConfigurationGenerations``).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.python.failure import Failure

from central_registry.management.permissions import CONSOLE_PERMISSIONS
from security_server.console_web.api_forms import button_form, describe
from security_server.console_web.base import ConsoleBase, Reply, not_found_page, number, see_other
from security_server.console_web.markup import Markup, NavItem, esc, table
from security_server.management.errors import ApiError
from security_server.management.sessions import Session

ALL: dict[str, tuple[str, ...]] = {"limit": ("1000",)}
"""The registry API's largest page: the console lists everything at once."""
NAV = (
    (NavItem("/console/members", "Members", "members"), "console.registry"),
    (NavItem("/console/servers", "Security servers", "servers"), "console.registry"),
    (NavItem("/console/requests", "Requests", "requests"), "console.registry"),
    (NavItem("/console/trust", "Trust services", "trust"), "console.registry"),
    (NavItem("/console/configuration", "Global configuration", "configuration"), "console.registry"),
)


class RegistryConsole(ConsoleBase):
    """The registry's console pages over its management API."""

    nav = NAV
    permissions = CONSOLE_PERMISSIONS

    def pages(self, request: Any, method: str, session: Session, parts: tuple[str, ...]) -> Any:
        """Members, servers, requests, trust services, configuration."""
        self.allowed(session, "console.registry")
        if len(parts) == 3 and parts[0] == "requests" and parts[2] in ("approve", "decline"):
            self.method(method, "POST")
            self.allowed(session, "console.registry.decide")
            return self._decide(session, number(parts[1]), parts[2] == "approve")
        self.method(method, "GET")
        pages: dict[tuple[str, ...], Callable[[Session], defer.Deferred[Reply]]] = {
            ("members",): self._members,
            ("servers",): self._servers,
            ("requests",): self._requests,
            ("trust",): self._trust,
            ("configuration",): self._configuration,
        }
        shown = pages.get(parts)
        if shown is None:
            raise not_found_page()
        return shown(session)

    def _read(self, session: Session, operation: str, params: dict[str, str] | None = None,
              query: dict[str, tuple[str, ...]] | None = None) -> defer.Deferred[Any]:
        return self.api.perform(session, operation, params, query=query).addCallback(lambda found: found.body)

    def _members(self, session: Session) -> defer.Deferred[Reply]:
        def show(found: Any) -> Reply:
            items = found["items"]
            members = [(c["client_id"]["encoded_id"], c["member_name"], c["client_id"]["member_class"])
                       for c in items if c["client_id"]["type"] == "MEMBER"]
            subsystems = [(c["client_id"]["encoded_id"], c["client_id"]["subsystem_code"], c["member_name"])
                          for c in items if c["client_id"]["type"] == "SUBSYSTEM"]
            body = Markup(table("Members", ("Member", "Name", "Class"), members, empty="none yet")
                          + table("Subsystems", ("Subsystem", "Code", "Member name"), subsystems, empty="none yet"))
            return self.page_reply(200, "Members and subsystems", body, session, "members")

        return self._read(session, "findClients", query=ALL).addCallback(show)

    def _servers(self, session: Session) -> defer.Deferred[Reply]:
        def show(found: Any) -> Reply:
            rows = [(s["server_id"]["encoded_id"], s["server_address"], s["owner_name"]) for s in found["items"]]
            body = table("Security servers", ("Server", "Address", "Owner"), rows, empty="none registered yet")
            return self.page_reply(200, "Security servers", body, session, "servers")

        return self._read(session, "findSecurityServers", query=ALL).addCallback(show)

    def _requests(self, session: Session, message: str = "", status: int = 200) -> defer.Deferred[Reply]:
        decide = self.may(session, "console.registry.decide")

        def show(found: Any) -> Reply:
            rows = []
            for r in found["items"]:
                actions: object = ""
                if decide:
                    ident = str(r["id"])
                    actions = Markup(
                        button_form(f"/console/requests/{ident}/approve", session.xsrf_token, "Approve",
                                    label=f"Approve request {ident}")
                        + " " + button_form(f"/console/requests/{ident}/decline", session.xsrf_token, "Decline",
                                            label=f"Decline request {ident}"))
                rows.append((r["id"], r["type"], r["security_server_id"]["encoded_id"], r.get("address", ""),
                             r.get("client_id", {}).get("encoded_id", ""), r["created_at"], actions))
            error = f'<p class="error" role="alert" id="requests-error">{esc(message)}</p>' if message else ""
            note = "" if decide else '<p class="notice">Only a registration officer approves or declines.</p>'
            body = Markup(error + note + table(
                "Waiting management requests", ("Request", "Type", "Security server", "Address", "Client",
                                                "Submitted", ""), rows, empty="no request is waiting"))
            return self.page_reply(status, "Management requests", body, session, "requests")

        return self._read(session, "findManagementRequests", query={**ALL, "status": ("WAITING",)}).addCallback(show)

    def _decide(self, session: Session, request_id: int, approve: bool) -> defer.Deferred[Reply]:
        operation = "approveManagementRequest" if approve else "revokeManagementRequest"

        def refused(reason: Failure) -> Any:
            error = reason.value
            if not isinstance(error, ApiError):
                return reason
            return self._requests(session, f"Request {request_id}: {describe(error)}", error.status)

        return self.api.perform(session, operation, {"management_request_id": str(request_id)}).addCallbacks(
            lambda _: see_other("/console/requests"), refused)

    def _trust(self, session: Session) -> defer.Deferred[Reply]:
        def tsas(cas: Any) -> defer.Deferred[tuple[Any, Any]]:
            return self._read(session, "getTimestampingServices").addCallback(lambda found: (cas, found))

        def show(pair: tuple[Any, Any]) -> Reply:
            cas, stampers = pair
            body = Markup(
                table("Approved certification services", ("CA", "Valid from", "Valid until"),
                      [(c["name"], c["not_before"], c["not_after"]) for c in cas], empty="none approved yet")
                + table("Approved time-stamping services", ("URL", "Certificate", "Valid until"),
                        [(t["url"], t["certificate"]["subject_distinguished_name"], t["certificate"]["not_after"])
                         for t in stampers], empty="none approved yet"))
            return self.page_reply(200, "Trust services", body, session, "trust")

        return self._read(session, "getCertificationServices").addCallback(tsas).addCallback(show)

    def _configuration(self, session: Session) -> defer.Deferred[Reply]:
        source = {"configuration_type": "INTERNAL"}

        def anchor(parts: Any) -> defer.Deferred[tuple[Any, Any]]:
            def missing(reason: Failure) -> Any:
                if isinstance(reason.value, ApiError) and reason.value.status == 404:
                    return None
                return reason

            return self._read(session, "getAnchor", source).addErrback(missing).addCallback(lambda a: (parts, a))

        def generations(pair: tuple[Any, Any]) -> defer.Deferred[tuple[Any, Any, Any]]:
            return self._read(session, "getConfigurationGenerations", source).addCallback(
                lambda kept: (*pair, kept))

        def show(found: tuple[Any, Any, Any]) -> Reply:
            parts, anchored, kept = found
            summary = (f'<p>The internal configuration\'s anchor: SHA hash <code>{esc(anchored["anchor"]["hash"])}</code>, '
                       f'made {esc(anchored["anchor"]["created_at"])}.</p>') if anchored else (
                '<p class="notice">No configuration is published by a running registry here (no anchor).</p>')
            rows = [(p["content_identifier"], p["file_name"], p["version"], "optional" if p["optional"] else "",
                     p["file_updated_at"]) for p in parts]
            kept_rows = [
                (g["generation"], g["published_at"], "newest (signed directory)" if g["newest"] else "kept",
                 part["content_identifier"], part["file_name"], Markup(f'<code>{esc(part["hash"])}</code>'))
                for g in kept for part in g["parts"]
            ]
            body = Markup(summary + table(
                "The newest published generation's parts", ("Content", "File", "Version", "", "Updated"), rows,
                empty="nothing published yet")
                + '<h2 id="h-generations">Generations kept</h2>'
                '<p>The registry keeps the files of its last generations for security servers that read the '
                'previous signed directory; only the newest is listed in the signed directory. Each part\'s hash '
                'is the SHA-512 (base64) its signed directory listed.</p>'
                + table("Generations kept", ("Generation", "Published", "", "Content", "File", "SHA-512 hash"),
                        kept_rows, empty="nothing published yet"))
            return self.page_reply(200, "Global configuration", body, session, "configuration")

        return (self._read(session, "getConfigurationParts", source).addCallback(anchor).addCallback(generations)
                .addCallback(show))
