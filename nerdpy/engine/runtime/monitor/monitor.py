"""The per-container monitor: the one process that stays alive beside a running container.

It plays the role conmon plays for podman. Started by the CLI in a fresh interpreter
(`python3 -S -E monitor.py CONFIG`, standard library only, so it stays small), it:
- makes itself a child subreaper, so the container's init process becomes its child;
- says it is ready on the sync socket, lets the CLI attach, waits for the go-ahead, then runs
  `runc run --detach` with pipes for stdio (or a console socket for `-t`) and reports the pid
  or runc's error;
- writes docker's json-file log with rotation (jsonlog.py: a read at a time; a full disk drops
  and counts lines, never stops the container) and fans output out to attached clients over a
  unix socket (docker's 8-byte stream framing);
- when the container exits: drains the output, fsyncs the log, writes the exit status atomically,
  runs `runc delete`, applies the restart policy (docker's back-off), runs health checks while
  the container runs, and at the end runs the cleanup command (unmount, `--rm` removal).

This file must not import nerdpy or anything outside the standard library, except its
stdlib-only siblings wire.py (the protocol spoken on its sockets) and jsonlog.py (the log).
"""
import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

# run as a script, this file's folder is sys.path[0]: the siblings import by their bare names (the
# folder holds only the monitor's modules, none named like a standard library module)
from wire import C_CLEANED, C_CLOSE_STDIN, C_RESIZE, C_STDIN, EXIT, HELLO_MAX, HELLO_OK, STDERR, STDOUT
from wire import frame, read_line, recv_line, send_line, split_frames
from jsonlog import NO_SPACE, JsonLog, now_rfc3339

PR_SET_CHILD_SUBREAPER = 36
TIOCSWINSZ = 0x5414
F_SETPIPE_SZ = 1031
PIPE_SIZE = 256 << 10       # the container's output pipes: a writer that outruns us blocks later
READ_SIZE = 1 << 16        # the log encodes best in pieces that stay in the CPU's caches
# how long a client that took the cleanup on may take before the monitor does it itself
CLIENT_CLEANUP_TIMEOUT = 60.0


def write_json_atomic(path, obj, reserve=None):
    """Temp file + fsync + rename. On a full disk the half-written temp file is removed, the data
    root's space reserve (if any) released and the write tried once more; failing that, the file
    is rewritten in place, in the blocks it has already (the one write that needs no new space)."""
    data = json.dumps(obj).encode()
    tmp = "%s.tmp-%d" % (path, os.getpid())
    for attempt in (0, 1):
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
            return
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if e.errno not in NO_SPACE:
                raise
            if attempt == 0 and release_reserve(reserve):
                continue
            overwrite_in_place(path, data)
            return


def overwrite_in_place(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def release_reserve(path):
    """Delete the data root's space reserve (see engine/content/reserve.py); True if it was there."""
    if not path:
        return False
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def set_subreaper():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except OSError:
        pass


class Client:
    def __init__(self, sock, opts):
        self.sock = sock
        self.stdin = bool(opts.get("stdin"))
        self.stdout = opts.get("stdout", True)
        self.stderr = opts.get("stderr", True)
        # `run` in the foreground: the CLI has the engine loaded already, so it does the final
        # cleanup itself (this interpreter would have to import the engine first)
        self.cleanup = bool(opts.get("cleanup"))
        self.buf = b""

    def send(self, stream, data):
        if (stream == STDOUT and not self.stdout) or (stream == STDERR and not self.stderr):
            return True
        try:
            self.sock.sendall(frame(stream, data))
            return True
        except OSError:
            return False


class Monitor:
    def __init__(self, cfg):
        self.cfg = cfg
        self.cid = cfg["id"]
        self.dir = cfg["dir"]              # persistent container dir (state, log)
        self.run_dir = cfg["run_dir"]      # sockets, pid files
        self.state_path = os.path.join(self.dir, "state.json")
        self.runc = [cfg["runc"], *cfg.get("runtime_args", []), "--root", cfg["runc_root"], *cfg.get("runc_flags", [])]
        self.reserve = cfg.get("reserve")  # the data root's space reserve, released on a full disk
        self.log = JsonLog(cfg.get("log_path"), cfg.get("log_max_size", 0), cfg.get("log_max_file", 1),
                           on_drop=self.record_dropped)
        self.clients = []
        self.pid = 0
        self.tty = bool(cfg.get("tty"))
        self.stdin_open = bool(cfg.get("stdin"))
        self.stdin_once = bool(cfg.get("stdin_once"))
        self.out_fds = {}                  # fd -> stream
        self.stdin_w = None
        self.master = None
        self.restart_count = 0
        self.health = None
        self.health_last = None
        self.cleaned_client = None         # the client that did the final cleanup: told last
        self.oom_killed = False            # the memory cgroup killed a process of the last run

    # -- state --------------------------------------------------------------------------
    def update_state(self, **kw):
        st = read_json(self.state_path, {}) or {}
        st.update(kw)
        write_json_atomic(self.state_path, st, self.reserve)

    # -- starting -----------------------------------------------------------------------
    def create(self):
        """`runc run --detach`: the container created and started in one call (one runc process
        fewer than create + start); returns (pid, None) or (0, error message)."""
        bundle = self.cfg["bundle"]
        pid_file = os.path.join(self.run_dir, "init.pid")
        runc_log = os.path.join(self.run_dir, "runc.log")
        for p in (pid_file, runc_log):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        argv = self.runc + ["--log", runc_log, "--log-format", "json", "run", "--detach", "--bundle", bundle,
                            "--pid-file", pid_file]
        console = None
        if self.tty:
            # runc resolves the console socket's path from inside the bundle, so bind it there
            # by a relative name (AF_UNIX paths are limited to 108 bytes)
            console_path = "console.sock"
            os.chdir(bundle)
            try:
                try:
                    os.unlink(console_path)
                except FileNotFoundError:
                    pass
                console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                console.bind(console_path)
                console.listen(1)
            finally:
                os.chdir(self.run_dir)
            argv += ["--console-socket", console_path]
            stdio = (subprocess.DEVNULL, subprocess.DEVNULL, subprocess.PIPE)
            proc = subprocess.Popen(argv + [self.cid], stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            for fd in (out_r, err_r):
                try:
                    fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
                except OSError:
                    pass
            if self.stdin_open:
                in_r, in_w = os.pipe()
            else:
                in_r, in_w = os.open("/dev/null", os.O_RDONLY), None
            proc = subprocess.Popen(argv + [self.cid], stdin=in_r, stdout=out_w, stderr=err_w)
            os.close(out_w)
            os.close(err_w)
            os.close(in_r)
            self.stdin_w = in_w
            self.out_fds = {out_r: STDOUT, err_r: STDERR}
        if console is not None:
            console.settimeout(30)
            master = None
            try:
                while proc.poll() is None or master is None:
                    try:
                        conn, _ = console.accept()
                    except socket.timeout:
                        break
                    msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
                    conn.close()
                    if fds:
                        master = fds[0]
                        break
            finally:
                console.close()
                try:
                    os.unlink(os.path.join(bundle, console_path))
                except OSError:
                    pass
            if master is not None:
                self.master = master
                self.out_fds = {master: STDOUT}
                if self.cfg.get("tty_size"):
                    rows, cols = self.cfg["tty_size"]
                    self.resize(rows, cols)
        rc = proc.wait()
        err_text = b""
        if proc.stderr is not None:
            err_text = proc.stderr.read()
            proc.stderr.close()
        if rc != 0:
            # in pass-through mode runc's own errors went to the container's stderr pipe
            for fd in list(self.out_fds):
                try:
                    os.set_blocking(fd, False)
                    err_text += os.read(fd, 65536)
                except OSError:
                    pass
                os.close(fd)
            self.out_fds = {}
            return 0, runc_error(runc_log, err_text.decode("utf-8", "replace"))
        try:
            with open(pid_file) as f:
                return int(f.read().strip()), None
        except (OSError, ValueError):
            return 0, "runc did not report the container's pid"

    def resize(self, rows, cols, client=False):
        """Set the terminal's size; one a client asked for is a `resize` event, as docker's."""
        if self.master is not None:
            try:
                fcntl.ioctl(self.master, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            except OSError:
                return
            if client:
                self.record_event("resize", height=rows, width=cols)

    # -- clients --------------------------------------------------------------------------
    def accept(self, lsock):
        try:
            conn, _ = lsock.accept()
        except OSError:
            return
        conn.setblocking(True)
        conn.settimeout(5)
        try:
            line = read_line(conn, HELLO_MAX)
            opts = json.loads(line or b"{}")
        except (OSError, ValueError):
            conn.close()
            return
        conn.settimeout(10)
        client = Client(conn, opts)
        if opts.get("resize"):
            self.resize(*opts["resize"], client=True)
        self.clients.append(client)
        try:
            conn.sendall(HELLO_OK)
        except OSError:
            self.drop(client)

    def drop(self, client):
        if client in self.clients:
            self.clients.remove(client)
        try:
            client.sock.close()
        except OSError:
            pass

    def client_input(self, client):
        try:
            data = client.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            if client.stdin and self.stdin_once:
                self.close_stdin()
            return
        frames, client.buf = split_frames(client.buf + data)
        for kind, payload in frames:
            if kind == C_STDIN and client.stdin:
                self.write_stdin(payload)
            elif kind == C_RESIZE:
                try:
                    rows, cols = json.loads(payload)
                    self.resize(rows, cols, client=True)
                except (ValueError, TypeError):
                    pass
            elif kind == C_CLOSE_STDIN and client.stdin:
                if self.stdin_once or not self.tty:
                    self.close_stdin()

    def write_stdin(self, data):
        fd = self.master if self.tty else self.stdin_w
        if fd is None:
            return
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError:
            pass

    def close_stdin(self):
        if self.tty:
            if self.master is not None:
                self.write_stdin(b"\x04")
            return
        if self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    def broadcast(self, stream, data):
        self.log.write(stream, data)
        for c in list(self.clients):
            if not c.send(stream, data):
                self.drop(c)

    # -- health ----------------------------------------------------------------------------
    def health_due(self, started):
        hc = self.cfg.get("healthcheck")
        if not hc:
            return None
        interval = hc.get("interval", 30.0)
        if not isinstance(interval, (int, float)) or interval <= 0:
            interval = 30.0  # never a loop without a pause, whatever the config says
        last = self.health_last or started
        return last + max(interval, 0.001)

    def run_health(self, started):
        hc = self.cfg["healthcheck"]
        test = hc["test"]
        if test[0] == "CMD-SHELL":
            argv = ["/bin/sh", "-c", " ".join(test[1:])]
        else:
            argv = test[1:]
        timeout = hc.get("timeout", 30.0)
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            timeout = 30.0
        if not argv or not all(isinstance(a, str) for a in argv):
            self.health_last = time.time()  # nothing to run: wait an interval, never spin
            return
        t0 = time.time()
        begin = now_rfc3339()
        try:
            r = subprocess.run(self.runc + ["exec", self.cid] + argv, capture_output=True,
                               timeout=timeout)
            code = r.returncode
            output = (r.stdout + r.stderr).decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            code = -1
            output = "Health check exceeded timeout (%gs)" % timeout
        self.health_last = time.time()
        h = self.health or {"Status": "starting", "FailingStreak": 0, "Log": []}
        before = h["Status"]
        h["Log"] = (h["Log"] + [{"Start": begin, "End": now_rfc3339(), "ExitCode": code,
                                 "Output": output[:4096]}])[-5:]
        in_grace = t0 - started < hc.get("start_period", 0.0)
        if code == 0:
            h["Status"] = "healthy"
            h["FailingStreak"] = 0
        elif not in_grace:
            h["FailingStreak"] += 1
            if h["FailingStreak"] >= max(hc.get("retries") or 3, 1):
                h["Status"] = "unhealthy"
        self.health = h
        write_json_atomic(os.path.join(self.dir, "health.json"), h, self.reserve)
        if h["Status"] != before:
            self.record_event("health_status: " + h["Status"])

    # -- the main loop ----------------------------------------------------------------------
    def serve(self, sync):
        set_subreaper()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

        # sockets are bound by relative names from inside the run dir: AF_UNIX paths are
        # limited to 108 bytes and a long run root would not fit
        os.chdir(self.run_dir)
        attach_path = "attach.sock"
        try:
            os.unlink(attach_path)
        except FileNotFoundError:
            pass
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(attach_path)
        lsock.listen(16)

        policy = self.cfg.get("restart") or {"name": "no"}
        backoff = 0.1
        first = True
        exit_code = 0
        send_line(sync, {"ready": True})
        # the CLI attaches first (we answer it here), then says start
        while True:
            r, _, _ = select.select([sync, lsock], [], [])
            if lsock in r:
                self.accept(lsock)
            if sync in r:
                break
        go = recv_line(sync)
        if not go or go.get("start") is not True:
            return 0
        while True:
            pid, err = self.create()
            if err is not None:
                subprocess.run(self.runc + ["delete", "--force", self.cid], capture_output=True)
                if first:
                    send_line(sync, {"error": err})
                    return 125
                self.update_state(status="exited", exit_code=128, error=err, finished_at=now_rfc3339(), pid=0)
                break
            self.pid = pid
            started = time.time()
            self.update_state(status="running", pid=pid, started_at=now_rfc3339(), error="",
                              restart_count=self.restart_count, monitor_pid=os.getpid(), oom_killed=False)
            if first:
                send_line(sync, {"started": pid})
                sync.close()
                first = False
            # here, not by the CLI: `start` always comes before this process's `die` (a container
            # that exits at once), and a restart by the policy has its `start` as with docker
            self.record_event("start")
            self.health_last = None
            if self.cfg.get("healthcheck"):
                self.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
                write_json_atomic(os.path.join(self.dir, "health.json"), self.health, self.reserve)
            exit_code = self.wait_exit(lsock, wake_r, started)
            self.log.flush_partial()
            self.log.end_gap()
            self.log.sync()
            self.oom_killed = self.read_oom_killed()  # before runc delete removes the cgroup
            subprocess.run(self.runc + ["delete", "--force", self.cid], capture_output=True)
            if self.stdin_w is not None:
                os.close(self.stdin_w)
                self.stdin_w = None
            if self.master is not None:
                os.close(self.master)
                self.master = None
            if self.oom_killed:
                self.record_event("oom")  # docker's, before the die
            self.record_event("die", exitCode=exit_code)
            policy = self.updated_policy(policy)
            if not should_restart(policy, exit_code, self.restart_count, self.stop_requested()):
                break
            self.notify_exit(exit_code)
            ran = time.time() - started
            backoff = 0.1 if ran >= 10 else min(backoff * 2, 60.0)
            self.restart_count += 1
            self.update_state(status="restarting", exit_code=exit_code, finished_at=now_rfc3339(), pid=0,
                              restart_count=self.restart_count, oom_killed=self.oom_killed)
            if self.sleep_unless_stopped(backoff, lsock):
                break
        lsock.close()
        try:
            os.unlink(attach_path)
        except OSError:
            pass
        # the end: unmount (and for --rm remove) before the state says "exited", so that a
        # `start` or `rm` that follows never races with this cleanup; attached clients learn
        # the exit code last, so `run --rm` returns with the container gone
        self.finish(exit_code)
        self.notify_exit(exit_code)
        return 0

    def updated_policy(self, policy):
        """The restart policy `update --restart` set since start (restart-policy.json), if any."""
        try:
            with open(os.path.join(self.run_dir, "restart-policy.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return policy

    def read_oom_killed(self):
        """Whether the memory cgroup killed a process of this run: the `oom_kill` count of
        memory.events (v2) or memory.oom_control (v1), which runc delete removes."""
        for path in self.cfg.get("oom_files") or []:
            try:
                with open(path) as f:
                    for line in f:
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                            return True
            except OSError:
                continue
        return False

    def record_die(self, exit_code):
        """docker's `die` event, in the journal `system events` reads."""
        self.record_event("die", exitCode=exit_code)

    def record_dropped(self, count, since):
        """Log records lost to a full disk: an event (the log has its own marker)."""
        self.record_event("logs-dropped", dropped=count, since=since)

    def record_event(self, action, **attributes):
        """One container event in the journal (system/journal.py, which imports only what this
        process has loaded already: loaded by path, it keeps the monitor small while it runs)."""
        ev = self.cfg.get("event") or {}
        if not ev:
            return
        try:
            mod = sys.modules.get("_nerdpy_journal")
            if mod is None:
                import importlib.util

                here = os.path.dirname(os.path.abspath(__file__))
                spec = importlib.util.spec_from_file_location("_nerdpy_journal",
                                                              os.path.join(here, "..", "..", "system", "journal.py"))
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                sys.modules["_nerdpy_journal"] = mod
            mod.append_event(ev["data_root"], mod.make_event(ev["namespace"], "container", action, self.cid,
                                                             dict(ev.get("attributes") or {}, **attributes)))
        except Exception:
            pass

    def notify_exit(self, exit_code):
        for c in list(self.clients):
            c.send(EXIT, json.dumps({"exit_code": exit_code}).encode())
            self.drop(c)

    def finish(self, exit_code):
        # stopped_by_user survives a reboot (the run dir does not): unless-stopped needs it
        final = dict(status="exited", exit_code=exit_code, finished_at=now_rfc3339(), pid=0,
                     restart_count=self.restart_count, stopped_by_user=self.stop_requested(),
                     oom_killed=self.oom_killed)
        if self.log.unwritten:
            final["log_dropped"] = self.log.unwritten
        remove = bool(self.cfg.get("auto_remove"))
        if remove:
            self.update_state(**final)
        engine = self.cfg.get("engine") or {}
        done = False
        cleaner = next((c for c in self.clients if c.cleanup), None)
        if cleaner is not None:
            done = self.cleanup_by_client(cleaner, exit_code, remove)
        if not done and engine.get("sys_path"):
            # the container is gone, so our size no longer matters: do the cleanup in-process
            # (a fresh `nerdpy` process would cost a whole interpreter start)
            try:
                # the CLI's path, where nerdpy is found (this folder's `wire` is loaded already)
                sys.path[:] = engine["sys_path"]
                from nerdpy.engine.containers.lifecycle import finish_container

                finish_container(engine["settings"], self.cid, remove)
                done = True
            except Exception:
                done = False
        if not done and self.cfg.get("cleanup"):
            env = dict(os.environ)
            env.update(self.cfg.get("cleanup_env") or {})
            subprocess.run(self.cfg["cleanup"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env)
        if not remove:
            self.update_state(**final)
        cleaned = self.cleaned_client
        if cleaned is not None:
            self.drop(cleaned)

    def cleanup_by_client(self, client, exit_code, remove):
        """Hand the cleanup to an attached client; True once it reports it done. A client that
        goes away (or takes too long) leaves the cleanup to us: it is safe to run twice."""
        if not client.send(EXIT, json.dumps({"exit_code": exit_code, "cleanup": True,
                                             "remove": remove}).encode()):
            self.drop(client)
            return False
        end = time.time() + CLIENT_CLEANUP_TIMEOUT
        buf = client.buf
        client.sock.setblocking(True)
        while time.time() < end:
            try:
                client.sock.settimeout(max(0.01, end - time.time()))
                data = client.sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                break
            frames, buf = split_frames(buf + data)
            for kind, _ in frames:
                if kind == C_CLEANED:
                    # the client waits for its socket to close: we close it after the final state
                    self.clients.remove(client)
                    self.cleaned_client = client
                    return True
        self.drop(client)
        return False

    def stop_requested(self):
        return os.path.exists(os.path.join(self.run_dir, "stop-requested"))

    def sleep_unless_stopped(self, seconds, lsock):
        end = time.time() + seconds
        while time.time() < end:
            if self.stop_requested():
                return True
            r, _, _ = select.select([lsock], [], [], min(0.1, max(0, end - time.time())))
            if r:
                self.accept(lsock)
        return self.stop_requested()

    def wait_exit(self, lsock, wake_r, started):
        """Pump output until the container's init exits; return its exit code."""
        status = None
        while True:
            fds = [lsock, wake_r] + list(self.out_fds) + [c.sock for c in self.clients]
            timeout = 1.0
            due = self.health_due(started)
            if due is not None:
                timeout = max(0.0, min(timeout, due - time.time()))
            if status is not None:
                timeout = 0.05
            try:
                r, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                r = []
            except (OSError, ValueError):
                # a client socket went bad: drop closed ones
                for c in list(self.clients):
                    if c.sock.fileno() < 0:
                        self.drop(c)
                continue
            for fd in r:
                if fd is lsock:
                    self.accept(lsock)
                elif fd == wake_r:
                    try:
                        os.read(wake_r, 4096)
                    except OSError:
                        pass
                elif fd in self.out_fds:
                    try:
                        data = os.read(fd, READ_SIZE)
                    except OSError as e:
                        data = b"" if e.errno in (errno.EIO, errno.EBADF) else b""
                    if data:
                        self.broadcast(self.out_fds[fd], data)
                    else:
                        del self.out_fds[fd]
                        if fd != self.master:
                            os.close(fd)
                else:
                    for c in list(self.clients):
                        if c.sock is fd:
                            self.client_input(c)
            while True:
                try:
                    wpid, wstatus = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if wpid == 0:
                    break
                if wpid == self.pid:
                    if os.WIFEXITED(wstatus):
                        status = os.WEXITSTATUS(wstatus)
                    else:
                        status = 128 + os.WTERMSIG(wstatus)
            if status is None and self.pid and not os.path.exists("/proc/%d" % self.pid):
                status = 255  # not our child any more and gone: we cannot know its code
            if status is not None:
                if not self.out_fds or (not r and self.drained_enough()):
                    for fd in list(self.out_fds):
                        if fd != self.master:
                            os.close(fd)
                    self.out_fds = {}
                    return status
            elif due is not None and time.time() >= due:
                self.run_health(started)

    def drained_enough(self):
        # after the init exited, stop once no output arrived within one poll (a pty may never EOF)
        return True


def should_restart(policy, exit_code, count, stopped):
    name = policy.get("name", "no")
    if stopped or name in ("no", ""):
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = policy.get("max", 0)
        return exit_code != 0 and (limit == 0 or count < limit)
    return False


def runc_error(log_path, stderr):
    msg = ""
    if log_path:
        try:
            with open(log_path) as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("level") in ("error", "fatal"):
                        msg = entry.get("msg", msg)
        except OSError:
            pass
    if not msg:
        lines = [x for x in stderr.strip().splitlines() if x.strip()]
        msg = lines[-1] if lines else "runc failed"
    return msg


def main():
    cfg_path, sync_fd = sys.argv[1], int(sys.argv[2])
    sync = socket.socket(fileno=sync_fd)
    # detach from the CLI completely: second fork, so the CLI's wait() returns at once
    if os.fork() != 0:
        os._exit(0)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    if cfg_path == "-":  # started ahead of time: the CLI sends the config's path once written
        msg = recv_line(sync)
        if not msg or "config" not in msg:
            os._exit(0)
        cfg_path = msg["config"]
    with open(cfg_path) as f:
        cfg = json.load(f)
    monitor = Monitor(cfg)
    with open(os.path.join(cfg["run_dir"], "monitor.pid"), "w") as f:
        f.write("%d %s\n" % (os.getpid(), proc_start_time(os.getpid())))
    try:
        code = monitor.serve(sync)
    except Exception as e:  # record the failure where ps/inspect can see it
        try:
            monitor.update_state(status="exited", exit_code=255, error="monitor: %s" % e,
                                 finished_at=now_rfc3339(), pid=0)
            send_line(sync, {"error": "monitor: %s" % e})
        except Exception:
            pass
        code = 1
    os._exit(code)


def proc_start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


if __name__ == "__main__":
    main()
