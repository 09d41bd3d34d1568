"""RFC 3161 time-stamp queries, responses and tokens: build, read and verify, without I/O.

The message log timestamps a digest (an imprint) of what it logged (XROAD-REFERENCE.md §4.5: batch tokens
cover SHA-512 of the hash-chain result, single ones SHA-512 of the signature value). An auditor must be able to
check such a token years later, so :func:`verify_timestamp_token` checks everything a token carries:

* the token is CMS SignedData over a TSTInfo (RFC 3161 §2.4.2, RFC 5652 §5) with one signer;
* the signed attributes hold content-type id-ct-TSTInfo and the digest of the TSTInfo (RFC 5652 §11.1, §11.2),
  and a signing-certificate attribute (ESSCertID, RFC 2634 §5.4, or ESSCertIDv2, RFC 5035) naming the signer
  certificate by hash (RFC 3161 §2.4.1);
* the signature over the signed attributes verifies with the signer certificate;
* the signer certificate is one of the approved TSA certificates of the global configuration (or issued by
  one), carries the critical extendedKeyUsage id-kp-timeStamping (RFC 3161 §2.3), and was valid at genTime;
* the imprint equals the one expected; genTime is not in our future beyond the clock-skew tolerance.

Structures are decoded and encoded with asn1crypto; signatures are checked with cryptography.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import tsp as asn1_tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from security_server.core.errors import IncorrectValidationInfo, InternalError
from security_server.core.trust import (
    CERT_DECODE_ERRORS,
    DEFAULT_CLOCK_SKEW_SECONDS,
    describe,
    is_issued_by,
    is_tsa_cert,
    signature_is_valid,
)

HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
"""Imprint and CMS digest algorithms we accept, by asn1crypto name (also what ``openssl ts`` prints)."""

DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
"""Digest length in bytes of each accepted algorithm."""

# What asn1crypto and cryptography raise for bytes that are not the structure they claim to be. asn1crypto
# parses lazily, so these can surface on any field access, not only on load().
_DECODE_ERRORS: tuple[type[Exception], ...] = (*CERT_DECODE_ERRORS, KeyError, IndexError, OverflowError, AttributeError)


@dataclass(frozen=True, slots=True)
class TimestampInfo:
    """What a time-stamp token says: when, which serial, over which imprint."""

    gen_time: datetime
    serial: int
    hash_algorithm: str
    imprint: bytes
    policy: str
    nonce: int | None = None

    def __post_init__(self) -> None:
        if self.gen_time.tzinfo is None:
            raise ValueError("gen_time must be timezone-aware")
        if self.hash_algorithm not in HASH_ALGORITHMS:
            raise ValueError(f"unsupported imprint algorithm {self.hash_algorithm}")
        if len(self.imprint) != DIGEST_SIZES[self.hash_algorithm]:
            raise ValueError("imprint length does not match its algorithm")


@dataclass(frozen=True, slots=True)
class TimestampToken:
    """A decoded TimeStampResp (RFC 3161 §2.4.2): the PKIStatusInfo and, when granted, the token bytes."""

    status: int
    status_strings: tuple[str, ...]
    fail_info: tuple[str, ...]
    token_der: bytes | None

    def __post_init__(self) -> None:
        if self.granted and self.token_der is None:
            raise ValueError("a granted response carries a token")

    @property
    def granted(self) -> bool:
        """Whether the TSA granted the request (status granted or grantedWithMods)."""
        return self.status in (0, 1)


# --- queries ----------------------------------------------------------------------------------------------


def build_timestamp_query(
    imprint_digest: bytes,
    hash_alg: str = "sha512",
    nonce: int | None = None,
    cert_req: bool = True,
    policy: str | None = None,
) -> bytes:
    """DER TimeStampReq (RFC 3161 §2.4.1) for a digest already computed with ``hash_alg``."""
    if hash_alg not in HASH_ALGORITHMS:
        raise InternalError(f"unsupported imprint algorithm {hash_alg}")
    if len(imprint_digest) != DIGEST_SIZES[hash_alg]:
        raise InternalError(f"imprint is {len(imprint_digest)} bytes, {hash_alg} digests are {DIGEST_SIZES[hash_alg]}")
    if nonce is not None and nonce < 0:
        raise InternalError("nonce must not be negative")
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": hash_alg}, "hashed_message": imprint_digest},
        "cert_req": cert_req,
    }
    if policy is not None:
        fields["req_policy"] = policy
    if nonce is not None:
        fields["nonce"] = nonce
    return bytes(asn1_tsp.TimeStampReq(fields).dump())


# --- responses and tokens -----------------------------------------------------------------------------------


class TimeStampResp(asn1_core.Sequence):  # type: ignore[misc]
    """RFC 3161 §2.4.2 TimeStampResp, whose token is OPTIONAL (asn1crypto's own class makes it required)."""

    _fields = [
        ("status", asn1_tsp.PKIStatusInfo),
        ("time_stamp_token", asn1_cms.ContentInfo, {"optional": True}),
    ]


_PKI_STATUS = {name: number for number, name in asn1_tsp.PKIStatus._map.items()}


def parse_timestamp_response(der: bytes) -> TimestampToken:
    """Decode a TimeStampResp; :class:`IncorrectValidationInfo` if it is not one. The token is not verified here."""
    try:
        response = TimeStampResp.load(der, strict=True)
        status_info = response["status"]
        status_name = status_info["status"].native
        status = _PKI_STATUS[status_name] if isinstance(status_name, str) else int(status_name)
        strings = tuple(str(s) for s in (status_info["status_string"].native or ()))
        fail_bits = status_info["fail_info"].native
        fail_info = tuple(sorted(str(bit) for bit in fail_bits)) if fail_bits else ()
        token = response["time_stamp_token"]
        token_der = None if isinstance(token, asn1_core.Void) else bytes(token.dump())
    except _DECODE_ERRORS as err:
        raise IncorrectValidationInfo("time-stamp response cannot be decoded", reason=str(err)) from err
    if status in (0, 1) and token_der is None:
        raise IncorrectValidationInfo("time-stamp response is granted but carries no token")
    return TimestampToken(status=status, status_strings=strings, fail_info=fail_info, token_der=token_der)


@dataclass(frozen=True, slots=True)
class _SignedToken:
    """The parts of a decoded token that verification needs."""

    info: TimestampInfo
    tst_info_der: bytes
    certificates: tuple[x509.Certificate, ...]
    signer_id: Any
    digest_algorithm: str
    signature_algorithm: Any
    signature: bytes
    signed_attrs_der: bytes
    content_type: str | None
    message_digest: bytes | None
    ess_cert_ids: tuple[tuple[str, bytes], ...]


def _attribute_values(signed_attrs: Any, name: str) -> list[Any]:
    values: list[Any] = []
    for attribute in signed_attrs:
        if attribute["type"].native == name:
            values.extend(attribute["values"])
    return values


def _decode_info(tst_info: Any) -> TimestampInfo:
    imprint = tst_info["message_imprint"]
    nonce = tst_info["nonce"].native
    return TimestampInfo(
        gen_time=tst_info["gen_time"].native,
        serial=int(tst_info["serial_number"].native),
        hash_algorithm=str(imprint["hash_algorithm"]["algorithm"].native),
        imprint=bytes(imprint["hashed_message"].native),
        policy=str(tst_info["policy"].dotted),
        nonce=int(nonce) if nonce is not None else None,
    )


def _digest_name(algorithm: Any) -> str:
    """The name of a known digest AlgorithmIdentifier whose parameters are absent or NULL (RFC 5754 §2)."""
    name = algorithm["algorithm"].native
    if name not in HASH_ALGORITHMS:
        raise IncorrectValidationInfo(f"time-stamp token uses digest algorithm {name}")
    if not isinstance(algorithm["parameters"], (asn1_core.Void, asn1_core.Null)):
        raise IncorrectValidationInfo("time-stamp token digest algorithm has unexpected parameters")
    return str(name)


def _load_certificate(der: bytes) -> x509.Certificate:
    """Load a certificate from a token and decode now every field verification reads (cryptography is lazy)."""
    cert = x509.load_der_x509_certificate(der)
    _ = (cert.subject, cert.issuer, cert.extensions, cert.public_key(), cert.not_valid_before_utc, cert.not_valid_after_utc)
    return cert


def _decode_token(token_der: bytes) -> _SignedToken:
    try:
        content_info = asn1_cms.ContentInfo.load(token_der, strict=True)
        if content_info["content_type"].native != "signed_data":
            raise IncorrectValidationInfo("time-stamp token is not CMS SignedData")
        signed_data = content_info["content"]
        encap = signed_data["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise IncorrectValidationInfo("time-stamp token does not hold a TSTInfo")
        content = encap["content"]
        if isinstance(content, asn1_core.Void):
            raise IncorrectValidationInfo("time-stamp token has no encapsulated TSTInfo")
        tst_info_der = bytes(content)
        tst_info = asn1_tsp.TSTInfo.load(tst_info_der, strict=True)
        info = _decode_info(tst_info)
        signer_infos = list(signed_data["signer_infos"])
        if len(signer_infos) != 1:
            raise IncorrectValidationInfo(f"time-stamp token has {len(signer_infos)} signers, not one")
        signer_info = signer_infos[0]
        # Structure rules of RFC 5652 checked strictly, so no unsigned byte of the token can change unnoticed:
        # SignedData is v3 when eContentType is not id-data (§5.1); SignerInfo is v1 with issuerAndSerialNumber
        # and v3 with subjectKeyIdentifier (§5.3); the signer's digest is among digestAlgorithms.
        if signed_data["version"].native != "v3":
            raise IncorrectValidationInfo("time-stamp token SignedData is not version 3")
        expected_version = "v1" if signer_info["sid"].name == "issuer_and_serial_number" else "v3"
        if signer_info["version"].native != expected_version:
            raise IncorrectValidationInfo("time-stamp token SignerInfo has the wrong version")
        digest_names = [_digest_name(algorithm) for algorithm in signed_data["digest_algorithms"]]
        if _digest_name(signer_info["digest_algorithm"]) not in digest_names:
            raise IncorrectValidationInfo("time-stamp token does not list its signer's digest algorithm")
        signed_data.native  # decode every field now (asn1crypto is lazy), so a damaged unused field is refused too
        certificates: list[x509.Certificate] = []
        for choice in signed_data["certificates"] or ():
            if choice.name != "certificate":
                raise IncorrectValidationInfo(f"time-stamp token carries a {choice.name}, not a certificate")
            certificates.append(_load_certificate(bytes(choice.chosen.dump())))
        signed_attrs = signer_info["signed_attrs"]
        if not signed_attrs.native:
            raise IncorrectValidationInfo("time-stamp token has no signed attributes")
        # RFC 5652 §5.4: the signature covers the DER of the attributes with the SET OF tag, not the [0] tag.
        signed_attrs_der = b"\x31" + bytes(signed_attrs.dump())[1:]
        content_types = _attribute_values(signed_attrs, "content_type")
        digests = _attribute_values(signed_attrs, "message_digest")
        ess: list[tuple[str, bytes]] = []
        for value in _attribute_values(signed_attrs, "signing_certificate_v2"):
            for cert_id in value["certs"]:
                ess.append((str(cert_id["hash_algorithm"]["algorithm"].native), bytes(cert_id["cert_hash"].native)))
        for value in _attribute_values(signed_attrs, "signing_certificate"):
            for cert_id in value["certs"]:
                ess.append(("sha1", bytes(cert_id["cert_hash"].native)))
        return _SignedToken(
            info=info,
            tst_info_der=tst_info_der,
            certificates=tuple(certificates),
            signer_id=signer_info["sid"],
            digest_algorithm=str(signer_info["digest_algorithm"]["algorithm"].native),
            signature_algorithm=signer_info["signature_algorithm"],
            signature=bytes(signer_info["signature"].native),
            signed_attrs_der=signed_attrs_der,
            content_type=str(content_types[0].native) if len(content_types) == 1 else None,
            message_digest=bytes(digests[0].native) if len(digests) == 1 else None,
            ess_cert_ids=tuple(ess),
        )
    except _DECODE_ERRORS as err:
        raise IncorrectValidationInfo("time-stamp token cannot be decoded", reason=str(err)) from err


def read_timestamp_token(token_der: bytes) -> TimestampInfo:
    """What a token claims, without verifying it (for display and for matching before verification)."""
    return _decode_token(token_der).info


# --- verification -------------------------------------------------------------------------------------------


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _matches_signer_id(cert: x509.Certificate, signer_id: Any) -> bool:
    """Whether ``cert`` is the one the SignerInfo's sid names (RFC 5652 §5.3)."""
    try:
        if signer_id.name == "issuer_and_serial_number":
            # byte-exact: the sid is not signed, and a signer copies the issuer from its certificate
            wanted = signer_id.chosen
            parsed = asn1_x509.Certificate.load(_der(cert))
            return bool(
                parsed.issuer.dump() == wanted["issuer"].dump()
                and parsed.serial_number == wanted["serial_number"].native
            )
        if signer_id.name == "subject_key_identifier":
            parsed = asn1_x509.Certificate.load(_der(cert))
            key_id = parsed.key_identifier or parsed.public_key.sha1
            return bool(key_id == signer_id.chosen.native)
    except _DECODE_ERRORS:
        return False
    return False


def _signature_ok(token: _SignedToken, signer: x509.Certificate) -> bool:
    try:
        algorithm = token.signature_algorithm
        scheme = algorithm.signature_algo
        hash_cls = HASH_ALGORITHMS.get(token.digest_algorithm)
        if algorithm["algorithm"].native not in ("rsassa_pkcs1v15", "rsassa_pss", "ecdsa", "ed25519", "ed448"):
            # an OID like sha256WithRSAEncryption names its hash too; it must be the SignerInfo's digest
            if algorithm.hash_algo != token.digest_algorithm:
                return False
        if scheme == "rsassa_pss":
            params = algorithm["parameters"]
            pss_hash = HASH_ALGORITHMS.get(str(params["hash_algorithm"]["algorithm"].native))
            if pss_hash is None:
                return False
            return signature_is_valid(
                signer.public_key(),
                token.signature,
                token.signed_attrs_der,
                pss_hash(),
                pss_salt_length=int(params["salt_length"].native),
            )
        if scheme in ("ed25519", "ed448"):
            return signature_is_valid(signer.public_key(), token.signature, token.signed_attrs_der, None)
        if scheme not in ("rsassa_pkcs1v15", "ecdsa") or hash_cls is None:
            return False
        return signature_is_valid(signer.public_key(), token.signature, token.signed_attrs_der, hash_cls())
    except _DECODE_ERRORS:
        return False


def _ess_matches(token: _SignedToken, signer: x509.Certificate) -> bool:
    """The first ESSCertID names the signer certificate (RFC 3161 §2.4.1; RFC 5035 §3)."""
    if not token.ess_cert_ids:
        return False
    algorithm, cert_hash = token.ess_cert_ids[0]
    if algorithm == "sha1":
        expected = hashlib.sha1(_der(signer)).digest()
    elif algorithm in HASH_ALGORITHMS:
        expected = hashlib.new(algorithm, _der(signer)).digest()
    else:
        return False
    return hmac.compare_digest(expected, cert_hash)


def _approved(
    signer: x509.Certificate, approved: Sequence[x509.Certificate], at: datetime
) -> bool:
    """Whether ``signer`` is an approved TSA certificate, or was issued by one valid at ``at``."""
    signer_der = _der(signer)
    if any(_der(cert) == signer_der for cert in approved):
        return True
    return any(
        is_issued_by(signer, cert) and cert.not_valid_before_utc <= at <= cert.not_valid_after_utc
        for cert in approved
    )


def verify_timestamp_token(
    token_der: bytes,
    expected_imprint: bytes,
    approved_tsa_certs: Sequence[x509.Certificate],
    now: datetime,
    *,
    expected_hash_algorithm: str | None = None,
    expected_nonce: int | None = None,
    skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS,
    max_age_seconds: float | None = None,
) -> TimestampInfo:
    """Verify a time-stamp token over ``expected_imprint`` from an approved TSA; return what it says.

    ``approved_tsa_certs`` are the global configuration's ``approvedTSA`` certificates. ``max_age_seconds``,
    when given, also refuses a token whose genTime is older than that before ``now`` (for a token just
    requested, where a TSA clock far behind ours is a fault). Raises :class:`IncorrectValidationInfo`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    token = _decode_token(token_der)
    try:
        return _verify(
            token,
            expected_imprint,
            approved_tsa_certs,
            now,
            expected_hash_algorithm=expected_hash_algorithm,
            expected_nonce=expected_nonce,
            skew_seconds=skew_seconds,
            max_age_seconds=max_age_seconds,
        )
    except _DECODE_ERRORS as err:
        raise IncorrectValidationInfo("time-stamp token cannot be verified", reason=str(err)) from err


def _verify(
    token: _SignedToken,
    expected_imprint: bytes,
    approved_tsa_certs: Sequence[x509.Certificate],
    now: datetime,
    *,
    expected_hash_algorithm: str | None,
    expected_nonce: int | None,
    skew_seconds: float,
    max_age_seconds: float | None,
) -> TimestampInfo:
    info = token.info
    if expected_hash_algorithm is not None and info.hash_algorithm != expected_hash_algorithm:
        raise IncorrectValidationInfo(
            "time-stamp token uses another imprint algorithm",
            reason=f"{info.hash_algorithm}, expected {expected_hash_algorithm}",
        )
    if not hmac.compare_digest(info.imprint, expected_imprint):
        raise IncorrectValidationInfo("time-stamp token is for another imprint")
    if expected_nonce is not None and info.nonce != expected_nonce:
        raise IncorrectValidationInfo("time-stamp token does not carry our nonce")
    if token.content_type != "tst_info":
        raise IncorrectValidationInfo("time-stamp token lacks the content-type attribute id-ct-TSTInfo")
    digest_cls = HASH_ALGORITHMS.get(token.digest_algorithm)
    if digest_cls is None:
        raise IncorrectValidationInfo(f"time-stamp token uses digest {token.digest_algorithm}")
    digest = hashes.Hash(digest_cls())
    digest.update(token.tst_info_der)
    if token.message_digest is None or not hmac.compare_digest(digest.finalize(), token.message_digest):
        raise IncorrectValidationInfo("time-stamp token's message-digest attribute does not match its TSTInfo")
    # RFC 3161 §2.4.1: a token made for certReq=true carries the TSA certificate, and then the signer must be
    # that one; only a token without certificates is matched against the approved certificates themselves.
    candidates = token.certificates or tuple(approved_tsa_certs)
    signers = [cert for cert in candidates if _matches_signer_id(cert, token.signer_id)]
    if not signers:
        raise IncorrectValidationInfo(
            "time-stamp token is not from an approved TSA",
            reason="no certificate in the token (or, if it has none, no approved one) is its signer",
        )
    signer = signers[0]
    if not _approved(signer, approved_tsa_certs, info.gen_time):
        raise IncorrectValidationInfo(
            "time-stamp token is not from an approved TSA", reason=f"signer {describe(signer)}"
        )
    if not is_tsa_cert(signer):
        raise IncorrectValidationInfo(
            "time-stamp token signer is not a TSA",
            reason="signer certificate lacks the critical extendedKeyUsage id-kp-timeStamping",
        )
    if not signer.not_valid_before_utc <= info.gen_time <= signer.not_valid_after_utc:
        raise IncorrectValidationInfo(
            "TSA certificate was not valid at the time-stamp's genTime", reason=f"genTime {info.gen_time.isoformat()}"
        )
    if not _ess_matches(token, signer):
        raise IncorrectValidationInfo("time-stamp token's signing-certificate attribute does not name its signer")
    if not _signature_ok(token, signer):
        raise IncorrectValidationInfo("time-stamp token signature does not verify")
    # Clock skew: a genTime in our future beyond the tolerance means one of the clocks is wrong.
    if info.gen_time > now + timedelta(seconds=skew_seconds):
        raise IncorrectValidationInfo(
            "time-stamp is from the future",
            reason=f"genTime {info.gen_time.isoformat()} is after {now.isoformat()} plus {skew_seconds} s",
        )
    if max_age_seconds is not None and info.gen_time < now - timedelta(seconds=max_age_seconds):
        raise IncorrectValidationInfo(
            "time-stamp is older than expected",
            reason=f"genTime {info.gen_time.isoformat()} is more than {max_age_seconds} s before {now.isoformat()}",
        )
    return info
