"""Evidence of the two departments' exchanges: signed, logged and timestamped as a message log holds them.

The trust services are the development CA (:mod:`tests.federation.ca`) with its OCSP responder and TSA; the
members' RSA signing keys are made once per test process. The exchanges are SOAP 4.0 request/response pairs of
:data:`~tests.federation.departments.SERVICE` signed the way the proxies sign them (``core.signature``), with real
OCSP responses, ready to be logged; :func:`stamp_batch` timestamps records as the timestamper does, without a
network.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from central_registry.trust.ca import DevelopmentCA
from central_registry.trust.tsa import SerialCounter, TsaResource, build_timestamp_response
from security_server.core.evidence import FEDBUS_PROFILE, VerificationConf, verification_conf, verification_conf_files
from security_server.core.globalconf.sharedparams import (
    ApprovedTsa,
    GlobalSettings,
    MemberClass,
    SharedParameters,
    build_shared_parameters,
)
from security_server.core.hashchain import SIGNATURE, TS_HASH_CHAIN, build_hash_chain
from security_server.core.identifiers import ClientId
from security_server.core.logchain import GENESIS_LINK, Direction, LogEntry, LogRecord, make_record
from security_server.core.signature import MessagePart, build_signature, sign_batch, signature_value
from security_server.core.timestamp import build_timestamp_query, parse_timestamp_response
from security_server.messagelog.store import RecordTimestamp, StoredTimestamp
from security_server.schemafiles import load_schema
from tests.federation.ca import KeyAndCert, issue_signing, make_ca, ocsp_for
from tests.federation.departments import CONSUMER, CONSUMER_MEMBER, INSTANCE, PROVIDER_MEMBER, SERVICE
from tests.federation.gconf import approved_ca
from tests.federation.pki import der, rsa_key

TSA_NAME = "fedbus test TSA"


@dataclass(frozen=True)
class Federation:
    """The trust services and the two members' signing credentials."""

    directory: Path
    ca: DevelopmentCA
    tsa_cert: x509.Certificate
    consumer: KeyAndCert
    provider: KeyAndCert
    created: datetime

    def tsa_resource(self, reactor: object, serial_file: Path) -> TsaResource:
        """The development TSA as a twisted.web Resource (serve it on loopback)."""
        key, cert = self.ca.tsa_credentials()
        return TsaResource(reactor, key, cert, SerialCounter(serial_file))

    def shared_parameters(self, tsa_url: str = "http://127.0.0.1:1/tsa") -> SharedParameters:
        """Shared parameters approving the CA (fedbus profile, with its OCSP responder) and the TSA."""
        return SharedParameters(
            instance=INSTANCE,
            global_settings=GlobalSettings(3600, (MemberClass("GOV", "Government"),)),
            approved_cas=(approved_ca(self.ca, profile=FEDBUS_PROFILE),),
            approved_tsas=(ApprovedTsa(TSA_NAME, tsa_url, der(self.tsa_cert)),),
        )

    def shared_parameters_xml(self) -> bytes:
        """The shared parameters as the registry publishes them (schema-valid XML)."""
        return build_shared_parameters(self.shared_parameters(), load_schema("shared-parameters.xsd"))

    def conf(self) -> VerificationConf:
        """The verification configuration an auditor of this federation holds."""
        return verification_conf([self.shared_parameters()], INSTANCE)

    def write_verificationconf(self, folder: Path) -> Path:
        """Write the verification configuration files (X-Road's layout plus PEMs) into ``folder``."""
        for name, data in verification_conf_files(self.shared_parameters_xml(), INSTANCE).items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return folder


_current: list[Federation] = []


def federation() -> Federation:
    """The session's federation (generated once per process, in a temporary folder)."""
    if not _current:
        _current.append(make_federation(Path(tempfile.mkdtemp(prefix="fedbus-evidence-pki-"))))
    return _current[0]


def make_federation(directory: Path) -> Federation:
    """A new federation in ``directory`` (2048-bit RSA keys); it also becomes this process's :func:`federation`."""
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    ca = make_ca(directory / "ca", created)
    tsa_cert = ca.issue_tsa_cert(created)
    consumer = issue_signing(ca, CONSUMER_MEMBER, created, "Consumer Department", key=rsa_key())
    provider = issue_signing(ca, PROVIDER_MEMBER, created, "Provider Department", key=rsa_key())
    made = Federation(directory, ca, tsa_cert, consumer, provider, created)
    _current[:] = [made]
    return made


def _headers(query_id: str, request_hash: bytes | None) -> str:
    def client(tag: str, c: ClientId) -> str:
        sub = f"<id:subsystemCode>{c.subsystem_code}</id:subsystemCode>" if c.subsystem_code else ""
        return (
            f'<xroad:{tag} id:objectType="{c.object_type.value}"><id:xRoadInstance>{c.instance}</id:xRoadInstance>'
            f"<id:memberClass>{c.member_class}</id:memberClass><id:memberCode>{c.member_code}</id:memberCode>{sub}"
            f"</xroad:{tag}>"
        )

    service = SERVICE.client
    hash_element = (
        '<xroad:requestHash algorithmId="http://www.w3.org/2001/04/xmlenc#sha512">'
        f"{base64.b64encode(request_hash).decode()}</xroad:requestHash>"
        if request_hash is not None
        else ""
    )
    return (
        client("client", CONSUMER)
        + f'<xroad:service id:objectType="SERVICE"><id:xRoadInstance>{service.instance}</id:xRoadInstance>'
        f"<id:memberClass>{service.member_class}</id:memberClass><id:memberCode>{service.member_code}</id:memberCode>"
        f"<id:subsystemCode>{service.subsystem_code}</id:subsystemCode><id:serviceCode>{SERVICE.service_code}</id:serviceCode>"
        f"<id:serviceVersion>{SERVICE.service_version}</id:serviceVersion></xroad:service>"
        f"<xroad:id>{query_id}</xroad:id><xroad:protocolVersion>4.0</xroad:protocolVersion>{hash_element}"
    )


def soap_message(query_id: str, *, response: bool, request_hash: bytes | None = None, payload: str = "42") -> bytes:
    """A SOAP 4.0 request or response of the getRandom service."""
    wrapper = "getRandomResponse" if response else "getRandom"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:xroad="http://x-road.eu/xsd/xroad.xsd">'
        f"<SOAP-ENV:Header>{_headers(query_id, request_hash)}</SOAP-ENV:Header>"
        f'<SOAP-ENV:Body><prod:{wrapper} xmlns:prod="http://test.fedbus.example/producer"><seed>{payload}</seed>'
        f"</prod:{wrapper}></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    ).encode("utf-8")


def signed_entry(
    who: KeyAndCert,
    message: bytes,
    *,
    query_id: str,
    direction: Direction,
    time: datetime,
    attachments: tuple[bytes, ...] = (),
) -> LogEntry:
    """A log entry for ``message`` signed by ``who`` (hash-chain signature when there are attachments)."""
    fed = federation()
    parts = [MessagePart.of("/message.xml", message)] + [
        MessagePart.of(f"/attachment{n}", data) for n, data in enumerate(attachments, start=1)
    ]
    ocsp = ocsp_for(fed.ca, who.cert, time - timedelta(seconds=5))
    data = build_signature(parts, who.cert, who.key, ocsp, time)
    return LogEntry(
        query_id=query_id,
        direction=direction,
        client=str(CONSUMER),
        service=str(SERVICE),
        time=time,
        message=message,
        signature=data.signature_xml,
        hashchain=data.hash_chain,
        hashchainresult=data.hash_chain_result,
        attachments=attachments,
    )


def exchange(query_id: str, time: datetime | None = None, *, attachments: tuple[bytes, ...] = ()) -> tuple[LogEntry, LogEntry]:
    """A signed request (by the consumer) and response (by the provider) of one exchange."""
    fed = federation()
    moment = (time or datetime.now(UTC)).replace(microsecond=0)
    request = soap_message(query_id, response=False)
    response = soap_message(query_id, response=True, request_hash=hashlib.sha512(request).digest())
    return (
        signed_entry(fed.consumer, request, query_id=query_id, direction=Direction.REQUEST, time=moment, attachments=attachments),
        signed_entry(fed.provider, response, query_id=query_id, direction=Direction.RESPONSE, time=moment),
    )


def failed_entry(query_id: str, time: datetime | None = None) -> LogEntry:
    """An unsigned failure record (what a proxy logs when an exchange fails after its request was logged)."""
    return LogEntry(
        query_id=query_id,
        direction=Direction.RESPONSE,
        client=str(CONSUMER),
        service=str(SERVICE),
        time=(time or datetime.now(UTC)).replace(microsecond=0),
        message=b"<fault/>",
        signature=b"",
        succeeded=False,
        fault_code="server.serverproxy.service_failed.timeout",
    )


def token_over(data: bytes, when: datetime | None = None, serial: int = 1) -> bytes:
    """An RFC 3161 token from the federation's TSA over SHA-512(``data``) (the TSA's pure response builder)."""
    fed = federation()
    key, cert = fed.ca.tsa_credentials()
    query = build_timestamp_query(hashlib.sha512(data).digest(), "sha512", serial, cert_req=True)
    reply = parse_timestamp_response(build_timestamp_response(query, when or datetime.now(UTC), serial, key, cert))
    assert reply.token_der is not None
    return reply.token_der


def stamp_batch(records: list[LogRecord], when: datetime | None = None) -> list[tuple[LogRecord, RecordTimestamp]]:
    """Timestamp ``records`` as the timestamper does, without a network: one batch token (or a single one)."""
    moment = when or datetime.now(UTC)
    if len(records) == 1:
        token = token_over(signature_value(records[0].signature), moment)
        return [(records[0], RecordTimestamp(StoredTimestamp(1, moment, token, None, None), None))]
    chains = build_hash_chain(
        [[record.signature_hash] for record in records], chain_uri=TS_HASH_CHAIN, data_uri=SIGNATURE
    )
    stored = StoredTimestamp(1, moment, token_over(chains.result, moment), chains.result, None)
    return [(record, RecordTimestamp(stored, chain)) for record, chain in zip(records, chains.chains)]


def linked(entries: list[LogEntry]) -> list[LogRecord]:
    """``entries`` chained from the genesis link, as the store would write them."""
    records: list[LogRecord] = []
    link = GENESIS_LINK
    for number, entry in enumerate(entries, start=1):
        records.append(make_record(entry, record_id=number, prev_link=link))
        link = records[-1].link
    return records


def batch_signed(prefix: str, first: int, count: int, time: datetime) -> list[LogEntry]:
    """``count`` requests (query ids ``{prefix}-{first}``...) signed in one batch by the consumer: one signature over a
    hash chain, each message its own ``sig-hashchain.xml``, as the batch signer does."""
    fed = federation()
    messages = [soap_message(f"{prefix}-{first + n}", response=False, payload=str(n)) for n in range(count)]
    ocsp = ocsp_for(fed.ca, fed.consumer.cert, time - timedelta(seconds=5))
    signed = sign_batch([[MessagePart.of("/message.xml", m)] for m in messages], fed.consumer.cert, fed.consumer.key, ocsp, time)
    return [
        LogEntry(
            query_id=f"{prefix}-{first + n}", direction=Direction.REQUEST, client=str(CONSUMER), service=str(SERVICE),
            time=time, message=message, signature=data.signature_xml, hashchain=data.hash_chain,
            hashchainresult=data.hash_chain_result,
        )
        for n, (message, data) in enumerate(zip(messages, signed))
    ]
