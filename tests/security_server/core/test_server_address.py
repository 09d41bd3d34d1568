"""Server proxy addresses read from the global configuration: the forms accepted, the ones skipped."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.globalconf import SecurityServerInfo
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.core.server_address import PeerAddress, parse_server_address, peer_addresses

MEMBER = ClientId("EE", "GOV", "70000009")


def test_server_address_forms() -> None:
    """host, host:port, [v6] and [v6]:port are read; anything else is unusable (None)."""
    assert parse_server_address("ss2.example.org") == ("ss2.example.org", 5500)
    assert parse_server_address("127.0.0.1:5577") == ("127.0.0.1", 5577)
    assert parse_server_address("[::1]") == ("::1", 5500)
    assert parse_server_address("[::1]:8443") == ("::1", 8443)
    for bad in ("", " ", "::1", "host:0", "host:70000", "host:port", "[::1", "[nothost]:1", "a b", "user@host", "h/x", "[::1]x"):
        assert parse_server_address(bad) is None, bad


@settings(max_examples=60, deadline=None)
@given(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True),
    st.integers(1, 65535),
)
def test_server_address_round_trip(host: str, port: int) -> None:
    """Any host name with any valid port reads back as itself."""
    assert parse_server_address(f"{host}:{port}") == (host, port)


def test_peer_addresses_skip_servers_without_a_usable_address() -> None:
    """Servers without an address, or with an unusable one, are not offered to the link."""
    servers = [
        SecurityServerInfo(SecurityServerId(MEMBER, "a"), None),
        SecurityServerInfo(SecurityServerId(MEMBER, "b"), "bad address"),
        SecurityServerInfo(SecurityServerId(MEMBER, "c"), "10.0.0.3"),
    ]
    assert peer_addresses(servers) == [PeerAddress(SecurityServerId(MEMBER, "c"), "10.0.0.3", 5500)]
