"""Operational monitoring at the edge: the bounded buffer the proxies hand records to, the SQLite store, and
the writer that moves records from one to the other off the exchange path (issue 15)."""
