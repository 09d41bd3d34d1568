"""Moved to :mod:`tests.federation.ca`; this name stays importable while other work migrates."""

from tests.federation.ca import *  # noqa: F401,F403
