"""Issue 22 item 4 at process level: a flood of untrusted TLS clients sending 10 MB bodies stops no normal exchange.

Two security servers run as ``fedbus server run`` assembles them (``make_service``), registered through the real
registry on loopback (:mod:`tests.e2e_federation`). A separate process (tests/security_server/proxy/peer_flood.py)
opens 200 connections at once to the provider's server proxy: 100 with an authentication certificate from a CA the
configuration does not approve, 100 with one the federation's own CA issued to a server nobody registered; each
tries to send a 10 MB body. Meanwhile the consumer's system makes its normal calls: every one is answered. The
unapproved ones fail the TLS handshake; the unregistered ones get the server proxy's fault (or are cut off) after
their head, and none gets far into its body: the server reads nothing of it, so each client's socket fills and
stops (its send buffer is fixed at 256 KiB).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from central_registry.trust.ca import DevelopmentCA
from security_server.core.identifiers import SecurityServerId
from tests import e2e_federation as federation
from tests.e2e_federation import PROVIDER_MEMBER, zeep_call
from tests.federation.ca import KeyAndCert, issue_auth, make_ca
from tests.federation.pki import write_pem
from tests.loopback import now

PER_KIND = 100
"""Hostile connections per certificate: 200 in all."""
NORMAL_CALLS = 8
"""zeep calls made during the flood (two exchanges each), CONCURRENCY at a time."""
CONCURRENCY = 4
BODY = 10 * 1024 * 1024


def pem_pair(directory: Path, name: str, pair: KeyAndCert) -> list[str]:
    """The certificate and unencrypted key of ``pair`` as PEM files, for the flood process's command line."""
    cert = write_pem(directory / f"{name}.cert.pem", pair.cert)
    key = directory / f"{name}.key.pem"
    key.write_bytes(
        pair.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return [str(cert), str(key)]


def start_flood(port: int, certs: list[str]) -> subprocess.Popen[bytes]:
    """Start the flood process; return once it says every connection was attempted (blocking: run in a thread)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.security_server.proxy.peer_flood", str(port), str(PER_KIND), *certs],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2],
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line == b"flooding\n", (line, process.stderr.read() if process.stderr else b"")
    return process


def flood_outcome(process: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    """Wait for the flood process; each connection's outcome (blocking: run in a thread)."""
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    outcome: list[dict[str, Any]] = json.loads(out)
    return outcome


class PeerFloodEndToEndTest(federation.TwoDepartmentFederation):
    """Normal exchanges through two security servers while untrusted peers flood the provider's server proxy."""

    @defer.inlineCallbacks
    def test_untrusted_peers_flooding_with_large_bodies_stop_no_exchange(self) -> Any:
        """200 untrusted connections with 10 MB bodies: all refused before their bodies; every normal call answered."""
        consumer, provider = yield self.start_pair()

        stranger = SecurityServerId(PROVIDER_MEMBER, "stranger")
        rogue_ca = make_ca(self.tmp / "rogue-ca", now(), "Rogue CA")
        rogue = pem_pair(self.tmp, "rogue", issue_auth(rogue_ca, stranger, now()))
        own_ca = DevelopmentCA.open(self.paths.ca)
        unregistered = pem_pair(self.tmp, "unregistered", issue_auth(own_ca, stranger, now()))
        address = f"http://127.0.0.1:{consumer.service.client_proxy_port}/"

        with capture_logs() as logs:
            flood = yield deferToThread(start_flood, provider.service.server_proxy_port, rogue + unregistered)
            answers: list[Any] = []
            numbers = iter(range(NORMAL_CALLS))

            @defer.inlineCallbacks
            def caller() -> Any:
                for number in numbers:
                    result, _ = yield deferToThread(zeep_call, address, f"flood-{number}")
                    answers.append(result)

            yield defer.gatherResults([caller() for _ in range(CONCURRENCY)], consumeErrors=True)
            outcome = yield deferToThread(flood_outcome, flood)

        assert answers == ["42"] * NORMAL_CALLS
        assert len(outcome) == 2 * PER_KIND
        by_cert: dict[str, list[dict[str, Any]]] = {rogue[0]: [], unregistered[0]: []}
        for result in outcome:
            by_cert[result["cert"]].append(result)
            assert result["sent"] < BODY // 4, result  # the server read (next to) nothing of any body
        assert {r["kind"] for r in by_cert[rogue[0]]} == {"refused"}, by_cert[rogue[0]][:3]
        for result in by_cert[unregistered[0]]:
            assert result["kind"] in ("fault", "refused"), result
            if result["kind"] == "fault":
                assert result["fault_code"] == "server.serverproxy.ssl_authentication_failed", result
        events = [entry["event"] for entry in logs]
        assert events.count("server_proxy_handshake_refused") == PER_KIND
        assert events.count("server_proxy_peer_refused") == PER_KIND
