"""Moved to :mod:`tests.federation.pki`; this name stays importable while other work migrates."""

from tests.federation.pki import *  # noqa: F401,F403
