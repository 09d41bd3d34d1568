"""The store layer: what the registry, the server configuration and the message log stand on.

=================  ===============================================================================================
``engine``         the seam: the ``Database``, ``Connection`` and ``Cursor`` protocols a store writes SQL against
``sqlite``         the SQLite engine: opening, the shared pragmas, the one transaction mode, the error mapping
``postgresql``     the PostgreSQL engine (psycopg 3, pooled): the same transaction semantics and error leaves
``opening``        :func:`~security_server.store.opening.open_database`, the one place that picks the engine
``migrations``     numbered migrations per store, recorded in ``schema_migrations``, applied in order on open
``errors``         the :class:`~security_server.core.errors.DatabaseError` leaves every engine raises
=================  ===============================================================================================

``[database] url`` (issue 19) chooses the engine for the server configuration and the registry: absent, the
embedded SQLite file; ``postgresql://...``, a PostgreSQL database that several nodes share. The stores' SQL is
written once with ``?`` placeholders (the PostgreSQL engine translates them); a migration whose SQL must differ
gives PostgreSQL's form beside SQLite's (``sql_migration(..., postgresql=...)``), so SQLite databases keep their
exact schema. The message log stays on SQLite, local to each node.

**Plain sqlite3, not sqlite-utils, measured.** ``bench/store_layer.py`` appends message-log records the way the
ordered writer does (head read, link and hash, insert, commit; one ``BEGIN IMMEDIATE`` transaction per batch) through
this layer's ``executemany`` and through sqlite-utils' ``Table.insert_all`` in the same transaction. On the
development machine (2 cores, shared with other work, load around 4), 2,000 records of 1 KiB with a 1.5 KiB
signature, median of 3 alternating rounds::

    synchronous  batch   records/s sqlite3 / sqlite-utils   CPU µs per record sqlite3 / sqlite-utils
    FULL             1          185 /   162  (1.14x)              398 / 517  (1.30x)
    FULL            10        1,265 / 1,078  (1.17x)              101 / 131  (1.31x)
    FULL           100        4,850 / 4,434  (1.09x)               58 /  73  (1.26x)
    NORMAL           1        2,110 / 1,306  (1.62x)              122 / 207  (1.70x)
    NORMAL          10        5,301 / 4,362  (1.22x)               50 /  72  (1.45x)
    NORMAL         100        8,049 / 5,850  (1.38x)               38 /  52  (1.38x)

sqlite-utils costs a quarter to two thirds more CPU per record (it builds a dict per row, inspects the table and
writes its SQL on every call); with ``synchronous=FULL`` the fsync hides part of that in wall time, with ``NORMAL``
it does not. What sqlite-utils gave the stores besides inserts (``enable_wal``, table creation, its migrations)
is a few lines here, and its migrations record names, not numbers, which issue 19's second engine could not share.
So no store uses sqlite-utils; databases it migrated are adopted by :mod:`security_server.store.migrations`.
"""
