"""`update`: change a container's resource limits and restart policy, running or not.

The new values go into the stored spec (so the next start builds its OCI spec with them and
`inspect` shows them) after `check_spec` accepts the whole spec; a running container gets them
at once through `runc update` (cgroup v1, v2 and hybrid alike), and its monitor reads an updated
restart policy from `restart-policy.json` in its run directory. Flag values are converted with
the options module's parsers (docker's units and messages)."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

from nerdpy.engine.containers.records import Container, StoredSpec, container_state, run_dir
from nerdpy.engine.errors import Conflict, InvalidArgument, NerdpyError
from nerdpy.engine.store import Store

# update's flags -> StoredSpec attributes (those after cpu_shares arrive with issue 15's run flags)
FIELDS = ("memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares", "pids_limit", "restart",
          "cpu_period", "cpu_quota", "cpuset_cpus", "cpuset_mems", "blkio_weight")


@dataclass
class UpdateRequest:
    """What to change; None leaves a value as it is."""
    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None
    restart: str | None = None

    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


def parse_update(flags: dict) -> UpdateRequest:
    """docker update's flags (strings as typed, None when not given) -> an UpdateRequest."""
    from nerdpy.engine.containers.options import _cpus, _int_flag, _ram_in_bytes, parse_restart

    def size(name: str, flag: str) -> int | None:
        v = flags.get(name)
        if not v:
            return None
        if name == "memory_swap" and v.strip() == "-1":
            return -1
        return _ram_in_bytes(v, flag)

    req = UpdateRequest(
        memory=size("memory", "--memory"),
        memory_swap=size("memory_swap", "--memory-swap"),
        memory_reservation=size("memory_reservation", "--memory-reservation"),
        cpu_shares=_int_flag(flags.get("cpu_shares"), "--cpu-shares", 0),
        cpu_period=_int_flag(flags.get("cpu_period"), "--cpu-period", 0),
        cpu_quota=_int_flag(flags.get("cpu_quota"), "--cpu-quota", -1),
        cpuset_cpus=flags.get("cpuset_cpus") or None,
        cpuset_mems=flags.get("cpuset_mems") or None,
        pids_limit=_int_flag(flags.get("pids_limit"), "--pids-limit", -1),
        blkio_weight=_int_flag(flags.get("blkio_weight"), "--blkio-weight", 0),
        restart=flags.get("restart") or None,
    )
    if flags.get("cpus"):
        req.cpus = _cpus(flags["cpus"]) or 0.0
    if req.memory == 0:
        req.memory = None
    if req.blkio_weight is not None and req.blkio_weight != 0 and not 10 <= req.blkio_weight <= 1000:
        raise InvalidArgument(f"invalid argument {req.blkio_weight!r} for --blkio-weight: "
                              "range of blkio weight is from 10 to 1000")
    if req.cpu_period is not None and req.cpu_period and not 1000 <= req.cpu_period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if req.cpu_quota is not None and 0 < req.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    for cpuset, flag in ((req.cpuset_cpus, "--cpuset-cpus"), (req.cpuset_mems, "--cpuset-mems")):
        if cpuset is not None and not _valid_cpuset(cpuset):
            raise InvalidArgument(f"invalid argument {cpuset!r} for {flag}: not a list of numbers and ranges")
    if req.restart is not None:
        parse_restart(req.restart)
    if req.empty():
        raise InvalidArgument("you must provide one or more flags when using this command")
    return req


def _valid_cpuset(text: str) -> bool:
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and (not hi.isdigit() or int(hi) < int(lo))):
            return False
    return True


def supported(field: str) -> bool:
    return field in {f.name for f in dataclasses.fields(StoredSpec)}


def updated_spec(spec: StoredSpec, req: UpdateRequest) -> StoredSpec:
    """The stored spec with the request applied, checked as `run` checks its flags (pure)."""
    from nerdpy.engine.containers.options import check_spec

    new = dataclasses.replace(spec)
    for name in FIELDS:
        value = getattr(req, name)
        if value is None:
            continue
        if not supported(name):
            raise InvalidArgument(f"update of {name.replace('_', '-')} is not supported by this nerdpy")
        setattr(new, name, value)
    if req.pids_limit is not None and req.pids_limit <= 0:
        new.pids_limit = None  # 0 and -1: unlimited
    if req.cpus is not None and req.cpus == 0:
        new.cpus = None
    if req.memory is not None and req.memory_swap is None and spec.memory_swap not in (None, -1) \
            and req.memory > spec.memory_swap:
        raise InvalidArgument("Memory limit should be smaller than already set memoryswap limit, "
                              "update the memoryswap at the same time")
    if new.cpus and (getattr(new, "cpu_quota", None) or getattr(new, "cpu_period", None)):
        if req.cpus is not None:
            raise Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if req.restart is not None and spec.auto_remove and req.restart != "no":
        raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
    check_spec(new)
    return new


def runc_update_args(new: StoredSpec, req: UpdateRequest, swap_accounting: bool) -> list[str]:
    """`runc update` flags that apply the request to a running container (pure)."""
    args: list[str] = []
    if req.memory is not None or req.memory_swap is not None:
        if new.memory:
            args += ["--memory", str(new.memory)]
        if swap_accounting and new.memory:
            swap = new.memory_swap if new.memory_swap is not None else new.memory * 2
            args += ["--memory-swap", str(swap if swap > 0 else -1)]
    if req.memory_reservation is not None:
        args += ["--memory-reservation", str(req.memory_reservation)]
    if req.cpu_shares is not None:
        args += ["--cpu-share", str(req.cpu_shares)]
    if req.cpus is not None:
        quota = int(new.cpus * 100000) if new.cpus else -1
        args += ["--cpu-period", "100000", "--cpu-quota", str(quota)]
    if req.cpu_period is not None:
        args += ["--cpu-period", str(req.cpu_period or 100000)]
    if req.cpu_quota is not None:
        args += ["--cpu-quota", str(req.cpu_quota or -1)]
    if req.cpuset_cpus is not None:
        args += ["--cpuset-cpus", req.cpuset_cpus]
    if req.cpuset_mems is not None:
        args += ["--cpuset-mems", req.cpuset_mems]
    if req.pids_limit is not None:
        args += ["--pids-limit", str(req.pids_limit if req.pids_limit > 0 else -1)]
    if req.blkio_weight is not None and req.blkio_weight:
        args += ["--blkio-weight", str(req.blkio_weight)]
    return args


def update_container(store: Store, c: Container, req: UpdateRequest) -> None:
    """Apply `req` to the container: cgroups first when it runs (nothing stored if runc refuses),
    then the stored spec, then the monitor's restart policy."""
    from nerdpy.engine.containers.options import parse_restart
    from nerdpy.engine.runtime.cgroups import swap_accounting
    from nerdpy.engine.containers.records import container_runtime

    new = updated_spec(c.spec, req)
    state = container_state(store, c)
    if state.running and state.status != "restarting":
        args = runc_update_args(new, req, swap_accounting())
        if args:
            runc = container_runtime(store, c.spec)
            r = runc._run("update", *args, c.id, check=False)
            if r.returncode != 0:
                from nerdpy.engine.runtime.runc import clean_runc_error

                raise NerdpyError("Cannot update container " + c.id + ": "
                                  + clean_runc_error(r.stderr.decode(errors="replace")))
    changed = {k: v for k, v in new.to_json().items() if k in FIELDS}
    with store.db.write() as cur:  # only update's keys: others may be written concurrently
        row = cur.execute("SELECT config FROM containers WHERE namespace = ? AND id = ?",
                          (store.namespace, c.id)).fetchone()
        if row is None:
            from nerdpy.engine.errors import ContainerNotFound

            raise ContainerNotFound(f"No such container: {c.name}")
        record = json.loads(row["config"])
        record.update(changed)
        cur.execute("UPDATE containers SET config = ? WHERE namespace = ? AND id = ?",
                    (json.dumps(record), store.namespace, c.id))
    c.spec = new
    if req.restart is not None:
        rdir = run_dir(store, c.id)
        if os.path.isdir(rdir):
            from nerdpy.engine.util.fs import write_json_atomic

            write_json_atomic(os.path.join(rdir, "restart-policy.json"), parse_restart(new.restart))
    from nerdpy.engine.containers.records import container_event

    container_event(store, c, "update")
