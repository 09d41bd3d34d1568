"""What the operation modules share: X-Road's time format and the ``/api/v1`` prefix."""

from __future__ import annotations

from datetime import UTC, datetime

PREFIX = "/api/v1"
EPOCH = "1970-01-01T00:00:00.000Z"
"""A date-time fedbus does not keep (X-Road's date-time fields are required and 24 characters)."""


def xroad_time(moment: datetime) -> str:
    """``2018-12-15T00:00:00.001Z``: UTC with milliseconds (X-Road's date-time fields are 24 characters)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
