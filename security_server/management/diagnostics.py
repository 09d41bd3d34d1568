"""What the running security server tells about its downloads and services, as X-Road's ``diagnostics/*`` show it.

X-Road's diagnostics answer, for the global configuration, each approved time-stamping service and each OCSP
responder of the server's own certificates, a status class (OK, WAITING, FAIL), when it was last updated and when
next, and the error. :class:`ServerDiagnostics` reads them from a running
:class:`~security_server.service.SecurityServerService` (its configuration client, message-log timestamper and
OCSP client) without changing anything; the management API runs without one before the server is initialised.

fedbus's timestamper asks the approved services in turn and keeps one verdict for the round, so each service is
shown with that verdict; a global configuration's last update is when its verified copy was last stored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, Sequence

from security_server.core.errors import BusError
from security_server.core.trust import CertStatus


class DiagnosticStatus(enum.StrEnum):
    """X-Road's ``DiagnosticStatusClass``."""

    OK = "OK"
    WAITING = "WAITING"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One status: its class, the last and next update (when known) and the error (code and detail)."""

    status: DiagnosticStatus
    prev_update: datetime | None = None
    next_update: datetime | None = None
    error_code: str | None = None
    error_detail: str | None = None


@dataclass(frozen=True, slots=True)
class TsaDiagnostic:
    """A time-stamping service and its status."""

    url: str
    diagnostic: Diagnostic


@dataclass(frozen=True, slots=True)
class OcspDiagnostic:
    """An OCSP responder of a CA that issued one of our certificates, and the status of its last answer."""

    ca: str
    url: str
    diagnostic: Diagnostic


class Diagnostics(Protocol):
    """What the diagnostics operations read from the running server."""

    def globalconf(self) -> Diagnostic:
        """The global configuration download."""

    def timestamping(self) -> Sequence[TsaDiagnostic]:
        """Each approved time-stamping service."""

    def ocsp(self) -> Sequence[OcspDiagnostic]:
        """Each OCSP responder of our certificates' CAs."""


def _error(err: object) -> tuple[str | None, str | None]:
    if err is None:
        return None, None
    if isinstance(err, BusError):
        return str(err.code), err.message
    return "internal_error", str(err)


class ServerDiagnostics:
    """:class:`Diagnostics` of a running security server (read only; any thread)."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._server.reactor.seconds(), tz=UTC)

    def _conf(self) -> Any:
        try:
            return self._server.conf_client.current()
        except BusError:
            return None

    def globalconf(self) -> Diagnostic:
        """OK while a configuration is in force and the last download worked; FAIL with the download's error;
        WAITING before the first download."""
        client = self._server.conf_client
        stored = client.store_path
        prev = datetime.fromtimestamp(stored.stat().st_mtime, tz=UTC) if stored.exists() else None
        next_update = prev + timedelta(seconds=client.interval_seconds) if prev is not None else None
        code, detail = _error(getattr(client, "last_error", None))
        if code is not None:
            return Diagnostic(DiagnosticStatus.FAIL, prev, next_update, code, detail)
        if not client.healthy:
            return Diagnostic(DiagnosticStatus.WAITING, prev, next_update)
        return Diagnostic(DiagnosticStatus.OK, prev, next_update)

    def timestamping(self) -> Sequence[TsaDiagnostic]:
        """Every approved service with the timestamper's verdict: FAIL since its first failure, OK once it has
        stamped, WAITING before."""
        conf = self._conf()
        if conf is None:
            return ()
        timestamper = self._server.evidence.timestamper
        if timestamper.failed_since is not None:
            failed = datetime.fromtimestamp(timestamper.failed_since, tz=UTC)
            verdict = Diagnostic(DiagnosticStatus.FAIL, failed, None, "timestamping_failed", timestamper.last_error)
        elif timestamper.tokens_received:
            verdict = Diagnostic(DiagnosticStatus.OK, self._now())
        else:
            verdict = Diagnostic(DiagnosticStatus.WAITING)
        return tuple(TsaDiagnostic(tsa.url, verdict) for tsa in conf.approved_tsas())

    def ocsp(self) -> Sequence[OcspDiagnostic]:
        """For each of our certificates' responders: OK with a fresh good answer, FAIL with a revoked or unknown
        one, WAITING with none yet."""
        from security_server.service import own_certificates

        conf = self._conf()
        client = self._server.ocsp
        found: dict[tuple[str, str], OcspDiagnostic] = {}
        for target in own_certificates(self._server.token, conf):
            ca = target.issuer.subject.rfc4514_string()
            try:
                status = client.status(target.cert) if client is not None else None
            except BusError:
                status = None
            if status is None:
                diagnostic = Diagnostic(DiagnosticStatus.WAITING)
            else:
                # Without a nextUpdate, an answer is used until it is older than the configuration's freshness.
                fresh_for = timedelta(seconds=conf.ocsp_freshness_seconds if conf is not None else 3600)
                next_update = status.next_update or status.this_update + fresh_for
                if status.status is CertStatus.GOOD:
                    diagnostic = Diagnostic(DiagnosticStatus.OK, status.this_update, next_update)
                else:
                    diagnostic = Diagnostic(DiagnosticStatus.FAIL, status.this_update, next_update,
                                            "ocsp_response_not_good", status.status.value)
            found.setdefault((ca, target.responder_url), OcspDiagnostic(ca, target.responder_url, diagnostic))
        return tuple(found.values())
