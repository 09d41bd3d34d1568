"""Certificate requests kept between their making and the certificate's import (X-Road's key "CSRs").

The soft token makes a request on demand (:func:`security_server.admin.keys.request_certificate`); X-Road's API
makes it with the key and lets it be downloaded later by id, so the request is kept in ``<server dir>/csrs/`` as
``<key id>.<csr id>.pem`` (the csr id is the first 16 hex digits of the request's SHA-256). The subject follows
the certificate profile of the CA the request is meant for (:mod:`security_server.core.certprofile`): its subject
fields (:func:`subject_fields`, X-Road's ``csr-subject-fields``) filled from the identifiers and the values an
administrator gives (:func:`profile_subject`, X-Road's ``subject_field_values``). Without a profile (the CLI),
fedbus's own is used with the organisation name (``O``) given.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.admin.errors import NotFound
from security_server.admin.keys import TokenKey, generate_key, request_certificate
from security_server.admin.server_dir import ServerDirectory
from security_server.core.cert_identity import CertProfile
from security_server.core.certprofile import request_subject
from security_server.core.config import LayeredConfig
from security_server.core.identifiers import ClientId
from security_server.core.subject_fields import SubjectField
from security_server.edge.atomic_file import PUBLIC_MODE, write_atomically
from security_server.signer.softtoken import KeyAlgorithm, KeyKind, SoftToken
from security_server.signer.token import is_key_id
from security_server.signer.token_set import TokenSet

CSR_DIR = "csrs"
_ID = re.compile(r"[0-9a-f]{16}")


class CsrNotFound(NotFound):
    """The key has no kept request of that id."""

    api_code = "csr_not_found"


@dataclass(frozen=True, slots=True)
class KeyWithCsr:
    """A key just made and the id of its kept request."""

    key: TokenKey
    csr_id: str


def _folder(server_dir: ServerDirectory) -> Path:
    folder = server_dir.path / CSR_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def keep_csr(server_dir: ServerDirectory, key_id: str, pem: bytes) -> str:
    """Keep a request for ``key_id``; answers its id."""
    csr_id = hashlib.sha256(pem).hexdigest()[:16]
    write_atomically(_folder(server_dir) / f"{key_id}.{csr_id}.pem", pem, PUBLIC_MODE)
    return csr_id


@dataclass(frozen=True, slots=True)
class ProfileRequest:
    """A request to be made under a CA's certificate profile: the profile, the ``subject_field_values`` given and
    the name of the member (or the server's owner) the global configuration knows (the default of ``O``)."""

    profile: CertProfile
    values: Mapping[str, str]
    member_name: str = ""


def subject_fields(
    server_dir: ServerDirectory, kind: KeyKind, profile: CertProfile, member: ClientId | None, member_name: str
) -> tuple[SubjectField, ...]:
    """The subject fields of a request under ``profile`` for this server's auth key, or for ``member``'s sign key
    (default the owner), with their defaults from the identifiers (X-Road ``getSubjectFields``)."""
    server = server_dir.snapshot().identity.server_id
    if kind is KeyKind.AUTH:
        return profile.auth_fields(server, member_name)
    return profile.signing_fields(member or server.owner, member_name, server)


def profile_subject(
    server_dir: ServerDirectory, kind: KeyKind, member: ClientId | None, request: ProfileRequest
) -> x509.Name:
    """The subject of a request under ``request.profile``; :class:`~security_server.core.errors.CertValidation`
    for values the profile refuses (a required field blank, a field it does not have)."""
    fields = subject_fields(server_dir, kind, request.profile, member, request.member_name)
    return request_subject(fields, request.values)


def generate_key_with_csr(
    server_dir: ServerDirectory,
    kind: KeyKind,
    organisation: str,
    *,
    member: ClientId | None = None,
    token_name: str = SoftToken.name,
    config: LayeredConfig | None = None,
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048,
    profile_request: ProfileRequest | None = None,
) -> KeyWithCsr:
    """Make a key and its certificate request: with ``profile_request``, its subject by that profile (checked
    before the key is made, so a refused one leaves no key); without, by fedbus's profile with O =
    ``organisation``."""
    subject = None if profile_request is None else profile_subject(server_dir, kind, member, profile_request)
    made = generate_key(server_dir, kind, member=member, algorithm=algorithm, token_name=token_name, config=config)
    tokens = server_dir.tokens(config) if config is not None else TokenSet([server_dir.soft_token()])
    if subject is None:
        pem = request_certificate(tokens, made.info.key_id, organisation).pem
    else:
        pem = tokens.csr(made.info.key_id, subject)
    return KeyWithCsr(made, keep_csr(server_dir, made.info.key_id, pem))


def request_kept_csr(
    server_dir: ServerDirectory, key_id: str, organisation: str, *, config: LayeredConfig | None = None,
    profile_request: ProfileRequest | None = None,
) -> str:
    """Make another request for an existing key and keep it; answers its id. The subject is by
    ``profile_request``'s profile, or without one by fedbus's with O = ``organisation``. The key's token must be
    logged in."""
    tokens = server_dir.tokens(config) if config is not None else TokenSet([server_dir.soft_token()])
    if profile_request is None:
        return keep_csr(server_dir, key_id, request_certificate(tokens, key_id, organisation).pem)
    info = tokens.key(key_id)
    member = info.owner if isinstance(info.owner, ClientId) else None
    subject = profile_subject(server_dir, info.kind, member, profile_request)
    return keep_csr(server_dir, key_id, tokens.csr(key_id, subject))


def csr_ids(server_dir: ServerDirectory, key_id: str) -> tuple[str, ...]:
    """The kept requests of a key, by id."""
    folder = server_dir.path / CSR_DIR
    if not folder.is_dir() or not is_key_id(key_id):
        return ()
    return tuple(sorted(p.name.split(".")[1] for p in folder.glob(f"{key_id}.*.pem")))


def _path(server_dir: ServerDirectory, key_id: str, csr_id: str) -> Path:
    if not _ID.fullmatch(csr_id) or not is_key_id(key_id):
        raise CsrNotFound(f"key {key_id} has no request {csr_id}")
    return server_dir.path / CSR_DIR / f"{key_id}.{csr_id}.pem"


def read_csr(server_dir: ServerDirectory, key_id: str, csr_id: str, *, der: bool = False) -> bytes:
    """A kept request, PEM or DER."""
    try:
        pem = _path(server_dir, key_id, csr_id).read_bytes()
    except FileNotFoundError as err:
        raise CsrNotFound(f"key {key_id} has no request {csr_id}") from err
    return x509.load_pem_x509_csr(pem).public_bytes(Encoding.DER) if der else pem


def delete_csr(server_dir: ServerDirectory, key_id: str, csr_id: str) -> None:
    """Forget a kept request."""
    try:
        _path(server_dir, key_id, csr_id).unlink()
    except FileNotFoundError as err:
        raise CsrNotFound(f"key {key_id} has no request {csr_id}") from err
