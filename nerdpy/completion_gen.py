"""Shell completion scripts for bash, zsh and fish, generated from the click tree.

    python -m nerdpy.completion_gen            # rewrite completions/ (run after adding a command or flag)
    python -m nerdpy.completion_gen --check    # exit 1 if completions/ is out of date

Every command is walked, lazily-loaded ones and groups included (hidden ones left out), and
turned into a small table per command path: its sub-commands, its flags, the options that take a
value (and what kind of value), and what its positional arguments are. The scripts are that table
plus one fixed completion function per shell. Static things (sub-commands, flags, choices, files)
are completed by the shell alone; live things (container, image, network, volume and compose
service names) come from `nerdpy __complete KIND`, a fast path that reads the metadata database
without loading the engine (see nerdpy/commands/completion.py).

Value kinds (the vocabulary shared by the table and the scripts):
    containers           running containers       containers-all      every container
    containers-stopped   created or exited ones   containers-paused   paused ones
    images  networks  volumes  services           live names
    files  dirs                                   paths on this machine
    cp                   CONTAINER: or a local path (docker cp's SRC and DEST)
    choice=a,b,c         fixed words              signals             signal names
    none                 nothing to offer         stop                the rest is a command line
    K1+K2                both kinds (e.g. containers-all+images for `inspect`)
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import click

PROG = "nerdpy"
HERE = os.path.dirname(os.path.abspath(__file__))
COMPLETIONS_DIR = os.path.join(os.path.dirname(HERE), "completions")
FILES = {"bash": "nerdpy.bash", "zsh": "_nerdpy", "fish": "nerdpy.fish"}
REGENERATE = "python -m nerdpy.completion_gen"

SIGNALS = ("KILL TERM INT HUP QUIT USR1 USR2 STOP CONT ABRT ALRM PIPE WINCH "
           "SIGKILL SIGTERM SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2").split()


# the model -------------------------------------------------------------------------------
@dataclass
class Opt:
    names: list[str]
    takes_value: bool
    help: str
    kind: str = "none"


@dataclass
class Cmd:
    path: str                                   # "nerdpy", "nerdpy image inspect"
    help: str
    subcommands: list[tuple[str, str]] = field(default_factory=list)
    options: list[Opt] = field(default_factory=list)
    args: list[str] = field(default_factory=list)   # kinds; a trailing "..." marks a variadic last one
    interspersed: bool = True


def _first_line(text: str | None) -> str:
    if not text:
        return ""
    line = text.strip().split("\n\n")[0].replace("\n", " ").strip()
    return " ".join(line.split())


def _short(text: str, limit: int = 90) -> str:
    text = _first_line(text)
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    if len(text) > limit:
        cut = text[: limit - 3].rsplit(" ", 1)[0]
        text = cut.rstrip(",;:") + "..."
    return text


# which kind of value: by command and parameter, docker's rules -----------------------------
_RUNNING = {"exec", "attach", "kill", "pause", "stop", "top"}
_STOPPED = {"start"}
_PAUSED = {"unpause"}
_IMAGE_NAMES = {"rmi", "history", "push", "pull", "images", "save", "tag"}


def _container_kind(leaf: str) -> str:
    if leaf in _RUNNING:
        return "containers"
    if leaf in _STOPPED:
        return "containers-stopped"
    if leaf in _PAUSED:
        return "containers-paused"
    return "containers-all"


def arg_kind(path: list[str], param: click.Argument) -> str:
    """The kind of a positional argument of the command at `path` (["image", "inspect"])."""
    name = (param.name or "").lower()
    if isinstance(param.type, click.Choice):
        return "choice=" + ",".join(str(c) for c in param.type.choices)
    leaf = path[-1] if path else ""
    group = path[-2] if len(path) > 1 else ""
    if group == "compose" or (path and path[0] == "compose"):
        if name in ("service", "services"):
            return "services"
        if name in ("command", "args"):
            return "stop"
    if name in ("command", "ps_args", "args"):
        return "stop"
    if name in ("container", "containers"):
        return _container_kind(leaf)
    if name in ("image", "images"):
        return "images"
    if name in ("network", "networks"):
        return "networks"
    if name in ("volume", "volumes"):
        return "volumes"
    if name in ("service", "services"):
        return "services"
    if leaf == "cp" and name in ("src", "dst", "source", "dest", "destination"):
        return "cp"
    if leaf == "import" and name == "source":
        return "files"
    if leaf == "tag" and name in ("source", "target"):
        return "images"
    if leaf in ("commit",) and name == "reference":
        return "images"
    if name in ("name", "names"):
        if group == "image" or (not group and leaf in _IMAGE_NAMES):
            return "images"
        if group == "image" or leaf in _IMAGE_NAMES:
            return "images"
        if group == "network" and leaf != "create":
            return "networks"
        if group == "volume" and leaf != "create":
            return "volumes"
        if group == "container":
            return _container_kind(leaf)
        if not group and leaf == "inspect":
            return "containers-all+images"
    return "none"


_FILE_OPTS = {"--file", "--env-file", "--label-file", "--cidfile", "--iidfile", "--output", "--input",
              "--password-file", "--seccomp-profile"}
_DIR_OPTS = {"--data-root", "--project-directory", "--hosts-dir"}
_CHOICES = {
    "--restart": "no,always,unless-stopped,on-failure",
    "--progress": "auto,plain,tty,quiet",
    "--log-driver": "json-file,none",
    "--pull": "missing,always,never",
}


def opt_kind(path: list[str], param: click.Option) -> str:
    longs = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
    if isinstance(param.type, click.Choice):
        return "choice=" + ",".join(str(c) for c in param.type.choices)
    if isinstance(param.type, click.Path):
        return "dirs" if param.type.dir_okay and not param.type.file_okay else "files"
    for o in longs:
        if o in ("--network", "--net"):
            return "networks"
        if o == "--volumes-from":
            return "containers-all"
        if o == "--volume" and path and path[-1] in ("run", "create"):
            return "volumes+files"
        if o in ("--signal", "--stop-signal"):
            return "signals"
        if o in _CHOICES:
            return "choice=" + _CHOICES[o]
        if o in _FILE_OPTS:
            return "files"
        if o in _DIR_OPTS:
            return "dirs"
    metavar = (param.metavar or "").upper()
    if metavar in ("FILE", "PATH"):
        return "files"
    if metavar in ("DIR", "DIRS"):
        return "dirs"
    return "none"


# walking the tree ------------------------------------------------------------------------
def collect(root: click.Command | None = None) -> list[Cmd]:
    """Every (non-hidden) command path of the CLI, parents before children."""
    if root is None:
        from nerdpy.cli import cli as root
    out: list[Cmd] = []
    ctx = click.Context(root, info_name=PROG, **(root.context_settings or {}))
    _walk(root, [], ctx, out)
    return out


def _walk(cmd: click.Command, path: list[str], ctx: click.Context, out: list[Cmd]) -> None:
    c = Cmd(path=" ".join([PROG] + path), help=_short(cmd.help or cmd.short_help or ""),
            interspersed=getattr(cmd, "allow_interspersed_args", True)
            and (cmd.context_settings or {}).get("allow_interspersed_args", True))
    for p in cmd.get_params(ctx):
        if isinstance(p, click.Option):
            if p.hidden:
                continue
            # short names first; click builds the help option's names from a set: sort for a stable output
            names = list(p.opts) + list(p.secondary_opts)
            names = sorted(names, key=lambda n: (n.startswith("--"), n if p.name == "help" else ""))
            takes = not p.is_flag and not p.count
            c.options.append(Opt(names, takes, _short(p.help or ""), opt_kind(path, p) if takes else "none"))
        elif isinstance(p, click.Argument):
            kind = arg_kind(path, p)
            c.args.append(kind + ("..." if p.nargs == -1 else ""))
    out.append(c)
    if isinstance(cmd, click.Group):
        children = []
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            children.append((name, sub))
            c.subcommands.append((name, _short(sub.help or sub.short_help or "")))
        for name, sub in children:
            _walk(sub, path + [name], click.Context(sub, parent=ctx, info_name=name), out)


# rendering helpers -----------------------------------------------------------------------
def _sq(s: str) -> str:
    """Single-quote for sh, bash, zsh (fish uses its own, see _fq)."""
    return "'" + s.replace("'", "'\\''") + "'"


def _fq(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _flags(c: Cmd) -> list[str]:
    return [n for o in c.options if not o.takes_value for n in o.names]


def _valopts(c: Cmd) -> list[str]:
    return [n for o in c.options if o.takes_value for n in o.names]


HEADER = ("{comment} {shell} completion for nerdpy. Generated from the click tree by\n"
          "{comment} `" + REGENERATE + "`: do not edit by hand.\n")


# bash ------------------------------------------------------------------------------------
BASH_FUNCTIONS = r'''
# Words as the user sees them: bash splits at ':' and '=' (COMP_WORDBREAKS); join them back
# when the original line has no blank between them (as bash-completion's _get_comp_words_by_ref -n :=).
__nerdpy_words() {
    _nerdpy_w=()
    _nerdpy_cw=0
    local line="${COMP_LINE:0:${COMP_POINT:-${#COMP_LINE}}}" i j=-1 w
    [[ -z $COMP_LINE ]] && line="${COMP_WORDS[*]}"
    for ((i = 0; i < ${#COMP_WORDS[@]} && i <= COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((j >= 0)) && [[ $line != [[:blank:]]* ]] && [[ $w == [:=]* || ${_nerdpy_w[j]} == *[:=] ]]; then
            _nerdpy_w[j]+=$w
        else
            j=$((j + 1))
            _nerdpy_w[j]=$w
        fi
        line=${line#"${line%%[![:blank:]]*}"}
        line=${line#"$w"}
    done
    _nerdpy_cw=$j
}

# live names from the fast path (no engine, no network)
__nerdpy_live() {
    "${_nerdpy_w[0]:-nerdpy}" __complete "${_nerdpy_ctx[@]}" "$@" 2>/dev/null
}

# candidates (one per line) for a value kind, matching $1 (the word so far)
__nerdpy_values() {
    local kind=$2 cur=$1 k
    local IFS=$' \t\n'
    for k in ${kind//+/ }; do
        case $k in
            containers) compgen -W "$(__nerdpy_live containers)" -- "$cur" ;;
            containers-*) compgen -W "$(__nerdpy_live containers --${k#containers-})" -- "$cur" ;;
            images|networks|volumes|services) compgen -W "$(__nerdpy_live "$k")" -- "$cur" ;;
            files) _nerdpy_filenames=1; compgen -f -- "$cur" ;;
            dirs) _nerdpy_filenames=1; compgen -d -- "$cur" ;;
            signals) compgen -W "''' + " ".join(SIGNALS) + r'''" -- "$cur" ;;
            choice=*) k=${k#choice=}; compgen -W "${k//,/ }" -- "$cur" ;;
            cp)
                if [[ $cur != *:* ]]; then
                    _nerdpy_nospace=1
                    compgen -W "$(__nerdpy_live containers --all | sed 's/$/:/')" -- "$cur"
                    _nerdpy_filenames=1
                    compgen -f -- "$cur"
                fi
                ;;
        esac
    done
}

_nerdpy() {
    local -a _nerdpy_w _nerdpy_ctx=() _nerdpy_compose=()
    local _nerdpy_cw _nerdpy_filenames=0 _nerdpy_nospace=0
    __nerdpy_words
    local cur=${_nerdpy_w[_nerdpy_cw]} cmd=nerdpy i w expect="" nargs=0 noopts=0 kind=""
    for ((i = 1; i < _nerdpy_cw; i++)); do
        w=${_nerdpy_w[i]}
        if [[ -n $expect ]]; then
            __nerdpy_remember "$cmd" "$expect" "$w"
            expect=""
            continue
        fi
        if ((noopts == 0)) && [[ $w == -?* ]]; then
            if [[ $w == -- ]]; then
                noopts=1
            elif [[ $w == --*=* ]]; then
                __nerdpy_remember "$cmd" "${w%%=*}" "${w#*=}"
            elif [[ " ${_nerdpy_valopts[$cmd]} " == *" $w "* ]]; then
                expect=$w
            fi
            continue
        fi
        if ((nargs == 0)) && [[ " ${_nerdpy_subcmds[$cmd]} " == *" $w "* ]]; then
            cmd="$cmd $w"
            continue
        fi
        nargs=$((nargs + 1))
        [[ -n ${_nerdpy_nointersperse[$cmd]} ]] && noopts=1
    done
    local -a args=(${_nerdpy_args[$cmd]})
    local IFS=$'\n'
    if [[ -n $expect ]]; then
        kind=${_nerdpy_optkind["$cmd|$expect"]}
        COMPREPLY=($(__nerdpy_values "$cur" "${kind:-none}"))
    elif ((noopts == 0)) && [[ $cur == --*=* ]]; then
        kind=${_nerdpy_optkind["$cmd|${cur%%=*}"]}
        COMPREPLY=($(__nerdpy_values "${cur#*=}" "${kind:-none}"))
        COMPREPLY=("${COMPREPLY[@]/#/${cur%%=*}=}")
    elif ((noopts == 0)) && [[ $cur == -* ]]; then
        COMPREPLY=($(IFS=$' \t\n'; compgen -W "${_nerdpy_flags[$cmd]} ${_nerdpy_valopts[$cmd]}" -- "$cur"))
    elif ((nargs == 0)) && [[ -n ${_nerdpy_subcmds[$cmd]} ]]; then
        COMPREPLY=($(IFS=$' \t\n'; compgen -W "${_nerdpy_subcmds[$cmd]}" -- "$cur"))
    elif ((${#args[@]} > 0)); then
        kind=${args[nargs]}
        if [[ -z $kind ]]; then
            kind=${args[${#args[@]} - 1]}
            [[ $kind == *... ]] || kind=none
        fi
        kind=${kind%...}
        [[ $kind == stop ]] || COMPREPLY=($(__nerdpy_values "$cur" "$kind"))
    fi
    # bash replaces only the part of the word after its last ':' or '=' break
    if [[ $cur != "${COMP_WORDS[COMP_CWORD]}" && $cur == *[:=]* ]]; then
        local strip=${cur%"${cur##*[:=]}"}
        COMPREPLY=("${COMPREPLY[@]#"$strip"}")
    fi
    ((_nerdpy_filenames)) && compopt -o filenames 2>/dev/null
    ((_nerdpy_nospace)) && compopt -o nospace 2>/dev/null
    return 0
}

# global flags and compose's file flags, passed on to `nerdpy __complete`
__nerdpy_remember() {
    case "$1|$2" in
        "nerdpy|--data-root"|"nerdpy|-n"|"nerdpy|--namespace")
            _nerdpy_ctx+=("$2" "$3") ;;
        "nerdpy compose|-f"|"nerdpy compose|--file"|"nerdpy compose|--project-directory")
            _nerdpy_ctx+=("$2" "$3") ;;
    esac
}

complete -F _nerdpy nerdpy
'''


def _bash_assoc(name: str, items: list[tuple[str, str]]) -> str:
    lines = [f"declare -gA {name}=("]
    for k, v in items:
        lines.append(f"    [{_sq(k)}]={_sq(v)}")
    lines.append(")")
    return "\n".join(lines)


def _tables(cmds: list[Cmd]) -> dict[str, list[tuple[str, str]]]:
    t: dict[str, list[tuple[str, str]]] = {"subcmds": [], "flags": [], "valopts": [], "optkind": [],
                                            "args": [], "nointersperse": []}
    for c in cmds:
        if c.subcommands:
            t["subcmds"].append((c.path, " ".join(n for n, _ in c.subcommands)))
        t["flags"].append((c.path, " ".join(_flags(c))))
        if _valopts(c):
            t["valopts"].append((c.path, " ".join(_valopts(c))))
        for o in c.options:
            if o.takes_value and o.kind != "none":
                for n in o.names:
                    t["optkind"].append((f"{c.path}|{n}", o.kind))
        if c.args:
            t["args"].append((c.path, " ".join(c.args)))
        if not c.interspersed:
            t["nointersperse"].append((c.path, "1"))
    return t


def render_bash(cmds: list[Cmd]) -> str:
    parts = [HEADER.format(comment="#", shell="bash"),
             "# Install: copy to /usr/share/bash-completion/completions/nerdpy, or\n"
             "#   source <(nerdpy completion bash)\n"]
    for name, items in _tables(cmds).items():
        parts.append(_bash_assoc(f"_nerdpy_{name}", items))
    parts.append(BASH_FUNCTIONS)
    return "\n".join(parts)


# zsh -------------------------------------------------------------------------------------
ZSH_FUNCTIONS = r'''
__nerdpy_live() {
    "${_nerdpy_prog}" __complete "${_nerdpy_ctx[@]}" "$@" 2>/dev/null
}

__nerdpy_values() {
    local kind=$1 k
    local -a vals
    for k in ${(s:+:)kind}; do
        case $k in
            containers) vals=(${(f)"$(__nerdpy_live containers)"}); vals=(${vals:#}); compadd -a vals ;;
            containers-*) vals=(${(f)"$(__nerdpy_live containers --${k#containers-})"}); vals=(${vals:#}); compadd -a vals ;;
            images|networks|volumes|services) vals=(${(f)"$(__nerdpy_live $k)"}); vals=(${vals:#}); compadd -a vals ;;
            files) _files ;;
            dirs) _files -/ ;;
            signals) vals=(''' + " ".join(SIGNALS) + r'''); compadd -a vals ;;
            choice=*) vals=(${(s:,:)${k#choice=}}); compadd -a vals ;;
            cp)
                if [[ $PREFIX != *:* ]]; then
                    vals=(${(f)"$(__nerdpy_live containers --all)"})
                    vals=(${vals:#})
                    compadd -S ':' -a vals
                    _files
                fi
                ;;
        esac
    done
}

_nerdpy() {
    local -a _nerdpy_ctx
    local _nerdpy_prog=${words[1]:-nerdpy}
    local cmd=nerdpy i w expect="" nargs=0 noopts=0 kind="" cur=${words[CURRENT]}
    for (( i = 2; i < CURRENT; i++ )); do
        w=${words[i]}
        if [[ -n $expect ]]; then
            __nerdpy_remember "$cmd" "$expect" "$w"
            expect=""
            continue
        fi
        if (( noopts == 0 )) && [[ $w == -?* ]]; then
            if [[ $w == -- ]]; then
                noopts=1
            elif [[ $w == --*=* ]]; then
                __nerdpy_remember "$cmd" "${w%%=*}" "${w#*=}"
            elif [[ " ${_nerdpy_valopts[$cmd]} " == *" $w "* ]]; then
                expect=$w
            fi
            continue
        fi
        if (( nargs == 0 )) && [[ " ${_nerdpy_subcmds[$cmd]} " == *" $w "* ]]; then
            cmd="$cmd $w"
            continue
        fi
        (( nargs++ ))
        [[ -n ${_nerdpy_nointersperse[$cmd]} ]] && noopts=1
    done
    if [[ -n $expect ]]; then
        __nerdpy_values "${_nerdpy_optkind[$cmd|$expect]:-none}"
    elif (( noopts == 0 )) && [[ $cur == --*=* ]]; then
        kind=${_nerdpy_optkind[$cmd|${cur%%=*}]:-none}
        compset -P '*='
        __nerdpy_values "$kind"
    elif (( noopts == 0 )) && [[ $cur == -* ]]; then
        local -a opts
        opts=(${(f)_nerdpy_optdescs[$cmd]})
        _describe -t options 'option' opts
    elif (( nargs == 0 )) && [[ -n ${_nerdpy_subcmds[$cmd]} ]]; then
        local -a subs
        subs=(${(f)_nerdpy_subdescs[$cmd]})
        _describe -t commands 'command' subs
    else
        local -a args
        args=(${=_nerdpy_args[$cmd]})
        if (( ${#args} > 0 )); then
            kind=${args[nargs + 1]}
            if [[ -z $kind ]]; then
                kind=${args[-1]}
                [[ $kind == *... ]] || kind=none
            fi
            kind=${kind%...}
            [[ $kind == stop ]] || __nerdpy_values "$kind"
        fi
    fi
    return 0
}

__nerdpy_remember() {
    case "$1|$2" in
        "nerdpy|--data-root"|"nerdpy|-n"|"nerdpy|--namespace")
            _nerdpy_ctx+=("$2" "$3") ;;
        "nerdpy compose|-f"|"nerdpy compose|--file"|"nerdpy compose|--project-directory")
            _nerdpy_ctx+=("$2" "$3") ;;
    esac
}

if [[ "${funcstack[1]}" == "_nerdpy" ]]; then
    _nerdpy "$@"
else
    compdef _nerdpy nerdpy
fi
'''


def _zdesc(name: str, desc: str) -> str:
    return name.replace(":", "\\:") + (":" + desc if desc else "")


def render_zsh(cmds: list[Cmd]) -> str:
    parts = ["#compdef nerdpy\n" + HEADER.format(comment="#", shell="zsh"),
             "# Install: copy to a directory in $fpath as _nerdpy, or\n"
             "#   source <(nerdpy completion zsh)   (after compinit)\n"]
    tables = _tables(cmds)
    for name in ("subcmds", "valopts", "optkind", "args", "nointersperse"):
        parts.append(_zsh_assoc(f"_nerdpy_{name}", tables[name]))
    subdescs, optdescs = [], []
    for c in cmds:
        if c.subcommands:
            subdescs.append((c.path, "\n".join(_zdesc(n, d) for n, d in c.subcommands)))
        entries = [_zdesc(n, o.help) for o in c.options for n in o.names]
        optdescs.append((c.path, "\n".join(entries)))
    parts.append(_zsh_assoc("_nerdpy_subdescs", subdescs))
    parts.append(_zsh_assoc("_nerdpy_optdescs", optdescs))
    parts.append(ZSH_FUNCTIONS)
    return "\n".join(parts)


def _zsh_assoc(name: str, items: list[tuple[str, str]]) -> str:
    lines = [f"typeset -gA {name}", f"{name}=("]
    for k, v in items:
        lines.append(f"    {_sq(k)} {_sq(v)}")
    lines.append(")")
    return "\n".join(lines)


# fish ------------------------------------------------------------------------------------
FISH_FUNCTIONS = r'''
function __nerdpy_live
    set -l prog (commandline -opc)[1]
    test -n "$prog"; or set prog nerdpy
    $prog __complete $__nerdpy_ctx $argv 2>/dev/null
end

function __nerdpy_values --argument-names kind cur
    for k in (string split + -- $kind)
        switch $k
            case containers
                __nerdpy_live containers
            case 'containers-*'
                __nerdpy_live containers --(string replace containers- '' -- $k)
            case images networks volumes services
                __nerdpy_live $k
            case files
                __fish_complete_path $cur
            case dirs
                __fish_complete_directories $cur
            case signals
                printf '%s\n' ''' + " ".join(SIGNALS) + r'''
            case 'choice=*'
                string split , -- (string replace choice= '' -- $k)
            case cp
                if not string match -q -- '*:*' $cur
                    __nerdpy_live containers --all | string replace -r '$' ':'
                    __fish_complete_path $cur
                end
        end
    end
end

function __nerdpy_remember --argument-names cmd opt val
    switch "$cmd|$opt"
        case 'nerdpy|--data-root' 'nerdpy|-n' 'nerdpy|--namespace' 'nerdpy compose|-f' 'nerdpy compose|--file' 'nerdpy compose|--project-directory'
            set -g __nerdpy_ctx $__nerdpy_ctx $opt $val
    end
end

function __nerdpy_complete
    set -g __nerdpy_ctx
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd nerdpy
    set -l expect ''
    set -l nargs 0
    set -l noopts 0
    for w in $tokens[2..-1]
        if test -n "$expect"
            __nerdpy_remember $cmd $expect $w
            set expect ''
            continue
        end
        if test $noopts -eq 0; and string match -qr -- '^-.' $w
            if test "$w" = --
                set noopts 1
            else if string match -q -- '--*=*' $w
                set -l kv (string split -m 1 = -- $w)
                __nerdpy_remember $cmd $kv[1] $kv[2]
            else if contains -- $w (__nerdpy_data valopts $cmd)
                set expect $w
            end
            continue
        end
        if test $nargs -eq 0; and contains -- $w (__nerdpy_data subcmds $cmd)
            set cmd "$cmd $w"
            continue
        end
        set nargs (math $nargs + 1)
        if test -n "$(__nerdpy_data nointersperse $cmd)"
            set noopts 1
        end
    end
    if test -n "$expect"
        __nerdpy_values (__nerdpy_data optkind "$cmd|$expect"; or echo none) $cur
    else if test $noopts -eq 0; and string match -q -- '--*=*' $cur
        set -l kv (string split -m 1 = -- $cur)
        set -l kind (__nerdpy_data optkind "$cmd|$kv[1]")
        test -n "$kind"; or set kind none
        __nerdpy_values $kind $kv[2] | string replace -r '^' -- "$kv[1]="
    else if test $noopts -eq 0; and string match -q -- '-*' $cur
        __nerdpy_data optdescs $cmd
    else if test $nargs -eq 0; and test -n "$(__nerdpy_data subcmds $cmd)"
        __nerdpy_data subdescs $cmd
    else
        set -l args (string split ' ' -- (__nerdpy_data args $cmd))
        if test (count $args) -gt 0; and test -n "$args[1]"
            set -l kind
            if test $nargs -lt (count $args)
                set kind $args[(math $nargs + 1)]
            else
                set kind $args[-1]
                string match -q -- '*...' $kind; or set kind none
            end
            set kind (string replace -r '\.\.\.$' '' -- $kind)
            if test "$kind" != stop
                __nerdpy_values $kind $cur
            end
        end
    end
end

complete -c nerdpy -f -a '(__nerdpy_complete)'
'''


def render_fish(cmds: list[Cmd]) -> str:
    parts = [HEADER.format(comment="#", shell="fish"),
             "# Install: copy to ~/.config/fish/completions/nerdpy.fish, or\n"
             "#   nerdpy completion fish | source\n"]
    tables = _tables(cmds)
    cases: list[tuple[str, list[str]]] = []
    for name in ("subcmds", "valopts", "optkind", "args", "nointersperse"):
        for k, v in tables[name]:
            words = [v] if name in ("optkind", "args", "nointersperse") else v.split()
            cases.append((f"{name} {k}", words))
    for c in cmds:
        if c.subcommands:
            cases.append((f"subdescs {c.path}", [f"{n}\t{d}" if d else n for n, d in c.subcommands]))
        entries = [f"{n}\t{o.help}" if o.help else n for o in c.options for n in o.names]
        cases.append((f"optdescs {c.path}", entries))
    lines = ["function __nerdpy_data --argument-names table key",
             '    switch "$table $key"']
    for key, values in cases:
        lines.append(f"        case {_fq(_fish_glob_escape(key))}")
        lines.append("            printf '%s\\n' " + " ".join(_fq(v) for v in values))
    lines.append("        case '*'")
    lines.append("            return 1")
    lines.append("    end")
    lines.append("end")
    parts.append("\n".join(lines))
    parts.append(FISH_FUNCTIONS)
    return "\n".join(parts)


def _fish_glob_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


# entry points ----------------------------------------------------------------------------
RENDERERS = {"bash": render_bash, "zsh": render_zsh, "fish": render_fish}


def render(shell: str, cmds: list[Cmd] | None = None) -> str:
    return RENDERERS[shell](cmds if cmds is not None else collect())


def render_all() -> dict[str, str]:
    cmds = collect()
    return {shell: render(shell, cmds) for shell in FILES}


def stale_files(directory: str = COMPLETIONS_DIR) -> list[str]:
    """The checked-in scripts that differ from what the click tree generates now."""
    out = []
    for shell, text in render_all().items():
        path = os.path.join(directory, FILES[shell])
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            out.append(path)
    return out


def write_all(directory: str = COMPLETIONS_DIR) -> list[str]:
    from nerdpy.engine.util.fs import write_atomic

    os.makedirs(directory, exist_ok=True)
    written = []
    for shell, text in render_all().items():
        path = os.path.join(directory, FILES[shell])
        write_atomic(path, text, None)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--check"]:
        stale = stale_files()
        for p in stale:
            print(f"out of date: {p} (run `{REGENERATE}`)", file=sys.stderr)
        return 1 if stale else 0
    for p in write_all():
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
