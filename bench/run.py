"""``make bench``: direct, bare hop and fedbus, measured in one run on loopback, as a table and as JSON.

Three paths, each a chain of separate processes on 127.0.0.1, driven by wrk with the same request:

1. **direct**: wrk -> echo provider (``bench/echo_provider.py``);
2. **barehop**: wrk -> bare hop -> bare hop -> echo provider (``bench/barehop.py``: the Python ceiling for two hops);
3. **fedbus**: wrk -> the consumer's security server (client proxy) -> mutual TLS -> the provider's security server
   -> echo provider, everything on: signatures both ways, both message logs durable (SQLite WAL,
   ``synchronous=FULL``), OCSP checks of the peer, batch timestamping (the registry's TSA).

for SOAP and REST, 1 KiB and 100 KiB request bodies, concurrency 1 and 50. The federation is set up through the
real ``fedbus`` command line exactly as ``fedbus demo`` does it (``bench/fedbus_pair.py``). Then, unless
``--no-levers``, fedbus alone is measured with each lever switched (message log ``synchronous``, the mutual-TLS
keep-alive pool, timestamping, a stand-in OCSP cache, the signing keys in SoftHSM2 (docs/hsm.md); see
``bench/ss_launcher.py``), and with ``--profile`` both
security servers are sampled with py-spy during a run. Every wrk run is time-limited; every process started is
stopped at the end, also on Ctrl-C, SIGTERM or failure. docs/performance.md explains the figures.

    .venv/bin/python bench/run.py                 # everything (about 10 minutes)
    .venv/bin/python bench/run.py --quick         # SOAP and REST 1 KiB at c=1 and c=50, 3 s each (~2 minutes)
    .venv/bin/python bench/run.py --seconds 20 --profile --out /tmp/figures
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.demo.federation import TAX_BOARD  # noqa: E402
from adapters.demo.progress import StepFailed  # noqa: E402
from bench.fedbus_pair import BenchProcesses, Levers, free_ports  # noqa: E402
from bench.measure import rss_kib, run_wrk  # noqa: E402
from bench.report import PROCESS_ROLES, CaseResult, levers_table, results_table, size_text, to_json  # noqa: E402
from bench.workload import request_for  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
PROTOCOLS = ("soap", "rest")
SIZES = (1024, 100 * 1024)
CONCURRENCY = (1, 50)
WARM_UP_SECONDS = 2


def _machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "kernel": platform.release(),
        "load_average": os.getloadavg(),
    }


def _wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return ""
    completed = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (completed.stdout or completed.stderr).splitlines()[0] if (completed.stdout or completed.stderr) else ""


class Bench:
    """One benchmark run: the processes, the options, and the results so far."""

    def __init__(self, procs: BenchProcesses, seconds: int, wrk_cpus: str | None, say: Callable[[str], None]) -> None:
        self.procs = procs
        self.seconds = seconds
        self.wrk_cpus = wrk_cpus
        self.say = say
        self.results: list[CaseResult] = []

    def url(self, path: str, request_path: str) -> str:
        """Where wrk sends a request for ``path``."""
        ports = self.procs.ports
        port = {"direct": ports.echo, "barehop": ports.hop1, "fedbus": ports.demo.client_proxy(TAX_BOARD)}[path]
        return f"http://127.0.0.1:{port}{request_path}"

    def processes(self, path: str) -> dict[str, int]:
        """Name -> pid of the processes a path runs through."""
        return self.procs.pids(*PROCESS_ROLES[path])

    def measure(self, protocol: str, size: int, concurrency: int, path: str, *, label: str = "",
                seconds: int | None = None) -> CaseResult:
        """Warm up, then one measured wrk run; a failure is recorded in the result, not raised."""
        request = request_for(protocol, path, size)  # type: ignore[arg-type]
        result = CaseResult(protocol, size, concurrency, path, label=label)
        url = self.url(path, request.path)
        roles = PROCESS_ROLES[path]
        try:
            processes = self.processes(path)
            run_wrk(url, method=request.method, body=request.body, headers=request.headers, connections=concurrency,
                    seconds=WARM_UP_SECONDS, processes={}, wrk_cpus=self.wrk_cpus)
            load = run_wrk(url, method=request.method, body=request.body, headers=request.headers,
                           connections=concurrency, seconds=seconds or self.seconds, processes=processes,
                           wrk_cpus=self.wrk_cpus)
        except (subprocess.SubprocessError, RuntimeError, OSError, KeyError) as err:
            result.failure = f"{type(err).__name__}: {err}"
            self.say(f"  {path:<8} {protocol.upper()} {size_text(size)} c={concurrency}: FAILED {result.failure}")
            self.results.append(result)
            return result
        result.rps, result.p50_ms, result.p99_ms = load.rps, load.p50_ms, load.p99_ms
        result.requests, result.seconds, result.errors = load.requests, load.seconds, load.errors
        result.cpu_us = {roles[name]: value for name, value in load.cpu_us_per_request.items()}
        result.peak_rss_mib = {roles[name]: value for name, value in load.peak_rss_mib.items()}
        cpu = " ".join(f"{role}={value:.0f}" for role, value in result.cpu_us.items())
        # Exchanges per core-second of one security server (the busier one): the figure that carries to a bigger
        # machine (issue 18; docs/performance.md "All cores").
        busiest = max((result.cpu_us.get(role, 0.0) for role in ("first", "second")), default=0.0)
        if busiest > 0:
            cpu += f"  ({1e6 / busiest:,.0f} exch/core-s)"
        self.say(f"  {label + ' ' if label else ''}{path:<8} {protocol.upper()} {size_text(size):>7} c={concurrency:<3} "
                 f"{result.rps:>9,.0f}/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  CPU µs/exch {cpu}"
                 + (f"  ERRORS {result.errors}" if result.errors else ""))
        self.results.append(result)
        return result


def _profile(bench: Bench, seconds: int, out_dir: Path, stamp: str) -> dict[str, Any]:
    """Sample both security servers with py-spy during a SOAP 1 KiB c=50 run; the top frames of each.

    ``--gil`` keeps only the samples of the thread holding the GIL: the Python work that a single process
    serialises (the reactor thread, and the writer thread while it runs Python), not threads waiting in fsync.
    """
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        return {"error": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    found: dict[str, Any] = {}
    recorders: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for code in ("ss-tax", "ss-pop"):
            raw = out_dir / f"{stamp}-pyspy-{code}.txt"
            recorders[code] = (subprocess.Popen(
                [py_spy, "record", "--pid", str(bench.procs.managed[code].pid), "--duration", str(seconds + 1),
                 "--rate", "200", "--gil", "--format", "raw", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            ), raw)
        time.sleep(0.5)
        bench.measure("soap", 1024, 50, "fedbus", label="profiled (py-spy)", seconds=seconds)
        for code, (recorder, raw) in recorders.items():
            try:
                _, err = recorder.communicate(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                os.killpg(recorder.pid, 9)
                recorder.wait(timeout=5)
                err = b"timed out"
            if recorder.returncode != 0 or not raw.exists():
                found[code] = {"error": err.decode("utf-8", "replace")[-500:]}
                continue
            found[code] = {"raw": str(raw), **top_frames(raw.read_text(encoding="utf-8", errors="replace"))}
    finally:
        for recorder, _ in recorders.values():
            if recorder.poll() is None:
                os.killpg(recorder.pid, 9)
                recorder.wait(timeout=5)
    return found


def top_frames(collapsed: str, count: int = 15) -> dict[str, Any]:
    """From py-spy's raw (collapsed) stacks: the functions with the most samples on top (self) and anywhere
    on the stack (inclusive), as (function, share of all samples), lines of one function counted together."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        total += samples
        # "function (file.py:line)" -> "function (file.py)": a function counts once however many lines sampled
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")
                  if f and not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    share = (lambda n: round(n / total, 4)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "self": [(frame, share(n)) for frame, n in own.most_common(count)],
        "inclusive": [(frame, share(n)) for frame, n in inclusive.most_common(count)],
    }


def _soak(bench: Bench, seconds: int, size: int = 1024) -> dict[str, Any]:
    """SOAP of ``size`` bytes at c=50 through fedbus for ``seconds``, in 30 s runs, with both servers' RSS after
    each."""
    samples: list[dict[str, Any]] = []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        chunk = int(max(5, min(30, ends - time.monotonic())))
        result = bench.measure("soap", size, 50, "fedbus", label=f"soak {size_text(size)}", seconds=chunk)
        samples.append({"rps": result.rps, **{code: rss_kib(bench.procs.managed[code].pid) / 1024
                                               for code in ("ss-tax", "ss-pop")}})
    return {"seconds": seconds, "size": size, "samples": samples}


def _timestamps_stored(procs: BenchProcesses) -> dict[str, dict[str, int]]:
    """How many batch timestamps each security server stored (its ``timestamp_stored`` log events), over how many
    records: evidence that timestamping ran during the measurements."""
    found: dict[str, dict[str, int]] = {}
    for code in ("ss-tax", "ss-pop"):
        tokens = records = 0
        try:
            lines = procs.layout.log(code).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            if '"timestamp_stored"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "timestamp_stored":
                tokens += 1
                records += int(event.get("records") or 0)
        found[code] = {"tokens": tokens, "records": records}
    return found


LEVER_VARIANTS: list[tuple[str, Levers]] = [
    ("defaults (FULL, pool 64, verdicts kept, batch signing, timestamping)", Levers()),
    ("batch signing off", Levers(batch_signing=False)),
    ("Agent as the provider client", Levers(agent_provider_client=True)),
    ("message log synchronous=NORMAL", Levers(synchronous="NORMAL")),
    ("pool of 8 idle mTLS connections", Levers(max_idle=8)),
    ("new mTLS connection per exchange", Levers(max_idle=0)),
    ("timestamping off", Levers(evidence=False)),
    ("trust verdicts not kept", Levers(verdict_cache=False)),
    ("operational monitoring off", Levers(opmon=False)),
    ("garbage collector not tuned (CPython's defaults)", Levers(gc_tuning=False)),
    ("heap not trimmed (glibc keeps freed pages)", Levers(heap_trim=False)),
    ("signing keys in SoftHSM2 (batch signing)", Levers(signing_keys_in_hsm=True)),
    ("signing keys in SoftHSM2, batch signing off", Levers(signing_keys_in_hsm=True, batch_signing=False)),
    ("1 worker per security server (the default, as the next row's baseline)", Levers(workers=1)),
    ("2 worker processes per security server", Levers(workers=2)),
    ("levers off (pool 8, verdicts not kept, no batches, Agent)",
     Levers(max_idle=8, verdict_cache=False, batch_signing=False, agent_provider_client=True)),
]


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark as the command line says; 0 when every run completed, 1 otherwise, 2 when refused."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # stop like Ctrl-C: everything started is stopped
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="SOAP and REST 1 KiB at c=1 and c=50, 3 s runs, no levers")
    parser.add_argument("--seconds", type=int, help="seconds per measured run (default 10; 3 with --quick)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="where the JSON goes (default bench/results)")
    parser.add_argument("--workdir", type=Path, help="the federation's directory (default: a new temporary one, removed)")
    parser.add_argument("--base-port", type=int, default=19100, help="the first port to try (the bench uses 38 from it)")
    parser.add_argument("--no-levers", action="store_true", help="skip the lever runs")
    parser.add_argument("--only-levers", action="store_true", help="skip the main table: set up, then the lever runs")
    parser.add_argument("--levers", action="store_true", help="run the lever runs also with --quick")
    parser.add_argument("--lever-rounds", type=int, default=2, help="rounds of lever runs (c=50 each; c=1 in the first)")
    parser.add_argument("--lever", action="append", default=[], metavar="TEXT",
                        help="run only the lever rows whose label contains TEXT (repeatable), e.g. --lever defaults "
                             "--lever monitoring")
    parser.add_argument("--profile", action="store_true", help="profile both security servers with py-spy")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="worker processes per security server for the main table ([server] workers; default 1)")
    parser.add_argument("--soak", type=int, default=0, metavar="SECONDS", help="then SOAP c=50 (1 KiB, or --soak-size) for SECONDS, RSS sampled")
    parser.add_argument("--soak-size", type=int, action="append", metavar="BYTES",
                        help="the soak's SOAP request size (default 1024); repeat for one soak after another "
                             "on the same servers")
    parser.add_argument("--census-every", type=float, default=0.0, metavar="SECONDS",
                        help="diagnosis: both servers write a memory census to <workdir>/<server>/census.jsonl "
                             "every SECONDS (bench/memory_census.py); keep the workdir with --workdir")
    parser.add_argument("--wrk-cpus", help="pin wrk to these CPUs (taskset -c), e.g. 1")
    parser.add_argument("--timestamp-interval", type=float, default=5.0, help="batch timestamping interval (s)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed; `make bench` installs it (apt-get install wrk)", file=sys.stderr)
        return 2
    seconds = args.seconds or (3 if args.quick else 10)
    if seconds < 1 or seconds > 600 or not 1 <= args.lever_rounds <= 10:
        print("bench: --seconds must be from 1 to 600 and --lever-rounds from 1 to 10", file=sys.stderr)
        return 2
    protocols, sizes, concurrency = PROTOCOLS, SIZES if not args.quick else (1024,), CONCURRENCY
    run_levers = args.only_levers or ((not args.no_levers) and (args.levers or not args.quick))

    def say(text: str) -> None:
        print(text, flush=True)

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    keep = args.workdir is not None
    root = args.workdir.resolve() if keep else Path(tempfile.mkdtemp(prefix="fedbus-bench-"))
    if keep:
        if root.exists() and any(root.iterdir()):
            print(f"bench: {root} is not empty; name a new directory", file=sys.stderr)
            return 2
        root.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    machine_before = _machine()
    ports = free_ports(args.base_port)
    say(f"fedbus bench: {machine_before['cpus']} CPUs ({machine_before['cpu']}), load average "
        f"{' '.join(f'{x:.2f}' for x in machine_before['load_average'])} before starting; ports {ports.demo.base}-"
        f"{ports.hop2} on 127.0.0.1; working directory {root}")
    bench: Bench | None = None
    profile: dict[str, Any] = {}
    soak: dict[str, Any] = {}
    configuration: dict[str, Any] = {}
    timestamps: dict[str, dict[str, int]] = {}
    status = 0
    wall = time.monotonic()
    try:
        with BenchProcesses(root, ports, sys.stdout, timestamp_interval=args.timestamp_interval) as procs:
            procs.start_references()
            say("Setting up the federation with the fedbus command line (as `fedbus demo` does):")
            procs.set_up_federation()
            procs.restart_servers(Levers(workers=args.workers, census_every=args.census_every))
            configuration = {code: json.loads(procs.server_described(code) or "{}") for code in ("ss-tax", "ss-pop")}
            say(f"Security servers: {json.dumps(configuration['ss-tax'])}")
            bench = Bench(procs, seconds, args.wrk_cpus, say)
            say(f"\nMeasuring, {seconds} s a run after a {WARM_UP_SECONDS} s warm-up:")
            for protocol in protocols if not args.only_levers else ():
                for size in sizes:
                    for conns in concurrency:
                        for path in ("direct", "barehop", "fedbus"):
                            bench.measure(protocol, size, conns, path)
            if run_levers:
                say(f"\nLevers (fedbus only, SOAP 1 KiB; the servers are restarted for each; {args.lever_rounds} "
                    "rounds, variants interleaved, medians in the table):")
                for round_number in range(1, args.lever_rounds + 1):
                    for label, levers in LEVER_VARIANTS:
                        if args.lever and not any(text in label for text in args.lever):
                            continue
                        try:
                            procs.restart_servers(levers)
                        except StepFailed as err:
                            say(f"  {label}: restart failed: {err.message}")
                            status = 1
                            continue
                        for conns in (50, 1) if round_number == 1 else (50,):
                            bench.measure("soap", 1024, conns, "fedbus", label=label)
                procs.restart_servers(Levers(workers=args.workers, census_every=args.census_every))
            if args.profile:
                say("\nProfiling both security servers with py-spy (SOAP 1 KiB, c=50):")
                profile = _profile(bench, seconds, args.out, stamp)
                for code, found in profile.items():
                    if "self" in found:
                        say(f"  {code}: {found['samples']} samples; top (self): "
                            + "; ".join(f"{frame} {share:.1%}" for frame, share in found["self"][:5]))
                    else:
                        say(f"  {code}: {found}")
            timestamps = _timestamps_stored(procs)
            say(f"\nBatch timestamps stored during the whole run: " + ", ".join(
                f"{code} {found['tokens']} tokens over {found['records']} records" for code, found in timestamps.items()))
            if args.soak:
                soaks = []
                for soak_size in args.soak_size or [1024]:
                    say(f"\nSoak: SOAP {size_text(soak_size)} c=50 for {args.soak} s, RSS of both servers after "
                        "each 30 s:")
                    soaks.append(_soak(bench, args.soak, soak_size))
                soak = soaks[0] if len(soaks) == 1 else {"soaks": soaks}
    except StepFailed as err:
        say(f"bench: {err.message}")
        for detail in err.details:
            say(f"    {detail}")
        status = 1
    except KeyboardInterrupt:
        say("bench: interrupted; everything started was stopped")
        status = 130
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    results = bench.results if bench is not None else []
    if any(r.failure or r.errors for r in results):
        status = status or 1
    say("")
    table = results_table(results)
    say(table)
    lever_text = levers_table(results) if any(r.label for r in results) else ""
    if lever_text:
        say("")
        say(lever_text)
    document = to_json(
        results,
        started=started.isoformat(), seconds_per_run=seconds, warm_up_seconds=WARM_UP_SECONDS,
        wall_seconds=round(time.monotonic() - wall, 1), command=" ".join(["bench/run.py", *(argv or sys.argv[1:])]),
        machine={"before": machine_before, "after": _machine(), "wrk": _wrk_version(), "wrk_cpus": args.wrk_cpus},
        fedbus=configuration, timestamps=timestamps, profile=profile, soak=soak,
    )
    target = args.out / f"{stamp}.json"
    target.write_text(json.dumps(document, indent=2), encoding="utf-8")
    (args.out / f"{stamp}.md").write_text(table + ("\n\n" + lever_text if lever_text else "") + "\n", encoding="utf-8")
    say(f"\nWritten: {target} (and the tables in {target.with_suffix('.md').name}); "
        f"{time.monotonic() - wall:.0f} s in all; load average after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return status


if __name__ == "__main__":
    sys.exit(main())
