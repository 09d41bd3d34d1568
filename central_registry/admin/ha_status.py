"""The registry's nodes and how recently each generated the global configuration (X-Road's HA cluster status).

Each node records, in the store the nodes share, when it last published a configuration (a setting keyed by its
directory URL, written by :meth:`central_registry.publisher.Publisher.publish`). A node's status follows X-Road's
rule: ``UNKNOWN`` before its first publication, ``ERROR`` when its newest configuration is older than the
configuration's validity (``conf_expire_seconds``), ``WARN`` when older than one generation interval and ten
seconds, ``OK`` otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from central_registry.store import RegistryStore

GENERATED_PREFIX = "ha_node_generated:"
WARN_MARGIN_SECONDS = 10
"""X-Road's margin over the generation interval before a node is late (CONFIGURATION_GENERATION_WARN_THRESHOLD)."""


class NodeState(enum.StrEnum):
    """X-Road's ``HighAvailabilityClusterNode.status``."""

    OK = "OK"
    WARN = "WARN"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One node: its name (host and port of its directory URL), address (host), last generation and state."""

    name: str
    address: str
    generated_at: datetime | None
    state: NodeState


def node_name(download_url: str) -> str:
    """A node's name: the host and port its configuration is downloaded from."""
    return urlsplit(download_url).netloc or download_url


def record_generation(store: RegistryStore, download_url: str, now: datetime) -> None:
    """Record that the node serving ``download_url`` published a configuration at ``now`` (not audited)."""
    key = f"{GENERATED_PREFIX}{download_url}"
    with store.transaction("configuration_generated", {"download_url": download_url}, audit=False):
        store.db.execute("DELETE FROM settings WHERE key = ?", [key])
        store.db.execute("INSERT INTO settings (key, value) VALUES (?, ?)", [key, now.isoformat()])


def cluster_status(store: RegistryStore, own_url: str | None, now: datetime) -> tuple[NodeStatus, ...]:
    """Every node (the shared store's, and this one), by name."""
    settings = store.settings()
    rows = store.db.query("SELECT key, value FROM settings WHERE key LIKE ?", [f"{GENERATED_PREFIX}%"])
    generated = {str(r["key"])[len(GENERATED_PREFIX):]: datetime.fromisoformat(str(r["value"])) for r in rows}
    urls = {url for url, _ in store.nodes()}
    if own_url is not None:
        urls.add(own_url)
    late = timedelta(seconds=settings.generation_interval_seconds + WARN_MARGIN_SECONDS)
    expired = timedelta(seconds=settings.conf_expire_seconds)
    nodes = []
    for url in urls:
        at = generated.get(url)
        if at is None:
            state = NodeState.UNKNOWN
        elif now - at > expired:
            state = NodeState.ERROR
        elif now - at > late:
            state = NodeState.WARN
        else:
            state = NodeState.OK
        nodes.append(NodeStatus(node_name(url), urlsplit(url).hostname or url, at, state))
    return tuple(sorted(nodes, key=lambda n: n.name))
