"""The two departments of the evidence and end-to-end tests: who they are and the service one offers the other."""

from __future__ import annotations

from security_server.core.identifiers import ClientId, ServiceId

INSTANCE = "EE"
CONSUMER_MEMBER = ClientId(INSTANCE, "GOV", "70000310")
PROVIDER_MEMBER = ClientId(INSTANCE, "GOV", "70000311")
CONSUMER = CONSUMER_MEMBER.subsystem("consumer")
PROVIDER = PROVIDER_MEMBER.subsystem("provider")
SERVICE = ServiceId(PROVIDER, "getRandom", "v1")
"""getRandom v1 of the provider's subsystem (``tests/security_server/getrandom.wsdl``)."""
