"""``/clients/{id}/service-descriptions`` and ``/service-descriptions/{id}``: add, read, change, refresh, enable,
disable, delete.

A description's id is its first service's id (:mod:`security_server.admin.service_descriptions`); its ``url``
is the URL it was read from (for a plain REST description, and one stored before fedbus kept that URL, the
provider URL of its service), ``refreshed_at`` when it was last read (else the epoch). Adding one by URL fetches
it (WSDL, OpenAPI 3 JSON) and splits it into services as X-Road does; refreshing reads that URL again, changing
it (X-Road's ``updateServiceDescription``) reads a new one.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from security_server.admin import access_rights, service_descriptions
from security_server.admin.service_descriptions import DescriptionChanges, ServiceDescription
from security_server.core.errors import NetworkError
from security_server.management.api import (
    ApiRequest,
    ApiResponse,
    Operation,
    bool_field,
    no_content,
    string_field,
)
from security_server.management.context import OperationContext
from security_server.management.errors import ApiError, bad_request
from security_server.management.ids import client_id_text, parse_client_id, parse_service_id, service_id_text
from security_server.management.operations.common import EPOCH, PREFIX, xroad_time
from security_server.management.operations.services import service_json
from security_server.management.permissions import roles_for
from security_server.serverconf.store import MAX_TEXT_LENGTH, ServerConfError, ServiceKind, check_service_url


def _type(description: ServiceDescription) -> str:
    if description.kind is ServiceKind.SOAP:
        return "WSDL"
    return "OPENAPI3" if description.has_document else "REST"


def _services(context: OperationContext, description: ServiceDescription) -> list[dict[str, Any]]:
    return [
        service_json(s, len(access_rights.service_clients(context.server_dir, s.id.client, s.id.service_code)))
        for s in description.services
    ]


def delete_service_description(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``DELETE /service-descriptions/{id}``: the description, its services and the access rights to them."""
    service_descriptions.delete_description(context.server_dir, parse_service_id(request.params["id"]))
    return no_content()


def description_json(context: OperationContext, description: ServiceDescription) -> dict[str, Any]:
    """X-Road's ``ServiceDescription``."""
    return {
        "id": service_id_text(description.id),
        "url": description.source_url or description.services[0].url,
        "type": _type(description),
        "disabled": description.disabled,
        "disabled_notice": description.disabled_notice,
        "refreshed_at": EPOCH if description.refreshed_at is None else xroad_time(description.refreshed_at),
        "services": _services(context, description),
        "client_id": client_id_text(description.client),
    }


def get_client_service_descriptions(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /clients/{id}/service-descriptions``."""
    client = parse_client_id(request.params["id"])
    found = service_descriptions.client_descriptions(context.server_dir, client)
    return ApiResponse(200, [description_json(context, d) for d in found])


def get_service_description(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /service-descriptions/{id}``."""
    found = service_descriptions.get_description(context.server_dir, parse_service_id(request.params["id"]))
    return ApiResponse(200, description_json(context, found))


def get_service_description_services(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /service-descriptions/{id}/services``."""
    found = service_descriptions.get_description(context.server_dir, parse_service_id(request.params["id"]))
    return ApiResponse(200, _services(context, found))


def disable_service_description(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /service-descriptions/{id}/disable``: ``ServiceDescriptionDisabledNotice``."""
    description_id = parse_service_id(request.params["id"])
    notice = ""
    if request.body:
        data = request.json_object(frozenset({"disabled_notice"}))
        value = data.get("disabled_notice", "")
        if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
            raise bad_request("invalid_field", "disabled_notice")
        notice = value
    service_descriptions.set_enabled(context.server_dir, description_id, False, notice)
    return no_content()


def enable_service_description(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``PUT /service-descriptions/{id}/enable``."""
    service_descriptions.set_enabled(context.server_dir, parse_service_id(request.params["id"]), True)
    return no_content()


_ADD_FIELDS = frozenset({"url", "type", "rest_service_code", "ignore_warnings"})


def add_client_service_description(context: OperationContext, request: ApiRequest) -> Deferred[ApiResponse]:
    """``POST /clients/{id}/service-descriptions``: ``ServiceDescriptionAdd``; runs on the reactor thread (the
    WSDL or OpenAPI document is fetched there) and stores in a worker thread."""
    client = parse_client_id(request.params["id"])
    data = request.json_object(_ADD_FIELDS, frozenset({"url", "type"}))
    url = string_field(data, "url")
    bool_field(data, "ignore_warnings")
    kind = data["type"]
    if kind not in ("WSDL", "OPENAPI3", "REST"):
        raise bad_request("invalid_field", "type")
    code = string_field(data, "rest_service_code", required=kind != "WSDL")
    if kind == "WSDL" and code is not None:
        raise bad_request("invalid_field", "rest_service_code")
    assert url is not None
    try:
        check_service_url(url)
    except ServerConfError as err:
        raise bad_request("invalid_url", err.message) from err
    assert context.blocking is not None
    blocking = context.blocking

    def created(description: ServiceDescription) -> Deferred[ApiResponse]:
        return blocking(lambda: ApiResponse(201, description_json(context, description)))

    if kind == "REST":
        return blocking(lambda: service_descriptions.add_rest(context.server_dir, client, str(code), url)).addCallback(created)
    if context.fetch is None:
        raise ApiError(404, "service_description_fetch_unavailable")

    def store(document: bytes) -> Deferred[ServiceDescription]:
        read_at = context.now()
        if kind == "WSDL":
            return blocking(lambda: service_descriptions.add_wsdl(
                context.server_dir, client, document, source_url=url, read_at=read_at))
        service_url = service_descriptions.openapi_service_url(document, url)
        return blocking(lambda: service_descriptions.add_rest(
            context.server_dir, client, str(code), service_url, document, source_url=url, read_at=read_at))

    def unreachable(reason: Failure) -> Failure:
        if isinstance(reason.value, NetworkError):
            raise ApiError(400, "wsdl_download_failed" if kind == "WSDL" else "openapi_download_failed", url)
        return reason

    return context.fetch(url).addErrback(unreachable).addCallback(store).addCallback(created)


def _warnings(changes: DescriptionChanges) -> ApiResponse:
    """X-Road's warnings response: the codes of the services a refresh would add and remove."""
    found = []
    if changes.added:
        found.append({"code": "adding_services", "metadata": [service_id_text(i) for i in changes.added]})
    if changes.removed:
        found.append({"code": "deleting_services", "metadata": [service_id_text(i) for i in changes.removed]})
    return ApiResponse(400, {"status": 400, "error": {"code": "warnings_detected"}, "warnings": found})


def refresh_service_description(context: OperationContext, request: ApiRequest) -> Deferred[ApiResponse]:
    """``PUT /service-descriptions/{id}/refresh``: ``IgnoreWarnings``; the description read again from its URL
    (on the reactor thread), then stored in a worker thread. 200 with the ``ServiceDescription``."""
    description_id = parse_service_id(request.params["id"])
    ignore = bool_field(request.json_object(frozenset({"ignore_warnings"})), "ignore_warnings") if request.body else False
    assert context.blocking is not None
    blocking = context.blocking

    def source() -> str:
        found = service_descriptions.get_description(context.server_dir, description_id)
        if not found.source_url or (found.kind is ServiceKind.REST and not found.has_document):
            raise ApiError(400, "action_not_possible", "the description was not added by URL")
        return found.source_url

    def fetch(url: str) -> Deferred[bytes]:
        if context.fetch is None:
            raise ApiError(404, "service_description_fetch_unavailable")
        kind = "wsdl" if service_descriptions.get_description(context.server_dir, description_id).kind is ServiceKind.SOAP else "openapi"

        def unreachable(reason: Failure) -> Failure:
            if isinstance(reason.value, NetworkError):
                raise ApiError(400, f"{kind}_download_failed", url)
            return reason

        return context.fetch(url).addErrback(unreachable)

    def store(document: bytes) -> Deferred[ApiResponse]:
        def work() -> ApiResponse:
            try:
                refreshed = service_descriptions.refresh_description(
                    context.server_dir, description_id, document, context.now(), ignore_warnings=ignore)
            except DescriptionChanges as changes:
                return _warnings(changes)
            return ApiResponse(200, description_json(context, refreshed))

        return blocking(work)

    return blocking(source).addCallback(fetch).addCallback(store)


_UPDATE_FIELDS = frozenset({"url", "type", "rest_service_code", "new_rest_service_code", "ignore_warnings"})


def update_service_description(context: OperationContext, request: ApiRequest) -> Deferred[ApiResponse]:
    """``PATCH /service-descriptions/{id}``: X-Road's ``ServiceDescriptionUpdate``. ``type`` must be the
    description's (400 ``wrong_servicedescription_type``); a REST one gets a new URL for its service, an OpenAPI 3
    one is read from the new URL (its endpoints follow it), both may get ``new_rest_service_code`` (rights and
    endpoints follow); a WSDL one is read from the new URL as a refresh from there (X-Road's warnings unless
    ``ignore_warnings``). 409 ``url_already_exists``/``wsdl_exists`` when another description of the client has
    the URL, ``service_code_already_exists`` for a code the client has. Runs on the reactor thread (it fetches)."""
    description_id = parse_service_id(request.params["id"])
    data = request.json_object(_UPDATE_FIELDS, frozenset({"url", "type"}))
    url = str(string_field(data, "url"))
    ignore = bool_field(data, "ignore_warnings")
    kind = data["type"]
    if kind not in ("WSDL", "OPENAPI3", "REST"):
        raise bad_request("invalid_field", "type")
    code = string_field(data, "rest_service_code", required=False)
    new_code = string_field(data, "new_rest_service_code", required=False)
    if kind != "WSDL" and code is None:
        raise bad_request("missing_parameter", "rest_service_code")
    try:
        check_service_url(url)
    except ServerConfError as err:
        raise bad_request("invalid_url", err.message) from err
    assert context.blocking is not None
    blocking = context.blocking

    def answer(description: ServiceDescription) -> ApiResponse:
        return ApiResponse(200, description_json(context, description))

    if kind == "REST":
        return blocking(lambda: answer(service_descriptions.update_rest(
            context.server_dir, description_id, url, str(code), new_code)))
    if context.fetch is None:
        raise ApiError(404, "service_description_fetch_unavailable")
    fetch = context.fetch

    def unreachable(reason: Failure) -> Failure:
        if isinstance(reason.value, NetworkError):
            raise ApiError(400, "wsdl_download_failed" if kind == "WSDL" else "openapi_download_failed", url)
        return reason

    def store(document: bytes) -> Deferred[ApiResponse]:
        def work() -> ApiResponse:
            read_at = context.now()
            try:
                if kind == "WSDL":
                    return answer(service_descriptions.update_wsdl(
                        context.server_dir, description_id, url, document, read_at, ignore_warnings=ignore))
                return answer(service_descriptions.update_openapi(
                    context.server_dir, description_id, url, str(code), document, read_at, new_code))
            except DescriptionChanges as changes:
                return _warnings(changes)

        return blocking(work)

    checked = blocking(lambda: service_descriptions.check_update(
        context.server_dir, description_id, str(kind), url, code, new_code))
    return checked.addCallback(lambda _: fetch(url).addErrback(unreachable)).addCallback(store)


_SD = f"{PREFIX}/service-descriptions/{{id}}"
OPERATIONS = (
    Operation("GET", f"{PREFIX}/clients/{{id}}/service-descriptions", "getClientServiceDescriptions",
              roles_for("getClientServiceDescriptions"), get_client_service_descriptions),
    Operation("POST", f"{PREFIX}/clients/{{id}}/service-descriptions", "addClientServiceDescription",
              roles_for("addClientServiceDescription"), add_client_service_description, in_reactor=True),
    Operation("GET", _SD, "getServiceDescription", roles_for("getServiceDescription"), get_service_description),
    Operation("DELETE", _SD, "deleteServiceDescription", roles_for("deleteServiceDescription"),
              delete_service_description),
    Operation("PATCH", _SD, "updateServiceDescription", roles_for("updateServiceDescription"),
              update_service_description, in_reactor=True),
    Operation("GET", f"{_SD}/services", "getServiceDescriptionServices", roles_for("getServiceDescriptionServices"),
              get_service_description_services),
    Operation("PUT", f"{_SD}/disable", "disableServiceDescription", roles_for("disableServiceDescription"),
              disable_service_description),
    Operation("PUT", f"{_SD}/enable", "enableServiceDescription", roles_for("enableServiceDescription"),
              enable_service_description),
    Operation("PUT", f"{_SD}/refresh", "refreshServiceDescription", roles_for("refreshServiceDescription"),
              refresh_service_description, in_reactor=True),
)
