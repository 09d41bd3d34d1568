"""The configuration anchor of an initialised server: show it, replace it (UG-SS §10.1)."""

from __future__ import annotations

from security_server.admin.errors import AnchorNotFound, InvalidAnchor
from security_server.admin.initialization import AnchorInfo, anchor_info, pending_anchor
from security_server.admin.server_dir import ServerDirectory


def current_anchor(server_dir: ServerDirectory) -> bytes:
    """The stored anchor, or the uploaded initial one before init; :class:`AnchorNotFound` when there is none."""
    if not server_dir.is_initialised():
        return pending_anchor(server_dir)
    with server_dir.open_store() as store:
        return store.anchor()


def show_anchor(server_dir: ServerDirectory) -> AnchorInfo:
    """The current anchor's hash, instance and generation time."""
    return anchor_info(current_anchor(server_dir))


def replace_anchor(server_dir: ServerDirectory, anchor: bytes) -> AnchorInfo:
    """Import a newer anchor of the same instance; refused before init and for another instance."""
    info = anchor_info(anchor)
    if not server_dir.is_initialised():
        raise AnchorNotFound("the security server is not initialised: upload the initial anchor instead")
    with server_dir.open_store() as store:
        instance = store.identity().instance
        if info.instance != instance:
            raise InvalidAnchor(f"the anchor is for instance {info.instance}, but this server is of {instance}")
        store.replace_anchor(anchor)
    return info
