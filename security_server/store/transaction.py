"""The transaction bookkeeping both store engines share (the seam's "one transaction mode").

:class:`TransactionalDatabase` keeps what :mod:`security_server.store.engine` promises of every engine in one
place: a transaction opened while another is open joins it (it commits or rolls back with the outermost), a
write may not start inside a read, the innermost action names any error, and an exception leaving the outermost
rolls everything back, a driver's exception leaving as a store error. An engine says only how it borrows a
driver connection, begins, rolls back, and what its statements run on; where the open transaction is kept
(per database on SQLite, per thread on PostgreSQL) is the :class:`TransactionState` it passes in.
"""

from __future__ import annotations

import abc
import contextlib
from typing import Generic, Iterator, Protocol, TypeVar


class _Executes(Protocol):
    def execute(self, sql: str, /) -> object: ...


RawT = TypeVar("RawT", bound=_Executes)
SessionT = TypeVar("SessionT")


class TransactionState(Generic[RawT]):
    """The open transaction: its driver connection, how deep it is nested, whether it writes, and its actions."""

    def __init__(self) -> None:
        self.connection: RawT | None = None
        self.depth = 0
        self.writing = False
        self.actions: list[str] = []


class TransactionalDatabase(abc.ABC, Generic[RawT, SessionT]):
    """The part of a store engine's ``Database`` that is the same on every engine; engines fill in the hooks."""

    def __init__(self, *, label: str, location: str, state: TransactionState[RawT]) -> None:
        self._label = label
        self._location = location
        self._state = state

    @property
    def label(self) -> str:
        """What the store calls itself in messages."""
        return self._label

    @property
    def location(self) -> str:
        """Where the database is (a file path; a URL without its password)."""
        return self._location

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (in this thread, on an engine that keeps one per thread)."""
        return self._state.depth > 0

    @property
    def current_action(self) -> str:
        """The action of the innermost open transaction (for error messages)."""
        actions = self._state.actions
        return actions[-1] if actions else "running a statement"

    def write(self, action: str) -> contextlib.AbstractContextManager[SessionT]:
        """One write transaction holding the write lock; nested calls join it; any exception rolls it all back."""
        return self._transaction(action, write=True)

    def read(self, action: str) -> contextlib.AbstractContextManager[SessionT]:
        """One read transaction: every statement in it sees the same committed state."""
        return self._transaction(action, write=False)

    # --- the engine's hooks ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        """Raise :class:`~security_server.store.errors.StoreClosed` if the engine checks on every transaction."""

    @abc.abstractmethod
    def _borrowed(self, action: str) -> contextlib.AbstractContextManager[RawT]:
        """The driver connection the outermost transaction runs on, for as long as it is open."""

    @abc.abstractmethod
    def _begin(self, raw: RawT, action: str, *, write: bool) -> None:
        """Start the outermost transaction on ``raw`` (a store error if it cannot)."""

    @abc.abstractmethod
    def _session(self, raw: RawT) -> SessionT:
        """The seam's ``Connection`` over ``raw``."""

    @abc.abstractmethod
    def _abort(self, raw: RawT, err: BaseException, action: str) -> BaseException | None:
        """Roll back the outermost transaction; the store error for a driver's ``err``, or None to let it leave."""

    # --- the bookkeeping ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, action: str, *, write: bool) -> Iterator[SessionT]:
        self._check_open()
        state = self._state
        if state.depth:
            if write and not state.writing:
                raise RuntimeError(f"{self._label}: {action}: a write cannot start inside a read transaction")
            assert state.connection is not None
            state.depth += 1
            state.actions.append(action)
            try:
                yield self._session(state.connection)
            finally:
                state.actions.pop()
                state.depth -= 1
            return
        with self._borrowed(action) as raw:
            self._begin(raw, action, write=write)
            state.connection, state.depth, state.writing, state.actions = raw, 1, write, [action]
            try:
                yield self._session(raw)
                raw.execute("COMMIT")
            except BaseException as err:
                mapped = self._abort(raw, err, action)
                if mapped is None:
                    raise
                raise mapped from err
            finally:
                state.connection, state.depth, state.writing, state.actions = None, 0, False, []
