"""What the session browser's tests store and start: a conversation with every kind of content,
and a real service process."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path
from typing import Any

from tests.support import ROOT, ServiceProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTEFACTS = ROOT / ".artifacts" / "ui"
S = "/api/v1/sessions"
CMS = {"__name__": "SlidingWindowConversationManager", "removed_message_count": 0}


def png(width: int = 6, height: int = 4, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A small valid PNG of one colour, so a browser has a real image to decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def encoded(data: bytes) -> dict[str, Any]:
    """Bytes as Strands stores them."""
    return {"__bytes_encoded__": True, "data": base64.b64encode(data).decode()}


DOCUMENT = b"%PDF-1.4 quarterly report\n"
SCRIPT_TEXT = "<script>alert(1)</script> and <img src=x onerror=alert(2)>"


def conversation() -> list[dict[str, Any]]:
    """A conversation with each kind of content the browser renders."""
    user = "user"
    return [
        {"message_id": 0, "message": {"role": user, "content": [{"text": "line one\nline two"}]}},
        {
            "message_id": 1,
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Let me look that up."},
                    {
                        "toolUse": {
                            "toolUseId": "tool-1",
                            "name": "weather_lookup",
                            "input": {"city": "Oslo", "days": 3},
                        }
                    },
                ],
            },
        },
        {
            "message_id": 2,
            "message": {
                "role": user,
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "tool-1",
                            "status": "success",
                            "content": [{"json": {"forecast": ["rain", "sun"], "temp_c": 7}}],
                        }
                    }
                ],
            },
        },
        {
            "message_id": 3,
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "Here is the chart."},
                    {"image": {"format": "png", "source": {"bytes": encoded(png())}}},
                ],
            },
        },
        {
            "message_id": 4,
            "message": {
                "role": user,
                "content": [
                    {"text": "And the report:"},
                    {
                        "document": {
                            "format": "pdf",
                            "name": "report",
                            "source": {"bytes": encoded(DOCUMENT)},
                        }
                    },
                ],
            },
        },
        {
            "message_id": 5,
            "message": {"role": user, "content": [{"text": "My card is 4111 1111 1111 1111"}]},
            "redact_message": {"role": user, "content": [{"text": "My card is [REDACTED]"}]},
        },
        {"message_id": 6, "message": {"role": "assistant", "content": [{"text": SCRIPT_TEXT}]}},
    ]


def start_service(database_url: str, log: Path, **env: str) -> ServiceProcess:
    proc = ServiceProcess({"DATABASE_URL": database_url, "SWEEP_INTERVAL_SECONDS": "0", **env}, log)
    try:
        proc.wait_ready()
    except Exception:
        proc.stop()
        raise
    return proc
