"""The benchmark's results as values, as a Markdown table (printed and pasted into docs/performance.md) and as JSON.

Every path is measured with the same workload in the same run, so the ratios compare like with like:
throughput fedbus/direct and fedbus/bare-hop, CPU per exchange of each security server over that of the bare hop
in the same position, and the latency fedbus adds to the direct call (p50).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

PATHS = ("direct", "barehop", "fedbus")
ROLES = ("first", "second", "provider")
"""Positions in the chain: the first hop (bare hop 1 or the consumer's security server), the second hop (bare hop
2 or the provider's security server), and the echo provider."""

PROCESS_ROLES: dict[str, dict[str, str]] = {
    "direct": {"echo": "provider"},
    "barehop": {"hop1": "first", "hop2": "second", "echo": "provider"},
    "fedbus": {"ss-tax": "first", "ss-pop": "second", "echo": "provider", "registry": "registry"},
}
"""Process name -> role, per path (the registry serves OCSP and the TSA to the security servers)."""


@dataclass
class CaseResult:
    """One measured run: a workload on one path."""

    protocol: str
    size: int
    concurrency: int
    path: str
    rps: float = float("nan")
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    cpu_us: dict[str, float] = field(default_factory=dict)
    """CPU microseconds per exchange, by role."""
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    """Peak resident set size so far (VmHWM), MiB, by role."""
    failure: str | None = None
    label: str = ""
    """For lever runs: what was switched."""

    @property
    def case(self) -> tuple[str, int, int]:
        """(protocol, size, concurrency): what the paths of one comparison share."""
        return (self.protocol, self.size, self.concurrency)

    def cpu_total(self) -> float:
        """CPU per exchange of every measured process together."""
        return sum(self.cpu_us.values()) if self.cpu_us else float("nan")


@dataclass(frozen=True, slots=True)
class Ratios:
    """fedbus against the references of the same case, measured in the same run."""

    protocol: str
    size: int
    concurrency: int
    rps_over_direct: float
    rps_over_barehop: float
    cpu_first_over_hop: float
    """The consumer's security server's CPU per exchange over the first bare hop's."""
    cpu_second_over_hop: float
    """The provider's security server's CPU per exchange over the second bare hop's."""
    added_p50_ms: float
    """fedbus p50 minus direct p50."""


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def ratios(results: Iterable[CaseResult]) -> list[Ratios]:
    """The ratios of every case that has all three paths measured."""
    by_case: dict[tuple[str, int, int], dict[str, CaseResult]] = {}
    for result in results:
        if result.failure is None and not result.label:
            by_case.setdefault(result.case, {})[result.path] = result
    found = []
    for (protocol, size, concurrency), paths in by_case.items():
        if not all(p in paths for p in PATHS):
            continue
        direct, bare, fed = paths["direct"], paths["barehop"], paths["fedbus"]
        found.append(Ratios(
            protocol, size, concurrency,
            rps_over_direct=_ratio(fed.rps, direct.rps),
            rps_over_barehop=_ratio(fed.rps, bare.rps),
            cpu_first_over_hop=_ratio(fed.cpu_us.get("first", math.nan), bare.cpu_us.get("first", math.nan)),
            cpu_second_over_hop=_ratio(fed.cpu_us.get("second", math.nan), bare.cpu_us.get("second", math.nan)),
            added_p50_ms=fed.p50_ms - direct.p50_ms,
        ))
    return found


def size_text(size: int) -> str:
    """1024 -> '1 KiB'."""
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def _num(value: float, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _cpu(result: CaseResult) -> str:
    parts = [_num(result.cpu_us[role]) if role in result.cpu_us else "-" for role in ROLES]
    return " / ".join(parts)


def _rss(result: CaseResult) -> str:
    parts = [_num(result.peak_rss_mib[role]) for role in ("first", "second") if role in result.peak_rss_mib]
    return " / ".join(parts) if parts else "-"


def results_table(results: list[CaseResult]) -> str:
    """The main table: one row per case and path, with fedbus's ratios on its row."""
    by_case = {(r.protocol, r.size, r.concurrency): r for r in ratios(results)}
    lines = [
        "| case | path | exch/s | p50 ms | p99 ms | CPU µs/exch: 1st / 2nd / provider | all procs µs | "
        "peak RSS MiB 1st / 2nd | fedbus ÷ direct | fedbus ÷ bare hop | CPU per SS ÷ per hop | +p50 ms vs direct |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        if result.label:
            continue
        case = f"{result.protocol.upper()} {size_text(result.size)} c={result.concurrency}"
        if result.failure is not None:
            lines.append(f"| {case} | {result.path} | failed: {result.failure[:80]} | | | | | | | | | |")
            continue
        extra = ["", "", "", ""]
        ratio = by_case.get(result.case)
        if result.path == "fedbus" and ratio is not None:
            extra = [
                f"{ratio.rps_over_direct:.3f}", f"{ratio.rps_over_barehop:.2f}",
                f"{_num(ratio.cpu_first_over_hop, 1)}× / {_num(ratio.cpu_second_over_hop, 1)}×",
                _num(ratio.added_p50_ms, 2),
            ]
        errors = f" ({result.errors} errors)" if result.errors else ""
        lines.append(
            f"| {case} | {result.path} | {_num(result.rps)}{errors} | {_num(result.p50_ms, 2)} | {_num(result.p99_ms, 2)} | "
            f"{_cpu(result)} | {_num(result.cpu_total())} | {_rss(result)} | " + " | ".join(extra) + " |"
        )
    return "\n".join(lines)


def _median_run(runs: list[CaseResult]) -> CaseResult:
    """One result whose figures are the medians of ``runs`` (same label and case)."""
    first = runs[0]
    merged = CaseResult(first.protocol, first.size, first.concurrency, first.path, label=first.label)

    def med(values: list[float]) -> float:
        clean = [v for v in values if not math.isnan(v)]
        return statistics.median(clean) if clean else float("nan")

    merged.rps = med([r.rps for r in runs])
    merged.p50_ms = med([r.p50_ms for r in runs])
    merged.p99_ms = med([r.p99_ms for r in runs])
    merged.errors = sum(r.errors for r in runs)
    merged.requests = sum(r.requests for r in runs)
    for role in {role for r in runs for role in r.cpu_us}:
        merged.cpu_us[role] = med([r.cpu_us.get(role, math.nan) for r in runs])
    for role in {role for r in runs for role in r.peak_rss_mib}:
        merged.peak_rss_mib[role] = max(r.peak_rss_mib.get(role, 0.0) for r in runs)
    return merged


def levers_table(results: list[CaseResult]) -> str:
    """The lever runs (fedbus only): per variant and workload the median of its runs, against the first variant."""
    lines = [
        "| lever | case | runs | exch/s | p50 ms | p99 ms | CPU µs/exch: consumer SS / provider SS / provider "
        "| both SS vs first row | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, str, int, int], list[CaseResult]] = {}
    failures: dict[tuple[str, str, int, int], list[str]] = {}
    for result in results:
        if result.label:
            key = (result.label, *result.case)
            groups.setdefault(key, [])
            if result.failure is None:
                groups[key].append(result)
            else:
                failures.setdefault(key, []).append(result.failure)
    baseline: dict[tuple[str, int, int], float] = {}
    for (label, protocol, size, concurrency), runs in groups.items():
        case = f"{protocol.upper()} {size_text(size)} c={concurrency}"
        failed = f" ({len(failures[(label, protocol, size, concurrency)])} failed)" if (label, protocol, size, concurrency) in failures else ""
        if not runs:
            lines.append(f"| {label} | {case} | 0{failed} | | | | | | |")
            continue
        merged = _median_run(runs)
        both = merged.cpu_us.get("first", math.nan) + merged.cpu_us.get("second", math.nan)
        first = baseline.setdefault(merged.case, both)
        change = f"{(both / first - 1) * 100:+.0f} %" if first and not math.isnan(both) else "-"
        errors = f" ({merged.errors} errors)" if merged.errors else ""
        lines.append(f"| {label} | {case} | {len(runs)}{failed} | {_num(merged.rps)}{errors} | {_num(merged.p50_ms, 2)} | "
                     f"{_num(merged.p99_ms, 2)} | {_cpu(merged)} | {change} | {_rss(merged)} |")
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    """NaN -> None, recursively, so the JSON is standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(results: list[CaseResult], **extra: Any) -> dict[str, Any]:
    """Everything as one JSON-ready document: ``extra`` (machine, options, configuration), runs, ratios."""
    document: dict[str, Any] = _clean({
        **extra,
        "runs": [asdict(r) for r in results if not r.label],
        "ratios": [asdict(r) for r in ratios(results)],
        "levers": [asdict(r) for r in results if r.label],
    })
    return document
