"""The signing-key cache: a member's key is read from the token once per time-to-live."""

from __future__ import annotations

from datetime import timedelta

from security_server.core.certprofile import member_from_signing_cert
from security_server.signer.signing_keys import SigningKeys
from tests.federation.world import O, OTHER, pki
from tests.loopback import now


def test_signing_keys_are_read_once_per_ttl() -> None:
    """The key is read from the token once and reused until the time-to-live passes."""
    keys = SigningKeys(pki().other_token, ttl_seconds=60)  # an EC key: quick to load
    at = now()
    first, cert = keys.get(O, at)
    assert keys.get(OTHER, at + timedelta(seconds=30))[0] is first  # a subsystem signs with its member's key
    assert keys.get(O, at + timedelta(seconds=61))[0] is not first
    assert member_from_signing_cert(cert) == O
