"""The README's curl walk-through, run for real: every step succeeds, and the session it leaves
(before its final DELETE) opens in a Strands agent."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest
from strands import Agent
from strands_session_client import HTTPSessionManager

from tests.support import ROOT


def walkthrough() -> list[str]:
    """The shell commands of the README's walk-through, continuation lines joined."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A walk through with curl", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return block.group(1).replace("\\\n", " ").strip().splitlines()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_walkthrough_leaves_a_session_strands_can_open(service_process, database_url):
    proc = service_process({"DATABASE_URL": database_url})
    commands = walkthrough()
    assert commands[0].startswith("B=http://127.0.0.1:8000/api/v1")
    assert "DELETE" in commands[-1]
    script = "\n".join([f"B={proc.url}/api/v1", *commands[1:-1]])
    ran = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr

    with httpx.Client(base_url=f"{proc.url}/api/v1") as http:
        listed = http.get("/sessions").json()["items"]
        assert [s["session_id"] for s in listed] == ["demo"]
        agent_row = http.get("/sessions/demo/agents/default").json()
        assert agent_row["state"] == {"k": "v"}  # the If-Match PUT applied (no 412)

    manager = HTTPSessionManager(session_id="demo", base_url=proc.url)
    agent = Agent(agent_id="default", session_manager=manager, callback_handler=None)
    assert [m["content"][0]["text"] for m in agent.messages] == ["Hello", "Hi!"]
    assert agent.state.get("k") == "v"

    deleted = subprocess.run(
        ["bash", "-c", f"B={proc.url}/api/v1\n{commands[-1]}"], capture_output=True, text=True
    )
    assert deleted.stdout.strip() == "204"
