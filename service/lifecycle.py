"""`python -m service prune --older-than AGE [--dry-run]`: retention by age.

Removes every session whose last activity is older than AGE: the greatest `updated_at` of the
session, its agents, its messages and its multi-agent states (so a session whose history grew
recently is not old). It prints each session id it removes (with --dry-run: would remove) on
stdout, one per line, as it goes. It is safe while the service serves traffic: batches of
--batch-size sessions, each its own short transaction, walking the sessions in id order;
a session a write holds at that moment (`SKIP LOCKED`: every write under a session holds its row
until it commits) is left for the next run, and activity is checked again once the batch is
locked, so a write committed meanwhile keeps its session. The cut-off is fixed once, at the
start, by the database's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import TextIO

import asyncpg

from service.queries import Q
from service.settings import Settings

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_AGE_SECONDS = 36_500 * 86400  # a century: beyond it, timestamps arithmetic overflows
_AGE = re.compile(r"^(\d{1,12})([smhd])$")
APPLICATION_NAME = "strands-session-backend-prune"


def parse_age(text: str) -> int:
    """`30d`, `12h`, `90m`, `45s` (`0s`: everything) in seconds; ArgumentTypeError otherwise."""
    match = _AGE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age: use a whole number with s, m, h or d (30d, 12h, 0s)"
        )
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds > MAX_AGE_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is too long an age (at most 36500d)")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service prune",
        description="Delete sessions whose last activity (the session, its agents, messages "
        "and multi-agent states) is older than AGE; prints each removed session id.",
    )
    parser.add_argument(
        "--older-than",
        required=True,
        type=parse_age,
        metavar="AGE",
        help="a whole number with s, m, h or d: 30d, 12h, 90m; 0s: every session",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the sessions that would be removed; remove nothing",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=100,
        metavar="N",
        choices=range(1, 10_001),
        help="sessions per transaction (1-10000)",
    )
    return parser


def options(argv: list[str]) -> argparse.Namespace:
    """The parsed arguments of `prune`; a bad one exits 2 with a message (argparse)."""
    return _parser().parse_args(argv)


async def prune(
    conn: asyncpg.Connection, older_than: int, dry_run: bool, batch_size: int, out: TextIO
) -> int:
    """Remove (or list) the sessions last active before now - `older_than` s; how many."""
    cutoff = await conn.fetchval(Q["prune_cutoff"], float(older_than))
    after, total = "", 0
    while True:
        if dry_run:
            ids = [
                r["session_id"]
                for r in await conn.fetch(Q["prune_candidates"], cutoff, after, batch_size)
            ]
            walked = ids
        else:
            async with conn.transaction():
                walked = [
                    r["session_id"]
                    for r in await conn.fetch(Q["prune_lock"], cutoff, after, batch_size)
                ]
                ids = [
                    r["session_id"] for r in await conn.fetch(Q["prune_sessions"], cutoff, walked)
                ]
        if ids:
            out.write("".join(f"{sid}\n" for sid in ids))
            out.flush()
        total += len(ids)
        if len(walked) < batch_size:
            return total
        after = walked[-1]


async def _run(dsn: str, args: argparse.Namespace, settings: Settings) -> int:
    conn = await asyncpg.connect(
        dsn,
        timeout=settings.db_connect_timeout_seconds,
        server_settings={
            "application_name": APPLICATION_NAME,
            "statement_timeout": str(int(settings.db_statement_timeout_seconds * 1000)),
        },
    )
    try:
        return await prune(conn, args.older_than, args.dry_run, args.batch_size, sys.stdout)
    finally:
        await conn.close()


def run(dsn: str, args: argparse.Namespace, settings: Settings) -> int:
    """`prune` itself: the exit code (0, or 1 when the database fails)."""
    try:
        total = asyncio.run(_run(dsn, args, settings))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"prune failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {total} session(s)", file=sys.stderr)
    return 0
