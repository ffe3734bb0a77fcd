"""GET /metrics: route templates as labels, moving counters, pool gauges, several workers."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from tests.conftest import app_client, make_settings

SESSION = "/api/v1/sessions/{session_id}"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(http: httpx.AsyncClient) -> dict:
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


async def test_requests_are_labelled_by_route_template_and_counted(client):
    assert (await client.post("/api/v1/sessions", json={"session_id": "m-1"})).status_code == 201
    for _ in range(2):
        assert (await client.get("/api/v1/sessions/m-1")).status_code == 200
    assert (await client.get("/api/v1/sessions/absent")).status_code == 404
    assert (await client.get("/no/such/route/m-1")).status_code == 404
    assert (await client.patch("/api/v1/sessions/m-1")).status_code == 405

    first = await scrape(client)
    routes = {
        dict(labels).get("route") for name, labels in first if name.startswith("http_request")
    }
    assert SESSION in routes and "/api/v1/sessions" in routes and "unmatched" in routes
    assert not [r for r in routes if r and ("m-1" in r or "absent" in r)]  # never raw paths
    assert value(first, "http_requests_total", method="GET", route=SESSION, status="200") == 2
    assert value(first, "http_requests_total", method="GET", route=SESSION, status="404") == 1
    assert value(first, "http_requests_total", method="PATCH", route=SESSION, status="405") == 1
    assert value(first, "http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert (
        value(
            first,
            "http_request_duration_seconds_count",
            method="POST",
            route="/api/v1/sessions",
            status="201",
        )
        == 1
    )
    assert value(first, "http_requests_in_flight") == 1  # the scrape itself

    await client.get("/api/v1/sessions/m-1")
    second = await scrape(client)
    assert value(second, "http_requests_total", method="GET", route=SESSION, status="200") == 3
    assert value(second, "http_requests_total", method="GET", route="/metrics", status="200") == 1


async def test_cache_pool_and_retry_figures(client):
    await client.post("/api/v1/sessions", json={"session_id": "m-2"})
    before = await scrape(client)
    await client.get("/api/v1/sessions/m-2")  # a miss fills the cache
    await client.get("/api/v1/sessions/m-2")  # a hit
    after = await scrape(client)
    assert value(after, "cache_misses_total") == value(before, "cache_misses_total") + 1
    assert value(after, "cache_hits_total") == value(before, "cache_hits_total") + 1
    assert value(after, "db_retries_total") == 0
    assert value(after, "db_pool_max") == 10 and value(after, "db_pool_min") == 2
    assert 1 <= value(after, "db_pool_size") <= 10
    assert 0 <= value(after, "db_pool_idle") <= value(after, "db_pool_size")


async def test_openmetrics_when_asked_for(client):
    answer = await client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.rstrip().endswith("# EOF")


async def test_metrics_need_a_key_only_when_configured(database_url):
    keyed = make_settings(api_keys="k-metrics", metrics_require_key=True)
    async with app_client(create_app(keyed, dsn=database_url)) as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 401
        assert (
            await http.get("/metrics", headers={"authorization": "Bearer k-metrics"})
        ).status_code == 200
        # The refused request was still measured, under its route.
        text = (await http.get("/metrics", headers={"authorization": "Bearer k-metrics"})).text
        assert (
            value(
                samples(text), "http_requests_total", method="GET", route="/metrics", status="401"
            )
            == 1
        )
    async with app_client(
        create_app(make_settings(api_keys="k-metrics"), dsn=database_url)
    ) as http:
        assert (await http.get("/metrics")).status_code == 200


def test_several_workers_report_one_sum(service_process, database_url):
    proc = service_process(
        {
            "DATABASE_URL": database_url,
            "WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": "",
            "DB_POOL_MIN_SIZE": "2",
        }
    )
    sent = 60

    def one(_: int) -> int:
        # A new connection each time, so the kernel hands requests to both workers.
        return httpx.get(proc.url + "/health/live", headers={"connection": "close"}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(sent))) == {200}

    deadline = time.monotonic() + 15
    while True:
        scraped = samples(httpx.get(proc.url + "/metrics").text)
        # Each worker publishes its own pool every second; the sum covers both.
        if value(scraped, "db_pool_max") == 20 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert value(scraped, "db_pool_max") == 20 and value(scraped, "db_pool_min") == 4
    for _ in range(6):  # whichever worker answers the scrape, the total is the same
        scraped = samples(httpx.get(proc.url + "/metrics").text)
        assert (
            value(scraped, "http_requests_total", method="GET", route="/health/live", status="200")
            == sent
        )
