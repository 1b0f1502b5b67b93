"""Streams of the API: docker's multiplexed framing, hijacked connections (attach and exec start
answer `101 UPGRADED` and then carry raw bytes both ways, as docker's daemon does), JSON-lines
progress streams, and the bridges between blocking engine code in threads and the event loop
(a generator's items to an async iterator; a request body as a file to read, a response as a
file to write).
"""
from __future__ import annotations

import asyncio
import json
import struct
import threading
from typing import AsyncIterator, Callable, Iterator

from aiohttp import web

STDIN, STDOUT, STDERR = 0, 1, 2
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def frame(stream: int, data: bytes) -> bytes:
    """docker's stdcopy frame: stream byte, 3 zero bytes, big-endian length, payload."""
    return struct.pack(">BxxxI", stream, len(data)) + data


# -- hijacked connections --------------------------------------------------------------------------
class _InputParser:
    """Takes the bytes the client sends after the upgrade (the aiohttp protocol feeds them)."""

    hijacked = True

    def __init__(self, queue: asyncio.Queue):
        self.queue = queue
        self.ended = False

    def feed_data(self, data: bytes):
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        if not self.ended:
            self.ended = True
            self.queue.put_nowait(b"")


class Hijacked(web.StreamResponse):
    """A response that takes the connection over: after the status line and headers, raw bytes
    out (`write`) and, with `read`, the raw bytes the client sends (b"" at its end)."""

    def __init__(self, upgrade: bool, content_type: str):
        super().__init__(status=101 if upgrade else 200, reason="UPGRADED" if upgrade else "OK")
        self._length_check = False  # no chunking: the body is the raw stream
        self.content_type = content_type
        if upgrade:
            self.headers["Connection"] = "Upgrade"
            self.headers["Upgrade"] = "tcp"
        self.force_close()
        self.input: asyncio.Queue = asyncio.Queue()
        self._eof = False

    async def prepare(self, request: web.BaseRequest):
        if self._payload_writer is not None:  # aiohttp prepares again when the handler returns
            return self._payload_writer
        w = await super().prepare(request)
        request.protocol.set_parser(_InputParser(self.input))
        request.protocol.keep_alive(False)
        await self.drain()
        return w

    async def drain(self) -> None:
        if self._payload_writer is not None:
            await self._payload_writer.drain()

    async def read(self) -> bytes:
        if self._eof:
            return b""
        data = await self.input.get()
        if not data:
            self._eof = True
        return data

    async def write_eof(self, data: bytes = b"") -> None:
        try:
            await super().write_eof(data)
        except (ConnectionError, RuntimeError):
            pass

    def close_connection(self, request: web.BaseRequest) -> None:
        t = request.transport
        if t is not None:
            t.close()


async def finish(resp: web.StreamResponse) -> None:
    """End a streamed response; a client that has gone already is no error."""
    try:
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass


def wants_upgrade(request: web.Request) -> bool:
    conn = request.headers.get("Connection", "").lower()
    return "upgrade" in conn and request.headers.get("Upgrade", "").lower() == "tcp"


# -- threads -> event loop -------------------------------------------------------------------------
class Cancelled:
    """A flag the producer thread checks: the client went away."""

    def __init__(self):
        self.event = threading.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def set(self) -> None:
        self.event.set()


_END = object()


async def iterate_in_thread(pool, make: Callable[[], Iterator], cancel: Cancelled,
                            maxsize: int = 256) -> AsyncIterator:
    """Items of the blocking iterator `make()` (run in `pool`) as they come; an exception in it
    is raised here. Stops the producer (through `cancel`) when the consumer stops early."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue(maxsize=maxsize)

    def put(item) -> None:
        fut = asyncio.run_coroutine_threadsafe(q.put(item), loop)
        while True:
            try:
                fut.result(timeout=0.5)
                return
            except TimeoutError:
                if cancel:
                    fut.cancel()
                    raise _Stop() from None

    def produce() -> None:
        try:
            for item in make():
                if cancel:
                    return
                put(("item", item))
            put(("end", None))
        except _Stop:
            pass
        except BaseException as e:  # noqa: BLE001 (handed to the consumer)
            try:
                put(("error", e))
            except _Stop:
                pass

    fut = loop.run_in_executor(pool, produce)
    try:
        while True:
            kind, item = await q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        cancel.set()
        if not fut.done():
            # let the producer see the flag; it ends within its next check
            pass


class _Stop(Exception):
    pass


class BodyReader:
    """A request body as a blocking file (for engine code in a thread)."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop):
        self.content = request.content
        self.loop = loop

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 20
        return asyncio.run_coroutine_threadsafe(self.content.read(n), self.loop).result()

    def readable(self) -> bool:
        return True


class ResponseWriter:
    """A streaming response as a blocking file (for engine code in a thread)."""

    def __init__(self, resp: web.StreamResponse, loop: asyncio.AbstractEventLoop, cancel: Cancelled):
        self.resp = resp
        self.loop = loop
        self.cancel = cancel

    def write(self, data: bytes) -> int:
        if self.cancel:
            raise BrokenPipeError("the client went away")
        try:
            asyncio.run_coroutine_threadsafe(self.resp.write(bytes(data)), self.loop).result()
        except (ConnectionError, RuntimeError) as e:
            self.cancel.set()
            raise BrokenPipeError(str(e)) from None
        return len(data)

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


# -- JSON-lines progress ---------------------------------------------------------------------------
def json_line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


def error_line(message: str) -> bytes:
    return json_line({"errorDetail": {"message": message}, "error": message})
