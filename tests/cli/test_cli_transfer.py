"""`strands-cli session export ID > file` and `session import FILE [--replace]` against a real
backend."""

from __future__ import annotations

import json
import re

import httpx


def unversioned(ndjson: bytes) -> bytes:
    """The export's bytes with its version numbers blanked, everything else exact."""
    return re.sub(rb'"version":\d+', b'"version":_', ndjson)


def test_export_then_import_round_trips_and_reports_failures(
    invoke, service_process, database_url, tmp_path
) -> None:
    proc = service_process({"DATABASE_URL": database_url, "API_KEYS": "k1"})
    auth = {"Authorization": "Bearer k1"}
    with httpx.Client(base_url=proc.url + "/api/v1/sessions", headers=auth) as http:
        assert (
            http.post(proc.url + "/api/v1/sessions", json={"session_id": "cli s"}).status_code
            == 201
        )
        http.post(
            "/cli%20s/agents",
            json={"agent_id": "a", "state": {"n": 2**70}, "conversation_manager_state": {}},
        )
        http.post(
            "/cli%20s/agents/a/messages",
            json={"message_id": 0, "message": {"role": "user", "content": [{"text": "\0"}]}},
        )

        exported = invoke("session", "export", "cli s", "--url", proc.url, "--api-key", "k1")
        assert exported.exit_code == 0, exported.output
        lines = [json.loads(line) for line in exported.stdout_bytes.splitlines()]
        assert [r["type"] for r in lines] == ["session", "agent", "message", "end"]
        file = tmp_path / "cli.ndjson"
        file.write_bytes(exported.stdout_bytes)

        taken = invoke("session", "import", str(file), "--url", proc.url, "--api-key", "k1")
        assert taken.exit_code == 1
        assert "409" in taken.output and "--replace" in taken.output

        http.delete("/cli%20s/agents/a")
        replaced = invoke(
            "session", "import", str(file), "--replace", "--url", proc.url, "--api-key", "k1"
        )
        assert replaced.exit_code == 0, replaced.output
        assert "Imported session cli s" in replaced.output
        # The same data; versions are new ones (a path never reuses a version).
        again = http.get("/cli%20s/export").content
        assert unversioned(again) == unversioned(exported.stdout_bytes)

    missing = invoke("session", "export", "nope", "--url", proc.url, "--api-key", "k1")
    assert missing.exit_code == 1 and "404" in missing.output and missing.stdout_bytes == b""
    unauthorized = invoke("session", "export", "cli s", "--url", proc.url)
    assert unauthorized.exit_code == 1 and "--api-key" in unauthorized.output
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"type": "session", "session_id": "x"}\n{"type": "agent"}\n')
    refused = invoke("session", "import", str(bad), "--url", proc.url, "--api-key", "k1")
    assert refused.exit_code == 1 and "line 2" in refused.output
