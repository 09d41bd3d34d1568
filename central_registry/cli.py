"""``fedbus registry ...``: the registry administrator's commands (so far the development CA, ``registry ca``)."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from central_registry.admin import management_requests as admin_requests
from central_registry.admin import members as admin_members
from central_registry.admin import security_servers as admin_servers
from central_registry.bootstrap import CERTIFICATE_PROFILE, init_registry, join_registry
from central_registry import conf_signing_key as token_files
from central_registry.conf_signing_key import ConfSigningSettings, create_in_token
from central_registry import backup_commands
from central_registry.management import commands as management_commands
from central_registry.publisher import Publisher, SelfSignedKey
from central_registry.requests import RequestStatus
from central_registry.service import RegistryPaths, RegistryService, RegistrySettings
from central_registry.store import ApprovedCa as StoreApprovedCa
from central_registry.store import ApprovedTsa as StoreApprovedTsa
from central_registry.store import RegistryStore
from security_server.edge.atomic_file import write_atomically
from central_registry.trust.ca import CertKind, DevelopmentCA, IssuedCert
from central_registry.trust.serials import CA_SEQUENCE, SharedSerials
from security_server.configfile import load_config
from security_server.core.config import DatabaseConfig, LoggingConfig
from security_server.core.certprofile import is_known_profile, profile_named, profile_names
from security_server.core.errors import BusError, InvalidClientIdentifier
from security_server.core.globalconf import anchor_hash
from security_server.core.identifiers import ClientId, GlobalGroupId
from security_server.edge.cli_output import BusErrorGroup, bus_errors_as_command_errors, emit, format_table, json_option
from security_server.logconfig import configure_logging

T = TypeVar("T")

REASONS = [flag.value for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.remove_from_crl]

REGISTRY_DIR_ENV = "FEDBUS_REGISTRY_DIR"
DEFAULT_REGISTRY_DIR = "./fedbus-registry"


def _default_ca_dir() -> Path:
    return Path(os.environ.get(REGISTRY_DIR_ENV, DEFAULT_REGISTRY_DIR)) / "ca"


_DIR_OPTION = click.option(
    "--dir",
    "directory",
    default=_default_ca_dir,
    show_default=f"${REGISTRY_DIR_ENV}/ca",
    type=click.Path(file_okay=False, path_type=Path),
    help="The CA directory (keys, certificates, index.json); by default the registry's own CA.",
)


_JSON_OPTION = json_option("Print JSON (for scripts) instead of a table.")


def _now() -> datetime:
    return datetime.now(UTC)


def _ca_errors() -> AbstractContextManager[None]:
    """The ``ca`` commands report a BusError by its message alone (as they always have)."""
    return bus_errors_as_command_errors(with_reason=False, with_code=False)


def _open(directory: Path) -> DevelopmentCA:
    """The CA of ``directory``; with ``[database] url`` (a clustered registry) its serials come from the shared
    database, so a CA copied to another node never repeats one (central_registry/trust/serials.py)."""
    with _ca_errors():
        url = DatabaseConfig.from_config(load_config("central-registry")).url
        return DevelopmentCA.open(directory, shared_serials=SharedSerials(url, CA_SEQUENCE) if url else None)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _profile_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A certificate profile fedbus reads (short name or X-Road's class name), kept as an approved CA names it."""
    if not is_known_profile(value):
        raise click.BadParameter(f"unknown certificate profile {value!r} (known: {', '.join(profile_names())} "
                                 "or their X-Road class names)")
    chosen = profile_named(value)
    return chosen.xroad_class or chosen.name


@click.group(cls=BusErrorGroup)
def registry() -> None:
    """Central registry administration."""


@registry.group()
def ca() -> None:
    """The development certificate authority (for development, tests and the demo)."""


@ca.command("init")
@_DIR_OPTION
@click.option("--name", default="fedbus development CA", show_default=True, help="The CA's common name.")
@click.option("--key-size", default=3072, show_default=True, type=click.IntRange(min=2048), help="RSA key size.")
@click.option("--days", default=3650, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
@click.option("--ocsp-url", default=None, help="OCSP URL to write into issued certificates (authorityInfoAccess).")
@click.option("--profile", default=CERTIFICATE_PROFILE, show_default=True, callback=_profile_option,
              help=f"The certificate profile it issues under: {', '.join(profile_names())} or X-Road's class name.")
def init_command(directory: Path, name: str, key_size: int, days: int, ocsp_url: str | None, profile: str) -> None:
    """Create a root CA key and self-signed certificate in DIR."""
    with _ca_errors():
        authority = DevelopmentCA.init(
            directory, name, _now(), key_size=key_size, validity_days=days, ocsp_url=ocsp_url, profile=profile
        )
    click.echo(f"initialised CA {authority.certificate.subject.rfc4514_string()} in {directory} "
               f"(certificate profile {authority.profile})")
    click.echo(f"certificate: {directory / 'ca-cert.pem'}")


@ca.command("issue")
@_DIR_OPTION
@click.option("--csr", "csr_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", required=True, type=click.Choice(["auth", "sign"]), help="Authentication or signing.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--days", default=730, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
def issue_command(directory: Path, csr_path: Path, kind: str, out_path: Path, days: int) -> None:
    """Issue a certificate from a PKCS#10 request (PEM or DER) whose subject fits the certificate profile."""
    authority = _open(directory)
    with bus_errors_as_command_errors(with_code=False):
        cert = authority.issue(csr_path.read_bytes(), CertKind(kind), _now(), validity_days=days)
    write_atomically(out_path, _pem(cert))
    click.echo(f"issued {kind} certificate {cert.serial_number:X} for {cert.subject.rfc4514_string()} -> {out_path}")


@ca.command("revoke")
@_DIR_OPTION
@click.option("--serial", required=True, help="Serial number in hex, as `ca list` shows it.")
@click.option("--reason", default="unspecified", show_default=True, type=click.Choice(REASONS))
def revoke_command(directory: Path, serial: str, reason: str) -> None:
    """Revoke an issued certificate; the OCSP responder answers "revoked" from now on."""
    try:
        number = int(serial.removeprefix("0x").removeprefix("0X").replace(":", ""), 16)
    except ValueError as err:
        raise click.ClickException(f"serial {serial!r} is not a hex number") from err
    authority = _open(directory)
    with _ca_errors():
        revoked = authority.revoke(number, x509.ReasonFlags(reason), _now())
    click.echo(f"revoked {revoked.serial:X} ({reason}) {revoked.subject}")


def _row(entry: IssuedCert) -> tuple[str, str, str, str, str]:
    status = f"revoked ({entry.reason.value})" if entry.reason else "valid"
    return f"{entry.serial:X}", str(entry.kind), status, entry.not_after.strftime("%Y-%m-%d"), entry.subject


@ca.command("list")
@_DIR_OPTION
@_JSON_OPTION
def list_command(directory: Path, as_json: bool) -> None:
    """List every certificate the CA issued, with revocations."""
    authority = _open(directory)
    with _ca_errors():
        entries = authority.issued()
    records = [{k: v for k, v in entry.to_json().items() if k != "cert_pem"} for entry in entries]
    headers = ["SERIAL", "KIND", "STATUS", "NOT AFTER", "SUBJECT"]
    emit(as_json, records, lambda: format_table(headers, [_row(entry) for entry in entries], empty=None))


@ca.command("ocsp-cert")
@_DIR_OPTION
@click.option("--days", default=365, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
def ocsp_cert_command(directory: Path, days: int) -> None:
    """Make a delegated OCSP-signing key and certificate; the responder signs with it from then on."""
    authority = _open(directory)
    with _ca_errors():
        cert = authority.issue_ocsp_cert(_now(), validity_days=days)
    click.echo(f"issued OCSP-signing certificate {cert.serial_number:X} -> {directory / 'ocsp-cert.pem'}")


@ca.command("tsa-cert")
@_DIR_OPTION
@click.option("--days", default=1825, show_default=True, type=click.IntRange(min=1), help="Validity in days.")
def tsa_cert_command(directory: Path, days: int) -> None:
    """Make the TSA key and certificate (critical extendedKeyUsage timeStamping)."""
    authority = _open(directory)
    with _ca_errors():
        cert = authority.issue_tsa_cert(_now(), validity_days=days)
    click.echo(f"issued TSA certificate {cert.serial_number:X} -> {directory / 'tsa-cert.pem'}")


# --- the registry itself: members, servers, requests, trust services, groups, publishing ----------------------


def _registry_dir_option(func: Any) -> Any:
    return click.option(
        "--registry-dir",
        "root",
        envvar=REGISTRY_DIR_ENV,
        default=DEFAULT_REGISTRY_DIR,
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=f"The registry's working directory (env {REGISTRY_DIR_ENV}).",
    )(func)


def _emit(as_json: bool, data: Any, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    emit(as_json, data, lambda: format_table([h.upper() for h in headers], rows, empty=None))


class _Store:
    """Opens the registry store for one command (a BusError inside is reported by the ``registry`` group)."""

    def __init__(self, root: Path) -> None:
        self.paths = RegistryPaths(root)
        # ``[database] url`` (conf.d/local.ini): the registry's nodes share a PostgreSQL database (issue 19).
        self.database_url = DatabaseConfig.from_config(load_config("central-registry")).url

    def __enter__(self) -> RegistryStore:
        if not self.database_url and not self.paths.database.is_file():
            raise click.ClickException(f"no registry in {self.paths.root} (run `fedbus registry init` first)")
        self.store = RegistryStore(self.paths.database, database_url=self.database_url)
        if self.database_url and not self.store.is_initialised():
            self.store.close()
            raise click.ClickException(f"no registry in {self.database_url.split('@')[-1]} (run `fedbus registry init` first)")
        return self.store

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self.store.close()


def _identifier(parse: Callable[[str], T]) -> Callable[[Any, Any, str], T]:
    def convert(ctx: Any, param: Any, value: str) -> T:
        try:
            return parse(value)
        except BusError as err:
            raise click.BadParameter(err.message) from err

    return convert


def _member_id(text: str) -> ClientId:
    client = ClientId.parse_display(text)
    if client.subsystem_code is not None:
        raise InvalidClientIdentifier("expected a member (MEMBER:EE/GOV/123), not a subsystem")
    return client


def _settings_of(root: Path, config_file: Path | None) -> RegistrySettings:
    return RegistrySettings.from_config(root, load_config("central-registry", extra=config_file))


def _config_option(func: Any) -> Any:
    return click.option(
        "--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="An INI file layered over conf/central-registry.ini and conf.d/local.ini.",
    )(func)


# ``fedbus registry user ...`` and ``api-key ...``: the credentials of the registry's management API.
management_commands.register(registry, _registry_dir_option, _JSON_OPTION)
backup_commands.register(registry, _registry_dir_option, _JSON_OPTION)


@registry.command("init")
@_registry_dir_option
@click.option("--instance", required=True, help="The instance identifier, e.g. EE or EE-test.")
@click.option("--no-dev-ca", is_flag=True, help="Do not make a development CA, OCSP responder and TSA.")
@_config_option
@_JSON_OPTION
def registry_init(root: Path, instance: str, no_dev_ca: bool, config_file: Path | None, as_json: bool) -> None:
    """Create a registry: database, configuration-signing key, HTTPS key and (by default) a development CA."""
    settings = _settings_of(root, config_file)
    with bus_errors_as_command_errors(with_reason=False):
        paths = init_registry(
            root, instance, _now(), public_url=settings.public_url, dev_ca=not no_dev_ca,
            database_url=settings.database.url,
        )
    data = {"instance": instance, "directory": str(paths.root), "public_url": settings.public_url, "dev_ca": not no_dev_ca}
    _emit(as_json, data, ["instance", "directory", "public url"], [[instance, str(paths.root), settings.public_url]])


@registry.command("join")
@_registry_dir_option
@_config_option
@_JSON_OPTION
def registry_join(root: Path, config_file: Path | None, as_json: bool) -> None:
    """Make this directory another node of the clustered registry in ``[database] url``: its own keys (issue 19)."""
    settings = _settings_of(root, config_file)
    if not settings.database.url:
        raise click.ClickException("joining a registry cluster needs [database] url (the shared PostgreSQL database)")
    with bus_errors_as_command_errors(with_reason=False):
        paths, instance = join_registry(root, _now(), database_url=settings.database.url)
    data = {"instance": instance, "directory": str(paths.root), "public_url": settings.public_url}
    _emit(as_json, data, ["instance", "directory", "public url"], [[instance, str(paths.root), settings.public_url]])


@registry.command("set")
@_registry_dir_option
@click.argument("key", type=click.Choice(sorted([*RegistryStore._INT_SETTINGS, "auto_approve", "monitoring_client"])))
@click.argument("value")
def registry_set(root: Path, key: str, value: str) -> None:
    """Change a federation setting (OCSP freshness, timestamping interval, configuration expiry, auto-approve, the
    central monitoring client: MEMBER:... or SUBSYSTEM:..., empty for none)."""
    with _Store(root) as store:
        store.set_setting(key, value)
    click.echo(f"{key} = {value}")


@registry.group()
def member() -> None:
    """Members of the federation."""


@member.command("add")
@_registry_dir_option
@click.argument("member_id", metavar="MEMBER", callback=_identifier(_member_id))
@click.option("--name", required=True, help="The member's official name.")
def member_add(root: Path, member_id: ClientId, name: str) -> None:
    """Add a member, e.g. MEMBER:EE/GOV/70000310."""
    with _Store(root) as store:
        admin_members.add_member(store, member_id, name)
    click.echo(f"added {member_id} ({name})")


@member.command("remove")
@_registry_dir_option
@click.argument("member_id", metavar="MEMBER", callback=_identifier(_member_id))
def member_remove(root: Path, member_id: ClientId) -> None:
    """Remove a member that owns no security server."""
    with _Store(root) as store:
        admin_members.delete_member(store, member_id)
    click.echo(f"removed {member_id}")


@member.command("list")
@_registry_dir_option
@_JSON_OPTION
def member_list(root: Path, as_json: bool) -> None:
    """List members with their subsystems."""
    with _Store(root) as store:
        members = admin_members.members(store)
    data = [{"id": str(m.id), "name": m.name, "subsystems": list(m.subsystems)} for m in members]
    _emit(as_json, data, ["member", "name", "subsystems"], [[str(m.id), m.name, ", ".join(m.subsystems)] for m in members])


@registry.group()
def subsystem() -> None:
    """Subsystems of members."""


@subsystem.command("add")
@_registry_dir_option
@click.argument("subsystem_id", metavar="SUBSYSTEM", callback=_identifier(ClientId.parse_display))
def subsystem_add(root: Path, subsystem_id: ClientId) -> None:
    """Add a subsystem to an existing member, e.g. SUBSYSTEM:EE/GOV/70000310/registry."""
    with _Store(root) as store:
        admin_members.add_subsystem(store, subsystem_id)
    click.echo(f"added {subsystem_id}")


@registry.group("server")
def server_group() -> None:
    """Registered security servers."""


@server_group.command("list")
@_registry_dir_option
@_JSON_OPTION
def server_list(root: Path, as_json: bool) -> None:
    """List security servers with their addresses, auth-certificate hashes and clients."""
    with _Store(root) as store:
        servers = admin_servers.security_servers(store)
    data = [
        {"id": str(s.id), "address": s.address, "auth_cert_hashes": [h.hex() for h in s.auth_cert_hashes],
         "clients": [str(c) for c in s.clients]}
        for s in servers
    ]
    rows = [[str(s.id), s.address, str(len(s.auth_cert_hashes)), ", ".join(str(c) for c in s.clients)] for s in servers]
    _emit(as_json, data, ["server", "address", "auth certs", "clients"], rows)


@registry.group()
def requests() -> None:
    """Registration requests from security servers."""


@requests.command("list")
@_registry_dir_option
@click.option("--status", type=click.Choice([s.value for s in RequestStatus]), help="Only requests in this state.")
@_JSON_OPTION
def requests_list(root: Path, status: str | None, as_json: bool) -> None:
    """List requests, oldest first."""
    with _Store(root) as store:
        records = admin_requests.records(store, RequestStatus(status) if status else None)
    data = [
        {"id": r.id, "type": str(r.type), "status": str(r.status), "server": r.server, "client": r.client,
         "submitted_at": r.submitted_at, "decided_at": r.decided_at}
        for r in records
    ]
    rows = [[r.id, str(r.type), str(r.status), r.server, r.client or ""] for r in records]
    _emit(as_json, data, ["id", "type", "status", "server", "client"], rows)


@requests.command("approve")
@_registry_dir_option
@click.argument("request_id")
def requests_approve(root: Path, request_id: str) -> None:
    """Approve a pending request; it takes effect in the next published configuration."""
    with _Store(root) as store:
        record = admin_requests.approve_by_id(store, request_id, _now())
    click.echo(f"approved {record.type} {record.id}")


@requests.command("reject")
@_registry_dir_option
@click.argument("request_id")
def requests_reject(root: Path, request_id: str) -> None:
    """Reject a pending request."""
    with _Store(root) as store:
        record = admin_requests.decline_by_id(store, request_id, _now())
    click.echo(f"rejected {record.type} {record.id}")


def _cert_der(path: Path) -> bytes:
    data = path.read_bytes()
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError as err:
        raise click.ClickException(f"{path} is not a certificate") from err
    return cert.public_bytes(serialization.Encoding.DER)


@ca.command("add")
@_registry_dir_option
@click.option("--name", required=True, help="A name for the approved CA.")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ocsp-url", help="The CA's OCSP responder.")
@click.option("--ocsp-cert", "ocsp_cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The responder's certificate, when it is not the CA itself.")
@click.option("--auth-only", is_flag=True, help="Approve for authentication certificates only.")
@click.option("--profile", default=CERTIFICATE_PROFILE, show_default=True, callback=_profile_option,
              help=f"The CA's certificate profile: {', '.join(profile_names())} or X-Road's class name.")
def ca_add(root: Path, name: str, cert_file: Path, ocsp_url: str | None, ocsp_cert_file: Path | None, auth_only: bool,
           profile: str) -> None:
    """Approve a certification authority for the federation (published in the shared parameters)."""
    ocsp_der = _cert_der(ocsp_cert_file) if ocsp_cert_file else None
    with _Store(root) as store:
        store.add_ca(StoreApprovedCa(name, _cert_der(cert_file), ocsp_url, ocsp_der, auth_only, profile))
    click.echo(f"approved CA {name} (certificate profile {profile})")


@ca.command("approved")
@_registry_dir_option
@_JSON_OPTION
def ca_approved(root: Path, as_json: bool) -> None:
    """List the certification authorities the federation trusts."""
    with _Store(root) as store:
        cas = store.cas()
    data = [{"name": c.name, "subject": x509.load_der_x509_certificate(c.cert_der).subject.rfc4514_string(),
             "ocsp_url": c.ocsp_url, "authentication_only": c.authentication_only, "certificate_profile": c.profile}
            for c in cas]
    rows = [[c.name, x509.load_der_x509_certificate(c.cert_der).subject.rfc4514_string(), c.ocsp_url or ""] for c in cas]
    _emit(as_json, data, ["name", "subject", "ocsp url"], rows)


@registry.group()
def tsa() -> None:
    """Approved timestamping authorities."""


@tsa.command("add")
@_registry_dir_option
@click.option("--name", required=True)
@click.option("--url", required=True, help="The TSA's RFC 3161 URL.")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def tsa_add(root: Path, name: str, url: str, cert_file: Path) -> None:
    """Approve a timestamping authority."""
    with _Store(root) as store:
        store.add_tsa(StoreApprovedTsa(name, url, _cert_der(cert_file)))
    click.echo(f"approved TSA {name}")


@tsa.command("list")
@_registry_dir_option
@_JSON_OPTION
def tsa_list(root: Path, as_json: bool) -> None:
    """List approved timestamping authorities."""
    with _Store(root) as store:
        tsas = store.tsas()
    data = [{"name": t.name, "url": t.url} for t in tsas]
    _emit(as_json, data, ["name", "url"], [[t.name, t.url] for t in tsas])


@registry.group()
def group() -> None:
    """Global groups."""


@group.command("add")
@_registry_dir_option
@click.argument("group_id", metavar="GLOBALGROUP", callback=_identifier(GlobalGroupId.parse_display))
@click.option("--description", default="", help="What the group is for.")
def group_add(root: Path, group_id: GlobalGroupId, description: str) -> None:
    """Create a global group, e.g. GLOBALGROUP:EE/tax-partners."""
    with _Store(root) as store:
        store.add_group(group_id, description)
    click.echo(f"added {group_id}")


@group.command("add-member")
@_registry_dir_option
@click.argument("group_id", metavar="GLOBALGROUP", callback=_identifier(GlobalGroupId.parse_display))
@click.argument("client_id", metavar="CLIENT", callback=_identifier(ClientId.parse_display))
def group_add_member(root: Path, group_id: GlobalGroupId, client_id: ClientId) -> None:
    """Add a member or subsystem to a global group."""
    with _Store(root) as store:
        store.add_group_member(group_id, client_id)
    click.echo(f"added {client_id} to {group_id}")


@group.command("list")
@_registry_dir_option
@_JSON_OPTION
def group_list(root: Path, as_json: bool) -> None:
    """List global groups and their members."""
    with _Store(root) as store:
        groups = store.groups()
    data = [{"id": str(g.id), "description": g.description, "members": [str(m) for m in g.members]} for g in groups]
    _emit(as_json, data, ["group", "members"], [[str(g.id), ", ".join(str(m) for m in g.members)] for g in groups])


_PIN_FILE_OPTION = click.option(
    "--pin-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The soft token's PIN on this file's first line: log in with it (X-Road's autologin; never on a command "
         "line).")


def _read_pin(pin_file: Path | None, prompt: str, *, confirm: bool = False) -> str:
    """A PIN from the first line of ``pin_file``, or asked for without echo (never on the command line)."""
    if pin_file is None:
        answer: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        return answer
    try:
        lines = pin_file.read_bytes()[:4096].decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise click.ClickException(f"cannot read the PIN from {pin_file}: {err}") from err
    if not lines or not lines[0]:
        raise click.ClickException(f"{pin_file} must hold the PIN on its first line")
    return lines[0]


def _login_at_start(root: Path, pin_file: Path | None) -> None:
    """Log the registry's soft token in from ``pin_file`` when its key files are encrypted under a PIN (else it
    starts logged out, as X-Road's central server without autologin)."""
    directory = RegistryPaths(root).conf_signing
    if pin_file is not None and token_files.has_pin(directory):
        token_files.login(directory, _read_pin(pin_file, "PIN"))


def _publisher(root: Path, store: RegistryStore, settings: RegistrySettings, config_file: Path | None) -> Publisher:
    paths = RegistryPaths(root)
    tls = SelfSignedKey.load(paths.tls)
    signing = ConfSigningSettings.from_config(load_config("central-registry", extra=config_file))
    conf_key = token_files.open_conf_signing_key(paths.conf_signing, signing)
    return Publisher(
        store, paths.published, conf_key,
        public_url=settings.public_url, management_url=settings.management_url, management_cert_der=tls.cert_der,
    )


@registry.command("publish")
@_registry_dir_option
@_config_option
@_PIN_FILE_OPTION
def registry_publish(root: Path, config_file: Path | None, pin_file: Path | None) -> None:
    """Generate, sign and publish the global configuration now (`serve` also does this every interval); a token
    with a PIN needs --pin-file."""
    _login_at_start(root, pin_file)
    settings = _settings_of(root, config_file)
    with _Store(root) as store:
        publication = _publisher(root, store, settings, config_file).publish(_now())
    click.echo(f"published generation {publication.generation}, expires {publication.expires_at.isoformat()}")


@registry.command("anchor")
@_registry_dir_option
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@_config_option
def registry_anchor(root: Path, out_file: Path, config_file: Path | None) -> None:
    """Write the configuration anchor that security servers are initialised with (deliver it out of band)."""
    settings = _settings_of(root, config_file)
    with _Store(root) as store:
        anchor = _publisher(root, store, settings, config_file).anchor(_now())
    write_atomically(out_file, anchor)
    click.echo(f"wrote anchor {anchor_hash(anchor)} -> {out_file}")


@registry.command("conf-signing-key")
@_registry_dir_option
@_config_option
def registry_conf_signing_key(root: Path, config_file: Path | None) -> None:
    """Make the configuration-signing key in the token that [conf-signing] names (move conf-signing/key.pem
    away first); then write a new anchor and give it to every security server."""
    config = load_config("central-registry", extra=config_file)
    signing = ConfSigningSettings.from_config(config)
    paths = RegistryPaths(root)
    with _Store(root) as store:
        name = store.settings().instance
    made = create_in_token(paths.conf_signing, signing, f"{name} configuration signing", _now())
    token = signing.token.name if signing.token is not None else "-"
    click.echo(f"made the configuration-signing key {signing.key_label!r} in token {token}; "
               f"certificate -> {paths.conf_signing / 'cert.pem'} ({made.cert.serial_number:X})")


@registry.group("token")
def token_group() -> None:
    """The registry's soft token: the PIN its configuration-signing keys are encrypted under."""


@token_group.command("set-pin")
@_registry_dir_option
@click.option("--pin-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the new PIN from this file's first line instead of asking for it.")
@click.option("--old-pin-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the current PIN from this file instead of asking for it.")
def token_set_pin(root: Path, pin_file: Path | None, old_pin_file: Path | None) -> None:
    """Encrypt the configuration-signing key files under a PIN (or change it; every key is re-encrypted). Run it
    while the registry is stopped: it starts logged out afterwards (serve --pin-file, or log in through its API)."""
    directory = RegistryPaths(root).conf_signing
    old = _read_pin(old_pin_file, "Current PIN") if token_files.has_pin(directory) else None
    new = _read_pin(pin_file, "New PIN", confirm=True)
    token_files.set_pin(directory, new, old)
    click.echo("The registry's token PIN is set; its configuration-signing keys are encrypted under it")


@registry.command("serve")
@_registry_dir_option
@_config_option
@_PIN_FILE_OPTION
def registry_serve(root: Path, config_file: Path | None, pin_file: Path | None) -> None:
    """Run the registry: configuration, OCSP and TSA over HTTP, registrations over HTTPS, until stopped. A token
    whose keys are encrypted under a PIN starts logged out (nothing is published) unless --pin-file logs it in."""
    from twisted.internet import reactor as global_reactor

    _login_at_start(root, pin_file)
    config = load_config("central-registry", extra=config_file)
    configure_logging(LoggingConfig.from_config(config))
    settings = RegistrySettings.from_config(root, config)
    reactor: Any = global_reactor
    service = RegistryService(
        reactor, root, host=settings.host, http_port=settings.http_port, https_port=settings.https_port,
        management=settings.management,
        public_url=settings.public_url, health=settings.health, database_url=settings.database.url,
        conf_signing=settings.conf_signing,
    )
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
