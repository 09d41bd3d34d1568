"""The registry's management REST API, compatible with X-Road's central server ``/api/v1`` (issue 17).

Same paths, methods, JSON field names, status codes and error objects as X-Road's OpenAPI definition
(``central-server-openapi.yaml``) for every operation implemented here (``docs/management-api.md`` lists them and
those still missing). It is built on the role-neutral pieces of the security server's API
(:mod:`security_server.management`: request and response types, the router, the resource with authentication,
roles, XSRF and audit, the credential store, sessions, the login throttle, X-Road's error object and identifier
formats, ``[management]`` and the TLS certificate); what is the registry's own is here: :mod:`.roles` (X-Road's
central-server roles), :mod:`.permissions` (roles per operationId), :mod:`.context` (what its operations use),
:mod:`.operations` (JSON to :mod:`central_registry.admin` and back), :mod:`.server` (site and service) and
:mod:`.commands` (``fedbus registry user`` and ``api-key``).
"""
