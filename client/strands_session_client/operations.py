"""Every repository operation, written once as a sans-I/O generator.

An operation yields ``_Request`` objects and is sent back the ``httpx.Response`` for each; it does
no I/O itself. ``HTTPSessionRepository`` drives the generators over an ``httpx.Client``,
``AsyncHTTPSessionRepository`` over an ``httpx.AsyncClient``; both wrap each request in the same
``backoff`` retry policy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import backoff
import httpx
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from .codec import (
    STREAM_ACCEPT,
    _check_id,
    _copy_timestamps,
    _from_dict,
    _gc_paused,
    _json,
    _message_id,
    _messages_from,
    _MessageStream,
    _next_cursor,
    _path,
    _Request,
    _request,
    _session_from,
    _session_from_dict,
)
from .errors import (
    InvalidSessionValueError,
    SessionConflictError,
    SessionNotFoundError,
    SessionVersionConflictError,
    _error_code,
    _error_from_response,
    _expect,
)
from .retry import _log_retry, _retry_waits, _RetryableFailure

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE: Final = 1000
_AGENT_FIELDS: Final = ("state", "conversation_manager_state", "_internal_state")

_T = TypeVar("_T")
_Operation = Generator[_Request, httpx.Response, _T]


class _SessionOperations:
    """Every repository operation as a sans-I/O generator, plus the shared retry policy."""

    def __init__(
        self,
        *,
        optimistic: bool,
        max_retry_time: float | None,
        max_tries: int | None,
        initial_backoff: float,
        max_backoff: float,
        max_retry_after: float,
    ) -> None:
        self.optimistic = optimistic
        self.max_retry_time = max_retry_time
        self.max_tries = max_tries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        # Headers added to every request (on every attempt), read when each attempt is sent:
        # the place for per-session headers such as a lease token.
        self.default_headers: dict[str, str] = {}
        # ETag of each agent / multi-agent state as last read or written (optimistic mode).
        self._versions: dict[tuple[str, str, str], str] = {}
        # Offset of a restore that listed nothing: message ids below it belong to trimmed history.
        self._trimmed_below: dict[tuple[str, str], int] = {}

    def _with_retries(self, attempt: Callable[[_Request], Any]) -> Any:
        return backoff.on_exception(
            # backoff sends each failure into the wait generator; its stubs declare a send type
            # of None, which is why the generator's type does not match them.
            _retry_waits,  # type: ignore[arg-type]
            _RetryableFailure,
            max_time=self.max_retry_time,
            max_tries=self.max_tries,
            jitter=None,
            on_backoff=_log_retry,
            logger=None,
            initial=self.initial_backoff,
            cap=self.max_backoff,
            retry_after_cap=self.max_retry_after,
        )(attempt)

    def _remember(self, key: tuple[str, str, str], response: httpx.Response) -> None:
        if self.optimistic and (etag := response.headers.get("etag")):
            self._versions[key] = etag

    def _put(
        self,
        key: tuple[str, str, str],
        path: str,
        payload: dict[str, Any],
        fields: tuple[str, ...],
        what: str,
    ) -> _Operation[httpx.Response]:
        """PUT with ``If-Match`` in optimistic mode; 404 and 412 raise.

        ``fields`` are the ones the PUT replaces, compared to tell our own write from another's.
        """
        if_match = self._versions.get(key) if self.optimistic else None
        request = _request("PUT", path, payload, if_match=if_match)
        response = yield request
        if response.status_code == 412 and request.attempts > 1:
            # An earlier attempt may have been applied before its answer was lost: if the stored
            # resource is what this write sent, the 412 is our own write, not another process's.
            current = yield _request("GET", path)
            sent = json.loads(request.body or b"{}")
            if current.status_code == 200:
                stored = _json(current)
                if all(stored.get(name) == sent.get(name) for name in fields):
                    response = current
        if response.status_code == 412:
            raise _error_from_response(
                response,
                SessionVersionConflictError,
                f"{what} was changed by another process since this one last read or wrote it; "
                "read it again before writing: ",
            )
        if response.status_code == 404:
            raise _error_from_response(response, SessionNotFoundError, f"{what} does not exist: ")
        _expect(response, 200)
        self._remember(key, response)
        return response

    def _op_create_session(self, session: Session) -> _Operation[Session]:
        _check_id("session_id", session.session_id)
        response = yield _request("POST", _path("sessions"), session.to_dict())
        _expect(response, 200, 201)
        # Like agents and messages: the caller's object takes the stored timestamps.
        _copy_timestamps(session, response)
        return session

    def _op_read_session(self, session_id: str) -> _Operation[Session | None]:
        response = yield _request("GET", _path("sessions", _check_id("session_id", session_id)))
        if response.status_code == 404:
            return None
        _expect(response, 200)
        return _session_from(response)

    def _op_delete_session(self, session_id: str) -> _Operation[None]:
        request = _request("DELETE", _path("sessions", _check_id("session_id", session_id)))
        response = yield request
        if response.status_code == 404:
            if request.attempts > 1:
                # An earlier attempt deleted it and its answer was lost: the delete is done.
                return
            raise _error_from_response(
                response, SessionNotFoundError, f"Session {session_id} does not exist: "
            )
        _expect(response, 204)

    def _op_list_sessions(
        self,
        limit: int | None,
        created_after: datetime | str | None,
        created_before: datetime | str | None,
        session_type: SessionType | str | None,
    ) -> _Operation[list[Session]]:
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidSessionValueError(f"limit must be None or an int >= 0, got {limit!r}")
        filters: dict[str, str | int] = {}
        for name, value in (("created_after", created_after), ("created_before", created_before)):
            if isinstance(value, datetime):
                if value.tzinfo is None:
                    raise InvalidSessionValueError(f"{name} must be timezone-aware, got {value!r}")
                filters[name] = value.isoformat()
            elif value is not None:
                filters[name] = str(value)
        if session_type is not None:
            filters["session_type"] = str(getattr(session_type, "value", session_type))
        sessions: list[Session] = []
        params = dict(filters)
        while limit is None or len(sessions) < limit:
            wanted = MAX_PAGE_SIZE if limit is None else min(MAX_PAGE_SIZE, limit - len(sessions))
            response = yield _request("GET", _path("sessions"), params={**params, "limit": wanted})
            _expect(response, 200)
            page = _json(response)
            sessions.extend(_session_from_dict(item) for item in page["items"])
            if not page.get("next_cursor"):
                break
            params = {**filters, "cursor": page["next_cursor"]}
        return sessions

    def _op_create_agent(self, session_id: str, session_agent: SessionAgent) -> _Operation[None]:
        agent_id = _check_id("agent_id", session_agent.agent_id)
        path = _path("sessions", _check_id("session_id", session_id), "agents")
        response = yield _request("POST", path, session_agent.to_dict())
        _expect(response, 200, 201)
        self._remember(("agent", session_id, agent_id), response)
        _copy_timestamps(session_agent, response)

    def _op_read_agent(self, session_id: str, agent_id: str) -> _Operation[SessionAgent | None]:
        session_id, agent_id = _check_id("session_id", session_id), _check_id("agent_id", agent_id)
        response = yield _request("GET", _path("sessions", session_id, "agents", agent_id))
        if response.status_code == 404:
            return None
        _expect(response, 200)
        self._remember(("agent", session_id, agent_id), response)
        return _from_dict(SessionAgent, _json(response))

    def _op_update_agent(self, session_id: str, session_agent: SessionAgent) -> _Operation[None]:
        agent_id = _check_id("agent_id", session_agent.agent_id)
        path = _path("sessions", _check_id("session_id", session_id), "agents", agent_id)
        what = f"agent {agent_id!r} in session {session_id!r}"
        key = ("agent", session_id, agent_id)
        response = yield from self._put(key, path, session_agent.to_dict(), _AGENT_FIELDS, what)
        _copy_timestamps(session_agent, response)

    def _messages_path(self, session_id: str, agent_id: str, *rest: str | int) -> str:
        return _path(
            "sessions",
            _check_id("session_id", session_id),
            "agents",
            _check_id("agent_id", agent_id),
            "messages",
            *rest,
        )

    def _op_create_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage
    ) -> _Operation[None]:
        message_id = _message_id(session_message.message_id)
        payload = session_message.to_dict()
        response = yield _request("POST", self._messages_path(session_id, agent_id), payload)
        if response.status_code == 409 and _error_code(response) == "conflict":
            trimmed_below = self._trimmed_below.get((session_id, agent_id), 0)
            if self.optimistic and message_id >= trimmed_below:
                raise _error_from_response(
                    response,
                    SessionConflictError,
                    f"message {message_id} of agent {agent_id!r} in session {session_id!r} was "
                    "already written by another process: ",
                )
            # The full-trim case: restore listed nothing and Strands numbers from 0 again over
            # stored rows. FileSessionManager silently overwrites; do the same, but visibly.
            logger.warning(
                "session_id=<%s> | agent_id=<%s> | message_id=<%d> | a different message is "
                "already stored under this id (a conversation manager trimmed the whole history?);"
                " overwriting it, as FileSessionManager does",
                session_id,
                agent_id,
                message_id,
            )
            path = self._messages_path(session_id, agent_id, message_id)
            response = yield _request("PUT", path, payload)
            _expect(response, 200)
        else:
            _expect(response, 200, 201)
        _copy_timestamps(session_message, response)

    def _op_create_messages(
        self, session_id: str, agent_id: str, session_messages: list[SessionMessage]
    ) -> _Operation[None]:
        """Store consecutive messages of one agent in one batch request (all or nothing).

        A batch that meets a different stored message (409) is sent again one message at a
        time, so each gets ``create_message``'s handling of that case.
        """
        if len(session_messages) == 1:
            yield from self._op_create_message(session_id, agent_id, session_messages[0])
            return
        for message in session_messages:
            _message_id(message.message_id)
        path = self._messages_path(session_id, agent_id, "batch")
        payload = {"messages": [message.to_dict() for message in session_messages]}
        response = yield _request("POST", path, payload)
        if response.status_code == 409:
            for message in session_messages:
                yield from self._op_create_message(session_id, agent_id, message)
            return
        _expect(response, 200, 201)
        for message, stored in zip(session_messages, _json(response)["items"], strict=True):
            for name in ("created_at", "updated_at"):
                if isinstance(stored.get(name), str):
                    setattr(message, name, stored[name])

    def _op_read_message(
        self, session_id: str, agent_id: str, message_id: int
    ) -> _Operation[SessionMessage | None]:
        path = self._messages_path(session_id, agent_id, _message_id(message_id))
        response = yield _request("GET", path)
        if response.status_code == 404:
            return None
        _expect(response, 200)
        return _from_dict(SessionMessage, _json(response))

    def _op_update_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage
    ) -> _Operation[None]:
        message_id = _message_id(session_message.message_id)
        path = self._messages_path(session_id, agent_id, message_id)
        response = yield _request("PUT", path, session_message.to_dict())
        if response.status_code == 404:
            what = f"message {message_id} of agent {agent_id!r} in session {session_id!r}"
            raise _error_from_response(response, SessionNotFoundError, f"{what} does not exist: ")
        _expect(response, 200)
        _copy_timestamps(session_message, response)

    def _op_list_messages(
        self, session_id: str, agent_id: str, limit: int | None, offset: int
    ) -> _Operation[list[SessionMessage]]:
        if not isinstance(offset, int) or offset < 0:
            raise InvalidSessionValueError(f"offset must be an int >= 0, got {offset!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidSessionValueError(f"limit must be None or an int >= 0, got {limit!r}")
        path = self._messages_path(session_id, agent_id)
        if limit == 0:
            return []
        if limit is None:
            # Everything from the offset on, streamed and built as it arrives; a service
            # without streams answers the first page, and the pages follow.
            stream = _MessageStream()
            params: dict[str, str | int] = {"order": "asc", "offset": offset}
            request = _request("GET", path, params=params, accept=STREAM_ACCEPT)
            request.sink = stream
            response = yield request
            if stream.complete:
                messages = stream.messages
            else:
                messages = yield from _pages(path, offset, limit, request, response)
        else:
            request = _page_request(path, offset, limit, None, 0)
            messages = yield from _pages(path, offset, limit, request, (yield request))
        if not messages and offset > 0:
            self._trimmed_below[(session_id, agent_id)] = offset
        else:
            self._trimmed_below.pop((session_id, agent_id), None)
        return messages

    def _multi_agent_path(self, session_id: str, *rest: str) -> str:
        return _path("sessions", _check_id("session_id", session_id), "multi-agents", *rest)

    def _op_create_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase
    ) -> _Operation[None]:
        multi_agent_id = _check_id("multi_agent_id", multi_agent.id)
        payload = {"multi_agent_id": multi_agent_id, "state": multi_agent.serialize_state()}
        response = yield _request("POST", self._multi_agent_path(session_id), payload)
        _expect(response, 200, 201)
        self._remember(("multi_agent", session_id, multi_agent_id), response)

    def _op_read_multi_agent(
        self, session_id: str, multi_agent_id: str
    ) -> _Operation[dict[str, Any] | None]:
        path = self._multi_agent_path(session_id, _check_id("multi_agent_id", multi_agent_id))
        response = yield _request("GET", path)
        if response.status_code == 404:
            return None
        _expect(response, 200)
        self._remember(("multi_agent", session_id, multi_agent_id), response)
        state: dict[str, Any] = _json(response)["state"]
        return state

    def _op_update_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase
    ) -> _Operation[None]:
        multi_agent_id = _check_id("multi_agent_id", multi_agent.id)
        payload = {"multi_agent_id": multi_agent_id, "state": multi_agent.serialize_state()}
        what = f"multi-agent state {multi_agent_id!r} in session {session_id!r}"
        path = self._multi_agent_path(session_id, multi_agent_id)
        key = ("multi_agent", session_id, multi_agent_id)
        yield from self._put(key, path, payload, ("state",), what)


def _page_request(
    path: str, offset: int, limit: int | None, cursor: str | None, held: int
) -> _Request:
    """The request of the page after `cursor`, when `held` messages are in hand."""
    wanted = MAX_PAGE_SIZE if limit is None else min(MAX_PAGE_SIZE, limit - held)
    # The offset applies to the first page only: a cursor marks a position past it.
    position: dict[str, str | int] = {"offset": offset} if cursor is None else {"cursor": cursor}
    return _request("GET", path, params={"order": "asc", **position, "limit": wanted})


def _pages(
    path: str, offset: int, limit: int | None, request: _Request, response: httpx.Response
) -> _Operation[list[SessionMessage]]:
    """The messages of `response`, the first page (answer to `request`), and of the pages
    after it, up to `limit`."""
    messages: list[SessionMessage] = []
    while True:
        _expect(response, 200)
        # The next page is asked for before this one is parsed, so that the service builds it
        # meanwhile: its cursor is in the `Link` header too. A page with a next one is full,
        # which tells how many messages it holds before parsing it.
        ahead = None
        if (link := _next_cursor(response)) is not None:
            held = len(messages) + int((request.params or {}).get("limit", 0))
            if limit is None or held < limit:
                ahead = _page_request(path, offset, limit, link, held)
                ahead.ahead = True
                yield ahead
        with _gc_paused():
            page = _json(response)
            has_bytes = b"__bytes_encoded__" in response.content
            messages.extend(_messages_from(page["items"], has_bytes=has_bytes))
        cursor = page.get("next_cursor")
        if not cursor or (limit is not None and len(messages) >= limit):
            return messages
        if ahead is not None and link == cursor:
            request = ahead
        else:
            request = _page_request(path, offset, limit, cursor, len(messages))
        response = yield request
