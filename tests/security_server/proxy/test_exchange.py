"""A consumer's client proxy and a provider's server proxy wired through the in-memory peer link, real parts.

Real development CA and OCSP responses, real global configuration values, soft tokens, server configuration
stores and message logs in temporary folders, and a SOAP provider on a loopback port. One test per case of
issue 5's "Bad input and faults" that is about the exchange logic, each asserting the exact X-Road fault code
that the consumer's information system receives.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from security_server.core.identifiers import XROAD_NS, ClientId, ServiceId
from security_server.core.logchain import Direction
from security_server.core.multipart import Part, build_multipart, format_header_value
from security_server.core.signature import ECDSA_SHA512, RSA_SHA512, MessagePart, build_signature, verify_signature
from security_server.core.signature import SignatureData
from security_server.core.transport import (
    MULTIPART_MIXED,
    OCSP_RESPONSE,
    SignedMessage,
    decode_request,
)
from security_server.messagelog.store import MessageLogStore
from security_server.proxy.locallink import LocalPeerLink
from security_server.proxy.peerlink import PeerRequest
from security_server.signer.softtoken import SoftToken
from tests.federation.ca import ocsp_for
from tests.federation.pki import der
from tests.federation.provider import NS
from tests.federation.world import (
    CONSUMER,
    DENIED,
    DISABLED,
    DROP,
    FAULTY,
    NONXML,
    PROVIDER,
    REFUSED,
    REST,
    SLOW,
    SS2,
    SS3,
    ExchangeBed,
    OwnOcsp,
    RewritingLink,
    fault_code,
    global_conf,
    is_request,
    pki,
    records,
    rewrite_request,
    rewrite_response,
    signing_keys,
)
from tests.loopback import coroutine_test, now


def with_message(original: SignedMessage, data: bytes) -> SignedMessage:
    """A copy of a signed transport message with another message part (the same signature)."""
    return dataclasses.replace(original, content=dataclasses.replace(original.content, message=data))


def with_signature(original: SignedMessage, signature: SignatureData) -> SignedMessage:
    """A copy of a signed transport message with another signature."""
    return dataclasses.replace(original, signature=signature)


def resign(message: SignedMessage, token: SoftToken, member: Any, data: bytes) -> SignedMessage:
    """``data`` signed with ``member``'s key from ``token`` (with a real OCSP response) in place of the message."""
    key, cert = signing_keys(token).get(member, now())
    algorithm = ECDSA_SHA512 if isinstance(key, ec.EllipticCurvePrivateKey) else RSA_SHA512
    ocsp = ocsp_for(pki().ca, cert, now())
    signature = build_signature([MessagePart.of("/message.xml", data)], cert, key, ocsp, now(), algorithm=algorithm)
    return with_signature(with_message(message, data), SignatureData(signature.signature_xml))


def flip_signature_value(signature_xml: bytes) -> bytes:
    """The signature with one base64 character of its SignatureValue changed (one byte of the value)."""
    match = re.search(rb"<ds:SignatureValue[^>]*>([^<]+)<", signature_xml)
    assert match is not None
    position = match.start(1) + 10
    old = signature_xml[position : position + 1]
    new = b"B" if old != b"B" else b"C"
    return signature_xml[:position] + new + signature_xml[position + 1 :]


class ExchangeTest(ExchangeBed):
    """The whole exchange logic, consumer IS to provider IS and back, through the in-memory link."""

    # --- the happy path ---------------------------------------------------------------------------------------

    @coroutine_test
    async def test_exchange_returns_provider_answer_with_request_hash_and_logs_both_sides(self) -> None:
        """The IS gets the provider's answer with requestHash; both logs hold the signed request and response."""
        request = is_request(query_id="happy-1")
        status, content_type, answer = await self.send(request)
        assert status == 200, answer[:500]
        assert content_type.startswith("text/xml")
        root = etree.fromstring(answer)
        echoed = root.find(f".//{{{NS}}}getPersonResponse/echo")
        assert echoed is not None
        assert echoed.text == "Jaan Tamm"
        request_hash = root.find(f".//{{{XROAD_NS}}}requestHash")
        assert request_hash is not None
        assert base64.b64decode(request_hash.text or "") == hashlib.sha512(request).digest()
        assert self.service.calls == {"echo": 1}
        assert self.service.bodies == [request]  # the provider gets the exact bytes the IS posted

        for side in (self.consumer, self.provider):
            with MessageLogStore(side.log_path) as store:
                assert store.verify() == 2
                logged = list(store.records())
            assert [r.direction for r in logged] == [Direction.REQUEST, Direction.RESPONSE]
            assert logged[0].message == request
            assert logged[1].message == answer
            assert all(r.succeeded and r.query_id == "happy-1" for r in logged)
            assert logged[0].x_request_id == logged[1].x_request_id
            for record in logged:
                verified = verify_signature(record.signature, {"/message.xml": record.message}.get)
                assert "/message.xml" in verified.covered_parts
        consumer_log, provider_log = records(self.consumer.log_path), records(self.provider.log_path)
        assert consumer_log[0].signature == provider_log[0].signature
        assert consumer_log[1].signature == provider_log[1].signature

    @coroutine_test
    async def test_retry_through_client_proxy_is_re_signed_and_passes(self) -> None:
        """The same IS request sent twice is signed twice with different signatures; both are answered."""
        request = is_request(query_id="retry-1")
        first = await self.send(request)
        second = await self.send(request)
        assert (first[0], second[0]) == (200, 200)
        assert self.service.calls == {"echo": 2}
        signatures = [r.signature for r in records(self.provider.log_path) if r.direction is Direction.REQUEST]
        assert len(set(signatures)) == 2

    # --- what the IS sends --------------------------------------------------------------------------------------

    @coroutine_test
    async def test_external_entity_is_refused(self) -> None:
        """XXE: a DOCTYPE with an external entity is client.invalid_soap (X-Road's code, SaxSoapParserImpl); nothing
        is read or sent."""
        body = (
            b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            + is_request().split(b"?>", 1)[1].replace(b"Jaan Tamm", b"&xxe;")
        )
        await self.assert_fault(body, "client.invalid_soap")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_entity_expansion_is_refused(self) -> None:
        """Billion laughs: nested internal entities are client.invalid_soap (X-Road's code) before any expansion."""
        entities = b'<!ENTITY a0 "lol">' + b"".join(
            b'<!ENTITY a%d "&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;">' % ((i,) + (i - 1,) * 10) for i in range(1, 10)
        )
        body = b"<?xml version=\"1.0\"?><!DOCTYPE e [" + entities + b"]>" + is_request().split(b"?>", 1)[1].replace(
            b"Jaan Tamm", b"&a9;"
        )
        await self.assert_fault(body, "client.invalid_soap")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_oversized_body_is_refused(self) -> None:
        """A body over the 10 MiB limit is client.bad_request (SOAP: HTTP 200, X-Road's fault form), before parsing."""
        request = is_request()
        body = request.replace(b"Jaan Tamm", b"x" * (10 * 1024 * 1024))
        await self.assert_fault(body, "client.bad_request", status=200)
        self.assert_nothing_sent()

    @coroutine_test
    async def test_missing_header_is_refused(self) -> None:
        """An envelope without a SOAP Header is client.missing_header."""
        body = re.sub(rb"<SOAP-ENV:Header>.*</SOAP-ENV:Header>", b"", is_request())
        await self.assert_fault(body, "client.missing_header")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_missing_header_field_is_refused(self) -> None:
        """A header without the message id is client.missing_header_field."""
        body = re.sub(rb"<xrd:id>[^<]*</xrd:id>", b"", is_request())
        await self.assert_fault(body, "client.missing_header_field")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_duplicate_header_field_is_refused(self) -> None:
        """A header with the message id twice is client.duplicate_header_field."""
        body = is_request(query_id="dup").replace(b"<xrd:id>dup</xrd:id>", b"<xrd:id>dup</xrd:id><xrd:id>dup2</xrd:id>")
        await self.assert_fault(body, "client.duplicate_header_field")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_wrong_protocol_version_is_refused(self) -> None:
        """protocolVersion 5.0 is client.invalid_protocol_version."""
        body = is_request().replace(b"<xrd:protocolVersion>4.0<", b"<xrd:protocolVersion>5.0<")
        await self.assert_fault(body, "client.invalid_protocol_version")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_body_wrapper_not_service_code_is_refused(self) -> None:
        """A body wrapper named otherwise than the service code is client.inconsistent_headers."""
        body = is_request().replace(b"p:getPerson", b"p:getPersonSecret")
        await self.assert_fault(body, "client.inconsistent_headers")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_malformed_identifier_is_refused(self) -> None:
        """A member code with a character outside X-Road's set is client.invalid_client_identifier."""
        body = is_request().replace(b"<id:memberCode>70000001<", b"<id:memberCode>7000/0001<")
        await self.assert_fault(body, "client.invalid_client_identifier")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_identifier_without_object_type_is_refused(self) -> None:
        """A client identifier without objectType is client.invalid_xml (X-Road SaxSoapParserImpl's own check)."""
        body = is_request().replace(b'<xrd:client id:objectType="SUBSYSTEM">', b"<xrd:client>")
        await self.assert_fault(body, "client.invalid_xml")
        self.assert_nothing_sent()

    # --- who is asking, and of whom -----------------------------------------------------------------------------

    @coroutine_test
    async def test_unknown_client_is_refused(self) -> None:
        """A client this server does not host is server.clientproxy.unknown_member."""
        body = is_request(client=CONSUMER.member.subsystem("stranger"))
        await self.assert_fault(body, "server.clientproxy.unknown_member")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_client_not_yet_registered_is_refused(self) -> None:
        """A client that is only saved (registration not done) is server.clientproxy.unknown_member."""
        self.consumer.store.add_client(CONSUMER.member.subsystem("pending"))
        await self.assert_fault(is_request(client=CONSUMER.member.subsystem("pending")), "server.clientproxy.unknown_member")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_unknown_provider_member_is_refused(self) -> None:
        """A provider member the global configuration does not know is server.clientproxy.unknown_member."""
        service = ServiceId(ClientId("EE", "GOV", "79999999", "service"), "getPerson")
        await self.assert_fault(is_request(service), "server.clientproxy.unknown_member")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_unknown_service_is_refused(self) -> None:
        """A service the provider's server does not publish (wrong version too) is server.serverproxy.unknown_service."""
        await self.assert_fault(is_request(ServiceId(PROVIDER, "getPerson", "v2")), "server.serverproxy.unknown_service")
        assert self.service.calls == {}

    @coroutine_test
    async def test_disabled_service_is_refused_with_its_notice(self) -> None:
        """A disabled service is server.serverproxy.service_disabled, with the provider's notice."""
        answer = await self.assert_fault(is_request(DISABLED), "server.serverproxy.service_disabled")
        assert b"Closed for maintenance until Monday" in answer
        assert self.service.calls == {}

    @coroutine_test
    async def test_no_access_right_is_refused(self) -> None:
        """A service the client has no right to is server.serverproxy.access_denied (default deny)."""
        await self.assert_fault(is_request(DENIED), "server.serverproxy.access_denied")
        assert self.service.calls == {}

    @coroutine_test
    async def test_rest_service_called_over_soap_is_refused(self) -> None:
        """A REST service called with SOAP is server.serverproxy.service_type."""
        await self.assert_fault(is_request(REST), "server.serverproxy.service_type")
        assert self.service.calls == {}

    # --- signatures ---------------------------------------------------------------------------------------------

    @coroutine_test
    async def test_message_tampered_by_one_byte_is_refused(self) -> None:
        """One byte of the signed message changed on the way is server.serverproxy.invalid_signature_value."""

        def tamper(message: SignedMessage) -> SignedMessage:
            return with_message(message, message.content.message.replace(b"Jaan Tamm", b"Jaan Tamn"))

        proxy = self.make_client_proxy(RewritingLink(self.link, request=rewrite_request(tamper)))
        await self.assert_fault(is_request(), "server.serverproxy.invalid_signature_value", proxy=proxy)
        assert self.service.calls == {}
        assert records(self.provider.log_path) == []

    @coroutine_test
    async def test_signature_tampered_by_one_byte_is_refused(self) -> None:
        """One byte of the signature value changed is server.serverproxy.invalid_signature_value."""

        def tamper(message: SignedMessage) -> SignedMessage:
            flipped = flip_signature_value(message.signature.signature_xml)
            return with_signature(message, dataclasses.replace(message.signature, signature_xml=flipped))

        proxy = self.make_client_proxy(RewritingLink(self.link, request=rewrite_request(tamper)))
        await self.assert_fault(is_request(), "server.serverproxy.invalid_signature_value", proxy=proxy)
        assert self.service.calls == {}

    @coroutine_test
    async def test_message_signed_by_another_members_key_is_refused(self) -> None:
        """A valid signature by another member's certificate is server.serverproxy.incorrect_certificate."""

        def resign_as_other(message: SignedMessage) -> SignedMessage:
            return resign(message, self.pki.other_token, SS3.owner, message.content.message)

        proxy = self.make_client_proxy(RewritingLink(self.link, request=rewrite_request(resign_as_other)))
        await self.assert_fault(is_request(), "server.serverproxy.incorrect_certificate", proxy=proxy)
        assert self.service.calls == {}

    @coroutine_test
    async def test_unsigned_message_is_refused(self) -> None:
        """A transport message without its signature part is server.serverproxy.missing_signature."""

        def strip(request: PeerRequest) -> PeerRequest:
            message = decode_request(request.content_type, request.body)
            parts = [Part((("Content-Type", OCSP_RESPONSE),), o) for o in message.ocsp_responses]
            parts.append(Part((("Content-Type", message.content.content_type),), message.content.message))
            boundary, body = build_multipart(parts)
            content_type = format_header_value(MULTIPART_MIXED, [("boundary", boundary)])
            return PeerRequest(headers=request.headers, content_type=content_type, body=body)

        proxy = self.make_client_proxy(RewritingLink(self.link, request=strip))
        await self.assert_fault(is_request(), "server.serverproxy.missing_signature", proxy=proxy)
        assert self.service.calls == {}

    @coroutine_test
    async def test_replayed_signed_message_is_refused(self) -> None:
        """The same signed transport message delivered twice is refused the second time; the provider runs once."""
        status, _, _ = await self.send(is_request())
        assert status == 200
        (address, delivered), = self.link.delivered
        replayed = await self.server_proxy.handle(self.link.client_cert_der, delivered)
        assert fault_code(replayed.body) == "server.serverproxy.invalid_request.replayed_signature"
        assert self.service.calls == {"echo": 1}
        assert len(records(self.provider.log_path)) == 2

    # --- the peers' authentication certificates -----------------------------------------------------------------

    @coroutine_test
    async def test_consumer_server_with_unregistered_auth_cert_is_refused(self) -> None:
        """A client-side peer whose TLS certificate no server registered is server.serverproxy.ssl_authentication_failed."""
        self.link.client_cert_der = der(self.pki.unregistered_auth)
        await self.assert_fault(is_request(), "server.serverproxy.ssl_authentication_failed")
        assert self.service.calls == {}

    @coroutine_test
    async def test_consumer_server_with_other_servers_auth_cert_is_refused(self) -> None:
        """A peer showing the registered certificate of a server that does not host the client is refused."""
        self.link.client_cert_der = der(self.pki.auth_cert(self.pki.other_token))
        await self.assert_fault(is_request(), "server.serverproxy.ssl_authentication_failed")
        assert self.service.calls == {}

    @coroutine_test
    async def test_provider_server_with_unregistered_auth_cert_is_refused(self) -> None:
        """A peer whose certificate is not registered is server.clientproxy.ssl_authentication_failed; logged as failed."""
        self.link.peer_certs[SS2] = der(self.pki.unregistered_auth)
        await self.assert_fault(is_request(), "server.clientproxy.ssl_authentication_failed")
        assert [r.succeeded for r in records(self.consumer.log_path)] == [True, False]

    @coroutine_test
    async def test_provider_server_with_other_servers_auth_cert_is_refused(self) -> None:
        """A peer showing another server's registered certificate is refused by the consumer's link."""
        self.link.peer_certs[SS2] = der(self.pki.auth_cert(self.pki.other_token))
        await self.assert_fault(is_request(), "server.clientproxy.ssl_authentication_failed")

    @coroutine_test
    async def test_verifying_link_refuses_unregistered_provider_server_before_sending(self) -> None:
        """Production wiring: a provider server with an unregistered certificate never receives the request."""
        self.link.peer_certs[SS2] = der(self.pki.unregistered_auth)
        await self.assert_fault(is_request(), "server.clientproxy.ssl_authentication_failed")
        assert self.link.delivered == []

    @coroutine_test
    async def test_revoked_auth_cert_is_refused(self) -> None:
        """A consumer server whose auth certificate is revoked (OCSP says so) is server.serverproxy.cert_validation."""
        revoked_auth = self.pki.auth_cert(self.pki.revoked_token)
        self.conf_box[0] = global_conf(
            self.pki, ss1_certs=(self.pki.auth_cert(self.pki.consumer_token), revoked_auth)
        )
        consumer = self.make_consumer(token=self.pki.revoked_token)
        self.link.client_cert_der = der(revoked_auth)
        await self.assert_fault(is_request(), "server.serverproxy.cert_validation", proxy=self.make_client_proxy(self.link, consumer))
        assert self.service.calls == {}

    @coroutine_test
    async def test_stale_ocsp_of_auth_cert_is_refused(self) -> None:
        """A consumer server stapling a two-hour-old OCSP response is server.serverproxy.incorrect_validation_info."""
        auth = self.pki.auth_cert(self.pki.consumer_token)
        stale = OwnOcsp(self.pki.ca, lambda cert: timedelta(hours=2) if cert == auth else timedelta(0))
        consumer = self.make_consumer(own_ocsp=stale)
        await self.assert_fault(
            is_request(), "server.serverproxy.incorrect_validation_info", proxy=self.make_client_proxy(self.link, consumer)
        )
        assert self.service.calls == {}

    @coroutine_test
    async def test_stale_ocsp_in_signature_is_refused(self) -> None:
        """A signature carrying a stale OCSP response for its certificate is server.serverproxy.incorrect_validation_info."""
        auth = self.pki.auth_cert(self.pki.consumer_token)
        stale = OwnOcsp(self.pki.ca, lambda cert: timedelta(0) if cert == auth else timedelta(hours=2))
        consumer = self.make_consumer(own_ocsp=stale)
        await self.assert_fault(
            is_request(), "server.serverproxy.incorrect_validation_info", proxy=self.make_client_proxy(self.link, consumer)
        )
        assert self.service.calls == {}

    # --- the provider's service -------------------------------------------------------------------------------

    @coroutine_test
    async def test_provider_refusing_connections_is_network_error(self) -> None:
        """A provider URL where nothing listens is server.serverproxy.service_failed.network_error; logged as failed."""
        await self.assert_fault(is_request(REFUSED), "server.serverproxy.service_failed.network_error")
        logged = records(self.provider.log_path)
        assert [(r.direction, r.succeeded) for r in logged] == [(Direction.REQUEST, True), (Direction.RESPONSE, False)]
        assert logged[1].fault_code == "server.serverproxy.service_failed.network_error"

    @coroutine_test
    async def test_provider_dropping_the_connection_is_io_error(self) -> None:
        """A provider that accepts and then drops the connection (down mid-call) is service_failed.io_error."""
        await self.assert_fault(is_request(DROP), "server.serverproxy.service_failed.io_error")
        assert self.service.calls == {"drop": 1}

    @coroutine_test
    async def test_provider_slower_than_its_timeout_is_io_error(self) -> None:
        """A provider slower than the service's timeout is service_failed.io_error (X-Road: SocketTimeoutException)."""
        answer = await self.assert_fault(is_request(SLOW), "server.serverproxy.service_failed.io_error")
        assert b"in time" in answer

    @coroutine_test
    async def test_provider_answering_non_xml_is_invalid_soap(self) -> None:
        """A provider answering text/xml that is not XML is server.serverproxy.service_failed.invalid_soap (X-Road's
        code for what its SOAP parser cannot read)."""
        await self.assert_fault(is_request(NONXML), "server.serverproxy.service_failed.invalid_soap")

    @coroutine_test
    async def test_provider_soap_fault_is_passed_through(self) -> None:
        """A SOAP fault from the provider reaches the IS unchanged; the exchange is logged as failed."""
        status, _, answer = await self.send(is_request(FAULTY))
        assert status == 200
        assert fault_code(answer) == "SOAP-ENV:Server.PersonNotFound"
        assert b"No such person" in answer
        assert records(self.provider.log_path)[-1].fault_code == "SOAP-ENV:Server.PersonNotFound"
        assert records(self.consumer.log_path)[-1].fault_code == "SOAP-ENV:Server.PersonNotFound"

    # --- the consumer's checks on the answer --------------------------------------------------------------------

    @coroutine_test
    async def test_response_tampered_by_one_byte_is_refused(self) -> None:
        """A response changed on the way back is server.clientproxy.invalid_signature_value; the IS gets no data."""

        def tamper(message: SignedMessage) -> SignedMessage:
            return with_message(message, message.content.message.replace(b"Jaan Tamm", b"Jaan Tamn"))

        proxy = self.make_client_proxy(RewritingLink(self.link, response=rewrite_response(tamper)))
        answer = await self.assert_fault(is_request(), "server.clientproxy.invalid_signature_value", proxy=proxy)
        assert b"Jaan" not in answer

    @coroutine_test
    async def test_response_with_wrong_request_hash_is_refused(self) -> None:
        """A response signed by the provider but with another requestHash is server.clientproxy.inconsistent_response."""
        wrong = base64.b64encode(hashlib.sha512(b"another request").digest())

        def rehash(message: SignedMessage) -> SignedMessage:
            changed = re.sub(rb"(<xrd:requestHash[^>]*>)[^<]+", lambda m: m.group(1) + wrong, message.content.message)
            return resign(message, self.pki.provider_token, SS2.owner, changed)

        proxy = self.make_client_proxy(RewritingLink(self.link, response=rewrite_response(rehash)))
        await self.assert_fault(is_request(), "server.clientproxy.inconsistent_response", proxy=proxy)

    @coroutine_test
    async def test_response_signed_by_another_member_is_refused(self) -> None:
        """A response signed by someone other than the provider member is server.clientproxy.incorrect_certificate."""

        def resign_as_other(message: SignedMessage) -> SignedMessage:
            return resign(message, self.pki.other_token, SS3.owner, message.content.message)

        proxy = self.make_client_proxy(RewritingLink(self.link, response=rewrite_response(resign_as_other)))
        await self.assert_fault(is_request(), "server.clientproxy.incorrect_certificate", proxy=proxy)

    # --- the servers themselves -----------------------------------------------------------------------------------

    @coroutine_test
    async def test_consumer_log_not_writable_refuses_and_sends_nothing(self) -> None:
        """With the consumer's message log unwritable the IS gets server.clientproxy.logging_failed; nothing leaves."""
        blocker = self.tmp / "not-a-directory"
        blocker.write_bytes(b"")
        consumer = self.make_consumer(log_path=blocker / "messagelog.db")
        await self.assert_fault(is_request(), "server.clientproxy.logging_failed", proxy=self.make_client_proxy(self.link, consumer))
        self.assert_nothing_sent()

    @coroutine_test
    async def test_provider_log_not_writable_refuses_and_provider_is_not_called(self) -> None:
        """With the provider's message log unwritable the IS gets server.serverproxy.logging_failed; provider not called."""
        blocker = self.tmp / "not-a-directory"
        blocker.write_bytes(b"")
        provider = self.make_provider(f"http://127.0.0.1:{self.port.getHost().port}", log_path=blocker / "messagelog.db")
        link = self.make_link(self.make_server_proxy(provider))
        await self.assert_fault(is_request(), "server.serverproxy.logging_failed", proxy=self.make_client_proxy(link))
        assert self.service.calls == {}

    @coroutine_test
    async def test_expired_global_configuration_refuses_traffic(self) -> None:
        """After the global configuration expires every request is server.clientproxy.global_conf_outdated."""
        self.conf_box[0] = global_conf(self.pki, expires_in=-timedelta(minutes=1))
        await self.assert_fault(is_request(), "server.clientproxy.global_conf_outdated")
        self.assert_nothing_sent()

    @coroutine_test
    async def test_unreachable_provider_server_is_network_error(self) -> None:
        """When no server of the provider can be reached the IS gets server.clientproxy.network_error."""
        proxy = self.make_client_proxy(LocalPeerLink({}))
        await self.assert_fault(is_request(), "server.clientproxy.network_error", proxy=proxy)
        assert [r.succeeded for r in records(self.consumer.log_path)] == [True, False]
