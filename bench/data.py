"""The benchmark's data: the session, its agents and histories, and the 1 KB message body.

`create` makes them through the service's own API and keeps what the floors need: the bodies of
a real GET-agent and append answer, and the query of the last page of the 10,000-message history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson

SESSION = "bench"
API = f"/api/v1/sessions/{SESSION}"
HISTORIES = {"hist100": 100, "hist1000": 1000, "hist10000": 10000}
CONCURRENCY = (1, 16, 64)
BATCH = 50
# The text of every message: the append body `{"message_id":N,"message":{...}}` is 1 KB.
_SKELETON = '{"message_id":__ID__,"message":{"role":"user","content":[{"text":""}]}}'
_WORDS = "the agent read the tool result and wrote a careful answer for the user "
TEXT = (_WORDS * 20)[: 1024 - len(_SKELETON.replace("__ID__", "12345"))]
BODY_TEMPLATE = _SKELETON.replace('""', f'"{TEXT}"')
MESSAGE_DOCUMENT = '{"role":"user","content":[{"text":"' + TEXT + '"}]}'
# The append floor's connections: one agent each, as the service's append scenarios.
APPEND_FLOOR_CONCURRENCY = (1, 16)
SMALL_STATE = {"user_name": "Ada", "preferences": {"language": "en", "units": "metric"}}
CONVERSATION_MANAGER = {
    "__name__": "SlidingWindowConversationManager",
    "removed_message_count": 0,
    "model_call_count": 0,
}


def big_state(size: int = 50 * 1024) -> dict[str, Any]:
    """An agent state whose JSON is `size` bytes: a list of notes, as a tool might keep."""
    notes: list[dict[str, Any]] = []
    while len(orjson.dumps({"notes": notes})) < size:
        notes.append(
            {
                "id": len(notes),
                "kind": "observation",
                "text": _WORDS * 2,
                "score": len(notes) * 0.5,
                "tags": ["a", "b"],
            }
        )
    return {"notes": notes}


def agent_path(agent: str, *rest: str) -> str:
    return "/".join([API, "agents", quote(agent, safe=""), *rest])


# --- data --------------------------------------------------------------------------------


def create(url: str, agent_body: Path, message_body: Path, meta: dict[str, Any]) -> str:
    """Agents, histories and the floor bodies, through the service's own API at `url`; sizes go
    into `meta`. Returns the query of the last page of the 10,000-message history."""
    with httpx.Client(base_url=url, timeout=120.0) as http:

        def post(path: str, body: dict[str, Any]) -> httpx.Response:
            response = http.post(
                path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
            )
            if response.status_code not in (200, 201):
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
            return response

        post("/api/v1/sessions", {"session_id": SESSION, "session_type": "AGENT"})
        agents = {
            "small": SMALL_STATE,
            "big": big_state(),
            "dbfloor": {},
            **{name: {} for name in HISTORIES},
        }
        for c in CONCURRENCY:
            agents.update({f"append-c{c}-{i}": {} for i in range(c)})
            agents.update({f"batch-c{c}-{i}": {} for i in range(c)})
        for c in APPEND_FLOOR_CONCURRENCY:
            agents.update({f"floor-append-c{c}-{i}": {} for i in range(c)})
        for agent, state in agents.items():
            post(
                f"{API}/agents",
                {
                    "agent_id": agent,
                    "state": state,
                    "conversation_manager_state": CONVERSATION_MANAGER,
                },
            )

        # The append answer of the floor: a real one (message 0 of the 100-message history).
        first = BODY_TEMPLATE.replace("__ID__", "0").encode()
        response = http.post(
            agent_path("hist100", "messages"),
            content=first,
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()
        message_body.write_bytes(response.content)
        for agent, size in HISTORIES.items():
            start = 1 if agent == "hist100" else 0
            for low in range(start, size, 1000):
                ids = range(low, min(size, low + 1000))
                body = (
                    b'{"messages":['
                    + b",".join(BODY_TEMPLATE.replace("__ID__", str(i)).encode() for i in ids)
                    + b"]}"
                )
                response = http.post(
                    agent_path(agent, "messages", "batch"),
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code != 201:
                    raise RuntimeError(f"batch: {response.status_code} {response.text}")

        response = http.get(agent_path("small"))
        response.raise_for_status()
        agent_body.write_bytes(response.content)
        big = http.get(agent_path("big"))
        meta["agent_body_bytes"] = len(response.content)
        meta["big_agent_body_bytes"] = len(big.content)
        meta["append_body_bytes"] = len(first)
        meta["message_response_bytes"] = len(message_body.read_bytes())

        # The last page: follow next_cursor from page 1 to page 99, ask for page 100.
        cursor = None
        for _page in range(99):
            params: dict[str, Any] = {"limit": 100}
            if cursor is not None:
                params["cursor"] = cursor
            cursor = http.get(agent_path("hist10000", "messages"), params=params).json()[
                "next_cursor"
            ]
        last_page_query = urlencode({"limit": 100, "cursor": cursor})
        last = http.get(agent_path("hist10000", "messages") + "?" + last_page_query)
        items = last.json()["items"]
        if [m["message_id"] for m in items] != list(range(9900, 10000)):
            raise RuntimeError("the last page is not messages 9900..9999")
        meta["list_page_bytes"] = len(last.content)
    return last_page_query
