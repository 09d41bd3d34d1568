"""Initialising a security server: the anchor, then the owner member and the server code.

The CLI does it in one step (``fedbus server init --anchor FILE --owner MEMBER --server-code CODE``); X-Road's
management API in two (UG-SS §3): ``POST /system/anchor`` uploads the initial anchor, kept as ``anchor.pending``
in the server directory, then ``POST /initialization`` names the owner (its instance is the anchor's) and the
server code. Both end in :func:`initialise`, which sets the soft token's PIN when one is given (X-Road's
``software_token_pin``; without one the token keeps its keys in clear, as fedbus did before PINs, until
``PUT /tokens/soft/pin`` or ``fedbus server token set-pin`` sets one).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from security_server.admin import internal_tls
from security_server.admin.errors import AlreadyInitialised, AnchorNotFound, InvalidAnchor
from security_server.core.errors import InvalidConfiguration
from security_server.admin.server_dir import ServerDirectory
from security_server.core.globalconf.anchor import anchor_hash, parse_configuration_anchor
from security_server.core.identifiers import ClientId, SecurityServerId
from security_server.edge.atomic_file import PRIVATE_MODE, write_atomically
from security_server.serverconf.store import ServerConfError, ServerConfStore
from security_server.signer.softtoken import SoftToken
from security_server.signer.softtoken_pin import check_pin


@dataclass(frozen=True, slots=True)
class AnchorInfo:
    """What an operator compares before trusting an anchor: its hash, instance and generation time."""

    hash: str
    instance: str
    generated_at: datetime | None


def anchor_info(anchor: bytes) -> AnchorInfo:
    """Parse ``anchor``; :class:`InvalidAnchor` when it is not one (the caller sent it: a client fault)."""
    try:
        parsed = parse_configuration_anchor(anchor)
    except InvalidConfiguration as err:
        raise InvalidAnchor(f"not a configuration anchor: {err.message}") from err
    return AnchorInfo(anchor_hash(anchor), parsed.instance, parsed.generated_at)


@dataclass(frozen=True, slots=True)
class Initialised:
    """The outcome of :func:`initialise`."""

    server_id: SecurityServerId
    anchor: AnchorInfo


def initialise(
    server_dir: ServerDirectory, anchor: bytes, owner: ClientId, server_code: str, *, token_pin: str | None = None
) -> Initialised:
    """Create the configuration store with the owner, server code and anchor, and the soft token (under
    ``token_pin`` when given: the token is then logged in in this process)."""
    info = anchor_info(anchor)
    if token_pin is not None:
        check_pin(token_pin)  # a weak PIN is refused before anything is written
    if info.instance != owner.instance:
        raise InvalidAnchor(f"the anchor is for instance {info.instance}, but the owner is of {owner.instance}")
    try:
        server_dir.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise ServerConfError(f"cannot create {server_dir.path}: {err.strerror}") from err
    with ServerConfStore(server_dir.db_path, database_url=server_dir.database_url) as store:
        identity = store.initialise(owner, server_code, anchor)
    token = SoftToken(server_dir.keys_path)
    if token_pin is not None and not token.has_pin():
        token.set_pin(token_pin)
    internal_tls.identity(server_dir)  # the internal TLS key and certificate, made as X-Road makes them at installation
    server_dir.pending_anchor_path.unlink(missing_ok=True)
    return Initialised(identity.server_id, info)


def upload_initial_anchor(server_dir: ServerDirectory, anchor: bytes) -> AnchorInfo:
    """Keep the anchor for :func:`initialise_with_pending_anchor`; refused once initialised."""
    info = anchor_info(anchor)
    if server_dir.is_initialised():
        raise AlreadyInitialised("the security server is already initialised (replace its anchor instead)")
    if server_dir.pending_anchor_path.is_file():
        raise AlreadyInitialised("an initial configuration anchor was uploaded already")
    try:
        server_dir.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomically(server_dir.pending_anchor_path, anchor, PRIVATE_MODE)
    except OSError as err:
        raise ServerConfError(f"cannot store the anchor in {server_dir.path}: {err.strerror}") from err
    return info


def pending_anchor(server_dir: ServerDirectory) -> bytes:
    """The uploaded initial anchor; :class:`AnchorNotFound` before one is uploaded."""
    try:
        return server_dir.pending_anchor_path.read_bytes()
    except FileNotFoundError as err:
        raise AnchorNotFound("no configuration anchor has been uploaded") from err
    except OSError as err:
        raise ServerConfError(f"cannot read the uploaded anchor: {err.strerror}") from err


def initialise_with_pending_anchor(
    server_dir: ServerDirectory, member_class: str, member_code: str, server_code: str, *,
    token_pin: str | None = None,
) -> Initialised:
    """The second step of X-Road's initialisation: the owner is of the uploaded anchor's instance."""
    if server_dir.is_initialised():
        raise AlreadyInitialised("the security server is already initialised")
    anchor = pending_anchor(server_dir)
    owner = ClientId(anchor_info(anchor).instance, member_class, member_code)
    return initialise(server_dir, anchor, owner, server_code, token_pin=token_pin)


class TokenInitStatus(enum.StrEnum):
    """Whether the soft token exists (X-Road's ``TokenInitStatus``)."""

    INITIALIZED = "INITIALIZED"
    NOT_INITIALIZED = "NOT_INITIALIZED"


@dataclass(frozen=True, slots=True)
class InitialisationStatus:
    """How far initialisation went (X-Road's ``InitializationStatus``)."""

    anchor_imported: bool
    server_code_initialised: bool
    owner_initialised: bool
    token: TokenInitStatus


def initialisation_status(server_dir: ServerDirectory) -> InitialisationStatus:
    """Read what exists: the anchor (uploaded or stored), the identity, the soft token."""
    done = server_dir.is_initialised()
    token = TokenInitStatus.INITIALIZED if done and server_dir.keys_path.is_dir() else TokenInitStatus.NOT_INITIALIZED
    return InitialisationStatus(done or server_dir.pending_anchor_path.is_file(), done, done, token)
