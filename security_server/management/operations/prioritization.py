"""``/system/timestamping-services/prioritization-strategy`` and ``/certificate-authorities/ocsp-prioritization-strategy``.

X-Road orders its timestamping services and OCSP responders by their cost type when an administrator asks it to
(``ONLY_FREE``, ``FREE_FIRST``, ...). fedbus's global configuration carries no cost types, and fedbus asks the
approved timestamping services in their published order (security_server/messagelog/timestamper.py) and a
certificate's first published OCSP responder (security_server/service.py ``own_certificates``): X-Road's ``NONE``,
which is what these answer. They are read from the code, not configured: a strategy fedbus does not follow is never
shown.
"""

from __future__ import annotations

from security_server.management.api import ApiRequest, ApiResponse, Operation
from security_server.management.context import OperationContext
from security_server.management.operations.common import PREFIX
from security_server.management.permissions import roles_for

PUBLISHED_ORDER = "NONE"
"""X-Road's ``ServicePrioritizationStrategy`` for "no ordering by cost type": the published order."""


def get_timestamping_strategy(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /system/timestamping-services/prioritization-strategy``."""
    return ApiResponse(200, PUBLISHED_ORDER)


def get_ocsp_strategy(context: OperationContext, request: ApiRequest) -> ApiResponse:
    """``GET /certificate-authorities/ocsp-prioritization-strategy``."""
    return ApiResponse(200, PUBLISHED_ORDER)


OPERATIONS = (
    Operation("GET", f"{PREFIX}/system/timestamping-services/prioritization-strategy",
              "getTimestampingPrioritizationStrategy", roles_for("getTimestampingPrioritizationStrategy"),
              get_timestamping_strategy),
    Operation("GET", f"{PREFIX}/certificate-authorities/ocsp-prioritization-strategy",
              "getOcspPrioritizationStrategy", roles_for("getOcspPrioritizationStrategy"), get_ocsp_strategy),
)
