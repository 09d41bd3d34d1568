"""Moved to :mod:`tests.federation.evidence`; this name stays importable while other work migrates."""

from tests.federation.departments import *  # noqa: F401,F403
from tests.federation.evidence import *  # noqa: F401,F403
