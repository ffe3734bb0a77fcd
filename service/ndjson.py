"""The NDJSON format of session exports: one record per line, each with a `type`.

    {"type": "session", "session_id", "session_type", "version", "created_at", "updated_at",
     "expires_at"}
    {"type": "agent", "agent_id", "state", "conversation_manager_state", "_internal_state", ...}
    {"type": "message", "agent_id", "message_id", "message", "redact_message", ...}
    {"type": "multi_agent", "multi_agent_id", "state", ...}
    {"type": "end", "agents": n, "messages": n, "multi_agents": n}

The session comes first; the `end` record, last, lets an import tell a complete export from a
truncated one (a stream written by hand may leave it out). Every other record carries its
`version`, `created_at` and `updated_at`, which an import keeps (missing ones: 1 and now).
`parse` validates a stream as the normal routes validate bodies (ids, message shape, value-exact
JSON with NaN refused, nesting depth), naming the line of the first problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from service import jsonio
from service.errors import InvalidRequest
from service.models import Id, JsonObject, MessageId, SessionType, StrandsMessage

MEDIA_TYPE = "application/x-ndjson"
MAX_VERSION = 2**63 - 1
_POSITION = re.compile(r"line 1 column (\d+) \(char \d+\)")  # the parser's, within the record


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    version: int = Field(1, ge=1, le=MAX_VERSION)
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


class SessionRecord(_Record):
    session_id: Id
    session_type: SessionType = "AGENT"
    expires_at: AwareDatetime | None = None


class AgentRecord(_Record):
    agent_id: Id
    state: JsonObject
    conversation_manager_state: JsonObject
    internal_state: JsonObject = Field(default_factory=dict, alias="_internal_state")


class MessageRecord(_Record):
    agent_id: Id
    message_id: MessageId
    message: StrandsMessage
    redact_message: StrandsMessage | None = None


class MultiAgentRecord(_Record):
    multi_agent_id: Id
    state: JsonObject


class EndRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    agents: int
    messages: int
    multi_agents: int


_MODELS: dict[str, type[BaseModel]] = {
    "session": SessionRecord,
    "agent": AgentRecord,
    "message": MessageRecord,
    "multi_agent": MultiAgentRecord,
    "end": EndRecord,
}


@dataclass
class Bundle:
    """A validated export: the session and everything under it."""

    session: SessionRecord
    agents: list[AgentRecord] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)
    multi_agents: list[MultiAgentRecord] = field(default_factory=list)


def _invalid(line: int, message: str, details: list[Any] | None = None) -> InvalidRequest:
    return InvalidRequest(f"line {line}: {message}", details)


def _record(line: int, raw: bytes, max_depth: int) -> tuple[str, BaseModel]:
    try:
        value = jsonio.loads(raw, max_depth=max_depth)
    except jsonio.JSONError as exc:
        text = _POSITION.sub(r"column \1", str(exc).replace("body", "record", 1))
        raise _invalid(line, text) from None
    if not isinstance(value, dict):
        raise _invalid(line, "a record must be a JSON object")
    kind = value.get("type")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise _invalid(line, f"type must be one of {', '.join(_MODELS)}, got {kind!r}")
    try:
        return str(kind), model.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors()
        details = [
            {
                "loc": ["line", line, *map(str, e["loc"])],
                "message": e["msg"].removeprefix("Value error, "),
                "type": e["type"],
            }
            for e in errors
        ]
        where = ".".join(map(str, errors[0]["loc"])) or "record"
        message = errors[0]["msg"].removeprefix("Value error, ")
        raise _invalid(line, f"{kind}.{where}: {message}", details) from None


def parse(body: bytes, max_depth: int) -> Bundle:
    """Validate a whole stream; 422 naming the line of the first problem."""
    bundle: Bundle | None = None
    agents: set[str] = set()
    messages: set[tuple[str, int]] = set()
    multi_agents: set[str] = set()
    ended = 0
    number = 0
    lines = body.split(b"\n")
    if lines[-1] == b"":  # the newline that ends the last line
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        if ended:
            raise _invalid(number, f"nothing may follow the end record (line {ended})")
        kind, record = _record(number, raw, max_depth)
        if bundle is None:
            if not isinstance(record, SessionRecord):
                raise _invalid(number, f"the first record must be the session, not {kind!r}")
            bundle = Bundle(record)
        elif isinstance(record, SessionRecord):
            raise _invalid(number, "a stream holds one session record only")
        elif isinstance(record, AgentRecord):
            if record.agent_id in agents:
                raise _invalid(number, f"agent {record.agent_id!r} appears twice")
            agents.add(record.agent_id)
            bundle.agents.append(record)
        elif isinstance(record, MessageRecord):
            key = (record.agent_id, record.message_id)
            if record.agent_id not in agents:
                raise _invalid(
                    number,
                    f"message {record.message_id} belongs to agent "
                    f"{record.agent_id!r}, which no earlier record defines",
                )
            if key in messages:
                raise _invalid(
                    number,
                    f"message {record.message_id} of agent {record.agent_id!r} appears twice",
                )
            messages.add(key)
            bundle.messages.append(record)
        elif isinstance(record, MultiAgentRecord):
            if record.multi_agent_id in multi_agents:
                raise _invalid(number, f"multi-agent state {record.multi_agent_id!r} appears twice")
            multi_agents.add(record.multi_agent_id)
            bundle.multi_agents.append(record)
        elif isinstance(record, EndRecord):
            counted = (len(agents), len(messages), len(multi_agents))
            if (record.agents, record.messages, record.multi_agents) != counted:
                raise _invalid(
                    number,
                    "the end record's counts differ from the records above "
                    f"(agents, messages, multi-agent states: {counted}); "
                    "is the stream incomplete?",
                )
            ended = number
    if bundle is None:
        raise _invalid(max(number, 1), "the stream holds no records; the first must be the session")
    return bundle


def line(record: dict[str, Any]) -> bytes:
    """One record as a line; stored documents are `orjson.Fragment`s, written as stored."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
