"""What a deleted client leaves in the token: its member's sign keys, their certificates and kept requests.

X-Road's orphans (``OrphanRemovalService``): once no hosted client of a member is left (the member itself nor any
of its subsystems), the sign keys of that member, with a certificate or a kept request, serve no one. They are
offered for deletion after the client is deleted. In fedbus a key belongs to one member, so its certificate and
requests are that member's too: a key is an orphan or not as a whole. The soft token's keys only.
"""

from __future__ import annotations

from datetime import datetime

from security_server.admin import csrs, keys
from security_server.admin.errors import NotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.identifiers import ClientId
from security_server.signer.softtoken import KeyKind


class OrphansNotFound(NotFound):
    """The client is still hosted (or a client of its member is), or its member has no key left."""

    api_code = "orphans_not_found"


def orphan_keys(server_dir: ServerDirectory, client_id: ClientId) -> tuple[str, ...]:
    """The ids of the sign keys ``client_id`` left behind (none while a client of its member is hosted)."""
    member = client_id.member
    if any(c.id.member == member for c in server_dir.snapshot().clients):
        return ()
    return tuple(
        key.key_id
        for key in server_dir.soft_token().list()
        if key.kind is KeyKind.SIGN and key.owner == member
        and (key.cert is not None or csrs.csr_ids(server_dir, key.key_id))
    )


def delete_orphans(server_dir: ServerDirectory, client_id: ClientId, *, now: datetime) -> tuple[str, ...]:
    """Delete the keys ``client_id`` left behind with their certificates and requests; :class:`OrphansNotFound`
    when there are none. Answers the ids deleted."""
    found = orphan_keys(server_dir, client_id)
    if not found:
        raise OrphansNotFound(f"{client_id} left no keys, certificates or requests")
    for key_id in found:
        keys.delete_key(server_dir, key_id, now=now)
    return found
