"""Keys, prefixes and keyword search of `/api/v1/storage` (the Strands `Storage` protocol).

Keys follow the normalisation of the SDK's own backends (`strands.storage.storage.
_normalize_key`): runs of `/` collapse, leading and trailing `/` go, and an empty key, a `\\` or
a `..` segment is refused. On top of that, PostgreSQL text cannot hold NUL, and a key is at most
1024 bytes of UTF-8 (S3's limit). Prefixes normalise as the SDK's do (a trailing `/` is kept).

Search is the SDK's default, `KeywordSearchStrategy`, run next to the data: the query's words
(stop words dropped) are matched against each entry's key (relative to the searched prefix,
without its file extension) and content; the score is the number of distinct query words
present; best first, ties in key order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from service.errors import InvalidId, InvalidRequest
from service.stopwords import STOP_WORDS

MAX_KEY_BYTES = 1024
_SLASHES = re.compile(r"/+")
_EXTENSION = re.compile(r"(?<=[^/])\.[^./]*$")  # as strands.storage.search.keyword
_SURROGATES = (0xD800, 0xDFFF)
_NON_WORD = re.compile(r"\W+")  # words as the SDK's keyword search splits them


def tokenize(text: str) -> set[str]:
    """The distinct lower-case words of `text` (runs of Unicode word characters)."""
    return {word for word in _NON_WORD.split(text.lower()) if word}


def _check(text: str, what: str) -> None:
    """`what` names the text in messages: "storage keys", "storage prefixes"."""
    if "\\" in text:
        raise InvalidId(f"{what} must not contain '\\'")
    if "\x00" in text:
        raise InvalidId(f"{what} must not contain NUL")
    if ".." in text.split("/"):
        raise InvalidId(f"{what} must not hold a '..' segment")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidId(f"{what} must be valid Unicode text") from None
    if size > MAX_KEY_BYTES:
        raise InvalidId(f"{what} must be at most {MAX_KEY_BYTES} bytes of UTF-8")


def normalize_key(key: str) -> str:
    """The key as the SDK's backends store it; 422 invalid_id when it cannot be one."""
    normalized = _SLASHES.sub("/", key).strip("/")
    if not normalized:
        raise InvalidId("storage keys must not be empty")
    _check(normalized, "storage keys")
    return normalized


def normalize_prefix(prefix: str) -> str:
    """A list prefix as the SDK's backends use it: '' matches every key."""
    normalized = _SLASHES.sub("/", prefix).lstrip("/")
    _check(normalized, "storage prefixes")
    return normalized


def successor(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (None: there is none), so
    that `key >= prefix AND key < successor(prefix)` is a range scan in code point order."""
    chars = list(prefix)
    while chars:
        point = ord(chars[-1]) + 1
        if point <= 0x10FFFF:
            if _SURROGATES[0] <= point <= _SURROGATES[1]:
                point = _SURROGATES[1] + 1
            chars[-1] = chr(point)
            return "".join(chars)
        chars.pop()
    return None


def query_words(query: str) -> set[str]:
    """The words a search looks for (the SDK's tokenizer, without its stop words)."""
    if len(query) > 4096:
        raise InvalidRequest("q: a search query is at most 4096 characters")
    return tokenize(query) - STOP_WORDS


def score(
    words: set[str], entries: Iterable[tuple[str, bytes]], strip: int
) -> list[tuple[str, int, bytes]]:
    """(key, score, data) of the entries matching any of `words`; keys scored without their
    first `strip` characters (the searched prefix)."""
    found = []
    for key, data in entries:
        text = f"{_EXTENSION.sub('', key[strip:])} {data.decode('utf-8', errors='replace')}"
        hits = len(words & tokenize(text))
        if hits:
            found.append((key, hits, data))
    return found
