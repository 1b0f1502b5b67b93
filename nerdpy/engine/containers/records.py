"""Containers: records, state, and the lifecycle (create, start, stop, kill, remove, cleanup).

A container is a DB row (what was asked for), an active snapshot (its writable layer), a
directory under `<data-root>/containers/<ns>/<id>` (bundle, log, state written by the monitor)
and, while it runs, a directory under `<run-root>/<ns>/<id>` (the monitor's pid and sockets).
There is no daemon: the state users see is read from the monitor's records, checked against
the processes that really exist.
"""
from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, field, fields

from nerdpy.engine.errors import (  # noqa: F401 (ContainerNotFound, CommandNot*: importable from here too)
    CommandNotFound, CommandNotInvokable, Conflict, ContainerNotFound, InvalidArgument, NerdpyError,
)
from nerdpy.engine.store import Store
from nerdpy.engine.util.lean import lean_dataclass


@lean_dataclass
class MountSpec:
    type: str                 # bind, volume, tmpfs
    target: str
    source: str = ""
    readonly: bool = False
    options: dict = field(default_factory=dict)   # tmpfs size/mode, bind propagation, nocopy


@lean_dataclass
class ContainerSpec:
    """What `run`/`create` asked for, in docker's terms."""

    image: str
    name: str | None = None
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    group_add: list[str] = field(default_factory=list)
    hostname: str | None = None
    domainname: str = ""
    tty: bool = False
    stdin_open: bool = False
    stdin_once: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    auto_remove: bool = False
    restart: str = "no"
    mounts: list[MountSpec] = field(default_factory=list)
    read_only: bool = False
    # networking, in docker's terms: `network` is the mode (bridge, none, host, container:<id|name>,
    # or a user network's name); `networks` the attachments for bridge and user networks, each
    # {"name", "aliases": [...], "ip", "mac"} (empty: one attachment to `network`)
    network: str = "bridge"
    networks: list[dict] = field(default_factory=list)
    publish: list[str] = field(default_factory=list)      # -p in any docker form
    publish_all: bool = False                              # -P
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)  # name:ip or name:host-gateway
    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    ulimits: list[tuple[str, int, int]] = field(default_factory=list)
    shm_size: int | None = None
    sysctls: dict[str, str] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    init: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    healthcheck: dict | None = None       # docker's Healthcheck: Test, Interval, Timeout, Retries, StartPeriod (ns)
    no_healthcheck: bool = False
    log_opts: dict[str, str] = field(default_factory=dict)
    oom_score_adj: int | None = None
    pid: str = ""                      # "" (own namespace), "host", or "container:<name|id>"
    expose: list[str] = field(default_factory=list)      # --expose: more ExposedPorts (80, 53/udp)
    # namespaces, cgroup resources, volumes-from, runtime, CDI devices (engine/containers/resources.py)
    ipc: str = ""                      # "" (docker's default: private), none, private, shareable, host, container:<x>
    uts: str = ""                      # "" (own namespace) or host
    cgroupns: str = ""                 # "" (docker's default for the host), host, private
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    cpu_period: int | None = None      # microseconds
    cpu_quota: int | None = None       # microseconds (-1: none)
    memory_swappiness: int | None = None
    oom_kill_disable: bool = False
    blkio_weight: int | None = None
    device_read_bps: list[str] = field(default_factory=list)     # PATH:RATE, as the flags take them
    device_write_bps: list[str] = field(default_factory=list)
    device_read_iops: list[str] = field(default_factory=list)
    device_write_iops: list[str] = field(default_factory=list)
    volumes_from: list[str] = field(default_factory=list)        # NAME[:ro|rw]
    runtime: str = ""                  # "" (runc) or a runtime named in nerdpy.toml [runtimes.NAME]
    gpus: str = ""                     # docker's --gpus request, resolved through CDI (nvidia.com/gpu)


# what create resolves from the image, stored under these keys (records of every version have them)
_STORED_KEYS = {"args": "_args", "resolved_workdir": "_workdir", "image_config": "_image_config",
                "image_name": "_image_name"}


@lean_dataclass
class StoredSpec(ContainerSpec):
    """A container's record: the ContainerSpec asked for, plus what `create` resolved from the
    image. Stored as JSON (`to_json`); `from_json` reads records of any version (unknown keys
    ignored, missing ones defaulted; no `network` means a record from before networking: none)."""

    image: str = ""
    args: list[str] = field(default_factory=list)          # the process's argv (entrypoint + cmd)
    resolved_workdir: str = "/"                             # workdir, or the image's, or /
    image_config: dict = field(default_factory=dict)       # the image's config (+ --expose ports)
    image_name: str = ""                                    # the image's name in the store at create

    def to_json(self) -> dict:
        out = asdict(self)
        for name, key in _STORED_KEYS.items():
            out[key] = out.pop(name)
        return out

    @classmethod
    def from_json(cls, data: dict) -> StoredSpec:
        # (every `ps` reads every record: filled field by field, without __init__'s checks)
        obj = cls.__new__(cls)
        d = obj.__dict__
        for name, key, default, factory in _json_plan(cls):
            value = data.get(key)
            if value is None:  # missing, or null: the default (None for the fields that may be None)
                value = default if default is not MISSING else factory()
            d[name] = value
        if "network" not in data:
            d["network"] = "none"
        d["mounts"] = [m if isinstance(m, MountSpec) else
                       MountSpec(**{k: v for k, v in m.items() if k in _MOUNT_FIELDS})
                       for m in d["mounts"]]
        d["ulimits"] = [tuple(u) for u in d["ulimits"]]
        return obj

    @classmethod
    def of(cls, spec: ContainerSpec, **resolved) -> StoredSpec:
        """`spec` with what create resolved (args, resolved_workdir, image_config, image_name)."""
        return cls(**{f.name: getattr(spec, f.name) for f in fields(ContainerSpec)}, **resolved)


_MOUNT_FIELDS = {"type", "target", "source", "readonly", "options"}
_JSON_PLANS: dict[type, tuple] = {}


def _json_plan(cls: type) -> tuple:
    """(field, JSON key, default, default factory) of each field of a StoredSpec class."""
    plan = _JSON_PLANS.get(cls)
    if plan is None:
        plan = _JSON_PLANS[cls] = tuple((f.name, _STORED_KEYS.get(f.name, f.name), f.default, f.default_factory)
                                        for f in fields(cls))
    return plan


@lean_dataclass
class Container:
    namespace: str
    id: str
    name: str
    image: str
    image_id: str
    spec: StoredSpec
    created_at: float

    @property
    def short_id(self) -> str:
        return self.id[:12]


@lean_dataclass
class ContainerState:
    status: str = "created"      # created, running, paused, restarting, exited, dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    restart_count: int = 0
    health: dict | None = None
    monitor_alive: bool = False
    oom_killed: bool = False     # the memory cgroup killed a process of the last run
    log_dropped: int = 0         # log lines lost to a full disk that the log itself could not mark

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


# paths ------------------------------------------------------------------------------------
def container_dir(store: Store, cid: str) -> str:
    return os.path.join(store.data_root, "containers", store.namespace, cid)


def run_dir(store: Store, cid: str) -> str:
    return os.path.join(store.settings.run_root, store.namespace, cid)


def runc_root(store: Store) -> str:
    return os.path.join(store.settings.run_root, "runc", store.namespace)


def container_runtime(store: Store, spec=None):
    """The OCI runtime (a Runc wrapper) of a container's spec: runc, or the runtime its
    --runtime names in the settings (runc when that is no longer configured: to stop and delete)."""
    from nerdpy.engine.runtime.runc import Runc, runtime_binary

    try:
        binary, args = runtime_binary(store.settings, getattr(spec, "runtime", "") or "")
    except InvalidArgument:
        binary, args = store.settings.runc, []
    return Runc(runc_root(store), binary, args)


def log_path(store: Store, cid: str) -> str:
    return os.path.join(container_dir(store, cid), f"{cid}-json.log")


def snapshot_key(store: Store, cid: str) -> str:
    return f"{store.namespace}/{cid}"


# records ----------------------------------------------------------------------------------
def _row(r) -> Container:
    return Container(r["namespace"], r["id"], r["name"], r["image"], r["image_id"],
                     StoredSpec.from_json(json.loads(r["config"])), r["created_at"])


def list_containers(store: Store) -> list[Container]:
    rows = store.db.query("SELECT * FROM containers WHERE namespace = ? ORDER BY created_at DESC",
                          (store.namespace,))
    return [_row(r) for r in rows]


def find_container(store: Store, query: str) -> Container:
    """By full ID, exact name (with or without a leading slash) or unique ID prefix."""
    q = query.lstrip("/")
    if not q:
        raise InvalidArgument("container name or ID must not be empty")
    r = store.db.query_one("SELECT * FROM containers WHERE namespace = ? AND (id = ? OR name = ?)",
                           (store.namespace, q, q))
    if r is not None:
        return _row(r)
    if all(c in "0123456789abcdef" for c in q):
        rows = store.db.query("SELECT * FROM containers WHERE namespace = ? AND id LIKE ?",
                              (store.namespace, q + "%"))
        if len(rows) == 1:
            return _row(rows[0])
        if len(rows) > 1:
            raise InvalidArgument(f"multiple containers match the ID prefix {query!r}: use more characters")
    raise ContainerNotFound(f"No such container: {query}")


_ADJ = ("admiring adoring affectionate agitated amazing angry awesome blissful bold boring brave busy "
        "charming clever cool compassionate competent condescending confident cranky crazy dazzling "
        "determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic fervent "
        "festive flamboyant focused friendly frosty gallant gifted goofy gracious happy hardcore "
        "heuristic hopeful hungry infallible inspiring jolly jovial keen kind laughing loving lucid "
        "magical modest musing mystifying naughty nervous nice nifty nostalgic objective optimistic "
        "peaceful pedantic pensive practical priceless quirky quizzical relaxed reverent romantic sad "
        "serene sharp silly sleepy stoic strange stupefied suspicious sweet tender thirsty trusting "
        "upbeat vibrant vigilant vigorous wizardly wonderful xenodochial youthful zealous zen").split()
_NAMES = ("albattani allen almeida archimedes ardinghelli aryabhata austin babbage banach bardeen "
          "bartik bassi beaver bell benz bhabha bhaskara blackwell bohr booth borg bose bouman boyd "
          "brahmagupta brattain brown buck burnell cannon carson cartwright chandrasekhar chaplygin "
          "chatelet chatterjee chebyshev cohen colden cori cray curie darwin davinci dewdney dhawan "
          "diffie dijkstra dirac driscoll dubinsky easley edison einstein elbakyan elgamal elion "
          "ellis engelbart euclid euler faraday feistel fermat fermi feynman franklin gagarin galileo "
          "gates gauss germain goldberg goldstine goldwasser golick goodall gould greider grothendieck "
          "haibt hamilton haslett hawking heisenberg hellman hermann herschel hertz heyrovsky hodgkin "
          "hofstadter hoover hopper hugle hypatia jackson jang jennings jepsen johnson joliot jones "
          "kalam kapitsa kare keldysh keller kepler khayyam khorana kilby kirch knuth kowalevski "
          "lalande lamarr lamport leakey leavitt lederberg lehmann lewin lichterman liskov lovelace "
          "lumiere mahavira margulis matsumoto maxwell mayer mccarthy mcclintock mclaren mclean "
          "mcnulty meitner mendel mendeleev meninsky merkle mestorf mirzakhani montalcini moore morse "
          "moser murdock napier nash neumann newton nightingale nobel noether northcutt noyce panini "
          "pare pascal pasteur payne perlman pike poincare poitras proskuriakova ptolemy raman "
          "ramanujan rhodes ride ritchie robinson roentgen rosalind rubin saha sammet sanderson "
          "satoshi shamir shannon shaw shirley shockley shtern sinoussi snyder solomon spence "
          "stonebraker sutherland swanson swartz swirles taussig tesla tharp thompson torvalds tu "
          "turing varahamihira vaughan villani visvesvaraya volhard wescoff wilbur wiles williams "
          "williamson wilson wing wozniak wright wu yalow yonath zhukovsky").split()


def random_name() -> str:
    import secrets

    return f"{secrets.choice(_ADJ)}_{secrets.choice(_NAMES)}"


def _valid_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name) is not None


# state ------------------------------------------------------------------------------------
def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _proc_start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def monitor_alive(store: Store, cid: str) -> bool:
    try:
        with open(os.path.join(run_dir(store, cid), "monitor.pid")) as f:
            pid_s, start = f.read().split()
    except (OSError, ValueError):
        return False
    return _proc_start_time(int(pid_s)) == start


def container_state(store: Store, c: Container) -> ContainerState:
    st = _read_json(os.path.join(container_dir(store, c.id), "state.json"))
    if not st:
        # no record (never started, or the monitor's files are gone): what is true says
        pid = runc_init_pid(store, c.id)
        if pid:
            return ContainerState(status="running", pid=pid, monitor_alive=monitor_alive(store, c.id),
                                  error="the container's state record is gone; its exit status will not be recorded")
        return ContainerState(status="created")
    state = ContainerState(
        status=st.get("status", "created"),
        pid=st.get("pid", 0),
        exit_code=st.get("exit_code", 0),
        error=st.get("error", ""),
        started_at=st.get("started_at", ""),
        finished_at=st.get("finished_at", ""),
        restart_count=st.get("restart_count", 0),
        oom_killed=bool(st.get("oom_killed", False)),
        log_dropped=st.get("log_dropped", 0),
    )
    if state.status in ("running", "restarting"):
        state.monitor_alive = monitor_alive(store, c.id)
        if not state.monitor_alive:
            # the monitor died (kill -9, reboot): trust only what the kernel says
            if state.pid and os.path.exists(f"/proc/{state.pid}") and _runc_knows(store, c.id):
                state.error = "monitor is gone; exit status will not be recorded"
            else:
                state.status = "exited"
                state.exit_code = st.get("exit_code") or 255
                state.error = state.error or "monitor exited unexpectedly"
                state.pid = 0
        elif os.path.exists(os.path.join(run_dir(store, c.id), "paused")) and state.status == "running":
            state.status = "paused"
    if _has_healthcheck(c.spec):
        # the flags' healthcheck or the image's: the monitor's last record of it
        state.health = _read_json(os.path.join(container_dir(store, c.id), "health.json"))
        if state.health is None and state.status in ("running", "paused"):
            # no check has run yet: docker says starting from the start on
            state.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
    return state


def _has_healthcheck(spec) -> bool:
    """Whether the monitor runs a healthcheck: the flags' or the image's (not NONE, not disabled)."""
    if spec.no_healthcheck:
        return False
    test = (spec.healthcheck or {}).get("Test") or ((spec.image_config or {}).get("Healthcheck") or {}).get("Test")
    if not test or test[0] == "NONE":
        return False
    return not (test[0] in ("CMD", "CMD-SHELL") and len(test) < 2)  # ["CMD"]: nothing to run


def _runc_knows(store: Store, cid: str) -> bool:
    return os.path.exists(os.path.join(runc_root(store), cid, "state.json"))


def runc_init_pid(store: Store, cid: str) -> int:
    """The pid of the container's init by runc's own record, when that very process still
    exists (pid and start time match), else 0."""
    st = _read_json(os.path.join(runc_root(store), cid, "state.json"))
    if not st:
        return 0
    pid = st.get("init_process_pid") or 0
    if pid and _proc_start_time(pid) == str(st.get("init_process_start")):
        return pid
    return 0


def processes_alive(store: Store, cid: str) -> bool:
    """Whether anything of the container still lives: its monitor or its init process. What
    a repair must never remove the files of, whatever the records say."""
    return monitor_alive(store, cid) or bool(runc_init_pid(store, cid))


def mirror_record(store: Store, cid: str) -> None:
    """Copy the container's row to its directory (what a rebuild of the DB reads); call after a change."""
    from nerdpy.engine.content.sidecar import write_container_record

    row = store.db.query_one("SELECT * FROM containers WHERE namespace = ? AND id = ?", (store.namespace, cid))
    if row is not None and os.path.isdir(container_dir(store, cid)):
        write_container_record(container_dir(store, cid), dict(row))


# pause, unpause, rename, top (docker's `pause`, `unpause`, `rename`, `top`) -------------------
def pause_container(store: Store, c: Container) -> None:
    """Freeze every process of the container (runc pause); `ps`/`inspect` then show it paused."""

    state = container_state(store, c)
    if state.status == "paused":
        raise Conflict(f"container {c.name} is already paused")
    if state.status != "running":
        raise Conflict(f"container {c.name} is not running")
    if store.settings.rootless_uid is not None:
        raise NerdpyError("pause needs the container's own cgroup (the freezer), which rootless "
                          "containers do not have on this host")
    container_runtime(store, c.spec).pause(c.id)
    open(os.path.join(run_dir(store, c.id), "paused"), "w").close()
    container_event(store, c, "pause")


def unpause_container(store: Store, c: Container) -> None:

    if container_state(store, c).status != "paused":
        raise Conflict(f"container {c.name} is not paused")
    container_runtime(store, c.spec).resume(c.id)
    try:
        os.unlink(os.path.join(run_dir(store, c.id), "paused"))
    except FileNotFoundError:
        pass
    container_event(store, c, "unpause")


def rename_container(store: Store, c: Container, new_name: str) -> None:
    new_name = new_name.lstrip("/") if new_name else new_name
    if not new_name:
        raise InvalidArgument("neither old nor new names may be empty")
    if not _valid_name(new_name):
        raise InvalidArgument(f"invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if new_name == c.name:
        raise InvalidArgument("renaming a container with the same name as its current name")
    with store.db.write() as cur:
        clash = cur.execute("SELECT id FROM containers WHERE namespace = ? AND name = ?",
                            (store.namespace, new_name)).fetchone()
        if clash is not None:
            raise Conflict(f'the container name "/{new_name}" is already in use by container "{clash["id"]}". '
                           "You have to remove (or rename) that container to be able to reuse that name")
        cur.execute("UPDATE containers SET name = ? WHERE namespace = ? AND id = ?",
                    (new_name, store.namespace, c.id))
    old, c.name = c.name, new_name
    mirror_record(store, c.id)
    container_event(store, c, "rename", oldName="/" + old)


def container_event(store: Store, c: Container, action: str | tuple[str, ...], **extra) -> None:
    """Record docker's container event `action` (attributes: image, name, and `extra`); a tuple
    of actions records each, in one write."""
    from nerdpy.engine.system.journal import record_events

    labels = c.spec.labels or {}
    record_events(store, "container", [action] if isinstance(action, str) else list(action), c.id,
                  {**labels, "image": c.image, "name": c.name, **extra})


def container_top(store: Store, c: Container, ps_args: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """docker top: run `ps` (default `-ef`) on the host and keep the container's processes
    (the pids from runc, i.e. from the container's cgroup). Returns (titles, rows)."""
    import subprocess


    state = container_state(store, c)
    if not state.running or state.status == "restarting":
        raise Conflict(f"container {c.name} is not running")
    pids = set(container_runtime(store, c.spec).ps(c.id))
    args = list(ps_args) if ps_args else ["-ef"]
    try:
        r = subprocess.run(["ps", *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise NerdpyError("ps not found: install procps") from None
    if r.returncode != 0:
        raise InvalidArgument(f"ps: {r.stderr.strip() or 'failed'}")
    lines = r.stdout.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidArgument("couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    rows: list[list[str]] = []
    inside = False
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        if fields[pid_index] == "-":          # thread lines (ps -m) follow their process
            if inside:
                rows.append(fields[:len(titles) - 1] + [" ".join(fields[len(titles) - 1:])])
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise InvalidArgument(f"unexpected pid {fields[pid_index]!r} in ps output") from None
        inside = pid in pids
        if inside:
            rows.append(fields[:len(titles) - 1] + [" ".join(fields[len(titles) - 1:])])
    container_event(store, c, "top")
    return titles, rows
