"""The registry's console: browser pages on the registry's management API (``https://HOST:4100/console/``).

Built on the security server's console (security_server/console_web: login, session, XSRF, markup, forms); every
page reads and every button changes through the registry API's own operations. See docs/console.md.
"""
