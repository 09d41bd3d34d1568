"""A logged record as evidence: its ASiC-E container, and a zip of an exchange's containers.

X-Road's ``MessageRecord.toAsicContainer`` (XROAD-REFERENCE.md §4.6): ``message.xml`` is the logged message,
``attachmentN`` its logged attachments (a REST body is ``attachment1``), ``META-INF/signatures.xml`` the logged
signature (with ``sig-hashchain*.xml`` when it covers a hash chain). A batch timestamp adds
``ts-hashchainresult.xml``, the record's own ``ts-hashchain.xml``, ``META-INF/timestamp.tst`` and
``META-INF/ASiCManifest.xml``. A single timestamp (a batch of one, or a forced one) covers the signature value
and travels inside the signature as ``xades:SignatureTimeStamp``, as X-Road stores it; the logged signature
itself is never changed (it is part of the log's hash link), the token is added to the exported copy.

Pure: records in, bytes out; entry times are the record's time, so an export is reproducible.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from typing import Sequence

from security_server.core.archive import container_name, escape_query_id
from security_server.core.asic import BatchTimestamp, build_container
from security_server.core.logchain import Direction, LogRecord
from security_server.core.signature import SignatureData, add_signature_timestamp
from security_server.messagelog.store import RecordTimestamp

ZIP_MEDIA_TYPE = "application/zip"
ASIC_MEDIA_TYPE = "application/vnd.etsi.asic-e+zip"


class NotExportable(ValueError):
    """The record cannot become a container (it has no signature: a failed exchange)."""


def record_container(record: LogRecord, timestamp: RecordTimestamp | None) -> bytes:
    """The ASiC-E container of ``record`` with its timestamp (None: not timestamped yet, no timestamp entries)."""
    if not record.signature:
        raise NotExportable(f"record {record.id} carries no signature (a failed exchange): nothing to export")
    signature_xml = record.signature
    batch: BatchTimestamp | None = None
    if timestamp is not None:
        stored = timestamp.timestamp
        if stored.hash_chain_result is not None:
            if timestamp.hash_chain is None:
                raise NotExportable(f"record {record.id} is batch-timestamped but has no ts hash chain")
            batch = BatchTimestamp(stored.token, stored.hash_chain_result, timestamp.hash_chain)
        else:
            signature_xml = add_signature_timestamp(record.signature, stored.token)
    signature = SignatureData(signature_xml, record.hashchainresult, record.hashchain)
    return build_container(
        record.message, signature, created=record.time, attachments=record.attachments, timestamp=batch
    )


def record_container_name(record: LogRecord) -> str:
    """The container's file name (X-Road ``AsicContainerNameGenerator``): ``<queryId>-<request|response>-<id>.asice``."""
    return container_name(record.query_id, record.direction is Direction.RESPONSE, record.id)


def exchange_zip_name(query_id: str, direction: Direction | None = None) -> str:
    """The download name of an exchange's zip: ``<queryId>[-request|-response].zip`` (SIGDOC §2)."""
    suffix = "" if direction is None else f"-{direction.value}"
    return f"{escape_query_id(query_id)}{suffix}.zip"


@dataclass(frozen=True, slots=True)
class Exported:
    """One container of an exchange: its file name and bytes."""

    name: str
    data: bytes


def exchange_containers(records: Sequence[tuple[LogRecord, RecordTimestamp | None]]) -> list[Exported]:
    """The containers of an exchange's records (request, response ...), skipping those without a signature."""
    return [
        Exported(record_container_name(record), record_container(record, timestamp))
        for record, timestamp in records
        if record.signature
    ]


def exchange_zip(records: Sequence[tuple[LogRecord, RecordTimestamp | None]]) -> bytes:
    """A zip of the exchange's containers (X-Road's ``/asic`` answer): ``queryId-request-Z.asice`` and so on."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for (record, _), exported in zip([r for r in records if r[0].signature], exchange_containers(records)):
            utc = record.time
            early = utc.year < 1980  # the zip format starts in 1980
            stamp = (1980, 1, 1, 0, 0, 0) if early else (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
            info = zipfile.ZipInfo(exported.name, date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, exported.data)
    return buffer.getvalue()
