"""What can be done to a key or a certificate now (X-Road's ``PossibleActionsRuleEngine``, ``possible-actions``).

The rules are X-Road's, narrowed to what fedbus implements: a key is deleted, and a request made for it, only while
its token is logged in; an auth key only lives on the soft token; renaming, deleting, activating and disabling are
done on the soft token only (a PKCS#11 token's keys are managed with the HSM's tools); a registered authentication
certificate (registered or being registered) cannot be deleted (it is unregistered first); a saved one can be
registered. The certificate's state is :func:`security_server.admin.keys.certificate_status`.
The API refuses an action not in the list with ``action_not_possible`` (X-Road: 409; 400 where its OpenAPI file
documents no 409, docs/compatibility.md).
"""

from __future__ import annotations

import enum
from security_server.admin.keys import TokenKey, TokenView
from security_server.core.auth_cert_status import CertStatus, can_register, can_unregister
from security_server.signer.softtoken import KeyKind, SoftToken
from security_server.signer.token import TokenStatus


class PossibleAction(enum.StrEnum):
    """X-Road's ``PossibleAction`` values fedbus can answer."""

    DELETE = "DELETE"
    ACTIVATE = "ACTIVATE"
    DISABLE = "DISABLE"
    REGISTER = "REGISTER"
    UNREGISTER = "UNREGISTER"
    EDIT_FRIENDLY_NAME = "EDIT_FRIENDLY_NAME"
    GENERATE_AUTH_CSR = "GENERATE_AUTH_CSR"
    GENERATE_SIGN_CSR = "GENERATE_SIGN_CSR"
    GENERATE_KEY = "GENERATE_KEY"
    LOGIN = "LOGIN"
    LOGOUT = "LOGOUT"
    TOKEN_CHANGE_PIN = "TOKEN_CHANGE_PIN"


def token_actions(token: TokenView) -> tuple[PossibleAction, ...]:
    """What can be done to ``token`` now (X-Road: an active token generates keys, logs out and changes its PIN;
    an available one logs in). A PKCS#11 token logs in and out by its configuration, and a soft token without a
    PIN cannot log out, only take a PIN."""
    soft = token.name == SoftToken.name
    if token.status is TokenStatus.LOGGED_IN:
        actions = [PossibleAction.GENERATE_KEY]
        if soft and token.has_pin:
            actions.append(PossibleAction.LOGOUT)
        if soft:
            actions.append(PossibleAction.TOKEN_CHANGE_PIN)
        return tuple(actions)
    if soft and token.status is TokenStatus.LOGGED_OUT:
        return (PossibleAction.LOGIN,)
    return ()


def key_actions(token: TokenView, key: TokenKey) -> tuple[PossibleAction, ...]:
    """What can be done to ``key`` on ``token`` now, in X-Road's order."""
    active = token.status is TokenStatus.LOGGED_IN
    soft = token.name == SoftToken.name
    actions = []
    if active and soft:
        actions.append(PossibleAction.DELETE)
    if active and key.info.cert is None:
        if key.info.kind is KeyKind.AUTH and soft:
            actions.append(PossibleAction.GENERATE_AUTH_CSR)
        if key.info.kind is KeyKind.SIGN:
            actions.append(PossibleAction.GENERATE_SIGN_CSR)
    if soft:
        actions.append(PossibleAction.EDIT_FRIENDLY_NAME)
    return tuple(actions)


def certificate_actions(token: TokenView, key: TokenKey, status: CertStatus) -> tuple[PossibleAction, ...]:
    """What can be done to the certificate of ``key``, in state ``status``, now, in X-Road's order."""
    info = key.info
    if info.cert is None:
        return ()
    soft = token.name == SoftToken.name
    unregistrable = info.kind is KeyKind.AUTH and can_unregister(status)
    actions = []
    if unregistrable:
        actions.append(PossibleAction.UNREGISTER)
    if soft and not unregistrable:
        actions.append(PossibleAction.DELETE)
    if info.kind is KeyKind.AUTH and can_register(status):
        actions.append(PossibleAction.REGISTER)
    if soft:
        actions.append(PossibleAction.DISABLE if info.cert_active else PossibleAction.ACTIVATE)
    return tuple(actions)


def csr_actions(token: TokenView) -> tuple[PossibleAction, ...]:
    """What can be done to a kept certificate request: delete it (X-Road's rule for a request saved to the
    configuration, whatever the token's state)."""
    return (PossibleAction.DELETE,)
