"""The security server's management REST API, compatible with X-Road's ``/api/v1`` (issue 16).

Same paths, methods, JSON field names, status codes and error objects as X-Road's OpenAPI definition
(``security-server-openapi.yaml``) for every operation implemented here (``docs/management-api.md`` lists them and
those still missing). Each operation translates JSON to the value types of the service layer
(:mod:`security_server.admin`), which the CLI calls too; the registry's API (issue 17) reuses the HTTP,
authentication and audit pieces of this package with its own operations and roles.

Choices, and why:

* **Routing: plain twisted.web, one leaf Resource and a small path-template router** (:mod:`.routing`), not klein.
  The operations are data (method, X-Road path template, operationId, roles, handler) kept in one table, so that
  the role check, the XSRF check, the audit line and the OpenAPI conformance test see every operation the same
  way; klein's decorators would scatter that table over functions and add werkzeug for what is some 60 lines of
  matching. The proxies' sites are twisted.web already (CONVENTIONS.md: Resource trees for servers), and the
  body limit is theirs (:class:`~security_server.proxy.bounded_request.BoundedSite`).
* **Passwords: ``hashlib.scrypt``** (:mod:`.passwords`): memory-hard like Argon2id, in the standard library
  through OpenSSL, so no compiled dependency on every node.
* **Conformance: openapi-core** validates, in the tests only, every response the tests receive against X-Road's
  OpenAPI file, independently of our code (it has never seen our handlers).

Role-neutral modules, shared with the registry's API (they import only the core, the edge toolkit and the store
layer; a test keeps it so): :mod:`.api` (request, response, operation), :mod:`.routing`, :mod:`.resource` (the
pipeline: limits, authentication, roles, XSRF, audit), :mod:`.credentials` (users and API keys, with the role
names of the API), :mod:`.passwords`, :mod:`.sessions`, :mod:`.throttle` (login attempts), :mod:`.audit`,
:mod:`.errors` (X-Road's error object), :mod:`.ids` (X-Road's identifier formats), :mod:`.config`
(``[management]``), :mod:`.tls` (the certificate), :mod:`.certificates` (X-Road's
``CertificateDetails``).

The security server's: :mod:`.roles`, :mod:`.permissions` (roles per operationId), :mod:`.context` (what its
operations use), :mod:`.operations`, :mod:`.server` (site and service), :mod:`.commands` (the CLI's ``user`` and
``api-key``).
"""
