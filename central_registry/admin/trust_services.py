"""The trust services the federation approves: certification authorities (with OCSP responders) and TSAs."""

from __future__ import annotations

from central_registry.store import ApprovedCa, ApprovedTsa, RegistryStore


def certification_services(store: RegistryStore) -> list[ApprovedCa]:
    """The approved CAs, in the store's order."""
    return store.cas()


def timestamping_services(store: RegistryStore) -> list[ApprovedTsa]:
    """The approved timestamping services, in the store's order."""
    return store.tsas()
