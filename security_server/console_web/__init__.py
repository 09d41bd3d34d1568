"""The console: the management API's browser pages for operators and auditors, under ``/console/``.

Served by the management API's HTTPS server with its form login, session cookie, XSRF token and roles
(security_server/management); plain server-rendered HTML (every value escaped in :mod:`.markup`), no script: the
traffic chart is SVG drawn on the server (:mod:`.chart`). See docs/console.md for each page and the roles.
"""
