"""Restore (and optionally continue) a session in a fresh process; print what came back as JSON.

Usage: python client_restore.py '<json spec>'; see the `kind`s below. Run by the client tests.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from client_support import (
    FailingModel,
    ScriptedModel,
    build_agent,
    build_graph,
    build_swarm,
    snapshot,
    text,
)
from strands_session_client import HTTPSessionManager


def main(spec: dict[str, Any]) -> dict[str, Any]:
    manager = HTTPSessionManager(spec["session_id"], spec["base_url"])
    with manager:
        if spec["kind"] == "agents":
            agents = {
                agent_id: build_agent(manager, agent_id, window=spec.get("window"))
                for agent_id in spec["agent_ids"]
            }
            return {agent_id: snapshot(agent) for agent_id, agent in agents.items()}
        if spec["kind"] == "resume_agent":
            agent = build_agent(manager, spec["agent_id"], scripts=[text("approved and done")])
            restored = snapshot(agent)
            responses = [
                {"interruptResponse": {"interruptId": interrupt_id, "response": "yes"}}
                for interrupt_id in restored["interrupt_state"]["interrupts"]
            ]
            result = agent(responses)
            return {
                "restored": restored,
                "stop_reason": result.stop_reason,
                "after": snapshot(agent),
            }
        if spec["kind"] == "graph":
            a_model, b_model = FailingModel(), ScriptedModel([text("B did it")])
            result = build_graph(manager, a_model, b_model)("task")
            return {
                "a_calls": a_model.calls,
                "b_calls": b_model.calls,
                "order": [node.node_id for node in result.execution_order],
            }
        if spec["kind"] == "swarm":
            swarm = build_swarm(manager, [], [text("shipped")])
            interrupts = list(swarm._interrupt_state.interrupts)
            result = swarm(
                [
                    {"interruptResponse": {"interruptId": interrupt_id, "response": "approved"}}
                    for interrupt_id in interrupts
                ]
            )
            return {
                "restored_status": "interrupted" if interrupts else "fresh",
                "status": result.status.value,
                "history": [node.node_id for node in result.node_history],
                "x_calls": swarm.nodes["x"].executor.model.calls,
                "y_calls": swarm.nodes["y"].executor.model.calls,
            }
    raise SystemExit(f"unknown kind {spec['kind']!r}")


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
