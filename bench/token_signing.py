"""What an HSM costs per message: XAdES signing with a soft key vs a key in SoftHSM2, alone and in batches of 10.

Each figure is the time of ``sign_batch`` (core/signature.py: digests, hash chain, XAdES, the signature itself) per
message, the median of several rounds, measured in one run on this machine; the ratios are what to read. A network
HSM adds its round trip (typically 1-10 ms) to every *signature*, which is what batch signing divides by the batch
size. The worker-thread hop that keeps a token off the reactor (signer/token_workers.py) is measured too.

Run: ``python bench/token_signing.py [--rounds 7] [--messages 200]`` (needs SoftHSM2: ``apt-get install softhsm2``).
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from security_server.core.signature import MessagePart, sign_batch
from security_server.core.soapattachments import signed_parts
from security_server.signer.pkcs11_config import Pkcs11TokenConfig, SignMechanism
from security_server.signer.pkcs11_key import signature_algorithm_for
from security_server.signer.pkcs11_token import Pkcs11Token
from security_server.signer.token import PrivateKey

MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
PIN = "123456"
NOW = datetime.now(UTC)
OCSP_PLACEHOLDER = b"\x30\x03\x0a\x01\x00"  # the bytes are only embedded; their size does not change the cost
MESSAGE = b"<SOAP-ENV:Envelope>" + b"x" * 2000 + b"</SOAP-ENV:Envelope>"


def _cert(key: PrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench signing key")])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1)).sign(key, hashes.SHA256())
    )


def _softhsm_key(root: Path, mechanism: SignMechanism) -> PrivateKey:
    module = next((m for m in MODULES if Path(m).is_file()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        sys.exit("SoftHSM2 is not installed (apt-get install softhsm2)")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", PIN, "--so-pin", "87654321"],
        check=True, capture_output=True,
    )
    token = Pkcs11Token(
        Pkcs11TokenConfig(name="bench", library=module, token_label="bench", pin_env="PIN", sign_mechanism=mechanism),
        environ={"PIN": PIN},
    )
    return token.generate_labelled("bench signing key")


def _per_message_us(key: PrivateKey, batch: int, messages: int, rounds: int) -> float:
    cert = _cert(key)
    algorithm = signature_algorithm_for(key)
    parts: list[list[MessagePart]] = [signed_parts(MESSAGE + str(i).encode(), ()) for i in range(batch)]
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(messages // batch):
            sign_batch(parts, cert, key, OCSP_PLACEHOLDER, NOW, algorithm=algorithm)
        timings.append((time.perf_counter() - started) / (messages // batch * batch))
    return statistics.median(timings) * 1e6


def _thread_hop_us(rounds: int, hops: int) -> float:
    """A call handed to a worker thread and its answer handed back (two queue passes), as TokenWorkers does."""
    jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
    answers: queue.SimpleQueue[int] = queue.SimpleQueue()

    def loop() -> None:
        while (job := jobs.get()) is not None:
            job()

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(hops):
            jobs.put(lambda i=i: answers.put(i))  # type: ignore[misc]
            answers.get()
        timings.append((time.perf_counter() - started) / hops)
    jobs.put(None)
    return statistics.median(timings) * 1e6


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=200, help="messages signed per round (a multiple of 10)")
    args = parser.parse_args()
    soft = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory(prefix="fedbus-bench-softhsm-") as folder:
        hsm = _softhsm_key(Path(folder), SignMechanism.RSA_PKCS)
        rows = []
        for label, key in (("soft key (RSA 2048, in memory)", soft), ("SoftHSM2 key (RSA 2048, CKM_RSA_PKCS)", hsm)):
            alone = _per_message_us(key, 1, args.messages, args.rounds)
            batched = _per_message_us(key, 10, args.messages, args.rounds)
            rows.append((label, alone, batched))
        hop = _thread_hop_us(args.rounds, 2000)
    print(f"XAdES signing, microseconds per message (median of {args.rounds} rounds of {args.messages} messages)")
    print(f"{'key':40} {'alone':>10} {'batch of 10':>12} {'batch gain':>11}")
    for label, alone, batched in rows:
        print(f"{label:40} {alone:10.0f} {batched:12.0f} {alone / batched:10.1f}x")
    (_, soft_alone, soft_batch), (_, hsm_alone, hsm_batch) = rows
    print(f"SoftHSM2 / soft: {hsm_alone / soft_alone:.2f}x alone, {hsm_batch / soft_batch:.2f}x in batches of 10")
    print(f"worker-thread hop (token calls leave the reactor): {hop:.0f} us per signature, not per message")


if __name__ == "__main__":
    main()
