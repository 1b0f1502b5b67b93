#!/usr/bin/env bash
# Install nerdpy on a Debian or Ubuntu machine, as root: the packages it needs, nerdpy itself from
# this checkout, shell completion, optionally a registry mirror, then `nerdpy doctor`.
# Safe to run again: every step checks what is already there first. `--help` for the options.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/install.sh [OPTIONS]

Install nerdpy on Debian or Ubuntu (as root), then run `nerdpy doctor`; exits non-zero when
a step or the doctor fails. Every step is skipped when its work is already done.

Steps:
  packages    apt-get install runc containernetworking-plugins iptables iproute2
              ca-certificates tini; for Debian's python3 also python3-pip and nerdpy's
              requirements as python3-* packages (pip then downloads only newer ones)
  project     pip install -e . from this checkout (Python >= 3.11)
  completion  bash: /etc/bash_completion.d/nerdpy (with the bash-completion package);
              zsh: /usr/local/share/zsh/site-functions/_nerdpy; fish:
              /etc/fish/completions/nerdpy.fish (each only when that shell is installed)
  mirror      with --mirror: HOSTS_DIR/docker.io/hosts.toml naming the mirror(s)
  doctor      nerdpy doctor
  rootless    with --rootless USER: apt-get install uidmap slirp4netns fuse-overlayfs; a
              65,536-id range for USER in /etc/subuid and /etc/subgid (usermod) if it has
              none; /dev/net/tun usable by users (0666, kept by a udev rule); then
              `nerdpy doctor` as USER

Options:
  --mirror URL          a registry mirror (http:// or https://) for docker.io images;
                        repeatable, tried in order. Also NERDPY_MIRROR (space- or comma-separated).
  --mirror-for HOST     the registry the mirrors stand in for (default docker.io;
                        _default: every registry without a hosts.toml of its own)
  --mirror-ca FILE      the CA certificate of an https mirror (copied next to hosts.toml)
  --mirror-skip-verify  do not verify the mirror's TLS certificate
  --hosts-dir DIR       where hosts.toml files go (default: the first hosts dir nerdpy
                        reads, /etc/nerdpy/certs.d unless nerdpy.toml or
                        NERDPY_HOSTS_DIR say otherwise)
  --rootless USER       prepare USER to run nerdpy without root (repeatable; step rootless)
  --with-test-tools     also install what the test suite needs (docker-registry, skopeo,
                        umoci, busybox-static, openssl, apache2-utils, procps, curl, zsh,
                        fish) and nerdpy's test extras
  --no-editable         pip install . (a copy) instead of an editable install
  --reinstall           run pip even when nerdpy is already installed from this checkout
  --no-packages, --no-project, --no-completion, --no-doctor
                        skip that step
  --dry-run             print what would be done, change nothing (no root needed)
  -h, --help            this help

Environment: NERDPY_MIRROR (as --mirror), PYTHON (default python3), BASH_COMPLETION_DIR,
ZSH_COMPLETION_DIR, FISH_COMPLETION_DIR (where the completion scripts go).

Examples:
  sudo bash scripts/install.sh
  sudo bash scripts/install.sh --mirror https://mirror.lan:5000     # no internet, a mirror
  sudo bash scripts/install.sh --rootless alice                     # alice runs nerdpy herself
  bash scripts/install.sh --dry-run --with-test-tools
EOF
}

BASH_COMPLETION_DIR=${BASH_COMPLETION_DIR:-/etc/bash_completion.d}
ZSH_COMPLETION_DIR=${ZSH_COMPLETION_DIR:-/usr/local/share/zsh/site-functions}
FISH_COMPLETION_DIR=${FISH_COMPLETION_DIR:-/etc/fish/completions}
RUNTIME_PACKAGES=(runc containernetworking-plugins iptables iproute2 ca-certificates tini)
# nerdpy's Python requirements as Debian packages, for Debian's own python3: an apt mirror is
# then enough (pip fetches from PyPI only what Debian has too old)
PY_PACKAGES=(python3-pip python3-setuptools python3-wheel python3-click python3-rich python3-requests python3-yaml
             python3-cffi python3-zstandard python3-jsonschema python3-watchdog python3-aiohttp)
TEST_PACKAGES=(docker-registry skopeo umoci busybox-static openssl apache2-utils procps curl zsh fish docker-compose
               uidmap slirp4netns fuse-overlayfs python3-click python3-rich python3-requests python3-yaml
               python3-cffi python3-zstandard python3-jsonschema)
# the docker CLI 20.10 as a test client of `nerdpy system service` (extracted from Debian's docker.io
# package; its dockerd is never started)
DOCKER_CLI_DIR=${DOCKER_CLI_DIR:-/opt/docker-io}
# rootless nerdpy (--rootless USER): user namespaces over /etc/subuid, the default network
ROOTLESS_PACKAGES=(uidmap slirp4netns fuse-overlayfs)

die() { echo "install.sh: $*" >&2; exit 1; }
usage_error() { echo "install.sh: $*" >&2; echo "Try 'scripts/install.sh --help'." >&2; exit 2; }
say() { echo "==> $*"; }

DRY=0 TEST_TOOLS=0 EDITABLE=1 REINSTALL=0
DO_PACKAGES=1 DO_PROJECT=1 DO_COMPLETION=1 DO_DOCTOR=1
ROOTLESS_USERS=()
MIRRORS=()
MIRROR_FOR=docker.io MIRROR_CA="" MIRROR_SKIP_VERIFY=0 HOSTS_DIR=""
if [ -n "${NERDPY_MIRROR:-}" ]; then
    read -r -a MIRRORS <<<"${NERDPY_MIRROR//,/ }"
fi

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --dry-run) DRY=1 ;;
        --mirror) need_value "$@"; MIRRORS+=("$2"); shift ;;
        --mirror=*) MIRRORS+=("${1#*=}") ;;
        --mirror-for) need_value "$@"; MIRROR_FOR=$2; shift ;;
        --mirror-for=*) MIRROR_FOR=${1#*=} ;;
        --mirror-ca) need_value "$@"; MIRROR_CA=$2; shift ;;
        --mirror-ca=*) MIRROR_CA=${1#*=} ;;
        --mirror-skip-verify) MIRROR_SKIP_VERIFY=1 ;;
        --hosts-dir) need_value "$@"; HOSTS_DIR=$2; shift ;;
        --hosts-dir=*) HOSTS_DIR=${1#*=} ;;
        --rootless) need_value "$@"; ROOTLESS_USERS+=("$2"); shift ;;
        --rootless=*) ROOTLESS_USERS+=("${1#*=}") ;;
        --with-test-tools) TEST_TOOLS=1 ;;
        --no-editable) EDITABLE=0 ;;
        --reinstall) REINSTALL=1 ;;
        --no-packages) DO_PACKAGES=0 ;;
        --no-project) DO_PROJECT=0 ;;
        --no-completion) DO_COMPLETION=0 ;;
        --no-doctor) DO_DOCTOR=0 ;;
        *) usage_error "unknown option: $1" ;;
    esac
    shift
done

for m in ${MIRRORS[@]+"${MIRRORS[@]}"}; do
    case "$m" in
        http://?*|https://?*) ;;
        *) usage_error "--mirror $m: give a URL starting with http:// or https://" ;;
    esac
    case "$m" in *\"*|*\\*|*" "*) usage_error "--mirror $m: not a URL" ;; esac
done
case "$MIRROR_FOR" in
    ""|*/*|*" "*|*\"*) usage_error "--mirror-for $MIRROR_FOR: give a registry host[:port] or _default" ;;
esac
if [ -n "$MIRROR_CA" ] && [ ! -r "$MIRROR_CA" ]; then usage_error "--mirror-ca $MIRROR_CA: no such file"; fi

cd "$(dirname "$0")/.."
CHECKOUT=$(pwd -P)
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo bash scripts/install.sh), or see what it would do with --dry-run"
fi

# run CMD...: run it, or print it under --dry-run
run() {
    if [ "$DRY" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

# install_file DEST MODE: stdin to DEST atomically, unless DEST already holds exactly that
install_file() {
    local dest=$1 mode=$2 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
        echo "    $dest: already up to date"
        return 0
    fi
    if [ "$DRY" = 1 ]; then
        if [ "$(wc -l <"$tmp")" -le 40 ]; then
            echo "+ write $dest:"
            sed 's/^/    | /' "$tmp"
        else
            echo "+ write $dest ($(wc -l <"$tmp") lines)"
        fi
        rm -f "$tmp"
        return 0
    fi
    mkdir -p "$(dirname "$dest")"
    if [ -f "$dest" ] && [ ! -e "$dest.bak" ]; then
        cp -p "$dest" "$dest.bak"
        echo "    $dest: the previous version kept as $dest.bak"
    fi
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest"
    echo "    wrote $dest"
}

# Is $PYTHON Debian's python3 (or missing, so that apt-get will bring Debian's)? A virtualenv made
# from it is not: its packages are its own (and it may lack setuptools), so pip installs them there.
system_python() {
    local p
    p=$(command -v "$PYTHON" 2>/dev/null) || return 0
    case "$(readlink -f "$p")" in /usr/bin/python3*) ;; *) return 1 ;; esac
    "$p" -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)' 2>/dev/null
}

missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"
    done
}

APT_UPDATED=0
apt_install() {
    [ $# -gt 0 ] || return 0
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* with this system's package manager, then run again with --no-packages"
    if [ "$APT_UPDATED" = 0 ]; then
        run apt-get update -qq
        APT_UPDATED=1
    fi
    run apt-get install -y -qq --no-install-recommends "$@"
}

# -- packages ---------------------------------------------------------------------------------
if [ "$DO_PACKAGES" = 1 ]; then
    say "packages"
    want=("${RUNTIME_PACKAGES[@]}")
    [ "$TEST_TOOLS" = 0 ] || want+=("${TEST_PACKAGES[@]}")
    [ ${#ROOTLESS_USERS[@]} -eq 0 ] || want+=("${ROOTLESS_PACKAGES[@]}")
    if system_python; then
        want+=(python3 "${PY_PACKAGES[@]}")
    elif ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        want+=(python3-pip)
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        die "not a Debian or Ubuntu system (no dpkg-query): install ${want[*]} yourself, then run again with --no-packages"
    fi
    mapfile -t need < <(missing_packages "${want[@]}")
    if [ ${#need[@]} -eq 0 ]; then
        echo "    all installed: ${want[*]}"
    else
        echo "    missing: ${need[*]}"
        apt_install "${need[@]}"
    fi
fi

if [ "$DO_PACKAGES" = 1 ] && [ "$TEST_TOOLS" = 1 ]; then
    if [ -x "$DOCKER_CLI_DIR/usr/bin/docker" ]; then
        echo "    docker CLI client: $DOCKER_CLI_DIR/usr/bin/docker"
    else
        say "docker CLI client (docker.io, extracted, never started as a daemon)"
        [ "$APT_UPDATED" = 1 ] || { run apt-get update -qq; APT_UPDATED=1; }
        run bash -c "d=\$(mktemp -d) && chmod 755 \"\$d\" && cd \"\$d\" && apt-get download -qq docker.io && mkdir -p '$DOCKER_CLI_DIR' && dpkg-deb -x docker.io_*.deb '$DOCKER_CLI_DIR' && rm -rf \"\$d\""
    fi
fi

# -- the project --------------------------------------------------------------------------------
# Is nerdpy importable from this checkout, with every requirement satisfied?
installed_here() {
    (cd / && "$PYTHON" - "$CHECKOUT" "$TEST_TOOLS" <<'PY'
import os, sys
from importlib import metadata
try:
    import nerdpy
    from pip._vendor.packaging.requirements import Requirement
except Exception:
    sys.exit(1)
if os.path.dirname(os.path.dirname(os.path.realpath(nerdpy.__file__))) != sys.argv[1]:
    sys.exit(1)
extras = {"test"} if sys.argv[2] == "1" else set()
for line in metadata.distribution("nerdpy").requires or []:
    req = Requirement(line)
    if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
        continue
    try:
        if not req.specifier.contains(metadata.version(req.name), prereleases=True):
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
PY
    )
}

if [ "$DO_PROJECT" = 1 ]; then
    say "nerdpy (Python package)"
    if [ "$DRY" = 1 ] && ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "+ $PYTHON -m pip install -e $CHECKOUT  (after the packages above)"
    else
        command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
            die "nerdpy needs Python >= 3.11; $PYTHON is $("$PYTHON" -c 'import platform; print(platform.python_version())')"
        if [ "$REINSTALL" = 0 ] && [ "$EDITABLE" = 1 ] && installed_here; then
            echo "    already installed from $CHECKOUT (--reinstall to run pip anyway)"
        else
            target=.
            [ "$TEST_TOOLS" = 0 ] || target='.[test]'
            pip_args=(-m pip install -q --disable-pip-version-check --root-user-action=ignore)
            editable=()
            [ "$EDITABLE" = 0 ] || editable=(-e)
            # Debian's own python3 is "externally managed" (PEP 668): nerdpy goes beside its packages
            if "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not (sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))'; then
                pip_args+=(--break-system-packages)
            fi
            # Debian's python3-setuptools builds it: no build environment to download
            if system_python && { [ "$DO_PACKAGES" = 1 ] || "$PYTHON" -c 'import setuptools, wheel, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 61)' 2>/dev/null; }; then
                pip_args+=(--no-build-isolation)
            fi
            run "$PYTHON" "${pip_args[@]}" ${editable[@]+"${editable[@]}"} "$target"
        fi
        if [ "$EDITABLE" = 1 ]; then
            # an editable install runs from the checkout: compile it once, so that every start
            # reads bytecode (where PYTHONDONTWRITEBYTECODE is set, it would compile each time)
            run "$PYTHON" -m compileall -q "$CHECKOUT/nerdpy" "$CHECKOUT/compose"
        fi
    fi
fi

if [ "$DRY" = 0 ] && ! (cd / && "$PYTHON" -c 'import nerdpy' 2>/dev/null); then
    die "nerdpy is not installed for $PYTHON (run without --no-project)"
fi

# -- shell completion ---------------------------------------------------------------------------
completion_script() {
    # the installed nerdpy's own script; the checked-in one when it cannot run yet (--dry-run)
    if (cd / && "$PYTHON" -c 'import nerdpy' 2>/dev/null); then
        (cd / && "$PYTHON" -m nerdpy completion "$1")
    else
        case "$1" in
            bash) cat "$CHECKOUT/completions/nerdpy.bash" ;;
            zsh) cat "$CHECKOUT/completions/_nerdpy" ;;
            fish) cat "$CHECKOUT/completions/nerdpy.fish" ;;
        esac
    fi
}

if [ "$DO_COMPLETION" = 1 ]; then
    say "shell completion"
    if [ "$DO_PACKAGES" = 1 ]; then
        mapfile -t need < <(missing_packages bash-completion)
        [ ${#need[@]} -eq 0 ] || apt_install bash-completion
    fi
    completion_script bash | install_file "$BASH_COMPLETION_DIR/nerdpy" 0644
    if command -v zsh >/dev/null 2>&1; then
        completion_script zsh | install_file "$ZSH_COMPLETION_DIR/_nerdpy" 0644
    fi
    if command -v fish >/dev/null 2>&1; then
        completion_script fish | install_file "$FISH_COMPLETION_DIR/nerdpy.fish" 0644
    fi
    case "$(basename "${SHELL:-bash}")" in
        zsh) echo "    zsh: new shells complete nerdpy once compinit runs (autoload -Uz compinit && compinit in ~/.zshrc)" ;;
        fish) echo "    fish: new shells complete nerdpy" ;;
        *) echo "    bash: new login shells complete nerdpy; in this one: source $BASH_COMPLETION_DIR/nerdpy" ;;
    esac
fi

# -- registry mirror ----------------------------------------------------------------------------
if [ ${#MIRRORS[@]} -gt 0 ]; then
    say "registry mirror for $MIRROR_FOR"
    if [ -z "$HOSTS_DIR" ]; then
        HOSTS_DIR=$(cd / && "$PYTHON" -c 'from nerdpy.engine.config import load_settings; print(load_settings().hosts_dirs[0])' 2>/dev/null) ||
            HOSTS_DIR=/etc/nerdpy/certs.d
    fi
    dir="$HOSTS_DIR/$MIRROR_FOR"
    if [ -n "$MIRROR_CA" ]; then
        install_file "$dir/mirror-ca.pem" 0644 <"$MIRROR_CA"
    fi
    {
        echo "# written by scripts/install.sh --mirror (format: docs/configuration.md, \"Registries: hosts.toml\")"
        case "$MIRROR_FOR" in
            _default) ;;
            docker.io) echo 'server = "https://registry-1.docker.io"' ;;
            *) echo "server = \"https://$MIRROR_FOR\"" ;;
        esac
        for m in "${MIRRORS[@]}"; do
            echo
            echo "[host.\"${m%/}\"]"
            echo '  capabilities = ["pull", "resolve"]'
            [ -z "$MIRROR_CA" ] || echo '  ca = "mirror-ca.pem"'
            [ "$MIRROR_SKIP_VERIFY" = 0 ] || echo '  skip_verify = true'
        done
    } | install_file "$dir/hosts.toml" 0644
fi

# -- doctor -------------------------------------------------------------------------------------
if [ "$DO_DOCTOR" = 1 ]; then
    say "nerdpy doctor"
    if [ "$DRY" = 1 ]; then
        echo "+ nerdpy doctor"
    else
        hosts_env=()
        if [ -n "$HOSTS_DIR" ]; then
            # check the mirror just written even when it went to a dir nerdpy does not read by default
            current=$(cd / && "$PYTHON" -c 'from nerdpy.engine.config import load_settings; print(":".join(load_settings().hosts_dirs))')
            case ":$current:" in
                *":$HOSTS_DIR:"*) ;;
                *) hosts_env=(NERDPY_HOSTS_DIR="$HOSTS_DIR:$current")
                   echo "    note: $HOSTS_DIR is not among the hosts dirs nerdpy reads ($current); set hosts_dir in /etc/nerdpy/nerdpy.toml" ;;
            esac
        fi
        if ! (cd / && env ${hosts_env[@]+"${hosts_env[@]}"} "$PYTHON" -m nerdpy doctor); then
            die "nerdpy doctor found problems (above); fix them and run scripts/install.sh again"
        fi
    fi
fi

# -- rootless users -------------------------------------------------------------------------------
# next_subid FILE: the first id after every range in FILE (at least 100000)
next_subid() {
    awk -F: 'BEGIN { n = 100000 } NF == 3 && $2 + $3 > n { n = $2 + $3 } END { print n }' "$1" 2>/dev/null || echo 100000
}

for u in ${ROOTLESS_USERS[@]+"${ROOTLESS_USERS[@]}"}; do
    say "rootless user $u"
    id -u "$u" >/dev/null 2>&1 || die "--rootless $u: no such user"
    uid=$(id -u "$u")
    [ "$uid" != 0 ] || die "--rootless $u: root runs nerdpy with root's paths, not rootless"
    for kind in uid gid; do
        f=/etc/sub$kind
        if grep -qE "^($u|$uid):[0-9]+:[1-9]" "$f" 2>/dev/null; then
            echo "    $f: $u has a range already"
        else
            start=$(next_subid "$f")
            echo "    $f: $u gets ids $start-$((start + 65535))"
            run usermod "--add-sub${kind}s" "$start-$((start + 65535))" "$u"
        fi
    done
    if [ -c /dev/net/tun ]; then
        if [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
            run chmod 0666 /dev/net/tun
        fi
        echo 'KERNEL=="tun", GROUP="root", MODE="0666"' | install_file /etc/udev/rules.d/99-nerdpy-tun.rules 0644
    else
        echo "    no /dev/net/tun: the rootless default network (slirp4netns) will not work; --network none/host will"
    fi
    if [ "$DRY" = 1 ]; then
        echo "+ runuser -u $u -- $PYTHON -m nerdpy doctor"
    elif ! (cd / && runuser -u "$u" -- env -u XDG_RUNTIME_DIR "$PYTHON" -m nerdpy doctor); then
        die "nerdpy doctor as $u found problems (above); if $u cannot import nerdpy, install it for $PYTHON system-wide (--no-editable) or use Debian's python3"
    fi
done

if [ "$DRY" = 1 ]; then
    say "dry run: nothing was changed"
elif [ "$DO_DOCTOR" = 1 ]; then
    say "nerdpy is ready: try  nerdpy run --rm busybox echo hello"
else
    say "done"
fi
