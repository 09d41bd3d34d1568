"""The signing-token health verdict: fails while a PKCS#11 token is out or not answering, passes when it is back."""

from __future__ import annotations

import threading
from typing import Any

from security_server.signer.pkcs11_config import Pkcs11TokenConfig
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.softtoken import SoftToken
from security_server.signer.token import Token, TokenStatus, TokenTimedOut
from security_server.signer.token_health import signing_tokens_problem, token_problem
from security_server.signer.token_workers import TokenWorkers
from tests.security_server.signer.softhsm import SoftHsm
from tests.security_server.signer.threaded_clock import SAFETY_SECONDS, ThreadedClock


def _answer(deferred: Any) -> list[object]:
    got: list[object] = []
    deferred.addBoth(got.append)
    return got


def test_the_verdict_names_each_token_that_is_out() -> None:
    """Logged in passes; logged out, not present and not answering each fail, named, with the last problem."""
    assert token_problem({"hsm1": TokenStatus.LOGGED_IN}, {}) is None
    problem = token_problem(
        {"b": TokenStatus.LOGGED_OUT, "a": TokenStatus.NOT_PRESENT, "c": TokenTimedOut("slow")},
        {"b": "signer.pin_incorrect: token b refused the PIN"},
    )
    assert problem == (
        "token a is not-present; token b is logged-out (signer.pin_incorrect: token b refused the PIN); "
        "token c is not answering (signer.cannot_sign)"
    )


def test_a_logged_out_softhsm_token_fails_and_passes_once_its_pin_is_there(softhsm: SoftHsm, tmp_path: Any) -> None:
    """A real SoftHSM2 token without its PIN fails the check; with the PIN set the same object passes."""
    hsm = softhsm.init_token()
    environ: dict[str, str] = {}
    token = Pkcs11Token(
        Pkcs11TokenConfig(name="hsm", library=hsm.module, token_label=hsm.label, pin_env="PIN"), environ=environ
    )
    clock = ThreadedClock()
    workers = TokenWorkers(clock)
    tokens: list[Token] = [SoftToken(tmp_path / "keys"), token]
    out = _answer(signing_tokens_problem(tokens, workers))
    clock.deliver()
    assert isinstance(out[0], str) and out[0].startswith("token hsm is logged-out") and "PIN" in out[0]
    environ["PIN"] = hsm.pin
    back = _answer(signing_tokens_problem(tokens, workers))
    clock.deliver()
    assert back == [None]
    workers.stop()


def test_a_hung_token_fails_the_check_after_the_bounded_wait() -> None:
    """A token whose status call does not return makes the check fail when the wait runs out, never hang."""
    release = threading.Event()

    class Hung:
        name = "hsm"
        last_problem = None

        def status(self) -> TokenStatus:
            release.wait(SAFETY_SECONDS)
            return TokenStatus.LOGGED_IN

    clock = ThreadedClock()
    workers = TokenWorkers(clock, timeout_seconds=10)
    verdict = _answer(signing_tokens_problem([Hung()], workers))  # type: ignore[list-item]
    clock.advance(10)
    assert verdict == ["token hsm is not answering (signer.cannot_sign)"]
    release.set()
    clock.deliver()
    workers.stop()
