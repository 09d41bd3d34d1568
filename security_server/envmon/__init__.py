"""Environmental monitoring at the edge: system figures from psutil, sampled on the reactor's clock, for
``getSecurityServerMetrics`` (envmon-messages; the decisions and the answer are in ``core/envmon.py``)."""
