"""Body logging as X-Road offers it (core/body_logging.py): the rule, its four exception lists, what is cut."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from security_server.core.body_logging import BodyLogging, entry_without_body, parse_subsystems, soap_without_body
from security_server.core.errors import ConfigurationError
from security_server.core.identifiers import ClientId
from security_server.core.safexml import parse_xml
from tests.federation.evidence import exchange, soap_message

PROVIDER = ClientId("EE", "GOV", "70000311", "provider")
OTHER = ClientId("EE", "GOV", "70000312", "other")


@pytest.mark.parametrize(
    ("policy", "producer", "client_side", "logged"),
    [
        (BodyLogging(), PROVIDER, True, True),
        (BodyLogging(), PROVIDER, False, True),
        (BodyLogging(disabled_remote=frozenset({PROVIDER})), PROVIDER, True, False),
        (BodyLogging(disabled_remote=frozenset({PROVIDER})), PROVIDER, False, True),
        (BodyLogging(disabled_local=frozenset({PROVIDER})), PROVIDER, False, False),
        (BodyLogging(disabled_local=frozenset({PROVIDER})), OTHER, False, True),
        (BodyLogging(enabled=False), PROVIDER, True, False),
        (BodyLogging(enabled=False, enabled_local=frozenset({PROVIDER})), PROVIDER, False, True),
        (BodyLogging(enabled=False, enabled_local=frozenset({PROVIDER})), PROVIDER, True, False),
        (BodyLogging(enabled=False, enabled_remote=frozenset({PROVIDER})), PROVIDER, True, True),
        (BodyLogging(enabled=False, disabled_remote=frozenset({PROVIDER})), PROVIDER, True, False),
        (BodyLogging(enabled=False), None, True, False),
        (BodyLogging(disabled_remote=frozenset({PROVIDER})), None, True, True),
    ],
)
def test_the_rule_and_its_exceptions(policy: BodyLogging, producer: ClientId | None, client_side: bool, logged: bool) -> None:
    """X-Road's MessageBodyManipulator: remote lists on the client side, local on the server side; the enabled lists
    count only when the rule is false, the disabled ones only when it is true; no producer follows the rule."""
    assert policy.logs_body(producer, client_side=client_side) is logged


_IDS = st.sampled_from([PROVIDER, OTHER])


@given(
    enabled=st.booleans(), client_side=st.booleans(), producer=st.one_of(st.none(), _IDS),
    lists=st.tuples(*(st.frozensets(_IDS) for _ in range(4))),
)
def test_logs_every_body_only_when_no_producer_is_excepted(
    enabled: bool, client_side: bool, producer: ClientId | None,
    lists: tuple[frozenset[ClientId], frozenset[ClientId], frozenset[ClientId], frozenset[ClientId]],
) -> None:
    """The proxies' shortcut: when it says every body is logged, the full rule logs this producer's body too; it
    says so for X-Road's default policy and never while an exception on this side could cut a body."""
    policy = BodyLogging(enabled, lists[0], lists[1], lists[2], lists[3])
    if policy.logs_every_body(client_side=client_side):
        assert policy.logs_body(producer, client_side=client_side)
    side_exceptions = lists[3] if client_side else lists[2]
    assert policy.logs_every_body(client_side=client_side) is (enabled and not side_exceptions)
    assert BodyLogging().logs_every_body(client_side=client_side)


def test_subsystem_lists_are_read_in_x_road_form() -> None:
    """``INSTANCE/CLASS/MEMBER/SUBSYSTEM`` comma-separated; blanks ignored; a member or a malformed id refused."""
    assert parse_subsystems(" EE/GOV/70000311/provider, EE/GOV/70000312/other ,", "x") == {PROVIDER, OTHER}
    assert parse_subsystems("", "x") == frozenset()
    with pytest.raises(ConfigurationError, match="subsystem"):
        parse_subsystems("EE/GOV/70000311", "x")
    with pytest.raises(ConfigurationError):
        parse_subsystems("EE/GOV", "x")


def test_a_soap_body_is_emptied_and_the_header_kept_byte_for_byte() -> None:
    """Everything up to the Body start tag and from its end tag on stays as it was; the body has no content."""
    message = soap_message("q-1", response=False, payload="secret data")
    cut = soap_without_body(message)
    head, _, _ = message.partition(b"<SOAP-ENV:Body>")
    assert cut == head + b"<SOAP-ENV:Body></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    assert b"secret" not in cut and soap_without_body(cut) == cut


def test_an_unusual_layout_is_reserialised_with_an_empty_body() -> None:
    """A Body in the default namespace (no prefix to cut at) still comes out empty with its header."""
    message = (
        b'<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Header><x xmlns="urn:h">1</x></Header>'
        b'<Body><p xmlns="urn:p">secret</p></Body></Envelope>'
    )
    cut = soap_without_body(message)
    root = parse_xml(cut)
    assert b"secret" not in cut and len(root[1]) == 0 and root[0][0].text == "1"


@given(st.binary(max_size=300))
def test_bytes_that_are_not_soap_are_kept_as_they_are(data: bytes) -> None:
    """A fault body or garbage is not ours to rewrite: it comes back unchanged (or emptied if it is an envelope)."""
    out = soap_without_body(data)
    assert out == data or b"Body" in out


def test_an_entry_without_body() -> None:
    """REST: the body (attachments) goes, the message part stays whole; SOAP: the Body is emptied, attachments go."""
    request, _ = exchange("q-2", attachments=(b"attached",))
    rest = entry_without_body(request, rest=True)
    assert rest.message == request.message and rest.attachments == ()
    soap = entry_without_body(request, rest=False)
    assert soap.attachments == () and b"<seed>" not in soap.message and soap.signature == request.signature
