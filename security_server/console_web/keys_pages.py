"""The Keys and certificates page (X-Road's security officer): tokens, their keys and certificates with their
registration status, certificate requests (generate, download), importing a certificate and registering the
server's authentication certificate.

Every read and change is the management API's own operation
(:meth:`~security_server.management.resource.ManagementResource.perform`: ``getTokens``, ``addKeyAndCsr``,
``downloadCsr``, ``importCertificate``, ``activateCertificate``, ``disableCertificate``, ``registerCertificate``,
``loginToken``, ``logoutToken``): the same roles (an auth key's request is the security officer's, a sign key's
the registration officer's), service layer and audit lines as ``/api/v1``. A token is logged in with its PIN where
the API can (the soft token once it has a PIN; a ``[pkcs11:NAME]`` token is logged in with the PIN of its
configuration when the server starts, and the API says so when asked).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping
from urllib.parse import quote

from twisted.internet import defer
from twisted.python.failure import Failure

from security_server.console_web.api_forms import (
    FormState,
    button_form,
    describe,
    file_input,
    post_form,
    shown_again,
    select_input,
    text_input,
)
from security_server.console_web.base import ConsoleBase, Reply, arg, fields_of, not_found_page, see_other
from security_server.console_web.markup import Markup, esc, table
from security_server.management.errors import ApiError
from security_server.management.sessions import Session

ROOT = "/console/keys"
USAGES = (("AUTHENTICATION", "Authentication (this server's TLS key: the security officer's)"),
          ("SIGNING", "Signing (a member's key: the registration officer's)"))
FORMATS = (("PEM", "PEM"), ("DER", "DER"))
CSR_FIELDS: Mapping[str, frozenset[str]] = {
    "token": frozenset({"token_not_found"}),
    "key_usage_type": frozenset({"permission_denied"}),
    "O": frozenset(),
    "member_id": frozenset({"invalid_client_id", "client_not_found"}),
    "csr_format": frozenset(),
}
IMPORT_FIELDS: Mapping[str, frozenset[str]] = {
    "certificate": frozenset({"invalid_certificate", "key_not_found", "certificate_already_exists",
                              "wrong_cert_usage", "certificate_not_found"}),
}
REGISTER_FIELDS: Mapping[str, frozenset[str]] = {"address": frozenset({"invalid_address"})}
LOGIN_FIELDS: Mapping[str, frozenset[str]] = {"password": frozenset({"pin_incorrect", "token_pin_incorrect"})}


def path(*segments: str) -> str:
    """A Keys and certificates path, each segment percent-encoded."""
    return "/".join((ROOT, *(quote(s, safe="") for s in segments)))


def answer(console: ConsoleBase, request: Any, method: str, session: Session, parts: tuple[str, ...]) -> Any:
    """The page under ``/console/keys`` (the role is checked; a POST's XSRF token too)."""
    if parts == ():
        console.method(method, "GET")
        return keys_page(console, session)
    if parts == ("csrs",):
        console.method(method, "POST")
        return generate_csr(console, request, session)
    if len(parts) == 3 and parts[1] == "csrs":
        console.method(method, "GET")
        return download_csr(console, request, session, parts[0], parts[2])
    if parts == ("certificates",):
        console.method(method, "POST")
        return import_certificate(console, request, session)
    if len(parts) == 3 and parts[0] == "certificates" and parts[2] == "register":
        console.method(method, "POST")
        return register_certificate(console, request, session, parts[1])
    if len(parts) == 3 and parts[0] == "certificates" and parts[2] in ("activate", "disable"):
        console.method(method, "POST")
        return switch_certificate(console, session, parts[1], parts[2] == "activate")
    if len(parts) == 3 and parts[0] == "tokens" and parts[2] in ("login", "logout"):
        console.method(method, "POST")
        return token_login(console, request, session, parts[1], parts[2] == "login")
    raise not_found_page()


def _token_action(session: Session, token: dict[str, Any], login: FormState, login_token: str) -> object:
    """A logged-in token's Log out button, or the PIN form of one logged out."""
    if token["logged_in"]:
        return button_form(path("tokens", token["id"], "logout"), session.xsrf_token, "Log out",
                           label=f"Log out of token {token['name']}")
    state = login if login_token == token["id"] else FormState()
    form = f"login-{token['id']}"
    return post_form(form, path("tokens", token["id"], "login"), session.xsrf_token,
                     [text_input(form, "password", "PIN", state, kind="password", required=True)],
                     "Log in", state, label=f"Log in to token {token['name']}")


def _certificate_row(session: Session, key: dict[str, Any], cert: dict[str, Any], register: FormState,
                     registering: str) -> tuple[object, ...]:
    details = cert["certificate_details"]
    action: object = ""
    if key["usage"] == "AUTHENTICATION":
        state = register if registering == details["hash"] else FormState()
        form = f"register-{details['hash'][:16]}"
        action = post_form(form, path("certificates", details["hash"], "register"), session.xsrf_token,
                           [text_input(form, "address", "This server's address", state, required=True,
                                       hint="Host name or IP the other servers reach it at (port 5500 by default).")],
                           "Register at the registry", state, label=f"Register {details['subject_common_name']}")
    switch = "disable" if cert["active"] else "activate"
    button = button_form(path("certificates", details["hash"], switch), session.xsrf_token, switch.capitalize(),
                         label=f"{switch.capitalize()} {details['subject_distinguished_name']}")
    return (details["subject_distinguished_name"], details["issuer_common_name"], details["not_after"],
            cert["status"], Markup(f'{esc("active" if cert["active"] else "disabled")} {button}'), cert["owner_id"],
            action)


def keys_page(console: ConsoleBase, session: Session, *, csr: FormState = FormState(),
              imported: FormState = FormState(), register: FormState = FormState(), registering: str = "",
              login: FormState = FormState(), login_token: str = "", notice: str = "",
              status: int = 200) -> defer.Deferred[Reply]:
    """Tokens, keys, certificates and requests (``getTokens``), with the forms."""

    def show(found: Any) -> Reply:
        tokens = found.body
        token_rows = [
            (t["name"], t["type"], "logged in" if t["logged_in"] else "logged out",
             ("available" if t["available"] else "not present") + (", PIN incorrect" if t["status"] != "OK" else ""),
             len(t["keys"]), _token_action(session, t, login, login_token))
            for t in tokens
        ]
        key_rows: list[tuple[object, ...]] = []
        cert_rows: list[tuple[object, ...]] = []
        csr_rows: list[tuple[object, ...]] = []
        for token in tokens:
            for key in token["keys"]:
                key_rows.append((token["name"], key["id"], key["usage"], key["key_algorithm"],
                                 len(key["certificates"]), len(key["certificate_signing_requests"])))
                cert_rows.extend(_certificate_row(session, key, c, register, registering) for c in key["certificates"])
                for request in key["certificate_signing_requests"]:
                    links = Markup(" ".join(
                        f'<a href="{esc(path(key["id"], "csrs", request["id"]) + "?format=" + form)}"'
                        f' download>{form}</a>' for form in ("PEM", "DER")))
                    csr_rows.append((key["id"], key["usage"], request["owner_id"], request["id"], links))
        csr_form = post_form(
            "csr", path("csrs"), session.xsrf_token,
            [
                select_input("csr", "token", "Token", [(t["id"], t["name"]) for t in tokens], csr),
                select_input("csr", "key_usage_type", "Key usage", USAGES, csr),
                text_input("csr", "O", "Organisation (O)", csr, required=True,
                           hint="The subject's organisation; the rest of the subject follows the certificate profile."),
                text_input("csr", "member_id", "Member (signing keys)", csr,
                           hint="The member a signing key is for (INSTANCE:CLASS:CODE); empty for an auth key."),
                select_input("csr", "csr_format", "Format", FORMATS, csr),
            ],
            "Generate the key and request", csr, label="Generate a key and a certificate request",
        )
        import_form = post_form(
            "import", path("certificates"), session.xsrf_token,
            [file_input("import", "certificate", "Certificate file", imported,
                        hint="PEM or DER, issued by an approved CA for a key on a token.")],
            "Import the certificate", imported, label="Import a certificate", multipart=True,
        )
        alert = f'<p class="error" role="alert" id="keys-error">{esc(notice)}</p>' if notice else ""
        body = Markup(
            alert + table("Tokens", ("Token", "Type", "Login", "Status", "Keys", ""), token_rows)
            + table("Keys", ("Token", "Key", "Usage", "Algorithm", "Certificates", "Requests"), key_rows,
                    empty="no key yet")
            + table("Certificates", ("Subject", "Issuer", "Expires", "Registration", "Activation", "Owner", ""),
                    cert_rows, empty="no certificate yet")
            + table("Certificate requests", ("Key", "Usage", "Owner", "Request", "Download"), csr_rows,
                    empty="no request kept")
            + "<h2>Generate a key and a certificate request</h2>" + csr_form
            + "<h2>Import a certificate</h2>" + import_form
        )
        return console.page_reply(status, "Keys and certificates", body, session, "keys")

    return console.api.perform(session, "getTokens").addCallback(show)



def generate_csr(console: ConsoleBase, request: Any, session: Session) -> defer.Deferred[Reply]:
    """``addKeyAndCsr`` on the chosen token; back to the page, where the request is listed for download."""
    given = {name: arg(request, name).strip() for name in CSR_FIELDS}
    spec: dict[str, Any] = {
        "key_usage_type": given["key_usage_type"],
        "ca_name": "console",  # accepted and not kept by fedbus (the certificate profile is the federation's)
        "csr_format": given["csr_format"] or "PEM",
        "subject_field_values": {"O": given["O"]} if given["O"] else {},
    }
    if given["member_id"]:
        spec["member_id"] = given["member_id"]

    def show(state: FormState, status: int) -> defer.Deferred[Reply]:
        if "subject_field_values" in state.errors or (state.general and "subject_field_values" in state.general):
            message = state.errors.get("subject_field_values", state.general)
            state = FormState(state.given, {"O": message})
        return keys_page(console, session, csr=state, status=status)

    fields = {**CSR_FIELDS, "subject_field_values": frozenset()}
    return console.api.perform(session, "addKeyAndCsr", {"id": given["token"]},
                               body={"csr_generate_request": spec}).addCallbacks(
        lambda _: see_other(ROOT), shown_again(show, given, fields))


def download_csr(console: ConsoleBase, request: Any, session: Session, key: str, csr: str) -> defer.Deferred[Reply]:
    """``downloadCsr``: the request's bytes, saved as a file."""
    form = arg(request, "format") or "PEM"

    def send(found: Any) -> Reply:
        return Reply(200, found.raw or b"", "application/octet-stream", found.headers)

    return console.api.perform(session, "downloadCsr", {"id": key, "csr_id": csr},
                               query={"csr_format": (form,)}).addCallback(send)


def import_certificate(console: ConsoleBase, request: Any, session: Session) -> defer.Deferred[Reply]:
    """``importCertificate`` with the uploaded file; back to the page."""
    data = (fields_of(request).get("certificate") or [b""])[-1]

    def show(state: FormState, status: int) -> defer.Deferred[Reply]:
        return keys_page(console, session, imported=state, status=status)

    return console.api.perform(session, "importCertificate", raw=data,
                               content_type="application/octet-stream").addCallbacks(
        lambda _: see_other(ROOT), shown_again(show, {}, IMPORT_FIELDS))


def register_certificate(console: ConsoleBase, request: Any, session: Session, digest: str) -> defer.Deferred[Reply]:
    """``registerCertificate``: authCertReg for the server's auth certificate with the address given."""
    given = {"address": arg(request, "address").strip()}

    def show(state: FormState, status: int) -> defer.Deferred[Reply]:
        return keys_page(console, session, register=state, registering=digest.upper(), status=status)

    return console.api.perform(session, "registerCertificate", {"hash": digest},
                               body={"address": given["address"]}).addCallbacks(
        lambda _: see_other(ROOT), shown_again(show, given, REGISTER_FIELDS))


def _at_the_top(console: ConsoleBase, session: Session) -> Callable[[Failure], Any]:
    """An errback for a button's operation: the page again with the API's refusal at its top."""

    def refused(reason: Failure) -> Any:
        error = reason.value
        if not isinstance(error, ApiError):
            return reason
        return keys_page(console, session, notice=describe(error), status=error.status)

    return refused


def switch_certificate(console: ConsoleBase, session: Session, digest: str, activate: bool) -> defer.Deferred[Reply]:
    """``activateCertificate`` or ``disableCertificate``; a refusal at the top of the page."""
    operation = "activateCertificate" if activate else "disableCertificate"
    return console.api.perform(session, operation, {"hash": digest}).addCallbacks(
        lambda _: see_other(ROOT), _at_the_top(console, session))


def token_login(console: ConsoleBase, request: Any, session: Session, token: str, login: bool) -> defer.Deferred[Reply]:
    """``loginToken`` with the form's PIN (never shown again, never logged), or ``logoutToken``."""
    if not login:
        return console.api.perform(session, "logoutToken", {"id": token}).addCallbacks(
            lambda _: see_other(ROOT), _at_the_top(console, session))

    def show(state: FormState, status: int) -> defer.Deferred[Reply]:
        return keys_page(console, session, login=FormState({}, state.errors, state.general), login_token=token,
                         status=status)

    return console.api.perform(session, "loginToken", {"id": token}, body={"password": arg(request, "password")}
                               ).addCallbacks(lambda _: see_other(ROOT), shown_again(show, {}, LOGIN_FIELDS))
