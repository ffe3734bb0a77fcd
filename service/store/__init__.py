"""Typed async functions over the named queries, one per Strands verb; each takes a Connection.

They raise the domain errors of `service.errors` (404, 409, 412) and never commit: the caller's
transaction does.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from service.errors import NotFound, ServiceError, version_mismatch
from service.queries import Q


async def missing_or_mismatch(
    conn: asyncpg.Connection,
    version_query: str,
    args: tuple[Any, ...],
    if_match: int | None,
    missing: NotFound,
    what: str,
) -> ServiceError:
    """After a write matched no row: 412 when the row exists at another version, else 404."""
    if if_match is not None and await conn.fetchrow(Q[version_query], *args) is not None:
        return version_mismatch(what, if_match)
    return missing
