"""The central registry's store: members, subsystems, security servers, trust services, groups, settings.

One SQLite database (WAL), or one PostgreSQL database that registry nodes share (``[database] url``), opened
through the store layer (:mod:`security_server.store`): its transaction mode and its error mapping are the other
stores'. The schema is :data:`SCHEMA`, numbered migrations recorded in the database; migration 1 is the schema
this registry always had, written with ``IF NOT EXISTS``, so a database created before numbered migrations opens
unchanged and is recorded at version 1.

Every change runs in one transaction and is written to the ``audit`` table in the same transaction, so the
registry's history cannot drift from its state. Methods refuse invalid or duplicate input with
:class:`RegistryError` and change nothing when they do.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from security_server.core.errors import BusError, ClientFault
from security_server.core.identifiers import ClientId, GlobalGroupId, SecurityServerId, check_part
from security_server.store.engine import Database, as_dicts
from security_server.store.errors import ConstraintViolated
from security_server.store.migrations import Schema, migrate, sql_migration
from security_server.store.opening import open_database

T = TypeVar("T")

_TEXT = 'TEXT COLLATE "C"'
"""PostgreSQL text that compares and sorts byte by byte, as SQLite's TEXT does, whatever the database's locale."""

SCHEMA = Schema(
    "registry",
    (
        sql_migration(
            1,
            "registry",
            "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS member_classes (code TEXT PRIMARY KEY, description TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS members (id TEXT PRIMARY KEY, member_class TEXT NOT NULL"
            " REFERENCES member_classes(code), member_code TEXT NOT NULL, name TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS subsystems (member_id TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,"
            " subsystem_code TEXT NOT NULL, PRIMARY KEY (member_id, subsystem_code))",
            "CREATE TABLE IF NOT EXISTS security_servers (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL"
            " REFERENCES members(id), server_code TEXT NOT NULL, address TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS auth_certs (hash BLOB PRIMARY KEY, server_id TEXT NOT NULL"
            " REFERENCES security_servers(id) ON DELETE CASCADE, cert_der BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS server_clients (server_id TEXT NOT NULL REFERENCES security_servers(id)"
            " ON DELETE CASCADE, client_id TEXT NOT NULL, PRIMARY KEY (server_id, client_id))",
            "CREATE TABLE IF NOT EXISTS approved_cas (name TEXT PRIMARY KEY, cert_der BLOB NOT NULL,"
            " ocsp_url TEXT, ocsp_cert_der BLOB, authentication_only INTEGER NOT NULL, profile TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS approved_tsas (name TEXT PRIMARY KEY, url TEXT NOT NULL,"
            " cert_der BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS global_groups (id TEXT PRIMARY KEY, description TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS group_members (group_id TEXT NOT NULL REFERENCES global_groups(id)"
            " ON DELETE CASCADE, client_id TEXT NOT NULL, PRIMARY KEY (group_id, client_id))",
            "CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL,"
            " status TEXT NOT NULL, submitted_at TEXT NOT NULL, decided_at TEXT, server_id TEXT, client_id TEXT)",
            "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
            " event TEXT NOT NULL, detail TEXT NOT NULL)",
            # The same tables in PostgreSQL's words: BYTEA for BLOB, an identity column for AUTOINCREMENT, and
            # byte-order text, so that every listing comes back in the order SQLite gives.
            postgresql=(
                f"CREATE TABLE IF NOT EXISTS settings (key {_TEXT} PRIMARY KEY, value {_TEXT} NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS member_classes (code {_TEXT} PRIMARY KEY, description {_TEXT} NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS members (id {_TEXT} PRIMARY KEY, member_class {_TEXT} NOT NULL"
                f" REFERENCES member_classes(code), member_code {_TEXT} NOT NULL, name {_TEXT} NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS subsystems (member_id {_TEXT} NOT NULL REFERENCES members(id)"
                f" ON DELETE CASCADE, subsystem_code {_TEXT} NOT NULL, PRIMARY KEY (member_id, subsystem_code))",
                f"CREATE TABLE IF NOT EXISTS security_servers (id {_TEXT} PRIMARY KEY, owner_id {_TEXT} NOT NULL"
                f" REFERENCES members(id), server_code {_TEXT} NOT NULL, address {_TEXT} NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS auth_certs (hash BYTEA PRIMARY KEY, server_id {_TEXT} NOT NULL"
                " REFERENCES security_servers(id) ON DELETE CASCADE, cert_der BYTEA NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS server_clients (server_id {_TEXT} NOT NULL REFERENCES security_servers(id)"
                f" ON DELETE CASCADE, client_id {_TEXT} NOT NULL, PRIMARY KEY (server_id, client_id))",
                f"CREATE TABLE IF NOT EXISTS approved_cas (name {_TEXT} PRIMARY KEY, cert_der BYTEA NOT NULL,"
                f" ocsp_url {_TEXT}, ocsp_cert_der BYTEA, authentication_only INTEGER NOT NULL, profile {_TEXT} NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS approved_tsas (name {_TEXT} PRIMARY KEY, url {_TEXT} NOT NULL,"
                " cert_der BYTEA NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS global_groups (id {_TEXT} PRIMARY KEY, description {_TEXT} NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS group_members (group_id {_TEXT} NOT NULL REFERENCES global_groups(id)"
                f" ON DELETE CASCADE, client_id {_TEXT} NOT NULL, PRIMARY KEY (group_id, client_id))",
                f"CREATE TABLE IF NOT EXISTS requests (id {_TEXT} PRIMARY KEY, type {_TEXT} NOT NULL,"
                f" payload {_TEXT} NOT NULL, status {_TEXT} NOT NULL, submitted_at {_TEXT} NOT NULL, decided_at {_TEXT},"
                f" server_id {_TEXT}, client_id {_TEXT})",
                f"CREATE TABLE IF NOT EXISTS audit (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                f" at {_TEXT} NOT NULL, event {_TEXT} NOT NULL, detail {_TEXT} NOT NULL)",
            ),
        ),
        # Issue 19: the nodes of a clustered registry, each a configuration source with its own signing key.
        sql_migration(
            2,
            "registry nodes",
            "CREATE TABLE IF NOT EXISTS registry_nodes (download_url TEXT PRIMARY KEY, conf_signing_cert BLOB NOT NULL)",
            postgresql=(
                f"CREATE TABLE IF NOT EXISTS registry_nodes (download_url {_TEXT} PRIMARY KEY,"
                " conf_signing_cert BYTEA NOT NULL)",
            ),
        ),
        # Issue 17: intermediate CAs of an approved CA, each with at most one OCSP responder.
        sql_migration(
            3,
            "intermediate CAs",
            "CREATE TABLE IF NOT EXISTS intermediate_cas (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " ca_name TEXT NOT NULL REFERENCES approved_cas(name) ON DELETE CASCADE, cert_der BLOB NOT NULL,"
            " ocsp_url TEXT, ocsp_cert_der BLOB)",
            postgresql=(
                "CREATE TABLE IF NOT EXISTS intermediate_cas (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                f" ca_name {_TEXT} NOT NULL REFERENCES approved_cas(name) ON DELETE CASCADE, cert_der BYTEA NOT NULL,"
                f" ocsp_url {_TEXT}, ocsp_cert_der BYTEA)",
            ),
        ),
        # Issue 17: other instances' anchors (federation), one per instance; a subsystem's optional name.
        sql_migration(
            4,
            "trusted anchors and subsystem names",
            "CREATE TABLE IF NOT EXISTS trusted_anchors (instance TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE,"
            " generated_at TEXT NOT NULL, created_at TEXT NOT NULL, anchor_xml BLOB NOT NULL)",
            "ALTER TABLE subsystems ADD COLUMN name TEXT",
            postgresql=(
                f"CREATE TABLE IF NOT EXISTS trusted_anchors (instance {_TEXT} PRIMARY KEY, hash {_TEXT} NOT NULL UNIQUE,"
                f" generated_at {_TEXT} NOT NULL, created_at {_TEXT} NOT NULL, anchor_xml BYTEA NOT NULL)",
                f"ALTER TABLE subsystems ADD COLUMN name {_TEXT}",
            ),
        ),
    ),
)
"""The registry's numbered migrations; later issues append to them."""


class RegistryError(ClientFault):
    """A registry change that cannot be made (duplicate, unknown owner, invalid value); nothing changed."""

    code = "invalid_request"


@dataclass(frozen=True, slots=True)
class Settings:
    """Federation-wide settings published in the global configuration (X-Road defaults, SYSPAR §4.2)."""

    instance: str
    ocsp_freshness_seconds: int = 3600
    timestamping_interval_seconds: int = 60
    conf_expire_seconds: int = 600
    generation_interval_seconds: int = 60
    auto_approve: bool = False
    monitoring_client: ClientId | None = None
    """The central monitoring client published in the optional monitoring part (UG-CS §14); None: none."""


@dataclass(frozen=True, slots=True)
class Member:
    """A member of the federation and its subsystems."""

    id: ClientId
    name: str
    subsystems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SecurityServer:
    """A registered security server: owner, code, address, auth-certificate hashes and hosted clients."""

    id: SecurityServerId
    address: str
    auth_cert_hashes: tuple[bytes, ...]
    clients: tuple[ClientId, ...]


@dataclass(frozen=True, slots=True)
class ApprovedCa:
    """A certificate authority whose certificates the federation trusts."""

    name: str
    cert_der: bytes
    ocsp_url: str | None
    ocsp_cert_der: bytes | None
    authentication_only: bool
    profile: str


@dataclass(frozen=True, slots=True)
class ApprovedTsa:
    """A timestamping authority the federation trusts."""

    name: str
    url: str
    cert_der: bytes


@dataclass(frozen=True, slots=True)
class GlobalGroup:
    """A global group and its members."""

    id: GlobalGroupId
    description: str
    members: tuple[ClientId, ...]


def auth_cert_hash(cert_der: bytes) -> bytes:
    """The hash under which an authentication certificate is registered (SHA-256 of DER since gconf v3)."""
    return hashlib.sha256(cert_der).digest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class RegistryStatements:
    """SQL against the registry's tables, for the store and its request workflow (``central_registry.requests``).

    A statement made while one of the store's transactions is open runs inside it.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        self._database.execute(sql, params, action="running a statement")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one query, keyed by column name."""
        return as_dicts(self._database.execute(sql, params, action="reading"))


class RegistryStore:
    """The registry database; one instance per process, used from one thread at a time.

    ``database_url`` (``[database] url``) puts it in that PostgreSQL database, which several registry nodes
    share; without it, the SQLite file at ``path``.
    """

    def __init__(self, path: Path, *, clock: Callable[[], str] = _now, database_url: str | None = None) -> None:
        self._clock = clock
        self._depth = 0
        self._database = open_database(database_url, path, label="registry", shared_between_threads=True)
        try:
            migrate(self._database, SCHEMA)
        except BaseException:
            self._database.close()
            raise
        self.db = RegistryStatements(self._database)

    def close(self) -> None:
        """Close the database."""
        self._database.close()

    # --- plumbing -------------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, event: str, detail: dict[str, Any], *, audit: bool = True) -> Iterator[None]:
        """Run a change in one transaction and audit it; a BusError or database error rolls everything back.

        Nested calls join the outermost transaction, so a workflow step made of several changes commits whole.
        """
        action = event.replace("_", " ")
        outermost = self._depth == 0
        self._depth += 1
        try:
            with self._database.write(action):
                yield
                if audit:
                    self._audit(event, detail)
        except ConstraintViolated as err:
            if not outermost:
                raise
            raise RegistryError(f"{action} refused: {err.detail}") from err
        finally:
            self._depth -= 1

    def _audit(self, event: str, detail: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO audit (at, event, detail) VALUES (?, ?, ?)",
            (self._clock(), event, json.dumps(detail, sort_keys=True)),
        )

    def record(self, event: str, detail: dict[str, Any]) -> None:
        """Write an audit event on its own (e.g. a refused, forged request)."""
        with self.transaction(event, detail):
            pass

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        return [dict(row) for row in self.db.query("SELECT seq, at, event, detail FROM audit ORDER BY seq")]

    def _exists(self, sql: str, params: tuple[Any, ...]) -> bool:
        return next(iter(self.db.query(sql, params)), None) is not None

    # --- settings -------------------------------------------------------------------------------------------

    def initialise(self, instance: str, member_classes: dict[str, str] | None = None) -> None:
        """Set the instance identifier once; refuse a second initialisation."""
        check_part(instance, "xRoadInstance")
        if self._exists("SELECT 1 FROM settings WHERE key = 'instance'", ()):
            raise RegistryError("the registry is already initialised")
        classes = member_classes if member_classes is not None else {"GOV": "Government", "COM": "Commercial"}
        with self.transaction("registry_initialised", {"instance": instance, "member_classes": sorted(classes)}):
            self.db.execute("INSERT INTO settings (key, value) VALUES ('instance', ?)", [instance])
            for code, description in classes.items():
                check_part(code, "memberClass")
                self.db.execute("INSERT INTO member_classes (code, description) VALUES (?, ?)", [code, description])

    def is_initialised(self) -> bool:
        """Whether :meth:`initialise` has run (on a shared database: by any node)."""
        return self._exists("SELECT 1 FROM settings WHERE key = 'instance'", ())

    def register_node(self, download_url: str, conf_signing_cert_der: bytes) -> None:
        """Record one node of a clustered registry: where its signed directory is and the certificate that signs
        it (a node that restarts with the same key changes nothing)."""
        current = self.db.query("SELECT conf_signing_cert FROM registry_nodes WHERE download_url = ?", [download_url])
        if current and bytes(current[0]["conf_signing_cert"]) == conf_signing_cert_der:
            return
        with self.transaction("registry_node_registered", {"download_url": download_url}):
            self.db.execute(
                "INSERT INTO registry_nodes (download_url, conf_signing_cert) VALUES (?, ?)"
                " ON CONFLICT (download_url) DO UPDATE SET conf_signing_cert = excluded.conf_signing_cert",
                [download_url, conf_signing_cert_der],
            )

    def nodes(self) -> list[tuple[str, bytes]]:
        """The registry's nodes (download URL, configuration-signing certificate DER), in URL order."""
        rows = self.db.query("SELECT download_url, conf_signing_cert FROM registry_nodes ORDER BY download_url")
        return [(row["download_url"], bytes(row["conf_signing_cert"])) for row in rows]

    def settings(self) -> Settings:
        """The current settings; the registry must be initialised."""
        values = {row["key"]: row["value"] for row in self.db.query("SELECT key, value FROM settings")}
        if "instance" not in values:
            raise RegistryError("the registry is not initialised (run `fedbus registry init`)")
        return Settings(
            instance=values["instance"],
            ocsp_freshness_seconds=int(values.get("ocsp_freshness_seconds", 3600)),
            timestamping_interval_seconds=int(values.get("timestamping_interval_seconds", 60)),
            conf_expire_seconds=int(values.get("conf_expire_seconds", 600)),
            generation_interval_seconds=int(values.get("generation_interval_seconds", 60)),
            auto_approve=values.get("auto_approve", "false") == "true",
            monitoring_client=ClientId.parse_display(values["monitoring_client"]) if values.get("monitoring_client") else None,
        )

    _INT_SETTINGS = {
        "ocsp_freshness_seconds": (60, 86400 * 7),
        "timestamping_interval_seconds": (1, 86400),
        "conf_expire_seconds": (10, 86400 * 7),
        "generation_interval_seconds": (1, 86400),
    }

    def set_setting(self, key: str, value: str) -> None:
        """Change one setting, validated against its range."""
        if key == "auto_approve":
            if value not in ("true", "false"):
                raise RegistryError("auto_approve must be true or false")
        elif key == "monitoring_client":
            if value:  # empty: no central monitoring client
                try:
                    client = ClientId.parse_display(value)
                except BusError as err:
                    raise RegistryError(f"monitoring_client must be a member or subsystem identifier: {err.message}") from err
                if client.instance != self.settings().instance:
                    raise RegistryError(f"monitoring_client {value} is not of instance {self.settings().instance}")
                value = client.to_display()
        elif key in self._INT_SETTINGS:
            low, high = self._INT_SETTINGS[key]
            if not value.isdigit() or not low <= int(value) <= high:
                raise RegistryError(f"{key} must be an integer from {low} to {high}")
        else:
            raise RegistryError(f"unknown setting {key}")
        self.settings()
        with self.transaction("setting_changed", {"key": key, "value": value}):
            self.db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    def member_classes(self) -> dict[str, str]:
        """Member classes by code."""
        return {row["code"]: row["description"] for row in self.db.query("SELECT * FROM member_classes ORDER BY code")}

    # --- members and subsystems -----------------------------------------------------------------------------

    def _check_instance(self, instance: str) -> None:
        if instance != self.settings().instance:
            raise RegistryError(f"identifier is for instance {instance}, this registry is {self.settings().instance}")

    def add_member(self, member: ClientId, name: str) -> None:
        """Add a member; its class must exist and its instance must be ours."""
        if member.subsystem_code is not None:
            raise RegistryError("add the member first, then its subsystem")
        self._check_instance(member.instance)
        if not name.strip():
            raise RegistryError("a member needs a name")
        if member.member_class not in self.member_classes():
            raise RegistryError(f"unknown member class {member.member_class}")
        if self._exists("SELECT 1 FROM members WHERE id = ?", (str(member),)):
            raise RegistryError(f"{member} already exists")
        with self.transaction("member_added", {"member": str(member), "name": name}):
            self.db.execute(
                "INSERT INTO members (id, member_class, member_code, name) VALUES (?, ?, ?, ?)",
                [str(member), member.member_class, member.member_code, name],
            )

    def remove_member(self, member: ClientId) -> None:
        """Remove a member that owns no security server; its subsystems and group memberships go with it."""
        if not self._exists("SELECT 1 FROM members WHERE id = ?", (str(member),)):
            raise RegistryError(f"{member} does not exist")
        if self._exists("SELECT 1 FROM security_servers WHERE owner_id = ?", (str(member),)):
            raise RegistryError(f"{member} owns security servers; delete them first")
        with self.transaction("member_removed", {"member": str(member)}):
            subsystems = [str(member.subsystem(code)) for code in self._subsystems(member)]
            for client in [str(member), *subsystems]:
                self.db.execute("DELETE FROM server_clients WHERE client_id = ?", [client])
                self.db.execute("DELETE FROM group_members WHERE client_id = ?", [client])
            self.db.execute("DELETE FROM members WHERE id = ?", [str(member)])

    def add_subsystem(self, subsystem: ClientId) -> None:
        """Add a subsystem to an existing member."""
        if subsystem.subsystem_code is None:
            raise RegistryError("a subsystem identifier needs a subsystem code")
        if not self._exists("SELECT 1 FROM members WHERE id = ?", (str(subsystem.member),)):
            raise RegistryError(f"unknown member {subsystem.member}")
        if self._exists(
            "SELECT 1 FROM subsystems WHERE member_id = ? AND subsystem_code = ?",
            (str(subsystem.member), subsystem.subsystem_code),
        ):
            raise RegistryError(f"{subsystem} already exists")
        with self.transaction("subsystem_added", {"subsystem": str(subsystem)}):
            self.db.execute(
                "INSERT INTO subsystems (member_id, subsystem_code) VALUES (?, ?)",
                [str(subsystem.member), subsystem.subsystem_code],
            )

    def _subsystems(self, member: ClientId) -> tuple[str, ...]:
        return tuple(
            row["subsystem_code"]
            for row in self.db.query(
                "SELECT subsystem_code FROM subsystems WHERE member_id = ? ORDER BY subsystem_code", [str(member)]
            )
        )

    def has_client(self, client: ClientId) -> bool:
        """Whether the member (or its subsystem) exists."""
        if not self._exists("SELECT 1 FROM members WHERE id = ?", (str(client.member),)):
            return False
        return client.subsystem_code is None or client.subsystem_code in self._subsystems(client.member)

    def member(self, member: ClientId) -> Member:
        """One member."""
        row = next(iter(self.db.query("SELECT * FROM members WHERE id = ?", [str(member)])), None)
        if row is None:
            raise RegistryError(f"unknown member {member}")
        return Member(member, row["name"], self._subsystems(member))

    def members(self) -> list[Member]:
        """All members, ordered by identifier."""
        return [
            Member(ClientId.parse_display(row["id"]), row["name"], self._subsystems(ClientId.parse_display(row["id"])))
            for row in self.db.query("SELECT id, name FROM members ORDER BY id")
        ]

    # --- security servers -----------------------------------------------------------------------------------

    def security_server(self, server: SecurityServerId) -> SecurityServer | None:
        """One security server, or None."""
        row = next(iter(self.db.query("SELECT * FROM security_servers WHERE id = ?", [str(server)])), None)
        if row is None:
            return None
        hashes = tuple(
            r["hash"] for r in self.db.query("SELECT hash FROM auth_certs WHERE server_id = ? ORDER BY hash", [str(server)])
        )
        clients = tuple(
            ClientId.parse_display(r["client_id"])
            for r in self.db.query(
                "SELECT client_id FROM server_clients WHERE server_id = ? ORDER BY client_id", [str(server)]
            )
        )
        return SecurityServer(server, row["address"], hashes, clients)

    def security_servers(self) -> list[SecurityServer]:
        """All security servers, ordered by identifier."""
        found = []
        for row in self.db.query("SELECT id FROM security_servers ORDER BY id"):
            server = self.security_server(SecurityServerId.parse_display(row["id"]))
            assert server is not None
            found.append(server)
        return found

    def register_auth_cert(self, server: SecurityServerId, address: str, cert_der: bytes) -> None:
        """Register an authentication certificate, creating the server on its first certificate."""
        if not self._exists("SELECT 1 FROM members WHERE id = ?", (str(server.owner),)):
            raise RegistryError(f"unknown owner {server.owner}")
        digest = auth_cert_hash(cert_der)
        if self._exists("SELECT 1 FROM auth_certs WHERE hash = ?", (digest,)):
            raise RegistryError("this authentication certificate is already registered")
        with self.transaction("auth_cert_registered", {"server": str(server), "hash": digest.hex()}):
            if self.security_server(server) is None:
                self.db.execute(
                    "INSERT INTO security_servers (id, owner_id, server_code, address) VALUES (?, ?, ?, ?)",
                    [str(server), str(server.owner), server.server_code, address],
                )
                self.db.execute(
                    "INSERT INTO server_clients (server_id, client_id) VALUES (?, ?)", [str(server), str(server.owner)]
                )
            else:
                self.db.execute("UPDATE security_servers SET address = ? WHERE id = ?", [address, str(server)])
            self.db.execute(
                "INSERT INTO auth_certs (hash, server_id, cert_der) VALUES (?, ?, ?)", [digest, str(server), cert_der]
            )

    def delete_auth_cert(self, server: SecurityServerId, digest: bytes) -> None:
        """Remove one authentication certificate of a server."""
        if not self._exists("SELECT 1 FROM auth_certs WHERE hash = ? AND server_id = ?", (digest, str(server))):
            raise RegistryError(f"{server} has no such authentication certificate")
        with self.transaction("auth_cert_deleted", {"server": str(server), "hash": digest.hex()}):
            self.db.execute("DELETE FROM auth_certs WHERE hash = ?", [digest])

    def delete_server(self, server: SecurityServerId) -> None:
        """Remove a security server with its certificates and clients."""
        if self.security_server(server) is None:
            raise RegistryError(f"unknown security server {server}")
        with self.transaction("security_server_deleted", {"server": str(server)}):
            self.db.execute("DELETE FROM security_servers WHERE id = ?", [str(server)])

    def add_server_client(self, server: SecurityServerId, client: ClientId) -> None:
        """Record that ``client`` is hosted on ``server``."""
        if self.security_server(server) is None:
            raise RegistryError(f"unknown security server {server}")
        if not self.has_client(client):
            raise RegistryError(f"unknown client {client}")
        if self._exists(
            "SELECT 1 FROM server_clients WHERE server_id = ? AND client_id = ?", (str(server), str(client))
        ):
            raise RegistryError(f"{client} is already a client of {server}")
        with self.transaction("client_registered", {"server": str(server), "client": str(client)}):
            self.db.execute("INSERT INTO server_clients (server_id, client_id) VALUES (?, ?)", [str(server), str(client)])

    def remove_server_client(self, server: SecurityServerId, client: ClientId) -> None:
        """Record that ``client`` is no longer hosted on ``server``."""
        if not self._exists(
            "SELECT 1 FROM server_clients WHERE server_id = ? AND client_id = ?", (str(server), str(client))
        ):
            raise RegistryError(f"{client} is not a client of {server}")
        with self.transaction("client_deleted", {"server": str(server), "client": str(client)}):
            self.db.execute("DELETE FROM server_clients WHERE server_id = ? AND client_id = ?", [str(server), str(client)])

    # --- trust services -------------------------------------------------------------------------------------

    def add_ca(self, ca: ApprovedCa) -> None:
        """Approve a certificate authority."""
        if self._exists("SELECT 1 FROM approved_cas WHERE name = ?", (ca.name,)):
            raise RegistryError(f"a CA named {ca.name} is already approved")
        with self.transaction("ca_approved", {"name": ca.name, "ocsp_url": ca.ocsp_url}):
            self.db.execute(
                "INSERT INTO approved_cas VALUES (?, ?, ?, ?, ?, ?)",
                [ca.name, ca.cert_der, ca.ocsp_url, ca.ocsp_cert_der, int(ca.authentication_only), ca.profile],
            )

    def cas(self) -> list[ApprovedCa]:
        """Approved certificate authorities, by name."""
        return [
            ApprovedCa(r["name"], r["cert_der"], r["ocsp_url"], r["ocsp_cert_der"], bool(r["authentication_only"]), r["profile"])
            for r in self.db.query("SELECT * FROM approved_cas ORDER BY name")
        ]

    def add_tsa(self, tsa: ApprovedTsa) -> None:
        """Approve a timestamping authority."""
        if self._exists("SELECT 1 FROM approved_tsas WHERE name = ?", (tsa.name,)):
            raise RegistryError(f"a TSA named {tsa.name} is already approved")
        with self.transaction("tsa_approved", {"name": tsa.name, "url": tsa.url}):
            self.db.execute("INSERT INTO approved_tsas VALUES (?, ?, ?)", [tsa.name, tsa.url, tsa.cert_der])

    def tsas(self) -> list[ApprovedTsa]:
        """Approved timestamping authorities, by name."""
        return [ApprovedTsa(r["name"], r["url"], r["cert_der"]) for r in self.db.query("SELECT * FROM approved_tsas ORDER BY name")]

    # --- global groups --------------------------------------------------------------------------------------

    def add_group(self, group: GlobalGroupId, description: str) -> None:
        """Create a global group."""
        self._check_instance(group.instance)
        if self._exists("SELECT 1 FROM global_groups WHERE id = ?", (str(group),)):
            raise RegistryError(f"{group} already exists")
        with self.transaction("global_group_added", {"group": str(group)}):
            self.db.execute("INSERT INTO global_groups (id, description) VALUES (?, ?)", [str(group), description])

    def add_group_member(self, group: GlobalGroupId, client: ClientId) -> None:
        """Add an existing member or subsystem to a global group."""
        if not self._exists("SELECT 1 FROM global_groups WHERE id = ?", (str(group),)):
            raise RegistryError(f"unknown group {group}")
        if not self.has_client(client):
            raise RegistryError(f"unknown client {client}")
        if self._exists("SELECT 1 FROM group_members WHERE group_id = ? AND client_id = ?", (str(group), str(client))):
            raise RegistryError(f"{client} is already in {group}")
        with self.transaction("global_group_member_added", {"group": str(group), "client": str(client)}):
            self.db.execute("INSERT INTO group_members (group_id, client_id) VALUES (?, ?)", [str(group), str(client)])

    def groups(self) -> list[GlobalGroup]:
        """Global groups with their members."""
        found = []
        for row in self.db.query("SELECT * FROM global_groups ORDER BY id"):
            members = tuple(
                ClientId.parse_display(r["client_id"])
                for r in self.db.query("SELECT client_id FROM group_members WHERE group_id = ? ORDER BY client_id", [row["id"]])
            )
            found.append(GlobalGroup(GlobalGroupId.parse_display(row["id"]), row["description"], members))
        return found
