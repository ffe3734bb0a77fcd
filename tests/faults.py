"""A fault-injecting TCP proxy for the PostgreSQL wire protocol (tests only).

`PgProxy(upstream_port)` listens on 127.0.0.1 and forwards every connection to PostgreSQL,
reading the frontend's messages as they pass: `Parse` names a statement's text, `Bind` runs
one, `Query` is a simple query (`COMMIT;`). `arm(match, mode)` makes the next message batch
that runs a statement whose text satisfies `match` fail:

- `after`: the batch goes to the server, which runs it (and commits, for a statement outside a
  transaction or a COMMIT); its reply is read up to ReadyForQuery and dropped, and both sides of
  the connection are closed. The client cannot tell whether its write happened.
- `before`: the connection is closed without sending the batch: the statement never runs.

The proxy runs its own event loop in a thread, so tests (and blocking helpers such as
`ServiceProcess.wait_ready`) never starve it. SSL and GSS encryption requests are answered
"no" by the proxy itself, so the stream stays readable.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


@dataclass
class _Fault:
    match: Callable[[str], bool]
    mode: str
    times: int


class PgProxy:
    """A proxy to PostgreSQL on 127.0.0.1:`upstream_port` that injects armed faults."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.injected = 0  # faults that fired
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # --- control (from any thread) -------------------------------------------------------------

    def start(self) -> int:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self.port

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def arm(self, match: str | Callable[[str], bool], mode: str = "after", times: int = 1) -> None:
        """Fail the next `times` batches running a statement `match`es (a text: equal to it
        once stripped, or a predicate)."""
        assert mode in ("after", "before")
        if isinstance(match, str):
            wanted = match.strip().rstrip(";").strip()

            def predicate(text: str) -> bool:
                return text.strip().rstrip(";").strip() == wanted

        else:
            predicate = match
        with self._lock:
            self._faults.append(_Fault(predicate, mode, times))

    def disarm(self) -> int:
        """Drop faults that did not fire; how many there were."""
        with self._lock:
            left = len(self._faults)
            self._faults.clear()
        return left

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    # --- the proxy ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()

    def _take_fault(self, texts: list[str]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if any(fault.match(text) for text in texts):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    self.injected += 1
                    return fault
        return None

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        state = _Connection()
        to_client = asyncio.create_task(self._server_to_client(server_r, client_w, state))
        try:
            await self._client_to_server(client_r, client_w, server_w, state)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if state.swallowing is not None:
                # `after`: let the server answer, drop the answer, then close both sides.
                await asyncio.wait({to_client}, timeout=30)
            server_w.close()
            client_w.close()
            to_client.cancel()
            self._writers -= {client_w, server_w}

    async def _client_to_server(
        self,
        reader: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        server_w: asyncio.StreamWriter,
        state: _Connection,
    ) -> None:
        # Start-up: untyped messages; refuse encryption so that the stream stays readable.
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!II", head)
            rest = await reader.readexactly(length - 8)
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                client_w.write(b"N")
                await client_w.drain()
                continue
            server_w.write(head + rest)
            await server_w.drain()
            break
        while True:
            batch, texts = await self._read_batch(reader, state)
            fault = self._take_fault(texts) if texts else None
            if fault is not None and fault.mode == "before":
                return
            server_w.write(batch)
            await server_w.drain()
            if fault is not None:
                state.swallowing = asyncio.Event()
                state.swallowing.set()
                return

    async def _read_batch(
        self, reader: asyncio.StreamReader, state: _Connection
    ) -> tuple[bytes, list[str]]:
        """Messages up to a Sync, Query or Terminate (what the client sends before waiting);
        the texts of the statements the batch runs."""
        parts: list[bytes] = []
        texts: list[str] = []
        while True:
            head = await reader.readexactly(5)
            kind, length = head[:1], struct.unpack("!I", head[1:])[0]
            body = await reader.readexactly(length - 4)
            parts.append(head + body)
            if kind == b"P":
                name, _, rest = body.partition(b"\0")
                state.statements[name] = rest.partition(b"\0")[0].decode(errors="replace")
            elif kind == b"B":
                _portal, _, rest = body.partition(b"\0")
                name = rest.partition(b"\0")[0]
                texts.append(state.statements.get(name, ""))
            elif kind == b"Q":
                texts.append(body.rstrip(b"\0").decode(errors="replace"))
            if kind in (b"S", b"Q", b"X", b"H"):
                return b"".join(parts), texts

    async def _server_to_client(
        self, reader: asyncio.StreamReader, client_w: asyncio.StreamWriter, state: _Connection
    ) -> None:
        try:
            while True:
                head = await reader.readexactly(5)
                length = struct.unpack("!I", head[1:])[0]
                body = await reader.readexactly(length - 4)
                if state.swallowing is not None:
                    if head[:1] == b"Z":  # the server is done with the batch: drop and close
                        break
                    continue
                client_w.write(head + body)
                await client_w.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            client_w.close()


class _Connection:
    """What the proxy knows about one connection."""

    def __init__(self) -> None:
        self.statements: dict[bytes, str] = {}
        self.swallowing: asyncio.Event | None = None
