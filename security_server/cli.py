"""``fedbus server``: the security-server administrator's commands.

Every command works on one server directory, given with ``--dir`` (or ``FEDBUS_SERVER_DIR``; default
``./fedbus-server``), which holds ``serverconf.db`` (security_server/serverconf/store.py) and ``keys/``
(security_server/signer/softtoken.py). Keys may also live in HSMs, the ``[pkcs11:NAME]`` sections of the
configuration (security_server/signer/pkcs11_config.py; ``--config`` layers a file as ``run`` does): ``keys
generate --token NAME`` makes a key there, the other ``keys`` commands find a key on whichever token holds it, and
``token status`` shows whether each token is logged in.

Identifiers are given and printed in X-Road's display form (pr-mess §1.3), the one form this CLI takes::

    MEMBER:EE/GOV/70000310                    a member (server owner, signing keys)
    SUBSYSTEM:EE/GOV/70000310/registry        a client subsystem
    SERVICE:EE/GOV/70000310/registry/getRandom[/v1]
    GLOBALGROUP:EE/security-server-owners     LOCALGROUP:partners

Output is a table by default and JSON with ``--json`` (on stdout; errors go to stderr). A command that
fails prints ``Error: ...`` with the fault code and exits non-zero (2 for a malformed argument, 1 otherwise);
success exits 0. Registering the server and its clients with the registry (``register``, ``client register``)
is added with the registry's request protocol.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from twisted.internet import defer

from security_server.admin import access_rights, clients, initialization, local_groups, orphans, services
from security_server.admin import endpoints as admin_endpoints
from security_server.admin import client_connection, internal_tls
from security_server.admin import keys as admin_keys
from security_server.admin import registration as admin_registration
from security_server.admin.server_dir import DB_NAME, KEYS_DIR, ServerDirectory
from security_server.core.acl import AccessRight, Endpoint, Subject
from security_server.core.config import LayeredConfig
from security_server.core.connection_type import ConnectionType
from security_server.core.errors import BusError, InvalidClientIdentifier
from security_server import status_view
from security_server.edge import cli_output
from security_server.core.globalconf.anchor import MAX_ANCHOR_BYTES, anchor_hash, parse_configuration_anchor
from security_server.core.metadata import MAX_DESCRIPTION_BYTES
from security_server.core.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    ServiceId,
    parse_display,
)
from security_server.serverconf.store import (
    DEFAULT_TIMEOUT_SECONDS,
    ServerConfError,
    ServerConfSnapshot,
    ServerConfStore,
    Service,
    ServiceKind,
)
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.softtoken import KeyAlgorithm, KeyInfo, KeyKind, SoftToken
from security_server.signer.token_set import TokenSet

DEFAULT_DIR = "./fedbus-server"
DIR_ENV = "FEDBUS_SERVER_DIR"

F = TypeVar("F", bound=Callable[..., Any])


# --- parameters ------------------------------------------------------------------------------------------------


class IdentifierParam(click.ParamType[Any]):
    """An identifier in display form, limited to some kinds."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except InvalidClientIdentifier as err:
            self.fail(f"{value!r} is not a {self.name}: {err.message}", param, ctx)


def _member(text: str) -> ClientId:
    client = ClientId.parse_display(text)
    if client.subsystem_code is not None:
        raise InvalidClientIdentifier("expected MEMBER:INSTANCE/CLASS/CODE")
    return client


def _subsystem(text: str) -> ClientId:
    client = ClientId.parse_display(text)
    if client.subsystem_code is None:
        raise InvalidClientIdentifier("expected SUBSYSTEM:INSTANCE/CLASS/CODE/SUBSYSTEM")
    return client


def _subject(text: str) -> Subject:
    subject = parse_display(text)
    if not isinstance(subject, (ClientId, GlobalGroupId, LocalGroupId)):
        raise InvalidClientIdentifier("expected MEMBER:, SUBSYSTEM:, GLOBALGROUP: or LOCALGROUP:")
    return subject


MEMBER = IdentifierParam("member (MEMBER:EE/GOV/123)", _member)
SUBSYSTEM = IdentifierParam("subsystem (SUBSYSTEM:EE/GOV/123/sub)", _subsystem)
CLIENT = IdentifierParam("client (MEMBER:... or SUBSYSTEM:...)", ClientId.parse_display)
SERVICE = IdentifierParam("service (SERVICE:EE/GOV/123/sub/code[/version])", ServiceId.parse_display)
SUBJECT = IdentifierParam("subject (SUBSYSTEM:, MEMBER:, GLOBALGROUP: or LOCALGROUP:)", _subject)
LOCAL_GROUP = IdentifierParam("local group code", LocalGroupId)


def dir_option(func: F) -> F:
    """The ``--dir`` option every command takes."""
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=DIR_ENV,
        default=DEFAULT_DIR,
        show_default=True,
        help=f"The security server's working directory (env {DIR_ENV}).",
    )(func)


json_option = cli_output.json_option("Print JSON instead of a table.")
"""The ``--json`` flag: print JSON for scripts instead of a table."""


# --- output -------------------------------------------------------------------------------------------------------


def _emit(as_json: bool, data: Any, table: Callable[[], str]) -> None:
    cli_output.emit(as_json, data, table, sort_keys=True)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cert_json(cert: x509.Certificate | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "serial": format(cert.serial_number, "x"),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": _time(cert.not_valid_before_utc),
        "not_after": _time(cert.not_valid_after_utc),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }


def _key_json(info: KeyInfo, token: str | None = None) -> dict[str, Any]:
    data = {
        "key_id": info.key_id,
        "kind": info.kind.value,
        "owner": str(info.owner),
        "algorithm": info.algorithm.value,
        "certificate": _cert_json(info.cert),
    }
    if token is not None:
        data["token"] = token
    return data


def _service_text(service: ServiceId) -> str:
    try:
        return str(service)
    except InvalidClientIdentifier:  # a member-level service has no display form
        return f"{service.client} {service.service_code}" + (f" {service.service_version}" if service.service_version else "")


# --- opening the server directory ---------------------------------------------------------------------------------


def _server_dir(directory: Path) -> ServerDirectory:
    """The server directory, its configuration store where ``[database] url`` says (conf.d/local.ini)."""
    from security_server.configfile import load_config
    from security_server.core.config import DatabaseConfig

    return ServerDirectory(directory, database_url=DatabaseConfig.from_config(load_config("security-server")).url)


def _open_store(directory: Path) -> ServerConfStore:
    return _server_dir(directory).open_store()


def _snapshot(directory: Path) -> ServerConfSnapshot:
    return _server_dir(directory).snapshot()


def _token(directory: Path) -> SoftToken:
    return _server_dir(directory).soft_token()


def _config(config_file: Path | None) -> LayeredConfig:
    """The layered configuration (``[pkcs11:NAME]`` tokens) of the commands that reach PKCS#11 tokens."""
    from security_server.configfile import load_config

    return load_config("security-server", extra=config_file)


def _tokens(directory: Path, config_file: Path | None) -> TokenSet:
    """The soft token and the configured PKCS#11 tokens (``[pkcs11:NAME]`` in the layered configuration)."""
    server_dir = _server_dir(directory)
    server_dir.soft_token()  # the same check that the server directory exists, before reading the configuration
    return server_dir.tokens(_config(config_file))


def config_option(func: F) -> F:
    """The ``--config`` option of the commands that reach PKCS#11 tokens."""
    return click.option(
        "--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="An INI file layered over conf/security-server.ini and conf.d/local.ini ([pkcs11:NAME] tokens).",
    )(func)


def _read_file(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise click.ClickException(f"cannot read {what} {path}: {err.strerror}") from err
    if len(data) > limit:
        raise click.ClickException(f"{what} {path} is larger than {limit} bytes")
    return data


# --- the group ------------------------------------------------------------------------------------------------------


@click.group(cls=cli_output.BusErrorGroup)
def server() -> None:
    """Administer a security server: identity, keys, clients, services and access rights.

    Identifiers are written in display form, e.g. SUBSYSTEM:EE/GOV/70000310/registry or
    SERVICE:EE/GOV/70000310/registry/getRandom.
    """


@server.command()
@dir_option
@click.option("--anchor", "anchor_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The configuration anchor file from the registry.")
@click.option("--owner", required=True, type=MEMBER, help="The owner member, e.g. MEMBER:EE/GOV/70000310.")
@click.option("--server-code", required=True, help="This server's code, unique within the owner.")
@json_option
def init(directory: Path, anchor_file: Path, owner: ClientId, server_code: str, as_json: bool) -> None:
    """Initialise a new security server in --dir from a configuration anchor."""
    anchor = _read_file(anchor_file, MAX_ANCHOR_BYTES, "anchor")
    instance = parse_configuration_anchor(anchor).instance
    if instance != owner.instance:
        raise ServerConfError(f"the anchor is for instance {instance}, but the owner is of {owner.instance}")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise click.ClickException(f"cannot create {directory}: {err.strerror}") from err
    done = initialization.initialise(_server_dir(directory), anchor, owner, server_code)
    data = {"server": str(done.server_id), "instance": done.server_id.owner.instance, "anchor_hash": done.anchor.hash}
    _emit(as_json, data, lambda: f"Initialised {data['server']} in {directory}\nAnchor hash: {data['anchor_hash']}")


def _health_option(func: F) -> F:
    """``--config`` and ``--port``: where the running server's health port is (``[healthcheck]``)."""
    func = click.option("--port", type=click.IntRange(1, 65535), default=None,
                        help="The health check port, if not the configured [healthcheck] port.")(func)
    return click.option(
        "--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="An INI file layered over conf/security-server.ini and conf.d/local.ini ([healthcheck] port).",
    )(func)


def _health_and_traffic(directory: Path, config_file: Path | None, port: int | None) -> dict[str, Any]:
    """The running server's health checks (or why they cannot be read) and the last hour's traffic."""
    health: dict[str, Any]
    try:
        health = status_view.HealthPort.from_config(_config(config_file), port).checks()
    except BusError as err:
        health = {"status": None, "reason": err.message, "maintenance": None, "checks": {}}
    traffic = status_view.recent_traffic(directory, datetime.now(UTC).timestamp())
    return {
        "health": health,
        "traffic_last_hour": [
            {"role": str(line.role), "service": line.service, "succeeded": line.succeeded, "failed": line.failed}
            for line in traffic
        ],
    }


def _health_table(report: Mapping[str, Any]) -> str:
    health = report["health"]
    verdict = {200: "healthy", 500: "failing", 503: "in maintenance"}.get(health["status"], "unknown")
    lines = [f"health: {verdict}" + (f" ({health['reason']})" if health["reason"] else "")]
    checks = [[name, "ok" if r["ok"] else "FAILED", r["reason"]] for name, r in health["checks"].items()]
    if checks:
        lines.append(cli_output.format_table(["check", "result", "reason"], checks))
    traffic = [[t["role"], t["service"], str(t["succeeded"]), str(t["failed"])] for t in report["traffic_last_hour"]]
    lines.append("traffic, last hour:")
    lines.append(cli_output.format_table(["role", "service", "succeeded", "failed"], traffic))
    return "\n".join(lines)


@server.command()
@dir_option
@_health_option
@json_option
def status(directory: Path, config_file: Path | None, port: int | None, as_json: bool) -> None:
    """Show the server's identity, clients, services, access rights and keys; the running server's health
    checks (over its [healthcheck] port) and the last hour's traffic."""
    snapshot = _snapshot(directory)
    keys = _token(directory).list()
    now = datetime.now(UTC)
    states = dict(sorted(Counter(c.state.value for c in snapshot.clients).items()))
    auth = [k for k in keys if k.kind is KeyKind.AUTH]
    auth_ready = any(k.cert is not None and k.cert.not_valid_after_utc > now for k in auth)
    signers = sorted({str(k.owner) for k in keys if k.kind is KeyKind.SIGN and k.cert is not None})
    owner = snapshot.client(snapshot.identity.owner)
    owner_state = owner.state.value if owner else None
    enabled = sum(1 for s in snapshot.services if s.enabled)
    disabled = len(snapshot.services) - enabled
    digest = anchor_hash(snapshot.anchor)
    data = {
        "server": str(snapshot.server_id),
        "instance": snapshot.identity.instance,
        "owner_state": owner_state,
        "anchor_hash": digest,
        "clients": states,
        "services": {"enabled": enabled, "disabled": disabled},
        "access_rights": len(snapshot.rights),
        "local_groups": len(snapshot.groups),
        "keys": {"auth_keys": len(auth), "auth_certificate_valid": auth_ready, "members_with_signing_certificate": signers},
    }
    report = _health_and_traffic(directory, config_file, port)
    data.update(report)

    def table() -> str:
        rows = [
            ["server", str(snapshot.server_id)],
            ["owner state", str(owner_state)],
            ["anchor hash", digest],
            ["clients", ", ".join(f"{n} {state}" for state, n in states.items()) or "0"],
            ["services", f"{enabled} enabled, {disabled} disabled"],
            ["access rights", str(len(snapshot.rights))],
            ["local groups", str(len(snapshot.groups))],
            ["auth certificate", "valid" if auth_ready else "missing"],
            ["signing certificates", ", ".join(signers) or "none"],
        ]
        return cli_output.format_table(["item", "value"], rows) + "\n\n" + _health_table(report)

    _emit(as_json, data, table)


@server.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@_health_option
def maintenance(state: str, config_file: Path | None, port: int | None) -> None:
    """Switch maintenance mode on or off: the health check answers 503 while it is on (ig-xlb §3.4), so a load
    balancer takes the node out before an upgrade. Asks the running server over its [healthcheck] port."""
    click.echo(status_view.HealthPort.from_config(_config(config_file), port).set_maintenance(state == "on"))


# --- keys ------------------------------------------------------------------------------------------------------------


@server.group()
def keys() -> None:
    """Keys and certificates on the soft token."""


@keys.command("generate")
@dir_option
@config_option
@click.option("--kind", type=click.Choice([k.value for k in KeyKind]), required=True,
              help="auth: this server's TLS key; sign: a member's signing key.")
@click.option("--member", type=MEMBER, help="The member of a sign key (default: the server owner).")
@click.option("--algorithm", type=click.Choice([a.value for a in KeyAlgorithm]), default=KeyAlgorithm.RSA2048.value,
              show_default=True)
@click.option("--token", "token_name", default=SoftToken.name, show_default=True,
              help="Where to make the key: the soft token or a [pkcs11:NAME] token (made inside it, never extractable).")
@json_option
def keys_generate(
    directory: Path, config_file: Path | None, kind: str, member: ClientId | None, algorithm: str, token_name: str,
    as_json: bool,
) -> None:
    """Generate a key; prints its id."""
    server_dir = _server_dir(directory)
    server_dir.snapshot()  # the server exists before the arguments are judged
    key_kind = KeyKind(kind)
    if key_kind is KeyKind.AUTH and member is not None:
        raise click.UsageError("--member is for sign keys; an auth key belongs to this server")
    config = None if token_name == SoftToken.name else _config(config_file)
    made = admin_keys.generate_key(
        server_dir, key_kind, member=member, algorithm=KeyAlgorithm(algorithm), token_name=token_name, config=config
    )
    data = _key_json(made.info, made.token)
    _emit(as_json, data,
          lambda: f"Generated {kind} key {made.info.key_id} for {made.info.owner} ({algorithm}) on token {made.token}")


@keys.command("csr")
@dir_option
@config_option
@click.argument("key_id")
@click.option("--name", required=True, help="The member's name, written as O in the subject.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the PEM request here instead of printing it.")
@json_option
def keys_csr(
    directory: Path, config_file: Path | None, key_id: str, name: str, out_file: Path | None, as_json: bool
) -> None:
    """Make a certificate request (PKCS#10, PEM) for a key, with the certificate-profile subject."""
    request = admin_keys.request_certificate(_tokens(directory, config_file), key_id, name)
    pem = request.pem
    if out_file is not None:
        try:
            out_file.write_bytes(pem)
        except OSError as err:
            raise click.ClickException(f"cannot write {out_file}: {err.strerror}") from err
    data = {"key_id": key_id, "subject": request.subject, "file": str(out_file) if out_file else None,
            "csr": pem.decode("ascii")}
    _emit(as_json, data, lambda: f"Wrote the request for key {key_id} to {out_file}" if out_file else pem.decode("ascii").rstrip())


@keys.command("import-cert")
@dir_option
@config_option
@click.argument("cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def keys_import_cert(directory: Path, config_file: Path | None, cert_file: Path, as_json: bool) -> None:
    """Import a certificate (PEM or DER) issued for a key on one of the tokens (stored in that token)."""
    tokens = _tokens(directory, config_file)
    imported = admin_keys.import_certificate(tokens, _read_file(cert_file, 64 * 1024, "certificate"), now=datetime.now(UTC))
    data = _key_json(imported.info, imported.token)
    _emit(as_json, data, lambda: f"Imported the certificate for key {imported.info.key_id} ({data['owner']})")


@keys.command("list")
@dir_option
@config_option
@json_option
def keys_list(directory: Path, config_file: Path | None, as_json: bool) -> None:
    """List keys and their certificates, on every token (a token that is out lists nothing; see token status)."""
    found = [(k.token, k.info) for k in admin_keys.list_keys(_tokens(directory, config_file))]
    rows = [
        [k.key_id, k.kind.value, str(k.owner), k.algorithm.value, _time(k.cert.not_valid_after_utc) if k.cert else "-", name]
        for name, k in found
    ]
    _emit(as_json, [_key_json(k, name) for name, k in found],
          lambda: cli_output.format_table(["key id", "kind", "owner", "algorithm", "cert until", "token"], rows))


@keys.command("rename")
@dir_option
@click.argument("key_id")
@click.argument("name")
@json_option
def keys_rename(directory: Path, key_id: str, name: str, as_json: bool) -> None:
    """Give a soft token key a friendly name (X-Road's PATCH /keys/{id})."""
    if not 1 <= len(name) <= 255:
        raise click.UsageError("a key name is 1 to 255 characters")
    renamed = admin_keys.rename_key(_server_dir(directory), key_id, name)
    _emit(as_json, _key_json(renamed.info, renamed.token), lambda: f"Key {key_id} is now called {name!r}")


@keys.command("delete")
@dir_option
@click.argument("key_id")
def keys_delete(directory: Path, key_id: str) -> None:
    """Delete a soft token key with its certificate and kept requests (an auth key with a registered certificate
    is refused). A running server stops signing with it within a minute (its key cache)."""
    admin_keys.delete_key(_server_dir(directory), key_id, now=datetime.now(UTC))
    click.echo(f"Deleted key {key_id}")


def _cert_change(directory: Path, cert_hash: str, change: str) -> str:
    server_dir = _server_dir(directory)
    if change == "delete":
        found = admin_keys.delete_certificate(server_dir, cert_hash, now=datetime.now(UTC))
        return f"Deleted the certificate of key {found.info.key_id}"
    changed = admin_keys.set_certificate_active(server_dir, cert_hash, change == "activate")
    return f"The certificate of key {changed.info.key_id} is {'active' if changed.info.cert_active else 'disabled'}"


@keys.command("cert")
@dir_option
@click.argument("action", type=click.Choice(["activate", "disable", "delete"]))
@click.argument("cert_hash", metavar="SHA256")
def keys_cert(directory: Path, action: str, cert_hash: str) -> None:
    """Activate, disable or delete a certificate by its SHA-256 (X-Road's token-certificates/{hash}): a disabled
    certificate is not used to sign or authenticate; a registered auth certificate is not deleted."""
    click.echo(_cert_change(directory, cert_hash, action))


# --- tokens ----------------------------------------------------------------------------------------------------------


@server.group("token")
def token_group() -> None:
    """The tokens that hold keys: the soft token and the [pkcs11:NAME] HSM tokens."""


@token_group.command("status")
@dir_option
@config_option
@json_option
def token_status(directory: Path, config_file: Path | None, as_json: bool) -> None:
    """Show each token: logged in, logged out or not present, with its keys and the last problem (never the PIN)."""
    data = []
    for token, status, keys in _tokens(directory, config_file).listing():
        entry: dict[str, Any] = {"token": token.name, "status": status.value, "keys": len(keys)}
        if isinstance(token, Pkcs11Token):
            entry.update(type="pkcs11", library=token.config.library, where=token.config.where,
                         sign_mechanism=token.config.sign_mechanism.value, problem=token.last_problem)
        else:
            entry.update(type="soft", where=str(directory / KEYS_DIR))
        data.append(entry)
    rows = [[d["token"], d["type"], d["status"], str(d["keys"]), d["where"], d.get("problem") or ""] for d in data]
    _emit(as_json, data, lambda: cli_output.format_table(["token", "type", "status", "keys", "where", "problem"], rows))


def _pin(pin_file: Path | None, prompt: str, *, confirm: bool = False) -> str:
    """A PIN from the first line of ``pin_file``, or asked for without echo (never on the command line)."""
    if pin_file is not None:
        lines = _read_file(pin_file, 4096, "PIN").decode("utf-8", errors="strict").splitlines()
        if not lines or not lines[0]:
            raise click.ClickException(f"{pin_file} must hold the PIN on its first line")
        return lines[0]
    answer: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return answer


def _ask_running(directory: Path, config_file: Path | None, method: str, path: str,
                 body: dict[str, Any] | None = None) -> Any:
    """``method path`` on the running server's management API (security_server/management/running_server.py)."""
    from security_server.management.config import ManagementConfig
    from security_server.management.running_server import ask

    _server_dir(directory).snapshot()  # the server exists
    answer = ask(directory, ManagementConfig.from_config(_config(config_file)), method, path, body)
    if answer.status >= 400:
        raise click.ClickException(f"the server refused: {answer.status} {answer.error_code or ''}".rstrip())
    return answer


pin_file_option = click.option(
    "--pin-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the PIN from the first line of this file instead of asking for it.")


@token_group.command("login")
@dir_option
@config_option
@pin_file_option
def token_login(directory: Path, config_file: Path | None, pin_file: Path | None) -> None:
    """Log the running server's soft token in with its PIN (through its management API: a login holds in the
    running server only, and a restart starts logged out)."""
    pin = _pin(pin_file, "Soft token PIN")
    _ask_running(directory, config_file, "PUT", "/tokens/soft/login", {"password": pin})
    click.echo("Logged in to token soft")


@token_group.command("logout")
@dir_option
@config_option
def token_logout(directory: Path, config_file: Path | None) -> None:
    """Log the running server's soft token out: its keys are forgotten and signing stops until the next login."""
    _ask_running(directory, config_file, "PUT", "/tokens/soft/logout")
    click.echo("Logged out of token soft")


@token_group.command("set-pin")
@dir_option
@config_option
@pin_file_option
@click.option("--old-pin-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the current PIN from this file instead of asking for it.")
def token_set_pin(directory: Path, config_file: Path | None, pin_file: Path | None, old_pin_file: Path | None) -> None:
    """Set the soft token's first PIN, or change it (every key is re-encrypted). Through the running server when
    it runs (so that its login follows), else on the files directly."""
    from security_server.admin import token_login as admin_token_login
    from security_server.management.running_server import ServerNotRunning

    server_dir = _server_dir(directory)
    has_pin = server_dir.soft_token().has_pin()
    old = _pin(old_pin_file, "Current PIN") if has_pin else None
    new = _pin(pin_file, "New PIN", confirm=True)
    try:
        _ask_running(directory, config_file, "PUT", "/tokens/soft/pin", {"old_pin": old or "-", "new_pin": new})
    except ServerNotRunning:
        admin_token_login.set_pin(server_dir, SoftToken.name, new, old)
    click.echo("The soft token's PIN is set; its keys are encrypted under it")


# --- clients --------------------------------------------------------------------------------------------------------


@server.group()
def client() -> None:
    """Clients (subsystems) hosted on this server."""


@client.command("add")
@dir_option
@click.argument("client_id", metavar="SUBSYSTEM", type=SUBSYSTEM)
@json_option
def client_add(directory: Path, client_id: ClientId, as_json: bool) -> None:
    """Add a subsystem as a client, in state saved."""
    added = clients.add_client(_server_dir(directory), client_id)
    data = {"client": str(added.id), "state": added.state.value}
    _emit(as_json, data, lambda: f"Added {added.id} ({added.state.value})")


@client.command("list")
@dir_option
@json_option
def client_list(directory: Path, as_json: bool) -> None:
    """List the hosted clients and their registration states."""
    hosted = clients.list_clients(_server_dir(directory))
    data = [{"client": str(c.id), "state": c.state.value, "owner": c.is_owner} for c in hosted]
    rows = [[str(c.id), c.state.value, "owner" if c.is_owner else ""] for c in hosted]
    _emit(as_json, data, lambda: cli_output.format_table(["client", "state", "role"], rows))


@client.command("delete")
@dir_option
@click.argument("client_id", metavar="SUBSYSTEM", type=SUBSYSTEM)
def client_delete(directory: Path, client_id: ClientId) -> None:
    """Delete a saved (or unregistered) client with its services, rights and local groups."""
    clients.delete_client(_server_dir(directory), client_id)
    click.echo(f"Deleted {client_id}")


@client.command("tls-cert-add")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@click.argument("cert_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def client_tls_cert_add(directory: Path, client_id: ClientId, cert_file: Path, as_json: bool) -> None:
    """Add an internal TLS certificate (PEM or DER) of the client's information system: an https service of the
    client with ssl_auth must present it."""
    added = clients.add_tls_certificate(_server_dir(directory), client_id, cert_file.read_bytes())
    _emit(as_json, {"client": str(client_id), "hash": added.hash}, lambda: f"Added TLS certificate {added.hash}")


@client.command("tls-certs")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@json_option
def client_tls_certs(directory: Path, client_id: ClientId, as_json: bool) -> None:
    """List the client's internal TLS certificates by SHA-256."""
    found = clients.list_tls_certificates(_server_dir(directory), client_id)
    _emit(as_json, [c.hash for c in found], lambda: "\n".join(c.hash for c in found) or "(none)")


@client.command("tls-cert-delete")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@click.argument("cert_hash", metavar="HASH")
def client_tls_cert_delete(directory: Path, client_id: ClientId, cert_hash: str) -> None:
    """Remove an internal TLS certificate of the client by its SHA-256 (hex)."""
    clients.delete_tls_certificate(_server_dir(directory), client_id, cert_hash)
    click.echo(f"Deleted TLS certificate {cert_hash.upper()}")


@client.command("set-connection-type")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@click.argument("connection_type", metavar="TYPE", type=click.Choice([t.value for t in ConnectionType]))
def client_set_connection_type(directory: Path, client_id: ClientId, connection_type: str) -> None:
    """How the client's systems must reach the client proxy: HTTP (plain HTTP or HTTPS), HTTPS_NO_AUTH (HTTPS) or
    HTTPS (HTTPS with one of the client's TLS certificates; tls-cert-add). As PATCH /clients/{id}."""
    client_connection.set_connection_type(_server_dir(directory), client_id, ConnectionType.parse(connection_type))
    click.echo(f"{client_id}: connection type {connection_type}")


@server.group("internal-tls")
def internal_tls_group() -> None:
    """The internal TLS certificate the client proxy's HTTPS port serves (as /system/certificate)."""


@internal_tls_group.command("show")
@dir_option
@json_option
def internal_tls_show(directory: Path, as_json: bool) -> None:
    """The certificate's SHA-256, subject and expiry (made first when missing)."""
    cert = internal_tls.certificate(_server_dir(directory))
    data = {"hash": cert.fingerprint(hashes.SHA256()).hex().upper(), "subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat()}
    _emit(as_json, data, lambda: "\n".join(f"{k}: {v}" for k, v in data.items()))


@internal_tls_group.command("export")
@dir_option
@click.argument("out_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
def internal_tls_export(directory: Path, out_file: Path) -> None:
    """Write certs.tar.gz (cert.pem and cert.cer) for the information systems to trust."""
    out_file.write_bytes(internal_tls.export(_server_dir(directory)))
    click.echo(f"Wrote {out_file}")


@internal_tls_group.command("generate")
@dir_option
def internal_tls_generate(directory: Path) -> None:
    """A new internal TLS key and self-signed certificate (served from the next HTTPS connection)."""
    cert = internal_tls.regenerate(_server_dir(directory))
    click.echo(f"New internal TLS certificate {cert.fingerprint(hashes.SHA256()).hex().upper()}")


@internal_tls_group.command("csr")
@dir_option
@click.option("--name", required=True, help='The subject, e.g. "C=FI, O=Org, CN=ss1.example".')
@click.argument("out_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
def internal_tls_csr(directory: Path, name: str, out_file: Path) -> None:
    """Write a PKCS#10 request (DER) for the internal TLS key, for a CA to sign."""
    out_file.write_bytes(internal_tls.certificate_request(_server_dir(directory), name))
    click.echo(f"Wrote {out_file}")


@internal_tls_group.command("import")
@dir_option
@click.argument("cert_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def internal_tls_import(directory: Path, cert_file: Path) -> None:
    """Use the CA's certificate (PEM or DER, or a PEM chain) for the internal TLS key."""
    cert = internal_tls.import_certificate(_server_dir(directory), cert_file.read_bytes())
    click.echo(f"Imported internal TLS certificate {cert.fingerprint(hashes.SHA256()).hex().upper()}")


@client.command("disable")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
def client_disable(directory: Path, client_id: ClientId) -> None:
    """Disable a registered client: the proxies refuse its exchanges until it is enabled (X-Road 7)."""
    clients.disable_client(_server_dir(directory), client_id)
    click.echo(f"Disabled {client_id}")


@client.command("enable")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
def client_enable(directory: Path, client_id: ClientId) -> None:
    """Enable a disabled client again."""
    clients.enable_client(_server_dir(directory), client_id)
    click.echo(f"Enabled {client_id}")


@client.command("rename")
@dir_option
@click.argument("client_id", metavar="SUBSYSTEM", type=SUBSYSTEM)
@click.argument("name")
def client_rename(directory: Path, client_id: ClientId, name: str) -> None:
    """Give a saved or registered subsystem a name (kept on this server: the registry takes no rename)."""
    clients.rename_client(_server_dir(directory), client_id, name)
    click.echo(f"Named {client_id} {name!r}")


@client.command("orphans")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@click.option("--delete", is_flag=True, help="Delete them with their certificates and requests.")
def client_orphans(directory: Path, client_id: ClientId, delete: bool) -> None:
    """List (or delete) the sign keys a deleted client's member left on the soft token."""
    server_dir = _server_dir(directory)
    if delete:
        found = orphans.delete_orphans(server_dir, client_id, now=datetime.now(UTC))
        click.echo("\n".join(f"Deleted key {k}" for k in found))
        return
    click.echo("\n".join(orphans.orphan_keys(server_dir, client_id)) or "(none)")


# --- services -------------------------------------------------------------------------------------------------------


@server.group()
def service() -> None:
    """Services of the hosted clients."""


@service.command("add")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
@click.option("--url", required=True, help="Where the provider's service listens (http or https).")
@click.option("--kind", type=click.Choice([k.value for k in ServiceKind]), default=ServiceKind.SOAP.value, show_default=True)
@click.option("--timeout", type=int, default=DEFAULT_TIMEOUT_SECONDS, show_default=True, help="Seconds, 1 to 3600.")
@click.option(
    "--description",
    "description_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The service's WSDL (soap; served by getWsdl) or OpenAPI 3 JSON description (rest; its operations become "
    "the service's endpoints).",
)
@json_option
def service_add(
    directory: Path, service_id: ServiceId, url: str, kind: str, timeout: int, description_file: Path | None, as_json: bool
) -> None:
    """Publish a service of a hosted client (a REST service: its base URL, no version)."""
    description = None
    if description_file is not None:
        description = _read_file(description_file, MAX_DESCRIPTION_BYTES, "service description")
    added = services.add_service(
        _server_dir(directory), service_id, url=url, kind=ServiceKind(kind), timeout_seconds=timeout,
        description=description,
    )
    data = _service_json(added)
    _emit(as_json, data, lambda: f"Added {_service_text(added.id)} -> {added.url}")


def _service_json(item: Service) -> dict[str, Any]:
    data: dict[str, Any] = {
        "service": _service_text(item.id),
        "kind": item.kind.value,
        "url": item.url,
        "timeout": item.timeout_seconds,
        "enabled": item.enabled,
        "disabled_notice": item.disabled_notice,
    }
    if item.description is not None:
        data["service_type"] = item.service_type
        data["endpoints"] = [str(e) for e in item.endpoints]
    return data


@service.command("update")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
@click.option("--url", required=True, help="Where the provider's service listens (http or https).")
@click.option("--timeout", type=int, required=True, help="Seconds, 1 to 3600.")
@click.option("--url-all", is_flag=True, help="The URL for every service of the same description too.")
@click.option("--timeout-all", is_flag=True, help="The timeout for every service of the same description too.")
@click.option("--ssl-auth/--no-ssl-auth", default=None,
              help="https: whether the provider's TLS certificate must be one of the client's TLS certificates.")
@click.option("--ssl-auth-all", is_flag=True, help="The TLS check for every service of the same description too.")
@json_option
def service_update(
    directory: Path, service_id: ServiceId, url: str, timeout: int, url_all: bool, timeout_all: bool,
    ssl_auth: bool | None, ssl_auth_all: bool, as_json: bool,
) -> None:
    """Change a service's URL, timeout and TLS check (X-Road's ServiceUpdate)."""
    changed = services.update_service(
        _server_dir(directory), service_id, url=url, timeout_seconds=timeout, url_all=url_all, timeout_all=timeout_all,
        ssl_auth=ssl_auth, ssl_auth_all=ssl_auth_all,
    )
    _emit(as_json, _service_json(changed), lambda: f"Updated {_service_text(changed.id)} -> {changed.url}")


@service.command("disable")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
@click.option("--notice", default="", help="What callers are told while the service is disabled.")
def service_disable(directory: Path, service_id: ServiceId, notice: str) -> None:
    """Disable a service; callers get service_disabled with the notice."""
    services.disable_service(_server_dir(directory), service_id, notice)
    click.echo(f"Disabled {_service_text(service_id)}")


@service.command("enable")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
def service_enable(directory: Path, service_id: ServiceId) -> None:
    """Enable a disabled service."""
    services.enable_service(_server_dir(directory), service_id)
    click.echo(f"Enabled {_service_text(service_id)}")


@service.command("list")
@dir_option
@click.option("--client", "client_id", type=CLIENT, help="Only this client's services.")
@json_option
def service_list(directory: Path, client_id: ClientId | None, as_json: bool) -> None:
    """List services."""
    found = services.list_services(_server_dir(directory), client_id)
    rows = [
        [_service_text(s.id), s.kind.value, s.url, str(s.timeout_seconds), "yes" if s.enabled else "no", s.disabled_notice]
        for s in found
    ]
    _emit(as_json, [_service_json(s) for s in found],
          lambda: cli_output.format_table(["service", "kind", "url", "timeout", "enabled", "notice"], rows))


# --- access rights -------------------------------------------------------------------------------------------------


@server.group()
def acl() -> None:
    """Access rights: who may call which service code (default deny)."""


def _endpoint_option(func: F) -> F:
    """``--endpoint "METHOD PATH"``: limit a right to one REST endpoint."""
    return click.option(
        "--endpoint",
        "endpoint_text",
        help="Only this REST endpoint, 'METHOD PATH' (METHOD or *; PATH with * for one segment, ** for any), "
        "e.g. 'GET /pets/*'.",
    )(func)


def _right(service_id: ServiceId, subject: Subject, endpoint_text: str | None) -> AccessRight:
    return AccessRight(subject, service_id, None if endpoint_text is None else Endpoint.parse(endpoint_text))


def _right_text(right: AccessRight) -> str:
    return _service_text(right.service) + ("" if right.endpoint is None else f" endpoint {right.endpoint}")


@acl.command("grant")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
@click.argument("subject", type=SUBJECT)
@_endpoint_option
def acl_grant(directory: Path, service_id: ServiceId, subject: Subject, endpoint_text: str | None) -> None:
    """Let SUBJECT call SERVICE (a service code, without version: rights cover every version)."""
    right = _right(service_id, subject, endpoint_text)
    access_rights.grant(_server_dir(directory), right)
    click.echo(f"Granted {subject} access to {_right_text(right)}")


@acl.command("revoke")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
@click.argument("subject", type=SUBJECT)
@_endpoint_option
def acl_revoke(directory: Path, service_id: ServiceId, subject: Subject, endpoint_text: str | None) -> None:
    """Take SUBJECT's right to call SERVICE (or one endpoint of it) away."""
    right = _right(service_id, subject, endpoint_text)
    access_rights.revoke(_server_dir(directory), right)
    click.echo(f"Revoked {subject}'s access to {_right_text(right)}")


@acl.command("list")
@dir_option
@click.option("--client", "client_id", type=CLIENT, help="Only rights to this provider's services.")
@click.option("--service", "service_id", type=SERVICE, help="Only rights to this service code.")
@json_option
def acl_list(directory: Path, client_id: ClientId | None, service_id: ServiceId | None, as_json: bool) -> None:
    """List access rights."""
    found = access_rights.list_rights(_server_dir(directory), provider=client_id, service=service_id)
    data = [
        {"service": _service_text(r.service), "subject": str(r.subject), "endpoint": str(r.endpoint) if r.endpoint else None}
        for r in found
    ]
    rows = [[_service_text(r.service), str(r.subject), str(r.endpoint) if r.endpoint else "(whole service)"] for r in found]
    _emit(as_json, data, lambda: cli_output.format_table(["service", "subject", "endpoint"], rows))


# --- local groups ---------------------------------------------------------------------------------------------------


@server.group()
def localgroup() -> None:
    """Local access-rights groups of a hosted client."""


@localgroup.command("add")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@click.argument("code", type=LOCAL_GROUP)
@click.option("--description", required=True, help="What the group is for.")
def localgroup_add(directory: Path, client_id: ClientId, code: LocalGroupId, description: str) -> None:
    """Create local group CODE for the hosted client CLIENT."""
    local_groups.add_group(_server_dir(directory), client_id, code, description)
    click.echo(f"Added local group {code.group_code} of {client_id}")


@localgroup.command("delete")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@click.argument("code", type=LOCAL_GROUP)
def localgroup_delete(directory: Path, client_id: ClientId, code: LocalGroupId) -> None:
    """Delete local group CODE of CLIENT with its members and the access rights granted to it."""
    local_groups.delete_group(_server_dir(directory), client_id, code)
    click.echo(f"Deleted local group {code.group_code} of {client_id}")


@localgroup.command("add-member")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@click.argument("code", type=LOCAL_GROUP)
@click.argument("member", type=CLIENT)
def localgroup_add_member(directory: Path, client_id: ClientId, code: LocalGroupId, member: ClientId) -> None:
    """Add MEMBER (a subsystem or member) to local group CODE of the hosted client CLIENT."""
    local_groups.add_member(_server_dir(directory), client_id, code, member)
    click.echo(f"Added {member} to local group {code.group_code} of {client_id}")


@localgroup.command("list")
@dir_option
@click.option("--client", "client_id", type=CLIENT, help="Only this client's groups.")
@json_option
def localgroup_list(directory: Path, client_id: ClientId | None, as_json: bool) -> None:
    """List local groups and their members."""
    groups = local_groups.list_groups(_server_dir(directory), client_id)
    data = [
        {
            "client": str(g.owner),
            "code": g.id.group_code,
            "description": g.description,
            "members": sorted(str(m) for m in g.members),
        }
        for g in groups
    ]
    rows = [[str(g.owner), g.id.group_code, g.description, ", ".join(sorted(str(m) for m in g.members))] for g in groups]
    _emit(as_json, data, lambda: cli_output.format_table(["client", "code", "description", "members"], rows))


@localgroup.command("update")
@dir_option
@click.argument("client_id", metavar="CLIENT", type=CLIENT)
@click.argument("code", type=LOCAL_GROUP)
@click.option("--description", required=True, help="What the group is for.")
def localgroup_update(directory: Path, client_id: ClientId, code: LocalGroupId, description: str) -> None:
    """Change the description of local group CODE of CLIENT."""
    local_groups.update_description(_server_dir(directory), client_id, code, description)
    click.echo(f"Changed local group {code.group_code} of {client_id}")


# --- REST endpoints added by hand -----------------------------------------------------------------------------------


@service.command("endpoint-add")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
@click.argument("endpoint_text", metavar="'METHOD PATH'")
def service_endpoint_add(directory: Path, service_id: ServiceId, endpoint_text: str) -> None:
    """Add an endpoint to a REST service, e.g. 'POST /pets'."""
    admin_endpoints.add_endpoint(_server_dir(directory), service_id, Endpoint.parse(endpoint_text))
    click.echo(f"Added endpoint {Endpoint.parse(endpoint_text)} to {service_id.service_code}")


@service.command("endpoint-update")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
@click.argument("old_text", metavar="'METHOD PATH'")
@click.argument("new_text", metavar="'NEW_METHOD NEW_PATH'")
def service_endpoint_update(directory: Path, service_id: ServiceId, old_text: str, new_text: str) -> None:
    """Change an endpoint added by hand; its access rights follow it."""
    new = Endpoint.parse(new_text)
    admin_endpoints.update_endpoint(_server_dir(directory), service_id, Endpoint.parse(old_text), new)
    click.echo(f"Changed endpoint to {new}")


@service.command("endpoint-delete")
@dir_option
@click.argument("service_id", metavar="SERVICE", type=SERVICE)
@click.argument("endpoint_text", metavar="'METHOD PATH'")
def service_endpoint_delete(directory: Path, service_id: ServiceId, endpoint_text: str) -> None:
    """Delete an endpoint added by hand with the access rights limited to it."""
    admin_endpoints.delete_endpoint(_server_dir(directory), service_id, Endpoint.parse(endpoint_text))
    click.echo(f"Deleted endpoint {Endpoint.parse(endpoint_text)}")


# --- commands that talk to the network ----------------------------------------------------------------------------


def _run_in_reactor(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work(reactor)`` to completion in a reactor; a BusError inside it is raised here (and reported by
    the command group, :class:`~security_server.edge.cli_output.BusErrorGroup`). The reactor runs once per
    process, which is all a command needs."""
    import sys

    from twisted.internet import task

    from security_server.core.config import LoggingConfig
    from security_server.logconfig import configure_logging

    # Progress events go to stderr, so that stdout carries only the command's answer (tables or --json).
    configure_logging(LoggingConfig(level="info", format="console"), stream=sys.stderr)
    outcome: dict[str, Any] = {}

    async def guarded(reactor: Any) -> None:
        try:
            outcome["result"] = await work(reactor)
        except BusError as err:
            outcome["error"] = err

    def main(reactor: Any) -> defer.Deferred[None]:
        return defer.ensureDeferred(guarded(reactor))

    try:
        task.react(main)
    except SystemExit as exit_status:
        if exit_status.code not in (0, None) and "error" not in outcome:
            raise click.ClickException("the command failed (see the messages above)") from None
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def _report(as_json: bool, answer: Mapping[str, Any]) -> None:
    _emit(as_json, dict(answer), lambda: cli_output.format_table(["request", "type", "status"], [[answer["id"], answer["type"], answer["status"]]]))


@server.command()
@dir_option
@click.option("--address", required=True, help="Where other security servers reach this server's proxy, host:port.")
@json_option
def register(directory: Path, address: str, as_json: bool) -> None:
    """Send authCertReg for this server's authentication certificate to the registry (pr-mserv §2.2)."""
    server_dir = _server_dir(directory)
    with server_dir.open_store() as store:
        store.identity()  # fail before starting a reactor when the server is not initialised

    async def work(reactor: Any) -> Any:
        return await admin_registration.register_server(reactor, server_dir, address)

    _report(as_json, _run_in_reactor(work))


@client.command("register")
@dir_option
@click.argument("client_id", metavar="SUBSYSTEM", type=SUBSYSTEM)
@json_option
def client_register(directory: Path, client_id: ClientId, as_json: bool) -> None:
    """Send clientReg for a hosted subsystem to the registry (pr-mserv §2.1); the client waits for approval."""
    server_dir = _server_dir(directory)
    with server_dir.open_store() as store:
        store.identity()  # fail before starting a reactor when the server is not initialised

    async def work(reactor: Any) -> Any:
        return await admin_registration.register_client(reactor, server_dir, client_id)

    _report(as_json, _run_in_reactor(work))


@server.command("api")
@dir_option
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An INI file layered over conf/security-server.ini and conf.d/local.ini.")
def api_alone(directory: Path, config_file: Path | None) -> None:
    """Serve the management API alone (before `init`, to set the server up through it) until stopped."""
    from security_server.management.standalone import serve_alone

    serve_alone(directory, config_file)


@server.command()
@dir_option
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An INI file layered over conf/security-server.ini and conf.d/local.ini.")
@click.option("--pin-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The soft token's PIN on this file's first line (when it has one; asked for otherwise).")
def run(directory: Path, config_file: Path | None, pin_file: Path | None) -> None:
    """Run the security server (client proxy, server proxy, configuration client, message log) until stopped.

    A soft token with a PIN is logged in first (the proxies need its TLS key to listen): from ``--pin-file``, or
    asked for on a terminal."""
    from twisted.internet import reactor as global_reactor

    from security_server.configfile import load_config
    from security_server.core.config import LoggingConfig
    from security_server.gc_tuning import tune_collector
    from security_server.logconfig import configure_logging
    from security_server.service import ServerSettings, make_service
    from security_server.workers import WorkerSupervisor

    config = load_config("security-server", extra=config_file)
    settings = ServerSettings.from_config(directory, config)
    _login_at_start(directory, pin_file)
    logging = LoggingConfig.from_config(config)
    configure_logging(logging)
    service: Any = make_service(global_reactor, settings) if settings.workers == 1 else WorkerSupervisor(
        global_reactor, settings, logging=logging
    )  # [server] workers = N: a parent and N worker processes (security_server/workers.py)
    service.startService()
    reactor: Any = global_reactor
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.callWhenRunning(tune_collector)  # security_server/gc_tuning.py
    reactor.run()


def _login_at_start(directory: Path, pin_file: Path | None) -> None:
    """Log a soft token that has a PIN in before the server is built (X-Road's autologin); with ``[server] workers``
    above 1 the parent gives the login to every worker it starts (security_server/workers.py)."""
    import sys

    from security_server.signer.softtoken_pin import PIN_FILE

    if not (directory / KEYS_DIR / PIN_FILE).is_file():
        return
    token = SoftToken(directory / KEYS_DIR)
    if pin_file is None and not sys.stdin.isatty():
        raise click.ClickException("the soft token has a PIN: give --pin-file, or run on a terminal to be asked for it")
    token.login(_pin(pin_file, "Soft token PIN"))


# --- the management API's users and API keys ---------------------------------------------------------------------

from security_server.management import commands as management_commands  # noqa: E402  # needs the options above

management_commands.register(server, dir_option, json_option)
