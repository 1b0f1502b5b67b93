"""What every endpoint module shares: the API versions, ApiError, the Engine handle (settings,
a thread pool, one Store per thread, the exec sessions and attach requests of this service),
docker's status code and message for an engine error, and the readers of queries and bodies."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from aiohttp import web

from nerdpy.engine.system.info import API_VERSION, MIN_API_VERSION  # noqa: F401 (one place, shared with `version`)
MAX_JSON_BODY = 4 << 20


class ApiError(Exception):
    """An error of the API layer itself (bad query, unsupported endpoint) with its status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


class Engine:
    """The engine as the service sees it: the settings, a thread pool, one Store per thread,
    and the few things that live only while the service runs (exec sessions, attach requests
    waiting for a start)."""

    def __init__(self, settings, workers: int = 64):
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nerdpy-api")
        self._local = threading.local()
        self._stores: list = []
        self._lock = threading.Lock()
        self.execs: dict[str, Any] = {}
        self.pending_attach: dict[str, list] = {}

    def store(self):
        s = getattr(self._local, "store", None)
        if s is None:
            from nerdpy.engine.store import open_store

            s = self._local.store = open_store(self.settings)
            with self._lock:
                self._stores.append(s)
        return s

    async def run(self, fn: Callable, *args, **kwargs):
        """fn(store, *args, **kwargs) in the pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(self.store(), *args, **kwargs))

    async def call(self, fn: Callable, *args, **kwargs):
        """fn(*args, **kwargs) in the pool (no store)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for s in self._stores:
                with contextlib.suppress(Exception):
                    s.close()
            self._stores.clear()


# -- errors ----------------------------------------------------------------------------------------
def status_of(e: BaseException) -> int:
    """docker's status code for an engine error (engine/errors.py): 404 missing, 409 conflict,
    400 bad input (a bad value, a command that cannot run, a tar that is not one), 500 for what
    went wrong on our side."""
    from nerdpy.engine.errors import (AuthError, CommandNotFound, CommandNotInvokable, Conflict, CopyError,
                                      InvalidArgument, NotFound, RegistryError)

    if isinstance(e, ApiError):
        return e.status
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, Conflict):
        return 409
    if isinstance(e, (InvalidArgument, CommandNotFound, CommandNotInvokable, CopyError)):
        return 400
    if isinstance(e, AuthError):
        return 401 if "unauthorized" in str(e).lower() else 404
    if isinstance(e, RegistryError):
        low = str(e).lower()
        return 404 if "not found" in low or "manifest unknown" in low or "name unknown" in low else 500
    return 500


def message_of(e: BaseException) -> str:
    msg = str(e) or type(e).__name__
    return msg[:1].upper() + msg[1:]


# -- request helpers -------------------------------------------------------------------------------
def engine_of(request: web.Request) -> Engine:
    return request.app["engine"]


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    return v.lower() not in ("0", "false", "no")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise bad_request(f"invalid value for {name}: {v!r}") from None


def qfilters(request: web.Request) -> dict[str, list[str]]:
    """docker's `filters` query: {"label": ["a=b"]} or the old {"label": {"a=b": true}}."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise bad_request(f"invalid filters: {raw!r}") from None
    if not isinstance(doc, dict):
        raise bad_request(f"invalid filters: {raw!r}")
    out: dict[str, list[str]] = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out[k] = [str(x) for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        elif isinstance(v, str):
            out[k] = [v]
        else:
            raise bad_request(f"invalid filter {k!r}")
    return out


def filters_as_flags(filters: dict[str, list[str]]) -> list[str]:
    """{"label": ["a=b"]} -> ["label=a=b"], the CLI's --filter form the engine takes."""
    return [f"{k}={v}" for k, vs in filters.items() for v in vs]


async def json_body(request: web.Request, required: bool = True) -> dict:
    if not request.can_read_body:
        if required:
            raise bad_request("request body is required")
        return {}
    if (request.content_length or 0) > MAX_JSON_BODY:
        raise ApiError(413, f"request body too large (more than {MAX_JSON_BODY} bytes)")
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(1 << 16)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise ApiError(413, f"request body too large (more than {MAX_JSON_BODY} bytes)")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data.strip():
        if required:
            raise bad_request("request body is required")
        return {}
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise bad_request(f"invalid JSON: {e}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise bad_request("invalid JSON: expected an object")
    return doc
