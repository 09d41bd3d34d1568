"""Moved to :mod:`tests.federation.world` and :mod:`tests.federation.provider`; this name stays importable while
other work migrates."""

from tests.federation.ca import ocsp_for
from tests.federation.pki import der as der
from tests.federation.provider import *  # noqa: F401,F403
from tests.federation.world import *  # noqa: F401,F403
from tests.loopback import coroutine_test as coroutine_test, free_port as free_port, now as now

ocsp_response = ocsp_for
