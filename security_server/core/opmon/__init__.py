"""Operational monitoring (pr-opmon): the operational record, and the decisions behind its two services."""
