"""Stored Strands messages turned into what the conversation templates show.

A message's `content` is a list of Strands content blocks (`text`, `toolUse`, `toolResult`,
`image`, `document`, `reasoningContent`, …). Each becomes a small `Block` the templates render
without further logic; a block this module does not know is shown as pretty-printed JSON, so
nothing stored is ever hidden. Bytes arrive as Strands encodes them,
`{"__bytes_encoded__": true, "data": "<base64>"}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

# Raster formats a browser shows in <img>; SVG stays out (it is a document that can script).
IMAGE_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
}
# orjson reads integers past 64 bits as floats: text with a run of digits that long takes the
# standard library's exact path (as in service.jsonio, which validated it on the way in).
_LONG_DIGITS = re.compile(r"\d{19,}")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass
class Block:
    """One content block as the page shows it; `kind` picks the template."""

    kind: str  # text | tool_use | tool_result | image | document | reasoning | json
    text: str = ""
    name: str = ""
    ref: str = ""  # toolUseId, or a document's position for its download link
    status: str = ""
    pretty: str = ""
    src: str = ""
    children: list[Block] = field(default_factory=list)


@dataclass
class MessageView:
    """One message of the conversation: the content Strands gives the model, and its stamps."""

    message_id: int
    role: str
    blocks: list[Block]
    redacted: bool
    showing_original: bool
    created_at: Any
    updated_at: Any
    version: int


def parse(text: str | None) -> Any:
    """A stored JSON document read as text, parsed value-exactly (long integers stay integers)."""
    if text is None:
        return None
    return json.loads(text) if _LONG_DIGITS.search(text) else orjson.loads(text)


def pretty(value: Any) -> str:
    """Indented JSON, key order kept, non-ASCII as itself."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return json.dumps(value, indent=2, ensure_ascii=False)


def encoded_bytes(value: Any) -> str | None:
    """The base64 text of a Strands-encoded bytes value, or None if `value` is not one."""
    if (
        isinstance(value, dict)
        and value.get("__bytes_encoded__") is True
        and isinstance(value.get("data"), str)
        and _BASE64.match(value["data"])
    ):
        return str(value["data"])
    return None


def _source_bytes(part: dict[str, Any]) -> str | None:
    source = part.get("source")
    return encoded_bytes(source.get("bytes")) if isinstance(source, dict) else None


def _image(image: Any, whole: dict[str, Any]) -> Block:
    if isinstance(image, dict):
        mime = IMAGE_TYPES.get(str(image.get("format", "")).lower())
        data = _source_bytes(image)
        if mime and data is not None:
            return Block("image", name=str(image.get("format")), src=f"data:{mime};base64,{data}")
    return Block("json", name="image", pretty=pretty(whole))


def _document(document: Any, whole: dict[str, Any], ref: str) -> Block:
    if isinstance(document, dict) and _source_bytes(document) is not None:
        name = str(document.get("name") or "document")
        return Block("document", name=name, text=str(document.get("format", "")), ref=ref)
    return Block("json", name="document", pretty=pretty(whole))


def _tool_result(result: Any, whole: dict[str, Any], ref: str) -> Block:
    if not isinstance(result, dict):
        return Block("json", name="toolResult", pretty=pretty(whole))
    children: list[Block] = []
    content = result.get("content")
    for i, part in enumerate(content if isinstance(content, list) else []):
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            children.append(Block("text", text=part["text"]))
        elif isinstance(part, dict) and "json" in part:
            children.append(Block("json", name="json", pretty=pretty(part["json"])))
        elif isinstance(part, dict):
            children.append(block(part, f"{ref}.{i}"))
        else:
            children.append(Block("json", name="content", pretty=pretty(part)))
    return Block(
        "tool_result",
        ref=str(result.get("toolUseId", "")),
        status=str(result.get("status", "")),
        children=children,
    )


def block(part: dict[str, Any], ref: str) -> Block:
    """One content block; `ref` is its position ("3", or "3.1" inside a tool result)."""
    if isinstance(part.get("text"), str):
        return Block("text", text=part["text"])
    if "toolUse" in part and isinstance(part["toolUse"], dict):
        use = part["toolUse"]
        return Block(
            "tool_use",
            name=str(use.get("name", "")),
            ref=str(use.get("toolUseId", "")),
            pretty=pretty(use.get("input")),
        )
    if "toolResult" in part:
        return _tool_result(part["toolResult"], part, ref)
    if "image" in part:
        return _image(part["image"], part)
    if "document" in part:
        return _document(part["document"], part, ref)
    reasoning = part.get("reasoningContent")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("reasoningText"), dict):
        return Block("reasoning", text=str(reasoning["reasoningText"].get("text", "")))
    label = next(iter(part), "block")
    return Block("json", name=str(label), pretty=pretty(part))


def blocks(message: Any) -> list[Block]:
    """The blocks of a stored message (anything but a list of objects shows as JSON)."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return [Block("json", name="message", pretty=pretty(message))]
    return [
        block(part, str(i)) if isinstance(part, dict) else Block("json", pretty=pretty(part))
        for i, part in enumerate(content)
    ]


def message_view(row: Any, original: bool = False) -> MessageView:
    """A message row as shown: its redaction when it has one (what Strands gives the model),
    the original only when `original` asks for it."""
    stored = parse(row["message"])
    redaction = parse(row["redact_message"])
    shown = stored if redaction is None or original else redaction
    role = shown.get("role") if isinstance(shown, dict) else None
    return MessageView(
        message_id=row["message_id"],
        role=role if role in ("user", "assistant") else "other",
        blocks=blocks(shown),
        redacted=redaction is not None,
        showing_original=redaction is not None and original,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def find_document(message: Any, ref: str) -> tuple[str, bytes] | None:
    """The file name and bytes of the document at position `ref`, or None."""
    node: Any = message.get("content") if isinstance(message, dict) else None
    parts = ref.split(".")
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        return None
    for depth, index in enumerate(int(p) for p in parts):
        if not isinstance(node, list) or index >= len(node) or not isinstance(node[index], dict):
            return None
        node = node[index]
        if depth + 1 < len(parts):
            result = node.get("toolResult")
            node = result.get("content") if isinstance(result, dict) else None
    document = node.get("document") if isinstance(node, dict) else None
    data = _source_bytes(document) if isinstance(document, dict) else None
    if data is None:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    assert isinstance(document, dict)
    return _filename(str(document.get("name") or ""), str(document.get("format") or "")), raw


def _filename(name: str, fmt: str) -> str:
    safe = _FILENAME_UNSAFE.sub("_", name).strip(" .") or "document"
    ext = _FILENAME_UNSAFE.sub("", fmt).lower()
    if ext and not safe.lower().endswith("." + ext):
        safe = f"{safe}.{ext}"
    return safe[:120]
