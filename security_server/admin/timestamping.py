"""The time-stamping services the message log uses: chosen among those the global configuration approves.

X-Road's administrator chooses the services (UG-SS §10.2). fedbus keeps the choice in the configuration store;
while nothing is chosen, every approved service is used (so that a server works without the step, as before).
The services in use are therefore the chosen ones still approved, or, with no choice, every approved one.
"""

from __future__ import annotations

from security_server.admin.errors import ActionNotPossible, Conflict, NotFound
from security_server.admin.server_dir import ServerDirectory
from security_server.core.globalconf import GlobalConf
from security_server.serverconf.store import TimestampingService


class TimestampingServiceNotFound(NotFound):
    """The URL is not an approved (or not a chosen) time-stamping service."""

    api_code = "timestamping_service_not_found"


class TimestampingServiceInUse(Conflict):
    """The service is chosen already."""

    api_code = "timestamping_service_already_configured"


def approved(conf: GlobalConf) -> tuple[TimestampingService, ...]:
    """Every approved service, in the global configuration's order."""
    return tuple(TimestampingService(tsa.name, tsa.url) for tsa in conf.approved_tsas())


def in_use(server_dir: ServerDirectory, conf: GlobalConf) -> tuple[TimestampingService, ...]:
    """The services the message log uses: the chosen ones still approved, or every approved one."""
    chosen = server_dir.snapshot().timestamping_services
    everything = approved(conf)
    if not chosen:
        return everything
    urls = {s.url for s in everything}
    return tuple(s for s in chosen if s.url in urls)


def choose(server_dir: ServerDirectory, conf: GlobalConf, url: str) -> TimestampingService:
    """Use an approved service: with nothing chosen yet, it becomes the only one (an explicit choice replaces
    "every approved"); :class:`TimestampingServiceNotFound` when not approved, :class:`TimestampingServiceInUse`
    when chosen already."""
    found = next((s for s in approved(conf) if s.url == url), None)
    if found is None:
        raise TimestampingServiceNotFound(f"{url} is not an approved time-stamping service")
    with server_dir.open_store() as store:
        if any(s.url == url for s in store.snapshot().timestamping_services):
            raise TimestampingServiceInUse(f"{url} is chosen already")
        store.add_timestamping_service(found)
    return found


def stop_using(server_dir: ServerDirectory, conf: GlobalConf, url: str) -> None:
    """Stop using a service. With nothing chosen, every other approved one becomes the choice; the last one in
    use is not removed (:class:`ActionNotPossible`: the message log needs one)."""
    used = in_use(server_dir, conf)
    if not any(s.url == url for s in used):
        raise TimestampingServiceNotFound(f"{url} is not a time-stamping service in use")
    if len(used) == 1:
        raise ActionNotPossible("the message log needs a time-stamping service: choose another one first")
    with server_dir.open_store() as store:
        chosen = store.snapshot().timestamping_services
        if not chosen:
            for other in used:
                if other.url != url:
                    store.add_timestamping_service(other)
        else:
            store.remove_timestamping_service(url)
