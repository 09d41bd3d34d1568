"""The global configuration a security server obeys, and the questions its proxies ask of it.

A :class:`GlobalConf` joins the shared and private parameters of the server's own instance with the expiry of
the directory they came from. :func:`assemble_global_conf` makes one from a verified directory and the
downloaded files, so a configuration client is: download, :func:`parse_signed_directory`,
:func:`verify_signed_directory`, download each entry, :func:`assemble_global_conf`, swap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from cryptography import x509
from lxml import etree

from security_server.core.errors import ConfigurationInstanceMismatch, GlobalConfOutdated, InvalidConfiguration
from security_server.core.globalconf.directory import (
    PRIVATE_PARAMETERS,
    SHARED_PARAMETERS,
    DirectoryEntry,
    VerifiedDirectory,
    verify_part,
)
from security_server.core.globalconf.privateparams import ManagementService, PrivateParameters, parse_private_parameters
from security_server.core.globalconf.sharedparams import (
    ApprovedCa,
    ApprovedTsa,
    CaInfo,
    GlobalGroup,
    MemberInfo,
    OcspResponder,
    SecurityServerInfo,
    SharedParameters,
    parse_shared_parameters,
)
from security_server.core.globalconf.values import check_aware, format_datetime
from security_server.core.globalconf.monitoringparams import MONITORING_PARAMETERS, parse_monitoring_parameters
from security_server.core.identifiers import ClientId, GlobalGroupId, SecurityServerId


def _subject_key(cert_der: bytes) -> bytes:
    return x509.load_der_x509_certificate(cert_der).subject.public_bytes()


@dataclass(frozen=True, slots=True)
class GlobalConf:
    """Shared and private parameters of one instance, valid until ``expires_at``; indexed for lookups."""

    shared: SharedParameters
    private: PrivateParameters
    expires_at: datetime
    version: int | None = None
    monitoring_client: ClientId | None = None
    """The central monitoring client of the optional ``MONITORING`` part (None: none named)."""

    _members: Mapping[ClientId, MemberInfo] = field(init=False, repr=False, compare=False)
    _servers: Mapping[SecurityServerId, SecurityServerInfo] = field(init=False, repr=False, compare=False)
    _servers_by_client: Mapping[ClientId, tuple[SecurityServerInfo, ...]] = field(init=False, repr=False, compare=False)
    _servers_by_hash: Mapping[bytes, SecurityServerInfo] = field(init=False, repr=False, compare=False)
    _groups: Mapping[GlobalGroupId, GlobalGroup] = field(init=False, repr=False, compare=False)
    _cas_by_subject: Mapping[bytes, tuple[ApprovedCa, CaInfo]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.shared, SharedParameters) or not isinstance(self.private, PrivateParameters):
            raise InvalidConfiguration("a global configuration needs shared and private parameters")
        if self.shared.instance != self.private.instance:
            raise ConfigurationInstanceMismatch(
                f"shared parameters of {self.shared.instance} with private parameters of {self.private.instance}"
            )
        check_aware(self.expires_at, "expires_at")
        if self.monitoring_client is not None and not isinstance(self.monitoring_client, ClientId):
            raise InvalidConfiguration("the monitoring client must be a client identifier")
        by_client: dict[ClientId, list[SecurityServerInfo]] = {}
        for server in self.shared.security_servers:
            # X-Road counts the owner as a client of its own server (SharedParametersCache.addServerClient).
            for client in dict.fromkeys((server.owner, *server.clients)):
                by_client.setdefault(client, []).append(server)
        cas: dict[bytes, tuple[ApprovedCa, CaInfo]] = {}
        for ca in self.shared.approved_cas:
            for info in ca.ca_infos():
                cas.setdefault(_subject_key(info.cert), (ca, info))
        object.__setattr__(self, "_members", {m.id: m for m in self.shared.members})
        object.__setattr__(self, "_servers", {s.id: s for s in self.shared.security_servers})
        object.__setattr__(self, "_servers_by_client", {c: tuple(s) for c, s in by_client.items()})
        object.__setattr__(
            self, "_servers_by_hash", {h: s for s in self.shared.security_servers for h in s.auth_cert_hashes}
        )
        object.__setattr__(self, "_groups", {g.id: g for g in self.shared.global_groups})
        object.__setattr__(self, "_cas_by_subject", cas)

    # --- validity -------------------------------------------------------------------------------------------

    @property
    def instance(self) -> str:
        """The instance this configuration belongs to."""
        return self.shared.instance

    def is_expired(self, now: datetime) -> bool:
        """True from ``expires_at`` on; an expired configuration must not be used (pr-gconf §2.4)."""
        return check_aware(now, "now") >= self.expires_at

    def check_valid(self, now: datetime) -> None:
        """Raise :class:`GlobalConfOutdated` when the configuration has expired at ``now``."""
        if self.is_expired(now):
            expired = format_datetime(self.expires_at)
            raise GlobalConfOutdated("global configuration is outdated", reason=f"global configuration expired at {expired}")

    # --- members --------------------------------------------------------------------------------------------

    def members(self) -> tuple[MemberInfo, ...]:
        """Every registered member, in canonical order."""
        return self.shared.members

    def member(self, member_id: ClientId) -> MemberInfo | None:
        """The member ``member_id`` (the member of a subsystem identifier), or ``None``."""
        return self._members.get(member_id.member)

    def has_member(self, client: ClientId) -> bool:
        """True when ``client`` is a registered member, or a registered subsystem of one."""
        member = self._members.get(client.member)
        if member is None:
            return False
        return client.subsystem_code is None or client.subsystem_code in member.subsystems

    def member_name(self, client: ClientId) -> str | None:
        """The official name of the member of ``client``, or ``None`` when it is not registered."""
        member = self._members.get(client.member)
        return None if member is None else member.name

    # --- security servers -----------------------------------------------------------------------------------

    def security_servers(self) -> tuple[SecurityServerInfo, ...]:
        """Every registered security server, in canonical order."""
        return self.shared.security_servers

    def security_server(self, server_id: SecurityServerId) -> SecurityServerInfo | None:
        """The security server ``server_id``, or ``None``."""
        return self._servers.get(server_id)

    def security_servers_of(self, client: ClientId) -> tuple[SecurityServerInfo, ...]:
        """The servers that host ``client``: those listing it as a client, and for a member those it owns."""
        return self._servers_by_client.get(client, ())

    def is_hosted_by(self, client: ClientId, server_id: SecurityServerId) -> bool:
        """True when ``server_id`` hosts ``client`` (as a registered client, or as its owner)."""
        return any(server.id == server_id for server in self.security_servers_of(client))

    def server_address(self, server_id: SecurityServerId) -> str | None:
        """The address of ``server_id``, or ``None`` when unknown or not published."""
        server = self._servers.get(server_id)
        return None if server is None else server.address

    def auth_cert_hashes(self, server_id: SecurityServerId) -> tuple[bytes, ...]:
        """The registered authentication-certificate hashes of ``server_id`` (empty when unknown)."""
        server = self._servers.get(server_id)
        return () if server is None else server.auth_cert_hashes

    def server_for_auth_cert_hash(self, cert_hash: bytes) -> SecurityServerInfo | None:
        """The server whose authentication certificate has digest ``cert_hash``, or ``None``."""
        return self._servers_by_hash.get(cert_hash)

    def server_for_auth_cert(self, cert_der: bytes) -> SecurityServerInfo | None:
        """The server that registered the authentication certificate ``cert_der`` (SHA-256, or SHA-1 for v2)."""
        for digest in (hashlib.sha256(cert_der).digest(), hashlib.sha1(cert_der).digest()):
            server = self._servers_by_hash.get(digest)
            if server is not None:
                return server
        return None

    # --- trust services -------------------------------------------------------------------------------------

    def approved_cas(self) -> tuple[ApprovedCa, ...]:
        """Every approved CA."""
        return self.shared.approved_cas

    def approved_roots(self) -> tuple[bytes, ...]:
        """The top CA certificates (DER) of the approved CAs: the trust anchors for member certificates."""
        return tuple(ca.top_ca.cert for ca in self.shared.approved_cas)

    def intermediate_cas(self) -> tuple[bytes, ...]:
        """The intermediate CA certificates (DER) of the approved CAs, for path building."""
        return tuple(info.cert for ca in self.shared.approved_cas for info in ca.intermediates)

    def approved_ca_for(self, issuer: x509.Name) -> ApprovedCa | None:
        """The approved CA that has a (top or intermediate) CA certificate with subject ``issuer``."""
        found = self._cas_by_subject.get(issuer.public_bytes())
        return None if found is None else found[0]

    def ca_cert_for(self, issuer: x509.Name) -> bytes | None:
        """The approved (top or intermediate) CA certificate (DER) whose subject is ``issuer``."""
        found = self._cas_by_subject.get(issuer.public_bytes())
        return None if found is None else found[1].cert

    def ocsp_responders(self, issuer: x509.Name) -> tuple[OcspResponder, ...]:
        """The OCSP responders listed for the CA with subject ``issuer`` (the issuer of the checked cert)."""
        found = self._cas_by_subject.get(issuer.public_bytes())
        return () if found is None else found[1].ocsp_responders

    def ocsp_responder_certs(self) -> tuple[bytes, ...]:
        """Every OCSP responder certificate (DER) listed for any approved CA, without repeats."""
        certs: dict[bytes, None] = {}
        for ca in self.shared.approved_cas:
            for info in ca.ca_infos():
                for responder in info.ocsp_responders:
                    if responder.cert is not None:
                        certs.setdefault(responder.cert, None)
        return tuple(certs)

    def approved_tsas(self) -> tuple[ApprovedTsa, ...]:
        """Every approved time-stamping authority."""
        return self.shared.approved_tsas

    # --- groups and settings --------------------------------------------------------------------------------

    def global_group(self, group_id: GlobalGroupId) -> GlobalGroup | None:
        """The global group ``group_id``, or ``None``."""
        return self._groups.get(group_id)

    def is_member_of_group(self, client: ClientId, group_id: GlobalGroupId) -> bool:
        """True when ``client`` itself is listed in the global group (X-Road matches the exact identifier)."""
        group = self._groups.get(group_id)
        return group is not None and client in group.members

    @property
    def ocsp_freshness_seconds(self) -> int:
        """How old an OCSP response may be, in seconds."""
        return self.shared.global_settings.ocsp_freshness_seconds

    @property
    def timestamping_interval_seconds(self) -> int:
        """How often logged signatures are time-stamped, in seconds."""
        return self.private.time_stamping_interval_seconds

    @property
    def management_service(self) -> ManagementService:
        """Where management requests go."""
        return self.private.management_service


def _required_entry(directory: VerifiedDirectory, content_identifier: str) -> DirectoryEntry:
    entry = directory.entry(content_identifier)
    if entry is None:
        raise InvalidConfiguration(f"the directory lists no {content_identifier} for {directory.instance}")
    return entry


def _content(files: Mapping[str, bytes], entry: DirectoryEntry) -> bytes:
    content = files.get(entry.content_location)
    if content is None:
        raise InvalidConfiguration(f"{entry.content_location} was not downloaded")
    verify_part(entry, content)
    return content


def assemble_global_conf(
    directory: VerifiedDirectory,
    files: Mapping[str, bytes],
    *,
    shared_schema: etree.XMLSchema | None = None,
    private_schema: etree.XMLSchema | None = None,
) -> GlobalConf:
    """Check the downloaded ``files`` (keyed by ``Content-location``) against the directory and parse them.

    Every given file must match its digest (:class:`ConfigurationHashMismatch`); the private and shared
    parameters of the directory's instance must be present and must say that instance inside
    (:class:`ConfigurationInstanceMismatch`). Files that the directory does not list are refused.
    """
    by_location = {entry.content_location: entry for entry in directory.entries}
    for location, content in files.items():
        listed = by_location.get(location)
        if listed is None:
            raise InvalidConfiguration(f"{location} is not listed in the directory")
        verify_part(listed, content)
    private_entry = _required_entry(directory, PRIVATE_PARAMETERS)
    shared_entry = _required_entry(directory, SHARED_PARAMETERS)
    private = parse_private_parameters(_content(files, private_entry), private_schema)
    shared = parse_shared_parameters(_content(files, shared_entry), shared_schema)
    for what, found in (("private", private.instance), ("shared", shared.instance)):
        if found != directory.instance:
            raise ConfigurationInstanceMismatch(
                f"{what} parameters are for instance {found}, not {directory.instance}"
            )
    # The optional monitoring part (UG-CS §14): a directory without it names no central monitoring client.
    monitoring_entry = directory.entry(MONITORING_PARAMETERS)
    monitoring_client = (
        None if monitoring_entry is None else parse_monitoring_parameters(_content(files, monitoring_entry))
    )
    return GlobalConf(shared, private, directory.expires_at, directory.version, monitoring_client)
