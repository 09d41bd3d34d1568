"""The registry's service layer: the operations an administrator of the registry performs, one module per area.

Each function takes the open :class:`~central_registry.store.RegistryStore` (or the registry's directory, for
initialisation) and plain values, and returns values or raises a :class:`~security_server.core.errors.BusError`
(:mod:`.errors` for the refusals a face must tell apart: not found, conflict). The CLI (``fedbus registry ...``)
and the management REST API (:mod:`central_registry.management`) are thin faces over these functions
(ARCHITECTURE.md, "The operator's side"); neither opens a store or checks a rule on its own.
"""
