"""Browser sessions of the form login: a session cookie and an XSRF token, kept in memory, idle-limited.

A session lives in this process only (a restart logs everyone out, as X-Road's does); it ends after
``idle_seconds`` without a request. Each has its own XSRF token, sent as the ``XSRF-TOKEN`` cookie and required
back in the ``X-XSRF-TOKEN`` header of every write made with the session (the double-submit pattern X-Road's UI
uses): another site can make the browser send the cookie, not read it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Callable


SESSION_COOKIE = b"JSESSIONID"
XSRF_COOKIE = b"XSRF-TOKEN"
XSRF_HEADER = b"X-XSRF-TOKEN"
DEFAULT_IDLE_SECONDS = 30 * 60
MAX_SESSIONS = 1000


@dataclass(frozen=True, slots=True)
class Session:
    """One logged-in user."""

    id: str = field(repr=False)
    xsrf_token: str = field(repr=False)
    username: str
    roles: frozenset[str]
    last_seen: float

    def xsrf_matches(self, presented: str | None) -> bool:
        """Whether the header carries this session's token (compared in constant time)."""
        return presented is not None and hmac.compare_digest(presented.encode(), self.xsrf_token.encode())


class SessionStore:
    """The live sessions; time is the reactor's (``clock``, an IReactorTime), randomness an argument."""

    def __init__(
        self,
        clock: Any,
        *,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        token: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        self._clock = clock
        self._idle = idle_seconds
        self._token = token
        self._sessions: dict[str, Session] = {}

    def _expire(self) -> None:
        limit = self._clock.seconds() - self._idle
        for key in [k for k, s in self._sessions.items() if s.last_seen < limit]:
            del self._sessions[key]

    def create(self, username: str, roles: frozenset[str]) -> Session:
        """Start a session (the oldest goes when there are too many)."""
        self._expire()
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
            del self._sessions[oldest.id]
        session = Session(self._token(), self._token(), username, roles, self._clock.seconds())
        self._sessions[session.id] = session
        return session

    def touch(self, session_id: str) -> Session | None:
        """The live session with this id, its idle time restarted; None when unknown or expired."""
        self._expire()
        found = self._sessions.get(session_id)
        if found is None:
            return None
        found = replace(found, last_seen=self._clock.seconds())
        self._sessions[session_id] = found
        return found

    def end(self, session_id: str) -> None:
        """Log a session out."""
        self._sessions.pop(session_id, None)
