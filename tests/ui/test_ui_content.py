"""How stored content blocks become what the conversation page shows (no database needed)."""

from __future__ import annotations

import base64

from service.ui import content
from tests.ui.ui_data import encoded, png


def _doc(name: str, fmt: str, data: bytes) -> dict:
    return {"document": {"name": name, "format": fmt, "source": {"bytes": encoded(data)}}}


def test_a_document_inside_a_tool_result_is_found_by_its_position():
    message = {
        "role": "user",
        "content": [
            {"text": "see"},
            {
                "toolResult": {
                    "toolUseId": "t",
                    "status": "success",
                    "content": [{"text": "x"}, _doc("a/../b", "csv", b"1,2\n")],
                }
            },
        ],
    }
    shown = content.blocks(message)
    assert [b.kind for b in shown] == ["text", "tool_result"]
    assert [c.kind for c in shown[1].children] == ["text", "document"]
    assert shown[1].children[1].ref == "1.1"
    assert content.find_document(message, "1.1") == ("a_.._b.csv", b"1,2\n")
    for missing in ("0", "1", "1.0", "1.2", "9", "1.1.1", "x", "", "-1"):
        assert content.find_document(message, missing) is None, missing


def test_unknown_or_unsafe_blocks_show_as_json_never_as_markup():
    svg = {"image": {"format": "svg+xml", "source": {"bytes": encoded(b"<svg onload=x>")}}}
    not_base64 = {
        "image": {
            "format": "png",
            "source": {"bytes": {"__bytes_encoded__": True, "data": '"><script>'}},
        }
    }
    by_location = {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://b/k"}}}}
    video = {"video": {"format": "mp4"}}
    shown = content.blocks({"role": "user", "content": [svg, not_base64, by_location, video]})
    assert [b.kind for b in shown] == ["json", "json", "json", "json"]
    assert [b.name for b in shown] == ["image", "image", "image", "video"]
    good = content.blocks(
        {
            "role": "user",
            "content": [{"image": {"format": "JPG", "source": {"bytes": encoded(png())}}}],
        }
    )[0]
    assert good.kind == "image"
    assert good.src == "data:image/jpeg;base64," + base64.b64encode(png()).decode()
    assert content.blocks({"role": "user", "content": "just text"})[0].kind == "json"


def test_a_redaction_is_shown_unless_the_original_is_asked_for():
    row = {
        "message_id": 3,
        "message": '{"role": "user", "content": [{"text": "secret"}]}',
        "redact_message": '{"role": "user", "content": [{"text": "[gone]"}]}',
        "version": 1,
        "created_at": None,
        "updated_at": None,
    }
    shown = content.message_view(row)
    assert shown.redacted and not shown.showing_original and shown.blocks[0].text == "[gone]"
    original = content.message_view(row, original=True)
    assert original.showing_original and original.blocks[0].text == "secret"
    plain = content.message_view({**row, "redact_message": None}, original=True)
    assert not plain.redacted and not plain.showing_original


def test_pretty_json_keeps_order_and_long_integers():
    value = content.parse('{"b": 1, "a": 123456789012345678901234567890, "c": "\\u00e9"}')
    assert content.pretty(value) == (
        '{\n  "b": 1,\n  "a": 123456789012345678901234567890,\n  "c": "é"\n}'
    )
    assert content.pretty(content.parse('{"z": [1.5, null], "y": {}}')) == (
        '{\n  "z": [\n    1.5,\n    null\n  ],\n  "y": {}\n}'
    )


def test_reasoning_shows_as_its_text():
    reasoning = {"reasoningContent": {"reasoningText": {"text": "think\nmore", "signature": "s"}}}
    shown = content.blocks({"role": "assistant", "content": [reasoning]})[0]
    assert (shown.kind, shown.text) == ("reasoning", "think\nmore")
