"""Access rights: default deny, exact subjects, groups, version ignored, and adding a right never removes one."""

from __future__ import annotations

from typing import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.acl import AccessRight, Endpoint, check_access, is_allowed, subject_matches
from security_server.core.errors import AccessDenied, InvalidRequest
from security_server.core.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId

# Small alphabets on purpose: collisions between generated identifiers are what the properties are about.
members = st.builds(ClientId, st.sampled_from(["EE", "FI"]), st.sampled_from(["GOV", "COM"]), st.sampled_from(["1", "2"]))
clients = st.builds(
    lambda m, sub: m if sub is None else m.subsystem(sub), members, st.sampled_from([None, "a", "b"])
)
providers = st.builds(lambda m, sub: m.subsystem(sub), members, st.sampled_from(["a", "b"]))
codes = st.sampled_from(["getRandom", "getPerson"])
versions = st.sampled_from([None, "v1", "v2"])
services = st.builds(ServiceId, providers, codes, versions)
global_groups = st.builds(GlobalGroupId, st.sampled_from(["EE", "FI"]), st.sampled_from(["g1", "g2"]))
local_group_ids = st.builds(LocalGroupId, st.sampled_from(["l1", "l2"]))
subjects = st.one_of(clients, global_groups, local_group_ids)
endpoints = st.one_of(st.none(), st.builds(Endpoint, st.sampled_from(["*", "GET"]), st.sampled_from(["**", "/a"])))
rights = st.builds(AccessRight, subjects, st.builds(ServiceId, providers, codes), endpoints)
right_lists = st.lists(rights, max_size=8)
group_tables = st.dictionaries(
    st.tuples(clients, global_groups), st.booleans(), max_size=6
)  # (client, group) -> member?
local_tables = st.dictionaries(local_group_ids, st.frozensets(clients, max_size=4), max_size=2)

PROPERTY = settings(max_examples=100, deadline=None)


def _allowed(
    client: ClientId,
    service: ServiceId,
    granted: list[AccessRight],
    groups: Mapping[tuple[ClientId, GlobalGroupId], bool],
    local: Mapping[LocalGroupId, frozenset[ClientId]],
) -> bool:
    return is_allowed(
        client, service, granted, in_global_group=lambda c, g: groups.get((c, g), False), local_groups=local
    )


def _nobody(client: ClientId, group: GlobalGroupId) -> bool:
    return False


PROVIDER = ClientId("EE", "GOV", "70000310", "registry")
MEMBER = ClientId("EE", "COM", "12345")
SUBSYSTEM = MEMBER.subsystem("crm")
SIBLING = MEMBER.subsystem("billing")
GET_RANDOM = ServiceId(PROVIDER, "getRandom")


# --- properties ------------------------------------------------------------------------------------------------


@PROPERTY
@given(clients, services, group_tables, local_tables)
def test_default_deny_with_no_rights(
    client: ClientId,
    service: ServiceId,
    groups: dict[tuple[ClientId, GlobalGroupId], bool],
    local: dict[LocalGroupId, frozenset[ClientId]],
) -> None:
    """With no rights at all nobody may call anything, whatever the groups say."""
    assert not _allowed(client, service, [], groups, local)


@PROPERTY
@given(clients, services, right_lists, rights, group_tables, local_tables)
def test_adding_a_right_never_removes_a_permission(
    client: ClientId,
    service: ServiceId,
    granted: list[AccessRight],
    extra: AccessRight,
    groups: dict[tuple[ClientId, GlobalGroupId], bool],
    local: dict[LocalGroupId, frozenset[ClientId]],
) -> None:
    """If a set of rights allows a call, the same set plus any other right still allows it."""
    if _allowed(client, service, granted, groups, local):
        assert _allowed(client, service, [*granted, extra], groups, local)
        assert _allowed(client, service, [extra, *granted], groups, local)


@PROPERTY
@given(clients, services, right_lists, group_tables, local_tables)
def test_a_right_for_another_service_never_allows(
    client: ClientId,
    service: ServiceId,
    granted: list[AccessRight],
    groups: dict[tuple[ClientId, GlobalGroupId], bool],
    local: dict[LocalGroupId, frozenset[ClientId]],
) -> None:
    """Rights naming another provider or another service code never allow the service, even to everyone."""
    others = [r for r in granted if not r.covers_service(service)]
    everyone = {key: True for key in groups}
    assert not _allowed(client, service, others, everyone, local)


@PROPERTY
@given(clients, services, versions, right_lists, group_tables, local_tables)
def test_the_service_version_is_ignored(
    client: ClientId,
    service: ServiceId,
    other_version: str | None,
    granted: list[AccessRight],
    groups: dict[tuple[ClientId, GlobalGroupId], bool],
    local: dict[LocalGroupId, frozenset[ClientId]],
) -> None:
    """The decision for one version of a service is the decision for every version of it."""
    same_code = ServiceId(service.client, service.service_code, other_version)
    assert _allowed(client, service, granted, groups, local) == _allowed(client, same_code, granted, groups, local)


@PROPERTY
@given(clients, clients, services)
def test_a_client_subject_covers_exactly_that_client(subject: ClientId, client: ClientId, service: ServiceId) -> None:
    """A right for a member or subsystem allows the identical client and nobody else."""
    granted = [AccessRight.for_service(subject, service)]
    assert _allowed(client, service, granted, {}, {}) == (client == subject)


@PROPERTY
@given(clients, services, global_groups, st.booleans())
def test_a_global_group_subject_follows_the_global_configuration(
    client: ClientId, service: ServiceId, group: GlobalGroupId, member: bool
) -> None:
    """A right for a global group allows exactly the clients the global configuration puts in the group."""
    granted = [AccessRight.for_service(group, service)]
    assert _allowed(client, service, granted, {(client, group): member}, {}) == member


@PROPERTY
@given(clients, services, local_group_ids, local_tables)
def test_a_local_group_subject_follows_the_providers_groups(
    client: ClientId, service: ServiceId, group: LocalGroupId, local: dict[LocalGroupId, frozenset[ClientId]]
) -> None:
    """A right for a local group allows exactly the group's members; an unknown group allows nobody."""
    granted = [AccessRight.for_service(group, service)]
    assert _allowed(client, service, granted, {}, local) == (client in local.get(group, frozenset()))


@PROPERTY
@given(clients, services, st.lists(rights.filter(lambda r: r.endpoint is not None), max_size=6))
def test_endpoint_rights_never_allow_the_whole_service(
    client: ClientId, service: ServiceId, granted: list[AccessRight]
) -> None:
    """Endpoint-level rights (REST, not matched yet) never grant service-level access."""
    everything = {(client, GlobalGroupId(i, g)): True for i in ("EE", "FI") for g in ("g1", "g2")}
    local = {LocalGroupId("l1"): frozenset({client}), LocalGroupId("l2"): frozenset({client})}
    assert not _allowed(client, service, granted, everything, local)


# --- examples ----------------------------------------------------------------------------------------------------


def test_a_member_right_does_not_cover_its_subsystems() -> None:
    """X-Road compares identifiers exactly: a right for MEMBER EE/COM/12345 does not let its subsystem call."""
    granted = [AccessRight(MEMBER, GET_RANDOM)]
    assert is_allowed(MEMBER, GET_RANDOM, granted, in_global_group=_nobody, local_groups={})
    assert not is_allowed(SUBSYSTEM, GET_RANDOM, granted, in_global_group=_nobody, local_groups={})


def test_a_subsystem_right_covers_neither_its_member_nor_its_siblings() -> None:
    """A right for one subsystem allows that subsystem only."""
    granted = [AccessRight(SUBSYSTEM, GET_RANDOM)]
    assert is_allowed(SUBSYSTEM, GET_RANDOM, granted, in_global_group=_nobody, local_groups={})
    assert not is_allowed(MEMBER, GET_RANDOM, granted, in_global_group=_nobody, local_groups={})
    assert not is_allowed(SIBLING, GET_RANDOM, granted, in_global_group=_nobody, local_groups={})


def test_a_right_for_one_provider_does_not_cover_the_same_code_elsewhere() -> None:
    """getRandom of one provider and getRandom of another provider are different services."""
    granted = [AccessRight(SUBSYSTEM, GET_RANDOM)]
    elsewhere = ServiceId(PROVIDER.member.subsystem("other"), "getRandom")
    assert not is_allowed(SUBSYSTEM, elsewhere, granted, in_global_group=_nobody, local_groups={})


def test_a_versioned_request_is_covered_by_the_code_right() -> None:
    """A right for getRandom covers a request for getRandom v1 and v2."""
    granted = [AccessRight(SUBSYSTEM, GET_RANDOM)]
    for version in ("v1", "v2"):
        service = ServiceId(PROVIDER, "getRandom", version)
        assert is_allowed(SUBSYSTEM, service, granted, in_global_group=_nobody, local_groups={})


def test_the_global_group_callable_is_asked_with_the_client_and_the_group() -> None:
    """The callable receives the requesting client and the right's group."""
    group = GlobalGroupId("EE", "security-server-owners")
    asked: list[tuple[ClientId, GlobalGroupId]] = []

    def check(client: ClientId, candidate: GlobalGroupId) -> bool:
        asked.append((client, candidate))
        return True

    assert is_allowed(SUBSYSTEM, GET_RANDOM, [AccessRight(group, GET_RANDOM)], in_global_group=check, local_groups={})
    assert asked == [(SUBSYSTEM, group)]


def test_subject_matches_local_group_membership_is_exact() -> None:
    """Being in a local group as a member does not put the member's subsystems in it."""
    local = {LocalGroupId("partners"): frozenset({MEMBER})}
    kwargs = {"in_global_group": _nobody, "local_groups": local}
    assert subject_matches(LocalGroupId("partners"), MEMBER, **kwargs)  # type: ignore[arg-type]
    assert not subject_matches(LocalGroupId("partners"), SUBSYSTEM, **kwargs)  # type: ignore[arg-type]


def test_check_access_denies_with_an_opaque_message_and_a_specific_reason() -> None:
    """AccessDenied carries server.serverproxy.access_denied, no identifiers in the message, the cause in reason."""
    with pytest.raises(AccessDenied) as caught:
        check_access(SUBSYSTEM, GET_RANDOM, [AccessRight(SIBLING, GET_RANDOM)], in_global_group=_nobody, local_groups={})
    error = caught.value
    assert error.fault_code == "server.serverproxy.access_denied"
    assert "12345" not in error.message and "getRandom" not in error.message
    assert str(SUBSYSTEM) in error.reason and "getRandom" in error.reason and "1 service-level" in error.reason


def test_check_access_passes_when_allowed() -> None:
    """check_access returns quietly when a right covers the call."""
    check_access(SUBSYSTEM, GET_RANDOM, [AccessRight(SUBSYSTEM, GET_RANDOM)], in_global_group=_nobody, local_groups={})


def test_check_access_on_a_member_level_service_still_explains() -> None:
    """A service of a member (no subsystem) is denied with a reason, not a formatting error."""
    service = ServiceId(PROVIDER.member, "getRandom")
    with pytest.raises(AccessDenied):
        check_access(SUBSYSTEM, service, [], in_global_group=_nobody, local_groups={})


# --- value types ----------------------------------------------------------------------------------------------


def test_a_right_with_a_version_is_refused() -> None:
    """Access rights are per service code: constructing one with a version fails; for_service drops it."""
    with pytest.raises(InvalidRequest):
        AccessRight(SUBSYSTEM, ServiceId(PROVIDER, "getRandom", "v1"))
    assert AccessRight.for_service(SUBSYSTEM, ServiceId(PROVIDER, "getRandom", "v1")) == AccessRight(SUBSYSTEM, GET_RANDOM)


def test_a_right_needs_a_valid_subject() -> None:
    """A service or a server is not an access right subject."""
    with pytest.raises(InvalidRequest):
        AccessRight(GET_RANDOM, GET_RANDOM)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        AccessRight(SUBSYSTEM, "getRandom")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("FETCH", "/a"),
        ("get", "/a"),
        ("GET", ""),
        ("GET", "a"),
        ("GET", "/a/../b"),
        ("GET", "/a/./b"),
        ("GET", "/a%2Fb"),
        ("GET", "/a b"),
        ("GET", "/a?x=1"),
        ("GET", "/a#x"),
        ("GET", "/" + "a" * 2048),
    ],
)
def test_bad_endpoints_are_refused(method: str, path: str) -> None:
    """Endpoints take a known method and a decoded path pattern without dot segments, encodings or queries."""
    with pytest.raises(InvalidRequest):
        Endpoint(method, path)


def test_good_endpoints_are_accepted() -> None:
    """The service-level pattern and ordinary REST patterns are valid endpoints."""
    assert str(Endpoint("*", "**")) == "* **"
    Endpoint("GET", "/pets/{id}")
    Endpoint("POST", "/pets/*")
    Endpoint("DELETE", "/")
