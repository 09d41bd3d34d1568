"""Logging in to the soft token, out of it, and setting or changing its PIN (UG-SS §3.4, §5.1).

The login holds for the process that makes it (security_server/signer/softtoken_pin.py): through the management
API that is the running server itself (the API runs in its process, worker 0), so its proxies sign again at once.
A PKCS#11 token logs in with the PIN of its ``[pkcs11:NAME]`` section, not through these functions. Each change is
announced (``LOGINS.announce``): with ``[server] workers`` above 1 it reaches every worker (security_server/workers.py).
"""

from __future__ import annotations

from security_server.admin.errors import ActionNotPossible
from security_server.admin.keys import TokenView, get_token
from security_server.admin.server_dir import ServerDirectory
from security_server.core.config import LayeredConfig
from security_server.serverconf.store import ServerConfError
from security_server.signer.softtoken import PinIncorrect, SoftToken
from security_server.signer.softtoken_pin import LOGINS, WeakPin


class TokenPinIncorrect(ServerConfError):
    """The PIN given is not the token's (X-Road ``pin_incorrect``, 400)."""

    http_status = 400
    api_code = "pin_incorrect"


class TokenWeakPin(ServerConfError):
    """A new PIN that cannot be used: empty or longer than 255 bytes (X-Road ``weak_pin``, 400)."""

    http_status = 400
    api_code = "weak_pin"


class TokenActionNotPossible(ActionNotPossible):
    """Log in to a token without a PIN, out of one, or a PIN change on a PKCS#11 token."""


def _soft(server_dir: ServerDirectory, name: str, config: LayeredConfig | None, what: str) -> SoftToken:
    get_token(server_dir, name, config)  # TokenNotFound for an unknown name
    if name != SoftToken.name:
        raise TokenActionNotPossible(f"{what} token {name}: a PKCS#11 token's PIN is in its [pkcs11:{name}] section")
    return server_dir.soft_token()


def login(server_dir: ServerDirectory, name: str, pin: str, config: LayeredConfig | None = None) -> TokenView:
    """Log in to the soft token with ``pin``; answers the token."""
    token = _soft(server_dir, name, config, "cannot log in to")
    if not token.has_pin():
        raise TokenActionNotPossible("the soft token has no PIN (set one first): it is always logged in")
    try:
        token.login(pin)
    except PinIncorrect as err:
        raise TokenPinIncorrect("the PIN is incorrect") from err
    LOGINS.announce(token.directory)
    return get_token(server_dir, name, config)


def logout(server_dir: ServerDirectory, name: str, config: LayeredConfig | None = None) -> TokenView:
    """Log out of the soft token (its keys are forgotten: signing stops until the next login); answers the token."""
    token = _soft(server_dir, name, config, "cannot log out of")
    if not token.has_pin():
        raise TokenActionNotPossible("the soft token has no PIN (set one first): it cannot be logged out")
    token.logout()
    LOGINS.announce(token.directory)
    return get_token(server_dir, name, config)


def set_pin(
    server_dir: ServerDirectory, name: str, new_pin: str, old_pin: str | None, config: LayeredConfig | None = None
) -> None:
    """Set the soft token's first PIN (``old_pin`` None) or change it; every key is re-encrypted under the new one."""
    token = _soft(server_dir, name, config, "cannot change the PIN of")
    if token.has_pin() and old_pin is None:
        raise TokenPinIncorrect("the old PIN is needed to change the PIN")
    try:
        token.set_pin(new_pin, old_pin if token.has_pin() else None)
    except PinIncorrect as err:
        raise TokenPinIncorrect("the old PIN is incorrect") from err
    except WeakPin as err:
        raise TokenWeakPin(err.message) from err
    LOGINS.announce(token.directory)
