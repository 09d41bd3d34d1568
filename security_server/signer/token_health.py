"""Whether the signing tokens are fit, for the health check (issue 20: it fails while a signing token is out).

Only signing keys go into PKCS#11 tokens (auth keys stay in the soft token, docs/hsm.md), so every configured
PKCS#11 token is a signing token: the check fails while one of them is logged out or not present, naming it and its
last problem (never the PIN), and passes again once it is back, without a restart. Asking a token for its status
is a PKCS#11 call, so each token is asked on its own worker thread (:class:`TokenWorkers`), with the same bounded
wait as signing: a hung HSM makes the check fail, never hang.

The soft token is a signing token too: once it has a PIN (security_server/signer/softtoken_pin.py), the check
fails while it is logged out, as X-Road's does (its status is read from memory and one file, so it is asked inline).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from twisted.internet.defer import Deferred, DeferredList

from security_server.core.errors import BusError
from security_server.signer.token import Token, TokenStatus
from security_server.signer.token_workers import TokenWorkers


def token_problem(statuses: Mapping[str, TokenStatus | BusError], details: Mapping[str, str | None]) -> str | None:
    """The reason the signing tokens are unfit (``statuses`` by token name, or the error asking it gave), or None."""
    problems = []
    for name, status in sorted(statuses.items()):
        if isinstance(status, BusError):
            problems.append(f"token {name} is not answering ({status.fault_code})")
        elif status is not TokenStatus.LOGGED_IN:
            detail = details.get(name)
            problems.append(f"token {name} is {status.value}" + (f" ({detail})" if detail else ""))
    return "; ".join(problems) or None


def signing_tokens_problem(tokens: Sequence[Token], workers: TokenWorkers) -> Deferred[str | None]:
    """Ask each PKCS#11 token of ``tokens`` for its status on its worker thread, and the soft token inline; fires
    with :func:`token_problem`'s answer."""
    hardware = [token for token in tokens if token.name != "soft"]
    asked = [workers.run(token.name, token.status) for token in hardware]
    soft = {token.name: token.status() for token in tokens if token.name == "soft"}

    def judge(results: list[tuple[bool, Any]]) -> str | None:
        statuses: dict[str, TokenStatus | BusError] = dict(soft)
        for token, (ok, value) in zip(hardware, results, strict=True):
            failure_value = getattr(value, "value", None)
            if ok and isinstance(value, TokenStatus):
                statuses[token.name] = value
            elif isinstance(failure_value, BusError):
                statuses[token.name] = failure_value
            else:
                statuses[token.name] = TokenStatus.NOT_PRESENT
        details = {token.name: getattr(token, "last_problem", None) for token in hardware}
        return token_problem(statuses, details)

    answered: Deferred[list[tuple[bool, Any]]] = DeferredList(asked, consumeErrors=True)
    return answered.addCallback(judge)
