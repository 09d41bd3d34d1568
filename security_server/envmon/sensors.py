"""The system figures of ``getSecurityServerMetrics``, read with psutil (edge code: it reads the system).

:class:`SystemSampler` samples the figures that fluctuate (CPU load, free memory and swap, open files,
committed virtual memory) every ``interval`` seconds (X-Road ``system-metrics-sensor-interval``, 5 s) and keeps
the last ``window`` samples, from which the answer's histograms are made; the steady figures (totals, limits,
disk space, the operating system, processes, certificates) are read when asked. :meth:`SystemSampler.metrics`
builds only the metrics ``outputSpec`` asks for, so a narrow request stays cheap; listing processes reads
``/proc`` for every process and is done only when ``Processes`` is wanted (or everything is). Call
:meth:`metrics` in a worker thread, not on the reactor.
"""

from __future__ import annotations

import collections
import os
import platform
import resource
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import psutil  # type: ignore[import-untyped]  # no stubs installed (types-psutil would add them)
import structlog
from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from security_server.core import envmon
from security_server.core.envmon import HistogramMetric, Metric, MetricSet, NumericMetric, StringMetric

DEFAULT_INTERVAL = 5.0
DEFAULT_WINDOW = 60
"""Samples kept per histogram: five minutes at the default interval."""

_log = structlog.get_logger("fedbus.envmon")

HISTOGRAMS = (
    envmon.SYSTEM_CPU_LOAD,
    envmon.FREE_PHYSICAL_MEMORY,
    envmon.FREE_SWAP_SPACE,
    envmon.OPEN_FILE_DESCRIPTOR_COUNT,
    envmon.COMMITTED_VIRTUAL_MEMORY,
)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """One of the server's certificates as envmon lists it (X-Road ``CertificateMonitoringInfo``)."""

    sha1_hex: str
    not_before: datetime
    not_after: datetime
    certificate_type: str
    """``AUTH_OR_SIGN``, ``SECURITY_SERVER_TLS`` or ``INTERNAL_IS_CLIENT_TLS``, as X-Road names them."""
    active: bool


def certificate_metrics(certificates: Iterable[CertificateInfo]) -> MetricSet:
    """The ``Certificates`` set: one ``certificate-<sha1>`` set per certificate."""
    items = tuple(
        MetricSet(
            f"certificate-{c.sha1_hex}",
            (
                StringMetric("sha1Hash", c.sha1_hex),
                StringMetric("notBefore", c.not_before.isoformat()),
                StringMetric("notAfter", c.not_after.isoformat()),
                StringMetric("certificateType", c.certificate_type),
                StringMetric("active", str(c.active).lower()),
            ),
        )
        for c in certificates
    )
    return MetricSet(envmon.CERTIFICATES, items)


class SystemSampler(Service):
    """Samples the fluctuating figures on the reactor's clock and answers the metric set on request."""

    def __init__(
        self,
        clock: Any,
        *,
        certificates: Callable[[], Iterable[CertificateInfo]] = lambda: (),
        disk_paths: Sequence[Path] = (Path("/"),),
        interval: float = DEFAULT_INTERVAL,
        window: int = DEFAULT_WINDOW,
        process: psutil.Process | None = None,
    ) -> None:
        self._clock = clock
        self._certificates = certificates
        self._disk_paths = tuple(disk_paths)
        self._process = process or psutil.Process(os.getpid())
        self._samples: dict[str, collections.deque[float]] = {name: collections.deque(maxlen=window) for name in HISTOGRAMS}
        self._updated: datetime | None = None
        self._loop = LoopingCall(self.sample)
        self._loop.clock = clock
        self.interval = interval

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        self._loop.start(self.interval, now=True).addErrback(lambda f: _log.error("envmon_sampler_failed", error=f.getErrorMessage()))

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
        if self._loop.running:
            self._loop.stop()

    def sample(self) -> None:
        """Take one sample of each fluctuating figure (a failing figure is skipped and logged, never raised)."""
        readers: dict[str, Callable[[], float]] = {
            # X-Road reports the system CPU load as a percentage (load * 100).
            envmon.SYSTEM_CPU_LOAD: lambda: float(psutil.cpu_percent(interval=None)),
            envmon.FREE_PHYSICAL_MEMORY: lambda: float(psutil.virtual_memory().available),
            envmon.FREE_SWAP_SPACE: lambda: float(psutil.swap_memory().free),
            envmon.OPEN_FILE_DESCRIPTOR_COUNT: lambda: float(self._process.num_fds()),
            envmon.COMMITTED_VIRTUAL_MEMORY: lambda: float(self._process.memory_info().vms),
        }
        for name, read in readers.items():
            try:
                self._samples[name].append(read())
            except Exception as err:
                _log.warning("envmon_sample_failed", metric=name, error=f"{type(err).__name__}: {err}")
        self._updated = datetime.fromtimestamp(self._clock.seconds(), tz=UTC)

    def _steady(self, name: str) -> Metric | None:
        if name == envmon.OPERATING_SYSTEM:
            uname = platform.uname()
            return StringMetric(name, f"{uname.system} version {uname.release}")
        if name == envmon.TOTAL_PHYSICAL_MEMORY:
            return NumericMetric(name, int(psutil.virtual_memory().total))
        if name == envmon.TOTAL_SWAP_SPACE:
            return NumericMetric(name, int(psutil.swap_memory().total))
        if name == envmon.MAX_FILE_DESCRIPTOR_COUNT:
            return NumericMetric(name, int(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
        if name == envmon.PROCESSES:
            return self._processes()
        if name == envmon.CERTIFICATES:
            return certificate_metrics(self._certificates())
        return None

    def _processes(self) -> MetricSet:
        items = []
        for proc in psutil.process_iter(["pid", "name", "username", "create_time", "memory_info", "cpu_percent"]):
            info = proc.info
            memory = info.get("memory_info")
            started = info.get("create_time")
            items.append(
                MetricSet(
                    str(info["pid"]),
                    (
                        StringMetric("processId", str(info["pid"])),
                        StringMetric("command", str(info.get("name") or "")),
                        StringMetric("cpuLoad", str(info.get("cpu_percent") or 0.0)),
                        StringMetric("memUsed", str(0 if memory is None else memory.rss)),
                        StringMetric("startTime", "" if started is None else datetime.fromtimestamp(started, tz=UTC).isoformat()),
                        StringMetric("userId", str(info.get("username") or "")),
                    ),
                )
            )
        return MetricSet(envmon.PROCESSES, tuple(items))

    def _disks(self) -> list[Metric]:
        metrics: list[Metric] = []
        for path in self._disk_paths:
            try:
                usage = psutil.disk_usage(str(path))
            except OSError as err:
                _log.warning("envmon_disk_failed", path=str(path), error=str(err))
                continue
            metrics.append(NumericMetric(f"{envmon.DISK_SPACE_TOTAL}_{path}", int(usage.total)))
            metrics.append(NumericMetric(f"{envmon.DISK_SPACE_FREE}_{path}", int(usage.free)))
        return metrics

    def metrics(self, wanted: frozenset[str] = frozenset()) -> list[Metric]:
        """The ``systemMetrics`` contents ``outputSpec`` asks for (all when ``wanted`` is empty)."""
        def asked(name: str) -> bool:
            return not wanted or name in wanted

        if self._updated is None:
            self.sample()
        out = self._steady_metrics((envmon.OPERATING_SYSTEM, envmon.TOTAL_PHYSICAL_MEMORY,
                                    envmon.TOTAL_SWAP_SPACE, envmon.MAX_FILE_DESCRIPTOR_COUNT), asked)
        updated = self._updated or datetime.fromtimestamp(self._clock.seconds(), tz=UTC)
        for name in HISTOGRAMS:
            if asked(name) and self._samples[name]:
                out.append(HistogramMetric.of(name, list(self._samples[name]), updated))
        out.extend(m for m in self._disks() if asked(m.name))
        out.extend(self._steady_metrics((envmon.PROCESSES, envmon.CERTIFICATES), asked))
        return out

    def _steady_metrics(self, names: tuple[str, ...], asked: Callable[[str], bool]) -> list[Metric]:
        """The steady metrics among ``names`` that are asked for; one that fails to read is logged and left out."""
        out: list[Metric] = []
        for name in names:
            if asked(name):
                try:
                    metric = self._steady(name)
                except Exception as err:
                    _log.warning("envmon_metric_failed", metric=name, error=f"{type(err).__name__}: {err}")
                    continue
                if metric is not None:
                    out.append(metric)
        return out
