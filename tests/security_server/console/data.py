"""A security server directory for the console's tests: users of each role, a message log with timestamped
exchanges, a failed one and one whose fields try HTML injection, and operational records of the last hour."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from security_server.admin import clients
from security_server.admin.server_dir import ServerDirectory
from security_server.core.logchain import Direction, LogEntry
from security_server.core.opmon.record import OperationalRecord, SecurityServerType
from security_server.management.credentials import DB_NAME, CredentialStore
from security_server.management.roles import ALL_ROLES, Role
from security_server.messagelog.store import MessageLogStore
from security_server.monitoring import OPMON_DATABASE
from security_server.opmon.store import OpmonStore
from security_server.serverconf.store import ServerConfStore
from security_server.signer.token import KeyAlgorithm, KeyKind
from tests.federation.ca import issue_into_token
from tests.federation.departments import CONSUMER, CONSUMER_MEMBER, SERVICE
from tests.federation.evidence import exchange, failed_entry, federation
from tests.security_server.messagelog.stamping import stamp_all

PASSWORD = "Console-Secret-1"
USERS = {
    "admin": Role.SYSTEM_ADMINISTRATOR,
    "observer": Role.SECURITYSERVER_OBSERVER,
    "auditor": Role.AUDITOR,
    "officer": Role.SECURITY_OFFICER,
    "services": Role.SERVICE_ADMINISTRATOR,
    "registrar": Role.REGISTRATION_OFFICER,
}
SCRIPT = "<script>alert('x')</script>"
EXCHANGE_ID = "console-exchange-1"
USER_ID = "EE30101010007"
USER_QUERY_ID = "console-user-1"
OK_PER_MINUTE = 3
FAILED_RECORDS = 2


@dataclass(frozen=True)
class Built:
    """What the directory holds."""

    directory: Path
    now: datetime
    opmon_succeeded: int
    opmon_failed: int
    signing_not_after: datetime


def add_users(directory: Path) -> None:
    """One user per role in :data:`USERS`, all with :data:`PASSWORD`."""
    with CredentialStore(directory / DB_NAME, ALL_ROLES) as store:
        for name, role in USERS.items():
            store.add_user(name, PASSWORD, frozenset({role}), now=datetime.now(UTC))


def _opmon(directory: Path, now: datetime) -> tuple[int, int]:
    """Operational records as the proxies store them: three successful exchanges a minute for the last ten
    minutes (50 to 250 ms), and two failures."""
    now_ms = int(now.timestamp() * 1000)
    records = []
    for minute in range(10):
        for n in range(OK_PER_MINUTE):
            start = now_ms - (minute * 60 + 5 + n) * 1000
            records.append(OperationalRecord(
                SecurityServerType.CLIENT, True, request_in_ts=start, response_out_ts=start + 50 + 20 * (minute + n),
                client=CONSUMER, service=SERVICE, message_id=f"opmon-{minute}-{n}",
            ))
    for n in range(FAILED_RECORDS):
        start = now_ms - (n + 1) * 90_000
        records.append(OperationalRecord(
            SecurityServerType.CLIENT, False, request_in_ts=start, response_out_ts=start + 1000, client=CONSUMER,
            service=SERVICE, fault_code="Server.ServerProxy.ServiceFailed", message_id=f"opmon-fail-{n}",
        ))
    store = OpmonStore(directory / OPMON_DATABASE)
    try:
        store.store(records, int(now.timestamp()))
    finally:
        store.close()
    return len(records) - FAILED_RECORDS, FAILED_RECORDS


def _user_message() -> bytes:
    """A SOAP request naming end user :data:`USER_ID` in its X-Road header."""
    return (
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:xroad="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers">'
        '<SOAP-ENV:Header>'
        '<xroad:client id:objectType="SUBSYSTEM"><id:xRoadInstance>EE</id:xRoadInstance>'
        '<id:memberClass>GOV</id:memberClass><id:memberCode>70000310</id:memberCode>'
        '<id:subsystemCode>consumer</id:subsystemCode></xroad:client>'
        '<xroad:service id:objectType="SERVICE"><id:xRoadInstance>EE</id:xRoadInstance>'
        '<id:memberClass>GOV</id:memberClass><id:memberCode>70000311</id:memberCode>'
        '<id:subsystemCode>provider</id:subsystemCode><id:serviceCode>getRandom</id:serviceCode>'
        '<id:serviceVersion>v1</id:serviceVersion></xroad:service>'
        f'<xroad:id>{USER_QUERY_ID}</xroad:id><xroad:userId>{USER_ID}</xroad:userId>'
        '<xroad:protocolVersion>4.0</xroad:protocolVersion></SOAP-ENV:Header>'
        '<SOAP-ENV:Body><prod:getRandom xmlns:prod="http://test.fedbus.example/producer"/></SOAP-ENV:Body>'
        "</SOAP-ENV:Envelope>"
    ).encode()


def initialise(directory: Path, now: datetime) -> datetime:
    """An initialised server (owner the consumer member) with a signing key certified by the federation's CA in its
    soft token; the certificate's expiry."""
    with ServerConfStore(directory / "serverconf.db") as store:
        store.initialise(CONSUMER_MEMBER, "ss1", b"<anchor/>")
    token = ServerDirectory(directory).soft_token()
    cert = issue_into_token(token, federation().ca, KeyKind.SIGN, CONSUMER_MEMBER, KeyAlgorithm.RSA2048, now)
    return cert.not_valid_after_utc


def host_client(directory: Path) -> str:
    """Host the consumer subsystem (state saved), the client the Configuration tests publish services of; its id."""
    clients.add_client(ServerDirectory(directory), CONSUMER)
    return "EE:GOV:70000310:consumer"


def build_server(directory: Path) -> Built:
    """The directory with users, message log and operational records (times are the real clock's)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    add_users(directory)
    with MessageLogStore(directory / "messagelog.db") as store:
        store.append_entries([*exchange(EXCHANGE_ID, now - timedelta(minutes=5))])
        stamp_all(store)
        store.append_entries([failed_entry("console-failed-1", now - timedelta(minutes=4))])
        store.append_entries([LogEntry(
            query_id=SCRIPT, direction=Direction.REQUEST, client=SCRIPT, service=str(SERVICE),
            time=now - timedelta(minutes=3), message=f"<x>{SCRIPT}</x>".encode(), signature=b"",
            succeeded=False, fault_code=SCRIPT,
        )])
        store.append_entries([LogEntry(
            query_id=USER_QUERY_ID, direction=Direction.REQUEST, client=str(CONSUMER), service=str(SERVICE),
            time=now - timedelta(minutes=2), message=_user_message(), signature=b"", succeeded=False,
            fault_code="server.clientproxy.internal_error",
        )])
    succeeded, failed = _opmon(directory, now)
    return Built(directory, now, succeeded, failed, initialise(directory, now))


def tampered_container(container: bytes) -> bytes:
    """``container`` (the exchange's ASiC) with one changed byte string in its message: its signature fails."""
    with zipfile.ZipFile(io.BytesIO(container)) as zipped:
        entries = {name: zipped.read(name) for name in zipped.namelist()}
    entries["message.xml"] = entries["message.xml"].replace(EXCHANGE_ID.encode(), b"console-exchange-X")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zipped:
        for name, data in entries.items():
            zipped.writestr(name, data)
    return out.getvalue()
