"""The pure core's share of one exchange, in one process, with no network: what each security server computes.

``python bench/core_profile.py [--rounds 5] [--seconds 0.3] [--no-profile]`` times, for a SOAP request and response
of 1 KiB each, signed with RSA-2048 (``RSA_SHA512``, X-Road's default) and with EC P-256 (``ECDSA_SHA512``) keys:

- consumer's server: sign the request, encode the transport message (after the OCSP response of its
  authentication certificate), decode the provider's transport response, verify the response's signature;
- provider's server: decode the transport request, verify the request's signature, sign the response, encode it;
- a batch of 10 messages: build the hash chain alone, sign the batch, verify one member's signature through its chain.

"verify" is :func:`security_server.core.message_trust.verify_message` as the proxies call it (structure, hash chain,
digests, signature value, signer's name, certificate path and OCSP: the trust verdicts remembered, as in a running
server); "verify (signature only)" is :func:`security_server.core.signature.verify_signature` alone. Each figure is
the median over ``--rounds`` rounds of the CPU time per operation (``time.process_time``), so that a busy machine
disturbs it less. Then a cProfile of whole exchanges (both sides) prints the top 20 functions by own time.

The PKI is the test federation's (a development CA with its OCSP responder, certificates under the profile, a
global configuration that approves the CA), made in a temporary directory. This is not a test and never fails on
a slow machine.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.workload import soap_body  # noqa: E402
from security_server.core import hashchain  # noqa: E402
from security_server.core.globalconf import GlobalConf  # noqa: E402
from security_server.core.identifiers import ClientId  # noqa: E402
from security_server.core.message_trust import TrustCache, verify_message  # noqa: E402
from security_server.core.signature import (  # noqa: E402
    ECDSA_SHA512,
    RSA_SHA512,
    PrivateKey,
    SignatureAlgorithm,
    SignatureData,
    sign_batch,
    verify_signature,
)
from security_server.core.soapattachments import part_resolver, signed_parts  # noqa: E402
from security_server.core.transport import (  # noqa: E402
    MessageContent,
    SignedMessage,
    decode_request,
    decode_transport,
    encode_transport,
)

from tests.federation.ca import issue_signing, ocsp_for  # noqa: E402 - the test federation's PKI
from tests.federation.peers import CONSUMER, GOV1, GOV2, PROVIDER, SS1, make_conf, peer_world  # noqa: E402
from tests.federation.pki import ec_key, rsa_key  # noqa: E402

SOAP_TYPE = "text/xml; charset=UTF-8"
BATCH = 10


@dataclass(frozen=True)
class Member:
    """A member's signing key, its certificate and a fresh OCSP response for it."""

    client: ClientId
    key: PrivateKey
    cert: object
    ocsp: bytes


@dataclass(frozen=True)
class Scene:
    """Everything one key type's exchanges need."""

    label: str
    algorithm: SignatureAlgorithm
    consumer: Member
    provider: Member
    auth_ocsp: bytes
    conf: GlobalConf
    trust: TrustCache
    now: object


def scenes() -> list[Scene]:
    """RSA-2048 and EC P-256 signing keys for both members, under the test federation's CA."""
    world = peer_world()
    conf = make_conf(world)
    now = world.now + timedelta(seconds=5)
    auth_ocsp = ocsp_for(world.ca, world.auth_cert(SS1), world.now)
    out = []
    for label, algorithm, new_key in (("RSA-2048", RSA_SHA512, rsa_key), ("EC P-256", ECDSA_SHA512, ec_key)):
        members = []
        for member in (GOV1, GOV2):
            issued = issue_signing(world.ca, member, world.now, key=new_key())
            members.append(Member(member, issued.key, issued.cert, ocsp_for(world.ca, issued.cert, world.now)))
        out.append(Scene(label, algorithm, members[0], members[1], auth_ocsp, conf, TrustCache(), now))
    return out


def sign(scene: Scene, member: Member, messages: list[bytes]) -> tuple[SignatureData, ...]:
    """One signature over ``messages`` (a lone message is signed directly)."""
    return sign_batch(
        [signed_parts(message, ()) for message in messages],
        member.cert,  # type: ignore[arg-type]
        member.key,
        member.ocsp,
        scene.now,  # type: ignore[arg-type]
        algorithm=scene.algorithm,
    )


def verify(scene: Scene, member: Member, client: ClientId, message: bytes, data: SignatureData) -> None:
    """What a proxy checks about a received signed message."""
    verify_message(
        data.signature_xml, message, (), data.hash_chain_result, data.hash_chain, client, scene.conf,
        scene.trust.get(scene.conf), scene.now,  # type: ignore[arg-type]
    )


def operations(scene: Scene) -> dict[str, Callable[[], object]]:
    """The timed operations, by name; each is one call of what a server does once per exchange."""
    request = soap_body(1024, "bench-request")
    response = soap_body(1024, "bench-response").replace(b"benchEcho>", b"benchEchoResponse>")
    request_sig = sign(scene, scene.consumer, [request])[0]
    response_sig = sign(scene, scene.provider, [response])[0]
    request_message = SignedMessage(MessageContent(request, SOAP_TYPE), request_sig, (scene.auth_ocsp,))
    response_message = SignedMessage(MessageContent(response, SOAP_TYPE), response_sig)
    request_wire = encode_transport(request_message)
    response_wire = encode_transport(response_message)
    batch_messages = [soap_body(1024, f"bench-{n}") for n in range(BATCH)]
    batch_digests = [[part.digest for part in signed_parts(message, ())] for message in batch_messages]
    batch = sign(scene, scene.consumer, batch_messages)
    return {
        "consumer: sign request": lambda: sign(scene, scene.consumer, [request]),
        "consumer: encode transport request": lambda: encode_transport(request_message),
        "provider: decode transport request": lambda: decode_request(*request_wire),
        "provider: verify request": lambda: verify(scene, scene.consumer, CONSUMER, request, request_sig),
        "provider: sign response": lambda: sign(scene, scene.provider, [response]),
        "provider: encode transport response": lambda: encode_transport(response_message),
        "consumer: decode transport response": lambda: decode_transport(*response_wire, is_response=True),
        "consumer: verify response": lambda: verify(scene, scene.provider, PROVIDER, response, response_sig),
        "verify (signature only)": lambda: verify_signature(
            request_sig.signature_xml, part_resolver(request, ())
        ),
        f"hash chain build, batch of {BATCH}": lambda: hashchain.build_hash_chain(
            batch_digests, chain_uri=hashchain.SIG_HASH_CHAIN, data_uri=hashchain.MESSAGE,
        ),
        f"sign batch of {BATCH} (per batch)": lambda: sign(scene, scene.consumer, batch_messages),
        "verify one batch member": lambda: verify(scene, scene.consumer, CONSUMER, batch_messages[3], batch[3]),
    }


def exchange(scene: Scene) -> Callable[[], None]:
    """One whole exchange, both servers' core work in order (for the profile)."""
    request = soap_body(1024, "bench-request")
    response = soap_body(1024, "bench-response")

    def run() -> None:
        request_sig = sign(scene, scene.consumer, [request])[0]
        wire = encode_transport(SignedMessage(MessageContent(request, SOAP_TYPE), request_sig, (scene.auth_ocsp,)))
        received = decode_request(*wire)
        verify(scene, scene.consumer, CONSUMER, received.content.message, received.signature)
        response_sig = sign(scene, scene.provider, [response])[0]
        wire = encode_transport(SignedMessage(MessageContent(response, SOAP_TYPE), response_sig))
        answer = decode_transport(*wire, is_response=True)
        assert isinstance(answer, SignedMessage)
        verify(scene, scene.provider, PROVIDER, answer.content.message, answer.signature)

    return run


def time_per_call(call: Callable[[], object], seconds: float) -> float:
    """CPU µs per call over about ``seconds`` of CPU time."""
    call()
    count, started = 0, time.process_time()
    deadline = started + seconds
    while True:
        call()
        count += 1
        spent = time.process_time() - started
        if spent >= seconds or time.process_time() >= deadline:
            return spent / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per operation (the median is printed)")
    parser.add_argument("--seconds", type=float, default=0.3, help="CPU seconds per operation per round")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile of whole exchanges")
    args = parser.parse_args()

    all_scenes = scenes()
    table: dict[str, dict[str, float]] = {}
    for scene in all_scenes:
        ops = operations(scene)
        rounds: dict[str, list[float]] = {name: [] for name in ops}
        for _ in range(args.rounds):  # interleaved, so that a busy spell slows every operation alike
            for name, call in ops.items():
                rounds[name].append(time_per_call(call, args.seconds))
        table[scene.label] = {name: statistics.median(values) for name, values in rounds.items()}

    labels = [scene.label for scene in all_scenes]
    names = list(table[labels[0]])
    width = max(len(name) for name in names) + 2
    print(f"CPU µs per operation, median of {args.rounds} rounds, SOAP 1 KiB")
    print(f"{'operation':<{width}}" + "".join(f"{label:>12}" for label in labels))
    for name in names:
        print(f"{name:<{width}}" + "".join(f"{table[label][name]:>12.1f}" for label in labels))
    for side, prefix in (("consumer's server", "consumer:"), ("provider's server", "provider:")):
        totals = [sum(v for n, v in table[label].items() if n.startswith(prefix)) for label in labels]
        print(f"{'total, ' + side:<{width}}" + "".join(f"{total:>12.1f}" for total in totals))

    if args.no_profile:
        return
    for scene in all_scenes:
        run = exchange(scene)
        run()
        profiler = cProfile.Profile()
        count, started = 0, time.process_time()
        profiler.enable()
        while time.process_time() - started < 2.0:
            run()
            count += 1
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(20)
        print(f"\ncProfile, {scene.label}: {count} whole exchanges (both servers' core work), top 20 by own time")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


if __name__ == "__main__":
    main()
