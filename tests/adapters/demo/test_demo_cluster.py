"""``fedbus demo --cluster``: the clustered federation runs, a provider node is killed and traffic continues; without
PostgreSQL or HAProxy the demo says what to install."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.demo import cluster
from adapters.demo.runner import DemoOptions, run_demo

FEDBUS = str(Path(sys.executable).parent / "fedbus")


def test_without_postgresql_or_haproxy_the_demo_says_what_to_install(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing package stops the first step, naming the Debian packages to install; exit status 1."""
    monkeypatch.setattr(cluster, "missing_packages", lambda: ["haproxy"])
    out = io.StringIO()
    status = run_demo(DemoOptions(workdir=tmp_path / "demo", base_port=None, once=True, cluster=True), out)
    assert status == 1, out.getvalue()
    assert "needs PostgreSQL (Debian package postgresql) and HAProxy (Debian package haproxy)" in out.getvalue()
    assert "apt-get install haproxy" in out.getvalue()


@pytest.mark.timeout(1200)  # a guard against a hang only: the demo bounds each of its own waits
def test_the_cluster_demo_kills_a_node_and_traffic_continues(tmp_path: Path) -> None:
    """``fedbus demo --cluster --once`` as a process: every step passes, node 1 of ss-pop is killed with calls going
    on, HAProxy marks it down, node 2 answers, node 1 restarted is up again; nothing is left running."""
    missing = cluster.missing_packages()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the cluster demo: install the Debian packages {' '.join(missing)}")
        pytest.skip(f"needs the Debian packages {' '.join(missing)}")
    for attempt in range(3):  # --base-port auto: another program may take a port after the demo's check
        workdir = tmp_path / f"demo-{attempt}"
        done = subprocess.run([FEDBUS, "demo", "--cluster", "--once", "--base-port", "auto", "--workdir", str(workdir)],
                              capture_output=True, text=True, timeout=1100, check=False)
        if not (done.returncode == 2 and "port in use by another program" in done.stdout):
            break
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    assert "FAILED" not in output and "All steps done" in output
    assert "the anchor lists 2 configuration sources" in output
    assert re.search(r"killed ss-pop node 1 \(kill -9, pid \d+\)", output)
    answered = re.search(r"(\d+) of (\d+) calls answered", output)
    assert answered is not None and int(answered.group(1)) >= int(answered.group(2)) - 2
    assert "HAProxy's view: {'node1': 'DOWN', 'node2': 'UP'}; 10 more calls answered by node 2 alone" in output
    assert "HAProxy's view: {'node1': 'UP', 'node2': 'UP'}; 10 calls answered" in output
    assert "ss-pop-node2 (pid" in output and "registry-node2 (pid" in output and "haproxy (pid" in output
    assert (workdir / "logs" / "postgres.log").is_file()
