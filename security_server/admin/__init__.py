"""The security server's administration service layer: one module per area, shared by every face.

The CLI (:mod:`security_server.cli`) and the management REST API (:mod:`security_server.management`) are thin
faces over these functions (ARCHITECTURE.md, "The operator's side"): each takes the server directory (its stores
and tokens, :class:`~security_server.admin.server_dir.ServerDirectory`) and arguments already parsed into value
types, checks the rules, and returns a value or raises a :class:`~security_server.core.errors.BusError`. None of
them prints, parses command-line or JSON text, or knows which face called it.

==========================  ===========================================================================
``server_dir``              opening the server directory: configuration store, soft token, token set
``errors``                  the two refusals a face must tell apart: unknown (404) and conflicting (409)
``initialization``          the initial anchor and ``init``: owner member, server code
``system``                  the configuration anchor after init
``clients``                 hosted clients: list, search, get, add
``services``                services: add, enable, disable, list, show
``service_descriptions``    X-Road's view of services grouped by the description they came from
``access_rights``           grant, revoke, list
``local_groups``            local groups and their members
``keys``                    keys, certificate requests and certificates on the tokens
``backups``                 checksummed backups of the configuration and keys, and their restore
``registration``            registration requests to the registry (authCertReg, clientReg)
==========================  ===========================================================================
"""
