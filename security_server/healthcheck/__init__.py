"""The security server's health checks (ig-xlb §3.4): named checks over injected sources. The checker that runs
and caches them, maintenance mode and the plain-HTTP resources are shared with the registry and live in
``security_server/edge/health_checker.py`` and ``health_resource.py``."""
