"""kill -9 of a message log under load with its timestamper and archiver, then a restart that finishes the work.

After the kill: the database is intact, the chain verifies, there is no half record, every record whose
``log()`` fired (a caller got its answer) is present, and every archive file present is whole and verifies.
After the restart: every record is timestamped and archived, the archives form one unbroken chain from the
first, and every container in them verifies with the verification configuration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from security_server.core.archive import verify_archive
from security_server.core.evidence import read_verification_conf, verify_evidence
from security_server.messagelog.store import MessageLogStore

CHILD = Path(__file__).with_name("evidence_child.py")
REPO_ROOT = Path(__file__).resolve().parents[3]


def _child(mode: str, work: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(work)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )


def _run_until_killed(work: Path, *, acks: int, archives: int, deadline: float) -> list[str]:
    """Run the child under load; SIGKILL it once it acked ``acks`` records and wrote ``archives`` archives."""
    child = _child("run", work)
    lines: list[str] = []
    enough = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        seen_acks = 0
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("ACK "):
                seen_acks += 1
            elif line.startswith("STATUS ") and seen_acks >= acks and int(line.split()[2]) >= archives:
                enough.set()
        enough.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert enough.wait(deadline), f"child gave {len(lines)} lines in {deadline} s: {lines[-3:]}"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(deadline)
        reader.join(deadline)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stderr is not None
        errors = child.stderr.read()
        child.stderr.close()
        assert child.stdout is not None
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, errors[-3000:]
    return lines


def _finish(work: Path, deadline: float) -> str:
    child = _child("finish", work)
    out, errors = child.communicate(timeout=deadline)
    assert child.returncode == 0, errors[-3000:]
    return out


def _chain(archive_dir: Path) -> list[tuple[str, bytes]]:
    """Every archive in the folder, put in chain order by their linkinginfo; every one must verify in turn."""
    archives = {path.name: path.read_bytes() for path in archive_dir.glob("mlog-*.zip")}
    containers: list[tuple[str, bytes]] = []
    previous: str | None = None
    previous_file = ""
    while archives:
        followers = []
        for name, data in archives.items():
            verdict = verify_archive(data, previous)
            if verdict.ok and verdict.linking is not None and verdict.linking.prev_file == previous_file:
                followers.append((name, verdict))
        assert len(followers) == 1, f"after {previous_file or 'the start'}: {[n for n, _ in followers]} continue the chain"
        name, verdict = followers[0]
        containers += verdict.containers
        previous, previous_file = verdict.last_digest, name
        del archives[name]
    return containers


def test_kill_9_under_load_then_restart_leaves_complete_verifiable_evidence(tmp_path: Path) -> None:
    """SIGKILL mid-stream (records, timestamps and archives being written), then a restart: nothing half-written,
    every acked exchange logged, all stamped and archived in one verifiable archive chain."""
    work = tmp_path / "work"
    work.mkdir()
    lines = _run_until_killed(work, acks=250, archives=2, deadline=180)  # bounds, generous for a busy machine
    acked = {int(p[1]): p[2] for p in (line.split() for line in lines) if p[0] == "ACK"}
    assert len(acked) >= 250
    assert not [line for line in lines if line.startswith("FAIL")]

    with MessageLogStore(work / "log.db") as store:
        assert store.database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total = store.verify()  # no half record: every row links
        assert total >= len(acked)
        for record_id, query_id in acked.items():
            record = store.get(record_id)
            assert record is not None and record.query_id == query_id
    for path in (work / "archive").glob("mlog-*.zip"):  # a file with the final name is always a whole archive
        assert verify_archive(path.read_bytes(), None, strict=True).code in ("valid", "invalid_archive.previous_digest_mismatch")

    out = _finish(work, deadline=180)
    assert out.splitlines()[-1] == f"DONE {total} {len(list((work / 'archive').glob('mlog-*.zip')))}"
    assert list((work / "archive").glob(".*")) == []  # no temporary file left
    with MessageLogStore(work / "log.db") as store:
        assert store.untimestamped_count() == 0 and store.pending_archive() is None and store.archivable(1) == []
        assert store.verify() == total
    containers = _chain(work / "archive")
    assert len(containers) == total  # every record is in exactly one archive
    conf_dir = work / "verificationconf"
    conf = read_verification_conf(
        {p.relative_to(conf_dir).as_posix(): p.read_bytes() for p in conf_dir.rglob("*") if p.is_file()}
    )
    now = datetime.now(UTC)
    for name, container in containers[:: max(1, len(containers) // 40)]:  # a spread sample, to keep the test fast
        report = verify_evidence(container, conf, now)
        assert report.ok, (name, report.checks)
