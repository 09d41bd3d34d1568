"""Prometheus's own checker, ``promtool``, as the tests' independent oracle for /metrics and alert rules.

It comes from Debian's ``prometheus`` package, which ``make test`` installs. Under CI its absence fails the test;
on a developer's machine without it the test is skipped with the package to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def promtool() -> str:
    """The path of ``promtool``: fails under CI when missing, skips elsewhere."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI (Debian package prometheus; the Makefile installs it)")
        pytest.skip("promtool not installed (apt install prometheus)")
    return found


def assert_metrics_pass(exposition: bytes) -> None:
    """``promtool check metrics`` accepts ``exposition`` without an error or a lint warning."""
    result = subprocess.run([promtool(), "check", "metrics"], input=exposition, capture_output=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout.decode() + result.stderr.decode()
    )


def assert_rules_pass(rules_file: Path) -> None:
    """``promtool check rules`` accepts the rule file."""
    result = subprocess.run([promtool(), "check", "rules", str(rules_file)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
