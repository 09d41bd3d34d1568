"""A hosted client's service clients: one of those holding rights, and the candidates for a new right.

The candidates are X-Road's access-right holder candidates (UG-SS §7.2 "Adding a service client"): the subsystems
of the global configuration's members, its global groups and the provider's own local groups (members cannot hold
rights), filtered as X-Road's ``findServiceClientCandidates`` filters them.
"""

from __future__ import annotations

from dataclasses import dataclass

from security_server.admin.errors import ClientNotFound, NotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.acl import Subject
from security_server.core.globalconf import GlobalConf
from security_server.core.identifiers import ClientId, GlobalGroupId, LocalGroupId


class ServiceClientNotFound(NotFound):
    """The subject holds no right to the client's services."""

    api_code = "service_client_not_found"


def service_client(server_dir: ServerDirectory, provider: ClientId, subject: Subject) -> Subject:
    """``subject`` when it holds a right to one of ``provider``'s services; :class:`ClientNotFound` or
    :class:`ServiceClientNotFound`."""
    snapshot = server_dir.snapshot()
    if snapshot.client(provider) is None:
        raise ClientNotFound(f"{provider} is not a client of this security server")
    if any(r.provider == provider and r.subject == subject for r in snapshot.rights):
        return subject
    raise ServiceClientNotFound(f"{subject} holds no right to the services of {provider}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A possible service client with its name: the member's name or the group's description."""

    subject: Subject
    name: str


@dataclass(frozen=True, slots=True)
class CandidateSearch:
    """X-Road's filters: a name or description part, the type, the instance and member class (exact, any case),
    the member or group code and the subsystem code (parts, any case). None: not filtered."""

    name_or_description: str | None = None
    kind: str | None = None
    """``SUBSYSTEM``, ``GLOBALGROUP`` or ``LOCALGROUP``."""
    instance: str | None = None
    member_class: str | None = None
    member_group_code: str | None = None
    subsystem_code: str | None = None

    def matches(self, candidate: Candidate) -> bool:
        """Whether ``candidate`` passes every filter given."""
        subject = candidate.subject
        checks = (
            self.kind is None or self.kind == _kind(subject),
            not self.name_or_description or self.name_or_description.lower() in candidate.name.lower(),
            not self.instance or isinstance(subject, LocalGroupId) or self.instance.lower() == subject.instance.lower(),
            not self.member_class
            or (isinstance(subject, ClientId) and self.member_class.lower() == subject.member_class.lower()),
            not self.member_group_code or self.member_group_code.lower() in _code(subject).lower(),
            not self.subsystem_code
            or (isinstance(subject, ClientId) and self.subsystem_code.lower() in (subject.subsystem_code or "").lower()),
        )
        return all(checks)


def _kind(subject: Subject) -> str:
    if isinstance(subject, GlobalGroupId):
        return "GLOBALGROUP"
    return "LOCALGROUP" if isinstance(subject, LocalGroupId) else "SUBSYSTEM"


def _code(subject: Subject) -> str:
    return subject.member_code if isinstance(subject, ClientId) else subject.group_code


def candidates(
    server_dir: ServerDirectory, provider: ClientId, conf: GlobalConf | None, search: CandidateSearch
) -> tuple[Candidate, ...]:
    """The possible service clients of ``provider`` that match ``search``: subsystems and global groups of
    ``conf`` (none without one), then ``provider``'s local groups; :class:`ClientNotFound`."""
    snapshot = server_dir.snapshot()
    if snapshot.client(provider) is None:
        raise ClientNotFound(f"{provider} is not a client of this security server")
    found: list[Candidate] = []
    if conf is not None:
        for member in conf.members():
            found.extend(Candidate(member.id.subsystem(code), member.name) for code in member.subsystems)
        found.extend(Candidate(group.id, group.description) for group in conf.shared.global_groups)
    found.extend(Candidate(group.id, group.description) for group in snapshot.groups if group.owner == provider)
    return tuple(c for c in found if search.matches(c))
