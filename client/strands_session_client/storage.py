"""The Strands ``Storage`` protocol over the session backend's ``/api/v1/storage``.

Any SDK construct that takes a ``strands.storage.Storage`` can keep its data in the backend::

    from strands import Agent
    from strands.session import SnapshotSessionManager
    from strands_session_client import HTTPStorage

    storage = HTTPStorage("http://127.0.0.1:8000", api_key="...")
    agent = Agent(session_manager=SnapshotSessionManager("user-42", storage=storage))

Keys are normalised as the SDK's own backends do (``InMemoryStorage``, ``S3Storage``): slash
runs collapse, leading and trailing slashes go; an empty key, a backslash or a ``..`` segment
raises ``StorageError``. ``search`` runs the SDK's default keyword strategy on the server, next
to the data, and returns each match with its bytes (the 1000 best).

The SDK calls storage from short-lived event loops (``run_async`` starts one per call), so the
HTTP work runs on one pooled, thread-safe ``httpx.Client`` in a worker thread rather than on a
loop-bound async client: connections are kept alive across calls whatever loop makes them.
Transport errors, 429 and 5xx are retried (every operation here is idempotent); whatever goes
wrong, callers see ``StorageError``.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import copy
import re
import time
from typing import Any
from urllib.parse import quote

import httpx
from strands.storage.storage import StorageSearchResult
from strands.types.exceptions import StorageError

from .retry import _tls_context

try:  # the sentinel the SDK uses to know a storage view is already scoped
    from strands.storage.storage import _NAMESPACED
except ImportError:  # pragma: no cover - a later SDK
    _NAMESPACED = object()

_SLASHES = re.compile(r"/+")
_RETRIED = frozenset({429, 502, 503, 504})
PAGE = 1000


def _check(text: str, what: str) -> str:
    if "\\" in text:
        raise StorageError(f"Invalid storage {what} '{text}': backslashes are not allowed")
    if ".." in text.split("/"):
        raise StorageError(f"Invalid storage {what} '{text}': '..' path segments are not allowed")
    return text


def normalize_key(key: str) -> str:
    """The SDK's key normalisation (``strands.storage.storage._normalize_key``)."""
    normalized = _SLASHES.sub("/", key).strip("/")
    if not normalized:
        raise StorageError("Storage key must not be empty")
    return _check(normalized, "key")


def normalize_prefix(prefix: str) -> str:
    """The SDK's prefix normalisation: like a key, but '' is allowed and a trailing '/' kept."""
    return _check(_SLASHES.sub("/", prefix).lstrip("/"), "prefix")


def _path(key: str) -> str:
    # Each segment percent-encoded; `.` as %2E, or HTTP clients would drop the segment.
    return "/".join("%2E" if s == "." else quote(s, safe="") for s in key.split("/"))


class HTTPStorage:
    """A ``strands.storage.Storage`` kept by the session backend."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/storage",
            headers=headers,
            timeout=timeout,
            verify=_tls_context(),  # built once per process: a new one costs tens of ms
        )
        self._retries = retries
        self._prefix = ""  # set on views made by namespace()

    # -- the protocol ----------------------------------------------------------------------

    async def write(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any value (atomic on the server)."""
        path = "/objects/" + _path(self._prefix + normalize_key(key))
        headers = {"Content-Type": "application/octet-stream"}
        await self._call("PUT", path, content=bytes(data), headers=headers)

    async def read(self, key: str) -> bytes | None:
        """The bytes under ``key``, or None when there are none."""
        path = "/objects/" + _path(self._prefix + normalize_key(key))
        response = await self._call("GET", path, missing_ok=True)
        return None if response.status_code == 404 else response.content

    async def delete(self, key: str) -> None:
        """Delete ``key``; nothing happens when it does not exist."""
        await self._call("DELETE", "/objects/" + _path(self._prefix + normalize_key(key)))

    async def list(self, query: str = "") -> builtins.list[str]:
        """Every key starting with ``query``, sorted, without this view's namespace."""
        params: dict[str, Any] = {"prefix": self._prefix + normalize_prefix(query), "limit": PAGE}
        keys: builtins.list[str] = []
        while True:
            page = (await self._call("GET", "/objects", params=params)).json()
            keys += page["items"]
            if not page["next_cursor"]:
                return [key[len(self._prefix) :] for key in keys]
            params["cursor"] = page["next_cursor"]

    async def search(self, query: str) -> builtins.list[StorageSearchResult]:
        """Keyword matches under this view, best first (the SDK's default strategy)."""
        params = {"q": query, "prefix": self._prefix, "limit": PAGE, "include_data": "true"}
        items = (await self._call("GET", "/search", params=params)).json()["items"]
        return [
            StorageSearchResult(
                key=item["key"][len(self._prefix) :],
                score=item["score"],
                data=base64.b64decode(item["data"]),
            )
            for item in items
        ]

    def namespace(self, prefix: str) -> HTTPStorage:
        """A view of the keys under ``prefix/`` (sharing this one's connections)."""
        scoped = copy.copy(self)
        normalized = normalize_prefix(prefix).rstrip("/")
        scoped._prefix = f"{self._prefix}{normalized}/" if normalized else self._prefix
        scoped._namespaced = _NAMESPACED  # type: ignore[attr-defined]
        return scoped

    def close(self) -> None:
        """Close the pooled connections (views share them)."""
        self._client.close()

    # -- HTTP ------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> httpx.Response:
        return await asyncio.to_thread(self._send, method, path, missing_ok, kwargs)

    def _send(
        self, method: str, path: str, missing_ok: bool, kwargs: dict[str, Any]
    ) -> httpx.Response:
        for attempt in range(self._retries):
            last = attempt == self._retries - 1
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if last:
                    raise StorageError(f"{method} {path} failed: {exc!r}") from exc
            else:
                if response.status_code not in _RETRIED or last:
                    break
            time.sleep(min(2.0, 0.1 * 2**attempt))
        if response.is_success or (missing_ok and response.status_code == 404):
            return response
        raise StorageError(f"{method} {path} answered {response.status_code}: {_message(response)}")


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
