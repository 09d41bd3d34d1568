"""structlog set-up: JSON lines when not on a terminal, level filtering."""

from __future__ import annotations

import io
import json

import structlog

from security_server.core.config import LoggingConfig
from security_server.logconfig import configure_logging


def test_json_lines_when_not_a_terminal() -> None:
    """With format=auto and a non-terminal stream, each event is one JSON object with its fields."""
    stream = io.StringIO()
    configure_logging(LoggingConfig(level="info", format="auto"), stream=stream)
    structlog.get_logger().info("message_forwarded", query_id="q1", duration_ms=3)
    event = json.loads(stream.getvalue().strip())
    assert event["event"] == "message_forwarded"
    assert event["query_id"] == "q1"
    assert event["level"] == "info"
    assert "timestamp" in event


def test_level_filters_events() -> None:
    """Events below the configured level are dropped."""
    stream = io.StringIO()
    configure_logging(LoggingConfig(level="warning", format="json"), stream=stream)
    structlog.get_logger().info("ignored")
    structlog.get_logger().warning("kept")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["kept"]


def test_console_format_is_readable() -> None:
    """format=console renders key=value text rather than JSON."""
    stream = io.StringIO()
    configure_logging(LoggingConfig(level="info", format="console"), stream=stream)
    structlog.get_logger().info("config_loaded", path="conf/x.ini")
    assert "config_loaded" in stream.getvalue()
    assert "path" in stream.getvalue() and not stream.getvalue().lstrip().startswith("{")
