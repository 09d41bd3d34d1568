"""What a record logged without its body still proves (core/body_logging.py; docs/evidence.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from security_server.audit_cli import audit
from security_server.core.body_logging import entry_without_body
from security_server.core.logchain import Direction
from security_server.core.rest import RestRequest
from security_server.messagelog.asic_export import record_container
from security_server.messagelog.store import MessageLogStore
from tests.federation.evidence import exchange, federation, signed_entry
from tests.security_server.messagelog.stamping import stamp_all

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
    container is refused at the message digest, as X-Road's asicverifier refuses it; nothing else is claimed."""
    path, store = _container(tmp_path, entry_rest=False)
    with store:
        [record] = list(store.records())
        assert b"<SOAP-ENV:Body></SOAP-ENV:Body>" in record.message and b"<xroad:id>soap-off</xroad:id>" in record.message
        assert store.verify() == 1 and store.timestamp_of(record.id) is not None
    conf = federation().write_verificationconf(tmp_path / "conf")
    result = invoke("verify", "container", str(path), "--conf", str(conf), "--json")
    assert result.exit_code == 1
    failed = [check for check in json.loads(result.output)["checks"] if check["status"] != "passed"]
    assert [check["name"] for check in failed] == ["signature"], failed
