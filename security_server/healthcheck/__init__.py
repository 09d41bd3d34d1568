"""The health check (ig-xlb §3.4): named checks over injected sources, a cache of their results, maintenance
mode, and the plain-HTTP resource a load balancer polls (``/metrics`` is served beside it)."""
