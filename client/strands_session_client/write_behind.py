"""Write-behind: session writes leave the agent's critical path, and are durable by its end.

``WriteBehindRepository`` wraps an ``HTTPSessionRepository``. Its writes (message appends and
updates, agent and multi-agent creates and syncs) snapshot their arguments and join an ordered,
bounded queue that one background thread sends, in order:

- consecutive appends to one agent travel as one batch request (all or nothing), and with
  the agent's syncs among them as one turn request (``POST .../turn``: the appends and the
  latest state in one transaction), so a turn's writes cost one round trip;
- a burst of writes gathers for up to ``linger`` (20 ms) before it is sent, unless a barrier
  waits for it: a turn whose writes all come within that time is sent as one request;
- an agent or multi-agent sync still waiting in the queue is dropped when a newer sync of the
  same agent arrives (it replaces the whole state, so the older one is obsolete);
- a full queue makes the writer wait (back-pressure), it never grows without bound;
- every request keeps its ``Idempotency-Key`` across retries, so a retried write is applied once;
- the first write that fails stops the queue: nothing queued after it is sent, and ``flush()``
  raises that error (later calls raise an error pointing at it).

``flush()`` is the barrier: it returns once everything queued is stored. Every read flushes
first, so a read never misses a write made before it; ``HTTPSessionManager`` also flushes at the
end of each invocation and on ``close()``. What a crash in the middle of an invocation can lose
is that invocation's unflushed writes, never an earlier invocation's.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strands.session.session_repository import SessionRepository
from strands.types.session import Session, SessionAgent, SessionMessage

from .codec import _check_id, _message_id, _path, _request
from .errors import SessionBackendError, _error_code, _expect

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

    from .operations import _Operation
    from .repository import HTTPSessionRepository

logger = logging.getLogger(__name__)

MAX_BATCH = 100
# How long the sender lets a burst of writes gather before sending it, unless a barrier waits.
# The writes of a turn that computes without waiting (a fast model, a quick tool) come within a
# few milliseconds of each other and of the barrier at its end: sent as they come, the barrier
# waits for the one in flight and then for the rest; gathered, they are one request, which the
# barrier sends at once. A real model call takes well over this, so the writes made before it
# still travel while the model thinks.
LINGER = 0.02


@dataclass(slots=True)
class _Job:
    """One queued write. ``append`` jobs carry a message and ``agent`` jobs an agent's state;
    consecutive ones of one agent may travel together. ``key`` marks a sync that a newer one of
    the same key makes obsolete."""

    send: Callable[[], None] | None = None
    append: tuple[str, str, SessionMessage] | None = None
    agent: tuple[str, SessionAgent] | None = None
    key: tuple[str, ...] | None = None
    done: list[Callable[[], None]] = field(default_factory=list)

    def target(self) -> tuple[str, str] | None:
        """(session id, agent id) of an append or an agent sync, else None."""
        if self.append is not None:
            return self.append[0], self.append[1]
        if self.agent is not None:
            return self.agent[0], self.agent[1].agent_id
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # the awaiting task may have been cancelled
        future.set_result(None)


class _MultiAgentSnapshot:
    """What the repository reads of a Graph or Swarm (``id``, ``serialize_state()``), frozen."""

    def __init__(self, multi_agent: MultiAgentBase) -> None:
        self.id = multi_agent.id
        self._state = copy.deepcopy(multi_agent.serialize_state())

    def serialize_state(self) -> dict[str, Any]:
        return self._state


class WriteBehindRepository(SessionRepository):
    """A ``SessionRepository`` whose writes are queued and sent by a background thread.

    Args:
        repository: The repository that sends the requests.
        max_queued: Writes that may wait in the queue before a writer has to wait.
        linger: Seconds a burst of writes may gather before it is sent (a barrier sends at
            once); 0 sends each write as soon as the sender is free.
    """

    def __init__(
        self, repository: HTTPSessionRepository, *, max_queued: int = 1000, linger: float = LINGER
    ) -> None:
        """Wrap ``repository``; the sender thread starts with the first queued write."""
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        if not 0 <= linger <= 1:
            raise ValueError(f"linger must be between 0 and 1 second, got {linger}")
        self.repository = repository
        self.max_queued = max_queued
        self.linger = linger
        self._queue: deque[_Job] = deque()
        self._changed = threading.Condition()
        self._sending = False
        self._failure: BaseException | None = None
        self._failure_raised = False
        self._closed = False
        self._thread: threading.Thread | None = None
        # Whether the service takes a turn's writes in one request (POST .../turn); cleared
        # when it answers that route with 404 or 405 (a service older than the route).
        self.turn_route = True
        self._urgent = False  # a barrier waits: send what is queued now
        # Event loops awaiting the barrier (flush_async): woken once the queue drains or fails.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # -- the barrier ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Wait until everything queued is stored; raise the first failed write's error."""
        with self._changed:
            self._urgent = True
            self._changed.notify_all()
            while (self._queue or self._sending) and self._failure is None:
                self._changed.wait()
            self._raise_if_failed()

    async def flush_async(self) -> None:
        """``flush`` for an event loop: the loop waits without blocking, and without a worker
        thread in between (the sender wakes it when the queue drains)."""
        with self._changed:
            if self._drained():
                self._raise_if_failed()
                return
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((future.get_loop(), future))
            self._urgent = True
            self._changed.notify_all()
        await future
        self.flush()  # drained by now: raises the failure, if any

    def _drained(self) -> bool:
        return self._failure is not None or not (self._queue or self._sending)

    def _wake_waiters(self) -> None:
        """Wake the loops awaiting the barrier once it is reached (the caller holds the lock)."""
        if not self._waiters or not self._drained():
            return
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: nobody awaits it any more
                pass

    def has_room(self, writes: int = 2) -> bool:
        """Whether ``writes`` writes can be queued now without waiting for the sender."""
        return len(self._queue) + writes <= self.max_queued

    def close(self) -> None:
        """Flush, then stop the sender thread (also when the flush raises)."""
        try:
            self.flush()
        finally:
            with self._changed:
                self._closed = True
                self._changed.notify_all()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join()

    def _raise_if_failed(self) -> None:
        failure = self._failure
        if failure is None:
            return
        if not self._failure_raised:
            self._failure_raised = True
            raise failure
        raise SessionBackendError(
            "session writes stopped after an earlier write failed; build a new session manager "
            f"to continue from what is stored (the failure: {failure})",
            code="write_behind_failed",
        ) from failure

    # -- the queue -----------------------------------------------------------------------------

    def _put(self, job: _Job) -> None:
        with self._changed:
            self._raise_if_failed()
            if self._closed:
                raise SessionBackendError("the session manager is closed", code="closed")
            if job.key is not None:
                # A newer sync replaces the whole state: a queued older one need not be sent.
                for queued in [q for q in self._queue if q.key == job.key]:
                    self._queue.remove(queued)
            while len(self._queue) >= self.max_queued and self._failure is None:
                self._changed.wait()
            self._raise_if_failed()
            self._queue.append(job)
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._send_forever, name="strands-session-writer", daemon=True
                )
                self._thread.start()

    def _next_jobs(self) -> list[_Job] | None:
        """Take the next job, with the appends and syncs of the same agent that follow it (the
        caller holds the lock). None: closed and drained."""
        while not self._queue:
            if self._closed:
                return None
            self._urgent = False
            self._changed.wait()
        if self.linger > 0 and not self._urgent:
            deadline = time.monotonic() + self.linger
            while not (self._urgent or self._closed) and len(self._queue) < min(
                MAX_BATCH, self.max_queued
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        jobs = [self._queue.popleft()]
        target = jobs[0].target()
        if target is not None:
            joins = self._joins_turn()
            while self._queue and len(jobs) < MAX_BATCH and self._queue[0].target() == target:
                if not joins and (jobs[0].append is None or self._queue[0].append is None):
                    break  # without the turn route only appends travel together
                jobs.append(self._queue.popleft())
        return jobs

    def _joins_turn(self) -> bool:
        # An agent sync travels with the appends around it in one turn request, unless the
        # service has no such route or each sync must carry If-Match (optimistic mode).
        return self.turn_route and not self.repository.optimistic

    def _send_forever(self) -> None:
        while True:
            with self._changed:
                jobs = self._next_jobs()
                if jobs is None:
                    return
                self._sending = True
                self._changed.notify_all()  # a writer waiting for room may go on
            try:
                self._send(jobs)
            except BaseException as exc:  # any failure stops the queue and reaches the barrier
                logger.warning("a queued session write failed; the writes after it are dropped")
                with self._changed:
                    self._failure = exc
                    self._queue.clear()
                    self._sending = False
                    self._changed.notify_all()
                    self._wake_waiters()
                continue
            with self._changed:
                self._sending = False
                if not self._queue:
                    # The barrier is reached: the next turn's writes gather again, even when
                    # they come before this thread gets back to waiting for them.
                    self._urgent = False
                self._changed.notify_all()
                self._wake_waiters()

    def _send(self, jobs: list[_Job]) -> None:
        messages = [job.append[2] for job in jobs if job.append is not None]
        agents = [job.agent[1] for job in jobs if job.agent is not None]
        target = jobs[0].target()
        if target is not None and agents and (messages or len(agents) > 1):
            # Appends and syncs of one agent: one transaction, and the latest state wins.
            if self.repository._run(_op_write_turn(*target, messages, agents[-1])):
                return
            # Nothing was written: the agent is missing (the writes below raise that), or the
            # service is older than the route (they succeed, and the route is not tried again).
            # Either way, the same writes in their order: runs of appends, each sync alone.
            run: list[_Job] = []
            for job in jobs:
                if job.append is None:
                    if run:
                        self._send(run)
                    run = []
                    self._send([job])
                else:
                    run.append(job)
            if run:
                self._send(run)
            self.turn_route = False
        elif messages:
            assert target is not None
            self.repository.create_messages(*target, messages)
        else:
            assert jobs[0].send is not None
            jobs[0].send()

    # -- writes: snapshot now, send later -------------------------------------------------------

    def create_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Queue a message append (consecutive ones may travel as one batch)."""
        self._put(_Job(append=(session_id, agent_id, copy.deepcopy(session_message))))

    def update_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Queue a message update (a redaction)."""
        snapshot = copy.deepcopy(session_message)
        self._put(_Job(lambda: self.repository.update_message(session_id, agent_id, snapshot)))

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Queue an agent's creation."""
        snapshot = copy.deepcopy(session_agent)
        self._put(_Job(lambda: self.repository.create_agent(session_id, snapshot)))

    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Queue an agent sync, replacing a queued older sync of the same agent."""
        snapshot = copy.deepcopy(session_agent)
        self._put(
            _Job(
                lambda: self.repository.update_agent(session_id, snapshot),
                agent=(session_id, snapshot),
                key=("agent", session_id, session_agent.agent_id),
            )
        )

    def create_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Queue the creation of a Graph's or Swarm's state."""
        snapshot: Any = _MultiAgentSnapshot(multi_agent)
        self._put(_Job(lambda: self.repository.create_multi_agent(session_id, snapshot)))

    def update_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Queue a multi-agent sync, replacing a queued older one of the same Graph or Swarm."""
        snapshot: Any = _MultiAgentSnapshot(multi_agent)
        self._put(
            _Job(
                lambda: self.repository.update_multi_agent(session_id, snapshot),
                key=("multi_agent", session_id, snapshot.id),
            )
        )

    # -- everything else: after the queue, straight through ------------------------------------

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Create the session now (after what is queued)."""
        self.flush()
        return self.repository.create_session(session)

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """Read the session once everything queued is stored."""
        self.flush()
        return self.repository.read_session(session_id)

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete the session once everything queued is stored."""
        self.flush()
        self.repository.delete_session(session_id)

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """Read an agent once everything queued is stored."""
        self.flush()
        return self.repository.read_agent(session_id, agent_id)

    def read_message(
        self, session_id: str, agent_id: str, message_id: int, **kwargs: Any
    ) -> SessionMessage | None:
        """Read a message once everything queued is stored."""
        self.flush()
        return self.repository.read_message(session_id, agent_id, message_id)

    def list_messages(
        self,
        session_id: str,
        agent_id: str,
        limit: int | None = None,
        offset: int = 0,
        **kwargs: Any,
    ) -> list[SessionMessage]:
        """List messages once everything queued is stored."""
        self.flush()
        return self.repository.list_messages(session_id, agent_id, limit, offset)

    def read_multi_agent(
        self, session_id: str, multi_agent_id: str, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Read a multi-agent state once everything queued is stored."""
        self.flush()
        return self.repository.read_multi_agent(session_id, multi_agent_id)


def _op_write_turn(
    session_id: str, agent_id: str, messages: list[SessionMessage], agent: SessionAgent
) -> _Operation[bool]:
    """Append ``messages`` and replace the agent's state in one request (all or nothing).
    False when the service has no such route: nothing was written."""
    _check_id("session_id", session_id)
    _check_id("agent_id", agent_id)
    for message in messages:
        _message_id(message.message_id)
    payload = {"messages": [m.to_dict() for m in messages], "agent": agent.to_dict()}
    path = _path("sessions", session_id, "agents", agent_id, "turn")
    response = yield _request("POST", path, payload)
    if response.status_code in (404, 405) and _error_code(response) in (
        "not_found",
        "method_not_allowed",
    ):
        # No such agent, or no such route: each write alone tells which, with its own error.
        return False
    _expect(response, 200, 201)
    return True
