"""Image endpoints: create (pull, with docker's JSON progress stream), list, inspect, history, tag,
remove, push (progress stream), get (save tar) and load, prune, commit (a container's changes as
an image), and the 404 that tells clients
to pull before they create a container."""
from __future__ import annotations

import asyncio

from aiohttp import web

from nerdpy.api.common import ApiError, bad_request, engine_of, filters_as_flags, json_body, qbool, qfilters
from nerdpy.api.streams import BodyReader, Cancelled, ResponseWriter, error_line, finish, json_line

def _progress_doc(ev) -> dict:
    doc = {"status": ev.status, "id": ev.id}
    if ev.total or ev.current:
        doc["progressDetail"] = {"current": ev.current, "total": ev.total}
    else:
        doc["progressDetail"] = {}
    return doc


async def _stream_job(request: web.Request, job, first_line: dict | None = None) -> web.StreamResponse:
    """Run `job(emit)` in the pool, streaming what it emits as JSON lines; an error before the
    first line is an ordinary error response, later ones an error line (as docker does)."""
    eng = engine_of(request)
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()

    def emit(doc: dict) -> None:
        loop.call_soon_threadsafe(q.put_nowait, ("line", doc))

    def run() -> None:
        try:
            for doc in job(eng.store(), emit) or []:
                emit(doc)
            loop.call_soon_threadsafe(q.put_nowait, ("end", None))
        except BaseException as e:  # noqa: BLE001 (handed to the stream)
            loop.call_soon_threadsafe(q.put_nowait, ("error", e))

    fut = loop.run_in_executor(eng.pool, run)
    kind, item = await q.get()
    if kind == "error":
        await asyncio.wrap_future(fut) if not isinstance(fut, asyncio.Future) else await fut
        raise item
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        if first_line:
            await resp.write(json_line(first_line))
        while True:
            if kind == "line":
                await resp.write(json_line(item))
            elif kind == "error":
                from nerdpy.api.common import message_of

                await resp.write(error_line(message_of(item)))
                break
            else:
                break
            kind, item = await q.get()
        await finish(resp)
    except (ConnectionError, RuntimeError):
        pass  # the client went away; the job finishes in the background
    return resp


# -- credentials -----------------------------------------------------------------------------------
def registry_auth(request: web.Request) -> dict | None:
    """docker's X-Registry-Auth header: base64url JSON {username, password, identitytoken}."""
    import base64
    import json

    raw = request.headers.get("X-Registry-Auth")
    if not raw:
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        raise bad_request("invalid X-Registry-Auth header") from None
    if not isinstance(doc, dict) or not (doc.get("username") or doc.get("identitytoken")):
        return None  # clients send an empty one when they have no credentials
    return doc


def with_auth(store, domain: str, auth: dict | None):
    """`store` whose registry client uses the request's credentials for `domain` (the service
    user's docker config otherwise)."""
    if auth is None:
        return store
    import dataclasses

    from nerdpy.engine.distribution.credentials import Credentials
    from nerdpy.engine.distribution.registry import RegistryClient

    client = RegistryClient(hosts_dirs=list(store.settings.hosts_dirs), insecure=list(store.settings.insecure_registries))
    client._creds[domain] = Credentials(auth.get("username") or "", auth.get("password") or "",
                                        auth.get("identitytoken") or None)
    return dataclasses.replace(store, _registry=client)


# -- pull ------------------------------------------------------------------------------------------
async def create(request: web.Request) -> web.StreamResponse:
    from nerdpy.engine.distribution.reference import parse_reference

    if request.query.get("fromSrc"):
        return await _import(request, request.query["fromSrc"])
    name = request.query.get("fromImage")
    if not name:
        raise bad_request("fromImage is required")
    tag = request.query.get("tag") or ""
    if tag:
        name = f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"
    platform = request.query.get("platform") or None
    ref = parse_reference(name)  # 400 for a bad reference, before anything streams
    auth = registry_auth(request)

    def job(store, emit):
        from nerdpy.engine.distribution.pull import pull_image

        store = with_auth(store, ref.domain, auth)
        emit({"status": f"Pulling from {ref.familiar().rsplit(':', 1)[0].split('@')[0]}", "id": ref.tag or "latest"})
        result = pull_image(store, name, platform=platform,
                            progress=lambda ev: ev.status == "Resolved" or emit(_progress_doc(ev)))
        familiar = parse_reference(result.reference, default_tag=None).familiar()
        yield {"status": f"Digest: {result.digest}"}
        yield {"status": f"Status: {'Downloaded newer image' if result.updated else 'Image is up to date'} for {familiar}"}

    # resolve first, so that an unknown image is a 404 (not a stream with an error line)
    def resolve(store):
        with_auth(store, ref.domain, auth).registry_client().resolve(ref)

    await engine_of(request).run(resolve)
    return await _stream_job(request, job)


def _target(request: web.Request) -> str | None:
    """The `repo` and `tag` query parameters (tag, import, commit) as one name; None without repo."""
    repo, tag = request.query.get("repo") or "", request.query.get("tag") or ""
    if tag and not repo:
        raise bad_request("a tag needs a repo")
    return (f"{repo}:{tag}" if tag else repo) or None


async def _import(request: web.Request, src: str) -> web.Response:
    """docker import: the request body (`fromSrc=-`) or a URL as a one-layer image. Never a path
    on the service's host: docker takes anything else for a URL too (http:// when it has no scheme)."""
    from nerdpy.engine.containers.export import import_image

    if src != "-" and "://" not in src:
        src = "http://" + src
    if src != "-" and not src.startswith(("http://", "https://")):
        raise bad_request(f"fromSrc: unsupported URL {src!r} (- for the request body, or an http(s) URL)")
    reference = _target(request)
    changes = request.query.getall("changes", [])
    body = BodyReader(request, asyncio.get_running_loop()) if src == "-" else None
    result = await engine_of(request).run(
        lambda store: import_image(store, src, reference, changes=changes, message=request.query.get("message", ""),
                                   platform=request.query.get("platform") or None, stdin=body))
    return web.Response(body=json_line({"status": result.image_id}), content_type="application/json")


# -- list, inspect, history ------------------------------------------------------------------------
def _list(store, all_: bool, filters: dict) -> list[dict]:
    from nerdpy.api.convert import image_summaries
    from nerdpy.commands.images import _apply_filters, _parse_filters, image_rows
    from nerdpy.engine.images.image import list_images

    out = image_summaries(store, all_)
    flags = filters_as_flags(filters)
    if flags:
        rows = _apply_filters(store, image_rows(store, list_images(store), True), _parse_filters(tuple(flags)))
        keep = {r["_image"].config for r in rows}
        if any(f.startswith("reference=") for f in flags):
            names = {f"{r['Repository']}:{r['Tag']}" for r in rows}
            for e in out:
                e["RepoTags"] = [t for t in e["RepoTags"] if t in names or _familiar(t) in names]
        out = [e for e in out if e["Id"] in keep]
    if not all_:
        out = [e for e in out if e["RepoTags"] or e["RepoDigests"] or not filters]
    return out


def _familiar(name: str) -> str:
    from nerdpy.engine.distribution.reference import parse_reference

    try:
        return parse_reference(name).familiar()
    except Exception:  # noqa: BLE001
        return name


async def list_(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_list, qbool(request, "all"), qfilters(request)))


def _inspect(store, name: str) -> dict:
    from nerdpy.commands.images import inspect_json
    from nerdpy.engine.images.image import resolve_image

    return inspect_json(store, resolve_image(store, name))


async def inspect(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_inspect, request.match_info["name"]))


def _history(store, name: str) -> list[dict]:
    from nerdpy.commands._util import parse_time
    from nerdpy.engine.images.history import image_history

    out = []
    for e in image_history(store, name):
        out.append({"Id": e.id, "Created": int(parse_time(e.created) or 0) if e.created else 0,
                    "CreatedBy": e.created_by, "Tags": None, "Size": e.size, "Comment": e.comment})
    return out


async def history(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_history, request.match_info["name"]))


# -- tag, remove, prune ----------------------------------------------------------------------------
async def tag(request: web.Request) -> web.Response:
    from nerdpy.engine.images.image import tag_image

    if not request.query.get("repo"):
        raise bad_request("repo is required")
    await engine_of(request).run(tag_image, request.match_info["name"], _target(request))
    return web.Response(status=201)


async def commit(request: web.Request) -> web.Response:
    """docker commit: `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`. A
    container config in the body (docker-py's `conf`) would be merged into the image's: not
    supported, so refused unless empty (`changes` sets the same things)."""
    from nerdpy.engine.containers.records import find_container
    from nerdpy.engine.images.commit import commit_container

    q = request.query
    if not q.get("container"):
        raise bad_request("container is required")
    body = await json_body(request, required=False)
    if any(v not in (None, "", [], {}) for v in body.values()):
        raise bad_request("a container config in the commit request is not supported: use changes")
    reference = _target(request)

    def run(store):
        c = find_container(store, q["container"])
        return commit_container(store, c, reference, changes=q.getall("changes", []), message=q.get("comment", ""),
                                author=q.get("author", ""), pause=qbool(request, "pause", True))

    result = await engine_of(request).run(run)
    return web.json_response({"Id": result.image_id}, status=201)


def _remove(store, name: str, force: bool, prune: bool) -> list[dict]:
    from nerdpy.commands.images import containers_using_images
    from nerdpy.engine.content.gc import collect_garbage
    from nerdpy.engine.images.image import remove_image

    lines = remove_image(store, name, force=force, in_use=containers_using_images(store))
    if prune:
        collect_garbage(store)  # takes the GC lock itself; skips while content is being added
    out = []
    for line in lines:
        k, _, v = line.partition(": ")
        out.append({k: v})
    return out


async def remove(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_remove, request.match_info["name"],
                                                          qbool(request, "force"), not qbool(request, "noprune")))


def _prune(store, filters: dict) -> dict:
    from nerdpy.commands.images import containers_using_images
    from nerdpy.engine.images.image import prune_images
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    # the CLI's filters, checked alike; the API prunes dangling images unless dangling=false
    flt = parse_prune_filters(filters_as_flags(filters), "image")
    lines, space = prune_images(store, in_use=containers_using_images(store), flt=flt)
    out = []
    for line in lines:
        k, _, v = line.partition(": ")
        out.append({"Untagged" if k == "untagged" else "Deleted": v})
    return {"ImagesDeleted": out or None, "SpaceReclaimed": space}


async def prune(request: web.Request) -> web.Response:
    return web.json_response(await engine_of(request).run(_prune, qfilters(request)))


# -- push ------------------------------------------------------------------------------------------
async def push(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    t = request.query.get("tag") or ""
    full = f"{name}:{t}" if t else name
    auth = registry_auth(request)

    def job(store, emit):
        from nerdpy.engine.distribution.push import push_image, push_targets
        from nerdpy.engine.distribution.reference import parse_reference

        store = with_auth(store, parse_reference(full).domain, auth)
        targets = push_targets(store, full, all_tags=not t and ":" not in name.rsplit("/", 1)[-1])
        for image, ref in targets:
            emit({"status": f"The push refers to repository [{ref}]"})
            res = push_image(store, image, ref, progress=lambda ev: emit(_progress_doc(ev)))
            yield {"status": f"{res.tag}: digest: {res.digest} size: {res.size}"}
            yield {"progressDetail": {}, "aux": {"Tag": res.tag, "Digest": res.digest, "Size": res.size}}

    return await _stream_job(request, job)


# -- save, load ------------------------------------------------------------------------------------
async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    from nerdpy.engine.images.image import resolve_image
    from nerdpy.engine.images.saveload import save_images

    eng = engine_of(request)
    if not names:
        raise bad_request("no image names given")
    await eng.run(lambda store: [resolve_image(store, n) for n in names])  # 404 before streaming
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    cancel = Cancelled()
    out = ResponseWriter(resp, asyncio.get_running_loop(), cancel)
    try:
        await eng.run(lambda store: save_images(store, names, out))
    except (BrokenPipeError, ConnectionError):
        return resp
    await finish(resp)
    return resp


async def get_one(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def get_many(request: web.Request) -> web.StreamResponse:
    return await _save(request, list(request.query.getall("names", [])))


async def load(request: web.Request) -> web.StreamResponse:
    from nerdpy.engine.images.saveload import load_images

    eng = engine_of(request)
    body = BodyReader(request, asyncio.get_running_loop())
    quiet = qbool(request, "quiet")
    loaded = await eng.run(lambda store: load_images(store, body))
    lines = []
    for li in loaded:
        if li.name:
            from nerdpy.engine.distribution.reference import parse_reference

            lines.append(json_line({"stream": f"Loaded image: {parse_reference(li.name).familiar()}\n"}))
        else:
            lines.append(json_line({"stream": f"Loaded image ID: {li.image_id}\n"}))
    del quiet
    return web.Response(body=b"".join(lines), content_type="application/json")


async def search(request: web.Request) -> web.Response:
    raise ApiError(501, "image search is not supported by nerdpy")


ROUTES = [
    ("POST", "/commit", commit),
    ("POST", "/images/create", create),
    ("GET", "/images/json", list_),
    ("POST", "/images/prune", prune),
    ("POST", "/images/load", load),
    ("GET", "/images/get", get_many),
    ("GET", "/images/search", search),
    ("GET", "/images/{name:.+}/json", inspect),
    ("GET", "/images/{name:.+}/history", history),
    ("GET", "/images/{name:.+}/get", get_one),
    ("POST", "/images/{name:.+}/tag", tag),
    ("POST", "/images/{name:.+}/push", push),
    ("DELETE", "/images/{name:.+}", remove),
]
