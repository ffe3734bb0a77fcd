"""The session browser: read-only HTML pages under /ui, served by the service itself.

`install(app)` adds the pages and their stylesheet and script (`/ui/static/`), and the
service's front page `/`. See docs/ui.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent / "static"


class _Static(StaticFiles):
    """The stylesheet and script, with `nosniff` so they are only ever what their type says."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-content-type-options", b"nosniff")]
            await send(message)

        await super().__call__(scope, receive, send_nosniff)


def install(app: FastAPI) -> None:
    """Add the browser to `app`. The static files and the login go first: the pages' router
    ends with a catch-all for /ui/*."""
    from service.ui import login, pages

    app.mount("/ui/static", _Static(directory=STATIC_DIR), name="ui-static")
    app.include_router(login.router)
    app.include_router(pages.router)
