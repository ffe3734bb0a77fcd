"""A TCP proxy that delays every chunk a client sends by a fixed time: a slow network to the
service, so that each request costs at least that delay. Runs its own event loop in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time


class SlowProxy:
    """Listen on 127.0.0.1:<port> and forward to 127.0.0.1:<target_port>, ``delay`` s later."""

    def __init__(self, target_port: int, delay: float = 0.02) -> None:
        self.target_port = target_port
        self.delay = delay
        self.requests = 0  # chunks forwarded from clients (about one per request)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(
                self._pipe(reader, up_writer, delayed=True),
                self._pipe(up_reader, writer, delayed=False),
                return_exceptions=True,
            )
        except (OSError, asyncio.CancelledError):  # backend down, or the proxy closing
            writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        # Chunks keep their order; each leaves `delay` after it arrived.
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(forward())
        try:
            while chunk := await reader.read(65536):
                if delayed:
                    self.requests += 1
                await queue.put((time.monotonic() + (self.delay if delayed else 0.0), chunk))
        finally:
            queue.put_nowait((0.0, b""))
            with contextlib.suppress(Exception):
                await sender
            writer.close()

    def close(self) -> None:
        """Stop listening, drop every connection and stop the loop."""

        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
