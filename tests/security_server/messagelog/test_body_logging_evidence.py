"""What a record logged without its body still proves (core/body_logging.py; docs/evidence.md)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from security_server.audit_cli import audit
from security_server.core.asic import VALID_WITHOUT_MESSAGE, CheckStatus
from security_server.core.body_logging import entry_without_body
from security_server.core.evidence import VerificationConf, read_verification_conf, verify_evidence
from security_server.core.logchain import Direction
from security_server.core.rest import RestRequest
from security_server.core.archive import ArchiveEntry, build_archive
from security_server.messagelog.asic_export import record_container, record_container_name
from security_server.messagelog.store import MessageLogStore
from tests.federation.departments import CONSUMER, PROVIDER_MEMBER, SERVICE
from tests.federation.evidence import batch_signed, exchange, federation, signed_entry, soap_message
from security_server.messagelog.log_verifier import verify_shard
from tests.security_server.messagelog.stamping import stamp_all, write_log

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
BODY = b'{"person": "secret"}'


def invoke(*args: str) -> Result:
    """Run ``fedbus audit ARGS``."""
    return CliRunner().invoke(audit, list(args), catch_exceptions=False)


def _container(tmp_path: Path, entry_rest: bool) -> tuple[Path, MessageLogStore]:
    """A request logged without its body, timestamped, exported as a container file."""
    if entry_rest:
        head = RestRequest.from_client(
            "POST", "/r1/EE/GOV/70000311/provider/getRandom",
            [("X-Road-Client", "EE/GOV/70000310/consumer"), ("Content-Type", "application/json")],
            request_id="r-1", new_query_id="rest-off",
        ).to_bytes()
        entry = signed_entry(federation().consumer, head, query_id="rest-off", direction=Direction.REQUEST, time=T0,
                             attachments=(BODY,))
    else:
        entry, _ = exchange("soap-off", T0)
    store = MessageLogStore(tmp_path / "messagelog.db")
    [record] = store.append_entries([entry_without_body(entry, rest=entry_rest)])
    stamp_all(store)
    path = tmp_path / "record.asice"
    path.write_bytes(record_container(record, store.timestamp_of(record.id)))
    return path, store


def test_a_rest_record_without_body_still_verifies(tmp_path: Path) -> None:
    """REST body off: the stored record has no body, and its container verifies against the federation's
    configuration, the body's digest taken as signed from the signed hash chain."""
    path, store = _container(tmp_path, entry_rest=True)
    with store:
        [record] = list(store.records())
        assert record.attachments == () and BODY not in record.message
        assert store.verify() == 1
    conf = federation().write_verificationconf(tmp_path / "conf")
    result = invoke("verify", "container", str(path), "--conf", str(conf))
    assert result.exit_code == 0 and result.output.rstrip().endswith("VERIFIED"), result.output
    assert "digests taken as signed: /attachment1" in result.output


def test_a_soap_record_without_body_keeps_its_chain_but_not_its_message_proof(tmp_path: Path) -> None:
    """SOAP body off (X-Road's empty Body): the header stays, the hash link and timestamp still verify, and the
    container verifies everything but the message (X-Road's asicverifier refuses it): its own verdict
    ``valid_without_message``, exit status 3, the message check skipped, never plain "valid"."""
    path, store = _container(tmp_path, entry_rest=False)
    with store:
        [record] = list(store.records())
        assert b"<SOAP-ENV:Body></SOAP-ENV:Body>" in record.message and b"<xroad:id>soap-off</xroad:id>" in record.message
        assert store.verify() == 1 and store.timestamp_of(record.id) is not None
    conf = federation().write_verificationconf(tmp_path / "conf")
    result = invoke("verify", "container", str(path), "--conf", str(conf), "--json")
    assert result.exit_code == 3, result.output
    document = json.loads(result.output)
    assert document["code"] == "valid_without_message" and document["verified"] is False
    statuses = {check["name"]: check["status"] for check in document["checks"]}
    assert statuses.pop("message") == "skipped"
    assert set(statuses.values()) == {"passed"}
    assert {"signature", "timestamp token", "certificate", "OCSP", "member"} <= set(statuses)
    [message] = [check for check in document["checks"] if check["name"] == "message"]
    assert message["detail"] == "message body not logged: the message's content (header and body) is not proven"
    text = invoke("verify", "container", str(path), "--conf", str(conf))
    assert text.exit_code == 3 and "VERIFIED WITHOUT MESSAGE" in text.output and "\nVERIFIED\n" not in text.output


def test_a_soap_response_without_body_names_its_provider(tmp_path: Path) -> None:
    """A response logged without body has no body element to read: its requestHash header makes it a response, so
    the provider is the signer the certificate must belong to."""
    _, response = exchange("soap-off-response", T0)
    store = MessageLogStore(tmp_path / "messagelog.db")
    [record] = store.append_entries([entry_without_body(response, rest=False)])
    stamp_all(store)
    report = verify_evidence(record_container(record, store.timestamp_of(record.id)), _conf(tmp_path), datetime.now(UTC))
    assert report.code == VALID_WITHOUT_MESSAGE and report.signer is not None and report.signer.response
    assert report.signer.client.member == PROVIDER_MEMBER
    store.close()


def _conf(tmp_path: Path) -> VerificationConf:
    return federation().conf()


def _tampered(tmp_path: Path, change: Callable[[str, bytes], bytes]) -> bytes:
    """The body-less SOAP container with ``change(name, data)`` applied to each entry (same order and storage)."""
    path, store = _container(tmp_path, entry_rest=False)
    store.close()
    return _rewritten(path.read_bytes(), change)


def _rewritten(container: bytes, change: Callable[[str, bytes], bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(container)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, change(info.filename, source.read(info)))
    return out.getvalue()


def _signature_value_flipped(name: str, data: bytes) -> bytes:
    if name != "META-INF/signatures.xml":
        return data
    start = data.index(b"SignatureValue") + 40
    return data[:start] + (b"A" if data[start:start + 1] != b"A" else b"B") + data[start + 1:]


def _signing_time_moved(name: str, data: bytes) -> bytes:
    if name != "META-INF/signatures.xml":
        return data
    start = data.index(b"SigningTime>") + len(b"SigningTime>")
    return data[:start] + (b"1" if data[start:start + 1] != b"1" else b"2") + data[start + 1:]


def _without_ocsp(name: str, data: bytes) -> bytes:
    if name != "META-INF/signatures.xml":
        return data
    # The OCSP response (unsigned) replaced by one that is not an OCSP response.
    return re.sub(rb'(<xades:EncapsulatedOCSPValue[^>]*>)[^<]*', rb"\1bm90IGFuIE9DU1AgcmVzcG9uc2U=", data)


def _timestamp_flipped(name: str, data: bytes) -> bytes:
    if name != "META-INF/signatures.xml":
        return data

    def flip(found: re.Match[bytes]) -> bytes:
        token = base64.b64decode(b"".join(found.group(2).split()))
        return found.group(1) + base64.b64encode(token[:-8] + bytes(b ^ 0xFF for b in token[-8:]))

    return re.sub(rb"(<xades:EncapsulatedTimeStamp[^>]*>)([^<]*)", flip, data)


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        (_signature_value_flipped, "timestamp"),  # the timestamp, over the signature value, is checked first
        (_signing_time_moved, "signature"),
        (_without_ocsp, "OCSP"),
        (_timestamp_flipped, "timestamp"),
    ],
)
def test_a_tampered_soap_record_without_body_still_fails(
    tmp_path: Path, change: Callable[[str, bytes], bytes], failing: str
) -> None:
    """Taking the message's digest as signed waives nothing else: a changed signature value or signed property,
    a missing OCSP response or a broken timestamp token still fail the container."""
    (tmp_path / "kept").mkdir()
    assert verify_evidence(_tampered(tmp_path / "kept", lambda _, d: d), _conf(tmp_path), datetime.now(UTC)).code == (
        VALID_WITHOUT_MESSAGE
    )
    data = _tampered(tmp_path, change)
    report = verify_evidence(data, _conf(tmp_path), datetime.now(UTC))
    assert report.code not in ("valid", VALID_WITHOUT_MESSAGE), report.checks
    assert report.checks[-1].status is CheckStatus.FAILED and report.checks[-1].name.startswith(failing), report.checks


def test_a_batch_signed_soap_record_without_body_is_valid_without_message(tmp_path: Path) -> None:
    """Signed in a batch (the message an input of the signed hash chain): the chain's digest of the message is
    taken as signed, everything else verified, the same verdict ``valid_without_message``."""
    entries = batch_signed("off-batch", 0, 3, T0)
    store = MessageLogStore(tmp_path / "messagelog.db")
    [record, *_] = store.append_entries([entry_without_body(entries[0], rest=False), *entries[1:]])
    stamp_all(store)
    report = verify_evidence(record_container(record, store.timestamp_of(record.id)), _conf(tmp_path), datetime.now(UTC))
    store.close()
    assert report.code == VALID_WITHOUT_MESSAGE, report.checks
    assert [check.name for check in report.checks if check.status is not CheckStatus.PASSED] == ["message"]


def test_verify_log_reports_the_same_records_and_fails_a_tampered_one(tmp_path: Path) -> None:
    """``verify log`` agrees with ``verify container``: a body-less SOAP record is counted as verified without
    message, and one whose signed properties were changed is a signature failure, not a count."""
    good, _ = exchange("soap-off-good", T0)
    bad, _ = exchange("soap-off-bad", T0)
    start = bad.signature.index(b"SigningTime>") + len(b"SigningTime>")
    moved = bad.signature[:start] + (b"1" if bad.signature[start:start + 1] != b"1" else b"2") + bad.signature[start + 1:]
    entries = [entry_without_body(good, rest=False), entry_without_body(dataclasses.replace(bad, signature=moved), rest=False)]
    result = verify_shard(write_log(tmp_path / "messagelog.db", entries), federation().conf(), datetime.now(UTC))
    assert result.unverifiable == 1
    assert [problem.record_id for problem in result.signature_problems] == [2], result.signature_problems


def test_verify_archive_with_a_body_less_record_exits_3_unless_another_fails(tmp_path: Path) -> None:
    """``verify archive --conf``: a body-less SOAP container is listed as verified without message and the run
    exits 3 (never 0); a failing container in the same archive still makes it exit 1."""
    good_request, _ = exchange("archive-body", T0)
    off_request, _ = exchange("archive-off", T0)
    store = MessageLogStore(tmp_path / "messagelog.db")
    records = store.append_entries([good_request, entry_without_body(off_request, rest=False)])
    stamp_all(store)
    containers = [(record_container_name(r), record_container(r, store.timestamp_of(r.id)), r.time) for r in records]
    store.close()
    conf = federation().write_verificationconf(tmp_path / "conf")

    def archive(entries: list[tuple[str, bytes, datetime]], name: str) -> str:
        path = tmp_path / name
        path.write_bytes(build_archive([ArchiveEntry(*entry) for entry in entries], prev_digest="", prev_file="").data)
        return str(path)

    result = invoke("verify", "archive", archive(containers, "off.zip"), "--first", "--conf", str(conf))
    assert result.exit_code == 3 and "VERIFIED WITHOUT MESSAGE" in result.output, result.output
    assert "skipped container archive-off" in " ".join(result.output.split())
    broken = [containers[0], (containers[1][0], _rewritten(containers[1][1], _signing_time_moved), containers[1][2])]
    assert invoke("verify", "archive", archive(broken[::-1], "broken.zip"), "--first", "--conf", str(conf)).exit_code == 1
