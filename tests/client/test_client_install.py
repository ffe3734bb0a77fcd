"""`pip install ./client` in a fresh virtual environment: the client installs alone, pulls in
none of the server's dependencies, and works from there (an import and a real call)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

# The server's own dependencies: none may come with the client. (strands-agents brings uvicorn
# through `mcp` on its own; that one is not the client's to remove.)
SERVER_ONLY = {
    "fastapi",
    "asyncpg",
    "psycopg",
    "psycopg-binary",
    "yoyo-migrations",
    "prometheus-client",
}


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, cwd=cwd
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_client_installs_alone_without_the_servers_dependencies(
    tmp_path: Path, client_server_url: str
) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    # A copy, so that the build leaves nothing in the checkout.
    source = tmp_path / "client"
    _run("cp", "-r", ROOT / "client", source)
    _run(python, "-m", "pip", "install", "--quiet", source)

    installed = {
        item["name"].lower().replace("_", "-")
        for item in json.loads(_run(python, "-m", "pip", "list", "--format", "json"))
    }
    assert "strands-session-client" in installed
    assert "strands-agents" in installed
    assert not installed & SERVER_ONLY, installed & SERVER_ONLY
    assert "strands-session-backend" not in installed

    # Run from a folder outside the checkout, so nothing of it is importable by accident.
    probe = (
        "import sys, strands_session_client as c\n"
        "from strands_session_client import HTTPSessionManager, HTTPStorage\n"
        "assert 'service' not in sys.modules\n"
        f"with HTTPSessionManager('install-probe', {client_server_url!r}) as m:\n"
        "    print(m.repository.read_session('install-probe').session_id)\n"
    )
    assert _run(python, "-c", probe, cwd=tmp_path).strip() == "install-probe"
