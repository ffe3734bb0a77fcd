"""Exclusive sessions: one invocation at a time per session, fenced by the service's lease.

Two invocations of one session at once (a client retry after a timeout, a queue redelivery, two
replicas behind a load balancer) interleave their messages and lose state. With
``HTTPSessionManager(..., exclusive=True)`` the manager holds the session's lease for the length
of every invocation of its Agent, Graph or Swarm:

- before the invocation it acquires the lease, waiting up to ``lease_wait`` seconds while
  another holder has it (then ``SessionBusyError``), and, when someone else wrote the session
  since this manager last synced, reloads the agent (messages, state, conversation manager
  state) or the multi-agent state, before the turn starts;
- while it runs, a background thread renews the lease every ``lease_ttl / 3`` seconds;
- every write carries the lease's token in ``X-Session-Lease``; once the service refuses one
  with ``lease_lost`` (the lease expired, say while the process was paused, and another holder
  took it), ``SessionLeaseLostError`` is raised and nothing more of the invocation is written;
- after the invocation (also when it failed) the last sync runs, then the lease is released.

A crashed holder never releases: its lease simply expires ``lease_ttl`` seconds after the last
renewal, and the next holder takes it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import httpx
from strands.hooks.events import (
    AfterInvocationEvent,
    AfterMultiAgentInvocationEvent,
    BeforeInvocationEvent,
    BeforeMultiAgentInvocationEvent,
)

from .codec import _path, _Request, _request
from .errors import (
    InvalidSessionValueError,
    SessionBackendError,
    SessionBusyError,
    SessionLeaseLostError,
    _error_code,
    _error_from_response,
)
from .retry import _RetryableFailure

if TYPE_CHECKING:
    from strands.hooks.registry import HookRegistry

    from .manager import HTTPSessionManager
    from .repository import HTTPSessionRepository

logger = logging.getLogger(__name__)

HEADER: Final = "X-Session-Lease"
_FIRST_POLL: Final = 0.02  # seconds; doubles up to _MAX_POLL while the session stays busy
_MAX_POLL: Final = 0.5
_AFTER_EVENTS: Final = (AfterInvocationEvent, AfterMultiAgentInvocationEvent)


class SessionLease:
    """One session's lease as one client holds it: acquire, renew, release, and the fence.

    It wraps the repository's sender (that repository only, not a client it may share with
    others): every write under the session carries the token while the lease is held, and after
    a ``lease_lost`` refusal every further write is refused here, before it is sent.
    """

    def __init__(
        self,
        repository: HTTPSessionRepository,
        session_id: str,
        *,
        ttl: float = 30.0,
        wait: float = 30.0,
        holder: str | None = None,
    ) -> None:
        """Prepare the lease of ``session_id`` (nothing is sent yet)."""
        if not 0 < ttl <= 3600:
            raise InvalidSessionValueError(f"lease_ttl must be in (0, 3600] seconds, got {ttl!r}")
        if wait < 0:
            raise InvalidSessionValueError(f"lease_wait must be >= 0 seconds, got {wait!r}")
        self.repository = repository
        self.session_id = session_id
        self.ttl = ttl
        self.wait = wait
        self.holder = holder or f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
        self.token: int | None = None
        self.acquired: dict[str, Any] = {}  # the service's answer to the latest acquire
        self.lost: SessionLeaseLostError | None = None
        self._path = _path("sessions", session_id, "lease")
        self._scope = _path("sessions", session_id)
        self._renewed = threading.Event()
        self._renewer: threading.Thread | None = None
        self._send = repository._send
        repository._send = self._fenced_send

    # -- the fence on this client's writes ---------------------------------------------------

    def _covers(self, request: _Request) -> bool:
        """A write under this session (the lease routes aside)."""
        if request.method in ("GET", "HEAD", "OPTIONS") or request.path == self._path:
            return False
        return request.path == self._scope or request.path.startswith(self._scope + "/")

    def _fenced_send(self, request: _Request) -> httpx.Response:
        if not self._covers(request):
            return self._send(request)  # type: ignore[no-any-return]
        if self.lost is not None:
            raise SessionLeaseLostError(
                f"not sent: the lease on session {self.session_id!r} was lost earlier in this "
                f"invocation ({self.lost.message})",
                status=409,
                code="lease_lost",
                context=f"{request.method} {request.path}: ",
            )
        token = self.token
        if token is None:
            request.headers.pop(HEADER, None)
        else:
            request.headers[HEADER] = str(token)
        response: httpx.Response = self._send(request)
        if (
            token is not None
            and response.status_code == 409
            and _error_code(response) == "lease_lost"
        ):
            error = _error_from_response(response)
            assert isinstance(error, SessionLeaseLostError)
            self._lose(error)
            raise error
        return response

    def _lose(self, error: SessionLeaseLostError) -> None:
        if self.lost is None:
            logger.warning(
                "session_id=<%s> | token=<%s> | lease lost: %s", self.session_id, self.token, error
            )
            self.lost = error
        self._renewed.set()  # stops the renewer

    # -- acquire, renew, release -----------------------------------------------------------------

    def _call(self, method: str, payload: Any = None) -> httpx.Response:
        request = _request(method, self._path, payload)
        if self.token is not None and method != "POST":
            request.headers[HEADER] = str(self.token)
        try:
            response: httpx.Response = self._send(request)
        except _RetryableFailure as failure:
            raise failure.give_up(self.repository._client.base_url) from failure.cause
        return response

    def try_acquire(self) -> tuple[float, SessionBusyError] | None:
        """One attempt: None once the lease is held, else (seconds worth waiting, the refusal)."""
        response = self._call("POST", {"holder": self.holder, "ttl_seconds": self.ttl})
        if response.status_code == 201:
            self.acquired = response.json()
            self.token = int(self.acquired["token"])
            self.lost = None
            self._start_renewer()
            return None
        error = _error_from_response(response)
        if not isinstance(error, SessionBusyError):
            raise error
        hint = float(response.headers.get("retry-after") or 1)
        for detail in error.details:
            if isinstance(detail, dict) and isinstance(detail.get("expires_in"), int | float):
                hint = min(hint, max(float(detail["expires_in"]), 0.0))
        return hint, error

    def _next_wait(self, poll: float, hint: float, deadline: float) -> float:
        # A holder usually releases well before its lease would expire: poll with a short,
        # growing, jittered interval, never sleeping past the expiry the service announced.
        return max(
            0.0, min(poll * (0.5 + random.random()), hint + 0.01, deadline - time.monotonic())
        )

    def _busy(self, error: SessionBusyError) -> SessionBusyError:
        return SessionBusyError(
            f"session {self.session_id!r} stayed busy for lease_wait={self.wait}s: {error.message}",
            status=error.status,
            code=error.code,
            request_id=error.request_id,
            details=error.details,
            context=error.context,
        )

    def acquire(self) -> None:
        """Take the lease, waiting up to ``wait`` seconds; ``SessionBusyError`` after that."""
        deadline, poll = time.monotonic() + self.wait, _FIRST_POLL
        while (refused := self.try_acquire()) is not None:
            if time.monotonic() >= deadline:
                raise self._busy(refused[1])
            time.sleep(self._next_wait(poll, refused[0], deadline))
            poll = min(poll * 2, _MAX_POLL)

    async def acquire_async(self) -> None:
        """``acquire`` for an event loop: requests in a worker thread, waits with asyncio."""
        deadline, poll = time.monotonic() + self.wait, _FIRST_POLL
        while (refused := await asyncio.to_thread(self.try_acquire)) is not None:
            if time.monotonic() >= deadline:
                raise self._busy(refused[1])
            await asyncio.sleep(self._next_wait(poll, refused[0], deadline))
            poll = min(poll * 2, _MAX_POLL)

    def _start_renewer(self) -> None:
        self._renewed = stop = threading.Event()
        token = self.token
        self._renewer = threading.Thread(
            target=self._renew_until, args=(stop, token), name="session-lease-renewer", daemon=True
        )
        self._renewer.start()

    def _renew_until(self, stop: threading.Event, token: int | None) -> None:
        while not stop.wait(self.ttl / 3):
            try:
                response = self.repository._client.request(
                    "PUT",
                    self._path,
                    json={"holder": self.holder, "ttl_seconds": self.ttl},
                    headers={HEADER: str(token)},
                    timeout=max(self.ttl / 3, 1.0),
                )
            except httpx.HTTPError as exc:  # the next attempt may get through before expiry
                logger.warning("session_id=<%s> | lease renewal failed: %r", self.session_id, exc)
                continue
            if stop.is_set() or self.token != token:
                return
            if response.status_code == 409 and _error_code(response) == "lease_lost":
                error = _error_from_response(response)
                assert isinstance(error, SessionLeaseLostError)
                self._lose(error)
                return
            if response.status_code != 200:
                logger.warning(
                    "session_id=<%s> | lease renewal answered %d",
                    self.session_id,
                    response.status_code,
                )

    def release(self) -> None:
        """Stop renewing and give the lease back; failures only log (the lease then expires)."""
        self._renewed.set()
        token, self.token = self.token, None
        if token is None:
            return
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=self.ttl)
        try:
            request = _request("DELETE", self._path)
            request.headers[HEADER] = str(token)
            response = self._send(request)
            if response.status_code != 204:
                logger.warning(
                    "session_id=<%s> | lease release answered %d; it expires within %ss",
                    self.session_id,
                    response.status_code,
                    self.ttl,
                )
        except (_RetryableFailure, httpx.HTTPError) as exc:
            logger.warning(
                "session_id=<%s> | lease release failed (%r); it expires within %ss",
                self.session_id,
                exc,
                self.ttl,
            )

    # -- what this client last saw of the session ------------------------------------------------

    def mark(self, *path: str) -> tuple[int, int | None] | None:
        """(version, message_count) of the agent or multi-agent state at ``path`` under the
        session, or None when it does not exist."""
        request = _request("GET", _path("sessions", self.session_id, *path))
        try:
            response = self._send(request)
        except _RetryableFailure as failure:
            raise failure.give_up(self.repository._client.base_url) from failure.cause
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _error_from_response(response)
        body = response.json()
        return int(body["version"]), body.get("message_count")


class _Collecting:
    """A stand-in registry that keeps the after-invocation callbacks for ``ExclusiveHooks`` to
    run, inside its own, and forwards everything else."""

    def __init__(self, registry: HookRegistry, kept: dict[type, list[Callable[..., Any]]]) -> None:
        self._registry = registry
        self._kept = kept

    def add_callback(self, event_type: Any, callback: Callable[..., Any], **kwargs: Any) -> None:
        if event_type in _AFTER_EVENTS:
            self._kept.setdefault(event_type, []).append(callback)
        else:
            self._registry.add_callback(event_type, callback, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)


class ExclusiveHooks:
    """The hooks ``HTTPSessionManager(exclusive=True)`` adds around every invocation."""

    def __init__(self, manager: HTTPSessionManager, lease: SessionLease) -> None:
        """Hooks for ``manager``, holding ``lease`` during each invocation."""
        self.manager = manager
        self.lease = lease
        # What this manager last stored or loaded: (version, message_count) per agent or
        # multi-agent state; a difference means another client wrote in between.
        self.seen: dict[tuple[str, ...], tuple[int, int | None] | None] = {}
        self._after_callbacks: dict[type, list[Callable[..., Any]]] = {}

    def register(self, registry: HookRegistry, register_base: Callable[[Any], None]) -> None:
        """Register the manager's own hooks (``register_base``) with the lease around them."""
        register_base(_Collecting(registry, self._after_callbacks))
        registry.add_callback(BeforeInvocationEvent, self._before_agent)
        registry.add_callback(AfterInvocationEvent, self._after_agent)
        registry.add_callback(BeforeMultiAgentInvocationEvent, self._before_multi_agent)
        registry.add_callback(AfterMultiAgentInvocationEvent, self._after_multi_agent)

    def held(self, key: tuple[str, ...], work: Callable[[], None]) -> None:
        """Run construction-time ``work`` (restore or create) under the lease, then note what
        was stored."""
        self.lease.acquire()
        try:
            work()
            self.manager.flush()  # write-behind: stored before the lease is given back
            self.seen[key] = self.lease.mark(*key)
        finally:
            self.lease.release()

    async def _before(self, key: tuple[str, ...], reload: Callable[[], None]) -> None:
        await self.lease.acquire_async()
        try:
            current = await asyncio.to_thread(self.lease.mark, *key)
            if key in self.seen and current != self.seen[key]:
                logger.info(
                    "session_id=<%s> | %s was written by another client; reloading it",
                    self.lease.session_id,
                    "/".join(key),
                )
                await asyncio.to_thread(reload)
            self.seen[key] = current
        except BaseException:
            await asyncio.to_thread(self.lease.release)
            raise

    async def _after(self, event: Any, key: tuple[str, ...]) -> None:
        try:
            if self.lease.lost is not None:
                # Queued writes of this invocation are refused (the lease is lost), which stops
                # the write-behind queue; none of them may go out under a later lease.
                with contextlib.suppress(SessionBackendError):
                    await asyncio.to_thread(self.manager.flush)
                raise self.lease.lost
            for callback in reversed(self._after_callbacks.get(type(event), [])):
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            self.seen[key] = await asyncio.to_thread(self.lease.mark, *key)
        except BaseException:
            self.seen.pop(key, None)  # unknown: the next invocation reloads
            raise
        finally:
            await asyncio.to_thread(self.lease.release)

    async def _before_agent(self, event: BeforeInvocationEvent) -> None:
        agent = event.agent
        await self._before(("agents", agent.agent_id), lambda: self.manager._reload_agent(agent))

    async def _after_agent(self, event: AfterInvocationEvent) -> None:
        await self._after(event, ("agents", event.agent.agent_id))

    async def _before_multi_agent(self, event: BeforeMultiAgentInvocationEvent) -> None:
        source = event.source
        key = ("multi-agents", source.id)
        await self._before(key, lambda: self.manager._reload_multi_agent(source))

    async def _after_multi_agent(self, event: AfterMultiAgentInvocationEvent) -> None:
        await self._after(event, ("multi-agents", event.source.id))
