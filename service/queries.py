"""The named SQL of `sql/*.sql`, loaded once into a frozen name -> SQL mapping.

Each file holds blocks that start with `-- name: <name>`, then a one-line description, then one
statement. Queries run by their text through asyncpg's per-connection statement cache, which
prepares each once per connection and survives pool release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load(directory: Path = SQL_DIR) -> Mapping[str, str]:
    """Parse every `*.sql` file of `directory` into a read-only name -> statement mapping."""
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        marks = list(_NAME.finditer(text))
        for mark, following in zip(marks, [*marks[1:], None], strict=True):
            end = following.start() if following else len(text)
            body = (
                "\n".join(
                    line
                    for line in text[mark.end() : end].splitlines()
                    if not line.lstrip().startswith("--")
                )
                .strip()
                .rstrip(";")
            )
            name = mark.group(1)
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            if not body or ";" in body:
                raise ValueError(f"query {name!r} in {path.name} must hold exactly one statement")
            queries[name] = body
    return MappingProxyType(queries)


Q: Mapping[str, str] = load()
