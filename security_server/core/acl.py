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
* **Endpoint-level rights** (a REST method and path pattern, DM-SS §2.17; X-Road ``isQueryAllowed``) count only
  for a REST call, when the caller passes its ``method`` and the *normal form* of its service path
  (:func:`security_server.core.restpath.normalise_service_path`): the right covers the call when its method is
  ``*`` or the call's, and its pattern matches the path (:mod:`security_server.core.restpath`). A service-level
  right covers every method and path (X-Road stores it as the endpoint ``* **``). Without a method and path (a
  SOAP call, or a question about the whole service) endpoint rights are ignored, so an endpoint right can never
  widen access to the whole service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, TypeAlias

from security_server.core.errors import AccessDenied, InvalidRequest
from security_server.core.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId
from security_server.core.restpath import method_matches, pattern_matches

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
    (SECURITY-CASES.md: X-Road PR #3140). :meth:`covers` matches it against a request's normal-form path.
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

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Read ``METHOD PATH`` (e.g. ``GET /pets/*``), the form :meth:`__str__` writes."""
        if not isinstance(text, str):
            raise InvalidRequest("an endpoint is written METHOD PATH")
        method, _, path = text.strip().partition(" ")
        if not path.strip():
            raise InvalidRequest("an endpoint is written METHOD PATH, e.g. 'GET /pets/*'")
        return cls(method.upper(), path.strip())

    def covers(self, method: str, path: str) -> bool:
        """Whether this endpoint covers a call with ``method`` on the normal-form service ``path``."""
        return method_matches(self.method, method) and pattern_matches(self.path, path)


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


def _covers_call(right: AccessRight, method: str | None, path: str | None) -> bool:
    if right.endpoint is None:
        return True
    if method is None or path is None:
        return False
    return right.endpoint.covers(method, path)


def is_allowed(
    client: ClientId,
    service: ServiceId,
    rights: Iterable[AccessRight],
    *,
    in_global_group: GlobalGroupCheck,
    local_groups: Mapping[LocalGroupId, frozenset[ClientId]],
    method: str | None = None,
    path: str | None = None,
) -> bool:
    """Whether a right in ``rights`` lets ``client`` call ``service`` (default deny).

    ``local_groups`` are the provider's local groups (``service.client``'s). Rights for other providers or
    other service codes are ignored; endpoint-level rights count only for a REST call given by ``method`` and
    the normal-form ``path`` (see the module docstring).
    """
    for right in rights:
        if not right.covers_service(service) or not _covers_call(right, method, path):
            continue
        if subject_matches(right.subject, client, in_global_group=in_global_group, local_groups=local_groups):
            return True
    return False


def client_rights(
    client: ClientId,
    rights: Iterable[AccessRight],
    *,
    in_global_group: GlobalGroupCheck,
    local_groups: Mapping[LocalGroupId, frozenset[ClientId]],
) -> tuple[AccessRight, ...]:
    """The rights whose subject covers ``client`` (for the ``allowedMethods`` metadata services)."""
    return tuple(
        right
        for right in rights
        if subject_matches(right.subject, client, in_global_group=in_global_group, local_groups=local_groups)
    )


def check_access(
    client: ClientId,
    service: ServiceId,
    rights: Iterable[AccessRight],
    *,
    in_global_group: GlobalGroupCheck,
    local_groups: Mapping[LocalGroupId, frozenset[ClientId]],
    method: str | None = None,
    path: str | None = None,
) -> None:
    """Raise :class:`AccessDenied` unless :func:`is_allowed`; the peer sees only "access denied"."""
    considered = [r for r in rights if r.covers_service(service) and _covers_call(r, method, path)]
    allowed = is_allowed(
        client, service, considered, in_global_group=in_global_group, local_groups=local_groups, method=method, path=path
    )
    if allowed:
        return
    kind = "service-level right(s) for it" if method is None else f"right(s) covering {method} {path}"
    raise AccessDenied(
        "Request not allowed: access denied",
        reason=f"no access right lets {client} call service code {service.service_code} of {service.client}: "
        f"{len(considered)} {kind}, none covers the client",
    )
