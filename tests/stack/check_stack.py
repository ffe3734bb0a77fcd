"""`make container-test`: the image and the compose stack, built and run for real.

Runs as root with rootful podman from Debian (no Docker engine, no registry here). Everything
this host needs beyond what a Docker host has is set up here and nowhere in the product files:
- packages from Debian (podman, runc, docker-compose 1.29, debootstrap), installed when missing;
- stand-ins for the registry images python:3.11-slim-bookworm and postgres:16 (bases.sh),
  cached in /var/cache/strands-session-backend and podman's store between runs;
- containers.conf: `runc`, since crun rejects this host's hybrid cgroups; explicit ulimits,
  since the VM lacks CAP_SYS_RESOURCE to raise them; cgroupfs and file events, as there is
  no systemd;
- `podman build --format docker`: the OCI format drops HEALTHCHECK;
- docker-compose 1.29 against `podman system service`, healthchecks run by polling
  (compose.sh, the COMPOSE that `make up` / `make down` are given).

The checks follow an operator: build; the image runs as a non-root user without pip or the
client's dependencies and declares a HEALTHCHECK; `make up` migrates and serves CRUD on the
published port, the HEALTHCHECK passes; SIGTERM stops the api within seconds with exit 0;
`make down` keeps the data volume; a second `make up` applies no migration and finds the data.
Everything started is removed at the end; the bases and the built image stay as the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROJECT = "sbcontainertest"
IMAGE = "localhost/strands-session-backend:container-test"
PACKAGES = ["podman", "runc", "docker-compose", "debootstrap", "eatmydata", "uidmap", "catatonit"]
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
S = "/api/v1/sessions"


@dataclass
class Host:
    env: dict[str, str]
    work: Path
    port: int
    timings: dict[str, float] = field(default_factory=dict)
    postgres_base: subprocess.Popen[str] | None = None

    def wait_for_postgres_base(self) -> None:
        if self.postgres_base is not None:
            started = time.monotonic()
            output, _ = self.postgres_base.communicate(timeout=1200)
            assert self.postgres_base.returncode == 0, output
            self.timings["waiting for the postgres base"] = time.monotonic() - started
            self.postgres_base = None

    def run(self, *cmd: str, check: bool = True, timeout: float = 600) -> str:
        result = subprocess.run(
            cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout[-4000:]}\n"
                f"{result.stderr[-4000:]}"
            )
        return result.stdout

    def make(self, target: str) -> str:
        return self.run("make", target, f"COMPOSE={HERE / 'compose.sh'}", f"IMAGE={IMAGE}")

    def container(self, service: str) -> str:
        ids = self.run(
            "podman", "ps", "-a", "--quiet",
            "--filter", f"label=com.docker.compose.project={PROJECT}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).split()  # fmt: skip
        assert len(ids) == 1, f"{service}: {ids}"
        return ids[0]

    def psql(self, sql: str) -> str:
        return self.run(
            "podman", "exec", self.container("postgres"),
            "psql", "-U", "strands", "-d", "strands", "-tAc", sql,
        ).strip()  # fmt: skip


def _install_packages() -> None:
    programs = ("podman", "runc", "docker-compose", "debootstrap", "eatmydata")
    if not all(shutil.which(p) for p in programs):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", *PACKAGES],
            check=True,
            env=env,
        )


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    if os.geteuid() != 0:
        pytest.fail("make container-test runs rootful podman: run it as root")
    started = time.monotonic()
    _install_packages()
    work = tmp_path_factory.mktemp("stack")
    (work / "containers.conf").write_text(CONTAINERS_CONF)
    # Compose v2 reads the top-level `name:`; 1.29 rejects it (the project is named by -p).
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    compose.pop("name", None)
    (work / "compose.yaml").write_text(yaml.safe_dump(compose, sort_keys=False))
    socket = work / "podman.sock"
    port = free_port()
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(work / "containers.conf"),
        "DOCKER_HOST": f"unix://{socket}",
        "STACK_COMPOSE_FILE": str(work / "compose.yaml"),
        "STACK_PROJECT": PROJECT,
        "API_IMAGE": IMAGE,
        "API_BIND": "127.0.0.1",
        "API_PORT": str(port),
        "POSTGRES_USER": "strands",
        "POSTGRES_PASSWORD": "container-test",
        "POSTGRES_DB": "strands",
        "COMPOSE_PROFILES": "",
        # Whatever a developer's .env says, this stack is open and in development mode.
        "API_KEYS": "",
        "ENVIRONMENT": "development",
    }
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "podman-service.log", "wb"),
    )
    h = Host(env, work, port)
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert time.monotonic() < deadline, "podman system service did not start"
            time.sleep(0.1)
        h.run("bash", str(HERE / "bases.sh"), "python", timeout=1200)
        h.timings["setup (packages, python base)"] = time.monotonic() - started
        # The postgres base is needed only by `make up`: it builds while the image does.
        h.postgres_base = subprocess.Popen(
            ["bash", str(HERE / "bases.sh"), "postgres"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        yield h
    finally:
        if h.postgres_base is not None and h.postgres_base.poll() is None:
            h.postgres_base.wait(1200)
        subprocess.run(
            ["bash", str(HERE / "compose.sh"), "down", "--volumes", "--timeout", "5"],
            cwd=ROOT, env=env, capture_output=True, timeout=120,
        )  # fmt: skip
        service.terminate()
        service.wait(30)
        total = time.monotonic() - started
        print("\n" + "\n".join(f"{k}: {v:.1f}s" for k, v in {**h.timings, "total": total}.items()))


@pytest.fixture(scope="module")
def image(host: Host) -> str:
    started = time.monotonic()
    host.run("podman", "build", "--format", "docker", "--pull=never", "-t", IMAGE, ".", timeout=900)
    host.timings["image build"] = time.monotonic() - started
    size = int(host.run("podman", "image", "inspect", "--format", "{{.Size}}", IMAGE))
    print(f"\nimage {IMAGE}: {size / 1e6:.0f} MB")
    return IMAGE


def test_no_syntax_line_so_no_frontend_image_is_fetched() -> None:
    assert "# syntax" not in (ROOT / "Dockerfile").read_text()


def test_image_runs_as_non_root_without_pip_or_client_dependencies(host: Host, image: str) -> None:
    user = host.run("podman", "image", "inspect", "--format", "{{.Config.User}}", image)
    assert user.strip() == "10001:10001"
    assert host.run("podman", "run", "--rm", image, "id", "-u").strip() == "10001"
    for module in ("pip", "setuptools", "strands", "botocore"):
        result = subprocess.run(
            ["podman", "run", "--rm", image, "python", "-c", f"import {module}"],
            env=host.env, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, module
    # Everything the server imports is there (the session browser's Jinja2 included).
    host.run(
        "podman", "run", "--rm", image, "python", "-c",
        "import service.app, service.__main__; service.app.create_app(dsn='postgresql://h/db')",
    )  # fmt: skip


def test_image_declares_the_healthcheck(host: Host, image: str) -> None:
    test = host.run("podman", "image", "inspect", "--format", "{{json .Config.Healthcheck}}", image)
    assert "/health/ready" in test, test


def test_make_up_migrates_serves_crud_and_passes_its_healthcheck(host: Host, image: str) -> None:
    host.wait_for_postgres_base()
    started = time.monotonic()
    host.make("up")
    host.timings["make up"] = time.monotonic() - started
    migrate = host.container("migrate")
    assert host.run("podman", "inspect", "--format", "{{.State.ExitCode}}", migrate).strip() == "0"
    assert int(host.psql("SELECT count(*) FROM _yoyo_migration")) > 0
    api = host.container("api")
    host.run("podman", "healthcheck", "run", api)  # the image's check, run in the container
    assert host.run("podman", "inspect", "--format", "{{.State.Health.Status}}", api).strip() == (
        "healthy"
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{host.port}", timeout=10) as http:
        assert http.get("/health/ready").status_code == 200
        assert http.post(S, json={"session_id": "kept"}).status_code == 201
        agent = {"agent_id": "a", "state": {"n": 1}, "conversation_manager_state": {}}
        assert http.post(f"{S}/kept/agents", json=agent).status_code == 201
        message = {"message_id": 0, "message": {"role": "user", "content": [{"text": "hi"}]}}
        assert http.post(f"{S}/kept/agents/a/messages", json=message).status_code == 201
        assert http.put(f"{S}/kept/agents/a", json={**agent, "state": {"n": 2}}).status_code == 200
        got = http.get(f"{S}/kept/agents/a").json()
        assert got["state"] == {"n": 2} and got["message_count"] == 1
        listed = http.get(f"{S}/kept/agents/a/messages").json()["items"]
        assert [m["message"]["content"] for m in listed] == [[{"text": "hi"}]]
        assert http.post(S, json={"session_id": "gone"}).status_code == 201
        assert http.delete(f"{S}/gone").status_code == 204
        assert http.get(f"{S}/gone").status_code == 404


def test_the_image_healthcheck_passes_in_a_container_of_its_own(host: Host, image: str) -> None:
    """compose.yaml's healthcheck replaces the image's: run the image alone to try its own,
    as deploy/k8s runs it (read-only root file system, /tmp writable, no capabilities)."""
    dsn = "postgresql://strands:container-test@postgres:5432/strands"
    cid = host.run(
        "podman", "run", "--detach", "--network", f"{PROJECT}_default",
        "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--env", f"DATABASE_URL={dsn}", "--env", "MIGRATE_ON_START=false", image,
    ).strip()  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        check = ["podman", "healthcheck", "run", cid]
        while subprocess.run(check, env=host.env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, host.run("podman", "logs", cid)
            time.sleep(1)
    finally:
        host.run("podman", "rm", "--force", "--time", "0", cid, check=False)


def test_sigterm_stops_the_api_within_seconds_with_exit_0(host: Host) -> None:
    api = host.container("api")
    started = time.monotonic()
    # What `docker stop` does: SIGTERM, then SIGKILL (exit 137) after the timeout. A stop, not a
    # kill, so the restart policy leaves the container stopped.
    host.run("podman", "stop", "--time", "15", api, timeout=60)
    elapsed = time.monotonic() - started
    host.timings["api stop on SIGTERM"] = elapsed
    assert host.run("podman", "inspect", "--format", "{{.State.ExitCode}}", api).strip() == "0"
    assert elapsed < 5, f"took {elapsed:.1f}s"


def test_make_down_keeps_the_volume_and_a_second_up_migrates_nothing(host: Host) -> None:
    applied = host.psql("SELECT count(*) FROM _yoyo_log")
    host.make("down")
    assert not host.run(
        "podman", "ps", "-a", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}"
    ).strip()
    host.run("podman", "volume", "exists", f"{PROJECT}_postgres-data")
    started = time.monotonic()
    host.make("up")
    host.timings["second make up"] = time.monotonic() - started
    assert host.psql("SELECT count(*) FROM _yoyo_log") == applied, "a migration was applied again"
    logs = host.run("podman", "logs", host.container("migrate"))
    assert "applied 0 migration" in logs or "applied" not in logs, logs
    with httpx.Client(base_url=f"http://127.0.0.1:{host.port}", timeout=10) as http:
        assert http.get(f"{S}/kept/agents/a").json()["state"] == {"n": 2}
