"""The session browser over plain HTTP: escaping, headers, paging, 404 pages, the key, no writes."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import quote

import httpx
import pytest

from service.app import create_app
from service.queries import Q
from service.ui.web import CSP
from tests.conftest import app_client, make_settings
from tests.ui.ui_data import CMS, DOCUMENT, S, conversation


@pytest.fixture(scope="module")
async def ui(module_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(make_settings(), dsn=module_database_url)) as http:
        yield http


@pytest.fixture(scope="module")
async def keyed(module_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(api_keys="k-one,k-two"), dsn=module_database_url)
    async with app_client(app) as http:
        yield http


async def _session(http: httpx.AsyncClient, sid: str, *agents: str) -> None:
    assert (
        await http.post(S, json={"session_id": sid, "session_type": "AGENT"})
    ).status_code == 201
    for agent in agents:
        r = await http.post(
            f"{S}/{quote(sid, safe='')}/agents",
            json={"agent_id": agent, "state": {}, "conversation_manager_state": CMS},
        )
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
async def chat(ui: httpx.AsyncClient) -> str:
    """The conversation of ui_data under a hostile session id; the URL of its page."""
    sid = f"<b>\"x'&-{uuid.uuid4().hex[:6]}"
    await _session(ui, sid, "helper")
    r = await ui.post(
        f"{S}/{quote(sid, safe='')}/agents/helper/messages/batch",
        json={"messages": conversation()},
    )
    assert r.status_code == 201, r.text
    return f"/ui/sessions/{quote(sid, safe='')}/agents/helper"


class _Audit(HTMLParser):
    """Collects what a strict CSP would refuse: inline scripts, style attributes, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.inline.append("inline <script>")
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [f"{tag} {n}=" for n in names if n == "style" or n.startswith("on")]


def _assert_safe_page(r: httpx.Response) -> None:
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    audit = _Audit()
    audit.feed(r.text)
    assert audit.inline == [], audit.inline


async def test_every_page_is_escaped_and_carries_a_strict_csp(ui, chat):
    sid_path = chat.rsplit("/agents/", 1)[0]
    for url in ("/", "/ui", sid_path, chat, chat + "/state", chat + "/messages/6", "/ui/nope"):
        r = await ui.get(url)
        assert r.status_code in (200, 404), url
        _assert_safe_page(r)
        assert "<b>" not in r.text and "<script>alert" not in r.text, url
    assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP
    assert "img-src 'self' data:" in CSP and "default-src 'none'" in CSP
    page = (await ui.get(chat)).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and &lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;b&gt;&#34;x&#39;&amp;-" in page  # the session id in the breadcrumb


async def test_the_conversation_page_shows_each_kind_of_content(ui, chat):
    page = (await ui.get(chat)).text
    assert '<div class="text">line one\nline two</div>' in page
    assert '<code class="tool-name">weather_lookup</code>' in page
    assert "&#34;city&#34;: &#34;Oslo&#34;,\n  &#34;days&#34;: 3" in page  # pretty JSON
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="image \(png\)">', page)
    assert "My card is [REDACTED]" in page and "4111" not in page
    assert 'href="' + chat + '/messages/5?original=1"' in page
    assert page.count('class="msg role-user') == 4 and page.count("role-assistant") == 3
    original = await ui.get(chat + "/messages/5?original=1")
    assert "My card is 4111 1111 1111 1111" in original.text and "original content" in original.text


async def test_a_document_downloads_as_its_stored_bytes_never_rendered(ui, chat):
    page = (await ui.get(chat)).text
    link = re.search(r'href="([^"]+/documents/[^"]+)" download>report<', page)
    assert link is not None
    r = await ui.get(link.group(1))
    assert r.status_code == 200 and r.content == DOCUMENT
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''report.pdf"
    assert "sandbox" in r.headers["content-security-policy"]
    missing = await ui.get(chat + "/messages/4/documents/0")  # a text block, not a document
    assert missing.status_code == 404


async def test_agent_state_and_multi_agent_states_are_pretty_and_exact(ui):
    sid = f"state-{uuid.uuid4().hex[:6]}"
    await _session(ui, sid)
    big = 2**70
    r = await ui.post(
        f"{S}/{sid}/agents",
        json={
            "agent_id": "a",
            "state": {"z": 1, "a": big},
            "conversation_manager_state": CMS,
            "_internal_state": {"interrupt_state": {"activated": False}},
        },
    )
    assert r.status_code == 201
    await ui.post(f"{S}/{sid}/multi-agents", json={"multi_agent_id": "graph", "state": {"n": 1}})
    state = (await ui.get(f"/ui/sessions/{sid}/agents/a/state")).text
    assert f"{{\n  &#34;z&#34;: 1,\n  &#34;a&#34;: {big}\n}}" in state  # order and value kept
    assert "SlidingWindowConversationManager" in state and "interrupt_state" in state
    assert state.count("<details") == 3
    session = (await ui.get(f"/ui/sessions/{sid}")).text
    assert "graph" in session and "&#34;n&#34;: 1" in session
    assert f'href="/ui/sessions/{sid}/export" download' in session


async def test_the_export_downloads_as_ndjson(ui, chat):
    sid_path = chat.rsplit("/agents/", 1)[0]
    r = await ui.get(sid_path + "/export")
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment; filename*=UTF-8''session-")
    lines = r.text.splitlines()
    assert '"type":"session"' in lines[0] and '"type":"end"' in lines[-1]
    assert len([line for line in lines if '"type":"message"' in line]) == 7


async def test_sessions_page_through_without_loss_and_filter(ui):
    prefix = f"pg-{uuid.uuid4().hex[:6]}-"
    ids = [f"{prefix}{i:02d}" for i in range(11)]
    for sid in ids:
        await _session(ui, sid, *(["a", "b"] if sid.endswith("03") else []))
    seen, url = [], f"/ui?limit=4&prefix={prefix}"
    while url:
        page = (await ui.get(url)).text
        seen += re.findall(r'class="session-link" href="/ui/sessions/([^"]+)"', page)
        nxt = re.search(r'class="next" href="([^"]+)"', page)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
    assert seen == list(reversed(ids))
    one = (await ui.get(f"/ui?prefix={prefix}03")).text
    assert re.findall(r'<td class="num">(\d+)</td>', one) == ["2"]  # its agents, counted
    created = (await ui.get(f"{S}/{prefix}05")).json()["created_at"]
    after = (await ui.get(f"/ui?prefix={prefix}&created_after={quote(created)}")).text
    assert re.findall(r'class="session-link" href="/ui/sessions/([^"]+)"', after) == [
        f"{prefix}{i:02d}" for i in range(10, 5, -1)
    ]
    before = (await ui.get(f"/ui?prefix={prefix}&created_before={quote(created)}")).text
    assert len(re.findall(r'class="session-link"', before)) == 5
    typed = (await ui.get(f"/ui?prefix={prefix}&session_type=AGENT&limit=100")).text
    assert len(re.findall(r'class="session-link"', typed)) == 11


async def test_a_long_conversation_pages_by_cursor(ui):
    sid = f"long-{uuid.uuid4().hex[:6]}"
    await _session(ui, sid, "a")
    messages = [
        {"message_id": i, "message": {"role": "user", "content": [{"text": f"m{i}"}]}}
        for i in range(250)
    ]
    r = await ui.post(f"{S}/{sid}/agents/a/messages/batch", json={"messages": messages})
    assert r.status_code == 201
    seen, url = [], f"/ui/sessions/{sid}/agents/a"
    pages = 0
    while url:
        page = (await ui.get(url)).text
        ids = [int(i) for i in re.findall(r'id="m-(\d+)"', page)]
        assert len(ids) <= 100
        seen += ids
        pages += 1
        nxt = re.search(r'class="next" href="([^"]+)"', page)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
    assert pages == 3 and seen == list(range(250))


async def test_bad_queries_and_cursors_answer_a_400_page(ui, chat):
    good = re.search(r'cursor=([^"&]+)', (await ui.get("/ui?limit=1")).text)
    assert good is not None
    for url in (
        "/ui?cursor=garbled",
        f"{chat}?cursor={good.group(1)}",  # a cursor of another list
        "/ui?created_after=yesterday",
        "/ui?session_type=NOPE",
        "/ui?limit=0",
        f"{chat}?limit=100000",
    ):
        r = await ui.get(url)
        assert r.status_code == 400, url
        _assert_safe_page(r)


async def test_what_does_not_exist_answers_a_friendly_404_page(ui, chat):
    sid_path = chat.rsplit("/agents/", 1)[0]
    for url in (
        "/ui/sessions/no-such-session",
        "/ui/sessions/no-such-session/export",
        f"{sid_path}/agents/nobody",
        f"{sid_path}/agents/nobody/state",
        f"{chat}/messages/999",
        f"{chat}/messages/2147483648",
        f"{chat}/messages/4/documents/9.9",
        "/ui/sessions/a%2Fb",
        "/ui/sessions/%20",
        "/ui/no/such/page",
    ):
        r = await ui.get(url)
        assert r.status_code == 404, url
        _assert_safe_page(r)
        assert "Not found" in r.text
    api = await ui.get("/api/v1/sessions/no-such-session")  # the API keeps its envelope
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


async def test_no_page_writes(ui):
    app = ui._transport.app  # type: ignore[attr-defined]
    for route in app.routes:
        path = getattr(route, "path", "")
        if path == "/" or (path.startswith("/ui") and hasattr(route, "methods")):
            allowed = {"GET", "HEAD"} | ({"POST"} if path == "/ui/login" else set())
            assert route.methods <= allowed, (path, route.methods)
    ui_queries = {name: sql for name, sql in Q.items() if name.startswith("ui_")}
    assert len(ui_queries) >= 5
    for name, sql in ui_queries.items():
        assert sql.lstrip().upper().startswith("SELECT"), name
        assert not re.search(r"\b(INSERT|UPDATE|DELETE|NOTIFY)\b", sql.upper()), name
    for method in ("POST", "PUT", "DELETE"):
        r = await ui.request(method, "/ui/sessions/x")
        assert r.status_code == 405


async def test_the_front_page_links_the_browser(ui):
    r = await ui.get("/")
    assert r.status_code == 200 and 'href="/ui"' in r.text and 'href="/docs"' in r.text


async def test_with_api_keys_every_page_needs_the_key(keyed):
    for url in ("/ui", "/ui/sessions/x", "/ui/sessions/x/export", "/ui/nope", "/"):
        r = await keyed.get(url)
        if url == "/":
            assert r.status_code == 200  # the front page only links
            continue
        assert r.status_code == 303, url
        assert r.headers["location"] == "/ui/login?next=" + quote(url, safe="")
    login = await keyed.get("/ui/login?next=/ui/sessions/x")
    assert login.status_code == 200 and 'name="next" value="/ui/sessions/x"' in login.text
    _assert_safe_page(login)
    assert (await keyed.get("/ui/static/ui.css")).status_code == 200  # the login page's style
    bearer = await keyed.get("/ui", headers={"Authorization": "Bearer k-two"})
    assert bearer.status_code == 200


async def test_login_sets_a_strict_http_only_cookie_that_opens_pages_not_the_api(keyed):
    form = {"content-type": "application/x-www-form-urlencoded"}
    wrong = await keyed.post("/ui/login", content="key=nope&next=/ui", headers=form)
    assert wrong.status_code == 401 and "That key is not valid." in wrong.text
    assert "set-cookie" not in wrong.headers

    r = await keyed.post("/ui/login", content="key=k-one&next=%2Fui%2Fsessions%2Fx", headers=form)
    assert r.status_code == 303 and r.headers["location"] == "/ui/sessions/x"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain http here; see the https case below
    value = r.cookies["ssb_ui"]
    assert "k-one" not in value
    assert (await keyed.get("/ui")).status_code == 200  # the client kept the cookie
    assert (await keyed.get(S)).status_code == 401  # the cookie is not an API key
    keyed.cookies.clear()
    keyed.cookies.set("ssb_ui", "0" * 64)
    assert (await keyed.get("/ui")).status_code == 303  # a forged one opens nothing
    keyed.cookies.clear()
    await keyed.post("/ui/login", content="key=k-one", headers=form)
    assert (await keyed.get("/ui")).status_code == 200

    out = await keyed.get("/ui/logout")
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert 'ssb_ui=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert (await keyed.get("/ui")).status_code == 303
    keyed.cookies.clear()


async def test_login_refuses_other_sites_and_foreign_redirects(keyed):
    form = {"content-type": "application/x-www-form-urlencoded"}
    for target in (
        "https://evil.example/ui",
        "//evil.example/ui",
        "/api/v1/sessions",
        "/\\evil",
        "/uix",
    ):
        r = await keyed.post(
            "/ui/login", content="key=k-one&next=" + quote(target, safe=""), headers=form
        )
        assert r.status_code == 303 and r.headers["location"] == "/ui", target
    cross = await keyed.post(
        "/ui/login",
        content="key=k-one",
        headers={**form, "origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "set-cookie" not in cross.headers
    keyed.cookies.clear()


async def test_over_https_the_cookie_is_secure_and_a_removed_key_closes_its_cookies(
    module_database_url,
):
    form = {"content-type": "application/x-www-form-urlencoded"}
    app = create_app(make_settings(api_keys="k-one,k-two"), dsn=module_database_url)
    async with app_client(app) as http:
        r = await http.post("https://test/ui/login", content="key=k-one", headers=form)
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
        value = r.cookies["ssb_ui"]
    app = create_app(make_settings(api_keys="k-two"), dsn=module_database_url)
    async with app_client(app) as http:
        http.cookies.set("ssb_ui", value)
        assert (await http.get("/ui")).status_code == 303


async def test_pages_report_their_server_time_and_a_database_outage_is_a_503_page(ui):
    r = await ui.get("/ui")
    assert re.fullmatch(r"render;dur=[\d.]+, app;dur=[\d.]+", r.headers["server-timing"])
    db = ui._transport.app.state.services.db  # type: ignore[attr-defined]
    db.accepting = False  # what the service does until it reaches the database
    try:
        r = await ui.get("/ui")
    finally:
        db.accepting = True
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    _assert_safe_page(r)
    assert "Try again shortly" in r.text


async def test_a_sessions_agents_page_and_empty_lists_render(ui):
    sid = f"agents-{uuid.uuid4().hex[:6]}"
    await _session(ui, sid, "c", "a", "b")
    first = (await ui.get(f"/ui/sessions/{sid}?limit=2")).text
    assert re.findall(r'class="agent-link" href="[^"]+/agents/([^"]+)"', first) == ["a", "b"]
    nxt = re.search(r'class="next" href="([^"]+)"', first)
    assert nxt is not None
    rest = (await ui.get(nxt.group(1).replace("&amp;", "&"))).text
    assert re.findall(r'class="agent-link" href="[^"]+/agents/([^"]+)"', rest) == ["c"]
    assert 'class="next"' not in rest and "First agents" in rest
    empty = await ui.get(f"/ui/sessions/{sid}/agents/a")
    assert empty.status_code == 200 and "No messages." in empty.text
    assert "None." in first  # no multi-agent states
    nothing = await ui.get(f"/ui?prefix={sid}-nothing")
    assert "No sessions match these filters." in nothing.text
