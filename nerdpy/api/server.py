"""The API service: the aiohttp application, the listening socket (a unix path, a loopback TCP
port, or the socket systemd passes in with LISTEN_FDS), its permissions, the idle timer, the
middleware that answers every error with docker's JSON body {"message": ...} (the status codes
are common.status_of's), and the API version check.

Engine calls block (SQLite, runc, file systems): they run in a thread pool, each thread with a
Store of its own (common.Engine).
"""
from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import socket
import time
from typing import Callable

from aiohttp import web

from nerdpy.api.common import API_VERSION, MAX_JSON_BODY, MIN_API_VERSION, ApiError, Engine, message_of, status_of

DEFAULT_SOCKET = "/run/nerdpy/nerdpy.sock"
SD_LISTEN_FDS_START = 3


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
    except _click_error() as e:  # a bad filter, refused by the CLI's own parser
        return error_response(400, message_of(Exception(e.format_message())))
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


def _click_error() -> type:
    import click

    return click.ClickException


def _vtuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        raise web.HTTPBadRequest(text=f"invalid API version {v!r}") from None


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
    from nerdpy.api import archive, containers, exec as exec_, images, networks, stats, system, volumes

    app = web.Application(middlewares=[activity_middleware, errors_middleware], client_max_size=MAX_JSON_BODY)
    app["engine"] = Engine(settings)
    app["activity"] = Activity()
    app["log"] = log
    app["debug"] = bool(getattr(settings, "debug", False))
    for mod in (system, containers, archive, stats, exec_, images, networks, volumes):
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
