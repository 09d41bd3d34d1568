"""Exported containers: our verifier, ``openssl ts -verify`` and ``xmlsec1`` all accept them."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from security_server.core.evidence import verify_evidence
from security_server.core.logchain import make_record, GENESIS_LINK
from security_server.messagelog.asic_export import (
    NotExportable,
    exchange_zip,
    exchange_zip_name,
    record_container,
    record_container_name,
)
from tests.federation.evidence import exchange, failed_entry, federation, linked, stamp_batch

NOW = datetime.now(UTC).replace(microsecond=0)


def tool(name: str) -> str:
    """The path of an independent oracle (Debian packages openssl and xmlsec1; `make deps` installs them)."""
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed (`make deps` installs it)"
    return path


def unpack(data: bytes, folder: Path) -> Path:
    """Extract a container (our own, trusted) into ``folder``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        zipped.extractall(folder)
    return folder


def ca_pem(folder: Path) -> Path:
    """The federation's CA certificate as PEM, for the independent tools."""
    path = folder / "ca.pem"
    path.write_bytes(federation().ca.certificate.public_bytes(serialization.Encoding.PEM))
    return path


def batch_containers(attachments: tuple[bytes, ...] = ()) -> list[bytes]:
    """Request and response of one exchange, batch-timestamped, exported."""
    records = linked(list(exchange("export-1", NOW, attachments=attachments)))
    return [record_container(record, stamp) for record, stamp in stamp_batch(records, NOW)]


def test_exported_containers_verify_with_our_verifier() -> None:
    """Batch-stamped request (with an attachment) and response verify with every check passed."""
    for data in batch_containers(attachments=(b'{"rest": "body"}',)):
        report = verify_evidence(data, federation().conf(), datetime.now(UTC))
        assert report.ok, report.checks


def test_container_layout_is_xroads() -> None:
    """mimetype first and stored; message, attachment, signature, both hash chains, token and manifests."""
    data = batch_containers(attachments=(b"body",))[0]
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        infos = zipped.infolist()
        names = [info.filename for info in infos]
        assert infos[0].filename == "mimetype" and infos[0].compress_type == zipfile.ZIP_STORED
        assert zipped.read("mimetype") == b"application/vnd.etsi.asic-e+zip"
    assert set(names) == {
        "mimetype", "message.xml", "attachment1", "META-INF/signatures.xml", "sig-hashchainresult.xml",
        "sig-hashchain.xml", "ts-hashchainresult.xml", "ts-hashchain.xml", "META-INF/timestamp.tst",
        "META-INF/ASiCManifest.xml", "META-INF/manifest.xml",
    }


def test_openssl_ts_verify_accepts_the_batch_token_over_the_hash_chain_result(tmp_path: Path) -> None:
    """`openssl ts -verify -in META-INF/timestamp.tst -token_in -data ts-hashchainresult.xml -CAfile ca.pem` says OK,
    and refuses the token for another hash chain result."""
    folder = unpack(batch_containers()[0], tmp_path / "c")
    command = [tool("openssl"), "ts", "-verify", "-in", "META-INF/timestamp.tst", "-token_in",
               "-data", "ts-hashchainresult.xml", "-CAfile", str(ca_pem(tmp_path))]
    accepted = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, check=False)
    assert accepted.returncode == 0 and "Verification: OK" in accepted.stdout, accepted.stdout + accepted.stderr
    (folder / "ts-hashchainresult.xml").write_bytes((folder / "ts-hashchainresult.xml").read_bytes() + b" ")
    refused = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0


@pytest.mark.parametrize("attachments", [(), (b"attachment one",)], ids=["message", "hash-chain"])
def test_xmlsec1_accepts_the_exported_signature(tmp_path: Path, attachments: tuple[bytes, ...]) -> None:
    """xmlsec1 (XROAD-REFERENCE.md §9) verifies META-INF/signatures.xml against the CA, and fails after one byte."""
    folder = unpack(batch_containers(attachments)[0], tmp_path / "c")
    reference = "/sig-hashchainresult.xml" if attachments else "/message.xml"
    command = [
        tool("xmlsec1"), "--verify", "--trusted-pem", str(ca_pem(tmp_path)), f"--url-map:{reference}", reference[1:],
        "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", "META-INF/signatures.xml",
    ]
    accepted = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, check=False)
    assert accepted.returncode == 0, accepted.stderr
    signed = folder / reference[1:]
    content = bytearray(signed.read_bytes())
    content[len(content) // 2] ^= 0x01
    signed.write_bytes(bytes(content))
    refused = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0


def test_exchange_zip_holds_request_and_response_named_as_xroad_does() -> None:
    """The exchange zip holds <queryId>-request-<id>.asice and <queryId>-response-<id>.asice, each verifying."""
    stamped = stamp_batch(linked(list(exchange("zip-1", NOW))), NOW)
    data = exchange_zip(stamped)
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        assert zipped.namelist() == ["zip-1-request-1.asice", "zip-1-response-2.asice"]
        for name in zipped.namelist():
            assert verify_evidence(zipped.read(name), federation().conf(), datetime.now(UTC)).ok
    assert exchange_zip_name("zip 1/2") == "zip+1%2F2.zip"
    assert record_container_name(stamped[1][0]) == "zip-1-response-2.asice"


def test_an_unsigned_record_is_not_exportable_and_is_left_out_of_zips() -> None:
    """A failed exchange's unsigned record has no container; an exchange zip skips it."""
    request = exchange("fail-1", NOW)[0]
    records = linked([request, failed_entry("fail-1", NOW)])
    with pytest.raises(NotExportable):
        record_container(records[1], None)
    with zipfile.ZipFile(io.BytesIO(exchange_zip([(records[0], None), (records[1], None)]))) as zipped:
        assert zipped.namelist() == ["fail-1-request-1.asice"]


def test_export_is_reproducible() -> None:
    """The same record and timestamp give the same container bytes (archives rely on it)."""
    [(record, stamp)] = stamp_batch([make_record(exchange("rep-1", NOW)[0], record_id=1, prev_link=GENESIS_LINK)], NOW)
    assert record_container(record, stamp) == record_container(record, stamp)


def test_an_unstamped_record_exports_without_timestamp_entries() -> None:
    """Before its timestamp a record still exports; the container then has no timestamp to verify."""
    record = linked([exchange("early-1", NOW)[0]])[0]
    data = record_container(record, None)
    assert not verify_evidence(data, federation().conf(), datetime.now(UTC)).ok
    assert verify_evidence(data, federation().conf(), datetime.now(UTC), require_timestamp=False).code == "valid"
