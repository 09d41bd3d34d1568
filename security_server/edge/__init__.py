"""The edge toolkit: the few I/O recipes every Twisted-side module shares, each written once.

The pure core (``security_server/core``) does no I/O; the modules around it (proxies, signer, message log,
configuration client, registration, the registry, the CLIs) do, and they kept re-writing the same small pieces.
These live here, one module each, so that a fix (a bound on a body, an fsync) lands everywhere at once:

=====================  ======================================================  ==============================
piece                  module                                                  used by
=====================  ======================================================  ==============================
bounded HTTP fetch     :mod:`security_server.edge.http_fetch`                  signer.ocsp_client,
                                                                               proxy.peer_trust,
                                                                               messagelog.tsa_client,
                                                                               registration, confclient.client
bounded body reader    :mod:`security_server.edge.bounded_body`                http_fetch (and tests)
atomic file write      :mod:`security_server.edge.atomic_file`                 messagelog.archiver,
                                                                               confclient.bundle,
                                                                               signer.softtoken,
                                                                               signer.ocsp_client,
                                                                               central_registry (CA, TSA,
                                                                               publisher, cli)
CLI output and errors  :mod:`security_server.edge.cli_output`                  security_server.cli,
                                                                               security_server.audit_cli,
                                                                               central_registry.cli
health checks          :mod:`security_server.edge.health_checker`              security_server.monitoring,
                                                                               central_registry.health
health/metrics port    :mod:`security_server.edge.health_resource`             security_server.monitoring,
                                                                               central_registry.health
backup archives        :mod:`security_server.edge.backup_archive`              security_server.admin.backups,
                                                                               central_registry.admin.backups
=====================  ======================================================  ==============================

Why a package under ``security_server``: ``central_registry`` and ``adapters`` may import ``security_server``'s
edge modules (never the other way round), so one copy serves both roles; and it is not ``core``, because every
piece here waits on a socket, a disk or a terminal.
"""
