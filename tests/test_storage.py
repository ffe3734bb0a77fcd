"""/api/v1/storage (the Strands `Storage` protocol) over HTTP, its EXPLAIN guard, and the
client `HTTPStorage` under the real SDK: `SnapshotSessionManager` on a scripted model against a
real `python -m service`."""

from __future__ import annotations

import asyncpg
import pytest

from service.app import create_app
from service.queries import Q
from service.store.objects import successor
from tests.conftest import app_client, make_settings

OBJ = "/api/v1/storage/objects"
OCTETS = {"content-type": "application/octet-stream"}
EVERY_BYTE = bytes(range(256)) * 3


async def test_write_read_replace_delete(client):
    r = await client.put(f"{OBJ}/a/b.bin", content=EVERY_BYTE, headers=OCTETS)
    assert r.status_code == 204 and r.content == b""
    r = await client.get(f"{OBJ}/a/b.bin")
    assert r.status_code == 200 and r.content == EVERY_BYTE
    assert r.headers["content-type"] == "application/octet-stream"
    assert (await client.put(f"{OBJ}/a/b.bin", content=b"", headers=OCTETS)).status_code == 204
    assert (await client.get(f"{OBJ}/a/b.bin")).content == b""
    for _ in range(2):
        assert (await client.delete(f"{OBJ}/a/b.bin")).status_code == 204
    r = await client.get(f"{OBJ}/a/b.bin")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_keys_normalise_as_the_sdk_does(client):
    await client.put(f"{OBJ}//x//y/", content=b"1", headers=OCTETS)
    assert (await client.get(f"{OBJ}/x/y")).content == b"1"
    await client.put(f"{OBJ}/x/%2E/y%2Fz%20w", content=b"2", headers=OCTETS)  # '.' kept
    assert (await client.get(f"{OBJ}/x/%2E/y/z%20w")).content == b"2"
    listed = (await client.get(OBJ, params={"prefix": "x/"})).json()["items"]
    assert listed == ["x/./y/z w", "x/y"]
    for bad in ("a/%2E%2E/b", "a%5Cb", "%2F%2F", "a%00b", "k" * 1025):
        r = await client.put(f"{OBJ}/{bad}", content=b"", headers=OCTETS)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] in ("invalid_id", "invalid_request")
    r = await client.get(OBJ, params={"prefix": "a/../b"})
    assert r.status_code == 422


async def test_media_type_and_size_limit(database_url):
    app = create_app(make_settings(storage_max_object_bytes=10), dsn=database_url)
    async with app_client(app) as http:
        r = await http.put(f"{OBJ}/k", content=b"0123456789", headers=OCTETS)
        assert r.status_code == 204
        r = await http.put(f"{OBJ}/k", content=b"0123456789A", headers=OCTETS)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        r = await http.put(f"{OBJ}/k", json={"a": 1})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
        assert (await http.get(f"{OBJ}/k")).content == b"0123456789"


async def test_list_pages_by_prefix_in_code_point_order(client):
    keys = ["p/a", "p/b/1", "p/b/2", "p/Z", "p/é", "p/\U0001f600", "p/b\uffff", "q/a", "pa"]
    for key in keys:
        await client.put(f"{OBJ}/{key}", content=b"", headers=OCTETS)
    want = sorted(k for k in keys if k.startswith("p/"))
    got, cursor = [], None
    while True:
        params = {"prefix": "p/", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(OBJ, params=params)).json()
        assert len(page["items"]) <= 2
        got += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert got == want
    assert (await client.get(OBJ, params={"prefix": "p/b"})).json()["items"] == [
        "p/b/1",
        "p/b/2",
        "p/b\uffff",
    ]
    everything = (await client.get(OBJ, params={"limit": 1000})).json()
    assert everything["items"] == sorted(keys) and everything["next_cursor"] is None
    r = await client.get(OBJ, params={"prefix": "q/", "cursor": cursor or "forged"})
    assert r.status_code == 422


async def test_search_scores_words_in_keys_and_contents(client):
    await client.put(f"{OBJ}/mem/notes/dark-mode.md", content=b"toggle in settings", headers=OCTETS)
    await client.put(f"{OBJ}/mem/notes/theme.md", content=b"The dark theme", headers=OCTETS)
    await client.put(f"{OBJ}/other/dark.md", content=b"dark mode toggle", headers=OCTETS)
    r = await client.get(
        "/api/v1/storage/search", params={"q": "the dark mode toggle", "prefix": "mem/"}
    )
    assert r.json()["items"] == [
        {"key": "mem/notes/dark-mode.md", "score": 3.0},
        {"key": "mem/notes/theme.md", "score": 1.0},
    ]
    r = await client.get("/api/v1/storage/search", params={"q": "toggle", "include_data": True})
    assert [i["key"] for i in r.json()["items"]] == ["mem/notes/dark-mode.md", "other/dark.md"]
    assert r.json()["items"][1]["data"] == "ZGFyayBtb2RlIHRvZ2dsZQ=="
    assert (await client.get("/api/v1/storage/search", params={"q": "the"})).json()["items"] == []


async def test_storage_needs_the_api_key(database_url):
    app = create_app(make_settings(api_keys="k1"), dsn=database_url)
    async with app_client(app) as http:
        assert (await http.get(f"{OBJ}/x")).status_code == 401
        r = await http.get(f"{OBJ}/x", headers={"Authorization": "Bearer k1"})
        assert r.status_code == 404


def test_successor_bounds_every_key_with_the_prefix():
    assert successor("a/") == "a0" and successor("") is None
    assert successor("a\U0010ffff") == "b" and successor("\U0010ffff") is None
    assert successor("\ud7ff") == "\ue000"


@pytest.mark.parametrize("prefix,rows", [("session/s1/", 40), ("session/", 20000)])
async def test_prefix_listing_is_a_range_scan_of_the_primary_key(database_url, prefix, rows):
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO storage_objects (key, data) SELECT 'session/s' || (g % 500) ||"
            " '/scopes/agent/a/snapshots/' || g, '\\x00' FROM generate_series(1, 20000) g"
        )
        await conn.execute("INSERT INTO storage_objects (key, data) VALUES ('zzz', '')")
        await conn.execute("ANALYZE storage_objects")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN " + Q["list_objects"], prefix, "", successor(prefix), 101
            )
        )
        assert "storage_objects_pkey" in plan and "Seq Scan" not in plan, plan
        cond = next(line for line in plan.splitlines() if "Index Cond" in line)
        assert f">= '{prefix}'" in cond and f"< '{successor(prefix)}'" in cond, plan
        if rows > 101:  # a long range is read in order, only as far as the page needs
            assert "Sort" not in plan, plan
        listed = await conn.fetch(Q["list_objects"], prefix, "", successor(prefix), 100_000)
        assert len(listed) == rows
    finally:
        await conn.close()


def test_search_ignores_the_same_stop_words_and_splits_words_as_the_sdk() -> None:
    # The server keeps its own copy so that it serves without the SDK installed.
    from strands.storage.search.keyword import STOP_WORDS, tokenize

    from service import objects, stopwords

    assert stopwords.STOP_WORDS == STOP_WORDS
    for text in ("Dark-mode toggle_2 ÉTÉ 東京 a.b/c", "", "  --  ", "x\u00a0y\tz"):
        assert objects.tokenize(text) == tokenize(text)
