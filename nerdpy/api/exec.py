"""Exec endpoints: create (an exec session kept in this service's memory, as docker keeps it in
the daemon's), start (hijacked: the process's output, multiplexed without a TTY; or detached),
inspect and resize. The process is `runc exec`, built by the engine's exec_argv."""
from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field

from aiohttp import web

from nerdpy.api.common import ApiError, bad_request, engine_of, json_body
from nerdpy.api.streams import MULTIPLEXED, RAW, Hijacked, frame, wants_upgrade


@dataclass
class ExecSession:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str]
    workdir: str | None
    user: str | None
    privileged: bool
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    pty: object = None
    size: tuple[int, int] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict:
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": self.tty, "entrypoint": self.cmd[0] if self.cmd else "",
                              "arguments": self.cmd[1:], "privileged": self.privileged, "user": self.user or ""},
            "OpenStdin": self.stdin, "OpenStderr": self.stderr, "OpenStdout": self.stdout,
            "CanRemove": False, "ContainerID": self.container_id, "DetachKeys": "", "Pid": self.pid,
        }


def _strs(v, what: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise bad_request(f"invalid {what}: expected a list of strings")
    return v


async def create(request: web.Request) -> web.Response:
    from nerdpy.engine.containers.records import container_state, find_container
    from nerdpy.engine.errors import Conflict

    eng = engine_of(request)
    body = await json_body(request)
    cmd = _strs(body.get("Cmd"), "Cmd")
    if not cmd:
        raise bad_request("No exec command specified")
    for k in ("DetachKeys", "ConsoleSize"):
        pass  # accepted: detach keys apply to a terminal client; the size is set by resize

    def check(store):
        c = find_container(store, request.match_info["id"])
        st = container_state(store, c)
        if st.status == "paused":
            raise Conflict(f"container {c.name} is paused, unpause the container before exec")
        if st.status != "running":
            raise Conflict(f"container {c.name} is not running")
        return c.id

    cid = await eng.run(check)
    for e in _strs(body.get("Env"), "Env"):
        if not e.partition("=")[0]:
            raise bad_request(f"invalid environment variable: {e!r}")
    wd = body.get("WorkingDir") or None
    if wd is not None and not str(wd).startswith("/"):
        raise bad_request(f"the working directory {wd!r} is invalid, it needs to be an absolute path")
    s = ExecSession(secrets.token_hex(32), cid, cmd, _strs(body.get("Env"), "Env"), wd,
                    body.get("User") or None, bool(body.get("Privileged")), bool(body.get("Tty")),
                    bool(body.get("AttachStdin")), bool(body.get("AttachStdout")), bool(body.get("AttachStderr")))
    eng.execs[s.id] = s
    if len(eng.execs) > 1000:  # forget the oldest finished sessions
        for k in [k for k, v in eng.execs.items() if v.exit_code is not None][:200]:
            eng.execs.pop(k, None)
    return web.json_response({"Id": s.id}, status=201)


def _session(request: web.Request) -> ExecSession:
    s = engine_of(request).execs.get(request.match_info["id"])
    if s is None:
        raise ApiError(404, f"No such exec instance: {request.match_info['id']}")
    return s


async def inspect(request: web.Request) -> web.Response:
    return web.json_response(_session(request).inspect())


async def resize(request: web.Request) -> web.Response:
    from nerdpy.api.common import qint

    s = _session(request)
    h, w = qint(request, "h", 0), qint(request, "w", 0)
    if h <= 0 or w <= 0:
        raise bad_request("h and w must be positive")
    s.size = (h, w)
    if s.pty is not None and s.running:
        s.pty.resize(h, w, s.pid)
    return web.Response(status=201)


class _Pty:
    """The terminal of an exec with Tty: runc, in the foreground, copies between its own stdio
    (a pty's slave end here) and the container's console; we hold the master end."""

    def __init__(self):
        import os

        self.master, self.slave = os.openpty()
        self.reader: asyncio.StreamReader | None = None

    async def open_reader(self) -> asyncio.StreamReader:
        import os

        loop = asyncio.get_running_loop()
        self.reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self.reader),
                                     os.fdopen(os.dup(self.master), "rb", 0))
        return self.reader

    def write(self, data: bytes) -> None:
        import os

        while data:
            n = os.write(self.master, data)
            data = data[n:]

    def resize(self, h: int, w: int, pid: int) -> None:
        import fcntl
        import os
        import signal
        import struct
        import termios

        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGWINCH)  # runc copies the size to the container's console

    def close(self) -> None:
        import os

        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


async def _spawn(eng, s: ExecSession):
    from nerdpy.engine.containers.exec import exec_argv
    from nerdpy.engine.containers.records import find_container

    def build(store):
        c = find_container(store, s.container_id)
        return exec_argv(store, c, s.cmd, env=s.env, workdir=s.workdir, user=s.user, tty=s.tty,
                         privileged=s.privileged)

    argv, cleanup = await eng.run(build)
    try:
        if s.tty:
            pty = s.pty = _Pty()
            proc = await asyncio.create_subprocess_exec(*argv, stdin=pty.slave, stdout=pty.slave, stderr=pty.slave,
                                                        start_new_session=True)
            import os

            os.close(pty.slave)
            pty.slave = -1
        else:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if s.stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except BaseException:
        cleanup()
        if s.pty is not None:
            s.pty.close()
        raise
    return argv, cleanup, proc


async def _finish(eng, s: ExecSession, argv, cleanup, proc) -> bytes:
    """Wait for the process; record its exit code (126/127 when runc could not start it, as
    docker reports); the error message to show, if any."""
    from nerdpy.engine.containers.exec import exec_error
    from nerdpy.engine.containers.lifecycle import _start_error
    from nerdpy.engine.containers.records import CommandNotFound, CommandNotInvokable

    code = await proc.wait()
    msg = b""
    try:
        if code == 255:
            err = await eng.call(exec_error, argv)
            if err:
                e = _start_error(err)
                code = 127 if isinstance(e, CommandNotFound) else 126 if isinstance(e, CommandNotInvokable) else 126
                msg = b""  # runc wrote it on the process's stderr already
    finally:
        cleanup()
        if s.pty is not None:
            s.pty.close()
    s.exit_code = code
    s.running = False
    s.done.set()
    return msg


async def start(request: web.Request) -> web.StreamResponse:
    eng = engine_of(request)
    s = _session(request)
    body = await json_body(request, required=False)
    if s.started:
        raise ApiError(409, f"exec {s.id} has already been started")
    s.started = True
    tty = bool(body.get("Tty", s.tty))
    s.tty = tty
    argv, cleanup, proc = await _spawn(eng, s)
    s.running, s.pid = True, proc.pid
    out_reader = await s.pty.open_reader() if s.pty is not None else None
    if s.pty is not None and s.size:
        s.pty.resize(*s.size, proc.pid)
    if body.get("Detach"):
        async def background():
            if out_reader is not None:
                asyncio.ensure_future(_drain(out_reader))
            if proc.stdout is not None:
                asyncio.ensure_future(_drain(proc.stdout))
            if proc.stderr is not None:
                asyncio.ensure_future(_drain(proc.stderr))
            await _finish(eng, s, argv, cleanup, proc)

        asyncio.ensure_future(background())
        return web.Response(status=200)
    resp = Hijacked(wants_upgrade(request), RAW if tty else MULTIPLEXED)
    try:
        await resp.prepare(request)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await _finish(eng, s, argv, cleanup, proc)
        raise
    lock = asyncio.Lock()

    async def copy(stream, kind: int, wanted: bool) -> None:
        while True:
            try:
                data = await stream.read(65536)
            except OSError:  # EIO: the pty's other end is closed
                data = b""
            if not data:
                return
            if wanted:
                async with lock:
                    await resp.write(data if tty else frame(kind, data))

    async def feed() -> None:
        while True:
            data = await resp.read()
            if not data:
                break
            if s.pty is not None:
                with contextlib.suppress(OSError):
                    s.pty.write(data)
                continue
            proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
        if s.pty is None:
            with contextlib.suppress(Exception):
                proc.stdin.close()

    feeder = asyncio.ensure_future(feed()) if s.stdin else None
    try:
        if out_reader is not None:
            await copy(out_reader, 1, s.stdout or s.stderr)
        else:
            await asyncio.gather(copy(proc.stdout, 1, s.stdout), copy(proc.stderr, 2, s.stderr))
        msg = await _finish(eng, s, argv, cleanup, proc)
        if msg:
            await resp.write(msg if tty else frame(2 if s.stderr or not s.stdout else 1, msg))
    except (ConnectionError, RuntimeError):
        # the client went away: the process goes on, as with docker
        if s.exit_code is None:
            asyncio.ensure_future(_finish_quietly(eng, s, argv, cleanup, proc))
    finally:
        if feeder is not None:
            feeder.cancel()
        resp.close_connection(request)
    return resp


async def _drain(stream) -> None:
    while await stream.read(65536):
        pass


async def _finish_quietly(eng, s, argv, cleanup, proc) -> None:
    for st in (proc.stdout, proc.stderr):
        if st is not None:
            asyncio.ensure_future(_drain(st))
    with contextlib.suppress(Exception):
        await _finish(eng, s, argv, cleanup, proc)


ROUTES = [
    ("POST", "/containers/{id}/exec", create),
    ("POST", "/exec/{id}/start", start),
    ("POST", "/exec/{id}/resize", resize),
    ("GET", "/exec/{id}/json", inspect),
]
