"""Tests for the signed directory (security_server/core/globalconf/directory.py): build, parse, verify, tamper."""

from __future__ import annotations

import base64
import functools
from datetime import timedelta
from typing import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from security_server.core.errors import (
    BusError,
    ConfigurationAnchorMismatch,
    ConfigurationHashMismatch,
    ConfigurationInstanceMismatch,
    ConfigurationSignatureInvalid,
    GlobalConfOutdated,
    InvalidConfiguration,
)
from security_server.core.globalconf import (
    CONFIGURATION_VERSION,
    PRIVATE_PARAMETERS,
    SHARED_PARAMETERS,
    AnchorSource,
    ConfigurationAnchor,
    DirectoryEntry,
    SharedParameters,
    VerifiedDirectory,
    assemble_global_conf,
    build_private_parameters,
    build_shared_parameters,
    build_signed_directory,
    parse_signed_directory,
    verify_part,
    verify_signed_directory,
)
from security_server.core.globalconf.algorithms import (
    ECDSA_SHA256_URI,
    RSA_PSS_SHA512_URI,
    RSA_SHA256_URI,
    SHA256_URI,
)
from security_server.core.globalconf.directory import build_directory
from security_server.schemafiles import load_schema
from tests.federation.gconf import (
    NOW,
    other_signer,
    sample_private_parameters,
    sample_shared_parameters,
    shared_parameters,
    signer,
)
from tests.federation.pki import Issued, ec_issued

EXPIRES = NOW + timedelta(seconds=600)
SHARED_LOCATION = "/V3/20260601120000/shared-params.xml"
PRIVATE_LOCATION = "/V3/20260601120000/private-params.xml"


def anchor_for(*issued: Issued, instance: str = "DEV") -> ConfigurationAnchor:
    """An anchor of ``instance`` trusting the given certificates."""
    return ConfigurationAnchor(instance, (AnchorSource("http://registry/internalconf", tuple(i.der for i in issued)),))


def files(sp: SharedParameters | None = None, instance: str = "DEV") -> dict[str, bytes]:
    """The shared and private parameters files of the sample (or of ``sp``), by location."""
    shared = sp if sp is not None else sample_shared_parameters(instance)
    return {
        PRIVATE_LOCATION: build_private_parameters(
            sample_private_parameters(shared.instance), load_schema("private-parameters.xsd")
        ),
        SHARED_LOCATION: build_shared_parameters(shared, load_schema("shared-parameters.xsd")),
    }


def entries_for(contents: dict[str, bytes], instance: str = "DEV") -> list[DirectoryEntry]:
    """Directory entries for the private and shared parameters files."""
    return [
        DirectoryEntry.for_content(PRIVATE_PARAMETERS, instance, PRIVATE_LOCATION, contents[PRIVATE_LOCATION]),
        DirectoryEntry.for_content(SHARED_PARAMETERS, instance, SHARED_LOCATION, contents[SHARED_LOCATION]),
    ]


def signed(contents: dict[str, bytes] | None = None, instance: str = "DEV") -> tuple[str, bytes]:
    """A directory of the sample files, signed by the registry signer."""
    contents = contents if contents is not None else files(instance=instance)
    entries = entries_for(contents, instance)
    return build_signed_directory(entries, EXPIRES, CONFIGURATION_VERSION, signer().key, signer().der)


@functools.cache
def signed_sample() -> tuple[str, bytes]:
    """The sample directory, signed once per test process."""
    return signed()


def verify(content_type: str, body: bytes, anchor: ConfigurationAnchor | None = None) -> VerifiedDirectory:
    """Parse and verify against the registry's anchor at NOW."""
    return verify_signed_directory(parse_signed_directory(content_type, body), anchor or anchor_for(signer()), NOW)


def flip(body: bytes, marker: bytes, offset: int = 0) -> bytes:
    """``body`` with one byte changed, ``offset`` bytes after the first ``marker``."""
    position = body.index(marker) + offset
    data = bytearray(body)
    data[position] = ord("A") if data[position] != ord("A") else ord("B")
    return bytes(data)


def test_signed_directory_verifies_and_lists_its_parts() -> None:
    """A directory we build verifies against the anchor; its entries, expiry and version come back."""
    content_type, body = signed()
    assert content_type.startswith("multipart/related;")
    verified = verify(content_type, body)
    assert verified.instance == "DEV" and verified.expires_at == EXPIRES and verified.version == CONFIGURATION_VERSION
    assert verified.verification_cert == signer().der
    shared = verified.entry(SHARED_PARAMETERS)
    assert shared is not None and shared.content_location == SHARED_LOCATION
    assert verified.entry(PRIVATE_PARAMETERS, "EE") is None
    assert not verified.is_expired(NOW) and verified.is_expired(EXPIRES)


def test_directory_headers_follow_the_protocol() -> None:
    """The wire form carries the header names and values of pr-gconf §2.3-§2.4."""
    _, body = signed()
    for line in (
        b"Expire-date: 2026-06-01T12:10:00Z\r\n",
        b"Version: 3\r\n",
        b"Content-type: application/octet-stream\r\n",
        b"Content-transfer-encoding: base64\r\n",
        b'Content-identifier: SHARED-PARAMETERS; instance="DEV"\r\n',
        b'Content-identifier: PRIVATE-PARAMETERS; instance="DEV"\r\n',
        b"Content-location: " + SHARED_LOCATION.encode() + b"\r\n",
        b"Hash-algorithm-id: http://www.w3.org/2001/04/xmlenc#sha512\r\n",
        b"Signature-Algorithm-Id: http://www.w3.org/2001/04/xmldsig-more#rsa-sha512\r\n",
        b'; hash-algorithm-id="http://www.w3.org/2001/04/xmlenc#sha512"\r\n',
    ):
        assert line in body


def test_signature_covers_exactly_the_directory_body() -> None:
    """The signature part verifies, with the signer's public key, over the inner multipart body alone."""
    content_type, body = signed()
    directory = parse_signed_directory(content_type, body)
    _, inner = build_directory(entries_for(files()), EXPIRES, CONFIGURATION_VERSION)
    assert directory.signed_data == inner
    public_key = signer().cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(directory.signature, inner, padding.PKCS1v15(), hashes.SHA512())


def test_building_twice_gives_the_same_bytes() -> None:
    """Build output is deterministic (RSA PKCS#1 v1.5 signatures are)."""
    assert signed() == signed()


def test_flipped_byte_in_the_directory_part_is_a_bad_signature() -> None:
    """One changed byte inside the signed directory (expiry, digest, location) fails the signature check."""
    content_type, body = signed()
    for marker, offset in ((b"Expire-date: ", 14), (b"Content-location: ", 20), (b"Hash-algorithm-id: ", 90)):
        with pytest.raises(ConfigurationSignatureInvalid):
            verify(content_type, flip(body, marker, offset))


def test_flipped_byte_in_the_signature_is_a_bad_signature() -> None:
    """One changed base64 character of the signature fails the signature check."""
    content_type, body = signed()
    with pytest.raises(ConfigurationSignatureInvalid):
        verify(content_type, flip(body, b'xmlenc#sha512"\r\n\r\n', 30))


def test_flipped_byte_in_a_part_fails_its_hash() -> None:
    """A configuration file with one changed byte does not match its directory digest."""
    contents = files()
    verified = verify(*signed(contents))
    entry = verified.entry(SHARED_PARAMETERS)
    assert entry is not None
    verify_part(entry, contents[SHARED_LOCATION])
    tampered = flip(contents[SHARED_LOCATION], b"<name>Ministry")
    with pytest.raises(ConfigurationHashMismatch):
        verify_part(entry, tampered)
    with pytest.raises(ConfigurationHashMismatch):
        assemble_global_conf(verified, {**contents, SHARED_LOCATION: tampered})


def test_every_truncation_is_refused() -> None:
    """A directory cut short anywhere before its close delimiter is refused as malformed."""
    content_type, body = signed()
    for cut in range(0, len(body) - 2, 7):
        with pytest.raises(InvalidConfiguration):
            parse_signed_directory(content_type, body[:cut])


def test_directory_for_another_instance_is_refused() -> None:
    """A validly signed directory of instance EE does not pass for the DEV anchor."""
    content_type, body = signed(instance="EE")
    with pytest.raises(ConfigurationInstanceMismatch):
        verify(content_type, body)
    assert verify(content_type, body, anchor_for(signer(), instance="EE")).instance == "EE"


def test_private_parameters_of_another_instance_are_refused() -> None:
    """A directory that carries another instance's private parameters is refused even beside our shared ones."""
    contents = files()
    entries = entries_for(contents)
    entries.append(DirectoryEntry.for_content(PRIVATE_PARAMETERS, "EE", "/ee-private.xml", b"x"))
    content_type, body = build_signed_directory(entries, EXPIRES, 3, signer().key, signer().der)
    with pytest.raises(ConfigurationInstanceMismatch):
        verify(content_type, body)


def test_expired_directory_is_outdated() -> None:
    """At or after Expire-date the directory is refused with GlobalConfOutdated."""
    content_type, body = signed()
    directory = parse_signed_directory(content_type, body)
    for now in (EXPIRES, EXPIRES + timedelta(days=1)):
        with pytest.raises(GlobalConfOutdated):
            verify_signed_directory(directory, anchor_for(signer()), now)
    assert verify_signed_directory(directory, anchor_for(signer()), EXPIRES - timedelta(microseconds=1))


def test_anchor_that_does_not_match_is_refused() -> None:
    """A directory signed by a key the anchor does not list is refused before any content is read."""
    content_type, body = signed()
    with pytest.raises(ConfigurationAnchorMismatch):
        verify(content_type, body, anchor_for(other_signer()))
    assert verify(content_type, body, anchor_for(other_signer(), signer())).instance == "DEV"


def test_signature_by_another_key_under_the_anchor_cert_is_refused() -> None:
    """Naming the anchor's certificate while signing with another key fails the signature check."""
    other_key = other_signer().key

    def forge(data: bytes) -> bytes:
        assert isinstance(other_key, rsa.RSAPrivateKey)
        return other_key.sign(data, padding.PKCS1v15(), hashes.SHA512())

    content_type, body = build_signed_directory(entries_for(files()), EXPIRES, 3, forge, signer().der)
    with pytest.raises(ConfigurationSignatureInvalid):
        verify(content_type, body)


@pytest.mark.parametrize("algorithm", [RSA_SHA256_URI, RSA_PSS_SHA512_URI])
def test_other_rsa_signature_algorithms_verify(algorithm: str) -> None:
    """RSA PKCS#1 v1.5 with SHA-256 and RSA-PSS with SHA-512 are accepted, with a SHA-256 certificate hash."""
    content_type, body = build_signed_directory(
        entries_for(files()), EXPIRES, 3, signer().key, signer().der,
        signature_algorithm_id=algorithm, cert_hash_algorithm_id=SHA256_URI,
    )
    assert verify(content_type, body).instance == "DEV"


def test_ecdsa_signed_directory_verifies() -> None:
    """A directory signed with an EC key (DER-encoded ECDSA) verifies against an anchor holding its cert."""
    ec_signer = ec_issued("EC registry signer")
    content_type, body = build_signed_directory(
        entries_for(files()), EXPIRES, 3, ec_signer.key, ec_signer.der, signature_algorithm_id=ECDSA_SHA256_URI
    )
    assert verify(content_type, body, anchor_for(ec_signer)).instance == "DEV"


def test_x_road_generator_format_is_read() -> None:
    """X-Road's own framing (unquoted boundaries, instance='DEV' in single quotes, no Version) verifies."""
    contents = files()
    digest = base64.b64encode(DirectoryEntry.for_content(None, None, "x", contents[SHARED_LOCATION]).digest)
    inner = (
        b"--innerboundary\r\nExpire-date: 2026-06-01T12:10:00Z\r\n\r\n"
        b"--innerboundary\r\nContent-type: application/octet-stream\r\nContent-transfer-encoding: base64\r\n"
        b"Content-identifier: SHARED-PARAMETERS; instance='DEV'\r\nContent-location: /shared-params.xml\r\n"
        b"Hash-algorithm-id: http://www.w3.org/2001/04/xmlenc#sha512\r\n\r\n" + digest + b"\r\n"
        b"--innerboundary--\r\n"
    )
    key = signer().key
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(inner, padding.PKCS1v15(), hashes.SHA512())
    cert_hash = base64.b64encode(DirectoryEntry.for_content(None, None, "x", signer().der).digest)
    body = (
        b"--envelopeboundary\r\nContent-Type: multipart/mixed; charset=UTF-8; boundary=innerboundary\r\n\r\n"
        + inner
        + b"\r\n--envelopeboundary\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Signature-Algorithm-Id: http://www.w3.org/2001/04/xmldsig-more#rsa-sha512\r\n"
        b"Verification-certificate-hash: " + cert_hash
        + b';\r\n    hash-algorithm-id="http://www.w3.org/2001/04/xmlenc#sha512"\r\n\r\n'
        + base64.b64encode(signature)
        + b"\r\n--envelopeboundary--\r\n"
    )
    verified = verify("multipart/related; charset=UTF-8; boundary=envelopeboundary", body)
    assert verified.version is None
    entry = verified.entry(SHARED_PARAMETERS)
    assert entry is not None and entry.content_location == "/shared-params.xml"
    verify_part(entry, contents[SHARED_LOCATION])


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda ct, b: ("multipart/mixed" + ct[len("multipart/related") :], b), id="outer-not-related"),
        pytest.param(lambda ct, b: (ct.split(";")[0], b), id="no-boundary"),
        pytest.param(lambda ct, b: (ct, b.replace(b"Signature-Algorithm-Id", b"X-Signature-Algorithm")), id="no-algorithm"),
        pytest.param(lambda ct, b: (ct, b.replace(b'; hash-algorithm-id="', b'; other="')), id="no-cert-hash-algorithm"),
        pytest.param(
            lambda ct, b: (ct, b.replace(b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: binary")),
            id="signature-not-base64",
        ),
    ],
)
def test_malformed_framing_is_refused(mutate: Callable[[str, bytes], tuple[str, bytes]]) -> None:
    """Wrong content types, missing headers and a wrong signature encoding are refused as malformed."""
    content_type, body = mutate(*signed())
    with pytest.raises(InvalidConfiguration):
        verify(content_type, body)


def test_third_part_is_refused() -> None:
    """A signed directory must have exactly the directory and the signature."""
    content_type, body = signed()
    boundary = content_type.split('boundary="')[1].rstrip('"')
    extra = body.replace(f"--{boundary}--".encode(), f"--{boundary}\r\nA: 1\r\n\r\nx\r\n--{boundary}--".encode())
    with pytest.raises(InvalidConfiguration):
        parse_signed_directory(content_type, extra)


def test_unsupported_algorithms_are_refused() -> None:
    """Unknown signature or digest algorithm URIs are refused, never guessed."""
    content_type, body = signed()
    with pytest.raises(InvalidConfiguration):
        verify(content_type, body.replace(b"xmldsig-more#rsa-sha512", b"xmldsig-more#rsa-md5"))
    with pytest.raises(InvalidConfiguration):
        DirectoryEntry("/x", bytes(20), SHARED_PARAMETERS, "DEV", "http://www.w3.org/2000/09/xmldsig#sha1")


def test_directory_entries_are_checked() -> None:
    """Parameter entries need an instance, digests their algorithm's length, and may not be listed twice."""
    with pytest.raises(InvalidConfiguration):
        DirectoryEntry.for_content(SHARED_PARAMETERS, None, "/x", b"x")
    with pytest.raises(InvalidConfiguration):
        DirectoryEntry("/x", bytes(10), SHARED_PARAMETERS, "DEV")
    with pytest.raises(InvalidConfiguration):
        DirectoryEntry.for_content(SHARED_PARAMETERS, "DEV", "/x\r\nInjected: 1", b"x")
    entry = DirectoryEntry.for_content(SHARED_PARAMETERS, "DEV", "/x", b"x")
    with pytest.raises(InvalidConfiguration):
        build_signed_directory([entry, entry], EXPIRES, 3, signer().key, signer().der)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_is_caught_or_harmless(position: int, xor: int) -> None:
    """Changing any byte either raises one of our errors or leaves the verified directory exactly the same."""
    content_type, body = signed_sample()
    data = bytearray(body)
    data[position % len(data)] ^= xor
    try:
        verified = verify(content_type, bytes(data))
    except BusError:
        return
    assert verified == verify(content_type, body)


@settings(max_examples=40, deadline=None)
@given(shared_parameters(instance="DEV"))
def test_generated_registries_survive_build_sign_parse_verify(sp: SharedParameters) -> None:
    """Generated shared parameters survive build -> sign -> parse -> verify -> assemble unchanged."""
    contents = files(sp)
    verified = verify(*signed(contents))
    conf = assemble_global_conf(
        verified,
        contents,
        shared_schema=load_schema("shared-parameters.xsd"),
        private_schema=load_schema("private-parameters.xsd"),
    )
    assert conf.shared == sp
    assert conf.private == sample_private_parameters()
    assert conf.expires_at == EXPIRES
