"""What both proxies write to the message log about an exchange: its signed messages and, when it fails after
its request was logged, a failure record (SECURITY-CASES.md: nothing half-written, failures logged as failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from security_server.core.errors import BusError, LoggingFailed
from security_server.core.identifiers import ServiceId
from security_server.core.logchain import Direction, LogEntry
from security_server.core.signature import SignatureData
from security_server.core.transport import SignedMessage
from security_server.messagelog.writer import MessageLogWriter


def service_name(service: ServiceId) -> str:
    """How logs and summaries name ``service``: its display form, or for a member-level service (which has none,
    core/identifiers.py) X-Road's ``toString`` form without the subsystem, ``SERVICE:EE/GOV/123/getState[/v1]``."""
    if service.client.subsystem_code is not None:
        return str(service)
    tail = (service.service_code,) if service.service_version is None else (service.service_code, service.service_version)
    return "SERVICE:" + "/".join((*service.client.parts(), *tail))


@dataclass(frozen=True, slots=True)
class ExchangeIds:
    """How the log names one exchange: the message id, the client and service (display forms), X-Road-Request-Id."""

    query_id: str
    client: str
    service: str
    x_request_id: str | None


def signed_entry(
    ids: ExchangeIds,
    direction: Direction,
    time: datetime,
    message: bytes,
    signature: SignatureData,
    attachments: Sequence[bytes] = (),
) -> LogEntry:
    """The record of one signed message (request or response) with its signature and, for a hash-chain
    signature, its chain and the chain's result."""
    return LogEntry(
        query_id=ids.query_id,
        direction=direction,
        client=ids.client,
        service=ids.service,
        time=time,
        message=message,
        signature=signature.signature_xml,
        x_request_id=ids.x_request_id,
        hashchain=signature.hash_chain,
        hashchainresult=signature.hash_chain_result,
        attachments=tuple(attachments),
    )


def received_entry(ids: ExchangeIds, direction: Direction, time: datetime, transport: SignedMessage) -> LogEntry:
    """The record of a signed message received (its signature already checked), with its attachments or body."""
    content = transport.content
    return signed_entry(ids, direction, time, content.message, transport.signature, content.signed_bodies)


async def record(message_log: MessageLogWriter, entry: LogEntry) -> None:
    """Append ``entry`` durably; any failure that is not already a BusError becomes :class:`LoggingFailed`."""
    try:
        await message_log.log(entry)
    except BusError:
        raise
    except Exception as err:
        raise LoggingFailed("Message log could not record the exchange", reason=repr(err)) from err


async def record_failure(
    message_log: MessageLogWriter,
    ids: ExchangeIds,
    time: datetime,
    body: bytes,
    fault_code: str,
    not_logged: Callable[[Exception], None],
) -> None:
    """Record that an exchange whose request is in the log failed; ``not_logged`` hears why it could not be (the
    caller gets its fault either way)."""
    try:
        await message_log.log(
            LogEntry(
                query_id=ids.query_id,
                direction=Direction.RESPONSE,
                client=ids.client,
                service=ids.service,
                time=time,
                message=body,
                signature=b"",
                x_request_id=ids.x_request_id,
                succeeded=False,
                fault_code=fault_code,
            )
        )
    except Exception as err:  # noqa: BLE001 - reported, never raised: the fault stands
        not_logged(err)
