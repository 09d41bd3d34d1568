"""Management requests from security servers: list, show, approve, decline (through the registration desk).

A request keeps the id its security server gave it (inside the signed request); X-Road numbers requests with
integers, so this layer numbers them 1, 2, ... in the order they were submitted (submission time, then id).
Requests are never deleted, so a request keeps its number.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from central_registry.admin.errors import RequestNotFound, RequestNotWaiting
from central_registry.requests import RegistrationDesk, RequestRecord, RequestStatus
from central_registry.store import RegistryStore


@dataclass(frozen=True, slots=True)
class NumberedRequest:
    """A stored request with its number and what its payload says (the server's address, the certificate)."""

    number: int
    record: RequestRecord
    address: str | None
    auth_cert_der: bytes | None


def requests(store: RegistryStore) -> list[NumberedRequest]:
    """Every request, numbered, oldest first."""
    payloads = {
        row["id"]: json.loads(row["payload"]) for row in store.db.query("SELECT id, payload FROM requests")
    }
    found = []
    for number, record in enumerate(RegistrationDesk(store).list(), start=1):
        payload = payloads.get(record.id, {})
        cert = payload.get("auth_cert")
        found.append(NumberedRequest(number, record, payload.get("address"),
                                     base64.b64decode(cert) if cert else None))
    return found


def request(store: RegistryStore, number: int) -> NumberedRequest:
    """One request by number; :class:`RequestNotFound` when there is none."""
    everything = requests(store)
    if not 1 <= number <= len(everything):
        raise RequestNotFound(f"no management request {number}")
    return everything[number - 1]


def _waiting(store: RegistryStore, number: int) -> NumberedRequest:
    found = request(store, number)
    if found.record.status is not RequestStatus.PENDING:
        raise RequestNotWaiting(f"management request {number} is already {found.record.status}")
    return found


def approve(store: RegistryStore, number: int, now: datetime) -> NumberedRequest:
    """Approve a waiting request: it takes effect in the next published configuration."""
    RegistrationDesk(store).approve(_waiting(store, number).record.id, now)
    return request(store, number)


def decline(store: RegistryStore, number: int, now: datetime) -> NumberedRequest:
    """Decline a waiting request; nothing else changes."""
    RegistrationDesk(store).reject(_waiting(store, number).record.id, now)
    return request(store, number)


def records(store: RegistryStore, status: RequestStatus | None = None) -> list[RequestRecord]:
    """Requests by the ids their servers gave them, oldest first, optionally only those in ``status`` (the CLI)."""
    return RegistrationDesk(store).list(status)


def approve_by_id(store: RegistryStore, request_id: str, now: datetime) -> RequestRecord:
    """Approve a pending request named by its id (the CLI)."""
    return RegistrationDesk(store).approve(request_id, now)


def decline_by_id(store: RegistryStore, request_id: str, now: datetime) -> RequestRecord:
    """Decline (reject) a pending request named by its id (the CLI)."""
    return RegistrationDesk(store).reject(request_id, now)
