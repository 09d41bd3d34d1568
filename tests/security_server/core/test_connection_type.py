"""The client proxy's decision on how a client's information system connected (X-Road's IsAuthentication)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security_server.core.connection_type import PLAINTEXT, ConnectionType, IsConnection, check_connection
from security_server.core.errors import SslAuthenticationFailed

CLIENT = "SUBSYSTEM:EE/GOV/70000310/app"
REGISTERED = b"registered-cert"
OTHER = b"some-other-cert"
INTERNAL = b"internal-cert"


def refusal(connection_type: ConnectionType, connection: IsConnection, certs: tuple[bytes, ...] = (REGISTERED,)) -> str:
    """The refusal's message (the test fails if there is none), after checking its fault code."""
    with pytest.raises(SslAuthenticationFailed) as caught:
        check_connection(CLIENT, connection_type, connection, certs, INTERNAL)
    assert caught.value.fault_code == "server.clientproxy.ssl_authentication_failed"
    return caught.value.message


@given(st.booleans(), st.one_of(st.none(), st.binary(max_size=8)))
def test_http_allows_every_connection(tls: bool, cert: bytes | None) -> None:
    """HTTP: plain HTTP and HTTPS, with or without any certificate, pass."""
    connection = IsConnection(tls, cert if tls else None)
    check_connection(CLIENT, ConnectionType.HTTP, connection, (), None)


def test_https_no_auth_needs_tls_only() -> None:
    """HTTPS_NO_AUTH: plain HTTP is refused with X-Road's words; HTTPS with any certificate or none passes."""
    assert "specifies HTTPS NO AUTH but client made plaintext connection" in refusal(ConnectionType.HTTPS_NO_AUTH, PLAINTEXT)
    check_connection(CLIENT, ConnectionType.HTTPS_NO_AUTH, IsConnection(True), (), None)
    check_connection(CLIENT, ConnectionType.HTTPS_NO_AUTH, IsConnection(True, OTHER), (REGISTERED,), None)


def test_https_needs_a_registered_certificate() -> None:
    """HTTPS: plain HTTP, no certificate, a certificate not the client's are refused; its own passes."""
    assert "did not supply TLS certificate" in refusal(ConnectionType.HTTPS, PLAINTEXT)
    assert "did not supply TLS certificate" in refusal(ConnectionType.HTTPS, IsConnection(True))
    assert "does not match any IS certificates" in refusal(ConnectionType.HTTPS, IsConnection(True, OTHER))
    assert "has no IS certificates" in refusal(ConnectionType.HTTPS, IsConnection(True, OTHER), ())
    check_connection(CLIENT, ConnectionType.HTTPS, IsConnection(True, REGISTERED), (OTHER, REGISTERED), INTERNAL)


def test_the_servers_own_internal_certificate_passes_https() -> None:
    """A connection made with the server's internal TLS certificate is local: it passes HTTPS unchecked (X-Road)."""
    check_connection(CLIENT, ConnectionType.HTTPS, IsConnection(True, INTERNAL), (), INTERNAL)


def test_a_plaintext_connection_has_no_certificate() -> None:
    """An IsConnection cannot claim a client certificate without TLS."""
    with pytest.raises(ValueError):
        IsConnection(False, REGISTERED)


@given(st.text(max_size=20))
def test_only_the_three_api_names_parse(text: str) -> None:
    """ConnectionType.parse takes exactly HTTP, HTTPS_NO_AUTH and HTTPS."""
    if text in ("HTTP", "HTTPS_NO_AUTH", "HTTPS"):
        assert ConnectionType.parse(text).value == text
    else:
        with pytest.raises(ValueError):
            ConnectionType.parse(text)
