"""Certificate requests kept between their making and the certificate's import (X-Road's key "CSRs").

The soft token makes a request on demand (:func:`security_server.admin.keys.request_certificate`); X-Road's API
makes it with the key and lets it be downloaded later by id, so the request is kept in ``<server dir>/csrs/`` as
``<key id>.<csr id>.pem`` (the csr id is the first 16 hex digits of the request's SHA-256). The subject follows
the certificate profile (:mod:`security_server.core.certprofile`); of the subject fields an administrator gives,
only the organisation name (``O``) is taken, the rest come from the identifiers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from security_server.admin.errors import NotFound
from security_server.admin.keys import TokenKey, generate_key, request_certificate
from security_server.admin.server_dir import ServerDirectory
from security_server.core.config import LayeredConfig
from security_server.core.identifiers import ClientId
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


def generate_key_with_csr(
    server_dir: ServerDirectory,
    kind: KeyKind,
    organisation: str,
    *,
    member: ClientId | None = None,
    token_name: str = SoftToken.name,
    config: LayeredConfig | None = None,
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA2048,
) -> KeyWithCsr:
    """Make a key and its certificate request (subject by the certificate profile, O = ``organisation``)."""
    made = generate_key(server_dir, kind, member=member, algorithm=algorithm, token_name=token_name, config=config)
    tokens = server_dir.tokens(config) if config is not None else TokenSet([server_dir.soft_token()])
    request = request_certificate(tokens, made.info.key_id, organisation)
    return KeyWithCsr(made, keep_csr(server_dir, made.info.key_id, request.pem))


def request_kept_csr(
    server_dir: ServerDirectory, key_id: str, organisation: str, *, config: LayeredConfig | None = None
) -> str:
    """Make another request for an existing key (subject by the certificate profile, O = ``organisation``) and
    keep it; answers its id. The key's token must be logged in."""
    tokens = server_dir.tokens(config) if config is not None else TokenSet([server_dir.soft_token()])
    request = request_certificate(tokens, key_id, organisation)
    return keep_csr(server_dir, key_id, request.pem)


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
