"""Two processes running turns on one session, with and without ``exclusive=True``.

Usage: python tests/client/measure_exclusive.py --url http://127.0.0.1:8000 [--turns 20]

For each mode it starts two exclusive_worker.py processes on a fresh session, lets them run
their turns at once (the model takes --delay seconds per call), and prints what was stored: how
many messages of the 4 x turns acknowledged, whether the ids are dense, how many turns are whole
and were answered by a model that saw every message before them. Then it prints the median time
a turn spends acquiring and releasing the lease, measured in one process alone (uncontended).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent


def run(url: str, names: list[str], turns: int, exclusive: bool, delay: float) -> dict[str, Any]:
    session_id = f"measure-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        go = os.path.join(tmp, "go")
        procs = []
        for name in names:
            spec = {
                "base_url": url,
                "session_id": session_id,
                "name": name,
                "turns": turns,
                "exclusive": exclusive,
                "delay": delay,
                "go": go,
                "lease_wait": 600,
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(HERE / "exclusive_worker.py"), json.dumps(spec)],
                    cwd=HERE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        Path(go).touch()
        results = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    items = httpx.get(
        f"{url}/api/v1/sessions/{session_id}/agents/shared/messages", params={"limit": 1000}
    ).json()["items"]
    history = [
        (m["message_id"], m["message"]["role"], m["message"]["content"][0]["text"]) for m in items
    ]
    whole = 0
    for position in range(0, len(history) - 1, 2):
        (_, role, prompt), (_, answer_role, answer) = history[position : position + 2]
        if (role, answer_role) == (
            "user",
            "assistant",
        ) and answer == f"{prompt} saw {position + 1}":
            whole += 1
    outcomes = [t["outcome"] for r in results for t in r["turns"]]
    return {
        "acknowledged_messages": 2 * outcomes.count("ok"),
        "errors": len(outcomes) - outcomes.count("ok"),
        "stored_messages": len(history),
        "ids_dense": [m[0] for m in history] == list(range(len(history))),
        "whole_turns_seeing_all_before": whole,
        "prompts_stored": len({p for _, role, p in history if role == "user"}),
        "lease_seconds": [s for r in results for s in r["lease_seconds"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    for exclusive in (False, True):
        result = run(args.url, ["A", "B"], args.turns, exclusive, args.delay)
        result.pop("lease_seconds")
        print(f"2 processes x {args.turns} turns, exclusive={exclusive}: {json.dumps(result)}")
    alone = run(args.url, ["A"], args.turns, True, args.delay)["lease_seconds"]
    print(
        f"acquire + release per turn, one process, {len(alone)} turns: "
        f"median {statistics.median(alone) * 1000:.2f} ms, max {max(alone) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
