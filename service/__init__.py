"""Strands session backend: a PostgreSQL-backed HTTP store for Strands agent sessions."""

__version__ = "0.1.0"
