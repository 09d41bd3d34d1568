"""Access rights and the default-deny decision of the provider's security server.

An access right lets one *subject* call one service code of one provider client (XROAD-REFERENCE.md §2.1;
DM-SS §2.1 ACCESSRIGHT, §2.17 ENDPOINT). The rules, as X-Road 7.8 applies them in
``ServerConfImpl.getAclEndpoints`` / ``subjectMatches`` (UG-SS §7-8):

* **Default deny.** With no right that matches, nothing is allowed.
* **Per service code; the version is ignored.** A right names the provider client and the service code; a
  request for any version of that code is covered (DM-SS §2.17 keys endpoints by ``servicecode`` alone). A right
  for one service code, or for another provider, never covers a different service.
* **A client subject covers exactly that client.** X-Road compares the request's client with the subject using
  identifier equality, so a right granted to a MEMBER covers requests whose client *is* that member and none
  of its subsystems; a right granted to a SUBSYSTEM covers that subsystem only, not its member nor its sibling
  subsystems. (UG-SS §7 offers only subsystems and groups as subjects today; DM-SS §2.1 still allows a member
  subject, so we keep it, with the exact-match meaning.)
* **A global group subject** covers whoever the global configuration lists in the group (asked through the
  ``in_global_group`` callable).
* **A local group subject** covers the members of the provider's local group with that code. Local groups
  belong to one security-server client and serve only that client's services (UG-SS §8, DM-SS §2.11), so the
  caller passes the *provider's* groups; membership is exact, like a client subject.
* **Endpoint-level rights** (a REST method and path pattern, DM-SS §2.17) are carried by the data model for
  REST (issue 6) but are not matched yet: :func:`is_allowed` decides on service-level rights only, so an
  endpoint right can never widen access to the whole service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, TypeAlias

from security_server.core.errors import AccessDenied, InvalidRequest
from security_server.core.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId

Subject: TypeAlias = ClientId | GlobalGroupId | LocalGroupId
"""Who an access right is granted to: a member, a subsystem, a global group or a local group."""

GlobalGroupCheck: TypeAlias = Callable[[ClientId, GlobalGroupId], bool]
"""Answers whether a client is a member of a global group (from the global configuration)."""

HTTP_METHODS = frozenset({"*", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
"""The methods an endpoint may name; ``*`` is any method (X-Road's service-level endpoint is ``* **``)."""

MAX_ENDPOINT_PATH = 2048
"""DM-SS §2.17: ``path`` is a 2048-character column."""

_PATH_PATTERN = re.compile(r"(\*\*|/[A-Za-z0-9\-._~!$&'()*+,;=:@/{}]*)")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A REST endpoint an access right can be limited to: an HTTP method and a path pattern (DM-SS §2.17).

    The pattern is in decoded form (no ``%``), starts with ``/`` (or is ``**``, every path), and has no ``.`` or
    ``..`` segment, so that an encoded path can never be stored as a wider pattern than was meant
    (SECURITY-CASES.md: X-Road PR #3140). Matching comes with REST (issue 6).
    """

    method: str
    path: str

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method not in HTTP_METHODS:
            raise InvalidRequest(f"endpoint method must be one of {', '.join(sorted(HTTP_METHODS))}")
        if not isinstance(self.path, str) or not self.path or len(self.path) > MAX_ENDPOINT_PATH:
            raise InvalidRequest(f"endpoint path must be 1 to {MAX_ENDPOINT_PATH} characters")
        if not _PATH_PATTERN.fullmatch(self.path):
            raise InvalidRequest("endpoint path must be ** or a decoded path starting with / (no %, ?, # or spaces)")
        if any(segment in (".", "..") for segment in self.path.split("/")):
            raise InvalidRequest("endpoint path may not have . or .. segments")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class AccessRight:
    """A right of ``subject`` to call ``service`` (any version) of its provider, optionally one endpoint only.

    ``service`` carries no version: access rights are per service code (DM-SS §2.17). Use
    :meth:`for_service` to build a right from a request's versioned service identifier.
    """

    subject: Subject
    service: ServiceId
    endpoint: Endpoint | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.subject, (ClientId, GlobalGroupId, LocalGroupId)):
            raise InvalidRequest("an access right subject is a member, a subsystem, a global group or a local group")
        if not isinstance(self.service, ServiceId):
            raise InvalidRequest("an access right needs a service identifier")
        if self.service.service_version is not None:
            raise InvalidRequest("access rights are per service code; the service version is not part of them")
        if self.endpoint is not None and not isinstance(self.endpoint, Endpoint):
            raise InvalidRequest("an access right endpoint must be an Endpoint")

    @classmethod
    def for_service(cls, subject: Subject, service: ServiceId, endpoint: Endpoint | None = None) -> AccessRight:
        """A right for ``service``'s code, whatever version ``service`` names (the version is dropped)."""
        return cls(subject, ServiceId(service.client, service.service_code), endpoint)

    @property
    def provider(self) -> ClientId:
        """The client that provides the service."""
        return self.service.client

    @property
    def service_code(self) -> str:
        """The service code the right is for."""
        return self.service.service_code

    def covers_service(self, service: ServiceId) -> bool:
        """Whether this right is for ``service``'s provider and code (any version)."""
        return self.service.client == service.client and self.service.service_code == service.service_code


def subject_matches(
    subject: Subject,
    client: ClientId,
    *,
    in_global_group: GlobalGroupCheck,
    local_groups: Mapping[LocalGroupId, frozenset[ClientId]],
) -> bool:
    """Whether ``subject`` covers ``client``: exact identity, global group membership or local group membership."""
    if isinstance(subject, GlobalGroupId):
        return bool(in_global_group(client, subject))
    if isinstance(subject, LocalGroupId):
        return client in local_groups.get(subject, frozenset())
    # X-Road ServerConfImpl.subjectMatches: clientId.equals(aclSubjectId). A member never covers its subsystems.
    return subject == client


def is_allowed(
    client: ClientId,
    service: ServiceId,
    rights: Iterable[AccessRight],
    *,
    in_global_group: GlobalGroupCheck,
    local_groups: Mapping[LocalGroupId, frozenset[ClientId]],
) -> bool:
    """Whether a service-level right in ``rights`` lets ``client`` call ``service`` (default deny).

    ``local_groups`` are the provider's local groups (``service.client``'s). Rights for other providers or
    other service codes, and endpoint-level rights, are ignored.
    """
    for right in rights:
        if right.endpoint is not None or not right.covers_service(service):
            continue
        if subject_matches(right.subject, client, in_global_group=in_global_group, local_groups=local_groups):
            return True
    return False


def check_access(
    client: ClientId,
    service: ServiceId,
    rights: Iterable[AccessRight],
    *,
    in_global_group: GlobalGroupCheck,
    local_groups: Mapping[LocalGroupId, frozenset[ClientId]],
) -> None:
    """Raise :class:`AccessDenied` unless :func:`is_allowed`; the peer sees only "access denied"."""
    considered = [r for r in rights if r.endpoint is None and r.covers_service(service)]
    if is_allowed(client, service, considered, in_global_group=in_global_group, local_groups=local_groups):
        return
    raise AccessDenied(
        "Request not allowed: access denied",
        reason=f"no access right lets {client} call service code {service.service_code} of {service.client}: "
        f"{len(considered)} service-level right(s) for it, none covers the client",
    )
