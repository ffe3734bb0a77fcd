"""Test support for the client suite: a scripted Strands model, tools, and JSON helpers.

Also imported by `client_restore.py`, which runs in a separate process.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from strands import tool
from strands.models import Model
from strands.types.session import encode_bytes_values
from strands.types.tools import ToolContext

Events = list[dict[str, Any]]


def text(reply: str, *, redact_user: str | None = None) -> Events:
    """Events of an assistant turn answering `reply`, optionally redacting the user's message."""
    events: Events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": reply}}},
        {"contentBlockStop": {}},
    ]
    stop = "end_turn"
    if redact_user is not None:
        events.append({"redactContent": {"redactUserContentMessage": redact_user}})
        stop = "guardrail_intervened"
    events.append({"messageStop": {"stopReason": stop}})
    events.append(
        {
            "metadata": {
                "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
                "metrics": {"latencyMs": 1},
            }
        }
    )
    return events


def tool_call(name: str, tool_input: dict[str, Any], tool_use_id: str) -> Events:
    """Events of an assistant turn asking for one tool call."""
    return [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": tool_use_id}}}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(tool_input)}}}},
        {"contentBlockStop": {}},
        {"messageStop": {"stopReason": "tool_use"}},
    ]


class ScriptedModel(Model):
    """A Strands model that streams canned events, one script per call; no network."""

    def __init__(self, scripts: Iterable[Events] = ()) -> None:
        self.scripts = list(scripts)
        self.calls = 0
        self.config: dict[str, Any] = {}

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        return self.config

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def stream(self, messages: Any, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        if not self.scripts:
            raise AssertionError(f"ScriptedModel ran out of scripts after {self.calls} calls")
        self.calls += 1
        for event in self.scripts.pop(0):
            yield event


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


@tool(context=True)
def approve(action: str, tool_context: ToolContext) -> str:
    """Ask a human to approve an action.

    Args:
        action: What to approve.
    """
    answer = tool_context.interrupt("approval", reason={"action": action})
    return f"{action}: {answer}"


def snapshot(agent: Any) -> dict[str, Any]:
    """What a restore must bring back, as plain JSON (bytes encoded the Strands way)."""
    return json.loads(
        json.dumps(
            encode_bytes_values(
                {
                    "messages": agent.messages,
                    "state": agent.state.get(),
                    "conversation_manager_state": agent.conversation_manager.get_state(),
                    "interrupt_state": agent._interrupt_state.to_dict(),
                    "model_state": agent._model_state,
                }
            )
        )
    )


def build_agent(
    session_manager: Any,
    agent_id: str = "assistant",
    scripts: Iterable[Events] = (),
    window: int | None = None,
) -> Any:
    """An agent on the scripted model with the `add` and `approve` tools."""
    from strands import Agent
    from strands.agent.conversation_manager import SlidingWindowConversationManager

    return Agent(
        model=ScriptedModel(scripts),
        agent_id=agent_id,
        tools=[add, approve],
        session_manager=session_manager,
        conversation_manager=SlidingWindowConversationManager(window_size=window or 40),
        callback_handler=None,
    )


class FailingModel(ScriptedModel):
    """A model whose every call fails, to leave a Graph half done."""

    async def stream(self, messages: Any, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        self.calls += 1
        raise RuntimeError("node b failed")
        yield  # pragma: no cover


def build_graph(session_manager: Any, a_model: Model, b_model: Model) -> Any:
    """A two-node Graph a -> b persisted through `session_manager`."""
    from strands import Agent
    from strands.multiagent import GraphBuilder

    builder = GraphBuilder()
    builder.add_node(Agent(model=a_model, name="a", callback_handler=None), "a")
    builder.add_node(Agent(model=b_model, name="b", callback_handler=None), "b")
    builder.add_edge("a", "b")
    builder.set_entry_point("a")
    builder.set_session_manager(session_manager)
    builder.set_graph_id("pipeline")
    builder.set_max_node_executions(10)
    return builder.build()


def build_swarm(
    session_manager: Any, x_scripts: Iterable[Events], y_scripts: Iterable[Events]
) -> Any:
    """A Swarm x -> y (y asks for approval) persisted through `session_manager`."""
    from strands import Agent
    from strands.multiagent import Swarm

    x = Agent(model=ScriptedModel(x_scripts), name="x", callback_handler=None)
    y = Agent(model=ScriptedModel(y_scripts), name="y", tools=[approve], callback_handler=None)
    return Swarm([x, y], session_manager=session_manager, id="team")


def free_port() -> int:
    """A TCP port nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
