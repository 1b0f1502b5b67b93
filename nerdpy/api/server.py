"""The API service: the aiohttp application, the listening socket (a unix path, a loopback TCP
port, or the socket systemd passes in with LISTEN_FDS), its permissions, the idle timer, and the
one mapping of engine errors to docker's status codes and JSON error body {"message": ...}.

Engine calls block (SQLite, runc, file systems): they run in a thread pool, each thread with a
Store of its own (a Store is one SQLite connection, not to be shared by concurrent writers).
"""
from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from aiohttp import web

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
DEFAULT_SOCKET = "/run/nerdpy/nerdpy.sock"
SD_LISTEN_FDS_START = 3
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
    """docker's status code for an engine error: 404 missing, 409 conflict, 400 bad input,
    500 for what went wrong on our side."""
    from nerdpy.engine.errors import AuthError, Conflict, InvalidArgument, NotFound, RegistryError

    if isinstance(e, ApiError):
        return e.status
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, Conflict):
        return 409
    if isinstance(e, InvalidArgument):
        return 400
    if isinstance(e, AuthError):
        return 401 if "unauthorized" in str(e).lower() else 404
    if isinstance(e, RegistryError):
        low = str(e).lower()
        return 404 if "not found" in low or "manifest unknown" in low or "name unknown" in low else 500
    from nerdpy.engine.containers.records import CommandNotFound, CommandNotInvokable

    if isinstance(e, (CommandNotFound, CommandNotInvokable)):
        return 400
    from nerdpy.engine.containers.cp import BadStream

    if isinstance(e, BadStream):
        return 400
    return 500


def message_of(e: BaseException) -> str:
    msg = str(e) or type(e).__name__
    return msg[:1].upper() + msg[1:]


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler):
    from nerdpy.engine.errors import NerdpyError

    version = request.match_info.get("version")
    if version is not None and _vtuple(version) > _vtuple(API_VERSION):
        return error_response(400, f"client version {version} is too new. Maximum supported API version is {API_VERSION}")
    if version is not None and _vtuple(version) < _vtuple(MIN_API_VERSION):
        return error_response(400, f"client version {version} is too old. Minimum supported API version is "
                                   f"{MIN_API_VERSION}, please upgrade your client to a newer version")
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        text = e.text or e.reason
        if e.status == 404 and text.startswith("404"):
            text = "page not found"
        return error_response(e.status, text)
    except (ApiError, NerdpyError) as e:
        return error_response(status_of(e), message_of(e))
    except json.JSONDecodeError as e:
        return error_response(400, f"invalid JSON: {e}")
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as e:  # noqa: BLE001 (an error we did not plan for: still docker's JSON)
        request.app["log"](f"internal error on {request.method} {request.path}: {type(e).__name__}: {e}")
        if request.app["debug"]:
            import traceback

            traceback.print_exc()
        return error_response(500, f"internal error: {type(e).__name__}: {e}")


def _vtuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        raise web.HTTPBadRequest(text=f"invalid API version {v!r}") from None


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


def add_routes(app: web.Application, routes: list[tuple[str, str, Callable]]) -> None:
    """Each path with and without docker's /vX.Y prefix."""
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, r"/v{version:[0-9]+\.[0-9]+}" + path, handler)


# -- the app ---------------------------------------------------------------------------------------
class Activity:
    """In-flight requests and open connections, for the idle timer."""

    def __init__(self):
        self.inflight = 0
        self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()


@web.middleware
async def activity_middleware(request: web.Request, handler):
    act: Activity = request.app["activity"]
    act.inflight += 1
    act.touch()
    if request.app["debug"]:
        request.app["log"](f"{request.method} {request.path_qs}")
    try:
        return await handler(request)
    finally:
        act.inflight -= 1
        act.touch()


def make_app(settings, log: Callable[[str], None] = lambda s: None) -> web.Application:
    from nerdpy.api import containers, exec as exec_, images, networks, system, volumes

    app = web.Application(middlewares=[activity_middleware, errors_middleware], client_max_size=MAX_JSON_BODY)
    app["engine"] = Engine(settings)
    app["activity"] = Activity()
    app["log"] = log
    app["debug"] = bool(getattr(settings, "debug", False))
    for mod in (system, containers, exec_, images, networks, volumes):
        add_routes(app, mod.ROUTES)

    async def on_cleanup(app):
        app["engine"].close()

    app.on_cleanup.append(on_cleanup)
    return app


# -- listening -------------------------------------------------------------------------------------
def default_uri() -> str:
    if os.geteuid() != 0 and os.environ.get("XDG_RUNTIME_DIR"):
        return "unix://" + os.path.join(os.environ["XDG_RUNTIME_DIR"], "nerdpy", "nerdpy.sock")
    return "unix://" + DEFAULT_SOCKET


def activation_socket() -> socket.socket | None:
    """The listening socket systemd passed in (LISTEN_FDS/LISTEN_PID), if any."""
    try:
        pid = int(os.environ.get("LISTEN_PID", "0"))
        n = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if pid != os.getpid() or n < 1:
        return None
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(k, None)
    fd = SD_LISTEN_FDS_START
    os.set_inheritable(fd, False)
    return socket.socket(fileno=fd)


def _unix_listener(path: str, group: str | None) -> socket.socket:
    from nerdpy.engine.errors import Conflict, InvalidArgument

    os.makedirs(os.path.dirname(path) or ".", mode=0o711, exist_ok=True)
    if os.path.lexists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # a stale socket of a service that is gone
        else:
            raise Conflict(f"another service is listening on {path}")
        finally:
            probe.close()
    gid = None
    if group is not None:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise InvalidArgument(f"no such group: {group}") from None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        s.bind(path)
    finally:
        os.umask(old)
    if gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o600)
    s.listen(128)
    return s


def listener(uri: str, group: str | None = None) -> tuple[socket.socket, str | None]:
    """(listening socket, unix path to remove at exit or None)."""
    from nerdpy.engine.errors import InvalidArgument

    if uri.startswith("unix://"):
        path = uri[len("unix://"):]
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid URI {uri!r}: the socket path must be absolute")
        return _unix_listener(path, group), path
    if uri.startswith("tcp://"):
        import ipaddress

        host, _, port = uri[len("tcp://"):].rstrip("/").rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if host == "localhost":
            host = "127.0.0.1"
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise InvalidArgument(f"refusing to listen on {host}: only loopback addresses are allowed "
                                      "(the API gives root on this host)")
            port_n = int(port)
        except ValueError:
            raise InvalidArgument(f"invalid URI {uri!r}: expected tcp://127.0.0.1:PORT") from None
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port_n))
        s.listen(128)
        return s, None
    raise InvalidArgument(f"invalid URI {uri!r}: expected unix:///PATH or tcp://127.0.0.1:PORT")


def _half_close_server(server) -> None:
    """Keep a hijacked connection open when the client closes its side (docker's clients do,
    once stdin ends, and still read the output): aiohttp's handler would close it."""
    from aiohttp.web_protocol import RequestHandler
    from aiohttp.web_server import Server

    class HalfCloseHandler(RequestHandler):
        __slots__ = ()

        def eof_received(self):
            parser = self._payload_parser
            if parser is not None and hasattr(parser, "hijacked"):
                parser.feed_eof()
                return True
            return None

    class HalfCloseServer(Server):
        __slots__ = ()

        def __call__(self):
            return HalfCloseHandler(self, loop=self._loop, **self._kwargs)

    server.__class__ = HalfCloseServer


async def _serve(app: web.Application, sock: socket.socket, idle: float, log) -> None:
    # handler_cancellation: a client that hangs up cancels its request (a wait, a log follow)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True,
                           keepalive_timeout=idle if idle > 0 else 75.0)
    await runner.setup()
    _half_close_server(runner.server)
    site = web.SockSite(runner, sock)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    act: Activity = app["activity"]
    server = runner.server
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            if idle > 0:
                conns = len(getattr(server, "connections", []) or [])
                if conns or act.inflight:
                    act.touch()
                elif time.monotonic() - act.last >= idle:
                    log(f"idle for {idle:g}s: exiting")
                    break
    finally:
        await runner.cleanup()


def serve(settings, uri: str | None = None, idle: float = 5.0, group: str | None = None,
          log: Callable[[str], None] = lambda s: None) -> None:
    """Serve until idle for `idle` seconds (0: until a signal)."""
    sock = activation_socket()
    path = None
    if sock is None:
        sock, path = listener(uri or default_uri(), group)
        log(f"listening on {uri or default_uri()}")
    else:
        log("listening on the socket passed in by systemd")
    ours = os.stat(path).st_ino if path is not None else None
    app = make_app(settings, log)
    try:
        asyncio.run(_serve(app, sock, idle, log))
    finally:
        # remove our socket file, not one a newer service has bound meanwhile
        with contextlib.suppress(OSError):
            if path is not None and os.stat(path).st_ino == ours:
                os.unlink(path)
        sock.close()
