"""`version`: docker's Client and Server document (the Server is the embedded engine, with runc
as a component), as text or through `--format` (a Go template, or `json`)."""
from __future__ import annotations

import sys

import click

from nerdpy.commands._util import settings_of


def version_doc(settings) -> dict:
    """docker's `version` structure: {"Client": ..., "Server": ...}."""
    import datetime
    import os
    import platform

    from nerdpy import __version__
    from nerdpy.engine.system.info import API_VERSION, go_arch, runtime_version, server_version

    built = ""
    try:  # the package's files' time stands in for a build time
        built = datetime.datetime.fromtimestamp(os.stat(__file__).st_mtime).strftime("%a %b %d %H:%M:%S %Y")
    except OSError:
        pass
    client = {
        "Platform": {"Name": "nerdpy"},
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": runtime_version(),
        "Os": platform.system().lower(),
        "Arch": go_arch(),
        "BuildTime": built,
        "Context": "default",
    }
    server = server_version(settings.runc)
    server["BuildTime"] = built
    server["Components"][0]["Details"]["BuildTime"] = built
    return {"Client": client, "Server": server}


def _text(doc: dict) -> str:
    c, s = doc["Client"], doc["Server"]
    lines = [
        "Client:",
        f" Version:           {c['Version']}",
        f" API version:       {c['ApiVersion']}",
        f" Go version:        {c['GoVersion']}",
        f" Git commit:        {c['GitCommit'] or 'n/a'}",
        f" Built:             {c['BuildTime']}",
        f" OS/Arch:           {c['Os']}/{c['Arch']}",
        f" Context:           {c['Context']}",
        "",
        f"Server: {s['Platform']['Name']}",
    ]
    for comp in s["Components"]:
        d = comp["Details"]
        lines.append(f" {comp['Name']}:")
        lines.append(f"  Version:          {comp['Version'] or 'unknown'}")
        if comp["Name"] == "Engine":
            lines += [
                f"  API version:      {d['ApiVersion']} (minimum version {d['MinAPIVersion']})",
                f"  Go version:       {d['GoVersion']}",
                f"  Git commit:       {d['GitCommit'] or 'n/a'}",
                f"  Built:            {d['BuildTime']}",
                f"  OS/Arch:          {d['Os']}/{d['Arch']}",
                f"  Experimental:     {d['Experimental']}",
            ]
        elif d.get("GitCommit"):
            lines.append(f"  GitCommit:        {d['GitCommit']}")
    return "\n".join(lines) + "\n"


@click.command("version")
@click.option("-f", "--format", "fmt", metavar="FORMAT",
              help="Format output using a custom template: 'json' or a Go template ('{{.Server.Version}}')")
@click.pass_context
def version(ctx: click.Context, fmt: str | None) -> None:
    """Show the nerdpy version information (client and embedded engine)."""
    doc = version_doc(settings_of(ctx))
    if fmt:
        from nerdpy.template import render

        tmpl = fmt.replace("\\t", "\t").replace("\\n", "\n")
        if tmpl.strip() == "json":
            tmpl = "{{json .}}"
        sys.stdout.write(render(tmpl, doc) + "\n")
        return
    sys.stdout.write(_text(doc))
