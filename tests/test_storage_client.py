"""`strands_session_client.HTTPStorage` against a real `python -m service`: the Strands `Storage`
protocol as the SDK defines it, and the SDK's own `SnapshotSessionManager` (agents and a Graph,
on scripted models) keeping everything in the backend."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from strands.session import SnapshotSessionManager
from strands.storage import InMemoryStorage, Storage
from strands.types.exceptions import StorageError
from strands_session_client import HTTPStorage

from tests.client.client_support import ScriptedModel, build_agent, build_graph, snapshot, text
from tests.client.client_support import tool_call as call
from tests.support import ServiceProcess, free_port


@pytest.fixture
def backend(service_process, database_url) -> Iterator[ServiceProcess]:
    yield service_process({"DATABASE_URL": database_url, "STORAGE_MAX_OBJECT_BYTES": "100000"})


def test_the_protocol_behaves_as_the_sdks_own_storage(backend):
    http, memory = HTTPStorage(backend.url), InMemoryStorage()
    assert isinstance(http, Storage)

    async def both(method: str, *args: object) -> object:
        mine = await getattr(http, method)(*args)
        theirs = await getattr(memory, method)(*args)
        assert mine == theirs, (method, args, mine, theirs)
        return mine

    async def scenario() -> None:
        for key, data in [
            ("a/b.json", b"\x00\xff{}"),
            ("//a//c/", b"c"),
            ("a/./d", b"dark mode"),
            ("b", b""),
            ("a/\U0001f600", b"x"),
            ("ab/z", b"notes on dark"),
        ]:
            await both("write", key, data)
        for key in ("a/b.json", "a/c", "a/./d", "b", "missing"):
            await both("read", key)
        for prefix in ("", "a", "a/", "/a//", "ab", "zzz"):
            await both("list", prefix)
        await both("delete", "b")
        await both("delete", "never")
        await both("list", "")
        found = [(r.key, r.score, r.data) for r in await http.search("dark notes")]
        theirs = [(r.key, r.score, r.data) for r in await memory.search("dark notes")]
        assert found == theirs and found[0] == ("ab/z", 2, b"notes on dark")
        scoped, scoped_memory = http.namespace("a"), memory.namespace("a")
        assert await scoped.list("") == await scoped_memory.list("")
        assert await scoped.read("c") == b"c"
        for bad in ("", "/", "a/../b", "a\\b"):
            with pytest.raises(StorageError):
                await http.write(bad, b"")
        with pytest.raises(StorageError, match="413"):
            await http.write("big", b"x" * 100_001)

    asyncio.run(scenario())
    http.close()


def test_an_unreachable_backend_raises_storage_error():
    storage = HTTPStorage(f"http://127.0.0.1:{free_port()}", retries=2, timeout=1)
    with pytest.raises(StorageError):
        asyncio.run(storage.read("k"))


def test_snapshot_session_manager_keeps_agents_and_graphs_in_the_backend(backend):
    storage = HTTPStorage(backend.url)
    manager = SnapshotSessionManager("snap-1", storage=storage, snapshot_trigger=lambda **_: True)
    agent = build_agent(
        manager, scripts=[text("Hi!"), call("add", {"a": 2, "b": 3}, "t1"), text("5")]
    )
    agent("Hello")
    first_turn = snapshot(agent)["messages"]
    agent("Add 2 and 3")
    assert len(agent.messages) == 6

    restored = build_agent(SnapshotSessionManager("snap-1", storage=HTTPStorage(backend.url)))
    assert snapshot(restored) == snapshot(agent)

    keys = asyncio.run(storage.list("session/snap-1/"))
    assert "session/snap-1/scopes/agent/assistant/snapshots/snapshot_latest.json" in keys
    ids = asyncio.run(manager.list_snapshot_ids(agent))
    assert len(ids) == 2 and ids == sorted(ids)
    assert asyncio.run(manager.restore_snapshot(agent, snapshot_id=ids[0]))
    assert snapshot(agent)["messages"] == first_turn

    graph_manager = SnapshotSessionManager("snap-graph", storage=storage)
    graph = build_graph(
        graph_manager, ScriptedModel([text("a done")]), ScriptedModel([text("b done")])
    )
    graph("go")
    keys = asyncio.run(storage.list("session/snap-graph/"))
    assert keys == ["session/snap-graph/scopes/multiAgent/pipeline/snapshots/snapshot_latest.json"]

    asyncio.run(manager.delete_session())
    assert asyncio.run(storage.list("session/snap-1/")) == []
    assert asyncio.run(storage.list("session/snap-graph/")) == keys
