"""``/clients``: the members and subsystems of the federation, searched, sorted and paged (X-Road's findClients).

X-Road's file requires the page in ``items`` but describes it as ``clients``: the answer carries the same list
under both names.
"""

from __future__ import annotations

from typing import Any

from central_registry.admin import global_groups as admin_groups
from central_registry.admin import members as admin
from central_registry.admin import security_servers as admin_servers
from central_registry.management.context import RegistryContext
from central_registry.management.operations.common import PREFIX, client_json, paged, parse_server_id
from central_registry.management.permissions import roles_for
from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.errors import bad_request
from security_server.management.ids import client_id_text


def find_clients(context: RegistryContext, request: ApiRequest) -> ApiResponse:
    """GET /clients: ``q`` (name, class, code, subsystem), ``name``, ``instance``, ``member_class``,
    ``member_code``, ``subsystem_code`` (each contained, case-insensitive), ``client_type``, ``security_server``
    (hosted there), ``excluding_group`` (not in that global group); sorted and paged."""
    with context.store() as store:
        members = admin.members(store)
        server_text = request.query_value("security_server")
        hosted = None
        if server_text:
            hosted = set(admin_servers.security_server(store, parse_server_id(server_text)).clients)
        group_code = request.query_value("excluding_group")
        excluded = set(admin_groups.global_group(store, group_code).members) if group_code else set()
    rows: list[dict[str, Any]] = []
    for member in members:
        rows.append(client_json(member.id, member.name))
        rows.extend(client_json(member.id.subsystem(code), member.name) for code in member.subsystems)
    client_type = request.query_value("client_type")
    if client_type is not None and client_type not in ("MEMBER", "SUBSYSTEM"):
        raise bad_request("invalid_parameter", "client_type")

    def keep(row: dict[str, Any]) -> bool:
        cid = row["client_id"]
        fields = {"name": row["member_name"], "instance": cid["instance_id"], "member_class": cid["member_class"],
                  "member_code": cid["member_code"], "subsystem_code": cid.get("subsystem_code", "")}
        for name, value in fields.items():
            wanted = request.query_value(name)
            if wanted and wanted.lower() not in value.lower():
                return False
        text = (request.query_value("q") or "").lower()
        if text and not any(text in fields[k].lower() for k in ("name", "member_class", "member_code", "subsystem_code")):
            return False
        if client_type is not None and cid["type"] != client_type:
            return False
        encoded = cid["encoded_id"]
        if hosted is not None and encoded not in {client_id_text(c) for c in hosted}:
            return False
        return encoded not in {client_id_text(c) for c in excluded}

    rows = [r for r in rows if keep(r)]
    keys = {
        "id": lambda r: r["client_id"]["encoded_id"],
        "member_name": lambda r: r["member_name"],
        "xroad_id.instance_id": lambda r: r["client_id"]["instance_id"],
        "xroad_id.member_class": lambda r: r["client_id"]["member_class"],
        "xroad_id.member_code": lambda r: r["client_id"]["member_code"],
        "client_type": lambda r: r["client_id"]["type"],
    }
    page, metadata = paged(request, rows, keys, "id")
    return ApiResponse(200, {"items": page, "clients": page, "paging_metadata": metadata})


def operations() -> list[Operation]:
    """The operations of this area."""
    return [Operation("GET", f"{PREFIX}/clients", "findClients", roles_for("findClients"), find_clients)]
