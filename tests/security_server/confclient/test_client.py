"""The configuration client over loopback: tampered or wrong downloads are refused and the old configuration stays.

A real registry store and publisher sign real configurations; a small web server on 127.0.0.1 serves whatever the
test puts in it, so each test can tamper with one byte of the directory, the signature or a file.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as global_reactor
from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web import resource, server

from central_registry.publisher import Publication, Publisher, SelfSignedKey
from central_registry.store import RegistryStore
from security_server.confclient import bundle as bundles
from security_server.confclient.client import DOWNLOAD_TIMEOUT_SECONDS, MAX_DIRECTORY_BYTES, ConfClient
from security_server.core.errors import GlobalConfOutdated, NetworkError
from security_server.core.globalconf import parse_configuration_anchor
from security_server.core.identifiers import ClientId
from tests.security_server.edge.hostile_servers import EndlessResource, HangingAgent

reactor: Any = global_reactor


@dataclass
class Served:
    """What the fake configuration source answers: path -> (content type, body)."""

    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class SourceResource(resource.Resource):
    """Answers GET with whatever :class:`Served` holds, 404 otherwise."""

    isLeaf = True

    def __init__(self, served: Served) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.served = served

    def render_GET(self, request: server.Request) -> bytes:
        """Serve one file."""
        found = self.served.files.get(request.path.decode())
        if found is None:
            request.setResponseCode(404)
            return b"not found"
        request.setHeader(b"content-type", found[0].encode())  # type: ignore[no-untyped-call]
        return found[1]


class ConfClientTest(unittest.TestCase):
    """Downloads that fail verification change nothing; the last good configuration serves until it expires."""

    timeout = 60

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fedbus-confclient-"))
        self.served = Served()
        site = server.Site(SourceResource(self.served))  # type: ignore[no-untyped-call]
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.store = RegistryStore(self.tmp / "registry.db")
        self.store.initialise("EE")
        self.store.add_member(ClientId("EE", "GOV", "1"), "First")
        now = datetime.now(timezone.utc)
        key = SelfSignedKey.create(self.tmp / "signing", "EE configuration signing", now)
        tls = SelfSignedKey.create(self.tmp / "tls", "EE registry", now)
        self.publisher = Publisher(
            self.store, self.tmp / "published", key, public_url=self.base,
            management_url="https://127.0.0.1:1/managementservice", management_cert_der=tls.cert_der,
        )
        self.anchor = parse_configuration_anchor(self.publisher.anchor(now))

    def tearDown(self) -> Any:
        self.store.close()
        return self.port.stopListening()

    def serve(self, publication: Publication) -> None:
        """Put a publication on the fake source."""
        self.served.files["/internalconf"] = (publication.content_type, publication.directory)
        for location, content in publication.files.items():
            self.served.files[location] = ("application/octet-stream", content)

    def client(self, clock: Any = None) -> ConfClient:
        """A configuration client for the anchor, storing under the test's folder (time from ``clock`` if given)."""
        return ConfClient(reactor, self.anchor, self.tmp / "ss" / "globalconf.bundle", clock=clock)

    @defer.inlineCallbacks
    def good_then(self, tamper: Any) -> Any:
        """Apply a good configuration, then serve a second one changed by ``tamper``; return (client, result)."""
        client = self.client()
        self.serve(self.publisher.build(datetime.now(timezone.utc)))
        first = yield client.refresh()
        assert first.applied, first.error
        good = client.current()
        self.store.add_member(ClientId("EE", "GOV", "2"), "Second")
        second = self.publisher.build(datetime.now(timezone.utc) + timedelta(seconds=1))
        self.serve(second)
        tamper(second)
        result = yield client.refresh()
        assert client.current() is good, "the old configuration must stay in force"
        assert not client.current().has_member(ClientId("EE", "GOV", "2"))
        return client, result

    def _flip(self, path: str, position: int) -> None:
        content_type, body = self.served.files[path]
        changed = bytearray(body)
        changed[position % len(changed)] ^= 0x01
        self.served.files[path] = (content_type, bytes(changed))

    @defer.inlineCallbacks
    def test_good_download_is_applied_and_stored(self) -> Any:
        """A good download is applied, stored atomically, and loads again from disk after a restart."""
        self.serve(self.publisher.build(datetime.now(timezone.utc)))
        client = self.client()
        result = yield client.refresh()
        assert result.applied, result.error
        assert client.current().has_member(ClientId("EE", "GOV", "1"))
        again = self.client()
        again.load_stored()
        assert again.current().has_member(ClientId("EE", "GOV", "1"))

    @defer.inlineCallbacks
    def test_flipped_byte_in_the_directory_part_is_refused(self) -> Any:
        """One byte changed inside the signed directory part: the signature no longer verifies."""
        _, result = yield self.good_then(lambda p: self._flip("/internalconf", p.directory.index(b"Expire-date") + 3))
        assert result.error is not None
        assert result.error.fault_code == "server.global_conf_signature_verification_failure"

    @defer.inlineCallbacks
    def test_flipped_byte_in_the_signature_is_refused(self) -> Any:
        """One byte of the base64 signature changed: refused."""
        def tamper(publication: Publication) -> None:
            body = self.served.files["/internalconf"][1]
            position = body.rindex(b"\r\n\r\n") + 10  # inside the signature part's base64 body
            changed = bytearray(body)
            changed[position] = ord("A") if changed[position] != ord("A") else ord("B")
            self.served.files["/internalconf"] = (publication.content_type, bytes(changed))

        _, result = yield self.good_then(tamper)
        assert result.error is not None
        assert result.error.fault_code.startswith("server.global_conf_signature_verification_failure")

    @defer.inlineCallbacks
    def test_flipped_byte_in_a_part_is_refused(self) -> Any:
        """One byte of shared-params.xml changed on the server: its hash no longer matches the directory."""
        def tamper(publication: Publication) -> None:
            location = next(loc for loc in publication.files if loc.endswith("shared-params.xml"))
            self._flip(location, 200)

        _, result = yield self.good_then(tamper)
        assert result.error is not None
        assert result.error.fault_code == "server.global_conf_part_downloaded_hash_failure"

    @defer.inlineCallbacks
    def test_truncated_directory_is_refused(self) -> Any:
        """A directory cut short (truncated multipart) is refused."""
        def tamper(publication: Publication) -> None:
            self.served.files["/internalconf"] = (publication.content_type, publication.directory[: len(publication.directory) // 2])

        _, result = yield self.good_then(tamper)
        assert result.error is not None

    @defer.inlineCallbacks
    def test_missing_part_is_refused(self) -> Any:
        """A part the directory lists but the source does not serve is refused."""
        def tamper(publication: Publication) -> None:
            del self.served.files[next(loc for loc in publication.files if loc.endswith("private-params.xml"))]

        _, result = yield self.good_then(tamper)
        assert result.error is not None
        assert result.error.fault_code == "server.network_error"

    @defer.inlineCallbacks
    def test_configuration_of_another_instance_is_refused(self) -> Any:
        """A validly signed configuration of another instance is refused by an anchor for EE."""
        other = RegistryStore(self.tmp / "other.db")
        other.initialise("FI")
        publisher = Publisher(
            other, self.tmp / "other-published", self.publisher.signing_key, public_url=self.base,
            management_url="https://127.0.0.1:1/m", management_cert_der=self.publisher.management_cert_der,
        )
        foreign = publisher.build(datetime.now(timezone.utc))
        other.close()
        _, result = yield self.good_then(lambda _: self.serve(foreign))
        assert result.error is not None
        assert result.error.fault_code == "server.global_conf_part_invalid_instance_identifier"

    @defer.inlineCallbacks
    def test_directory_signed_by_another_key_is_refused(self) -> Any:
        """A configuration signed with a key that is not in the anchor is refused."""
        rogue_key = SelfSignedKey.create(self.tmp / "rogue", "rogue", datetime.now(timezone.utc))
        rogue = Publisher(
            self.store, self.tmp / "rogue-published", rogue_key, public_url=self.base,
            management_url="https://127.0.0.1:1/m", management_cert_der=self.publisher.management_cert_der,
        )
        forged = rogue.build(datetime.now(timezone.utc))
        _, result = yield self.good_then(lambda _: self.serve(forged))
        assert result.error is not None
        assert result.error.fault_code == "server.global_conf_missing_verification_cert"

    @defer.inlineCallbacks
    def test_expired_download_is_refused(self) -> Any:
        """A configuration already past its Expire-date is refused."""
        stale = self.publisher.build(datetime.now(timezone.utc) - timedelta(hours=1))
        _, result = yield self.good_then(lambda _: self.serve(stale))
        assert result.error is not None
        assert result.error.fault_code == "server.global_conf_outdated"

    @defer.inlineCallbacks
    def test_after_expiry_every_request_is_refused(self) -> Any:
        """Once the configuration in force expires (clock injected), current() raises global_conf_outdated."""
        clock = Clock()
        clock.advance(datetime.now(timezone.utc).timestamp())
        client = self.client(clock)  # downloads through the real reactor; only "now" comes from the fake clock
        self.serve(self.publisher.build(datetime.now(timezone.utc)))
        result = yield client.refresh()
        assert result.applied, result.error
        assert client.healthy
        clock.advance(self.store.settings().conf_expire_seconds + 1)
        try:
            client.current()
        except GlobalConfOutdated as refused:
            assert refused.fault_code == "server.global_conf_outdated"
        else:
            raise AssertionError("an expired configuration was still served")
        assert not client.healthy

    def test_source_that_never_answers_times_out_and_frees_the_next_refresh(self) -> None:
        """A source that takes the request but never answers fails the refresh after the download timeout."""
        clock, agent = Clock(), HangingAgent()
        client = ConfClient(clock, self.anchor, self.tmp / "ss" / "globalconf.bundle", agent=agent)
        results: list[Any] = []
        client.refresh().addCallback(results.append)
        clock.advance(DOWNLOAD_TIMEOUT_SECONDS)
        assert not results[0].applied and isinstance(results[0].error, NetworkError)
        assert "did not answer within" in results[0].error.message
        assert agent.cancelled == 1
        client.refresh().addCallback(results.append)  # the refresh lock was released
        assert len(results) == 1 and agent.cancelled == 1
        clock.advance(DOWNLOAD_TIMEOUT_SECONDS)
        assert len(results) == 2 and agent.cancelled == 2

    @defer.inlineCallbacks
    def test_endless_directory_is_cut_off_and_changes_nothing(self) -> Any:
        """A source that streams a directory without end fails at the cap; the configuration in force stays."""
        endless = EndlessResource(b"multipart/related; boundary=x")
        port = reactor.listenTCP(0, server.Site(endless), interface="127.0.0.1")  # type: ignore[no-untyped-call]
        self.addCleanup(port.stopListening)
        endless_source = replace(self.anchor.sources[0], download_url=f"http://127.0.0.1:{port.getHost().port}/internalconf")
        anchor = replace(self.anchor, sources=(endless_source,))
        client = ConfClient(reactor, anchor, self.tmp / "ss" / "globalconf.bundle")
        result = yield client.refresh()
        assert not result.applied and isinstance(result.error, NetworkError)
        assert f"more than {MAX_DIRECTORY_BYTES} bytes" in result.error.message
        assert (yield endless.ended), "the client hung up before the stream ran out"

    def test_damaged_stored_copy_is_ignored(self) -> None:
        """A stored bundle changed on disk (file content, signed directory, signature, or the file itself) is not loaded."""
        publication = self.publisher.build(datetime.now(timezone.utc))
        path = self.tmp / "ss" / "globalconf.bundle"
        shared = next(loc for loc in publication.files if loc.endswith("shared-params.xml"))
        signature_at = publication.directory.rindex(b"\r\n\r\n") + 10

        def flipped(data: bytes, position: int) -> bytes:
            changed = bytearray(data)
            changed[position] ^= 0x01
            return bytes(changed)

        damaged = [
            bundles.ConfBundle(publication.content_type, publication.directory,
                               {**publication.files, shared: flipped(publication.files[shared], 300)}),
            bundles.ConfBundle(publication.content_type,
                               flipped(publication.directory, publication.directory.index(b"Expire-date") + 15),
                               dict(publication.files)),
            bundles.ConfBundle(publication.content_type, flipped(publication.directory, signature_at), dict(publication.files)),
        ]
        for bundle in damaged:
            bundles.save(path, bundle)
            self._assert_not_loaded()
        path.write_bytes(bundles.ConfBundle(publication.content_type, publication.directory, dict(publication.files)).to_bytes()[:-40])
        self._assert_not_loaded()

    def _assert_not_loaded(self) -> None:
        client = self.client()
        client.load_stored()
        try:
            client.current()
        except GlobalConfOutdated:
            return
        raise AssertionError("a damaged stored configuration was loaded")

    # --- a new configuration governs the next decision, with no restart: values, listeners, expiry (issue 22) ---

    @defer.inlineCallbacks
    def test_listeners_get_each_configuration_made_current(self) -> Any:
        """on_applied listeners are called with each applied download, a failing listener stopping nothing."""
        client = self.client()
        seen: list[Any] = []

        def broken(_: Any) -> None:
            raise RuntimeError("listener bug")

        client.on_applied(broken)
        client.on_applied(seen.append)
        self.serve(self.publisher.build(datetime.now(timezone.utc)))
        first = yield client.refresh()
        assert first.applied, first.error
        self.store.set_setting("ocsp_freshness_seconds", "60")
        self.serve(self.publisher.build(datetime.now(timezone.utc) + timedelta(seconds=1)))
        second = yield client.refresh()
        assert second.applied, second.error
        assert [conf.ocsp_freshness_seconds for conf in seen] == [3600, 60]
        assert client.current() is seen[-1]

    def test_stored_copy_loaded_is_announced(self) -> None:
        """Loading the stored copy at start-up calls the listeners too."""
        bundles.save(self.tmp / "ss" / "globalconf.bundle", self._bundle(self.publisher.build(datetime.now(timezone.utc))))
        client = self.client()
        seen: list[Any] = []
        client.on_applied(seen.append)
        client.load_stored()
        assert seen == [client.current()]

    @staticmethod
    def _bundle(publication: Publication) -> bundles.ConfBundle:
        return bundles.ConfBundle(publication.content_type, publication.directory, dict(publication.files))

    @defer.inlineCallbacks
    def test_changed_values_are_read_after_the_next_refresh(self) -> Any:
        """Freshness, timestamping interval and member list published anew are what current() gives next."""
        client = self.client()
        self.serve(self.publisher.build(datetime.now(timezone.utc)))
        yield client.refresh()
        assert (client.current().ocsp_freshness_seconds, client.current().timestamping_interval_seconds) == (3600, 60)
        self.store.set_setting("ocsp_freshness_seconds", "60")
        self.store.set_setting("timestamping_interval_seconds", "30")
        self.store.add_member(ClientId("EE", "GOV", "2"), "Second")
        self.serve(self.publisher.build(datetime.now(timezone.utc) + timedelta(seconds=1)))
        yield client.refresh()
        conf = client.current()
        assert (conf.ocsp_freshness_seconds, conf.timestamping_interval_seconds) == (60, 30)
        assert conf.has_member(ClientId("EE", "GOV", "2"))

    @defer.inlineCallbacks
    def test_shortened_validity_governs_the_expiry(self) -> Any:
        """A configuration published with a shorter validity (600 -> 60 s) expires at its own date, not the old one."""
        clock = Clock()
        clock.advance(datetime.now(timezone.utc).timestamp())
        client = self.client(clock)
        self.serve(self.publisher.build(datetime.now(timezone.utc)))
        yield client.refresh()
        self.store.set_setting("conf_expire_seconds", "60")
        self.serve(self.publisher.build(datetime.now(timezone.utc) + timedelta(seconds=1)))
        result = yield client.refresh()
        assert result.applied, result.error
        clock.advance(62)
        assert not client.healthy
        try:
            client.current()
        except GlobalConfOutdated:
            pass
        else:
            raise AssertionError("the new, shorter validity was not applied")

    @defer.inlineCallbacks
    def test_lengthened_validity_serves_past_the_old_expiry(self) -> Any:
        """A configuration published with a longer validity keeps serving past the previous one's expiry."""
        clock = Clock()
        clock.advance(datetime.now(timezone.utc).timestamp())
        client = self.client(clock)
        self.serve(self.publisher.build(datetime.now(timezone.utc)))
        yield client.refresh()
        self.store.set_setting("conf_expire_seconds", "3600")
        self.serve(self.publisher.build(datetime.now(timezone.utc) + timedelta(seconds=1)))
        yield client.refresh()
        clock.advance(601)
        assert client.healthy
        assert client.current().has_member(ClientId("EE", "GOV", "1"))

    @defer.inlineCallbacks
    def test_moved_management_service_is_read_after_the_next_refresh(self) -> Any:
        """A management service address published anew is where the next registration request goes."""
        client = self.client()
        self.serve(self.publisher.build(datetime.now(timezone.utc)))
        yield client.refresh()
        assert client.current().management_service.auth_cert_reg_service_address == "https://127.0.0.1:1/managementservice"
        self.publisher.management_url = "https://127.0.0.1:2/managementservice"
        self.serve(self.publisher.build(datetime.now(timezone.utc) + timedelta(seconds=1)))
        yield client.refresh()
        assert client.current().management_service.auth_cert_reg_service_address == "https://127.0.0.1:2/managementservice"
