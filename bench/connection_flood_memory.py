"""Where the memory of a connection flood goes (issue 22 item 5): tracemalloc before, during and after.

Serves the client proxy's site (plain HTTP, a stand-in proxy) and the server proxy's site (mutual TLS with a
throwaway certificate) in this process, then a child process opens ``--connections`` idle connections to each port
(optionally completing the TLS handshake with a client certificate), holds them, and closes them. The script
prints the Python heap (tracemalloc), the largest differences by source line after the flood has gone, the number
of channels and requests still alive (gc), and the process's RSS at each step: before, with the flood open, once
it has closed, and once the sites' heap trimmer has run (proxy/connection_limits.py). It reports figures; it
asserts nothing (tests/security_server/proxy/test_guarded_connections.py and tests/security_server/
test_connection_flood_e2e.py pin the finding).

    .venv/bin/python bench/connection_flood_memory.py --connections 1000 [--handshake]
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

FLOOD = textwrap.dedent(
    """
    import socket, ssl, sys
    n, client_port, server_port, handshake, cert = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
    held = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(cert)
    for i in range(n):
        for port, tls in ((client_port, False), (server_port, True)):
            s = socket.create_connection(("127.0.0.1", port))
            if tls and handshake:
                s = context.wrap_socket(s)
            held.append(s)
    print("open", flush=True)
    sys.stdin.readline()
    for s in held:
        s.close()
    print("closed", flush=True)
    """
)


def rss_mb() -> float:
    """This process's resident set size in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def alive(kind: type) -> int:
    """Instances of ``kind`` the garbage collector can see."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


def main() -> None:
    """Run the flood and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000, help="idle connections to each port")
    parser.add_argument("--handshake", action="store_true", help="complete the TLS handshake on the server port")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the child inherits it too

    from twisted.internet import reactor, threads

    from security_server.core.config import ConnectionLimits
    from security_server.management.tls import make_certificate
    from security_server.proxy.bounded_request import BoundedRequest
    from security_server.proxy.client_proxy import ClientProxy
    from security_server.proxy.client_proxy_site import client_proxy_site
    from security_server.proxy.guarded_channel import GuardedChannel
    from security_server.proxy.mtls import PeerTlsOptions
    from security_server.proxy.peerlink import ServerProxyHandler
    from security_server.proxy.server_proxy_site import ServerProxyResource, server_proxy_site

    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_certificate(key, "127.0.0.1", datetime.now(UTC))
    pem = tempfile.NamedTemporaryFile(suffix=".pem", delete=False)  # noqa: SIM115 - removed at the end
    pem.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pem.write(cert.public_bytes(serialization.Encoding.PEM))
    pem.close()

    proxy = SimpleNamespace(context=SimpleNamespace(limits=SimpleNamespace(max_body_bytes=10 * 1024 * 1024)))
    uncapped = ConnectionLimits(max_connections=1_000_000)
    client_site = client_proxy_site(cast(ClientProxy, proxy), connections=uncapped)
    server_site = server_proxy_site(ServerProxyResource(cast(ServerProxyHandler, object())), connections=uncapped)
    r: Any = reactor
    client_port = r.listenTCP(0, client_site, interface="127.0.0.1")
    server_port = r.listenSSL(0, server_site, PeerTlsOptions(key, cert, server=True), interface="127.0.0.1")

    def step(name: str, snapshot: tracemalloc.Snapshot | None = None) -> tracemalloc.Snapshot:
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
        print(f"{name:>8}: python heap {current / 1e6:7.2f} MB  rss {rss_mb():7.1f} MB  channels {alive(GuardedChannel):5d}"
              f"  requests {alive(BoundedRequest):5d}  open {len(client_site.guard.connections.open)}"
              f"+{len(server_site.guard.connections.open)}")
        return tracemalloc.take_snapshot()

    def run() -> None:
        flood = subprocess.Popen(
            [sys.executable, "-c", FLOOD, str(args.connections), str(client_port.getHost().port),
             str(server_port.getHost().port), "1" if args.handshake else "0", pem.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert flood.stdout is not None and flood.stdin is not None
        flood.stdout.readline()
        wait_for(lambda: len(client_site.guard.connections.open) + len(server_site.guard.connections.open) >= 2 * args.connections)
        threads.blockingCallFromThread(r, lambda: step("open"))
        flood.stdin.write("\n")
        flood.stdin.flush()
        flood.stdout.readline()
        flood.wait()
        wait_for(lambda: not client_site.guard.connections.open and not server_site.guard.connections.open)
        after = threads.blockingCallFromThread(r, lambda: step("closed"))
        trimmers = [site.guard.connections.trimmer for site in (client_site, server_site)]
        wait_for(lambda: all(t is not None and t.trims for t in trimmers))  # proxy/connection_limits.py HeapTrimmer
        threads.blockingCallFromThread(r, lambda: step("trimmed"))
        print("largest differences by line, before -> after the flood:")
        for stat in after.compare_to(before, "lineno")[:12]:
            print("   ", stat)
        r.callFromThread(r.stop)

    def wait_for(condition: Any) -> None:
        import time

        for _ in range(600):
            if threads.blockingCallFromThread(r, condition):
                return
            time.sleep(0.1)

    tracemalloc.start(10)
    before = step("before")
    r.callInThread(run)
    r.run()
    Path(pem.name).unlink()


if __name__ == "__main__":
    main()
