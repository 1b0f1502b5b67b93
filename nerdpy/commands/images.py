"""`images`, `image ls/inspect/tag/rm/prune/pull`, `tag` and `rmi`: thin layers over
nerdpy.engine.images.image that render docker's tables and JSON."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import (human_size, local_time, parse_time, print_inspect, rfc3339, since,
                                   store_of)
from nerdpy.exitcodes import SomeFailed, message, report_missing

IMAGES_HEADERS = {
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Platform": "PLATFORM",
}


def _split_name(name: str) -> tuple[str, str, str | None]:
    """normalised name -> (familiar repository, tag or <none>, digest in the name or None)."""
    from nerdpy.engine.distribution.reference import parse_reference

    ref = parse_reference(name, default_tag=None)
    return ref.familiar_name(), ref.tag or "<none>", ref.digest


def image_rows(store, images, no_trunc: bool) -> list[dict]:
    from nerdpy.engine.images.image import image_config, image_size

    rows = []
    cache: dict[str, tuple[dict, int]] = {}
    for img in images:
        if img.config not in cache:
            cache[img.config] = (image_config(store, img), image_size(store, img))
        config, size = cache[img.config]
        created = parse_time(config.get("created"))
        if img.dangling:
            repo, tag = "<none>", "<none>"
        else:
            repo, tag, _ = _split_name(img.name)
        image_id = img.config if no_trunc else img.config[7:19]
        rows.append({
            "Containers": "N/A",
            "CreatedAt": local_time(created),
            "CreatedSince": since(created),
            "Digest": img.target,
            "ID": image_id,
            "Repository": repo,
            "SharedSize": "N/A",
            "Size": human_size(size),
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": human_size(size),
            "Platform": f"{config.get('os', '')}/{config.get('architecture', '')}"
                        + (f"/{config['variant']}" if config.get("variant") else ""),
            "_created": created or 0,
            "_labels": (config.get("config") or {}).get("Labels") or {},
            "_image": img,
        })
    return rows


def _parse_filters(filters: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise click.UsageError(f"bad format of filter (expected name=value): {f}")
        key = key.strip().lower()
        if key not in ("reference", "dangling", "label", "before", "since"):
            raise click.UsageError(f"invalid filter '{key}'")
        out.append((key, value))
    return out


def _path_match(pattern: str, name: str) -> bool:
    """Go's path.Match, as docker's reference filter uses: `*` and `?` never cross a `/`."""
    import re

    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                return False  # ErrBadPattern: matches nothing
            body = pattern[i + 1:j]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^/" if neg else "") + body.replace("[", "\\[") + "]")
            i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.fullmatch("".join(out), name) is not None
    except re.error:
        return False


def _apply_filters(store, rows: list[dict], filters: list[tuple[str, str]]) -> list[dict]:
    from nerdpy.engine.images.image import resolve_image

    # several reference filters: an image matching any of them is shown (docker)
    patterns = [v for k, v in filters if k == "reference"]
    if patterns:
        def match(r) -> bool:
            names = [r["Repository"], f"{r['Repository']}:{r['Tag']}"]
            return any(_path_match(p, n) for p in patterns for n in names)
        rows = [r for r in rows if r["Repository"] != "<none>" and match(r)]
    for key, value in filters:
        if key == "reference":
            continue
        elif key == "dangling":
            want = value.lower() in ("true", "1")
            if value.lower() not in ("true", "false", "1", "0"):
                raise click.UsageError(f"invalid filter 'dangling={value}'")
            rows = [r for r in rows if r["_image"].dangling == want]
        elif key == "label":
            k, eq, v = value.partition("=")
            rows = [r for r in rows if k in r["_labels"] and (not eq or r["_labels"][k] == v)]
        elif key in ("before", "since"):
            ref_img = resolve_image(store, value)
            ref_row = image_rows(store, [ref_img], True)[0]
            t = ref_row["_created"]
            rows = [r for r in rows if (r["_created"] < t if key == "before" else r["_created"] > t)]
    return rows


def _list_images(ctx, quiet, all_, digests, no_trunc, filters, fmt, name=None) -> None:
    from nerdpy.engine.images.image import list_images
    from nerdpy.template import format_output

    store = store_of(ctx)
    flt = _parse_filters(filters)
    images = list_images(store)
    rows = image_rows(store, images, no_trunc)
    if name:
        flt.append(("reference", name if ":" in name.rsplit("/", 1)[-1] else name))
    rows = _apply_filters(store, rows, flt)
    rows.sort(key=lambda r: (-r["_created"], r["Repository"], r["Tag"]))
    if quiet:
        seen = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        out = "".join(i + "\n" for i in seen)
        sys.stdout.write(out)
        return
    if digests:
        default = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    else:
        default = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    sys.stdout.write(format_output(fmt, public, default_table=default, headers=IMAGES_HEADERS))


def _images_options(f):
    f = click.option("--format", "fmt", metavar="FORMAT",
                     help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")(f)
    f = click.option("-f", "--filter", "filters", multiple=True, metavar="FILTER",
                     help="Filter output based on conditions provided (reference=, dangling=, label=, before=, since=)")(f)
    f = click.option("--no-trunc", is_flag=True, help="Don't truncate output")(f)
    f = click.option("--digests", is_flag=True, help="Show digests")(f)
    f = click.option("-a", "--all", "all_", is_flag=True, help="Show all images (default hides intermediate images)")(f)
    f = click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")(f)
    return f


@click.command("images")
@click.argument("name", required=False)
@_images_options
@click.pass_context
def images(ctx, name, quiet, all_, digests, no_trunc, filters, fmt) -> None:
    """List images.

    \b
    Examples:
      nerdpy images
      nerdpy images --filter reference='busy*' --format '{{.Repository}}:{{.Tag}}'
    """
    _list_images(ctx, quiet, all_, digests, no_trunc, filters, fmt, name)


def _image_group():
    from nerdpy.cli import COMMANDS, LazyGroup

    # save/load/push/import live in their own modules, imported only when used
    lazy = {name: COMMANDS[name] for name in ("save", "load", "push", "import")}

    @click.group("image", cls=LazyGroup, lazy=lazy, context_settings={"help_option_names": ["-h", "--help"]})
    def image() -> None:
        """Manage images."""

    return image


image = _image_group()


@image.command("ls")
@click.argument("name", required=False)
@_images_options
@click.pass_context
def image_ls(ctx, name, quiet, all_, digests, no_trunc, filters, fmt) -> None:
    """List images (those of REPOSITORY[:TAG] when given)."""
    _list_images(ctx, quiet, all_, digests, no_trunc, filters, fmt, name)


image.add_command(image_ls, "list")


def inspect_json(store, img) -> dict:
    from nerdpy.engine.images.image import image_config, image_manifest, image_size, list_images

    config = image_config(store, img)
    manifest = image_manifest(store, img)
    same = [i for i in list_images(store) if i.config == img.config and not i.dangling]
    tags, digests = [], []
    for i in same:
        repo, tag, digest = _split_name(i.name)
        if tag != "<none>":
            tags.append(f"{repo}:{tag}")
        d = f"{repo}@{digest or i.target}"
        if d not in digests:
            digests.append(d)
    c = config.get("config") or {}
    cfg = {
        "Hostname": "", "Domainname": "", "User": c.get("User", ""),
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "ExposedPorts": c.get("ExposedPorts"), "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": c.get("Env"), "Cmd": c.get("Cmd"), "Healthcheck": c.get("Healthcheck"),
        "ArgsEscaped": c.get("ArgsEscaped"), "Image": "", "Volumes": c.get("Volumes"),
        "WorkingDir": c.get("WorkingDir", ""), "Entrypoint": c.get("Entrypoint"),
        "OnBuild": c.get("OnBuild"), "Labels": c.get("Labels"), "StopSignal": c.get("StopSignal"),
        "Shell": c.get("Shell"),
    }
    cfg = {k: v for k, v in cfg.items() if v is not None or k in ("Env", "Cmd", "Entrypoint", "OnBuild", "Labels", "Image", "Volumes")}
    out = {
        "Id": img.config,
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": config.get("comment", ""),
        "Created": config.get("created", ""),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": cfg,
        "Architecture": config.get("architecture", ""),
        "Os": config.get("os", ""),
        "Size": image_size(store, img),
        "GraphDriver": {"Name": "overlayfs", "Data": None},
        "RootFS": {"Type": "layers", "Layers": (config.get("rootfs") or {}).get("diff_ids", [])},
        "Metadata": {"LastTagTime": rfc3339(img.created_at)},
        "Descriptor": {"mediaType": img.media_type, "digest": img.target, "size": img.size},
        "ManifestDigest": img.manifest,
        "LayerDescriptors": manifest.get("layers", []),
    }
    if config.get("variant"):
        out["Variant"] = config["variant"]
    return out


@image.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", metavar="FORMAT", help="Format output using a custom template")
@click.pass_context
def image_inspect(ctx, names, fmt) -> None:
    """Display detailed information on one or more images."""
    from nerdpy.engine.errors import ImageNotFound
    from nerdpy.engine.images.image import resolve_image

    store = store_of(ctx)
    results, missing = [], []
    for name in names:
        try:
            results.append(inspect_json(store, resolve_image(store, name)))
        except ImageNotFound:
            missing.append(name)
    print_inspect(results, fmt)
    report_missing("No such image: {}", missing)


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag(ctx, source, target) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    from nerdpy.engine.images.image import tag_image

    tag_image(store_of(ctx), source, target)


image.add_command(tag, "tag")


def containers_using_images(store) -> set[str]:
    """Image IDs used by containers (empty until the containers table exists)."""
    try:
        rows = store.db.query("SELECT DISTINCT image_id FROM containers WHERE namespace = ?", (store.namespace,))
    except Exception:
        return set()
    return {r["image_id"] for r in rows}


@click.command("rmi")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.pass_context
def rmi(ctx, names, force) -> None:
    """Remove one or more images."""
    from nerdpy.engine.errors import ImageNotFound, NerdpyError
    from nerdpy.engine.content.gc import collect_garbage
    from nerdpy.engine.images.image import remove_image

    store = store_of(ctx)
    in_use = containers_using_images(store)
    failed = False
    for name in names:
        try:
            for line in remove_image(store, name, force=force, in_use=in_use):
                click.echo(line)
        except ImageNotFound as e:
            if force:  # docker: `rmi -f` of an image that is not there is not an error
                continue
            click.echo(message(e), err=True)
            failed = True
        except NerdpyError as e:
            click.echo(message(e), err=True)
            failed = True
    collect_garbage(store)
    if failed:
        raise SomeFailed()


image.add_command(rmi, "rm")
image.add_command(rmi, "remove")


@image.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused images, not just dangling ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, metavar="FILTER",
              help="Provide filter values: label=KEY[=VALUE], label!=KEY[=VALUE], until=TIME, dangling=BOOL")
@click.pass_context
def image_prune(ctx, all_, force, filters) -> None:
    """Remove unused images."""
    from nerdpy.engine.images.image import prune_images
    from nerdpy.engine.system.prunefilter import parse_prune_filters

    flt = parse_prune_filters(filters, "image")

    if not force:
        # docker asks on the terminal and reads the answer from stdin, also when piped
        # (`echo y | nerdpy image prune`); no answer is a no
        what = "all images without at least one container associated to them" if all_ else "all dangling images"
        click.echo(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ", nl=False)
        answer = sys.stdin.readline()
        if not answer.endswith("\n"):
            click.echo("")
        if answer.strip().lower() not in ("y", "yes"):
            click.echo("Total reclaimed space: 0B")
            return
    store = store_of(ctx)
    lines, freed = prune_images(store, all_images=all_, in_use=containers_using_images(store), flt=flt)
    if lines:
        click.echo("Deleted Images:")
        for line in lines:
            click.echo(line)
        click.echo("")
    click.echo(f"Total reclaimed space: {human_size(freed)}")


from nerdpy.commands.pull import pull as _pull  # noqa: E402  (cheap: click only)

image.add_command(_pull, "pull")


# history ---------------------------------------------------------------------------------------
HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}


class _HistoryCommand(click.Command):
    """docker spells the switch `-H=false` / `--human=false` (a Go bool flag)."""

    _VALUES = {"false": "--no-human", "0": "--no-human", "f": "--no-human",
               "true": "--human", "1": "--human", "t": "--human"}

    def parse_args(self, ctx, args):
        fixed = []
        for a in args:
            flag, eq, value = a.partition("=")
            if eq and flag in ("-H", "--human") and value.lower() in self._VALUES:
                fixed.append(self._VALUES[value.lower()])
            else:
                fixed.append(a)
        return super().parse_args(ctx, fixed)


def _ellipsis(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width - 1] + "…"


def history_rows(entries, human: bool, no_trunc: bool) -> list[dict]:
    from nerdpy.engine.images.history import MISSING

    rows = []
    for e in entries:
        created = parse_time(e.created)
        created_at = ""
        if created is not None:
            import datetime as _dt

            created_at = _dt.datetime.fromtimestamp(created).astimezone().isoformat(timespec="seconds")
            if created_at.endswith("+00:00"):  # Go's RFC 3339
                created_at = created_at[:-6] + "Z"
        if human:
            created_since = since(created) if created is not None else "N/A"
        else:
            created_since = created_at
        created_by = e.created_by.replace("\t", " ")
        rows.append({
            "ID": e.id if no_trunc or e.id == MISSING else e.id[7:19],
            "CreatedSince": created_since,
            "CreatedAt": created_at,
            "CreatedBy": created_by if no_trunc else _ellipsis(created_by, 45),
            "Size": human_size(e.size) if human else str(e.size),
            "Comment": e.comment,
        })
    return rows


@click.command("history", cls=_HistoryCommand)
@click.argument("name")
@click.option("-H", "--human/--no-human", default=True, show_default=True,
              help="Print sizes and dates in human readable format (-H=false for raw values)")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--format", "fmt", metavar="FORMAT",
              help="Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
@click.pass_context
def history(ctx, name, human, no_trunc, quiet, fmt) -> None:
    """Show the history of an image.

    \b
    Examples:
      nerdpy history busybox
      nerdpy history --no-trunc --format '{{.CreatedBy}}' busybox
    """
    from nerdpy.engine.images.history import image_history
    from nerdpy.template import format_output

    rows = history_rows(image_history(store_of(ctx), name), human, no_trunc)
    if quiet:
        sys.stdout.write("".join(r["ID"] + "\n" for r in rows))
        return
    default = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    sys.stdout.write(format_output(fmt, rows, default_table=default, headers=HISTORY_HEADERS))


image.add_command(history, "history")
