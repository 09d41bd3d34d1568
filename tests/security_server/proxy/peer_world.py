"""Moved to :mod:`tests.federation.peers`; this name stays importable while other work migrates."""

from tests.federation.peers import *  # noqa: F401,F403
