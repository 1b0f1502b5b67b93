"""Running a compose project on the embedded engine: up, down, start, stop, run, ...

A client of nerdpy.engine's public API only; reports progress through `on_event(Event)` and
warnings through `on_warning(str)`, and never prints.

What `up` does, in docker compose's order:
1. orphans (containers of services no longer in the files): warned about, or removed;
2. networks `<project>_<key>` and volumes `<project>_<key>` created (labels
   com.docker.compose.project / .network / .volume), external ones checked;
3. images pulled as the pull policy says (in parallel);
4. containers converged, per dependency level and in parallel within one: a container whose
   config hash (or image) changed is recreated (stopped, renamed aside, its replacement
   created with its anonymous volumes, those of `volumes:` entries without a source and of the
   image's VOLUMEs, matched by target; `up -V` gives it new ones), then removed); missing
   replicas are created, extra ones removed;
5. containers started: one thread per service, each waiting for its dependencies' conditions
   (started, healthy: the health status the monitor records; completed successfully: exit 0),
   so independent services start at once and a dependent starts as soon as it may.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from compose import model as m
from compose.convert import LABEL_IMAGE, Overrides, check_service, container_spec
from compose.errors import Aborted, ComposeError, ComposeRuntimeError, DependencyError  # noqa: F401
from compose.pulltimes import due, pull_interval, record_pull
from compose.render import config_hash, definition_hash, network_to_dict, volume_def_to_dict


@dataclass
class Event:
    """One change of state. kind Network, Volume, Container: `name` is the object's name; kind
    Image: `name` the image, `detail` the service it is pulled for (Pulling, Pulled, Error);
    kind Layer: `name` a layer's short digest, `detail` the service, with the engine's pull
    status (Waiting, Downloading, Extracting, Pull complete, ...) and `current`/`total` bytes."""
    kind: str          # Network, Volume, Container, Image, Layer
    name: str
    status: str        # Creating, Created, Starting, Started, Waiting, Healthy, Exited, Stopping, ...
    detail: str = ""
    current: int = 0
    total: int = 0


def labels_of(c) -> dict:
    return c.spec.labels or {}


def number_of(c) -> int:
    try:
        return int(labels_of(c).get(m.LABEL_NUMBER) or 0)
    except ValueError:
        return 0


def service_of(c) -> str:
    return labels_of(c).get(m.LABEL_SERVICE, "")


def is_oneoff(c) -> bool:
    return labels_of(c).get(m.LABEL_ONEOFF) == "True"


def run_parallel(calls: list[Callable[[], object]]) -> list:
    """Run the calls in threads; re-raise the first error once all have finished."""
    if len(calls) == 1:
        return [calls[0]()]
    results: list = [None] * len(calls)
    errors: list[tuple[float, BaseException]] = []

    def one(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append((time.monotonic(), e))

    threads = [threading.Thread(target=one, args=(i, fn), daemon=True) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
    if errors:
        errors.sort(key=lambda x: (isinstance(x[1], DependencyError), x[0]))
        raise errors[0][1]
    return results


def _engine_error(e: Exception, what: str) -> ComposeRuntimeError:
    return ComposeRuntimeError(f"{what}: {e}")


class Runtime:
    def __init__(self, store, project: m.Project, on_event: Callable[[Event], None] | None = None,
                 on_warning: Callable[[str], None] | None = None, compatibility: bool = False):
        self.store = store
        self.project = project
        # `--compatibility`: container names joined with `_`, as docker compose v1 named them
        self.separator = "_" if compatibility else "-"
        self.recreated: set[str] = set()     # services with a container recreated by this run
        self._emit = on_event or (lambda e: None)
        self.warn = on_warning or (lambda msg: None)
        self.abort = threading.Event()
        self._lock = threading.Lock()
        self.renew_anon_volumes = False      # `up -V`: recreated containers get new anonymous volumes
        self.inherited: dict[tuple[str, int], dict[str, str]] = {}   # anonymous volumes of removed containers

    @property
    def state_dir(self) -> str:
        """Files the project's containers mount that nerdpy writes (secrets from the
        environment, configs with inline content)."""
        import os

        return os.path.join(self.store.data_root, "compose", self.store.namespace, self.project.name)

    def emit(self, kind: str, name: str, status: str, detail: str = "", current: int = 0, total: int = 0) -> None:
        with self._lock:
            self._emit(Event(kind, name, status, detail, current, total))

    # -- discovery ----------------------------------------------------------------------------
    def containers(self, services: Iterable[str] | None = None, oneoff: bool | None = False) -> list:
        """The project's containers (by label), in service file order, then by number.
        `oneoff`: False only service containers, True only `run` containers, None both."""
        from nerdpy.engine.containers.records import list_containers

        wanted = set(services) if services is not None else None
        order = {n: i for i, n in enumerate(list(self.project.services) + list(self.project.disabled_services))}
        out = []
        for c in list_containers(self.store):
            lb = labels_of(c)
            if lb.get(m.LABEL_PROJECT) != self.project.name:
                continue
            if oneoff is not None and is_oneoff(c) != oneoff:
                continue
            if wanted is not None and service_of(c) not in wanted:
                continue
            out.append(c)
        out.sort(key=lambda c: (order.get(service_of(c), len(order)), is_oneoff(c), number_of(c), c.created_at))
        return out

    def service_containers(self, name: str) -> list:
        return self.containers([name])

    def orphans(self) -> list:
        known = set(self.project.services) | set(self.project.disabled_services)
        return [c for c in self.containers(oneoff=None) if service_of(c) not in known]

    def state(self, c):
        from nerdpy.engine.containers.records import container_state

        return container_state(self.store, c)

    def select(self, services: list[str] | None, with_deps: bool = True) -> list[str]:
        """Service names (validated; profiles already applied by the loader) in file order,
        with their dependencies unless `with_deps` is False."""
        names = list(services) if services else list(self.project.services)
        for n in names:
            self.project.service(n)
        if with_deps:
            names = self.project.with_dependencies(names)
        return [n for n in self.project.services if n in names]

    def levels(self, names: list[str]) -> list[list[str]]:
        return m.dependency_levels(self.project.services, names)

    # -- networks and volumes ---------------------------------------------------------------------
    def ensure_networks(self, names: list[str]) -> None:
        from nerdpy.engine.network import NetworkExists
        from nerdpy.engine.network.networks import create_network, get_network

        used: list[str] = []
        for n in names:
            s = self.project.services[n]
            if s.network_mode:
                continue
            for key in s.networks:
                if key not in used:
                    used.append(key)
        for key in used:
            net = self.project.networks.get(key)
            if net is None:
                raise ComposeRuntimeError(f"service refers to undefined network {key}")
            existing = get_network(self.store, net.name)
            if net.external:
                if existing is None:
                    raise ComposeRuntimeError(f"network {net.name} declared as external, but could not be found")
                continue
            want = definition_hash(network_to_dict(net))
            if existing is not None:
                have = (existing.labels or {}).get(m.LABEL_CONFIG_HASH)
                if have is None or have == want:
                    continue
                self._recreate_network(existing)
            pool = net.ipam.config[0] if net.ipam and net.ipam.config else None
            labels = {m.LABEL_PROJECT: self.project.name, m.LABEL_NETWORK: key, **net.labels,
                      m.LABEL_CONFIG_HASH: want}
            self.emit("Network", net.name, "Creating")
            try:
                create_network(self.store, net.name, driver=net.driver or "bridge",
                               subnet=pool.subnet if pool else None, gateway=pool.gateway if pool else None,
                               ip_range=pool.ip_range if pool else None, internal=net.internal,
                               labels=labels, options=dict(net.driver_opts))
            except NetworkExists:
                pass
            except ComposeError:
                raise
            except Exception as e:
                raise _engine_error(e, f"network {net.name}") from None
            self.emit("Network", net.name, "Created")

    def _recreate_network(self, net) -> None:
        """A network whose definition changed: the project's containers on it are removed (their
        anonymous volumes kept for their replacements, which `create` makes), then the network."""
        from nerdpy.engine.network.networks import network_users, remove_network

        users = {cid for _, cid in network_users(self.store, net)}
        mine = [c for c in self.containers(oneoff=None) if c.id in users]
        if users - {c.id for c in mine}:
            raise ComposeRuntimeError(f"network {net.name} has changed but is used by containers outside project "
                                      f"{self.project.name}: disconnect them first")
        for c in mine:
            self._stop_one(c, None)
            if not is_oneoff(c):
                self.inherited[(service_of(c), number_of(c))] = {
                    mt.target: mt.source for mt in c.spec.mounts or []
                    if mt.type == "volume" and (mt.options or {}).get("anonymous") and mt.source}
            self._remove_one(c)
        self.emit("Network", net.name, "Removing")
        try:
            remove_network(self.store, net.name)
        except Exception as e:
            raise _engine_error(e, f"network {net.name}") from None
        self.emit("Network", net.name, "Removed")

    def ensure_volumes(self, names: list[str]) -> None:
        from nerdpy.engine.containers.volumes import create_volume, get_volume

        used = {v.source for n in names for v in self.project.services[n].volumes
                if v.type == "volume" and v.source}
        for key, vol in self.project.volumes.items():
            if key not in used:
                continue
            existing = get_volume(self.store, vol.name)
            if vol.external:
                if existing is None:
                    raise ComposeRuntimeError(f"external volume \"{vol.name}\" not found")
                continue
            want = definition_hash(volume_def_to_dict(vol))
            if existing is not None:
                have = existing.labels.get(m.LABEL_CONFIG_HASH)
                if have is not None and have != want:
                    self.warn(f"volume {vol.name} exists but doesn't match the configuration in the compose file: "
                              "kept with its data (`down -v` removes it, the next `up` creates it anew)")
                continue
            self.emit("Volume", vol.name, "Creating")
            try:
                create_volume(self.store, vol.name,
                              labels={m.LABEL_PROJECT: self.project.name, m.LABEL_VOLUME: key, **vol.labels,
                                      m.LABEL_CONFIG_HASH: want},
                              driver=vol.driver or "local", options=dict(vol.driver_opts) or None)
            except Exception as e:
                raise _engine_error(e, f"volume {vol.name}") from None
            self.emit("Volume", vol.name, "Created")

    # -- images -------------------------------------------------------------------------------------
    def ensure_images(self, names: list[str], policy: str | None = None, progress=None) -> None:
        """Pull what the pull policy asks for (`policy` overrides the services' pull_policy:
        always, missing, never; a service's daily, weekly, every_<duration> pull again once that
        long has passed since the last pull, see compose.pulltimes), one thread per image. A
        service with `build:` whose image cannot be had fails with how to provide it."""
        from nerdpy.engine.images.image import lookup_images

        todo: dict[str, tuple[m.Service, str]] = {}
        buildable: dict[str, m.Service] = {}
        for n in names:
            s = self.project.services[n]
            if not s.image:
                raise ComposeRuntimeError(f"service {n!r} has no image (nerdpy does not build images)")
            pol = policy or s.pull_policy or "missing"
            have = bool(lookup_images(self.store, s.image))
            if s.build is not None or pol == "build":
                if not have and pol in ("never", "build"):
                    raise ComposeRuntimeError(build_hint(s, "is not in the store"))
                if not have:
                    buildable[s.image] = s
            if pol == "build":
                continue
            if pol == "never":
                if not have:
                    raise ComposeRuntimeError(f"service {n!r}: image {s.image} not found and pull_policy is never")
                continue
            if pol == "always" or not have:
                todo.setdefault(s.image, (s, pol))
            elif pull_interval(pol) is not None and due(self.store, s.image, pol, have):
                todo.setdefault(s.image, (s, pol))

        def one(img: str, s: m.Service) -> None:
            try:
                self.pull_one(s, img, progress)
            except ComposeRuntimeError as e:
                if img in buildable:  # docker compose would build it now
                    raise ComposeRuntimeError(build_hint(buildable[img], f"could not be pulled ({e})")) from None
                raise

        run_parallel([lambda img=img, s=s: one(img, s) for img, (s, _) in todo.items()])

    def pull_one(self, s: m.Service, image: str, progress=None) -> None:
        from nerdpy.engine.distribution.pull import pull_image

        def on_layer(ev) -> None:
            if progress is not None:
                progress(ev)
            self.emit("Layer", ev.id, ev.status, s.name, ev.current, ev.total)

        self.emit("Image", image, "Pulling", s.name)
        try:
            pull_image(self.store, image, platform=s.platform, progress=on_layer)
        except Exception as e:
            self.emit("Image", image, "Error", s.name)
            raise _engine_error(e, f"pull {image}") from None
        record_pull(self.store, image)
        self.emit("Image", image, "Pulled", s.name)

    def pull(self, names: list[str], ignore_failures: bool = False, progress=None) -> list[str]:
        """`compose pull`: every service's image (pull_policy never/build skipped). Returns the
        failures' messages when `ignore_failures`."""
        seen: dict[str, m.Service] = {}
        again: list[tuple[m.Service, m.Service]] = []
        for n in names:
            s = self.project.services[n]
            if s.image and s.pull_policy not in ("never", "build"):
                if s.image in seen:
                    again.append((s, seen[s.image]))
                else:
                    seen[s.image] = s
        for s, first in again:
            self.emit("Image", s.image, f"Skipped - Image is already being pulled by {first.name}", s.name)
        failures: list[str] = []

        def one(img, s):
            try:
                self.pull_one(s, img, progress)
            except ComposeRuntimeError as e:
                if not ignore_failures:
                    raise
                failures.append(str(e))

        run_parallel([lambda img=img, s=s: one(img, s) for img, s in seen.items()])
        return failures

    # -- containers: create / converge ---------------------------------------------------------------
    def _image_id(self, s: m.Service) -> str:
        from nerdpy.engine.images.image import resolve_image

        try:
            return resolve_image(self.store, s.image).config
        except Exception as e:
            raise _engine_error(e, f"service {s.name}") from None

    def _network_mode(self, s: m.Service) -> str | None:
        mode = s.network_mode
        if not mode or not mode.startswith("service:"):
            return None
        dep = mode.split(":", 1)[1]
        cs = self.service_containers(dep)
        if not cs:
            raise ComposeRuntimeError(f"service {s.name!r} uses network_mode {mode} but {dep} has no container")
        return f"container:{cs[0].name}"

    def container_name(self, s: m.Service, number: int) -> str:
        sep = self.separator
        return s.container_name or f"{self.project.name}{sep}{s.name}{sep}{number}"

    def _create_one(self, s: m.Service, number: int, image_id: str, anon: dict | None = None,
                    name: str | None = None):
        from nerdpy.engine.containers.lifecycle import create_container

        name = name or self.container_name(s, number)
        self.emit("Container", name, "Creating")
        spec = container_spec(self.project, s, name, number, image_id=image_id,
                              network_mode=self._network_mode(s), anon_sources=anon, state_dir=self.state_dir)
        try:
            c = create_container(self.store, spec)
        except ComposeError:
            raise
        except Exception as e:
            raise _engine_error(e, f"create container {name}") from None
        self.emit("Container", name, "Created")
        return c

    def _recreate(self, s: m.Service, old, image_id: str, timeout: int | None):
        from nerdpy.engine.containers.records import rename_container
        from nerdpy.engine.containers.lifecycle import remove_container
        from nerdpy.engine.containers.volumes import remove_volume

        name = old.name
        self.emit("Container", name, "Recreate")
        self._stop_one(old, timeout, quiet=True)
        old_anon = {mt.target: mt.source for mt in old.spec.mounts or []
                    if mt.type == "volume" and (mt.options or {}).get("anonymous") and mt.source}
        anon = {} if self.renew_anon_volumes else self._inheritable(s, old_anon)
        rename_container(self.store, old, f"{old.id[:12]}_{name}")
        try:
            new = self._create_one(s, number_of(old), image_id, anon, name=name)
        except BaseException:
            try:
                rename_container(self.store, old, name)
            except Exception:
                pass
            raise
        remove_container(self.store, old, force=True, volumes=False)
        with self._lock:
            self.recreated.add(s.name)
        reused = {mt.source for mt in new.spec.mounts or []}
        for src in old_anon.values():
            if src not in reused:
                try:
                    remove_volume(self.store, src, force=True)
                except Exception:
                    pass
        self.emit("Container", name, "Recreated")
        return new

    def _inheritable(self, s: m.Service, old_anon: dict[str, str]) -> dict[str, str]:
        """The old container's anonymous volumes the new one takes over, by target (docker
        compose's rule): those of the service's `volumes:` entries without a source and of the
        new image's VOLUMEs, unless something else is mounted there now."""
        import os

        from nerdpy.engine.images.image import image_config, resolve_image

        try:
            img_vols = (image_config(self.store, resolve_image(self.store, s.image)).get("config") or {}).get("Volumes")
        except Exception:
            img_vols = None
        wanted = {os.path.normpath("/" + t.strip().lstrip("/")) for t in img_vols or {}}
        mounted = set()
        for v in s.volumes:
            if v.type == "volume" and not v.source:
                wanted.add(os.path.normpath(v.target))
            else:
                mounted.add(os.path.normpath(v.target))
        mounted |= {os.path.normpath(t.split(":", 1)[0]) for t in s.tmpfs}
        return {t: src for t, src in old_anon.items() if os.path.normpath(t) in wanted - mounted}

    def converge(self, name: str, *, scale: int | None = None, force_recreate: bool = False,
                 no_recreate: bool = False, timeout: int | None = None) -> list:
        """Bring the service's containers to the configuration: returns them by number."""
        s = self.project.services[name]
        n = s.scale if scale is None else scale
        if s.container_name and n > 1:
            raise ComposeRuntimeError(f'service "{name}" uses the custom container name "{s.container_name}": '
                                "a service with a container_name cannot be scaled above 1")
        image_id = self._image_id(s)
        want_hash = config_hash(s, self.project)
        existing = self.service_containers(name)
        keep, extra = existing[:n], existing[n:]
        run_parallel([lambda c=c: self._remove_one(c, stop=True, timeout=timeout) for c in reversed(extra)] or
                     [lambda: None])
        jobs = []
        for c in keep:
            lb = labels_of(c)
            diverged = lb.get(m.LABEL_CONFIG_HASH) != want_hash or lb.get(LABEL_IMAGE, image_id) != image_id
            if force_recreate or (diverged and not no_recreate):
                jobs.append(lambda c=c: self._recreate(s, c, image_id, timeout))
            else:
                jobs.append(lambda c=c: c)
        used = {number_of(c) for c in keep}
        free = (i for i in itertools.count(1) if i not in used)
        for num in itertools.islice(free, max(0, n - len(keep))):
            anon = self.inherited.pop((name, num), None)
            if anon and not self.renew_anon_volumes:
                anon = self._inheritable(s, anon)
            else:
                anon = None
            jobs.append(lambda num=num, anon=anon: self._create_one(s, num, image_id, anon))
        out = run_parallel(jobs) if jobs else []
        return sorted(out, key=number_of)

    def create(self, names: list[str], *, scale: dict[str, int] | None = None, force_recreate: bool = False,
               no_recreate: bool = False, timeout: int | None = None) -> dict[str, list]:
        """Converge the services per dependency level (a level's services in parallel)."""
        scale = scale or {}
        out: dict[str, list] = {}
        for level in self.levels(names):
            res = run_parallel([lambda n=n: self.converge(n, scale=scale.get(n), force_recreate=force_recreate,
                                                          no_recreate=no_recreate, timeout=timeout)
                                for n in level])
            out.update(zip(level, res))
        return {n: out[n] for n in names if n in out}

    # -- containers: start and dependency conditions ------------------------------------------------
    def _check_abort(self) -> None:
        if self.abort.is_set():
            raise Aborted("aborted")

    def wait_healthy(self, c) -> None:
        from nerdpy.engine.containers.lifecycle import effective_healthcheck

        if effective_healthcheck(c.spec) is None:
            raise ComposeRuntimeError(f"container {c.name} has no healthcheck configured")
        delay = 0.02
        while True:
            self._check_abort()
            st = self.state(c)
            h = (st.health or {}).get("Status")
            if h == "healthy" and st.running:
                return
            if h == "unhealthy":
                raise ComposeRuntimeError(f"dependency failed to start: container {c.name} is unhealthy")
            if not st.running:
                raise ComposeRuntimeError(f"dependency failed to start: container {c.name} exited ({st.exit_code})")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def wait_exit(self, c) -> int:
        delay = 0.02
        while True:
            self._check_abort()
            st = self.state(c)
            if not st.running and st.status != "created":
                return st.exit_code
            if st.status == "created":
                raise ComposeRuntimeError(f"container {c.name} was never started")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def wait_condition(self, dep: str, condition: str) -> None:
        if condition == m.CONDITION_STARTED:
            return
        cs = self.service_containers(dep)
        if not cs:
            raise ComposeRuntimeError(f"dependency failed to start: service {dep} has no container")
        for c in cs:
            self.emit("Container", c.name, "Waiting")
            if condition == m.CONDITION_HEALTHY:
                self.wait_healthy(c)
                self.emit("Container", c.name, "Healthy")
            elif condition == m.CONDITION_COMPLETED:
                code = self.wait_exit(c)
                if code != 0:
                    raise ComposeRuntimeError(f'service "{dep}" didn\'t complete successfully: exit {code}')
                self.emit("Container", c.name, "Exited")

    def start_one(self, c) -> None:
        from nerdpy.engine.containers.lifecycle import start_container

        self._check_abort()
        if self.state(c).running:
            self.emit("Container", c.name, "Running")
            return
        self.emit("Container", c.name, "Starting")
        try:
            start_container(self.store, c)
        except Exception as e:
            self.emit("Container", c.name, "Error")
            raise _engine_error(e, f"start container {c.name}") from None
        s = self.project.services.get(service_of(c))
        if s is not None and s.post_start:
            from compose.hooks import run_hooks

            try:
                run_hooks(self.store, c, s.post_start, "post_start")
            except ComposeError:
                self.emit("Container", c.name, "Error")
                raise
        self.emit("Container", c.name, "Started")

    def start(self, names: list[str], containers: dict[str, list] | None = None) -> None:
        """Start the services' containers: one thread per service, each waiting first for its
        dependencies (among `names`) to be started and for their conditions."""
        selected = list(names)
        self.levels(selected)  # a cycle is an error before anything starts
        done = {n: threading.Event() for n in selected}
        failed: dict[str, BaseException] = {}

        def task(name: str) -> None:
            try:
                s = self.project.services[name]
                for dep, cond in s.depends_on.items():
                    if dep not in done:
                        continue
                    while not done[dep].wait(0.2):
                        self._check_abort()
                    if dep in failed:
                        if cond.required:
                            raise DependencyError(f"dependency {dep} of {name} failed to start")
                        self.warn(f"optional dependency {dep} of {name} failed to start")
                        continue
                    try:
                        self.wait_condition(dep, cond.condition)
                    except Aborted:
                        raise
                    except ComposeRuntimeError as e:
                        if cond.required:
                            raise
                        self.warn(f"optional dependency {dep} of {name}: {e}")
                cs = (containers or {}).get(name)
                if cs is None:
                    cs = self.service_containers(name)
                if name not in self.recreated and any(
                        cond.restart and dep in self.recreated for dep, cond in s.depends_on.items()):
                    # depends_on restart: true: a dependency was recreated, so this one restarts
                    for c in cs:
                        if self.state(c).running:
                            self.emit("Container", c.name, "Restarting")
                            self._stop_one(c, None, quiet=True)
                run_parallel([lambda c=c: self.start_one(c) for c in cs] or [lambda: None])
            except BaseException as e:
                failed[name] = e
                if not isinstance(e, (DependencyError, Aborted)):
                    self.abort.set()
                raise
            finally:
                done[name].set()

        try:
            run_parallel([lambda n=n: task(n) for n in selected])
        except BaseException:
            self.abort.set()
            raise
        finally:
            pass

    # -- up -------------------------------------------------------------------------------------------
    def up(self, services: list[str] | None = None, *, no_deps: bool = False, force_recreate: bool = False,
           no_recreate: bool = False, remove_orphans: bool = False, scale: dict[str, int] | None = None,
           pull: str | None = None, no_start: bool = False, timeout: int | None = None,
           before_start: Callable[[dict[str, list]], None] | None = None, progress=None,
           renew_anon_volumes: bool = False) -> dict[str, list]:
        names = self.select(services, with_deps=not no_deps)
        self.renew_anon_volumes = renew_anon_volumes
        self.levels(names)
        for name in names:  # a value the engine refuses fails now, before any network or container
            check_service(self.project, self.project.service(name))
        for svc in scale or {}:
            self.project.service(svc)
        orphans = self.orphans()
        if orphans:
            if remove_orphans:
                run_parallel([lambda c=c: self._remove_one(c, stop=True, timeout=timeout) for c in orphans])
            else:
                self.warn(f"Found orphan containers ({', '.join(c.name for c in orphans)}) for this project. "
                          "If you removed or renamed this service in your compose file, you can run this "
                          "command with the --remove-orphans flag to clean it up.")
        # images first (as docker compose does): a service whose image cannot be had fails
        # before any network, volume or container is made
        self.ensure_images(names, pull, progress=progress)
        self.ensure_networks(names)
        self.ensure_volumes(names)
        created = self.create(names, scale=scale, force_recreate=force_recreate, no_recreate=no_recreate,
                              timeout=timeout)
        if no_start:
            return created
        if before_start is not None:
            before_start(created)
        self.start(names, created)
        return created

    def wait_ready(self, names: list[str], timeout: float | None = None) -> None:
        """`up --wait`: every container running (healthy, if it has a healthcheck); a one-shot
        container that exited 0 is fine."""
        from nerdpy.engine.containers.lifecycle import effective_healthcheck

        deadline = None if timeout is None else time.monotonic() + timeout

        def one(c):
            hc = effective_healthcheck(c.spec) is not None
            while True:
                st = self.state(c)
                if not st.running and st.status != "created":
                    if st.exit_code == 0:
                        return
                    raise ComposeRuntimeError(f"container {c.name} exited ({st.exit_code})")
                if not hc and st.running:
                    return
                h = (st.health or {}).get("Status")
                if h == "healthy":
                    return
                if h == "unhealthy":
                    raise ComposeRuntimeError(f"container {c.name} is unhealthy")
                if deadline is not None and time.monotonic() > deadline:
                    from compose.units import format_duration

                    # docker compose's message for --wait-timeout
                    raise ComposeRuntimeError(f"application not healthy after {format_duration(timeout)}")
                time.sleep(0.1)

        def each(c):
            self.emit("Container", c.name, "Waiting")
            one(c)
            self.emit("Container", c.name, "Healthy" if effective_healthcheck(c.spec) else "Running")

        run_parallel([lambda c=c: each(c) for c in self.containers(names)] or [lambda: None])

    # -- stop / remove --------------------------------------------------------------------------------
    def _stop_one(self, c, timeout: int | None, quiet: bool = False) -> None:
        from nerdpy.engine.containers.lifecycle import stop_container

        st = self.state(c)
        if not st.running:
            return
        if not quiet:
            self.emit("Container", c.name, "Stopping")
        s = self.project.services.get(service_of(c))
        if s is not None and s.pre_stop and st.status == "running":
            from compose.hooks import run_hooks

            try:
                run_hooks(self.store, c, s.pre_stop, "pre_stop")
            except ComposeError as e:
                self.warn(str(e))
        try:
            stop_container(self.store, c, timeout=timeout)
        except Exception as e:
            raise _engine_error(e, f"stop container {c.name}") from None
        if not quiet:
            self.emit("Container", c.name, "Stopped")

    def _remove_one(self, c, stop: bool = False, timeout: int | None = None, volumes: bool = False) -> None:
        from nerdpy.engine.containers.records import ContainerNotFound
        from nerdpy.engine.containers.lifecycle import remove_container

        if stop:
            self._stop_one(c, timeout)
        self.emit("Container", c.name, "Removing")
        try:
            remove_container(self.store, c, force=True, volumes=volumes)
        except ContainerNotFound:
            pass
        except Exception as e:
            raise _engine_error(e, f"remove container {c.name}") from None
        self.emit("Container", c.name, "Removed")

    def _by_shutdown_levels(self, cs: list) -> list[list]:
        """Containers grouped so that dependents stop before their dependencies."""
        names = [n for n in self.project.services if any(service_of(c) == n for c in cs)]
        try:
            levels = list(reversed(self.levels(names)))
        except ComposeError:
            levels = [names]
        groups = []
        other = [c for c in cs if service_of(c) not in names or is_oneoff(c)]
        if other:
            groups.append(other)
        for level in levels:
            g = [c for c in cs if service_of(c) in level and not is_oneoff(c)]
            if g:
                groups.append(g)
        return groups

    def stop(self, services: list[str] | None = None, timeout: int | None = None) -> None:
        cs = self.containers(services, oneoff=None if not services else False)
        for group in self._by_shutdown_levels(cs):
            run_parallel([lambda c=c: self._stop_one(c, timeout) for c in group])

    def down(self, *, remove_orphans: bool = False, volumes: bool = False, rmi: str | None = None,
             timeout: int | None = None, services: list[str] | None = None) -> None:
        from nerdpy.engine.network import NetworkInUse, NetworkNotFound
        from nerdpy.engine.network.networks import get_network, list_networks, remove_network

        known = set(self.project.services) | set(self.project.disabled_services)
        cs = self.containers(services, oneoff=None)
        orphans = [c for c in cs if service_of(c) not in known]
        if orphans and not remove_orphans:
            cs = [c for c in cs if service_of(c) in known]
            self.warn(f"Found orphan containers ({', '.join(c.name for c in orphans)}) for this project. "
                      "If you removed or renamed this service in your compose file, you can run this "
                      "command with the --remove-orphans flag to clean it up.")
        images = {c.image for c in cs}
        for group in self._by_shutdown_levels(cs):
            run_parallel([lambda c=c: self._remove_one(c, stop=True, timeout=timeout, volumes=volumes)
                          for c in group])
        if services:
            return
        import shutil

        shutil.rmtree(self.state_dir, ignore_errors=True)
        nets = [n for n in self.project.networks.values() if not n.external]
        names = {n.name for n in nets}
        for net in list_networks(self.store):
            if net.labels.get(m.LABEL_PROJECT) == self.project.name and net.name not in names:
                names.add(net.name)
                nets.append(m.Network(name=net.name))
        for net in nets:
            if get_network(self.store, net.name) is None:
                continue
            self.emit("Network", net.name, "Removing")
            try:
                remove_network(self.store, net.name)
            except NetworkNotFound:
                pass
            except NetworkInUse as e:
                self.warn(str(e))
                continue
            self.emit("Network", net.name, "Removed")
        if volumes:
            from nerdpy.engine.containers.volumes import get_volume, remove_volume

            for key, vol in self.project.volumes.items():
                if vol.external or get_volume(self.store, vol.name) is None:
                    continue
                self.emit("Volume", vol.name, "Removing")
                try:
                    remove_volume(self.store, vol.name)
                except Exception as e:
                    self.warn(str(e))
                    continue
                self.emit("Volume", vol.name, "Removed")
        if rmi in ("all", "local"):
            from nerdpy.engine.images.image import lookup_images, remove_image

            wanted = set()
            for s in self.project.services.values():
                if s.image and (rmi == "all" or not s.image):
                    wanted.add(s.image)
            if rmi == "all":
                wanted |= images
            for img in sorted(wanted):
                if not lookup_images(self.store, img):
                    continue
                self.emit("Image", img, "Removing")
                try:
                    remove_image(self.store, img)
                except Exception as e:
                    self.warn(str(e))
                    continue
                self.emit("Image", img, "Removed")

    def remove(self, services: list[str] | None = None, *, stop_first: bool = False, volumes: bool = False,
               timeout: int | None = None) -> list:
        """`compose rm`: stopped containers (running ones too with `stop_first`)."""
        cs = self.containers(services, oneoff=None if not services else False)
        if stop_first:
            self.stop(services, timeout)
        doomed = [c for c in cs if not self.state(c).running]
        run_parallel([lambda c=c: self._remove_one(c, volumes=volumes) for c in doomed] or [lambda: None])
        return doomed

    def kill(self, services: list[str] | None = None, signal: str = "KILL") -> None:
        from nerdpy.engine.containers.lifecycle import kill_container

        def one(c):
            if not self.state(c).running:
                return
            self.emit("Container", c.name, "Killing")
            try:
                kill_container(self.store, c, signal)
            except Exception as e:
                raise _engine_error(e, f"kill container {c.name}") from None
            self.emit("Container", c.name, "Killed")

        run_parallel([lambda c=c: one(c) for c in self.containers(services)] or [lambda: None])

    def restart(self, services: list[str] | None = None, timeout: int | None = None) -> None:
        names = self.select(services, with_deps=False)

        def one(c):
            self.emit("Container", c.name, "Restarting")
            self._stop_one(c, timeout, quiet=True)
            self.start_one(c)

        for level in self.levels(names):
            run_parallel([lambda c=c: one(c) for c in self.containers(level)] or [lambda: None])

    def start_existing(self, services: list[str] | None = None) -> None:
        """`compose start`: the existing containers, in dependency order with the conditions."""
        names = self.select(services, with_deps=False)
        have = [n for n in names if self.service_containers(n)]
        if services and not have:
            raise ComposeRuntimeError(f"service {services[0]!r} has no container to start")
        self.start(have)

    def pause(self, services: list[str] | None = None, unpause: bool = False) -> None:
        from nerdpy.engine.containers.records import pause_container, unpause_container

        def one(c):
            st = self.state(c).status
            if unpause and st != "paused" or not unpause and st != "running":
                return
            self.emit("Container", c.name, "Unpausing" if unpause else "Pausing")
            try:
                (unpause_container if unpause else pause_container)(self.store, c)
            except Exception as e:
                raise _engine_error(e, f"container {c.name}") from None
            self.emit("Container", c.name, "Unpaused" if unpause else "Paused")

        run_parallel([lambda c=c: one(c) for c in self.containers(services)] or [lambda: None])

    # -- run: one-off containers ------------------------------------------------------------------
    def create_oneoff(self, service: str, overrides: Overrides, *, name: str | None = None,
                      no_deps: bool = False, pull: str | None = None) -> object:
        import secrets

        from nerdpy.engine.containers.lifecycle import create_container

        s = self.project.service(service)
        check_service(self.project, s, overrides)
        if not no_deps:
            deps = [d for d in self.project.with_dependencies([service]) if d != service]
            if deps:
                self.up(deps)
                for dep, cond in s.depends_on.items():
                    if dep not in deps:
                        continue
                    try:
                        self.wait_condition(dep, cond.condition)
                    except ComposeRuntimeError as e:
                        if cond.required:
                            raise
                        self.warn(f"optional dependency {dep} of {service}: {e}")
        self.ensure_images([service], pull)
        self.ensure_networks([service])
        self.ensure_volumes([service])
        sep = self.separator
        name = name or f"{self.project.name}{sep}{service}{sep}run{sep}{secrets.token_hex(6)}"
        number = 1 + max((number_of(c) for c in self.containers([service], oneoff=True)), default=0)
        spec = container_spec(self.project, s, name, number, oneoff=True, image_id=self._image_id(s),
                              network_mode=self._network_mode(s), overrides=overrides, state_dir=self.state_dir)
        try:
            return create_container(self.store, spec)
        except Exception as e:
            raise _engine_error(e, f"create container {name}") from None

    def find(self, service: str, index: int = 1):
        """The container `index` of a service (exec, port, ...)."""
        self.project.service(service)
        cs = self.service_containers(service)
        for c in cs:
            if number_of(c) == index:
                return c
        if not cs:
            raise ComposeRuntimeError(f"service \"{service}\" is not running")
        raise ComposeRuntimeError(f"service \"{service}\" has no container number {index}")


def build_hint(s: m.Service, why: str) -> str:
    """The one line for a service with `build:` whose image nerdpy cannot have."""
    return (f"service {s.name!r} has build: and its image {s.image} {why}; nerdpy does not build images: "
            f"build it elsewhere (docker build, buildah, BuildKit), then `nerdpy load -i IMAGE.tar` "
            f"or push it to a registry")


def list_projects(store) -> list[dict]:
    """`compose ls`: projects found in the containers' labels: name, status counts, files."""
    from nerdpy.engine.containers.records import container_state, list_containers

    projects: dict[str, dict] = {}
    for c in sorted(list_containers(store), key=lambda c: c.created_at):
        lb = labels_of(c)
        name = lb.get(m.LABEL_PROJECT)
        if not name:
            continue
        p = projects.setdefault(name, {"Name": name, "states": {}, "ConfigFiles": ""})
        st = container_state(store, c).status
        p["states"][st] = p["states"].get(st, 0) + 1
        if lb.get(m.LABEL_CONFIG_FILES):
            p["ConfigFiles"] = lb[m.LABEL_CONFIG_FILES]
    out = []
    for name in sorted(projects):
        p = projects[name]
        p["Status"] = ", ".join(f"{k}({v})" for k, v in sorted(p["states"].items()))
        p["running"] = p["states"].get("running", 0)
        out.append(p)
    return out
