"""Offline evidence verification: X-Road's containers under X-Road's configuration, ours under ours, bad inputs."""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.asic import ZipLimits
from security_server.core.evidence import (
    VerificationConf,
    message_signer,
    read_verification_conf,
    verify_evidence,
)
from security_server.core.errors import InvalidConfiguration, MalformedSignature
from security_server.core.identifiers import ClientId
from security_server.core.logchain import Direction
from security_server.messagelog.asic_export import record_container
from tests.federation.departments import CONSUMER, PROVIDER
from tests.federation.evidence import (
    exchange,
    federation,
    linked,
    signed_entry,
    soap_message,
    stamp_batch,
)

# Taken when the module is imported, which may be minutes before a test runs in a long session: every signing
# time, timestamp and verification time in this module is derived from NOW, never from the clock at test time.
NOW = datetime.now(UTC)


def xroad_conf(xroad_vectors: Path) -> VerificationConf:
    """X-Road's own verification configuration for its vectors (instance DEV)."""
    folder = xroad_vectors / "globalconf_good2_v3"
    return read_verification_conf(
        {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    )


# --- X-Road's containers, fully verified (signer, certificate path, OCSP, TSA) -----------------------------------

XROAD_VERDICTS = {
    "valid-signed-message.asice": ("valid", "MEMBER:DEV/COM/4321"),
    "valid-non-batch-rest.asice": ("valid", "MEMBER:DEV/COM/1234"),
    "valid-non-batch-soap-attachments.asice": ("valid", "MEMBER:DEV/COM/4321"),
    "valid-signed-hashchain.asice": ("valid", "MEMBER:DEV/COM/4321"),
    "valid-batch-ts.asice": ("valid", "MEMBER:DEV/COM/4321"),
    "wrong-message.asice": ("invalid_signature_value", None),
    "invalid-digest.asice": ("invalid_signature_value", None),
    "invalid-signed-hashchain.asice": ("malformed_signature.invalid_hash_chain_ref", None),
    "invalid-hashchain-modified-message.asice": ("malformed_signature.hashchain_unused_inputs", None),
    "invalid-not-signed-hashchain.asice": ("valid", "MEMBER:DEV/COM/4321"),
    "invalid-incorrect-references.asice": ("malformed_signature", None),
    "invalid-ts-hashchainresult.asice": ("malformed_signature", None),
    "attachments.asice": ("malformed_signature.asic_message_not_found", None),
}


@pytest.mark.parametrize(("vector", "expected"), sorted(XROAD_VERDICTS.items()))
def test_xroad_containers_get_xroads_verdict_with_every_trust_check(
    xroad_vectors: Path, vector: str, expected: tuple[str, str | None]
) -> None:
    """With X-Road's configuration (CA, OCSP responder, TSA, FiVRK profile) each vector gets X-Road's verdict,
    and the valid ones pass the certificate, OCSP, TSA and member checks too."""
    code, member = expected
    report = verify_evidence((xroad_vectors / "asic" / vector).read_bytes(), xroad_conf(xroad_vectors), NOW, strict=False)
    assert report.code == code, report.checks
    if member is not None:
        assert report.ok, report.checks
        assert report.signer is not None and str(report.signer.client.member) == member
        names = {check.name for check in report.checks}
        assert {"timestamp token", "certificate", "OCSP", "member"} <= names


def test_every_vector_container_is_covered(xroad_vectors: Path) -> None:
    """The table above names every container in the vectors folder."""
    assert {path.name for path in (xroad_vectors / "asic").glob("*.asice")} == set(XROAD_VERDICTS)


def test_xroad_container_under_another_configuration_is_refused(xroad_vectors: Path) -> None:
    """X-Road's valid container under our federation's configuration: its TSA is not approved there."""
    report = verify_evidence((xroad_vectors / "asic" / "valid-batch-ts.asice").read_bytes(), federation().conf(), NOW)
    assert report.code == "incorrect_validation_info" and not report.ok


def test_verification_conf_needs_its_instance_identifier(xroad_vectors: Path) -> None:
    """A verification configuration without instance-identifier, or naming another instance, is refused."""
    folder = xroad_vectors / "globalconf_good2_v3"
    shared = (folder / "DEV" / "shared-params.xml").read_bytes()
    with pytest.raises(InvalidConfiguration):
        read_verification_conf({"DEV/shared-params.xml": shared})
    with pytest.raises(InvalidConfiguration):
        read_verification_conf({"instance-identifier": b"EE", "DEV/shared-params.xml": shared})
    with pytest.raises(InvalidConfiguration):
        read_verification_conf({"instance-identifier": b"EE", "EE/shared-params.xml": shared})


# --- our containers ----------------------------------------------------------------------------------------------


@functools.cache
def our_containers(attachments: tuple[bytes, ...] = ()) -> list[bytes]:
    """The request and response containers of one exchange, batch-timestamped together (made once)."""
    records = linked(list(exchange("evidence-1", NOW, attachments=attachments)))
    return [record_container(record, stamp) for record, stamp in stamp_batch(records, NOW)]


def test_our_batch_timestamped_containers_verify() -> None:
    """Request (client signs) and response (provider signs) both verify with every check passed."""
    request, response = our_containers(attachments=(b"attachment one",))
    for data, signer in ((request, CONSUMER), (response, PROVIDER)):
        report = verify_evidence(data, federation().conf(), NOW)
        assert report.ok, report.checks
        assert report.signer is not None and report.signer.client == signer
        assert report.container.timestamp is not None and report.container.timestamp.batch


def test_our_single_timestamped_container_verifies() -> None:
    """A lone record's single timestamp travels in the exported signature and verifies."""
    record = linked([exchange("evidence-2", NOW)[0]])[0]
    [(record, stamp)] = stamp_batch([record], NOW)
    report = verify_evidence(record_container(record, stamp), federation().conf(), NOW)
    assert report.ok, report.checks
    assert report.container.timestamp is not None and not report.container.timestamp.batch


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        return {info.filename: zipped.read(info) for info in zipped.infolist()}


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zipped:
        for name, content in entries.items():
            zipped.writestr(name, content, compress_type=zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED)
    return out.getvalue()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_one_changed_byte_in_any_covered_entry_fails(data: st.DataObject) -> None:
    """Changing one byte of the message, an attachment, the signature, a hash chain result, the token, or a
    digest or reference in a hash chain fails. (A hash chain file's layout is not evidence: X-Road verifies
    its digests, not its bytes, so only those are drawn there.)"""
    container = our_containers(attachments=(b"attachment one",))[0]
    entries = _entries(container)
    raw = ["message.xml", "attachment1", "META-INF/signatures.xml", "sig-hashchainresult.xml",
           "ts-hashchainresult.xml", "META-INF/timestamp.tst"]
    chains = ["sig-hashchain.xml", "ts-hashchain.xml"]
    name = data.draw(st.sampled_from(raw + chains), label="entry")
    value = entries[name]
    if name in chains:
        spans = [m.span(1) for m in re.finditer(rb"<DigestValue>([^<]+)</DigestValue>", value)]
        spans += [m.span(1) for m in re.finditer(rb'URI="([^"]+)"', value)]
        start, end = data.draw(st.sampled_from(spans), label="span")
        at = data.draw(st.integers(start, end - 1), label="at")
    else:
        at = data.draw(st.integers(0, len(value) - 1), label="at")
    mask = data.draw(st.integers(1, 255), label="mask")
    entries[name] = value[:at] + bytes([value[at] ^ mask]) + value[at + 1 :]
    assert not verify_evidence(_zip(entries), federation().conf(), NOW).ok


def test_one_changed_byte_in_the_container_file_fails() -> None:
    """A byte flipped inside the zip itself (an entry's compressed data) makes the container unreadable or invalid."""
    container = our_containers()[0]
    middle = container.index(b"META-INF/signatures.xml") + 60
    tampered = container[:middle] + bytes([container[middle] ^ 0x20]) + container[middle + 1 :]
    report = verify_evidence(tampered, federation().conf(), NOW)
    assert not report.ok


@pytest.mark.parametrize(
    ("missing", "code"),
    [
        ("message.xml", "malformed_signature.asic_message_not_found"),
        ("META-INF/signatures.xml", "malformed_signature.asic_signature_not_found"),
        ("META-INF/timestamp.tst", "malformed_signature.asic_timestamp_not_found"),
        ("ts-hashchain.xml", "malformed_signature.asic_hash_chain_not_found"),
        ("mimetype", "malformed_signature.asic_mime_type_not_found"),
    ],
)
def test_a_missing_entry_is_named(missing: str, code: str) -> None:
    """Each required entry, when removed, gives X-Road's code for it."""
    entries = _entries(our_containers()[0])
    del entries[missing]
    assert verify_evidence(_zip(entries), federation().conf(), NOW).code == code


def test_an_extra_entry_is_refused_unless_xroad_compatible() -> None:
    """An entry nothing signs or stamps is refused by default, ignored in X-Road-compatible mode."""
    entries = _entries(our_containers()[0])
    entries["readme.txt"] = b"this is also true"
    data = _zip(entries)
    assert verify_evidence(data, federation().conf(), NOW).code == "malformed_signature.asic_unexpected_entry"
    assert verify_evidence(data, federation().conf(), NOW, strict=False).ok


@pytest.mark.parametrize("name", ["../message.xml", "/etc/passwd", "META-INF/../../x", "C:\\x"])
def test_a_path_traversal_entry_is_refused(name: str) -> None:
    """A container with an entry name that could escape an extraction folder is refused before reading."""
    entries = _entries(our_containers()[0])
    entries[name] = b"x"
    report = verify_evidence(_zip(entries), federation().conf(), NOW)
    assert report.code == "bad_request" and "unsafe" in report.checks[-1].detail


def test_a_zip_bomb_is_refused() -> None:
    """A container that inflates past the limits is refused, not inflated in full."""
    entries = _entries(our_containers()[0])
    entries["attachment1"] = b"\0" * (8 * 1024 * 1024)
    data = _zip(entries)
    assert len(data) < 100 * 1024
    limits = ZipLimits(max_entry_bytes=1024 * 1024, max_total_bytes=2 * 1024 * 1024)
    report = verify_evidence(data, federation().conf(), NOW, limits=limits)
    assert not report.ok and "larger than" in report.checks[-1].detail


def test_a_timestamp_over_another_imprint_is_refused() -> None:
    """A valid token from the approved TSA, but over another batch, does not cover this container."""
    request = our_containers()[0]
    other = _entries(our_containers()[1])  # another batch: same records, another token time
    entries = _entries(request)
    other_records = linked(list(exchange("evidence-other")))
    other_token = _entries(record_container(*stamp_batch(other_records)[0]))["META-INF/timestamp.tst"]
    entries["META-INF/timestamp.tst"] = other_token
    assert other["META-INF/timestamp.tst"] != other_token
    report = verify_evidence(_zip(entries), federation().conf(), NOW)
    assert report.code == "malformed_signature" and "imprint" in report.checks[-1].detail


def test_a_timestamp_from_a_tsa_that_is_not_approved_is_refused() -> None:
    """Under a configuration that approves no TSA, the token is refused: incorrect_validation_info."""
    conf = dataclasses.replace(federation().conf(), tsa_certs=())
    report = verify_evidence(our_containers()[0], conf, NOW)
    assert report.code == "incorrect_validation_info"
    assert report.checks[-1].name == "timestamp" and "TSA" in report.checks[-1].detail


def test_a_signature_by_another_member_is_refused() -> None:
    """A request signed with the provider's certificate: it does not belong to the client the message names."""
    fed = federation()
    moment = NOW.replace(microsecond=0)
    forged = signed_entry(fed.provider, soap_message("forged-1", response=False), query_id="forged-1",
                          direction=Direction.REQUEST, time=moment)
    record = linked([forged])[0]
    report = verify_evidence(record_container(*stamp_batch([record], moment)[0]), fed.conf(), NOW)
    assert report.code == "incorrect_certificate"
    assert report.checks[-1].name == "member"


def test_a_stale_ocsp_response_at_signing_time_is_refused() -> None:
    """An OCSP response older than ocspFreshnessSeconds at signing time fails the OCSP check."""
    fed = federation()
    conf = dataclasses.replace(fed.conf(), ocsp_freshness_seconds=1)
    moment = NOW.replace(microsecond=0)
    entry = signed_entry(fed.consumer, soap_message("stale-1", response=False), query_id="stale-1",
                         direction=Direction.REQUEST, time=moment + timedelta(seconds=30))
    record = linked([entry])[0]
    stamped = stamp_batch([record], moment + timedelta(seconds=30))[0]
    report = verify_evidence(record_container(*stamped), conf, NOW + timedelta(minutes=1))
    assert report.code == "incorrect_validation_info" and report.checks[-1].name == "OCSP"


def test_an_untrusted_signing_ca_is_refused() -> None:
    """Under a configuration without our CA the certificate path fails."""
    conf = dataclasses.replace(federation().conf(), approved_roots=(), intermediates=())
    report = verify_evidence(our_containers()[0], conf, NOW)
    assert report.checks[-1].name == "certificate" and not report.ok


def test_message_signer_reads_soap_and_rest() -> None:
    """SOAP requests name the client, responses the provider; REST parts by x-road-client / status line."""
    assert message_signer(soap_message("q", response=False)).client == CONSUMER
    assert message_signer(soap_message("q", response=True)).client == PROVIDER
    rest_request = b"POST\r\n/r1/EE/GOV/70000311/provider/x\r\nx-road-client:EE/GOV/70000310/consumer\r\n"
    rest_response = b"200\r\nOK\r\nx-road-service:EE/GOV/70000311/provider/x\r\n"
    assert message_signer(rest_request).client == CONSUMER
    assert message_signer(rest_response).client == PROVIDER
    assert message_signer(b"200\r\nOK\r\nx-road-service:EE/GOV/70000311/x\r\n").client == ClientId("EE", "GOV", "70000311")
    for bad in (b"<not-soap/>", b"GET\r\n/r1/x\r\n", b"\x00\xff"):
        with pytest.raises(MalformedSignature):
            message_signer(bad)
