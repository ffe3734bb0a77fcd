"""The real Strands SDK on HTTPSessionManager, a real service and PostgreSQL; restores run in new
processes. Where FileSessionManager is the reference, the same scenario runs on it and the two
are compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from client_support import (
    FailingModel,
    ScriptedModel,
    build_agent,
    build_graph,
    build_swarm,
    snapshot,
    text,
    tool_call,
)
from strands.session.file_session_manager import FileSessionManager
from strands_session_client import HTTPSessionManager, HTTPSessionRepository

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]


def restore_in_new_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run client_restore.py in a fresh interpreter and return what it printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, str(HERE / "client_restore.py"), json.dumps(spec)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def converse(manager: Any) -> dict[str, Any]:
    """Several turns of two agents in one session: text, a tool call, state, bytes, model state."""
    assistant = build_agent(
        manager,
        "assistant",
        scripts=[
            text("hello"),
            tool_call("add", {"a": 2, "b": 3}, "t1"),
            text("it is 5"),
            text("noted"),
        ],
    )
    critic = build_agent(manager, "critic", scripts=[text("looks fine")])
    assistant("hi")
    assistant.state.set("profile", {"name": "Ada", "tags": ["x", "y"], "score": 0.5, "big": 2**63})
    assistant("what is 2 + 3?")
    image = {"image": {"format": "png", "source": {"bytes": b"\x89PNG\r\n\x00\xff"}}}
    assistant._model_state["response_id"] = "resp-1"
    assistant([{"text": "look at this"}, image])
    critic("review it")
    return {"assistant": snapshot(assistant), "critic": snapshot(critic)}


def test_turns_tool_call_state_and_bytes_restore_in_a_new_process(
    client_server_url: str, session_id: str, tmp_path: Path
) -> None:
    with HTTPSessionManager(session_id, client_server_url) as manager:
        before = converse(manager)
    blocks = [block for m in before["assistant"]["messages"] for block in m["content"]]
    assert {"toolUse", "toolResult", "image"} <= {key for block in blocks for key in block}

    after = restore_in_new_process(
        {
            "kind": "agents",
            "base_url": client_server_url,
            "session_id": session_id,
            "agent_ids": ["assistant", "critic"],
        }
    )

    assert after == before
    assert after["assistant"]["model_state"] == {"response_id": "resp-1"}
    assert after["assistant"]["state"]["profile"]["big"] == 2**63
    # The same conversation on FileSessionManager stores the same things.
    file_before = converse(FileSessionManager(session_id, storage_dir=str(tmp_path)))
    file_after = {
        agent_id: snapshot(
            build_agent(FileSessionManager(session_id, storage_dir=str(tmp_path)), agent_id)
        )
        for agent_id in ("assistant", "critic")
    }
    assert _without_tracking(file_after) == _without_tracking(after)
    assert file_after == file_before


def _without_tracking(value: Any) -> Any:
    """Drop the parts that differ between two runs of one scenario: tracking ids, and the
    time to first byte, which Strands records only when it measured at least 1 ms."""
    if isinstance(value, dict):
        return {
            k: _without_tracking(v)
            for k, v in value.items()
            if k not in ("tracking_id", "timeToFirstByteMs")
        }
    if isinstance(value, list):
        return [_without_tracking(v) for v in value]
    return value


def test_sliding_window_smaller_than_history_restores_like_file(
    client_server_url: str, session_id: str, tmp_path: Path
) -> None:
    def run(manager: Any) -> dict[str, Any]:
        agent = build_agent(
            manager, "windowed", window=4, scripts=[text(f"answer {i}") for i in range(5)]
        )
        for i in range(5):
            agent(f"question {i}")
        return snapshot(agent)

    with HTTPSessionManager(session_id, client_server_url) as manager:
        before = run(manager)
    assert before["conversation_manager_state"]["removed_message_count"] > 0

    after = restore_in_new_process(
        {
            "kind": "agents",
            "base_url": client_server_url,
            "session_id": session_id,
            "agent_ids": ["windowed"],
            "window": 4,
        }
    )["windowed"]

    assert after["messages"] == before["messages"]
    assert after["conversation_manager_state"] == before["conversation_manager_state"]
    run(FileSessionManager("w", storage_dir=str(tmp_path)))
    file_after = snapshot(
        build_agent(FileSessionManager("w", storage_dir=str(tmp_path)), "windowed", window=4)
    )
    assert _without_tracking(file_after) == _without_tracking(after)


def test_interrupt_state_persists_and_resumes_in_a_new_process(
    client_server_url: str, session_id: str
) -> None:
    with HTTPSessionManager(session_id, client_server_url) as manager:
        agent = build_agent(
            manager, "approver", scripts=[tool_call("approve", {"action": "deploy"}, "p1")]
        )
        result = agent("deploy it")
        assert result.stop_reason == "interrupt"
        before = snapshot(agent)
    assert before["interrupt_state"]["activated"] is True

    resumed = restore_in_new_process(
        {
            "kind": "resume_agent",
            "base_url": client_server_url,
            "session_id": session_id,
            "agent_id": "approver",
        }
    )

    assert resumed["restored"] == before
    assert resumed["stop_reason"] == "end_turn"
    assert resumed["after"]["interrupt_state"]["activated"] is False
    tool_results = [
        b["toolResult"]
        for m in resumed["after"]["messages"]
        for b in m["content"]
        if "toolResult" in b
    ]
    assert tool_results[-1]["content"] == [{"text": "deploy: yes"}]


def test_redaction_is_persisted_and_restored_like_file(
    client_server_url: str, session_id: str, tmp_path: Path
) -> None:
    def run(make_manager: Any) -> tuple[Any, Any]:
        agent = build_agent(
            make_manager(), scripts=[text("fine"), text("no", redact_user="[redacted]")]
        )
        agent("a harmless question")
        agent("something the guardrail blocks")
        manager = make_manager()
        restored = build_agent(manager)
        return restored.messages, manager.session_repository.read_message(
            manager.session_id, "assistant", 2
        )

    messages, stored = run(lambda: HTTPSessionManager(session_id, client_server_url))
    file_messages, file_stored = run(
        lambda: FileSessionManager(session_id, storage_dir=str(tmp_path))
    )

    assert messages[2]["content"] == [{"text": "[redacted]"}]
    assert messages[0]["content"] == [{"text": "a harmless question"}]
    assert stored.redact_message["content"] == [{"text": "[redacted]"}]
    assert _without_tracking(messages) == _without_tracking(file_messages)
    assert stored.message == file_stored.message | {"tracking_id": stored.message["tracking_id"]}
    assert stored.redact_message == file_stored.redact_message | {
        "tracking_id": stored.redact_message["tracking_id"]
    }


def test_graph_state_persists_and_resumes_in_a_new_process_like_file(
    client_server_url: str, session_id: str, tmp_path: Path
) -> None:
    def first_run(manager: Any) -> dict[str, Any]:
        graph = build_graph(manager, ScriptedModel([text("A did it")]), FailingModel())
        with pytest.raises(RuntimeError, match="node b failed"):
            graph("task")
        state = manager.session_repository.read_multi_agent(manager.session_id, "pipeline")
        assert state is not None
        return state

    with HTTPSessionManager(session_id, client_server_url) as manager:
        state = first_run(manager)
    file_state = first_run(FileSessionManager(session_id, storage_dir=str(tmp_path)))
    for key in (
        "type",
        "id",
        "status",
        "completed_nodes",
        "failed_nodes",
        "next_nodes_to_execute",
        "execution_order",
    ):
        assert state[key] == file_state[key], key
    assert state["completed_nodes"] == ["a"]
    assert state["next_nodes_to_execute"] == ["b"]

    resumed = restore_in_new_process(
        {
            "kind": "graph",
            "base_url": client_server_url,
            "session_id": session_id,
        }
    )

    # Only b runs again: a's result came back from the service.
    assert resumed == {"a_calls": 0, "b_calls": 1, "order": ["a", "b"]}


def test_swarm_interrupted_then_resumed_in_a_new_process(
    client_server_url: str, session_id: str
) -> None:
    with HTTPSessionManager(session_id, client_server_url) as manager:
        swarm = build_swarm(
            manager,
            [
                tool_call("handoff_to_agent", {"agent_name": "y", "message": "yours"}, "h1"),
                text("x done"),
            ],
            [tool_call("approve", {"action": "ship"}, "p1")],
        )
        result = swarm("ship it")
        assert result.status.value == "interrupted"
        state = manager.repository.read_multi_agent(session_id, "team")
    assert state is not None
    assert state == swarm.serialize_state() | {"execution_time": state["execution_time"]}
    assert state["next_nodes_to_execute"] == ["y"]

    resumed = restore_in_new_process(
        {
            "kind": "swarm",
            "base_url": client_server_url,
            "session_id": session_id,
        }
    )

    assert resumed == {
        "restored_status": "interrupted",
        "status": "completed",
        "history": ["x", "y"],
        "x_calls": 0,
        "y_calls": 1,
    }
    with HTTPSessionRepository(client_server_url) as repo:
        final = repo.read_multi_agent(session_id, "team")
    assert final is not None and final["status"] == "completed"
