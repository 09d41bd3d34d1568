"""A signature checked with its message's digest taken as signed: a SOAP record logged without its body.

With ``message-body-logging`` off (core/body_logging.py) a SOAP record keeps the message with its ``Body`` emptied,
so the signed digest of the message no longer matches what is logged. :func:`verify_signature_without_message`
makes every check :func:`~security_server.core.signature.verify_signature` makes (structure, hash chain, signing
certificate, signature value over ``SignedInfo``, every other reference's digest) except comparing the logged
message with its digest: that digest, as the signature (or its signed hash chain) states it, is taken as signed,
as the REST form takes its body's digest from the hash chain. What it proves: who signed a message with that
digest, and when; not what the message said.

It reads the signature with :mod:`core.signature`'s own readers (``_read_template``, ``_read``): the same parse,
so the same refusals, without a second XAdES reader. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from security_server.core import hashchain
from security_server.core.digests import DigestAlgorithm
from security_server.core.errors import InvalidSignatureValue, MalformedSignature
from security_server.core.hashchain import MESSAGE
from security_server.core.signature import (
    MAX_SIGNATURE_BYTES,
    VerifiedSignature,
    _check_signature_value,
    _matches,
    _read,
    _read_template,
    _TemplateSignature,
    _TreeSignature,
    verify_signature,
)

NOT_LOGGED_DETAIL = "message body not logged: the message's content (header and body) is not proven"
"""What a verifier says of the message check of such a record."""


@dataclass(frozen=True, slots=True)
class SignedDigest:
    """The message's digest as the signature states it: what was signed in place of the logged message."""

    algorithm: DigestAlgorithm
    digest: bytes


def verify_signature_without_message(
    signature_xml: bytes, resolve: Callable[[str], bytes | None]
) -> tuple[VerifiedSignature, SignedDigest]:
    """Verify ``signature_xml`` with the digest of ``/message.xml`` taken as signed (see the module docstring).

    ``resolve`` maps the other detached URIs to their bytes, as for ``verify_signature``; ``/message.xml`` is never
    asked. Raises :class:`MalformedSignature` or :class:`InvalidSignatureValue` for anything else that is wrong.
    """

    def without_message(uri: str) -> bytes | None:
        return None if uri == MESSAGE else resolve(uri)

    parsed: _TemplateSignature | _TreeSignature | None = _read_template(signature_xml, MAX_SIGNATURE_BYTES)
    if parsed is None:
        parsed = _TreeSignature(_read(signature_xml, MAX_SIGNATURE_BYTES))
    direct = [ref for ref in parsed.references if ref.uri == MESSAGE]
    if not direct:
        # Batch-signed: the message is an input of the signed hash chain, which states its digest.
        verified = verify_signature(
            signature_xml, without_message, expected_parts=[MESSAGE], allow_unresolved_hash_chain_refs=True
        )
        unresolved = verified.hash_chain.unresolved if verified.hash_chain is not None else ()
        stated = [ref for ref in unresolved if ref.uri == MESSAGE]
        if not stated:
            raise MalformedSignature("signature does not cover the message", reason=f"no digest of {MESSAGE!r}")
        return verified, SignedDigest(stated[0].algorithm, stated[0].digest)

    # Signed directly: the same checks as verify_signature, in its order, but for the message's digest.
    detached = [ref for ref in parsed.references if not ref.uri.startswith("#")]
    if any(ref.transforms for ref in detached):
        raise MalformedSignature("transforms on detached references are not supported")
    if len({ref.uri for ref in detached}) != len(detached):
        raise MalformedSignature("signature references one part twice")
    cert_ref = parsed.signing_cert_ref()
    candidates = [cert for cert in parsed.key_info_certs if _matches(cert_ref, cert)]
    if not candidates:
        raise MalformedSignature("SigningCertificate does not match the certificate in the signature")
    signing_cert = candidates[0]
    _check_signature_value(signing_cert, parsed.algorithm, parsed.value, parsed.signed_info_octets())
    for ref in parsed.references:
        if ref.uri == MESSAGE:
            continue  # taken as signed
        if ref.uri.startswith("#"):
            octets = parsed.same_document_octets(ref)
        else:
            data = without_message(ref.uri)
            if data is None:
                raise MalformedSignature(
                    "signed data is missing", reason=f"cannot resolve {ref.uri!r}", subcode=hashchain.INVALID_REFERENCE
                )
            octets = data
        if ref.algorithm.digest(octets) != ref.digest:
            raise InvalidSignatureValue("signature is not valid", reason=f"digest of {ref.uri!r} does not match")
    ocsp, tokens, extra_certs = parsed.unsigned()
    verified = VerifiedSignature(
        signing_cert=signing_cert,
        ocsp_responses=ocsp,
        extra_certs=extra_certs + tuple(cert for cert in parsed.key_info_certs if cert is not signing_cert),
        signing_time=parsed.signing_time(),
        signature_value=parsed.value,
        algorithm=parsed.algorithm,
        references=tuple(ref.uri for ref in detached),
        covered_parts=frozenset(ref.uri for ref in detached),
        timestamp_tokens=tokens,
    )
    return verified, SignedDigest(direct[0].algorithm, direct[0].digest)
