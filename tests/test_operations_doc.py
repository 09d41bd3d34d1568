"""docs/operations.md stays true: its alert rules pass ``promtool check rules`` and name only metrics we export."""

from __future__ import annotations

import re
from pathlib import Path

from tests.promtool import assert_rules_pass


DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
EXPORTED = re.compile(r"`(fedbus_[a-z_]+)")


def yaml_blocks() -> list[str]:
    """The ```yaml blocks of the page, in order."""
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_alert_rules_pass_promtool(tmp_path: Path) -> None:
    """The alerting rules block is a valid Prometheus rule file (required in CI; skipped locally without promtool)."""
    (rules,) = [block for block in yaml_blocks() if block.startswith("groups:")]
    path = tmp_path / "fedbus-alerts.yml"
    path.write_text(rules, encoding="utf-8")
    assert_rules_pass(path)


def test_the_alerts_use_only_metrics_the_page_lists() -> None:
    """Every fedbus_ metric an alert names is one the metrics tables list (a renamed metric breaks this test)."""
    text = DOC.read_text(encoding="utf-8")
    listed = {name.removesuffix("_total") for name in EXPORTED.findall(text)}
    (rules,) = [block for block in yaml_blocks() if block.startswith("groups:")]
    used = {name.removesuffix("_total") for name in re.findall(r"\b(fedbus_[a-z_]+)", rules)}
    assert used and used <= listed, used - listed
