"""The logs of a project's containers, as docker compose shows them: `web-1  | line`, one
colour per container, merged from several containers (in time order when not following, as
they come when following). Reads the engine's json-file logs; never prints: lines go to a
`write(text)` callback."""
from __future__ import annotations

import threading
import time
from typing import Callable

# docker compose's rainbow: cyan, yellow, green, magenta, blue, then their intense forms
_COLORS = ["36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1"]


def display_name(project_name: str, c) -> str:
    """The container's name without `<project>-` (docker compose's log prefix): `web-1`
    (`web_1` for a container named with --compatibility)."""
    for prefix in (project_name + "-", project_name + "_"):
        if c.name.startswith(prefix):
            return c.name[len(prefix):]
    return c.name


class Formatter:
    """Prefixes (`name  | `: padded to one more than the longest name, as docker compose does;
    coloured when asked)."""

    def __init__(self, names: list[str], color: bool = True, prefix: bool = True, timestamps: bool = False):
        self.width = max((len(n) + 1 for n in names), default=0)
        self.color = color
        self.prefix = prefix
        self.timestamps = timestamps
        self.colors: dict[str, str] = {}
        for n in names:
            self.add(n)

    def add(self, name: str) -> None:
        if name not in self.colors:
            self.colors[name] = _COLORS[len(self.colors) % len(_COLORS)]
            self.width = max(self.width, len(name) + 1)

    def paint(self, name: str, text: str) -> str:
        if not self.color:
            return text
        return f"\x1b[{self.colors.get(name, '0')}m{text}\x1b[0m"

    def line(self, name: str, entry: dict) -> str:
        text = entry.get("log", "")
        if not text.endswith("\n"):
            text += "\n"
        if self.timestamps:
            text = f"{entry.get('time', '')} {text}"
        if not self.prefix:
            return text
        return self.paint(name, f"{name:<{self.width}} | ") + text

    def exited(self, name: str, code: int) -> str:
        return self.paint(name, f"{name} exited with code {code}") + "\n"


def read_merged(store, containers: list, names: dict[str, str], fmt: Formatter, tail: int | None,
                since: float | None = None, until: float | None = None) -> list[tuple[str, bool]]:
    """Every container's log (each cut to its last `tail` lines), in time order: (text, from
    stderr)."""
    from nerdpy.engine.containers.logs import _parse_ts, read_logs

    entries = []
    for i, c in enumerate(containers):
        for seq, e in enumerate(read_logs(store, c, tail=tail, since=since, until=until)):
            entries.append((_parse_ts(e.get("time", "")), i, seq, names[c.id], e))
    entries.sort(key=lambda x: (x[0], x[1], x[2]))
    return [(fmt.line(name, e), e.get("stream") == "stderr") for _t, _i, _s, name, e in entries]


class Follower:
    """Follow several containers' logs in threads until each has exited (or `stop()`):
    `write(text, from_stderr)` for each formatted line, `on_exit(container, code)` when one ends."""

    def __init__(self, store, fmt: Formatter, write: Callable[[str, bool], None],
                 on_exit: Callable[[object, int], None] | None = None):
        self.store = store
        self.fmt = fmt
        self.write = write
        self.on_exit = on_exit
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def add(self, c, name: str, *, tail: int | None = None, since: float | None = None,
            pending_start: Callable[[], bool] | None = None, report_exit: bool = False) -> None:
        """Follow `c`. `pending_start()` says the container has yet to be (re)started (so a
        created or earlier-exited container is waited for, not taken as ended)."""
        self.fmt.add(name)
        t = threading.Thread(target=self._follow, args=(c, name, tail, since, pending_start, report_exit),
                             daemon=True)
        self.threads.append(t)
        t.start()

    def _alive(self, c, pending_start) -> bool:
        from nerdpy.engine.containers.records import ContainerNotFound, container_state, find_container

        if self.stopping.is_set():
            return False
        try:
            find_container(self.store, c.id)
        except ContainerNotFound:
            return False
        st = container_state(self.store, c)
        if st.running:
            return True
        # not started yet, or exited from an earlier run and about to start again: `up` says
        # when it is done starting (an exited container's stale state must not end the follow)
        return bool(pending_start and pending_start())

    def _follow(self, c, name, tail, since, pending_start, report_exit) -> None:
        from nerdpy.engine.containers.records import container_state
        from nerdpy.engine.containers.logs import read_logs

        try:
            for e in read_logs(self.store, c, tail=tail, since=since, follow=True,
                               running=lambda: self._alive(c, pending_start)):
                text = self.fmt.line(name, e)
                with self.lock:
                    self.write(text, e.get("stream") == "stderr")
        except (OSError, ValueError):
            pass
        if report_exit and not self.stopping.is_set():
            st = container_state(self.store, c)
            if st.status not in ("created",):
                with self.lock:
                    self.write(self.fmt.exited(name, st.exit_code), False)
                if self.on_exit is not None:
                    self.on_exit(c, st.exit_code)

    def wait(self, timeout: float | None = None) -> bool:
        """True once every follower has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self.threads:
            while t.is_alive():
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                t.join(0.1)
        return True

    def alive(self) -> int:
        return sum(1 for t in self.threads if t.is_alive())

    def stop(self) -> None:
        self.stopping.set()
