"""Request and response models, mirroring the Strands dataclasses.

Request models validate what Strands sends and keep JSON documents as the client's own `dict`s
(key order and values untouched); extra keys such as a client's `created_at` are ignored.
Responses are built from rows by the `*_body` functions; the `*Out` models only document them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

# Strands' `SessionType` values (strands.types.session.SessionType); a test keeps them in step.
SESSION_TYPES = ("AGENT",)
SessionType = Literal["AGENT"]
MAX_MESSAGE_ID = 2_147_483_647
MAX_BATCH = 1000
MAX_TTL_SECONDS = 3_153_600_000  # 100 years


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1


def check_id(value: str) -> str:
    """Session, agent and multi-agent ids: 1-255 characters, no separators or controls."""
    if not 1 <= len(value) <= 255:
        raise ValueError("must be 1 to 255 characters long")
    if value in (".", ".."):
        raise ValueError("must not be '.' or '..'")
    if "/" in value or "\\" in value:
        raise ValueError("must not contain '/' or '\\'")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be only whitespace")
    return value


Id = Annotated[
    str,
    AfterValidator(check_id),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "description": "No '/', '\\', control characters; not '.', '..' or blank.",
        }
    ),
]
MessageId = Annotated[int, Field(ge=0, le=MAX_MESSAGE_ID)]
JsonObject = dict[str, Any]


def check_message(value: dict[str, Any]) -> dict[str, Any]:
    """A Strands message: `role` user|assistant and `content` a list of objects."""
    role = value.get("role")
    if role not in ("user", "assistant"):
        raise ValueError(f"role must be 'user' or 'assistant', got {role!r}")
    content = value.get("content")
    if not isinstance(content, list):
        raise ValueError("content must be a list of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict):
            raise ValueError(f"content[{i}] must be an object")
    return value


_MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["user", "assistant"]},
        "content": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}
StrandsMessage = Annotated[
    dict[str, Any], AfterValidator(check_message), WithJsonSchema(_MESSAGE_SCHEMA)
]


def content_types(message: dict[str, Any]) -> list[str]:
    """The kinds of content blocks a message holds (`text`, `toolUse`, …), in order, once each."""
    kinds: dict[str, None] = {}
    for block in message["content"]:
        for key in block:
            # A text[] column cannot hold NUL; the message itself keeps the key as sent.
            kinds.setdefault(key.replace("\x00", "\ufffd"), None)
    return list(kinds)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Expiry(_Body):
    """A session's expiry: an instant, or a lifetime from now (docs/lifecycle.md)."""

    expires_at: AwareDatetime | None = Field(
        None, description="When the session expires (with a time zone); null: never."
    )
    ttl_seconds: float | None = Field(
        None,
        gt=0,
        le=MAX_TTL_SECONDS,
        allow_inf_nan=False,
        description="Expire this many seconds from now (instead of expires_at).",
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> _Expiry:
        if self.expires_at is not None and self.ttl_seconds is not None:
            raise ValueError("give expires_at or ttl_seconds, not both")
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return self

    def expiry(self) -> tuple[datetime | None, float | None] | None:
        """(expires_at, ttl_seconds) when the body sets the expiry (nulls clear it), else None."""
        if self.ttl_seconds is not None:
            return None, self.ttl_seconds
        return (self.expires_at, None) if "expires_at" in self.model_fields_set else None


class SessionCreate(_Expiry):
    session_id: Id
    session_type: SessionType = "AGENT"


class SessionUpdate(_Expiry):
    session_id: Id | None = None
    session_type: SessionType = "AGENT"


class AgentUpdate(_Body):
    agent_id: Id | None = None
    state: JsonObject
    conversation_manager_state: JsonObject
    internal_state: JsonObject = Field(default_factory=dict, alias="_internal_state")


class AgentCreate(AgentUpdate):
    agent_id: Id  # type: ignore[assignment]


class MessageUpdate(_Body):
    message_id: MessageId | None = None
    message: StrandsMessage
    redact_message: StrandsMessage | None = None


class MessageCreate(MessageUpdate):
    message_id: MessageId  # type: ignore[assignment]


class MessageBatch(_Body):
    messages: Annotated[list[MessageCreate], Field(min_length=1, max_length=MAX_BATCH)]


class TurnWrite(_Body):
    """A turn's writes to one agent: messages to append and the agent's new state."""

    messages: Annotated[list[MessageCreate], Field(max_length=MAX_BATCH)] = Field(
        default_factory=list, description="Appended first, all or nothing (as a batch)."
    )
    agent: AgentUpdate | None = Field(
        None, description="Then the agent's state, replaced as a PUT without If-Match does."
    )


class MultiAgentUpdate(_Body):
    multi_agent_id: Id | None = None
    state: JsonObject


class MultiAgentCreate(MultiAgentUpdate):
    multi_agent_id: Id  # type: ignore[assignment]


# --- responses (documentation; bodies are built by the functions below) ------------------------


class SessionOut(BaseModel):
    session_id: str
    session_type: SessionType
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = Field(description="When the session expires; null: never.")


class AgentOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    agent_id: str
    state: JsonObject
    conversation_manager_state: JsonObject
    internal_state: JsonObject = Field(alias="_internal_state")
    message_count: int
    version: int
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    message_id: int
    message: JsonObject
    redact_message: JsonObject | None
    version: int
    created_at: datetime
    updated_at: datetime


class TurnOut(BaseModel):
    messages: list[MessageOut]
    agent: AgentOut | None = Field(description="null when the turn had no agent state.")


class MultiAgentOut(BaseModel):
    multi_agent_id: str
    state: JsonObject
    version: int
    created_at: datetime
    updated_at: datetime


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[Any] | None = None
    request_id: str | None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def timestamp(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def session_body(row: Any) -> dict[str, Any]:
    return {
        "session_id": row["session_id"],
        "session_type": row["session_type"],
        "version": row["version"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
        "expires_at": None if row["expires_at"] is None else timestamp(row["expires_at"]),
    }


def agent_body(row: Any) -> dict[str, Any]:
    return {
        "agent_id": row["agent_id"],
        "state": row["state"],
        "conversation_manager_state": row["conversation_manager_state"],
        "_internal_state": row["internal_state"],
        "message_count": row["message_count"],
        "version": row["version"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else timestamp(value)


def message_body(row: Any) -> dict[str, Any]:
    """A message row as the contract shows it. sql/messages.sql formats the timestamps already
    (`iso_timestamp`: the text `timestamp` gives, made in C), which saves two Python calls per
    row of a page; rows from elsewhere may still carry datetimes."""
    return {
        "message_id": row["message_id"],
        "message": row["message"],
        "redact_message": row["redact_message"],
        "version": row["version"],
        "created_at": _text(row["created_at"]),
        "updated_at": _text(row["updated_at"]),
    }


_MESSAGE_FIELDS = ("message_id", "message", "redact_message", "version", "created_at", "updated_at")


def message_items(rows: list[Any]) -> list[dict[str, Any]]:
    """`message_body` of every row of a page, the same dicts at a third of the cost: columns
    are found by position once for the page (asyncpg reads a record by index faster than by
    name), and timestamps the query formatted already are taken as they are."""
    if not rows or not all(isinstance(rows[0][name], str) for name in _MESSAGE_FIELDS[-2:]):
        return [message_body(row) for row in rows]
    names = list(rows[0].keys())
    i, m, r, v, c, u = (names.index(name) for name in _MESSAGE_FIELDS)
    return [
        {
            "message_id": row[i],
            "message": row[m],
            "redact_message": row[r],
            "version": row[v],
            "created_at": row[c],
            "updated_at": row[u],
        }
        for row in rows
    ]


def multi_agent_body(row: Any) -> dict[str, Any]:
    return {
        "multi_agent_id": row["multi_agent_id"],
        "state": row["state"],
        "version": row["version"],
        "created_at": timestamp(row["created_at"]),
        "updated_at": timestamp(row["updated_at"]),
    }
